"""The circuits and rate-limits pages in a real browser."""

from __future__ import annotations

import pytest

from apps.accounts.models import AuditEntry
from apps.circuits.models import Circuit
from apps.circuits.services import circuit_acquire, circuit_record
from apps.ratelimits.models import Policy
from apps.ratelimits.services import ratelimit_acquire

pytestmark = pytest.mark.django_db(transaction=True)


def _traffic():
    Circuit.objects.create(name="reddit-api", failure_threshold=3)
    Circuit.objects.create(name="shop-api")
    for i in range(12):
        for name in ("reddit-api", "shop-api"):
            circuit_acquire(name=name)
            circuit_record(
                name=name, outcome="failure" if name == "reddit-api" and i > 8 else "success"
            )
    Policy.objects.create(key="reddit", limit=60, period_ms=60_000, burst=5)
    Policy.objects.create(key="reddit-strict", limit=6, period_ms=60_000, burst=2, shadow=True)
    for key in ("reddit", "reddit-strict"):
        for _ in range(8):
            ratelimit_acquire(key=key, cost=1, api_key_id=1, caller="scraper-1#1")


def test_an_operator_forces_a_circuit_open_from_its_detail_page(
    logged_in_page, live_server, console_errors, artifacts
):
    _traffic()
    page = logged_in_page
    page.goto(live_server.url + "/circuits/")
    page.screenshot(path=str(artifacts / "circuits-grid.png"), full_page=True)
    assert page.locator(".circuit-tile.state-open").count() == 1
    page.click("text=shop-api")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click("button:has-text('Force open')")
    page.wait_for_selector("#circuit-state .badge-forced_open")
    page.wait_for_selector("#circuit-history .timeline li.to-forced_open")
    page.screenshot(path=str(artifacts / "circuit-detail.png"), full_page=True)
    assert Circuit.objects.get(name="shop-api").forced_state == "forced_open"
    assert AuditEntry.objects.filter(action="circuit.force").count() == 1
    page.goto(live_server.url + "/ratelimits/")
    page.screenshot(path=str(artifacts / "ratelimits.png"), full_page=True)
    assert "Shadow-mode results" in page.content()
    assert console_errors == []
