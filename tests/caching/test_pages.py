from __future__ import annotations

import datetime as dt
import re

import pytest

from apps.caching.services import cache_stat_record

pytestmark = pytest.mark.django_db


def _stats(clock, caches=2):
    for i in range(caches):
        for minutes in (5, 30):
            cache_stat_record(
                cache=f"svc{i}-l1",
                namespace=f"svc{i}",
                service=f"svc{i}",
                hits=75,
                misses=25,
                at=clock.now() - dt.timedelta(minutes=minutes),
            )


def test_the_caches_page_shows_hit_rate_per_cache_over_time_and_by_namespace(
    operator_client, clock
):
    _stats(clock)
    html = operator_client.get("/caches/").content.decode()
    assert html.count("<code>svc0-l1</code>") == 1
    assert "<strong>75%</strong>" in html
    assert html.count('<svg class="spark"') == 2
    assert re.search(r'<path class="line" d="M[\d.]+,[\d.]+', html)
    namespaces = html.split("By namespace")[1]
    assert "<code>svc1</code>" in namespaces


def test_the_caches_page_filters_by_name(operator_client, clock):
    _stats(clock)
    html = operator_client.get("/caches/", {"q": "svc1"}, headers={"HX-Request": "true"})
    body = html.content.decode()
    assert body.lstrip().startswith('<div id="cache-tables"')
    assert "svc1-l1" in body and "svc0-l1" not in body


def test_caches_page_query_count_does_not_grow_with_rows(
    operator_client, clock, django_assert_max_num_queries
):
    _stats(clock, caches=2)
    with django_assert_max_num_queries(20) as small:
        operator_client.get("/caches/")
    _stats(clock, caches=30)
    with django_assert_max_num_queries(len(small.captured_queries)):
        operator_client.get("/caches/")


def test_the_hit_rate_tile_shows_the_overall_rate_and_links_to_the_page(operator_client, clock):
    _stats(clock)
    html = operator_client.get("/tiles/cache-hit-rate/").content.decode()
    assert 'href="/caches/"' in html
    assert '<div class="big">75%</div>' in html


def test_the_overview_shows_both_tiles_and_survives_a_failing_one(operator_client, monkeypatch):
    from apps.dashboard import views
    from coreadmin.panels import Tile, discover

    html = operator_client.get("/").content.decode()
    assert 'id="tile-slowest-stages"' in html and 'id="tile-cache-hit-rate"' in html
    assert "No spans in the last hour." in html

    def broken():
        raise RuntimeError("boom")

    nav, tiles = discover()
    failing = Tile("broken", "Broken", "caching/_tile.html", broken)
    monkeypatch.setattr(views, "discover", lambda: (nav, [*tiles, failing]))
    response = operator_client.get("/")
    assert response.status_code == 200
    assert 'id="tile-broken"' in response.content.decode()
    assert "Unavailable right now" in response.content.decode()
    assert operator_client.get("/tiles/broken/").status_code == 200


def test_the_admin_lists_cache_stats_and_stage_sketches(admin_client, clock):
    _stats(clock)
    assert "svc0-l1" in admin_client.get("/admin/caching/cachestat/").content.decode()
    assert admin_client.get("/admin/tracing/stagehour/").status_code == 200


def test_a_sparkline_breaks_at_gaps_and_shows_lone_points():
    from coreadmin.charts import sparkline

    spark = sparkline([0.5, 1.0, None, 0.25, None], width=40, height=10)
    assert spark.line.count("M") == 2  # two runs
    assert spark.line.startswith("M0.0,5.0 L10.0,1.0")
    assert spark.line.endswith("M28.5,7.0 L31.5,7.0")  # the lone point as a short dash
    assert sparkline([None, 0.5], width=40, top=1.0).line == "M38.5,14.0 L40.0,14.0"
    assert spark.area.count("Z") == 1
    assert sparkline([None, None]).empty
