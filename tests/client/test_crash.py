"""A client process SIGKILLed at random points while its batches are in flight, again and
again on one spool directory: every record whose write() returned is stored, exactly
once (the write-ahead journal plus the server's batch_id dedupe)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from coreadmin_client import Client
from coreadmin_client.journal import Journal
from django.db import connection

from tests.client.conftest import requires, wait_until
from tests.client.relay import Relay

DATASET = {
    "key_fields": ["id"],
    "fields": {"id": {"type": "string", "required": True}, "score": {"type": "integer"}},
}

# Writes k<start>, k<start+1>, ... until killed. "a <i>" is journaled before write(i) is
# called and "d <i>" once it returned, both with one os.write on an O_APPEND file, so the
# parent knows which writes returned even though the child dies at any instruction.
# After 1000 writes it waits for the kill (its batches still going out).
CHILD = """
import os, signal, sys
from coreadmin_client import Client, RetryPolicy
url, key, spool, progress, start = sys.argv[1:6]
c = Client(url, key, retry=RetryPolicy(max_attempts=2, backoff_base=0.01, backoff_max=0.02))
w = c.batch_writer("crash", batch_size=25, interval=0.005, spool_dir=spool, replay_interval=0.05)
fd = os.open(progress, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
for i in range(int(start), int(start) + 1000):
    os.write(fd, b"a %d\\n" % i)
    w.write({"id": f"k{i}", "score": i})
    os.write(fd, b"d %d\\n" % i)
signal.pause()  # batches still going out; the kill comes
"""


def _progress(path: Path) -> tuple[set[int], set[int]]:
    attempted, returned = set(), set()
    if path.exists():
        for line in path.read_text().splitlines():
            kind, _, number = line.partition(" ")
            if number.isdigit():
                (attempted if kind == "a" else returned).add(int(number))
    return attempted, returned


def _stored_keys() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT r.key->>'id' FROM datasets_record r JOIN datasets_dataset d "
            "ON d.id = r.dataset_id WHERE d.name = 'crash'"
        )
        return [row[0] for row in cursor.fetchall()]


def _written_by_batch_ids() -> int:
    """The records the server wrote, summed over first acceptances of every batch_id: a
    record delivered twice under two ids would count twice."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum((b.response->>'written')::int), 0) FROM datasets_batch b "
            "JOIN datasets_dataset d ON d.id = b.dataset_id WHERE d.name = 'crash'"
        )
        return int(cursor.fetchone()[0])


def _server_batch_ids() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT batch_id FROM datasets_batch")
        return {row[0] for row in cursor.fetchall()}


@pytest.mark.django_db(transaction=True)
def test_random_sigkills_mid_flight_lose_and_duplicate_nothing_that_write_returned(
    relay: Relay, scraper_key: str, admin: Client, tmp_path: Path
) -> None:
    requires("/api/v1/datasets/crash/records")
    admin.request("PUT", "/api/v1/datasets/crash", json=DATASET)
    spool, progress = str(tmp_path / "spool"), tmp_path / "progress"
    rng = random.Random(8)
    start, in_flight_replayed = 0, 0
    for run in range(6):
        # Every other run the server commits but its answers are lost: those batches are
        # open in the journal when the kill comes, and already stored on the server.
        relay.drop_responses = run % 2 == 1
        seen, connections = len(_server_batch_ids()), relay.connections
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, relay.url, scraper_key, spool, str(progress), str(start)],
            stderr=subprocess.DEVNULL,
        )
        target = start + rng.randint(60, 400)
        # Killed once it wrote enough and a batch of this run reached the server (with
        # answers lost, the retried batch may be one the server already has).
        wait_until(
            lambda t=target, n=seen, c=connections: (
                max(_progress(progress)[1], default=-1) >= t
                and (
                    len(_server_batch_ids()) > n or (relay.drop_responses and relay.connections > c)
                )
            ),
            timeout=60,
        )
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL
        attempted, _ = _progress(progress)
        start = max(attempted) + 1
        relay.drop_responses = False
        left = Journal(spool)  # the journal as the kill left it (reading adds a segment)
        in_flight_replayed += len(
            {o.batch_id for o in left.recovered.open_batches} & _server_batch_ids()
        )
        left.close()
    # A last process on the same spool directory sends what the last kill left.
    with Client(relay.url, scraper_key, make_default=False) as client:
        writer = client.batch_writer("crash", spool_dir=spool, replay_interval=0.05)
        wait_until(lambda: writer.counts["spooled"] == 0 and writer.counts["pending"] == 0, 60)
        writer.close()
    attempted, returned = _progress(progress)
    stored = _stored_keys()
    assert len(stored) == len(set(stored))
    stored_ids = {int(k[1:]) for k in stored}
    in_doubt = attempted - returned  # killed inside write(): either fate is correct
    assert returned <= stored_ids, sorted(returned - stored_ids)[:10]
    assert stored_ids - returned <= in_doubt
    assert len(in_doubt) <= 6
    assert _written_by_batch_ids() == len(stored_ids)  # no record written twice
    assert in_flight_replayed > 0  # batches sent before a kill were resent under their ids
    assert not Journal(spool).recovered.open_batches
