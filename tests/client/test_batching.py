"""The batching mechanism (BatchWriter, logs and spans all use it) against the live server.

Its send here is a real authenticated call (GET /api/v1/whoami) so these tests exercise
batching, backpressure, spooling and replay over real HTTP whatever endpoints exist."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest
from coreadmin_client import BackpressureError, Batcher, Client, Delivered

from tests.client.conftest import FAST, wait_until
from tests.client.relay import Relay


class Sink:
    """A send function that acknowledges a batch once the server answered."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.batches: list[tuple[str, int]] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, items: list[Any], batch_id: str) -> Delivered:
        self.gate.wait(30)
        self.client.whoami()
        self.batches.append((batch_id, len(items)))
        return Delivered(written=len(items))


def _fates_add_up(counts: dict[str, int]) -> bool:
    fates = ("pending", "written", "queued", "spooled", "rejected", "dead")
    return counts["submitted"] + counts["recovered"] == sum(counts[f] for f in fates)


def test_a_full_batch_is_sent_without_waiting_for_the_interval(client: Client) -> None:
    sink = Sink(client)
    batcher = Batcher("t", sink, batch_size=10, interval=3600)
    for i in range(25):
        batcher.put({"i": i})
    wait_until(lambda: batcher.counts["written"] == 20)
    assert batcher.flush(10)
    assert [n for _, n in sink.batches] == [10, 10, 5]
    assert batcher.counts["written"] == 25 and _fates_add_up(batcher.counts)
    batcher.close()


def test_a_partial_batch_is_sent_when_the_interval_passes(client: Client) -> None:
    sink = Sink(client)
    batcher = Batcher("t", sink, batch_size=1000, interval=0.05)
    for i in range(3):
        batcher.put(i)
    wait_until(lambda: batcher.counts["written"] == 3)
    assert sink.batches[0][1] == 3
    batcher.close()


def test_a_full_queue_raises_backpressure_instead_of_dropping(client: Client) -> None:
    sink = Sink(client)
    sink.gate.clear()  # the server is slow: the first batch is in flight, the rest wait
    batcher = Batcher("t", sink, batch_size=2, interval=3600, max_queue=4, overflow="raise")
    batcher.put(0)
    batcher.put(1)
    wait_until(lambda: batcher.counts["pending"] == 2 and not batcher._queue)
    for i in range(4):
        batcher.put(i)
    with pytest.raises(BackpressureError):
        batcher.put("one too many")
    assert batcher.try_put("also too many") is False
    sink.gate.set()
    assert batcher.flush(10)
    assert batcher.counts["submitted"] == 6 and batcher.counts["written"] == 6
    batcher.close()


def test_a_full_queue_blocks_the_writer_until_there_is_room(client: Client) -> None:
    sink = Sink(client)
    sink.gate.clear()
    batcher = Batcher("t", sink, batch_size=2, interval=3600, max_queue=2, overflow="block")
    for i in range(4):  # two in flight, two queued
        batcher.put(i)
        if i == 1:
            wait_until(lambda: not batcher._queue)
    done = threading.Event()
    writer = threading.Thread(target=lambda: (batcher.put("blocked"), done.set()))
    writer.start()
    assert not done.wait(0.2)  # still blocked: nothing was dropped or refused
    sink.gate.set()
    assert done.wait(10)
    writer.join()
    assert batcher.flush(10) and batcher.counts["written"] == 5
    batcher.close()


def test_blocking_with_a_timeout_raises_when_no_room_appears(client: Client) -> None:
    sink = Sink(client)
    sink.gate.clear()
    batcher = Batcher(
        "t", sink, batch_size=1, interval=3600, max_queue=1, overflow="block", block_timeout=0.05
    )
    batcher.put(0)
    wait_until(lambda: not batcher._queue)
    batcher.put(1)
    with pytest.raises(BackpressureError):
        batcher.put(2)
    sink.gate.set()
    batcher.close()
    assert batcher.counts["written"] == 2 and batcher.counts["submitted"] == 2


