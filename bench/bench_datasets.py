"""Batch writes: records/s through POST /api/v1/datasets/{name}/records (1,000-record
batches, 4 concurrent clients, 10 fields a record) next to, in the same run, into the
same table and with the same 4-way concurrency (4 processes, a connection each):

- raw psycopg COPY of the same rows (the ceiling on this machine),
- Django bulk_create (batches of 1,000),
- psycopg executemany (batches of 1,000, a transaction each),
- row-by-row INSERT, a transaction a row (what scrapers do today),
- the write path itself without HTTP (map + COPY into staging + upsert), and
- one INSERT ... SELECT FROM unnest(...) ON CONFLICT, the alternative to staging.

Every figure is the median of RUNS runs (interleaved, so machine load hits each alike).
Targets: API >= 30% of raw COPY and >= 50,000 records/s.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing as mp
import os
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson

from bench.harness import Scenario, bench_server, measure

BATCH = 1000
CLIENTS = 4
RUNS = 3
FIELDS = {
    "id": {"type": "string", "required": True},
    "title": {"type": "string"},
    "author": {"type": "string"},
    "subreddit": {"type": "string"},
    "score": {"type": "integer"},
    "ratio": {"type": "float"},
    "comments": {"type": "integer"},
    "over18": {"type": "boolean", "source": "over_18"},
    "created": {"type": "datetime"},
    "flair": {"type": "json"},
}
INSERT_SQL = (
    "INSERT INTO datasets_record (dataset_id, key, data, created_at, updated_at) "
    "VALUES (%s, %s::jsonb, %s::jsonb, %s, %s)"
)
COPY_SQL = "COPY datasets_record (dataset_id, key, data, created_at, updated_at) FROM STDIN"
UNNEST_SQL = (
    "INSERT INTO datasets_record (dataset_id, key, data, created_at, updated_at) "
    "SELECT %s, k, d, %s, %s FROM unnest(%s::jsonb[], %s::jsonb[]) AS t(k, d) "
    "ON CONFLICT (dataset_id, key) DO UPDATE "
    "SET data = EXCLUDED.data, updated_at = EXCLUDED.updated_at"
)


def make_record(n: int, run: str) -> dict[str, Any]:
    return {
        "id": f"{run}-{n}",
        "title": f"Post number {n} about something mildly interesting",
        "author": f"user{n % 5000}",
        "subreddit": f"sub{n % 200}",
        "score": n % 10_000,
        "ratio": (n % 100) / 100,
        "comments": n % 321,
        "over_18": n % 17 == 0,
        "created": "2026-09-21T14:13:20+00:00",
        "flair": {"text": "discussion", "color": "#ff4500"},
    }


def stored_row(record: dict[str, Any]) -> tuple[str, str]:
    data = dict(record)
    data["over18"] = data.pop("over_18")
    return orjson.dumps({"id": record["id"]}).decode(), orjson.dumps(data).decode()


def rate(label: str, runs: list[float]) -> float:
    value = statistics.median(runs)
    spread = ", ".join(f"{r:,.0f}" for r in runs)
    print(f"{label:<46} {value:>9,.0f} records/s  (median of {len(runs)}: {spread})", flush=True)
    return value


# Each alternative: prepare(client, tag) builds its input outside the timing; work(input)
# writes it on this process's own connection and returns the rows written.
_ctx: dict[str, Any] = {}


def _child(method: str, client: int, tag: str, barrier: Any, out: Any) -> None:
    from django.db import connection

    connection.close()  # never share the parent's socket
    prepare, work = METHODS[method]
    prepared = prepare(client, tag)
    barrier.wait()
    started = time.perf_counter()
    rows = work(prepared)
    out.put((rows, time.perf_counter() - started))
    connection.close()


def parallel(method: str, tag: str) -> float:
    """Runs one alternative in CLIENTS processes at once: total rows / slowest time."""
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(CLIENTS), ctx.Queue()
    procs = [
        ctx.Process(target=_child, args=(method, c, f"{tag}c{c}", barrier, out))
        for c in range(CLIENTS)
    ]
    for proc in procs:
        proc.start()
    results = [out.get() for _ in procs]
    for proc in procs:
        proc.join()
    return sum(r for r, _ in results) / max(s for _, s in results)


def _pg() -> Any:
    from django.db import connection

    connection.ensure_connection()
    return connection.connection


def _rows(n: int) -> Callable[[int, str], list[tuple[str, str]]]:
    return lambda client, tag: [stored_row(make_record(k, tag)) for k in range(n)]


def _copy(rows: list[tuple[str, str]]) -> int:
    pg, now, pk = _pg(), _ctx["now"], _ctx["dataset_id"]
    with pg.cursor() as cur, cur.copy(COPY_SQL) as copy:
        for key, value in rows:
            copy.write_row((pk, key, value, now, now))
    pg.commit()
    return len(rows)


def _bulk_create(rows: list[tuple[str, str]]) -> int:
    from django.db import transaction

    from apps.datasets.models import Record

    now, pk = _ctx["now"], _ctx["dataset_id"]
    objs = [
        Record(
            dataset_id=pk, key=orjson.loads(k), data=orjson.loads(v), created_at=now, updated_at=now
        )
        for k, v in rows
    ]
    for i in range(0, len(objs), BATCH):
        with transaction.atomic():
            Record.objects.bulk_create(objs[i : i + BATCH])
    return len(objs)


def _executemany(rows: list[tuple[str, str]]) -> int:
    pg, now, pk = _pg(), _ctx["now"], _ctx["dataset_id"]
    for i in range(0, len(rows), BATCH):
        with pg.cursor() as cur:
            cur.executemany(INSERT_SQL, [(pk, k, v, now, now) for k, v in rows[i : i + BATCH]])
        pg.commit()
    return len(rows)


def _row_by_row(rows: list[tuple[str, str]]) -> int:
    pg, now, pk = _pg(), _ctx["now"], _ctx["dataset_id"]
    started, done = time.perf_counter(), 0
    with pg.cursor() as cur:
        for k, v in rows:
            cur.execute(INSERT_SQL, (pk, k, v, now, now))
            pg.commit()
            done += 1
            if time.perf_counter() - started > 3.0:
                break
    return done


def _records(n: int) -> Callable[[int, str], list[list[dict[str, Any]]]]:
    return lambda client, tag: [
        [make_record(b * BATCH + k, tag) for k in range(BATCH)] for b in range(n // BATCH)
    ]


def _write_path(batches: list[list[dict[str, Any]]]) -> int:
    from django.db import transaction

    from apps.datasets.models import Dataset
    from apps.datasets.services import records_write

    dataset = Dataset.objects.get(pk=_ctx["dataset_id"])
    for records in batches:
        with transaction.atomic():
            assert not records_write(dataset=dataset, records=records, now=_ctx["now"]).failures
    return sum(len(b) for b in batches)


def _unnest(rows: list[tuple[str, str]]) -> int:
    pg, now, pk = _pg(), _ctx["now"], _ctx["dataset_id"]
    for i in range(0, len(rows), BATCH):
        chunk = rows[i : i + BATCH]
        with pg.cursor() as cur:
            cur.execute(UNNEST_SQL, (pk, now, now, [k for k, _ in chunk], [v for _, v in chunk]))
        pg.commit()
    return len(rows)


METHODS: dict[str, tuple[Callable[[int, str], Any], Callable[[Any], int]]] = {
    "copy": (_rows(25_000), _copy),
    "orm": (_rows(5_000), _bulk_create),
    "many": (_rows(5_000), _executemany),
    "row": (_rows(20_000), _row_by_row),
    "wp": (_records(10_000), _write_path),
    "unnest": (_rows(10_000), _unnest),
}
LABELS = {
    "copy": "raw psycopg COPY (ceiling)",
    "orm": "Django bulk_create (1,000 a batch)",
    "many": "psycopg executemany (1,000 a batch)",
    "row": "row-by-row INSERT, a commit each",
    "wp": "write path, no HTTP (map+COPY+upsert)",
    "unnest": "unnest INSERT ... ON CONFLICT (no mapping)",
}


def _setup_django(env: dict[str, str]) -> None:
    for name in (
        "DATABASE_URL",
        "REDIS_URL",
        "REDIS_KEY_PREFIX",
        "SECRET_KEY",
        "ENCRYPTION_KEYS",
        "ALLOWED_HOSTS",
        "SECURE_SSL_REDIRECT",
        "LOG_LEVEL",
    ):
        os.environ[name] = env[name]
    os.environ["COREADMIN_ENV"] = "production"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coreadmin.settings")
    import django

    django.setup()


def main() -> None:
    tag = uuid.uuid4().hex[:8]
    name = f"bench_posts_{tag}"
    with bench_server() as server:
        admin, scraper = server.api_key("admin"), server.api_key("scraper")
        status, body = server.request(
            "PUT", f"/api/v1/datasets/{name}", {"key_fields": ["id"], "fields": FIELDS}, admin
        )
        assert status in (200, 201), body
        _setup_django(server.env)
        from django.db import connection

        from apps.datasets.models import Dataset

        dataset = Dataset.objects.get(name=name)
        _ctx.update(now=dt.datetime.now(dt.UTC), dataset_id=dataset.pk)

        def batch(i: int) -> list[tuple[str, str, bytes | None]]:
            records = [make_record(i * BATCH + j, f"api{tag}") for j in range(BATCH)]
            path = f"/api/v1/datasets/{name}/records"
            return [("POST", path, orjson.dumps({"records": records}))]

        scenario = Scenario(
            headers={"Content-Type": "application/json", "X-API-Key": scraper},
            make_requests=batch,
        )
        figures: dict[str, list[float]] = {"api": [], **{m: [] for m in METHODS}}
        statuses: dict[int, int] = {}
        connection.close()
        load_warm = measure(server, scenario, runs=1, concurrency=CLIENTS, duration=2.0)
        del load_warm
        for run in range(RUNS):  # interleaved, so load on the machine hits each alike
            api = measure(server, scenario, runs=1, concurrency=CLIENTS, duration=5.0, warmup=0)
            figures["api"].append(api.runs[0].iterations * BATCH / api.runs[0].seconds)
            for status_code, n in api.runs[0].statuses.items():
                statuses[status_code] = statuses.get(status_code, 0) + n
            for method in METHODS:
                figures[method].append(parallel(method, f"{method}{tag}r{run}"))

        print(f"API statuses {statuses}")
        print(f"{CLIENTS} concurrent clients / processes in every row:")
        api_rate = rate("API, 1,000-record batches", figures["api"])
        values = {m: rate(LABELS[m], figures[m]) for m in METHODS}
        share = api_rate / values["copy"]
        print()
        print(
            f"API / raw COPY: {share:.0%} (target >= 30%) -> "
            f"{'meets' if share >= 0.30 else 'MISSES'} target"
        )
        print(
            f"API records/s: {api_rate:,.0f} (target >= 50,000) -> "
            f"{'meets' if api_rate >= 50_000 else 'MISSES'} target"
        )
        print(
            f"API / bulk_create: {api_rate / values['orm']:.1f}x; "
            f"API / executemany: {api_rate / values['many']:.1f}x; "
            f"API / row-by-row: {api_rate / values['row']:,.0f}x"
        )
        print(f"staged COPY write path / unnest upsert: {values['wp'] / values['unnest']:.2f}x")
        with connection.cursor() as cursor:  # leave the bench table as we found it
            cursor.execute("DELETE FROM datasets_record WHERE dataset_id = %s", [dataset.pk])
            cursor.execute("DELETE FROM datasets_recordcount WHERE dataset_id = %s", [dataset.pk])
            cursor.execute("DELETE FROM datasets_dataset WHERE id = %s", [dataset.pk])
