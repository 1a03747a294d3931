"""BatchWriter: submit records to a dataset without losing any (see batching.py)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._lifecycle import Closing
from .batching import Batcher, Delivered, Overflow
from .spool import SpoolLocked

if TYPE_CHECKING:
    from .client import Client

__all__ = ["BatchWriter", "default_spool_dir"]


def default_spool_dir(client: Client, kind: str, name: str) -> Path:
    """``$COREADMIN_SPOOL_DIR`` or ``~/.cache/coreadmin_client``, then
    ``<server host_port>/<service>/<kind>-<name>``."""
    root = Path(os.environ.get("COREADMIN_SPOOL_DIR") or Path.home() / ".cache/coreadmin_client")
    server = client.base_url.split("://", 1)[-1].replace("/", "_").replace(":", "_")
    return root / server / (client.service or "default") / f"{kind}-{name}"


def open_batcher(
    client: Client, kind: str, name: str, spool_dir: str | Path | None, **kw: Any
) -> Batcher:
    """A Batcher on ``spool_dir``, or on the first free slot of the default directory
    (``.../<kind>-<name>``, ``-1``, ``-2``...) so processes on one host each own one and
    a restarted process reclaims what a dead one left."""
    if spool_dir is not None:
        return Batcher(f"{kind}:{name}", spool_dir=spool_dir, **kw)
    base = default_spool_dir(client, kind, name)
    for slot in range(64):
        path = base if slot == 0 else base.with_name(f"{base.name}-{slot}")
        try:
            return Batcher(f"{kind}:{name}", spool_dir=path, **kw)
        except SpoolLocked:
            continue
    raise SpoolLocked(f"no free spool slot under {base.parent}")


class BatchWriter(Closing):
    """Writes records to ``dataset`` in batches on a background thread.

    ``write`` returns once the record is in the write-ahead journal of the spool
    directory and queued in memory (or blocks / raises when the queue is full, per
    ``overflow``): a crash after that, even ``SIGKILL``, loses nothing; the next writer on
    the same spool directory sends it. ``fsync=True`` also survives power loss, at the
    cost of a disk flush per record. ``counts`` tells every record's fate.
    """

    def __init__(
        self,
        client: Client,
        dataset: str,
        *,
        batch_size: int | None = None,
        interval: float = 1.0,
        max_queue: int = 10_000,
        overflow: Overflow = "block",
        block_timeout: float | None = None,
        spool_dir: str | Path | None = None,
        replay_interval: float = 2.0,
        fsync: bool = False,
    ) -> None:
        self.client = client
        self.dataset = dataset
        self.last_failures: list[dict[str, Any]] = []
        self._path = f"/api/v1/datasets/{dataset}/records"
        self._batcher = open_batcher(
            client,
            "dataset",
            dataset,
            spool_dir,
            send=self._send,
            batch_size=batch_size or client.config.get("batch_size", 500),
            interval=interval,
            max_queue=max_queue,
            overflow=overflow,
            block_timeout=block_timeout,
            replay_interval=replay_interval,
            fsync=fsync,
        )
        client._register_batcher(self._batcher)

    def _send(self, records: list[Any], batch_id: str) -> Delivered:
        body = self.client.transport.request(
            "POST", self._path, json={"batch_id": batch_id, "records": records}
        )
        if body.get("failures"):
            self.last_failures = list(body["failures"])[-100:]
        return Delivered(written=int(body["written"]), queued=int(body["queued"]))

    @property
    def counts(self) -> dict[str, int]:
        """submitted, recovered, pending, written, queued, spooled, rejected, dead."""
        return self._batcher.counts

    @property
    def spool_dir(self) -> Path | None:
        return self._batcher.spool.directory if self._batcher.spool else None

    def write(self, record: Mapping[str, Any]) -> None:
        self._batcher.put(dict(record))

    def write_many(self, records: Iterable[Mapping[str, Any]]) -> None:
        for record in records:
            self._batcher.put(dict(record))

    async def awrite(self, record: Mapping[str, Any]) -> None:
        await self._batcher.aput(dict(record))

    def flush(self, timeout: float | None = None) -> bool:
        return self._batcher.flush(timeout)

    async def aflush(self, timeout: float | None = None) -> bool:
        return await self._batcher.aflush(timeout)

    def replay(self) -> int:
        """Tries the open (unacknowledged) batches now instead of at the next replay tick."""
        return self._batcher.replay()

    def close(self, timeout: float | None = 30.0) -> None:
        self._batcher.close(timeout)

    async def aclose(self, timeout: float | None = 30.0) -> None:
        import asyncio

        await asyncio.to_thread(self._batcher.close, timeout)