def test_an_outage_spools_to_disk_and_recovery_replays_under_the_same_batch_ids(
    relay: Relay, scraper_key: str, tmp_path: Path
) -> None:
    with Client(relay.url, scraper_key, retry=FAST, make_default=False) as client:
        sink = Sink(client)
        batcher = Batcher(
            "t", sink, batch_size=10, interval=3600, spool_dir=tmp_path, replay_interval=0.05
        )
        relay.stop()
        for i in range(30):
            batcher.put({"i": i})
        assert batcher.flush(20)
        assert batcher.counts["spooled"] == 30 and batcher.counts["written"] == 0
        spooled_ids = sorted(o.batch_id for o in batcher._open)
        assert len(spooled_ids) == 3
        relay.start()
        wait_until(lambda: batcher.counts["written"] == 30)
        assert batcher.counts["spooled"] == 0 and not batcher._open
        assert sorted(b for b, _ in sink.batches) == spooled_ids
        assert _fates_add_up(batcher.counts)
        batcher.close()


def test_a_batch_the_server_refuses_for_good_is_counted_rejected_and_kept(
    client: Client, tmp_path: Path
) -> None:
    def send(items: list[Any], batch_id: str) -> Delivered:
        client.request("GET", "/api/v1/no-such-endpoint")
        return Delivered(written=len(items))

    batcher = Batcher("t", send, batch_size=5, interval=3600, spool_dir=tmp_path)
    for i in range(5):
        batcher.put({"i": i})
    assert batcher.flush(10)
    assert batcher.counts["rejected"] == 5 and batcher.counts["spooled"] == 0
    kept = (tmp_path / "rejected.jsonl").read_text().splitlines()
    assert [json.loads(line)["item"]["i"] for line in kept] == [0, 1, 2, 3, 4]
    batcher.close()


def test_without_a_spool_an_outage_counts_items_dead_never_silently(
    relay: Relay, scraper_key: str
) -> None:
    relay.stop()
    with Client(relay.url, scraper_key, retry=FAST, make_default=False) as client:
        batcher = Batcher("t", Sink(client), batch_size=3, interval=3600)
        for i in range(3):
            batcher.put(i)
        assert batcher.flush(10)
        assert batcher.counts["dead"] == 3 and _fates_add_up(batcher.counts)
        batcher.close()


def test_overflow_spool_never_blocks_and_keeps_the_overflow_on_disk(
    client: Client, tmp_path: Path
) -> None:
    sink = Sink(client)
    sink.gate.clear()
    batcher = Batcher(
        "t", sink, batch_size=1, interval=3600, max_queue=1, overflow="spool", spool_dir=tmp_path
    )
    batcher.put(0)
    wait_until(lambda: not batcher._queue)
    batcher.put(1)
    for i in range(2, 10):
        batcher.put(i)  # the queue is full: straight to disk, immediately
    assert batcher.counts["spooled"] == 8
    sink.gate.set()
    wait_until(lambda: batcher.counts["written"] == 10)
    assert batcher.counts["spooled"] == 0
    batcher.close()


def test_interpreter_exit_flushes_what_is_still_queued(tmp_path: Path) -> None:
    """A real process writes and exits without close(): the atexit flush must deliver or
    keep every record (here the server is a closed port, so they must stay in the
    journal, as open batches the next process on the directory sends)."""
    script = f"""
import socket
from coreadmin_client import Batcher, Client, Delivered, RetryPolicy
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
c = Client(f"http://127.0.0.1:{{port}}", "k", retry=RetryPolicy(max_attempts=1))
def send(items, batch_id):
    c.whoami()
    return Delivered(written=len(items))
b = Batcher("exit", send, batch_size=1000, interval=3600, spool_dir={str(tmp_path)!r})
for i in range(42):
    b.put({{"i": i}})
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    got: list[Any] = []

    def collect(items: list[Any], batch_id: str) -> Delivered:
        got.extend(items)
        return Delivered(written=len(items))

    batcher = Batcher("next", collect, batch_size=1000, interval=3600, spool_dir=tmp_path)
    assert batcher.counts["recovered"] == 42
    wait_until(lambda: len(got) >= 42)  # the background thread replays at start-up
    assert sorted(item["i"] for item in got) == list(range(42))
    batcher.close()
