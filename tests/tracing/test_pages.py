from __future__ import annotations

import datetime as dt
import re

import pytest
from django.test import override_settings

from apps.tracing.selectors import thread_spans
from apps.tracing.services import SpanIn, spans_ingest

pytestmark = pytest.mark.django_db


def _thread(thread_id, t0, service="reddit"):
    ms = dt.timedelta(milliseconds=1)
    return [
        SpanIn(thread_id, "1_SCRAPE", "scrape", "", service, t0, 100.0, "ok"),
        SpanIn(thread_id, "2_FETCH", "fetch", "1_SCRAPE", service, t0 + 5 * ms, 60.0, "ok"),
        SpanIn(thread_id, "2.1_L1_CACHE_LOOKUP", "l1", "2_FETCH", service, t0 + 6 * ms, 1.0, "ok"),
        SpanIn(thread_id, "2.2_HTTP_GET", "get", "2_FETCH", service, t0 + 8 * ms, 50.0, "error"),
        SpanIn(thread_id, "3_PARSE", "parse", "1_SCRAPE", service, t0 + 70 * ms, 20.0, "ok"),
    ]


def _load(clock, threads=3, service="reddit"):
    spans = []
    for i in range(threads):
        spans += _thread(f"{service}-{i}", clock.now() - dt.timedelta(minutes=i), service)
    spans_ingest(spans=spans, rate=1.0)


def test_the_tracker_lists_stages_nested_with_percentiles_and_a_sparkline(operator_client, clock):
    _load(clock)
    html = operator_client.get("/tracing/", {"window_s": 900}).content.decode()
    stages = re.findall(r'<td class="stage depth-(\d)"><code>([^<]+)</code>', html)
    assert stages == [
        ("0", "1_SCRAPE"),
        ("1", "2_FETCH"),
        ("2", "2.1_L1_CACHE_LOOKUP"),
        ("2", "2.2_HTTP_GET"),
        ("1", "3_PARSE"),
    ]
    assert html.count('<svg class="spark"') == 5
    assert re.search(r'<path class="line" d="M[\d.]+,[\d.]+', html)
    assert '<span class="error">3</span>' in html  # 2.2_HTTP_GET failed in 3 threads


def test_the_tracker_filters_by_service_and_window(operator_client, clock):
    _load(clock, service="reddit")
    _load(clock, service="twitter", threads=1)
    html = operator_client.get(
        "/tracing/", {"service": "twitter", "window_s": 3600}
    ).content.decode()
    assert '<option value="twitter" selected>' in html
    assert re.search(r"<td class=\"num\">1</td>", html)
    assert "reddit" not in html.split('id="stage-table"')[1].split("</table>")[0]
    partial = operator_client.get("/tracing/", {"window_s": 86400}, headers={"HX-Request": "true"})
    assert partial.content.decode().lstrip().startswith('<div id="stage-table"')


def test_the_thread_page_draws_a_waterfall_with_nested_bars(operator_client, clock):
    _load(clock, threads=1)
    response = operator_client.get("/tracing/threads/reddit-0/")
    html = response.content.decode()
    assert response.status_code == 200
    bars = re.findall(r'<g class="span span-(\w+)" data-stage="([^"]+)" data-depth="(\d)">', html)
    assert bars == [
        ("ok", "1_SCRAPE", "0"),
        ("ok", "2_FETCH", "1"),
        ("ok", "2.1_L1_CACHE_LOOKUP", "2"),
        ("error", "2.2_HTTP_GET", "2"),
        ("ok", "3_PARSE", "1"),
    ]
    widths = [float(w) for w in re.findall(r'<rect x="[\d.]+" y="\d+" width="([\d.]+)"', html)]
    assert widths[0] == 640.0 and widths[1] == pytest.approx(640 * 0.6)
    assert operator_client.get("/tracing/threads/nobody/").status_code == 404
    assert operator_client.get("/tracing/", {"thread_id": "reddit-0"})["Location"] == (
        "/tracing/threads/reddit-0/"
    )


