"""Batch writes: records/s through POST /api/v1/datasets/{name}/records (1,000-record
batches, 4 concurrent clients, 10 fields a record) next to, in the same run and into the
same table, the alternatives:

- raw psycopg COPY of the same rows (the ceiling on this machine),
- Django bulk_create (batches of 1,000),
- psycopg executemany (batches of 1,000, one transaction each),
- row-by-row INSERT, one transaction a row (what scrapers do today),
- and, in-process without HTTP, the write path itself (map + COPY into staging + upsert)
  against one INSERT ... SELECT FROM unnest(...) ON CONFLICT, the alternative to staging.

Every figure is the median of several runs; targets: API >= 30% of raw COPY and >= 50,000
records/s.
"""

from __future__ import annotations

import datetime as dt
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
DATASET = "bench_posts"
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
    print(f"{label:<44} {value:>10,.0f} records/s  (median of {len(runs)}: {spread})", flush=True)
    return value


def timed(fn: Callable[[], int]) -> float:
    started = time.perf_counter()
    rows = fn()
    return rows / (time.perf_counter() - started)


def main() -> None:
    with bench_server() as server:
        admin = server.api_key("admin")
        scraper = server.api_key("scraper")
        status, body = server.request(
            "PUT", f"/api/v1/datasets/{DATASET}", {"key_fields": ["id"], "fields": FIELDS}, admin
        )
        assert status in (200, 201), body

        # Django in this process, against the bench database, for the in-process figures.
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
            os.environ[name] = server.env[name]
        os.environ["COREADMIN_ENV"] = "production"
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "coreadmin.settings")
        import django

        django.setup()
        from django.db import connection, transaction

        from apps.datasets.models import Dataset, Record
        from apps.datasets.services import records_write

        dataset = Dataset.objects.get(name=DATASET)
        tag = uuid.uuid4().hex[:6]

        # 1. The API: closed loop, 4 clients, each request a fresh 1,000-record batch.
        def batch(i: int) -> list[tuple[str, str, bytes | None]]:
            records = [make_record(i * BATCH + j, f"api{tag}") for j in range(BATCH)]
            return [
                ("POST", f"/api/v1/datasets/{DATASET}/records", orjson.dumps({"records": records}))
            ]

        scenario = Scenario(
            headers={"Content-Type": "application/json", "X-API-Key": scraper},
            make_requests=batch,
        )
        api = measure(server, scenario, runs=RUNS, concurrency=CLIENTS, duration=6.0)
        api_runs = [r.iterations * BATCH / r.seconds for r in api.runs]
        statuses = {s: n for r in api.runs for s, n in r.statuses.items()}
        print(f"API statuses {statuses}; batch p50 {api.pct(50):.0f} ms, p99 {api.pct(99):.0f} ms")

        now = dt.datetime.now(dt.UTC)
        counter = iter(range(10**9))

        def rows(n: int, prefix: str) -> list[tuple[str, str]]:
            base = next(counter) * 10**6
            return [stored_row(make_record(base + k, prefix)) for k in range(n)]

        connection.ensure_connection()
        pg = connection.connection

        # 2. Raw COPY straight into datasets_record (no staging, no conflict handling).
        def raw_copy() -> int:
            n = 50_000
            data = rows(n, f"copy{tag}")
            started = time.perf_counter()
            with (
                pg.cursor() as cur,
                cur.copy(
                    "COPY datasets_record (dataset_id, key, data, created_at, updated_at) "
                    "FROM STDIN"
                ) as copy,
            ):
                for key, value in data:
                    copy.write_row((dataset.pk, key, value, now, now))
            pg.commit()
            return int(n / (time.perf_counter() - started))

        # 3. Django bulk_create, 1,000 a batch.
        def bulk_create() -> int:
            n = 20_000
            objs = [
                Record(
                    dataset=dataset,
                    key=orjson.loads(k),
                    data=orjson.loads(v),
                    created_at=now,
                    updated_at=now,
                )
                for k, v in rows(n, f"orm{tag}")
            ]
            started = time.perf_counter()
            for i in range(0, n, BATCH):
                with transaction.atomic():
                    Record.objects.bulk_create(objs[i : i + BATCH])
            return int(n / (time.perf_counter() - started))

        # 4. executemany, 1,000 a batch.
        def executemany() -> int:
            n = 20_000
            data = rows(n, f"many{tag}")
            started = time.perf_counter()
            for i in range(0, n, BATCH):
                with pg.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO datasets_record (dataset_id, key, data, created_at, "
                        "updated_at) VALUES (%s, %s::jsonb, %s::jsonb, %s, %s)",
                        [(dataset.pk, k, v, now, now) for k, v in data[i : i + BATCH]],
                    )
                pg.commit()
            return int(n / (time.perf_counter() - started))

        # 5. Row by row, a transaction each, for 3 seconds.
        def row_by_row() -> int:
            data = rows(100_000, f"row{tag}")
            started = time.perf_counter()
            done = 0
            with pg.cursor() as cur:
                for k, v in data:
                    cur.execute(
                        "INSERT INTO datasets_record (dataset_id, key, data, created_at, "
                        "updated_at) VALUES (%s, %s::jsonb, %s::jsonb, %s, %s)",
                        (dataset.pk, k, v, now, now),
                    )
                    pg.commit()
                    done += 1
                    if time.perf_counter() - started > 3.0:
                        break
            return int(done / (time.perf_counter() - started))

        # 6. The write path in-process (no HTTP): map + COPY to staging + upsert.
        def write_path() -> int:
            n = 20_000
            batches = [
                [make_record(next(counter) * 10**6 + k, f"wp{tag}") for k in range(BATCH)]
                for _ in range(n // BATCH)
            ]
            started = time.perf_counter()
            for records in batches:
                with transaction.atomic():
                    outcome = records_write(dataset=dataset, records=records, now=now)
                    assert not outcome.failures
            return int(n / (time.perf_counter() - started))

        # 7. The alternative to staging: one INSERT ... SELECT FROM unnest ON CONFLICT.
        def unnest_upsert() -> int:
            n = 20_000
            data = rows(n, f"un{tag}")
            started = time.perf_counter()
            for i in range(0, n, BATCH):
                chunk = data[i : i + BATCH]
                with pg.cursor() as cur:
                    cur.execute(
                        "INSERT INTO datasets_record (dataset_id, key, data, created_at, "
                        "updated_at) SELECT %s, k, d, %s, %s FROM unnest(%s::jsonb[], "
                        "%s::jsonb[]) AS t(k, d) ON CONFLICT (dataset_id, key) DO UPDATE "
                        "SET data = EXCLUDED.data, updated_at = EXCLUDED.updated_at",
                        (dataset.pk, now, now, [k for k, _ in chunk], [v for _, v in chunk]),
                    )
                pg.commit()
            return int(n / (time.perf_counter() - started))

        figures: dict[str, list[float]] = {
            name: [] for name in ("copy", "orm", "many", "row", "wp", "unnest")
        }
        for _ in range(RUNS):  # interleaved, so load on the machine hits each alike
            figures["copy"].append(raw_copy())
            figures["orm"].append(bulk_create())
            figures["many"].append(executemany())
            figures["row"].append(row_by_row())
            figures["wp"].append(write_path())
            figures["unnest"].append(unnest_upsert())

        print()
        api_rate = rate("API, 1,000-record batches, 4 clients", api_runs)
        copy_rate = rate("raw psycopg COPY (ceiling)", figures["copy"])
        rate("Django bulk_create (1,000 a batch)", figures["orm"])
        rate("psycopg executemany (1,000 a batch)", figures["many"])
        row_rate = rate("row-by-row INSERT, a commit each", figures["row"])
        wp = rate("write path in-process (map+COPY+upsert)", figures["wp"])
        un = rate("unnest INSERT ... ON CONFLICT (no map)", figures["unnest"])
        share = api_rate / copy_rate
        print()
        print(
            f"API / raw COPY: {share:.0%} (target >= 30%) -> "
            f"{'meets' if share >= 0.30 else 'MISSES'} target"
        )
        print(
            f"API records/s: {api_rate:,.0f} (target >= 50,000) -> "
            f"{'meets' if api_rate >= 50_000 else 'MISSES'} target"
        )
        print(f"API / row-by-row: {api_rate / row_rate:,.0f}x")
        print(f"write path in-process / unnest upsert: {wp / un:.2f}x")
        total = Record.objects.filter(dataset=dataset).count()
        print(f"(rows in the bench table after the run: {total:,})")
