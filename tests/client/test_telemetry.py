"""Logs, spans, cache stats and heartbeats through the client to the live server."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import uuid
from pathlib import Path
from typing import Any

import pytest
from coreadmin_client import Client, LRUCache, is_sampled
from coreadmin_client.tracing import Tracker

from tests.client.conftest import FAST, requires, run_async, wait_until
from tests.client.relay import Relay


def reference_sampled(thread_id: str, rate: float) -> bool:
    """API.md's rule written out independently of the client's code."""
    digest = hashlib.sha256(thread_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], byteorder="big", signed=False) < math.floor(rate * 2**64)


def test_sampling_follows_the_servers_rule_for_every_rate() -> None:
    ids = [f"thread-{i}" for i in range(2000)] + ["", "ünïcödé-✓", str(uuid.UUID(int=7))]
    for rate in (0.0, 0.001, 0.1, 0.5, 0.999, 1.0):
        assert [is_sampled(t, rate) for t in ids] == [reference_sampled(t, rate) for t in ids]
    assert all(is_sampled(t, 1.0) for t in ids) and not any(is_sampled(t, 0.0) for t in ids)
    share = sum(is_sampled(t, 0.25) for t in ids) / len(ids)
    assert 0.2 < share < 0.3


def test_sampling_is_identical_to_the_servers_implementation() -> None:
    requires("/api/v1/spans")
    from apps.tracing import sampling  # type: ignore[attr-defined]

    ids = [f"t{i}" for i in range(3000)]
    for rate in (0.01, 0.3, 0.77):
        assert [is_sampled(t, rate) for t in ids] == [sampling.is_sampled(t, rate) for t in ids]


def test_log_handler_ships_records_with_their_context(
    client: Client, admin: Client, tmp_path: Path
) -> None:
    requires("/api/v1/logs")
    shipper = client.log_shipper(spool_dir=tmp_path)
    logger = logging.getLogger("scraper.test")
    logger.setLevel(logging.DEBUG)
    handler = client.log_handler(logging.INFO)
    logger.addHandler(handler)
    try:
        logger.info("fetched %s", "page-1", extra={"status": 200})
        logger.debug("not shipped: below the handler's level")
    finally:
        logger.removeHandler(handler)
    assert shipper.batcher.flush(10)
    assert shipper.batcher.counts["written"] == 1
    items = admin.request("GET", "/api/v1/logs", params={"service": "reddit"})["items"]
    assert [i["message"] for i in items] == ["fetched page-1"]
    assert items[0]["logger"] == "scraper.test" and items[0]["level"] == "info"


def test_structlog_processor_ships_through_the_same_batcher(
    client: Client, admin: Client, tmp_path: Path
) -> None:
    requires("/api/v1/logs")
    import structlog

    shipper = client.log_shipper(spool_dir=tmp_path)
    processor = client.structlog_processor()
    log = structlog.wrap_logger(
        structlog.ReturnLogger(),
        processors=[
            structlog.processors.add_log_level,
            processor,
            structlog.processors.JSONRenderer(),
        ],
    )
    log.warning("proxy slow", proxy_id=3)
    assert client.log_shipper() is shipper
    assert shipper.batcher.flush(10) and shipper.batcher.counts["written"] == 1
    items = admin.request("GET", "/api/v1/logs", params={"service": "reddit"})["items"]
    assert items[0]["message"] == "proxy slow" and items[0]["level"] == "warning"


def test_logging_never_blocks_even_with_the_server_down_and_the_queue_full(
    relay, scraper_key: str, tmp_path: Path
) -> None:
    relay.stop()
    with Client(relay.url, scraper_key, service="reddit", make_default=False) as c:
        shipper = c.log_shipper(spool_dir=tmp_path, max_queue=10, batch_size=5)
        for i in range(500):
            shipper.ship("INFO", "x", f"line {i}")
        counts = shipper.batcher.counts
        assert counts["submitted"] == 500
        assert counts["pending"] + counts["spooled"] + counts["dead"] == 500
        assert counts["dead"] == 0


def test_stages_are_shipped_as_spans_and_summarised_per_thread(
    client: Client, admin: Client
) -> None:
    requires("/api/v1/spans")
    tracker = client.tracker
    tracker.sampling_rate = 1.0
    with tracker.track_stage("thread-42", "2_FETCH", "fetch listing"):
        with tracker.track_substage("2.1_L1_CACHE_LOOKUP"):
            pass
        with tracker.track_substage("2.2_HTTP_GET"):
            pass
    with pytest.raises(ValueError), tracker.track_stage("thread-42", "3_PARSE"):
        raise ValueError("bad html")
    assert tracker.flush(10) and tracker.batcher.counts["written"] == 4
    summary = tracker.summary("thread-42")
    assert summary is not None
    assert set(summary["stages"]) == {"2_FETCH", "2.1_L1_CACHE_LOOKUP", "2.2_HTTP_GET", "3_PARSE"}
    assert summary["stages"]["3_PARSE"]["errors"] == 1
    thread = admin.request("GET", "/api/v1/tracing/threads/thread-42")
    spans = thread.get("spans") or thread.get("items")
    assert {s["stage"] for s in spans} == set(summary["stages"])
    parents = {s["stage"]: s.get("parent_stage") for s in spans}
    assert parents["2.1_L1_CACHE_LOOKUP"] == "2_FETCH"


def test_log_and_span_answers_lost_on_the_way_back_store_each_batch_once(
    relay: Relay, scraper_key: str, admin: Client, tmp_path: Path
) -> None:
    """The server commits, the client never hears back, resends under the same batch_id
    (journal replay): the server's batch_id dedupe stores each line and span once."""
    requires("/api/v1/logs")
    # A thread the server keeps at its default 10% rate too.
    thread = next(t for t in (f"thread-lost-{i}" for i in range(1000)) if is_sampled(t, 0.1))
    with Client(relay.url, scraper_key, retry=FAST, make_default=False) as client:
        shipper = client.log_shipper(spool_dir=tmp_path / "logs", batch_size=5)
        tracker = Tracker(client, sampling_rate=1.0, batch_size=3, spool_dir=tmp_path / "spans")
        for batcher in (shipper.batcher, tracker.batcher):
            batcher.replay_interval = 0.05
        relay.drop_responses = True
        for i in range(5):
            shipper.ship("info", "lost", f"lost answer {i}")
        for stage in ("7_LOST", "7.1_LOST", "7.2_LOST"):
            with tracker.track_stage(thread, stage):
                pass
        assert shipper.batcher.flush(20) and tracker.batcher.flush(20)
        assert shipper.batcher.counts["spooled"] == 5 and tracker.batcher.counts["spooled"] == 3
        relay.drop_responses = False
        wait_until(lambda: shipper.batcher.counts["written"] == 5)
        wait_until(lambda: tracker.batcher.counts["written"] == 3, timeout=3) if 0 else None
        wait_until(lambda: tracker.batcher.counts["written"] == 3)
    lines = admin.request("GET", "/api/v1/logs", params={"q": "lost answer", "limit": 100})
    assert sorted(i["message"] for i in lines["items"]) == [f"lost answer {i}" for i in range(5)]
    stored_thread = admin.request("GET", f"/api/v1/tracing/threads/{thread}")
    assert sorted(s["stage"] for s in stored_thread["spans"]) == ["7.1_LOST", "7.2_LOST", "7_LOST"]


