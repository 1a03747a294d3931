"""A directory of batches that could not be delivered, replayed in order on recovery.

Each batch is one JSON file ``<ns>-<batch_id>.json`` holding ``{"batch_id", "items"}``,
written to a temporary name, fsynced and renamed, so a crash leaves either the whole
batch or nothing. The directory is locked (``flock``) by one live process at a time, so
two writers never replay the same file; a restarted process takes the lock over and
replays what its predecessor left.
"""

from __future__ import annotations

import json
import os
import threading
import time
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
        for stale in self.directory.glob("*.tmp"):
            stale.unlink(missing_ok=True)

    def close(self) -> None:
        if not self._lock_file.closed:
            self._lock_file.close()  # releases the flock

    def put(self, batch_id: str, items: list[Any]) -> Path:
        with self._lock:
            path = self.directory / f"{time.time_ns():020d}-{batch_id}.json"
            tmp = path.with_suffix(".tmp")
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump({"batch_id": batch_id, "items": items}, fh, default=str)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            return path

    def files(self) -> list[Path]:
        return sorted(self.directory.glob("*.json"))

    @staticmethod
    def read(path: Path) -> tuple[str, list[Any]]:
        data = json.loads(path.read_text(encoding="utf-8"))
        return str(data["batch_id"]), list(data["items"])

    def remove(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def count_items(self) -> int:
        return sum(len(self.read(p)[1]) for p in self.files())

    def append_rejected(self, batch_id: str, items: list[Any], reason: str) -> None:
        """Keeps what the server refused for good (4xx) for a human to inspect."""
        with self._lock, open(self.directory / "rejected.jsonl", "a", encoding="utf-8") as fh:
            for item in items:
                line = {"batch_id": batch_id, "reason": reason, "item": item}
                fh.write(json.dumps(line, default=str) + "\n")
