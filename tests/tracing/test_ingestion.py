from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from django.db import connection
from django.test import override_settings

from apps.tracing.sampling import is_sampled, thread_hash
from apps.tracing.selectors import stage_stats, thread_spans, window_plan
from apps.tracing.services import SpanIn, sketches_rebuild, spans_ingest, tracing_retention
from tests.fleet.helpers import configure_service

pytestmark = pytest.mark.django_db

ALL = override_settings(FLEET_DEFAULT_SPAN_SAMPLE_RATE=1.0)


def _span(thread="t1", stage="2_FETCH", at=None, ms=10.0, status="ok", parent="", svc="reddit"):
    return {
        "thread_id": thread,
        "stage": stage,
        "name": stage.lower(),
        "parent_stage": parent or None,
        "service": svc,
        "started_at": (at or dt.datetime(2026, 9, 21, 14, 0, tzinfo=dt.UTC)).isoformat(),
        "duration_ms": ms,
        "status": status,
    }


def _raw_count(stage: str | None = None) -> int:
    # Transactional tests elsewhere (live-server client tests) may leave committed spans
    # of their own stages in the unmanaged table; count by stage where it matters.
    with connection.cursor() as cursor:
        if stage is None:
            cursor.execute("SELECT count(*) FROM tracing_span")
        else:
            cursor.execute("SELECT count(*) FROM tracing_span WHERE stage = %s", [stage])
        return cursor.fetchone()[0]


@ALL
def test_posted_spans_are_accepted_and_answer_the_stages_query(scraper_api, clock):
    now = clock.now()
    spans = [_span(f"t{i}", at=now - dt.timedelta(seconds=i), ms=float(i + 1)) for i in range(100)]
    spans += [_span("e", stage="3_PARSE", at=now, ms=5.0, status="error")]
    response = scraper_api.post("/api/v1/spans", {"spans": spans})
    assert response.status_code == 202
    assert response.json()["accepted"] == 101
    assert _raw_count() == 101
    body = scraper_api.get("/api/v1/tracing/stages", window_s=900).json()
    by_stage = {item["stage"]: item for item in body["items"]}
    assert by_stage["2_FETCH"]["count"] == 100
    assert by_stage["2_FETCH"]["error_count"] == 0
    assert by_stage["2_FETCH"]["max_ms"] == 100.0
    # The value at rank q * (n - 1), rounded down (numpy's "lower"), within 1%.
    assert by_stage["2_FETCH"]["p50_ms"] == pytest.approx(50.0, rel=0.01)
    assert by_stage["2_FETCH"]["p99_ms"] == pytest.approx(99.0, rel=0.01)
    assert by_stage["3_PARSE"]["error_count"] == 1


def test_sampling_keeps_or_drops_whole_threads_by_the_hash_rule(scraper_api, clock):
    threads = [f"thread-{i}" for i in range(400)]
    spans = [_span(t, stage=s, at=clock.now()) for t in threads for s in ("1_A", "2_B", "3_C")]
    body = scraper_api.post("/api/v1/spans", {"spans": spans}).json()
    kept = [t for t in threads if thread_hash(t) < int(0.10 * 2**64)]
    assert body["accepted"] == 3 * len(kept)
    assert body["sampled_out"] == 3 * (400 - len(kept))
    assert body["sample_rates"] == {"reddit": 0.10}
    with connection.cursor() as cursor:
        cursor.execute("SELECT DISTINCT thread_id FROM tracing_span")
        assert sorted(r[0] for r in cursor.fetchall()) == sorted(kept)
        cursor.execute("SELECT thread_id, count(*) FROM tracing_span GROUP BY 1")
        assert {n for _t, n in cursor.fetchall()} == {3}


