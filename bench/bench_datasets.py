"""Batch writes: records/s through POST /api/v1/datasets/{name}/records (1,000-record
batches, 4 concurrent clients, 10 fields a record) next to, in the same run, into the
same table and with the same 4-way concurrency (4 processes, a connection each):

- raw psycopg COPY of the same rows (the ceiling on this machine),
- Django bulk_create (batches of 1,000),
- psycopg executemany (batches of 1,000, a transaction each),
- row-by-row INSERT, a transaction a row (what scrapers do today),
- the write path itself without HTTP (map + COPY into staging + upsert),
- the staged COPY + upsert alone (the write path's SQL on pre-encoded rows: the
  database's share of the work, the ceiling of this design on this machine), and
- one INSERT ... SELECT FROM unnest(...) ON CONFLICT, the alternative to staging.

Request bodies are encoded once (a template whose ids get a per-request tag by one
bytes.replace), so the load generator's JSON encoding does not compete with the server
for the 2 cores. Every figure is the median of RUNS runs (interleaved, so machine load
hits each alike); the API rows also report the machine's CPU per 1,000 records.

Then "one bad record never slows its batch": the same API load with batches holding one
record Postgres refuses (a key too large for the index: write_error) and with 10 records
failing validation, next to clean batches, in the same run.
Targets: API >= 30% of raw COPY and >= 50,000 records/s.
"""

from __future__ import annotations

import base64
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


def _staged(n: int) -> Callable[[int, str], list[list[bytes]]]:
    def prepare(client: int, tag: str) -> list[list[bytes]]:
        rows = [stored_row(make_record(k, tag))[1].encode() for k in range(n)]
        return [sorted(rows[i : i + BATCH]) for i in range(0, n, BATCH)]

    return prepare


def _stage_upsert(batches: list[list[bytes]]) -> int:
    from django.db import transaction

    from apps.datasets.services.writes import _copy_upsert

    for rows in batches:
        with transaction.atomic():
            _copy_upsert(_ctx["dataset_id"], ("id",), rows, _ctx["now"])
    return sum(len(b) for b in batches)


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
    "stage": (_staged(10_000), _stage_upsert),
    "unnest": (_rows(10_000), _unnest),
}
LABELS = {
    "copy": "raw psycopg COPY (ceiling)",
    "orm": "Django bulk_create (1,000 a batch)",
    "many": "psycopg executemany (1,000 a batch)",
    "row": "row-by-row INSERT, a commit each",
    "wp": "write path, no HTTP (map+COPY+upsert)",
    "stage": "staged COPY + upsert alone (no mapping)",
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


TAG = b"@@@@@@@@@@@@"  # replaced in each request body by a unique 12-character tag
_run = {"n": 0}  # read by the forked load processes: run number, for unique ids per run


def _body(bad: str) -> bytes:
    records = [make_record(j, TAG.decode()) for j in range(BATCH)]
    if bad == "write_error":  # a key too large for the unique index: Postgres refuses it
        records[BATCH // 2]["id"] = base64.b64encode(os.urandom(9000)).decode()
    elif bad == "validation":
        for j in range(0, BATCH, BATCH // 10):
            records[j]["score"] = "many"
    return orjson.dumps({"records": records})


def _cpu_busy_seconds() -> float:
    """Busy (not idle, not iowait) CPU seconds of the whole machine so far (/proc/stat)."""
    with open("/proc/stat") as stat:
        ticks = [int(v) for v in stat.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def _api_run(server: Any, scenario: Scenario, cpu: list[float]) -> float:
    _run["n"] += 1
    busy0 = _cpu_busy_seconds()
    api = measure(server, scenario, runs=1, concurrency=CLIENTS, duration=5.0, warmup=0)
    busy1 = _cpu_busy_seconds()
    batches = api.runs[0].iterations
    bad = sum(n for status, n in api.runs[0].statuses.items() if status != 200)
    assert bad == 0, api.runs[0].statuses
    cpu.append((busy1 - busy0) * 1000 / max(batches, 1))  # machine core-ms per batch
    return batches * BATCH / api.runs[0].seconds


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
        path = f"/api/v1/datasets/{name}/records"
        headers = {"Content-Type": "application/json", "X-API-Key": scraper}

        def scenario(bad: str) -> Scenario:
            template = _body(bad)

            def batch(i: int) -> list[tuple[str, str, bytes | None]]:
                unique = f"{bad[:1] or 'c'}{_run['n']:03d}{i:08d}".encode()
                return [("POST", path, template.replace(TAG, unique))]

            return Scenario(headers=headers, make_requests=batch)

        scenarios = {"api": scenario(""), "write_error": scenario("write_error")}
        scenarios["validation"] = scenario("validation")
        figures: dict[str, list[float]] = {m: [] for m in [*scenarios, *METHODS]}
        cpu: dict[str, list[float]] = {m: [] for m in scenarios}
        connection.close()
        measure(server, scenarios["api"], runs=1, concurrency=CLIENTS, duration=2.0)  # warm
        load = os.getloadavg()
        for run in range(RUNS):  # interleaved, so load on the machine hits each alike
            for label, sc in scenarios.items():
                figures[label].append(_api_run(server, sc, cpu[label]))
            for method in METHODS:
                figures[method].append(parallel(method, f"{method}{tag}r{run}"))
        print(
            f"load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, "
            f"at end {' '.join(f'{v:.2f}' for v in os.getloadavg())}"
        )
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
        print(
            f"machine CPU per 1,000-record batch through the API: "
            f"{statistics.median(cpu['api']):.1f} core-ms (2 cores: "
            f"{2000 / statistics.median(cpu['api']) * BATCH:,.0f} records/s if all of it were ours)"
        )
        print()
        print("One bad record never slows its batch (API, records received/s, same run):")
        for label, what in (
            ("write_error", "one record Postgres refuses (write_error) a batch"),
            ("validation", "10 records failing validation a batch"),
        ):
            value = rate(what, figures[label])
            print(
                f"  {value / api_rate:.0%} of clean batches' rate; machine CPU "
                f"{statistics.median(cpu[label]):.1f} core-ms a batch "
                f"(clean {statistics.median(cpu['api']):.1f})"
            )
        with connection.cursor() as cursor:  # leave the bench tables as we found them
            for table in ("datasets_record", "datasets_recordcount", "datasets_batch"):
                cursor.execute(f"DELETE FROM {table} WHERE dataset_id = %s", [dataset.pk])
            cursor.execute(
                "DELETE FROM datasets_retryattempt WHERE item_id IN "
                "(SELECT id FROM datasets_retryitem WHERE dataset_id = %s)",
                [dataset.pk],
            )
            cursor.execute("DELETE FROM datasets_retryitem WHERE dataset_id = %s", [dataset.pk])
            cursor.execute("DELETE FROM datasets_dataset WHERE id = %s", [dataset.pk])
