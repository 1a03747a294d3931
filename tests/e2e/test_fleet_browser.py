"""A real browser on a dashboard fed by a simulated fleet (apps/fleet/simulator) through
coreadmin_client: every page renders the fleet's data without console errors, and what an
operator does there reaches the fleet (a circuit forced open stops its calls, a frozen
proxy is no longer used). Screenshots go to test-artifacts/screenshots/fleet-*.png."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.db import connection

from apps.fleet.simulator import Plan, Report, simulate
from apps.fleet.simulator.world import World
from apps.proxies.models import Proxy

pytestmark = pytest.mark.django_db(transaction=True)

PAGES = [
    "/",
    "/proxies/",
    "/circuits/",
    "/circuits/sim-news/",
    "/ratelimits/",
    "/datasets/",
    "/datasets/retries/",
    "/logs/",
    "/tracing/",
    "/caches/",
    "/fleet/",
]


class Fleet:
    def __init__(self, url: str, key: str) -> None:
        self.stop = threading.Event()
        self.worlds: list[World] = []
        self.reports: list[Report] = []
        plan = Plan(scrapers=2, duration=0, pace=0.02, outage=None, heartbeat_interval=2.0)
        self.thread = threading.Thread(
            target=lambda: self.reports.append(
                simulate(plan, url, key, stop=self.stop, on_world=self.worlds.append)
            ),
            daemon=True,
        )

    @property
    def world(self) -> World:
        return self.worlds[0]

    def traffic(self, site: str, pages: int, timeout: float = 60.0) -> None:
        """Waits until ``site`` served ``pages`` more pages."""
        deadline = time.monotonic() + timeout
        while not self.worlds:
            assert time.monotonic() < deadline and self.thread.is_alive(), "fleet did not start"
            time.sleep(0.05)
        start = sum(self.world.sites[site].hits.values())
        while sum(self.world.sites[site].hits.values()) < start + pages:
            assert time.monotonic() < deadline, f"{site}: fewer than {pages} pages in {timeout} s"
            time.sleep(0.05)


@pytest.fixture
def fleet(live_server: Any, make_api_key: Callable[..., str]) -> Iterator[Fleet]:
    f = Fleet(str(live_server.url), make_api_key("admin", name="simulator"))
    f.thread.start()
    f.traffic("news", 20)
    yield f
    f.stop.set()
    f.thread.join(120)
    with connection.cursor() as cursor:  # unmanaged, partitioned: not flushed by Django
        cursor.execute("TRUNCATE tracing_span, logs_logline")


def test_every_page_shows_the_fleet_without_console_errors(
    fleet: Fleet, logged_in_page, live_server, console_errors, artifacts
):
    page = logged_in_page
    for path in PAGES:
        response = page.goto(live_server.url + path)
        assert response is not None and response.status == 200, path
        name = path.strip("/").replace("/", "-") or "overview"
        page.screenshot(path=str(artifacts / f"fleet-{name}.png"), full_page=True)
    page.goto(live_server.url + "/fleet/")
    assert "sim-scraper-0" in page.content()
    page.goto(live_server.url + "/proxies/?service=sim")
    assert page.locator("tbody tr").count() == len(fleet.world.proxies)
    assert console_errors == []


def test_a_circuit_forced_open_in_the_browser_stops_the_fleet_calling_that_site(
    fleet: Fleet, logged_in_page, live_server, console_errors
):
    fleet.traffic("shop", 5)  # the fleet calls shop while its circuit is closed
    page = logged_in_page
    page.goto(live_server.url + "/circuits/sim-shop/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button:has-text('Force open')")
    page.wait_for_selector("#circuit-state .badge-forced_open")
    # The client's view of a circuit is at most max_staleness (1 s) old: once the fleet
    # has fetched news for a while, it has stopped calling shop.
    fleet.traffic("news", 20)
    shop = fleet.world.sites["shop"]
    before = sum(shop.hits.values())
    fleet.traffic("news", 30)
    assert sum(shop.hits.values()) == before
    assert console_errors == []


def test_a_proxy_frozen_in_the_browser_is_no_longer_used(
    fleet: Fleet, logged_in_page, live_server, console_errors
):
    proxy = fleet.world.proxies["healthy-1"]
    fleet.traffic("news", 20)
    assert proxy.requests > 0  # in use before the freeze
    row = Proxy.objects.get(service="sim", port=proxy.port)
    page = logged_in_page
    page.goto(live_server.url + "/proxies/?service=sim")
    page.click(f"#proxy-{row.pk} button:has-text('Freeze')")
    page.wait_for_selector(f"#proxy-{row.pk} button:has-text('Unfreeze')")
    fleet.traffic("news", 10)  # leases handed out before the freeze are used up
    before = proxy.requests
    fleet.traffic("news", 30)
    assert proxy.requests == before
    assert console_errors == []