def test_spans_the_server_samples_out_count_as_delivered_not_rejected(client: Client) -> None:
    requires("/api/v1/spans")
    thread = next(t for t in (f"thread-out-{i}" for i in range(1000)) if not is_sampled(t, 0.1))
    tracker = Tracker(client, sampling_rate=1.0, batch_size=2)
    for stage in ("8_OUT", "8.1_OUT"):
        with tracker.track_stage(thread, stage):
            pass
    assert tracker.flush(10)
    counts = tracker.batcher.counts
    assert (counts["written"], counts["rejected"]) == (2, 0)


def test_unsampled_threads_ship_nothing_but_are_still_summarised(client: Client) -> None:
    tracker = client.tracker
    tracker.sampling_rate = 0.0
    with tracker.track_stage("thread-x", "1_START"):
        pass
    assert tracker.batcher.counts["submitted"] == 0
    assert tracker.summary("thread-x")["stages"]["1_START"]["count"] == 1  # type: ignore[index]


def test_async_stages_keep_their_own_thread_id(client: Client) -> None:
    tracker = client.tracker
    tracker.sampling_rate = 0.0

    async def scrape(tid: str) -> None:
        async with tracker.track_stage(tid, "1_RUN"):
            await asyncio.sleep(0)
            async with tracker.track_substage("1.1_STEP"):
                await asyncio.sleep(0)

    async def main() -> None:
        await asyncio.gather(*(scrape(f"async-{i}") for i in range(5)))

    run_async(main())
    for i in range(5):
        assert tracker.summary(f"async-{i}")["stages"]["1.1_STEP"]["count"] == 1  # type: ignore[index]