def test_each_service_is_sampled_at_its_fleet_configured_rate(scraper_api, clock):
    from apps.fleet.services import service_configuration_save
    from apps.tracing import sampling

    row = configure_service("reddit", span_sample_rate=0.5)
    sampling._memo.clear()
    threads = [f"thread-{i}" for i in range(400)]
    spans = [_span(t, at=clock.now(), svc=svc) for t in threads for svc in ("reddit", "hn")]
    body = scraper_api.post("/api/v1/spans", {"spans": spans}).json()
    assert body["sample_rates"] == {"reddit": 0.5, "hn": 0.10}  # hn: the default
    at_half = [t for t in threads if is_sampled(t, 0.5)]
    at_tenth = [t for t in threads if is_sampled(t, 0.10)]
    assert body["accepted"] == len(at_half) + len(at_tenth)
    # An edit (through the service the admin uses) applies without a restart.
    row.span_sample_rate = 0.0
    service_configuration_save(configuration=row, actor="test", created=False)
    sampling._memo.clear()  # the 5 s per-process memo, as if 5 s had passed
    body = scraper_api.post("/api/v1/spans", {"spans": spans[:2]}).json()
    assert body["sample_rates"] == {"reddit": 0.0, "hn": 0.10}


def test_sampling_is_deterministic_and_matches_the_rate_within_statistical_bounds():
    ids = [f"{i:08x}-req" for i in range(20_000)]
    for rate in (0.01, 0.10, 0.5):
        first = [is_sampled(t, rate) for t in ids]
        assert first == [is_sampled(t, rate) for t in ids]
        share = sum(first) / len(ids)
        sigma = (rate * (1 - rate) / len(ids)) ** 0.5
        assert abs(share - rate) < 4 * sigma, (rate, share)
    # Monotone: a thread sampled at 10% is sampled at 50%; rate 0 keeps none, 1 keeps all.
    assert all(is_sampled(t, 0.5) for t in ids if is_sampled(t, 0.1))
    assert not any(is_sampled(t, 0.0) for t in ids[:1000])
    assert all(is_sampled(t, 1.0) for t in ids[:1000])


def test_the_hash_rule_is_sha256_first_eight_bytes_big_endian():
    # sha256("abc") = ba7816bf8f01cfea...; 0xba7816bf8f01cfea / 2**64 = 0.7284
    assert thread_hash("abc") == 0xBA7816BF8F01CFEA
    assert is_sampled("abc", 0.73) and not is_sampled("abc", 0.72)


@ALL
def test_windows_merge_minute_and_hour_sketches(clock):
    now = clock.now()
    rng = np.random.default_rng(1)
    values = {}
    spans = []
    for minutes_ago in (1, 10, 50, 200, 1000, 5000):
        v = rng.lognormal(np.log(minutes_ago), 0.3, 200)
        values[minutes_ago] = v
        at = now - dt.timedelta(minutes=minutes_ago)
        spans += [
            SpanIn(f"w{minutes_ago}-{i}", "1_X", "x", "", "svc", at, float(x), "ok")
            for i, x in enumerate(v)
        ]
    spans_ingest(spans=spans)
    for window_s, included in (
        (900, (1, 10)),
        (3600, (1, 10, 50)),
        (86400, (1, 10, 50, 200, 1000)),
        (604800, (1, 10, 50, 200, 1000, 5000)),
    ):
        (stat,) = stage_stats(window_s=window_s)
        exact = np.concatenate([values[m] for m in included])
        assert stat.count == len(exact), window_s
        for est, ref in zip(
            (stat.p50_ms, stat.p95_ms, stat.p99_ms),
            np.percentile(exact, [50, 95, 99], method="lower"),
            strict=True,
        ):
            assert abs(est - ref) / ref <= 0.01, (window_s, est, ref)


@ALL
def test_ingesting_in_many_batches_gives_the_same_sketch_as_one_batch(clock):
    now = clock.now()
    rng = np.random.default_rng(2)
    values = rng.lognormal(3, 1, 3000)
    spans = [
        SpanIn(f"b{i}", "1_X", "x", "", "svc", now, float(v), "ok") for i, v in enumerate(values)
    ]
    for start in range(0, 3000, 250):
        spans_ingest(spans=spans[start : start + 250])
    (batched,) = stage_stats(window_s=900)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM tracing_stageminute; DELETE FROM tracing_stagehour")
    spans_ingest(spans=spans)
    (single,) = stage_stats(window_s=900)
    assert (batched.count, batched.p50_ms, batched.p99_ms) == (
        single.count,
        single.p50_ms,
        single.p99_ms,
    )


