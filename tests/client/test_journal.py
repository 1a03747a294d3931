"""The write-ahead journal on its own: torn lines, recovery, splits, compaction."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from coreadmin_client import Batcher, Delivered
from coreadmin_client.errors import NetworkError
from coreadmin_client.journal import Journal

from tests.client.conftest import wait_until


def _segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("journal-*.log"))


def _abandon(batcher: Batcher) -> None:
    """What a SIGKILL leaves: the thread stops, nothing is flushed, the files and the
    flock are let go."""
    with batcher._cond:
        batcher._closed = True
        batcher._queue.clear()
        batcher._cond.notify_all()
    batcher._thread.join(10)
    assert batcher.journal is not None and batcher.spool is not None
    batcher.journal.close()
    batcher.spool.close()


def test_a_torn_last_line_is_skipped_and_never_merged_with_later_lines(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    for i in range(5):
        journal.append_record(json.dumps({"i": i}))
    journal.mark_batch("b1", 0, 2)
    journal.close()
    # A crash in the middle of a write: half a record line, no newline.
    with open(_segments(tmp_path)[-1], "ab") as fh:
        fh.write(b'0badc0de r 5 {"i":')
    again = Journal(tmp_path)
    assert again.recovered.skipped_lines == 1
    assert [(o.batch_id, o.first, o.last, o.size) for o in again.recovered.open_batches] == [
        ("b1", 0, 2, 3)
    ]
    assert again.recovered.unbatched == [3, 4]
    assert again.next_seq == 5
    assert again.append_record(json.dumps({"i": "new"})) == 5  # into a new segment
    again.close()
    assert len(_segments(tmp_path)) == 2
    third = Journal(tmp_path)
    assert third.recovered.unbatched == [3, 4, 5]
    assert [json.loads(t) for _, t in third.read(3, 5)] == [{"i": 3}, {"i": 4}, {"i": "new"}]
    third.close()


def test_a_corrupt_line_in_the_middle_fails_its_checksum_and_is_skipped(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    for i in range(3):
        journal.append_record(json.dumps({"i": i}))
    journal.close()
    path = _segments(tmp_path)[0]
    lines = path.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b'"i": 1', b'"i": 7')  # flipped bits, same length
    path.write_bytes(b"\n".join(lines))
    again = Journal(tmp_path)
    assert again.recovered.skipped_lines == 1
    assert [json.loads(t) for _, t in again.read(0, 2)] == [{"i": 0}, {"i": 2}]
    again.close()


def test_a_batch_split_by_a_413_is_superseded_by_its_halves(tmp_path: Path) -> None:
    journal = Journal(tmp_path)
    for i in range(4):
        journal.append_record(json.dumps(i))
    journal.mark_batch("p", 0, 3)
    journal.mark_split("p", [("p.0", 0, 1), ("p.1", 2, 3)])
    journal.mark_done("p.0", "written")
    journal.close()
    found = Journal(tmp_path).recovered
    assert [(o.batch_id, o.first, o.last) for o in found.open_batches] == [("p.1", 2, 3)]
    assert found.unbatched == []


def test_a_restarted_batcher_resends_open_batches_under_their_ids_and_batches_the_rest(
    tmp_path: Path,
) -> None:
    def down(items: list[Any], batch_id: str) -> Delivered:
        raise NetworkError("down")

    first = Batcher("t", down, batch_size=4, interval=3600, spool_dir=tmp_path)
    for i in range(10):
        first.put(i)
    assert first.flush(10)
    open_ids = [o.batch_id for o in first._open]
    assert len(open_ids) == 3
    assert first.journal is not None
    for i in range(10, 13):  # journaled, never batched (as if killed before the cut)
        first.journal.append_record(json.dumps(i))
    _abandon(first)

    sent: list[tuple[str, list[Any]]] = []

    def up(items: list[Any], batch_id: str) -> Delivered:
        sent.append((batch_id, items))
        return Delivered(written=len(items))

    second = Batcher("t", up, batch_size=4, interval=3600, spool_dir=tmp_path)
    assert second.counts["recovered"] == 13
    wait_until(lambda: second.counts["written"] == 13)
    assert [b for b, _ in sent][:3] == open_ids
    assert sorted(x for _, items in sent for x in items) == list(range(13))
    second.close()
    third = Journal(tmp_path).recovered
    assert third.open_batches == [] and third.unbatched == []


def test_the_journal_is_compacted_as_batches_are_acknowledged(tmp_path: Path) -> None:
    def up(items: list[Any], batch_id: str) -> Delivered:
        return Delivered(written=len(items))

    batcher = Batcher("t", up, batch_size=50, interval=3600, spool_dir=tmp_path, segment_bytes=4096)
    for i in range(5000):
        batcher.put({"i": i, "pad": "x" * 40})
    assert batcher.flush(20)
    assert batcher.counts["written"] == 5000
    assert batcher.journal is not None
    # ~70 bytes a record: 350 kB were journaled in 4 kB segments; done ones are gone.
    assert batcher.journal.segment_count() <= 3
    assert sum(p.stat().st_size for p in _segments(tmp_path)) < 3 * 4096 + 200
    batcher.close()


def test_put_returns_only_once_the_item_is_in_the_journal_file(tmp_path: Path) -> None:
    def never(items: list[Any], batch_id: str) -> Delivered:
        raise AssertionError("not sent: interval is an hour")

    batcher = Batcher("t", never, batch_size=1000, interval=3600, spool_dir=tmp_path)
    batcher.put({"id": "durable"})
    assert b'{"id":"durable"}' in _segments(tmp_path)[0].read_bytes()
    _abandon(batcher)
    assert Journal(tmp_path).recovered.unbatched == [0]
