"""A Batcher's spool directory: its write-ahead journal (journal.py) and
``rejected.jsonl`` (what the server refused for good, kept for a human).

The directory is locked (``flock``) by one live process at a time, so two writers never
append to or replay the same journal; a restarted process takes the lock over (the
kernel drops a dead process's lock) and replays what its predecessor left.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Linux
    fcntl = None  # type: ignore[assignment]

__all__ = ["Spool", "SpoolLocked"]


class SpoolLocked(RuntimeError):
    """Another live process owns this spool directory."""


class Spool:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._lock_file = open(self.directory / ".lock", "a+")  # noqa: SIM115 - held for life
        if fcntl is not None:
            try:
                fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                self._lock_file.close()
                raise SpoolLocked(f"{self.directory} is used by another process") from exc

    def close(self) -> None:
        if not self._lock_file.closed:
            self._lock_file.close()  # releases the flock

    def append_rejected(self, batch_id: str, items: list[Any], reason: str) -> None:
        """Keeps what the server refused for good (4xx) for a human to inspect."""
        with self._lock, open(self.directory / "rejected.jsonl", "a", encoding="utf-8") as fh:
            for item in items:
                line = {"batch_id": batch_id, "reason": reason, "item": item}
                fh.write(json.dumps(line, default=str) + "\n")