@ALL
def test_a_per_service_filter_and_a_key_restricted_to_another_service(make_api_key, clock):
    from django.test import Client

    from tests.conftest import ApiClient

    api = ApiClient(Client(), make_api_key("scraper", service="reddit"))
    assert (
        api.post("/api/v1/spans", {"spans": [_span(svc="reddit", at=clock.now())]}).status_code
        == 202
    )
    refused = api.post("/api/v1/spans", {"spans": [_span(svc="twitter", at=clock.now())]})
    assert refused.status_code == 403
    assert [s.stage for s in stage_stats(window_s=900, service="reddit")] == ["2_FETCH"]
    assert stage_stats(window_s=900, service="twitter") == []


def test_bad_spans_are_refused_with_field_paths(scraper_api, clock):
    bad = _span(at=clock.now())
    bad["duration_ms"] = -1
    response = scraper_api.post("/api/v1/spans", {"spans": [_span(at=clock.now()), bad]})
    assert response.status_code == 422
    assert response.json()["error"]["details"]["fields"][0]["path"] == "spans.1.duration_ms"
    naive = _span()
    naive["started_at"] = "2026-09-21T14:00:00"
    response = scraper_api.post("/api/v1/spans", {"spans": [naive]})
    assert response.status_code == 422
    assert _raw_count() == 0


@override_settings(TRACING_MAX_SPANS_PER_REQUEST=3)
def test_too_many_spans_are_refused_with_413(scraper_api, clock):
    response = scraper_api.post("/api/v1/spans", {"spans": [_span(at=clock.now())] * 4})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


@ALL
def test_a_nested_thread_comes_back_parents_first_with_depths(scraper_api, clock):
    t0 = clock.now()
    ms = dt.timedelta(milliseconds=1)
    spans = [
        _span("th", "1_SCRAPE", t0, 100.0),
        _span("th", "2_FETCH", t0 + 5 * ms, 60.0, parent="1_SCRAPE"),
        _span("th", "2.1_L1_CACHE_LOOKUP", t0 + 6 * ms, 1.0, parent="2_FETCH"),
        _span("th", "2.2_HTTP_GET", t0 + 8 * ms, 50.0, parent="2_FETCH", status="error"),
        _span("th", "3_PARSE", t0 + 70 * ms, 20.0, parent="1_SCRAPE"),
        _span("th", "3.1_EXTRACT", t0 + 71 * ms, 10.0, parent="3_PARSE"),
        _span("other", "1_SCRAPE", t0, 1.0),
    ]
    assert scraper_api.post("/api/v1/spans", {"spans": spans})
    body = scraper_api.get("/api/v1/tracing/threads/th").json()
    shape = [(s["stage"], s["depth"], s["offset_ms"]) for s in body["spans"]]
    assert shape == [
        ("1_SCRAPE", 0, 0.0),
        ("2_FETCH", 1, 5.0),
        ("2.1_L1_CACHE_LOOKUP", 2, 6.0),
        ("2.2_HTTP_GET", 2, 8.0),
        ("3_PARSE", 1, 70.0),
        ("3.1_EXTRACT", 2, 71.0),
    ]
    assert body["total_ms"] == 100.0
    assert body["count"] == 6
    assert scraper_api.get("/api/v1/tracing/threads/nobody").status_code == 404


@ALL
def test_retention_drops_old_partitions_and_sketches(clock):
    now = clock.now()
    spans_ingest(
        spans=[
            SpanIn("old", "1_X", "x", "", "s", now - dt.timedelta(days=1), 1.0, "ok"),
            SpanIn("new", "1_X", "x", "", "s", now, 1.0, "ok"),
        ]
    )
    assert _raw_count() == 2
    result = tracing_retention(now=now + dt.timedelta(days=3))
    assert result["partitions_dropped"] == 1
    assert [s.thread_id for s in [thread_spans(thread_id="new")]] == ["new"]
    assert thread_spans(thread_id="old").spans == []


