"""The write-ahead journal behind every Batcher that has a spool directory.

An append-only log of numbered lines in segment files ``journal-<first seq>-<ns>.log``:

- ``r <seq> <json>``: one submitted item (written before ``put`` returns);
- ``b <batch_id> <first> <last>``: a batch covering the items ``first..last`` (written
  before the batch is sent, so a restart resends it under the same ``batch_id`` and the
  server, which dedupes by batch id, stores it once);
- ``d <batch_id> <fate>``: that batch is done (the server answered: written / queued /
  rejected; or ``split`` when a 413 cut it in two ``b`` lines of its own).

Each line is ``<crc32 hex> <body>\\n`` and is written by one ``os.write`` on an
``O_APPEND`` descriptor: the page cache keeps it through a ``SIGKILL`` of the process
(no fsync needed); ``fsync=True`` also fdatasyncs every line, for power loss, at the
cost of a disk flush per item (see docs/client.md for figures). A line whose checksum
does not match (a write torn by a crash or power loss) is skipped. A new process never
appends to an old segment (its tail may be torn): it starts a new one.

Recovery reads every segment: batches with a ``b`` line and no ``d`` line are open (sent
or not, unacknowledged), items covered by no ``b`` line were never batched. Segments
rotate at ``segment_bytes``; a whole segment is deleted once every item and batch it
mentions is done and every older segment is gone, so the journal holds the backlog plus
at most about one segment.
"""

from __future__ import annotations

import bisect
import logging
import os
import threading
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Journal", "OpenBatch", "Recovered"]

logger = logging.getLogger("coreadmin_client.journal")
SEGMENT_GLOB = "journal-*.log"
READ_CHUNK = 1 << 20


@dataclass(frozen=True)
class OpenBatch:
    """A batch that has a ``b`` line and no ``d`` line; ``size`` items survive in it."""

    batch_id: str
    first: int
    last: int
    size: int


@dataclass
class Recovered:
    open_batches: list[OpenBatch] = field(default_factory=list)
    unbatched: list[int] = field(default_factory=list)  # seqs covered by no batch, sorted
    skipped_lines: int = 0  # torn or corrupt lines left out


@dataclass
class _Segment:
    path: Path
    first: int
    max_ref: int = -1  # the highest seq a record or batch line in it mentions
    size: int = 0


def _line(body: str) -> bytes:
    data = body.encode("utf-8")
    return b"%08x %s\n" % (zlib.crc32(data), data)


def _parse(raw: bytes) -> str | None:
    """The body of a well-formed line, or None (torn, corrupt)."""
    if len(raw) < 10 or raw[8:9] != b" ":
        return None
    data = raw[9:]
    try:
        if int(raw[:8], 16) != zlib.crc32(data):
            return None
        return data.decode("utf-8")
    except ValueError:
        return None


