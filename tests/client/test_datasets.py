"""BatchWriter against the live datasets endpoint: exact reconciliation of what was
submitted against what the server stored, through outages, lost answers and restarts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from coreadmin_client import Client
from coreadmin_client.journal import Journal

from tests.client.conftest import FAST, requires, run_async, wait_until
from tests.client.relay import Relay

DATASET = {
    "key_fields": ["id"],
    "fields": {"id": {"type": "string", "required": True}, "score": {"type": "integer"}},
}


@pytest.fixture(autouse=True)
def posts(admin: Client) -> str:
    requires("/api/v1/datasets/posts/records")
    admin.request("PUT", "/api/v1/datasets/posts", json=DATASET)
    return "posts"


def stored(admin: Client) -> int:
    return int(admin.request("GET", "/api/v1/datasets/posts/records", params={"limit": 1})["count"])


def test_written_records_are_stored_and_counted(client: Client, admin: Client, tmp_path: Path):
    with client.batch_writer("posts", batch_size=20, spool_dir=tmp_path) as writer:
        writer.write_many({"id": f"p{i}", "score": i} for i in range(50))
        assert writer.flush(20)
        assert writer.counts["written"] == 50 and writer.counts["submitted"] == 50
    assert stored(admin) == 50


def test_a_record_the_server_cannot_write_is_counted_queued(
    client: Client, admin: Client, tmp_path: Path
) -> None:
    with client.batch_writer("posts", spool_dir=tmp_path) as writer:
        writer.write({"id": "ok", "score": 1})
        writer.write({"score": "not a number"})
        writer.flush(20)
        assert writer.counts["written"] == 1 and writer.counts["queued"] == 1
        assert writer.last_failures[0]["index"] == 1
    assert stored(admin) == 1


def test_async_writes_are_stored(client: Client, admin: Client, tmp_path: Path) -> None:
    async def main() -> dict[str, int]:
        async with client.batch_writer("posts", spool_dir=tmp_path) as writer:
            for i in range(10):
                await writer.awrite({"id": f"a{i}", "score": i})
            await writer.aflush(20)
            return writer.counts

    assert run_async(main())["written"] == 10
    assert stored(admin) == 10


def test_the_server_stopping_mid_run_loses_and_duplicates_nothing(
    relay: Relay, scraper_key: str, admin: Client, tmp_path: Path
) -> None:
    with Client(relay.url, scraper_key, retry=FAST, make_default=False) as client:
        writer = client.batch_writer(
            "posts", batch_size=25, interval=0.02, spool_dir=tmp_path, replay_interval=0.05
        )
        writer.write_many({"id": f"r{i}", "score": i} for i in range(100))
        writer.flush(20)
        relay.stop()
        writer.write_many({"id": f"r{i}", "score": i} for i in range(100, 200))
        writer.flush(20)
        assert writer.counts["spooled"] == 100
        relay.start()
        writer.write_many({"id": f"r{i}", "score": i} for i in range(200, 300))
        wait_until(lambda: writer.counts["written"] == 300)
        writer.close()
        assert writer.counts | {"pending": 0} == {
            "submitted": 300,
            "recovered": 0,
            "written": 300,
            "queued": 0,
            "spooled": 0,
            "rejected": 0,
            "dead": 0,
            "pending": 0,
        }
    assert stored(admin) == 300


def test_answers_lost_on_the_way_back_are_retried_under_one_batch_id_without_duplicates(
    relay: Relay, scraper_key: str, admin: Client, tmp_path: Path
) -> None:
    with Client(relay.url, scraper_key, retry=FAST, make_default=False) as client:
        writer = client.batch_writer(
            "posts", batch_size=10, spool_dir=tmp_path, replay_interval=0.05
        )
        relay.drop_responses = True  # the server commits, the client never hears back
        writer.write_many({"id": f"l{i}", "score": i} for i in range(10))
        writer.flush(20)
        assert writer.counts["spooled"] == 10
        assert stored(admin) == 10  # it was written the first time
        relay.drop_responses = False
        wait_until(lambda: writer.counts["written"] == 10)
        writer.close()
    assert stored(admin) == 10


CHILD = """
import json, os, signal, sys
from coreadmin_client import Client, RetryPolicy
url, key, spool, start, n, mode = sys.argv[1:7]
c = Client(url, key, retry=RetryPolicy(max_attempts=2, backoff_base=0.01))
w = c.batch_writer("posts", batch_size=40, interval=0.02, spool_dir=spool, replay_interval=0.05)
if mode == "write":
    for i in range(int(start), int(start) + int(n)):
        w.write({"id": f"k{i}", "score": i})
    w.flush(30)
    print(json.dumps(w.counts), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no atexit, no close: a crash
else:
    import time
    deadline = time.monotonic() + 30
    while w.counts["spooled"] and time.monotonic() < deadline:
        w.replay()
    w.close()
    print(json.dumps(w.counts), flush=True)
"""


def test_a_killed_client_process_replays_its_spool_after_restart_exactly_once(
    relay: Relay, scraper_key: str, admin: Client, tmp_path: Path
) -> None:
    spool = str(tmp_path / "spool")

    def child(mode: str, start: int, n: int) -> subprocess.CompletedProcess[str]:
        args = [relay.url, scraper_key, spool, str(start), str(n), mode]
        return subprocess.run(
            [sys.executable, "-c", CHILD, *args], capture_output=True, text=True, timeout=120
        )

    first = child("write", 0, 120)  # server up: written
    assert first.returncode == -signal.SIGKILL
    assert json.loads(first.stdout)["written"] == 120
    relay.stop()
    second = child("write", 120, 200)  # server down: spooled, then the process dies
    assert second.returncode == -signal.SIGKILL
    assert json.loads(second.stdout)["spooled"] == 200
    assert stored(admin) == 120
    relay.start()
    third = child("replay", 0, 0)
    assert third.returncode == 0, third.stderr
    counts = json.loads(third.stdout)
    assert counts["written"] == 200 and counts["spooled"] == 0
    assert stored(admin) == 320 == 120 + 200
    left = Journal(spool).recovered  # nothing open, nothing unbatched
    assert left.open_batches == [] and left.unbatched == []
    assert os.path.exists(spool)


def test_a_batch_over_the_servers_maximum_is_halved_until_it_fits(
    client: Client, admin: Client, tmp_path: Path, settings: Any
) -> None:
    settings.DATASETS_MAX_BATCH_RECORDS = 30
    with client.batch_writer("posts", batch_size=100, interval=3600, spool_dir=tmp_path) as w:
        w.write_many({"id": f"h{i}", "score": i} for i in range(100))
        assert w.flush(20)
        assert w.counts["written"] == 100 and w.counts["rejected"] == 0
        assert w._batcher.batch_size <= 30
    assert stored(admin) == 100