@ALL
def test_sketches_rebuilt_from_raw_spans_match_the_ingested_ones(clock):
    now = clock.now()
    rng = np.random.default_rng(9)
    spans = [
        SpanIn(f"r{i}", "1_X", "x", "", "s", now - dt.timedelta(seconds=i), float(v), "ok")
        for i, v in enumerate(rng.lognormal(2, 1, 2000))
    ]
    spans_ingest(spans=spans)
    (ingested,) = stage_stats(window_s=3600)
    sketches_rebuild(since=now - dt.timedelta(hours=2), until=now + dt.timedelta(minutes=1))
    (rebuilt,) = stage_stats(window_s=3600)
    assert rebuilt.count == ingested.count
    for a, b in ((rebuilt.p50_ms, ingested.p50_ms), (rebuilt.p99_ms, ingested.p99_ms)):
        assert a == pytest.approx(b, rel=0.021)


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_of_the_same_minute_lose_no_update(clock):
    import threading

    from django.db import connections

    now = clock.now()
    barrier = threading.Barrier(4)

    def writer(n: int) -> None:
        try:
            barrier.wait()
            batch = [SpanIn(f"c{n}-{i}", "1_X", "x", "", "s", now, 5.0, "ok") for i in range(250)]
            spans_ingest(spans=batch, rate=1.0)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        (stat,) = stage_stats(window_s=900)
        assert stat.count == 1000
        assert _raw_count("1_X") == 1000
    finally:  # committed rows: the unmanaged partitioned table is not flushed by Django
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE tracing_span")


def test_retention_creates_the_next_days_partitions_ahead(clock):
    tracing_retention(now=clock.now())
    with connection.cursor() as cursor:
        cursor.execute("SELECT relname FROM pg_class WHERE relname LIKE 'tracing_span_p%%'")
        names = {row[0] for row in cursor.fetchall()}
    assert {"tracing_span_p20260921", "tracing_span_p20260922", "tracing_span_p20260923"} <= names


@ALL
def test_a_24_hour_window_is_exact_to_the_minute_by_reading_minutes_then_hours(clock):
    now = clock.now()  # 14:13:20
    inside = now - dt.timedelta(hours=24) + dt.timedelta(minutes=2)  # 14:15 yesterday
    outside = now - dt.timedelta(hours=24) - dt.timedelta(minutes=5)  # 14:08 yesterday
    spans_ingest(
        spans=[
            SpanIn("in", "1_X", "x", "", "s", inside, 1.0, "ok"),
            SpanIn("out", "1_X", "x", "", "s", outside, 1.0, "ok"),
            SpanIn("now", "1_X", "x", "", "s", now, 1.0, "ok"),
        ]
    )
    (stat,) = stage_stats(window_s=86400, series=True)
    assert stat.count == 2
    assert len(stat.p95_series) == 24
    start, plan = window_plan(86400, now)
    assert [table for table, _low, _high in plan] == ["tracing_stageminute", "tracing_stagehour"]
    assert start == dt.datetime(2026, 9, 20, 14, 13, tzinfo=dt.UTC)
    # Beyond minute retention the window starts at the top of its first hour.
    start, plan = window_plan(7 * 86400, now)
    assert [t for t, _l, _h in plan] == ["tracing_stagehour"] and start.minute == 0


@ALL
def test_a_span_without_service_belongs_to_the_keys_service(make_api_key, clock):
    from django.test import Client

    from tests.conftest import ApiClient

    api = ApiClient(Client(), make_api_key("scraper", service="reddit"))
    span = _span(at=clock.now())
    span["service"] = None
    span["name"] = None
    assert api.post("/api/v1/spans", {"spans": [span]}).json()["sample_rates"] == {"reddit": 1.0}
    assert [s.services for s in stage_stats(window_s=900)] == [["reddit"]]


def test_the_rate_is_looked_up_once_per_service_not_per_span(monkeypatch, clock):
    from apps.tracing import sampling

    sampling._memo.clear()
    calls = []

    def lookup(service):
        calls.append(service)
        return 1.0

    monkeypatch.setattr(sampling, "sample_rate_for", lookup)
    spans = [
        SpanIn(f"m{i}", "1_X", "x", "", svc, clock.now(), 1.0, "ok")
        for i in range(50)
        for svc in ("a", "b")
    ]
    assert spans_ingest(spans=spans).accepted == 100
    assert spans_ingest(spans=spans).accepted == 100
    assert sorted(calls) == ["a", "b"]
    sampling._memo.clear()