def test_tracker_query_count_does_not_grow_with_rows(
    operator_client, clock, django_assert_max_num_queries
):
    _load(clock, threads=2)
    with django_assert_max_num_queries(20) as small:
        operator_client.get("/tracing/", {"window_s": 86400})
    _load(clock, threads=40, service="other")
    with django_assert_max_num_queries(len(small.captured_queries)):
        operator_client.get("/tracing/", {"window_s": 86400})


def test_the_slowest_stages_tile_links_to_the_tracker(operator_client, clock):
    from apps.tracing.panels import _tiles

    # The tile is cached for a few seconds; an earlier overview test may have filled it.
    _tiles.delete("slowest")
    _load(clock)
    html = operator_client.get("/tiles/slowest-stages/").content.decode()
    assert 'href="/tracing/"' in html
    assert "<code>1_SCRAPE</code>" in html
    assert html.index("1_SCRAPE") < html.index("2_FETCH") < html.index("3_PARSE")


@override_settings(TRACING_SELF_ENABLED=True, FLEET_DEFAULT_SPAN_SAMPLE_RATE=1.0)
def test_the_server_traces_its_own_api_requests_as_stages(scraper_api, clock):
    response = scraper_api.get("/api/v1/tracing/stages", headers={"X-Request-ID": "req-42"})
    assert response["X-Thread-Id"] == "req-42"
    body = scraper_api.get("/api/v1/tracing/threads/req-42").json()
    assert [(s["stage"], s["depth"]) for s in body["spans"]] == [
        ("1_REQUEST", 0),
        ("1.1_AUTH", 1),
        ("1.2_VALIDATION", 1),
        ("1.3_SERVICE_CALL", 1),
        ("1.4_RENDER", 1),
    ]
    assert body["spans"][0]["name"] == "GET /api/v1/tracing/stages"
    assert {s["service"] for s in body["spans"]} == {"coreadmin"}


@override_settings(TRACING_SELF_ENABLED=True, FLEET_DEFAULT_SPAN_SAMPLE_RATE=0.0)
def test_unsampled_requests_store_nothing(scraper_api, clock):
    response = scraper_api.get("/api/v1/tracing/stages")
    assert "X-Thread-Id" not in response
    assert scraper_api.get("/api/v1/tracing/stages").json()["items"] == []


@override_settings(TRACING_SELF_ENABLED=True, FLEET_DEFAULT_SPAN_SAMPLE_RATE=1.0)
def test_pages_are_traced_as_a_request_and_its_view(operator_client, scraper_api, clock):
    response = operator_client.get("/caches/", headers={"X-Request-ID": "page-1"})
    assert response["X-Thread-Id"] == "page-1"
    body = scraper_api.get("/api/v1/tracing/threads/page-1").json()
    assert [(s["stage"], s["name"]) for s in body["spans"]] == [
        ("1_REQUEST", "GET /caches/"),
        ("1.3_SERVICE_CALL", "view"),
    ]


def test_the_beat_tasks_run(clock):
    from apps.caching.tasks import cache_stats_retention, redis_info_sample
    from apps.tracing.tasks import tracing_retention

    assert tracing_retention.apply().get() == {
        "partitions_dropped": 0,
        "minutes_deleted": 0,
        "hours_deleted": 0,
        "batch_ids_forgotten": 0,
    }
    redis_info_sample.apply().get()
    assert cache_stats_retention.apply().get() == 0


@pytest.mark.django_db(transaction=True)
@override_settings(TRACING_SELF_ENABLED=True, FLEET_DEFAULT_SPAN_SAMPLE_RATE=1.0)
def test_buffered_own_spans_are_written_by_a_background_thread(scraper_api, settings):
    from django.db import connection

    from apps.tracing import middleware

    settings.TRACING_SELF_FLUSH_SECONDS = 3600
    middleware._last_flush[0] = float("-inf")  # due
    try:
        scraper_api.get("/api/v1/whoami", headers={"X-Request-ID": "bg-1"})
        middleware._flusher[0].join(10)
        assert thread_spans(thread_id="bg-1").spans[0].stage == "1_REQUEST"
        scraper_api.get("/api/v1/whoami", headers={"X-Request-ID": "bg-2"})  # not due
        assert thread_spans(thread_id="bg-2").spans == []
        assert middleware.flush(force=True) == 5
    finally:
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE tracing_span")
