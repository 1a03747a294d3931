"""Logs: ingestion throughput and the logs page at 10 million rows.

Ingestion, in one run and at the same concurrency: POST /api/v1/logs with 1,000-line
batches (validation, min-level check, redaction, COPY) next to a raw COPY of the same
rows straight into the table, and a one-INSERT-per-line logging handler.

Page: `manage.py generate_bench_data` fills BENCH_LOG_LINES (default 10,000,000) lines
once (kept between runs). The logs page is timed over HTTP for the default view, a level
filter and a text search; next to it, the same questions asked the obvious way (Django's
Paginator: COUNT(*) then OFFSET, and icontains, i.e. UPPER(message) LIKE, which no
trigram index serves), timed in SQL in the same run.
"""

from __future__ import annotations

import http.client
import os
import re
import statistics
import threading
import time
import urllib.parse
from typing import Any

import orjson
import psycopg

from bench.harness import BenchServer, Scenario, bench_server, measure, ratio_line

LINES = int(os.environ.get("BENCH_LOG_LINES", "10000000"))
CONCURRENCY = int(os.environ.get("BENCH_LOG_CONCURRENCY", "8"))
BATCH = 1000
PAGE_RUNS = 15
COLUMNS = "(ts, level, service, logger, message, thread_id, context)"


def batch_records() -> list[dict[str, Any]]:
    levels = ["info"] * 14 + ["warning", "error", "debug", "info", "info", "info"]
    return [
        {
            "level": levels[i % len(levels)],
            "logger": f"scraper.fetch.{i % 7}",
            "message": f"{BENCH_MESSAGE_PREFIX}{i} in {i % 900} ms "
            f"status 200 for user u{i * 7 % 10000}",
            "service": "reddit",
            "thread_id": f"thr-{i % 97:04x}",
            "context": {"status": 200, "attempt": 1 + i % 3, "url": "https://www.reddit.com/r/p"},
        }
        for i in range(BATCH)
    ]


