from __future__ import annotations

import datetime as dt

import pytest

from apps.caching.cache import REGISTRY, TwoTierCache
from apps.caching.models import CacheStat
from apps.caching.selectors import cache_summaries, namespace_summaries, overall_hit_rate
from apps.caching.services import (
    InfoCounters,
    cache_stat_record,
    info_delta,
    own_stats_publish,
    redis_info_sample,
)

pytestmark = pytest.mark.django_db


def _stat(api, **fields):
    body = {"cache": "reddit-l1", "service": "reddit", "hits": 0, "misses": 0, "interval_s": 60}
    body.update(fields)
    return api.post("/api/v1/cache-stats", body)


def test_hit_rate_is_the_sum_of_hits_over_the_sum_of_lookups_across_intervals(scraper_api, clock):
    # Not the mean of per-interval rates: 90/100 and 0/900 give 90/1000, not 45%.
    assert _stat(scraper_api, hits=90, misses=10).status_code == 202
    clock.advance(60)
    assert _stat(scraper_api, hits=0, misses=900, evictions=7, size=512).status_code == 202
    _stat(scraper_api, cache="reddit-l2", hits=5, misses=5)
    items = {
        i["cache"]: i for i in scraper_api.get("/api/v1/caches", window_s=3600).json()["items"]
    }
    assert items["reddit-l1"]["hits"] == 90 and items["reddit-l1"]["misses"] == 910
    assert items["reddit-l1"]["hit_rate"] == pytest.approx(0.09)
    assert items["reddit-l1"]["evictions"] == 7 and items["reddit-l1"]["size"] == 512
    assert items["reddit-l2"]["hit_rate"] == 0.5
    assert overall_hit_rate(window_s=3600) == (pytest.approx(95 / 1010), 2)


def test_a_cache_without_lookups_has_no_hit_rate_rather_than_zero(scraper_api, clock):
    _stat(scraper_api, hits=0, misses=0)
    (item,) = scraper_api.get("/api/v1/caches").json()["items"]
    assert item["hit_rate"] is None


def test_the_window_excludes_older_intervals_and_the_series_has_one_point_per_slice(clock):
    now = clock.now()
    cache_stat_record(cache="c", hits=1, misses=0, at=now - dt.timedelta(hours=2))
    cache_stat_record(cache="c", hits=3, misses=1, at=now - dt.timedelta(minutes=5))
    cache_stat_record(cache="c", hits=0, misses=4, at=now - dt.timedelta(minutes=50))
    (summary,) = cache_summaries(window_s=3600, series=True)
    assert (summary.hits, summary.misses) == (3, 5)
    assert len(summary.series) == 48
    assert summary.series[-4] == 0.75  # 5 min ago with 75 s slices
    assert summary.series[8] == 0.0  # 50 min ago
    assert summary.series.count(None) == 46


def test_namespaces_group_caches(clock):
    cache_stat_record(cache="reddit-l1", namespace="reddit", hits=8, misses=2)
    cache_stat_record(cache="reddit-l2", namespace="reddit", hits=1, misses=9)
    cache_stat_record(cache="twitter-l1", hits=1, misses=1)
    spaces = {n.namespace: n for n in namespace_summaries()}
    assert spaces["reddit"].caches == 2 and spaces["reddit"].hit_rate == 0.45
    assert spaces["twitter-l1"].hit_rate == 0.5  # no namespace given: the cache's own name


def test_bad_cache_stats_are_refused(scraper_api):
    response = _stat(scraper_api, hits=-1)
    assert response.status_code == 422
    assert response.json()["error"]["details"]["fields"][0]["path"] == "hits"
    assert not CacheStat.objects.exists()


def test_redis_info_deltas_handle_a_counter_reset():
    first = InfoCounters("run-a", hits=100, misses=50, evicted=0)
    later = InfoCounters("run-a", hits=160, misses=70, evicted=3)
    assert info_delta(first, later) == InfoCounters("run-a", 60, 20, 3)
    # CONFIG RESETSTAT: same run, counters start again from zero.
    reset = InfoCounters("run-a", hits=5, misses=1, evicted=0)
    assert info_delta(later, reset) == reset
    # Restart: a new run_id, even if the new counters happen to be higher.
    restarted = InfoCounters("run-b", hits=500, misses=80, evicted=3)
    assert info_delta(later, restarted) == restarted
    assert info_delta(None, later) == InfoCounters("run-a", 0, 0, 0)


def test_redis_info_samples_become_cache_stats_across_a_restart(clock):
    assert redis_info_sample(counters=InfoCounters("a", 100, 50, 0)) is None
    clock.advance(60)
    row = redis_info_sample(counters=InfoCounters("a", 130, 60, 1))
    assert (row.cache, row.hits, row.misses, row.evictions, row.interval_s) == (
        "redis",
        30,
        10,
        1,
        60,
    )
    clock.advance(60)
    row = redis_info_sample(counters=InfoCounters("b", 4, 2, 0))
    assert (row.hits, row.misses) == (4, 2)
    (summary,) = cache_summaries(window_s=900)
    assert (summary.hits, summary.misses) == (34, 12)


def test_the_real_redis_info_is_sampled(clock):
    redis_info_sample()
    clock.advance(60)
    row = redis_info_sample()
    assert row is not None and row.hits >= 0 and row.misses >= 0


def test_our_own_caches_publish_their_counters(clock):
    REGISTRY.clear()
    cache = TwoTierCache("t-publish")
    cache.get_or_set("x", lambda: 1)
    cache.get("x")
    cache.get("x")
    assert own_stats_publish(force=True) == 1
    row = CacheStat.objects.get()
    assert (row.cache, row.namespace, row.source) == ("coreadmin-t-publish", "t-publish", "server")
    assert (row.hits, row.misses) == (2, 1)
    assert own_stats_publish(force=True) == 0  # nothing new


def test_long_windows_read_hourly_rollups_that_add_up_to_the_intervals(clock):
    from apps.caching.models import CacheStatHour
    from apps.caching.services import cache_stats_rollup_rebuild

    now = clock.now()
    for minutes in (1, 30, 61, 200, 600, 1300):
        cache_stat_record(cache="c", hits=minutes, misses=1, at=now - dt.timedelta(minutes=minutes))
    (day,) = cache_summaries(window_s=86400, series=True)
    assert (day.hits, day.misses) == (1 + 30 + 61 + 200 + 600 + 1300, 6)
    assert len(day.series) == 24  # one point per hour of rollups
    assert day.series[-1] == 0.5  # the 14:00 hour: 1 hit, 1 miss
    (namespace,) = namespace_summaries(window_s=86400)
    assert namespace.hits == day.hits
    before = list(CacheStatHour.objects.order_by("bucket").values_list("bucket", "hits", "misses"))
    cache_stats_rollup_rebuild(since=now - dt.timedelta(days=2))
    after = list(CacheStatHour.objects.order_by("bucket").values_list("bucket", "hits", "misses"))
    assert before == after and len(after) == 5


def test_stats_as_the_client_sends_them_are_accepted(make_api_key, clock):
    # coreadmin_client reports interval_s 0.0 right after a report, and service null
    # when the client has none: the key's own service is used then.
    from django.test import Client

    from tests.conftest import ApiClient

    api = ApiClient(Client(), make_api_key("scraper", service="reddit"))
    body = {
        "cache": "c",
        "hits": 1,
        "misses": 0,
        "evictions": 0,
        "size": 3,
        "interval_s": 0.0,
        "service": None,
    }
    assert api.post("/api/v1/cache-stats", body).status_code == 202
    assert CacheStat.objects.get().service == "reddit"
