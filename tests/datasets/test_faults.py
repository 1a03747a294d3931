"""Concurrency and fault tests against the real Postgres: concurrent batch ids, two
workers claiming at once, a connection dropped mid-batch, a Celery worker killed with
SIGKILL mid-retry. Each reconciles: submitted = written + queued + dead, exactly."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from apps.datasets.models import Batch, Record, RetryAttempt, RetryItem
from apps.datasets.services import batch_submit, retries_process_due
from coreadmin.clock import clock

from .conftest import reconcile

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


def dsn() -> str:
    s = connection.settings_dict
    return f"host={s['HOST']} port={s['PORT'] or 5432} user={s['USER']} dbname={s['NAME']}" + (
        f" password={s['PASSWORD']}" if s.get("PASSWORD") else ""
    )


def sql(query: str, params: Any = None) -> list[tuple[Any, ...]]:
    """On a connection of its own, autocommit: what another client would see."""
    with psycopg.connect(dsn(), autocommit=True) as conn:
        cur = conn.execute(query, params)
        return cur.fetchall() if cur.description else []


@contextlib.contextmanager
def trigger_on_records(body: str) -> Iterator[None]:
    """A statement-level trigger on the records table running ``body`` (PL/pgSQL)."""
    sql(
        "CREATE OR REPLACE FUNCTION datasets_test_fault() RETURNS trigger LANGUAGE plpgsql "
        f"AS $$ BEGIN {body} RETURN NULL; END $$"
    )
    sql(
        "CREATE TRIGGER datasets_test_fault AFTER INSERT OR UPDATE ON datasets_record "
        "FOR EACH STATEMENT EXECUTE FUNCTION datasets_test_fault()"
    )
    try:
        yield
    finally:
        sql("DROP TRIGGER IF EXISTS datasets_test_fault ON datasets_record")
        sql("DROP FUNCTION IF EXISTS datasets_test_fault()")


def in_threads(n: int, target: Callable[[int], Any]) -> list[Any]:
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = target(i)
        except Exception as exc:
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_concurrent_requests_with_one_batch_id_have_one_effect(posts):
    records = [{"id": f"c{i}", "score": i} for i in range(50)] + [{"id": "bad", "score": "x"}]
    with trigger_on_records("PERFORM pg_sleep(0.3);"):
        results = in_threads(
            6, lambda i: batch_submit(dataset=posts, records=records, batch_id="same")
        )
    assert all(isinstance(r, dict) for r in results), results
    assert all(r == results[0] for r in results)
    assert (results[0]["written"], results[0]["queued"]) == (50, 1)
    assert Batch.objects.count() == 1
    assert RetryItem.objects.count() == 1  # queued once, not six times
    assert reconcile(posts, 51) == {"stored": 50, "pending": 1, "dead": 0}


def test_two_workers_claiming_at_once_never_process_an_item_twice(posts, subreddits):
    batch_submit(
        dataset=posts,
        records=[{"id": f"w{i}", "subreddit": "late"} for i in range(120)],
        batch_id=None,
    )
    batch_submit(dataset=subreddits, records=[{"name": "late"}], batch_id=None)
    RetryItem.objects.update(next_attempt_at=clock.now() - dt.timedelta(seconds=1))

    def worker(_: int) -> int:
        claimed = 0
        while True:
            counts = retries_process_due(limit=15)
            if counts["claimed"] == 0:
                return claimed
            claimed += counts["claimed"]

    with trigger_on_records("PERFORM pg_sleep(0.05);"):
        claimed = in_threads(2, worker)
    assert all(isinstance(c, int) for c in claimed), claimed
    assert sum(claimed) == 120
    assert min(claimed) > 0  # both really worked
    per_item = Counter(RetryAttempt.objects.values_list("item_id", flat=True))
    assert set(per_item.values()) == {2}  # the first failure and exactly one retry
    assert RetryItem.objects.filter(status="resolved").count() == 120
    reconcile(posts, 120)


def test_a_connection_dropped_mid_batch_answers_an_error_shows_nothing_and_a_resend_writes_once(
    scraper_api, posts
):
    records = [{"id": f"d{i}", "score": i} for i in range(30)] + [{"id": "q", "score": "x"}]
    body = {"batch_id": "drop-1", "records": records}
    url = "/api/v1/datasets/posts/records"
    with trigger_on_records("PERFORM pg_terminate_backend(pg_backend_pid());"):
        response = scraper_api.post(url, body)
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "database_unavailable"
    # Nothing of that batch is visible to anyone.
    assert sql("SELECT count(*) FROM datasets_record")[0][0] == 0
    assert sql("SELECT count(*) FROM datasets_retryitem")[0][0] == 0
    assert sql("SELECT count(*) FROM datasets_batch")[0][0] == 0
    again = scraper_api.post(url, body)
    assert again.status_code == 200
    assert (again.json()["written"], again.json()["queued"]) == (30, 1)
    replay = scraper_api.post(url, body)
    assert replay.json() == again.json()
    assert reconcile(posts, 31) == {"stored": 30, "pending": 1, "dead": 0}


def _worker_env() -> dict[str, str]:
    s = connection.settings_dict
    url = f"postgres://{s['USER']}@{s['HOST']}:{s['PORT'] or 5432}/{s['NAME']}"
    return {
        **os.environ,
        "COREADMIN_ENV": "test",
        "DATABASE_URL": url,
        "REDIS_URL": settings.REDIS_URL,
        "PYTEST_XDIST_WORKER": os.environ.get("PYTEST_XDIST_WORKER", "main"),
        "LOG_LEVEL": "WARNING",
    }


def _wait(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.mark.slow
def test_a_celery_worker_killed_with_sigkill_mid_retry_loses_nothing(posts, subreddits):
    from apps.datasets.tasks import retry_due
    from coreadmin.celery import app as celery_app

    n = 40
    batch_submit(
        dataset=posts,
        records=[{"id": f"k{i}", "subreddit": "soon"} for i in range(n)],
        batch_id=None,
    )
    batch_submit(dataset=subreddits, records=[{"name": "soon"}], batch_id=None)
    RetryItem.objects.update(next_attempt_at=clock.now() - dt.timedelta(seconds=1))
    db = connection.settings_dict["NAME"]
    # So the server notices the dead client while the trigger still sleeps.
    sql(f"ALTER DATABASE \"{db}\" SET client_connection_check_interval = '100ms'")

    def locked() -> int:
        with psycopg.connect(dsn()) as conn:
            free = conn.execute(
                "SELECT count(*) FROM (SELECT id FROM datasets_retryitem "
                "WHERE status = 'pending' FOR UPDATE SKIP LOCKED) t"
            ).fetchone()
            return n - (free[0] if free else 0)

    # Earlier tests in this xdist worker may have left messages in its broker queue; the
    # solo worker would run those first.
    celery_app.control.purge()
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "coreadmin",
            "worker",
            "--pool=solo",
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
            "-l",
            "WARNING",
        ],
        cwd=ROOT,
        env=_worker_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        with trigger_on_records("PERFORM pg_sleep(60);"):
            retry_due.delay()
            _wait(lambda: locked() == n or worker.poll() is not None, 60, "the worker's claim")
            assert worker.poll() is None, worker.stderr.read().decode()[-2000:]
            # The worker is mid-retry: it holds every item and has written (uncommitted)
            # their records. Kill it without a chance to clean up.
            worker.send_signal(signal.SIGKILL)
            worker.wait(10)
            _wait(lambda: locked() == 0, 30, "the dead worker's transaction to end")
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(10)
        sql(f'ALTER DATABASE "{db}" RESET client_connection_check_interval')

    assert Record.objects.filter(dataset=posts).count() == 0  # its writes died with it
    items = RetryItem.objects.all()
    assert all(i.status == "pending" and i.attempts == 1 for i in items)
    assert RetryAttempt.objects.count() == n  # the killed attempt left nothing half-done
    reconcile(posts, n)

    counts = retries_process_due()  # the next worker takes them
    assert counts == {"claimed": n, "resolved": n, "failed": 0, "dead": 0}
    assert reconcile(posts, n) == {"stored": n, "pending": 0, "dead": 0}
    assert set(Counter(RetryAttempt.objects.values_list("item_id", flat=True)).values()) == {2}


def test_concurrent_batches_over_the_same_keys_in_opposite_orders_all_succeed(posts):
    keys = [f"s{i:03d}" for i in range(300)]

    def send(i: int) -> dict[str, Any]:
        order = keys if i % 2 == 0 else list(reversed(keys))
        return batch_submit(
            dataset=posts, records=[{"id": k, "score": i} for k in order], batch_id=None
        )

    with trigger_on_records("PERFORM pg_sleep(0.1);"):
        results = in_threads(4, send)
    assert all(isinstance(r, dict) and r["written"] == 300 for r in results), results
    assert RetryItem.objects.count() == 0
    assert reconcile(posts, 300)["stored"] == 300


def test_an_operator_retry_of_an_item_a_worker_holds_is_refused_not_doubled(admin_api, posts):
    batch_submit(dataset=posts, records=[{"id": "h", "score": "x"}], batch_id=None)
    item = RetryItem.objects.get()
    with psycopg.connect(dsn()) as worker:  # a worker mid-retry holds the row lock
        worker.execute("SELECT id FROM datasets_retryitem WHERE id = %s FOR UPDATE", [item.pk])
        response = admin_api.post(f"/api/v1/retries/{item.pk}/retry")
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "retry_not_allowed"
    assert RetryAttempt.objects.filter(item=item).count() == 1


def _backends_of_this_database(where: str) -> int:
    return sql(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND " + where
    )[0][0]


def test_deleting_a_dataset_waits_for_a_batch_being_written_and_leaves_no_record_behind(posts):
    from apps.datasets.services import dataset_delete

    records = [{"id": f"x{i}", "score": i} for i in range(40)]
    outcome: dict[str, Any] = {}

    def write() -> None:
        try:
            outcome["response"] = batch_submit(dataset=posts, records=records, batch_id="b1")
        finally:
            connection.close()

    with trigger_on_records("PERFORM pg_sleep(0.5);"):
        writer = threading.Thread(target=write)
        writer.start()
        _wait(lambda: _backends_of_this_database("wait_event = 'PgSleep'") == 1, 30, "the batch")
        assert dataset_delete(dataset_id=posts.pk, actor="test")  # waits for the batch
        writer.join(30)
    assert outcome["response"]["written"] == 40  # the batch committed first...
    # ...and the delete that followed removed its records: nothing is orphaned.
    assert sql("SELECT count(*) FROM datasets_record WHERE dataset_id = %s", [posts.pk]) == [(0,)]
    assert sql("SELECT count(*) FROM datasets_batch WHERE dataset_id = %s", [posts.pk]) == [(0,)]


def test_a_batch_arriving_while_its_dataset_is_deleted_writes_nothing_and_is_a_404(posts):
    from coreadmin.errors import NotFound

    outcome: dict[str, Any] = {}

    def write() -> None:
        try:
            outcome["response"] = batch_submit(
                dataset=posts, records=[{"id": "late", "score": 1}], batch_id=None
            )
        except Exception as exc:
            outcome["error"] = exc
        finally:
            connection.close()

    with psycopg.connect(dsn()) as deleter:  # a delete in progress holds the dataset row
        deleter.execute("SELECT id FROM datasets_dataset WHERE id = %s FOR UPDATE", [posts.pk])
        writer = threading.Thread(target=write)
        writer.start()
        _wait(lambda: _backends_of_this_database("wait_event_type = 'Lock'") == 1, 30, "a wait")
        deleter.execute("DELETE FROM datasets_dataset WHERE id = %s", [posts.pk])
        deleter.commit()
        writer.join(30)
    assert isinstance(outcome.get("error"), NotFound), outcome
    assert sql("SELECT count(*) FROM datasets_record WHERE dataset_id = %s", [posts.pk]) == [(0,)]


def test_a_record_refused_for_another_reason_is_found_by_bisection_and_fails_alone(posts):
    sql(
        "CREATE OR REPLACE FUNCTION datasets_test_refuse() RETURNS trigger LANGUAGE plpgsql "
        "AS $$ BEGIN IF NEW.key->>'id' = 'r17' THEN RAISE check_violation USING "
        "MESSAGE = 'refused by the test'; END IF; RETURN NEW; END $$"
    )
    sql(
        "CREATE TRIGGER datasets_test_refuse BEFORE INSERT ON datasets_record "
        "FOR EACH ROW EXECUTE FUNCTION datasets_test_refuse()"
    )
    try:
        records = [{"id": f"r{i}", "score": i} for i in range(40)]
        response = batch_submit(dataset=posts, records=records, batch_id=None)
    finally:
        sql("DROP TRIGGER IF EXISTS datasets_test_refuse ON datasets_record")
        sql("DROP FUNCTION IF EXISTS datasets_test_refuse()")
    assert (response["written"], response["queued"]) == (39, 1)
    (failure,) = response["failures"]
    assert (failure["index"], failure["code"]) == (17, "write_error")
    assert "refused by the test" in failure["message"]
    assert reconcile(posts, 40) == {"stored": 39, "pending": 1, "dead": 0}
