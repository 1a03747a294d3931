"""The proxy pages in a real browser: freeze in place, detail charts render."""

from __future__ import annotations

import pytest

from apps.accounts.models import AuditEntry
from apps.proxies.models import Proxy
from apps.proxies.services import health_check_record, proxy_create

pytestmark = pytest.mark.django_db(transaction=True)


def test_an_operator_freezes_a_proxy_in_place_and_sees_its_history(
    logged_in_page, live_server, console_errors, artifacts
):
    proxies = [
        proxy_create(url=f"http://user:pw@10.0.0.{i}:3128", service="reddit", country="US")
        for i in range(1, 4)
    ]
    for index in range(12):
        health_check_record(proxy=proxies[0], ok=index % 4 != 0, latency_ms=80.0 + index * 7)
    page = logged_in_page
    page.goto(live_server.url + "/proxies/")
    page.screenshot(path=str(artifacts / "proxies-list.png"), full_page=True)
    page.click(f"#proxy-{proxies[1].pk} button:has-text('Freeze')")
    page.wait_for_selector(f"#proxy-{proxies[1].pk} .badge-frozen")
    assert Proxy.objects.get(pk=proxies[1].pk).status == "frozen"
    assert AuditEntry.objects.filter(action="proxy.freeze").count() == 1
    page.goto(live_server.url + f"/proxies/{proxies[0].pk}/")
    assert page.locator("svg.chart polyline").count() >= 2
    page.screenshot(path=str(artifacts / "proxies-detail.png"), full_page=True)
    assert console_errors == []