def test_the_l1_cache_evicts_least_recently_used_and_expires_by_ttl() -> None:
    now = [1000.0]
    cache = LRUCache(None, "l1", maxsize=2, ttl=10, clock=lambda: now[0])
    cache.set("a", 1)
    cache.set("b", 2)
    assert cache.get("a") == 1
    cache.set("c", 3)  # evicts b, the least recently used
    assert cache.get("b") is None and cache.get("a") == 1
    now[0] += 11
    assert cache.get("a") is None
    assert cache.get_or_set("a", lambda: 9) == 9
    assert run_async(cache.aget_or_set("z", _async_value)) == "computed"
    stats = cache.stats()
    assert (stats["hits"], stats["misses"], stats["evictions"]) == (2, 4, 2)


async def _async_value() -> str:
    return "computed"


def test_cache_stats_are_reported_to_the_server(client: Client, admin: Client) -> None:
    requires("/api/v1/cache-stats")
    cache = client.cache("reddit-l1", report_interval=0)
    cache.set("k", "v")
    for _ in range(3):
        cache.get("k")
    cache.get("missing")
    cache.report()
    items = admin.request("GET", "/api/v1/caches", params={"window_s": 3600})["items"]
    row = next(i for i in items if i["cache"] == "reddit-l1")
    assert (row["hits"], row["misses"]) == (3, 1)
    cache.report()  # deltas: nothing new
    items = admin.request("GET", "/api/v1/caches", params={"window_s": 3600})["items"]
    assert next(i for i in items if i["cache"] == "reddit-l1")["hits"] == 3


def test_a_heartbeat_returns_config_that_is_applied_without_restart(
    client: Client, tmp_path: Path
) -> None:
    requires("/api/v1/fleet/heartbeat")
    writer = client.batch_writer("posts", spool_dir=tmp_path, batch_size=10)
    config = client.heartbeat({"pages": 3})
    assert isinstance(config, dict)
    from coreadmin_client.fleet import apply_config

    assert set(config) >= {"batch_size", "span_sample_rate", "min_log_level"}
    assert writer._batcher.batch_size == config["batch_size"]
    handler = client.log_handler(logging.DEBUG)
    apply_config(client, {"batch_size": 77, "min_log_level": "error", "span_sample_rate": 0.5})
    assert writer._batcher.batch_size == 77
    assert client.tracker.sampling_rate == 0.5 and handler.level == logging.ERROR
    writer.close()


def test_the_background_heartbeat_keeps_the_config_current(client: Client) -> None:
    requires("/api/v1/fleet/heartbeat")
    beats: list[dict[str, Any]] = []
    client.start_heartbeat(interval=0.05, extra=lambda: beats.append({}) or {"n": len(beats)})
    wait_until(lambda: len(beats) >= 3)
    assert client.config["batch_size"] >= 1

    async def beat() -> dict[str, Any]:
        try:
            return await client.aheartbeat()
        finally:
            await client.transport.aclose()

    assert run_async(beat())["batch_size"] == client.config["batch_size"]


def test_cache_stats_are_reported_periodically(client: Client, admin: Client) -> None:
    requires("/api/v1/cache-stats")
    cache = client.cache("periodic-l1", report_interval=0.05)
    cache.set("k", 1)
    cache.get("k")

    def reported() -> bool:
        items = admin.request("GET", "/api/v1/caches", params={"window_s": 3600})["items"]
        return any(i["cache"] == "periodic-l1" and i["hits"] == 1 for i in items)

    wait_until(reported)
