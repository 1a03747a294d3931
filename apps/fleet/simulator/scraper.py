"""One simulated scraper: a thread that uses coreadmin_client for everything, the way a
real scraper would.

Each loop is one "page": take a rate-limit token, look the page up in an L1 cache, fetch
it through a leased proxy inside the site's circuit breaker, then write the post it found
(and, now and then, a post whose subreddit is only written a few seconds later, or an
invalid one), ship log lines through a ``logging`` handler and the page's stages as spans.
A heartbeat runs in the background and its config is applied live.

Page mix per site (``pick_path``): mostly normal pages, some slow (over the 1 s timeout),
some that ban (403), some that serve a captcha with 200; during an outage window (the
plan's ``outage`` for the "shop" site) every page is a 503, so its circuit opens.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from coreadmin_client import (
    CircuitOpenError,
    Client,
    CoreadminError,
    RateLimitError,
    RetryPolicy,
)
from coreadmin_client.errors import NoProxyAvailableError

from coreadmin.devservers import CAPTCHA_TEXT

from .provision import PARENTS, POSTS, RATE_LIMIT, SUBREDDITS, circuit_name
from .world import World


@dataclass
class Plan:
    """What the fleet does; the defaults make a lively dashboard without much CPU."""

    scrapers: int = 4
    duration: float = 60.0  # seconds; 0 runs until stopped
    pages: int = 0  # each scraper stops after this many pages (0: no limit)
    service: str = "sim"
    seed: int = 1
    # Part of every post id and late subreddit name, so a re-run's records are new ones.
    run_id: str = field(default_factory=lambda: f"{time.time_ns() // 1_000_000:x}")
    pace: float = 0.1  # seconds between a scraper's pages
    invalid_share: float = 0.03  # posts that fail validation (they end up dead)
    orphan_share: float = 0.03  # posts whose subreddit arrives a few seconds later
    orphan_delay: float = 3.0
    # The "shop" site answers 503 from begin to end seconds of every outage_period.
    outage: tuple[float, float] | None = (20.0, 35.0)
    outage_period: float = 120.0
    heartbeat_interval: float = 5.0
    batch_interval: float = 0.5
    spool_dir: Path | None = None
    retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(max_attempts=4, backoff_base=0.2, backoff_max=2.0)
    )


@dataclass
class Tally:
    """What the scrapers did, for the report (one per scraper, summed at the end)."""

    pages: Counter[str] = field(default_factory=Counter)  # outcome -> pages
    errors: Counter[str] = field(default_factory=Counter)  # exception class -> count

    def add(self, other: Tally) -> None:
        self.pages.update(other.pages)
        self.errors.update(other.errors)


def pick_path(rng: random.Random, site: str, n: int) -> str:
    roll = rng.random()
    if roll < 0.03:
        return "/slow?ms=1500"
    if roll < 0.035:
        return "/banned"
    if roll < 0.04:
        return "/captcha"
    if roll < 0.06:
        return "/status/500"
    return f"/{site}/item/{n % 400}"


def is_captcha(response: httpx.Response) -> bool:
    return CAPTCHA_TEXT.encode() in response.content


class Scraper(threading.Thread):
    def __init__(
        self,
        index: int,
        plan: Plan,
        world: World,
        base_url: str,
        api_key: str,
        stop: threading.Event,
        started: float,
    ) -> None:
        super().__init__(name=f"sim-scraper-{index}", daemon=True)
        self.index = index
        self.plan = plan
        self.world = world
        self.stop_event = stop
        self.started = started
        self.rng = random.Random(plan.seed * 1000 + index)
        self.tally = Tally()
        self.client = Client(
            base_url,
            api_key,
            service=plan.service,
            instance=f"sim-scraper-{index}",
            version="simulator-1",
            timeout=10.0,
            retry=plan.retry,
            make_default=False,
        )
        spool = plan.spool_dir
        self.posts = self.client.batch_writer(
            POSTS,
            interval=plan.batch_interval,
            spool_dir=spool / f"posts-{index}" if spool else None,
        )
        self.parents = self.client.batch_writer(
            PARENTS,
            interval=plan.batch_interval,
            spool_dir=spool / f"parents-{index}" if spool else None,
        )
        self.pool = self.client.proxy_pool(
            max_clients=8,
            timeout=1.0,
            wait_timeout=5.0,
            ban_predicates={site: is_captcha for site in world.sites},
        )
        self.cache = self.client.cache(
            f"sim-pages-{index % 2}", maxsize=200, ttl=5.0, report_interval=5.0
        )
        self.log = logging.getLogger(f"sim.scraper.{index}")
        self.log.propagate = False
        self.log.setLevel(logging.DEBUG)
        self.log_handler = self.client.log_handler(logging.DEBUG)
        self.log.addHandler(self.log_handler)
        self.late_parents: list[tuple[float, str]] = []
        self.seq = 0

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> None:
        self.client.start_heartbeat(
            self.plan.heartbeat_interval, extra=lambda: {"pages": sum(self.tally.pages.values())}
        )
        while not self.stop_event.is_set():
            if self.plan.pages and self.seq >= self.plan.pages:
                break
            try:
                self.page()
            except Exception as exc:  # a simulated scraper keeps going, like a real one
                self.tally.errors[type(exc).__name__] += 1
                self.log.exception("page failed")
            self.write_due_parents(time.monotonic())
            self.stop_event.wait(self.plan.pace)
        self.write_due_parents(float("inf"))

    def page(self) -> None:
        self.seq += 1
        site = self.rng.choice(tuple(self.world.sites))
        path = pick_path(self.rng, site, self.rng.randrange(10_000))
        if site == "shop" and self.in_outage():
            path = "/status/503"
        thread_id = f"sim-{self.index}-{self.seq}"
        tracker = self.client.tracker
        with tracker.track_stage(thread_id, "1_PAGE", site):
            with tracker.track_substage("1.1_RATE_LIMIT"):
                try:
                    self.client.acquire(RATE_LIMIT, timeout=2.0)
                except RateLimitError:
                    self.tally.pages["rate_limited"] += 1
                    return
            with tracker.track_substage("1.2_L1_CACHE_LOOKUP"):
                cached = self.cache.get(path)
            if cached is not None:
                self.tally.pages["cached"] += 1
                return
            with tracker.track_substage("1.3_FETCH", site):
                outcome = self.fetch(site, path)
            self.tally.pages[outcome] += 1
            if outcome == "ok":
                self.cache.set(path, True)
                with tracker.track_substage("1.4_STORE"):
                    self.store(site, thread_id)

    def in_outage(self) -> bool:
        if self.plan.outage is None:
            return False
        begin, end = self.plan.outage
        elapsed = (time.monotonic() - self.started) % self.plan.outage_period
        return begin <= elapsed < end

    def fetch(self, site: str, path: str) -> str:
        url = self.world.sites[site].url(path)
        try:
            with self.client.circuit_protected(
                circuit_name(site), failure_exceptions=(httpx.HTTPError, ServerFault)
            ):
                response = self.pool.get(url, target=site)
                if response.status_code >= 500:
                    raise ServerFault(response.status_code)
        except CircuitOpenError:
            self.log.debug("circuit %s is open; page skipped", circuit_name(site))
            return "circuit_open"
        except NoProxyAvailableError:
            self.log.warning("no proxy available for %s", site)
            return "no_proxy"
        except ServerFault as exc:
            self.log.error("%s answered %s for %s", site, exc.status, path)
            return "server_error"
        except httpx.TimeoutException:
            self.log.warning("timeout fetching %s from %s", path, site)
            return "timeout"
        except (httpx.HTTPError, CoreadminError) as exc:
            self.log.warning("fetch of %s failed: %s", path, type(exc).__name__)
            return "failure"
        if response.status_code in (403, 429) or is_captcha(response):
            self.log.warning("banned by %s (status %s)", site, response.status_code)
            return "banned"
        self.log.info("fetched %s from %s", path, site, extra={"status": response.status_code})
        return "ok"

    def store(self, site: str, thread_id: str) -> None:
        roll = self.rng.random()
        post: dict[str, Any] = {
            "id": f"{self.plan.run_id}-{self.index}-{self.seq}",
            "title": f"post {self.seq} from {site}",
            "score": self.rng.randrange(5000),
            "over_18": self.rng.random() < 0.05,
            "subreddit": self.rng.choice(SUBREDDITS),
            "fetched_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        if roll < self.plan.invalid_share:
            post["score"] = "lots"  # validation_error: ends in the dead-letter queue
        elif roll < self.plan.invalid_share + self.plan.orphan_share:
            late = f"late-{self.plan.run_id}-{self.index}-{self.seq}"
            post["subreddit"] = late  # missing_reference until the parent arrives
            self.late_parents.append((time.monotonic() + self.plan.orphan_delay, late))
        self.posts.write(post)
        self.log.debug("stored post %s", post["id"], extra={"thread_id": thread_id})

    def write_due_parents(self, now: float) -> None:
        due = [name for at, name in self.late_parents if at <= now]
        if due:
            self.late_parents = [(at, n) for at, n in self.late_parents if at > now]
            self.parents.write_many({"name": name, "title": "late"} for name in due)

    # -- the end ----------------------------------------------------------------------------
    def finish(self, timeout: float) -> dict[str, dict[str, int]]:
        """Flushes everything (replaying what was spooled) and closes; returns the
        writers' counts by dataset."""
        deadline = time.monotonic() + timeout
        for writer in (self.parents, self.posts):
            while time.monotonic() < deadline:
                writer.flush(max(0.1, deadline - time.monotonic()))
                if writer.counts["spooled"] == 0 and writer.counts["pending"] == 0:
                    break
                writer.replay()
                time.sleep(0.2)
        counts = {PARENTS: dict(self.parents.counts), POSTS: dict(self.posts.counts)}
        try:
            self.cache.report()  # the last interval's stats, not only the periodic ones
        except CoreadminError as exc:
            self.log.warning("last cache report failed: %s", exc)
        self.log.removeHandler(self.log_handler)  # loggers are global; this client is not
        self.client.close()
        return counts


class ServerFault(Exception):
    """The target answered 5xx: a failure for the circuit breaker."""

    def __init__(self, status: int) -> None:
        super().__init__(f"status {status}")
        self.status = status