class Journal:
    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        fsync: bool = False,
        segment_bytes: int = 8 << 20,
    ) -> None:
        self.directory = Path(directory)
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        self._lock = threading.Lock()
        self._segments: list[_Segment] = []
        self._fd = -1
        self.next_seq = 0
        self.recovered = self._recover()
        self._open_segment()
        # (path, offset, seq): in that segment, from that byte on, records have seq >= seq.
        self._cursor: tuple[Path, int, int] | None = None

    # -- writing --------------------------------------------------------------------------
    def append_record(self, text: str) -> int:
        """Journals one item (its JSON text); returns its seq once the line is written."""
        with self._lock:
            seq = self.next_seq
            self._write(_line(f"r {seq} {text}"), seq)
            self.next_seq = seq + 1
            return seq

    def mark_batch(self, batch_id: str, first: int, last: int) -> None:
        with self._lock:
            self._write(_line(f"b {batch_id} {first} {last}"), last)

    def mark_split(self, parent: str, halves: list[tuple[str, int, int]]) -> None:
        """The halves' batch lines, then the parent's done line, in one write."""
        data = b"".join(_line(f"b {bid} {a} {b}") for bid, a, b in halves)
        with self._lock:
            self._write(data + _line(f"d {parent} split"), max(b for _, _, b in halves))

    def mark_done(self, batch_id: str, fate: str) -> None:
        with self._lock:
            self._write(_line(f"d {batch_id} {fate}"), -1)

    def _write(self, data: bytes, ref: int) -> None:
        """Caller holds the lock."""
        segment = self._segments[-1]
        if segment.size >= self.segment_bytes:
            self._open_segment()
            segment = self._segments[-1]
        view = memoryview(data)
        while view:  # a regular file takes it in one call; a short write is continued
            view = view[os.write(self._fd, view) :]
        if self.fsync:
            os.fdatasync(self._fd)
        segment.size += len(data)
        if ref > segment.max_ref:
            segment.max_ref = ref

    def _open_segment(self) -> None:
        path = self.directory / f"journal-{self.next_seq:012d}-{time.time_ns():020d}.log"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_EXCL, 0o600)
        if self.fsync:
            dir_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = fd
        self._segments.append(_Segment(path, self.next_seq))

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    # -- reading --------------------------------------------------------------------------
    def read(self, first: int, last: int) -> list[tuple[int, str]]:
        """The items ``first..last`` still in the journal, in order, as (seq, JSON text)."""
        with self._lock:
            segments = list(self._segments)
            cursor = self._cursor
        firsts = [s.first for s in segments]
        start = max(0, bisect.bisect_right(firsts, first) - 1)
        offset = 0
        if cursor is not None and cursor[2] <= first:
            paths = [s.path for s in segments]
            if cursor[0] in paths and paths.index(cursor[0]) >= start:
                start, offset = paths.index(cursor[0]), cursor[1]
        out: list[tuple[int, str]] = []
        for segment in segments[start:]:
            if segment.first > last:
                break
            beyond, end = self._scan(segment.path, offset, first, last, out)
            # Every record from ``end`` on has a seq above ``last`` (the ones up to it
            # were written before this call), so the next read in order starts there.
            with self._lock:
                self._cursor = (segment.path, end, last + 1)
            if beyond:
                break
            offset = 0
        return out

    @staticmethod
    def _scan(
        path: Path, offset: int, first: int, last: int, out: list[tuple[int, str]]
    ) -> tuple[bool, int]:
        """Collects records first..last from ``path`` on from ``offset``; returns (a
        record beyond ``last`` was seen, the offset of the first line not consumed)."""
        try:
            fh = open(path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            return False, 0
        with fh:
            fh.seek(offset)
            pending = b""
            position = offset
            while chunk := fh.read(READ_CHUNK):
                pending += chunk
                lines = pending.split(b"\n")
                pending = lines.pop()  # incomplete (or empty): wait for more
                for raw in lines:
                    body = _parse(raw)
                    if body is not None and body.startswith("r "):
                        _, seq_text, text = body.split(" ", 2)
                        seq = int(seq_text)
                        if seq > last:
                            return True, position
                        if seq >= first:
                            out.append((seq, text))
                    position += len(raw) + 1
        return False, position

    # -- recovery and compaction -----------------------------------------------------------
    def _recover(self) -> Recovered:
        found = []
        for path in self.directory.glob(SEGMENT_GLOB):
            try:
                found.append((int(path.name.split("-")[1]), path))
            except (IndexError, ValueError):
                continue
        found.sort()
        result = Recovered()
        records: list[int] = []
        batches: dict[str, tuple[int, int]] = {}
        done: set[str] = set()
        for first, path in found:
            segment = _Segment(path, first, size=path.stat().st_size)
            data = path.read_bytes()
            lines = data.split(b"\n")
            if lines[-1]:  # no final newline: the last write was torn
                result.skipped_lines += 1
            for raw in lines[:-1]:
                body = _parse(raw)
                if body is None:
                    result.skipped_lines += 1
                    continue
                kind, rest = body[:1], body[2:]
                try:
                    if kind == "r":
                        seq = int(rest.split(" ", 1)[0])
                        records.append(seq)
                        segment.max_ref = max(segment.max_ref, seq)
                    elif kind == "b":
                        batch_id, lo_text, hi_text = rest.split(" ")
                        batches[batch_id] = (int(lo_text), int(hi_text))
                        segment.max_ref = max(segment.max_ref, int(hi_text))
                    elif kind == "d":
                        done.add(rest.split(" ", 1)[0])
                except ValueError:
                    result.skipped_lines += 1
            self._segments.append(segment)
        if result.skipped_lines:
            logger.warning(
                "%s: %d torn or corrupt journal lines skipped", self.directory, result.skipped_lines
            )
        records.sort()
        self.next_seq = (records[-1] + 1) if records else 0
        if self._segments:
            self.next_seq = max(self.next_seq, max(s.max_ref for s in self._segments) + 1)
        split = {bid.rsplit(".", 1)[0] for bid in batches if "." in bid}
        covered: list[tuple[int, int]] = sorted(batches.values())
        for batch_id, (lo, hi) in batches.items():
            if batch_id in done or batch_id in split:
                continue
            size = bisect.bisect_right(records, hi) - bisect.bisect_left(records, lo)
            result.open_batches.append(OpenBatch(batch_id, lo, hi, size))
        result.open_batches.sort(key=lambda o: (o.first, o.last))
        starts = [lo for lo, _ in covered]
        reach = []  # the furthest seq covered by any batch starting at or before each
        top = -1
        for _, hi in covered:
            top = max(top, hi)
            reach.append(top)
        for seq in records:
            i = bisect.bisect_right(starts, seq) - 1
            if i < 0 or reach[i] < seq:
                result.unbatched.append(seq)
        return result

    def compact(self, low_water: int) -> int:
        """Deletes the oldest segments that mention nothing below ``low_water`` (the
        first item not done); never the current one. Returns how many went."""
        removed = 0
        with self._lock:
            while len(self._segments) > 1 and self._segments[0].max_ref < low_water:
                gone = self._segments.pop(0)
                gone.path.unlink(missing_ok=True)
                removed += 1
                if self._cursor is not None and self._cursor[0] == gone.path:
                    self._cursor = None
        return removed

    def segment_count(self) -> int:
        with self._lock:
            return len(self._segments)

    def size_bytes(self) -> int:
        with self._lock:
            return sum(s.size for s in self._segments)