def _rows(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    numbers = {"debug": 10, "info": 20, "warning": 30, "error": 40}
    return [
        (
            now,
            numbers[r["level"]],
            r["service"],
            r["logger"],
            r["message"],
            r["thread_id"],
            orjson.dumps(r["context"]).decode(),
        )
        for r in records
    ]


def _threads(target: Any, duration: float) -> float:
    """Runs ``target(deadline, counter_list)`` on CONCURRENCY threads; returns lines/s."""
    counts: list[int] = []
    deadline = time.monotonic() + duration
    threads = [threading.Thread(target=target, args=(deadline, counts)) for _ in range(CONCURRENCY)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.monotonic() - started)


def raw_copy_rate(dsn: str, rows: list[tuple[Any, ...]], duration: float) -> float:
    def work(deadline: float, counts: list[int]) -> None:
        done = 0
        with psycopg.connect(dsn, autocommit=True) as conn:
            while time.monotonic() < deadline:
                with (
                    conn.cursor() as cur,
                    cur.copy(f"COPY logs_logline {COLUMNS} FROM STDIN") as cp,
                ):
                    for row in rows:
                        cp.write_row(row)
                done += len(rows)
        counts.append(done)

    return _threads(work, duration)


def insert_per_line_rate(dsn: str, rows: list[tuple[Any, ...]], duration: float) -> float:
    """A logging handler that INSERTs each line as it is emitted (autocommit)."""
    import logging

    class InsertHandler(logging.Handler):
        def __init__(self, conn: psycopg.Connection) -> None:
            super().__init__()
            self.conn = conn

        def emit(self, record: logging.LogRecord) -> None:
            self.conn.execute(
                f"INSERT INTO logs_logline {COLUMNS} VALUES (%s, %s, %s, %s, %s, %s, %s)",
                record.args,  # type: ignore[arg-type]
            )

    def work_rows(deadline: float, counts: list[int]) -> None:
        done = 0
        with psycopg.connect(dsn, autocommit=True) as conn:
            handler = InsertHandler(conn)
            while time.monotonic() < deadline:
                for row in rows[:50]:
                    record = logging.LogRecord("bench", logging.INFO, __file__, 0, "%s", (), None)
                    record.args = row
                    handler.handle(record)
                    done += 1
        counts.append(done)

    return _threads(work_rows, duration)


def remove_ingested(dsn: str, since: str) -> None:
    """Deletes the ingestion runs' lines (recent partitions only) and vacuums them."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        deleted = conn.execute(
            "DELETE FROM logs_logline WHERE ts >= %s AND message LIKE %s",
            [since, BENCH_MESSAGE_PREFIX + "%"],
        ).rowcount
        conn.execute("VACUUM ANALYZE logs_logline")
    print(f"(removed the {deleted:,} lines the ingestion runs added)")


class Browser:
    """A logged-in operator on the bench server (cookies kept by hand: production
    cookies are Secure, which http.client ignores on a loopback http connection)."""

    def __init__(self, server: BenchServer) -> None:
        self.server = server
        self.cookies: dict[str, str] = {}
        server.manage(
            "shell",
            "-c",
            "from django.contrib.auth.models import User; "
            "User.objects.filter(username='bench').delete(); "
            "User.objects.create_superuser('bench', 'bench@example.invalid', 'bench-pass-1')",
        )
        status, html = self.request("GET", "/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]
        form = urllib.parse.urlencode(
            {"username": "bench", "password": "bench-pass-1", "csrfmiddlewaretoken": token}
        )
        status, _ = self.request("POST", "/login/", form)
        if status != 302 or "sessionid" not in self.cookies:
            raise RuntimeError(f"bench login failed: {status}")

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, str]:
        conn = http.client.HTTPConnection(self.server.host, self.server.port, timeout=60)
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = self.server.base_url + path
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        for name, value in response.getheaders():
            if name.lower() == "set-cookie":
                key, _, rest = value.partition("=")
                self.cookies[key] = rest.split(";", 1)[0]
        data = response.read().decode()
        conn.close()
        return response.status, data

    def time_page(self, path: str) -> tuple[float, int]:
        self.request("GET", path)  # warm
        times = []
        rows = 0
        for _ in range(PAGE_RUNS):
            started = time.perf_counter()
            status, html = self.request("GET", path)
            times.append((time.perf_counter() - started) * 1000)
            if status != 200:
                raise RuntimeError(f"{path}: {status}")
            rows = len(re.findall(r'<tr class="log-', html))
        return statistics.median(times), rows


def time_sql(dsn: str, queries: list[tuple[str, list[Any]]], runs: int = 5) -> float:
    """Median milliseconds for running ``queries`` in turn (one page's worth)."""
    times = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _ in range(runs + 1):
            started = time.perf_counter()
            for sql, params in queries:
                conn.execute(sql, params).fetchall()
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times[1:])


SELECT = "SELECT id, ts, level, service, logger, message, thread_id, context FROM logs_logline"
PAGE_CASES: list[tuple[str, str, str, list[Any]]] = [
    # label, page query string, the naive WHERE, its params
    ("default view", "", "", []),
    ("level=error", "level=error", "WHERE level = %s", [40]),
    (
        "text 'checksum mismatch'",  # 0.05% of the generated lines
        "q=checksum+mismatch",
        "WHERE UPPER(message::text) LIKE UPPER(%s)",
        ["%checksum mismatch%"],
    ),
    (
        "text 'timed out'",  # 1.4% of the generated lines
        "q=timed+out",
        "WHERE UPPER(message::text) LIKE UPPER(%s)",
        ["%timed out%"],
    ),
]
# The ingestion runs add lines like these; they are removed at the end so that every run
# of the page timings sees the same generated data.
BENCH_MESSAGE_PREFIX = "fetched https://www.reddit.com/r/python/comments/"


def main() -> None:
    with bench_server() as server:
        dsn = server.env["DATABASE_URL"]
        started = time.monotonic()
        print(server.manage("generate_bench_data", "--log-lines", str(LINES)).strip())
        with psycopg.connect(dsn) as conn:
            total = conn.execute("SELECT count(*) FROM logs_logline").fetchone()[0]  # type: ignore[index]
        print(
            f"log lines in the store: {total:,} (data ready in {time.monotonic() - started:.0f} s)"
        )

        browser = Browser(server)
        print(
            f"\nlogs page at {total / 1e6:.1f} M rows, median of {PAGE_RUNS} requests "
            "(HTTP to gunicorn in production mode):"
        )
        for label, qs, naive_where, params in PAGE_CASES:
            page_ms, shown = browser.time_page("/logs/" + (f"?{qs}" if qs else ""))
            naive = time_sql(
                dsn,
                [
                    (f"SELECT count(*) FROM logs_logline {naive_where}", params),
                    (f"{SELECT} {naive_where} ORDER BY ts DESC, id DESC LIMIT 50 OFFSET 0", params),
                ],
                runs=3,
            )
            verdict = "meets" if page_ms < 150 else "MISSES"
            print(
                f"  {label:<26} page {page_ms:7.1f} ms ({shown} rows; target < 150 ms -> {verdict})"
                f"   naive queries alone (COUNT + OFFSET, UPPER LIKE) {naive:8.1f} ms"
                f"   naive/page {naive / max(page_ms, 0.01):5.1f}x"
            )

        key = server.api_key("scraper")
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
        records = batch_records()
        rows = _rows(records)
        duration = 4.0
        api = measure(
            server,
            Scenario.post("/api/v1/logs", {"records": records}, key),
            concurrency=CONCURRENCY,
            duration=duration,
        )
        accepted = api.rps * BATCH
        copies = [raw_copy_rate(dsn, rows, duration) for _ in range(3)]
        inserts = [insert_per_line_rate(dsn, rows, duration) for _ in range(3)]
        copy_rate, insert_rate = statistics.median(copies), statistics.median(inserts)
        print(f"\ningestion, {BATCH}-line batches, concurrency {CONCURRENCY}, median of 3 runs:")
        print(api.line("POST /api/v1/logs (batches)"))
        print(f"  API (validate, redact, COPY)   {accepted:10,.0f} lines/s")
        print(f"  raw COPY of the same rows      {copy_rate:10,.0f} lines/s")
        print(f"  one INSERT per line (handler)  {insert_rate:10,.0f} lines/s")
        print(ratio_line("API vs raw COPY", accepted, copy_rate, 0.30))
        print(f"API vs one INSERT per line: {accepted / max(insert_rate, 1):.1f}x")
        verdict = "meets" if accepted >= 50_000 else "MISSES"
        print(f"API absolute: {accepted:,.0f} lines/s (target 50,000) -> {verdict} target")
        remove_ingested(dsn, since)
