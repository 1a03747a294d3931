"""Proxy pages: list with filters and pagination, detail with SVG charts, htmx actions."""

from __future__ import annotations

from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext

from apps.accounts.models import AuditEntry
from apps.proxies.models import Proxy
from apps.proxies.services import health_check_record, leases_flush, proxy_ban


def test_the_list_shows_health_columns_and_filters_by_service_status_and_country(
    operator_client, make_proxy, clock
):
    make_proxy(service="reddit", country="US", host="10.1.1.1")
    make_proxy(service="twitter", country="DE", host="10.2.2.2")
    page = operator_client.get("/proxies/", {"service": "twitter"}).content.decode()
    assert "10.2.2.2" in page and "10.1.1.1" not in page
    assert "1/1" in page or "usable" in page
    by_country = operator_client.get("/proxies/", {"country": "us"}).content.decode()
    assert "10.1.1.1" in by_country and "10.2.2.2" not in by_country
    frozen = operator_client.get("/proxies/", {"status": "frozen"}).content.decode()
    assert "No proxies match." in frozen


def test_the_list_query_count_does_not_grow_with_rows(operator_client, make_proxy, clock):
    make_proxy()
    operator_client.get("/proxies/")
    with CaptureQueriesContext(db_connection) as few:
        operator_client.get("/proxies/")
    for index in range(30):
        proxy = make_proxy(host=f"10.9.0.{index}")
        proxy_ban(proxy=proxy, target="reddit.com")
    with CaptureQueriesContext(db_connection) as many:
        response = operator_client.get("/proxies/")
    assert response.status_code == 200
    assert len(many) == len(few)


def test_the_list_is_paginated_and_htmx_gets_only_the_table(operator_client, make_proxy, clock):
    for index in range(55):
        make_proxy(host=f"10.3.0.{index}")
    first = operator_client.get("/proxies/").content.decode()
    assert "Page 1 of 2" in first
    partial = operator_client.get("/proxies/", {"page": 2}, headers={"HX-Request": "true"})
    body = partial.content.decode()
    assert body.lstrip().startswith('<div id="proxy-table">')
    assert "Page 2 of 2" in body and "<html" not in body


def test_an_operator_freezes_and_unfreezes_in_place_with_an_audit_entry(
    csrf_operator_client, make_proxy, clock
):
    proxy = make_proxy()
    page = csrf_operator_client.get("/proxies/")
    token = page.cookies["csrftoken"].value
    response = csrf_operator_client.post(
        f"/proxies/{proxy.id}/freeze/", headers={"X-CSRFToken": token, "HX-Request": "true"}
    )
    assert response.status_code == 200
    assert response.content.decode().startswith(f'<tr id="proxy-{proxy.id}">')
    assert Proxy.objects.get(pk=proxy.pk).status == "frozen"
    assert AuditEntry.objects.filter(action="proxy.freeze").count() == 1
    csrf_operator_client.post(f"/proxies/{proxy.id}/unfreeze/", headers={"X-CSRFToken": token})
    assert Proxy.objects.get(pk=proxy.pk).status == "active"


def test_a_post_without_csrf_is_refused(csrf_operator_client, make_proxy, clock):
    proxy = make_proxy()
    assert csrf_operator_client.post(f"/proxies/{proxy.id}/freeze/").status_code == 403
    assert Proxy.objects.get(pk=proxy.pk).status == "active"


def test_viewers_see_no_actions_and_cannot_freeze(viewer_client, make_proxy, clock):
    proxy = make_proxy()
    page = viewer_client.get("/proxies/").content.decode()
    assert "Freeze" not in page
    assert viewer_client.post(f"/proxies/{proxy.id}/freeze/").status_code == 403
    assert Proxy.objects.get(pk=proxy.pk).status == "active"


def test_check_now_goes_through_the_real_proxy(operator_client, target_site, settings, db, clock):
    from apps.proxies.services import proxy_create
    from coreadmin.devservers import TARGET_OK_TEXT, ForwardProxy

    settings.PROXY_CHECK_URL = target_site.url("/")
    settings.PROXY_CHECK_EXPECT_TEXT = TARGET_OK_TEXT
    with ForwardProxy() as server:
        proxy = proxy_create(url=server.url, service="reddit")
        response = operator_client.post(f"/proxies/{proxy.id}/check/")
        assert server.requests == 1
    assert response.status_code == 200
    assert Proxy.objects.get(pk=proxy.pk).last_checked_at == clock.now()


def test_the_detail_page_charts_history_and_lists_bans_and_leases(
    operator_client, scraper_api, make_proxy, clock
):
    proxy = make_proxy()
    for index in range(5):
        health_check_record(proxy=proxy, ok=index % 2 == 0, latency_ms=100.0 + index)
        clock.advance(60)
    lease = scraper_api.post(
        "/api/v1/proxies/lease", {"service": "reddit", "target": "reddit.com"}
    ).json()
    scraper_api.post(f"/api/v1/proxies/leases/{lease['lease_id']}/report", {"outcome": "banned"})
    leases_flush()
    page = operator_client.get(f"/proxies/{proxy.id}/").content.decode()
    assert page.count("<svg") == 2 and "<polyline" in page
    assert "reddit.com" in page and "scraper-key" in page and "banned" in page
    assert operator_client.get("/proxies/999999/").status_code == 404


def test_the_overview_tile_shows_usable_over_total(operator_client, make_proxy, admin_api, clock):
    make_proxy(), make_proxy()
    frozen = make_proxy()
    admin_api.patch(f"/api/v1/proxies/{frozen.id}", {"status": "frozen"})
    tile = operator_client.get("/tiles/proxies/").content.decode()
    assert "2/3" in tile and "proxies usable/total" in tile
    overview = operator_client.get("/").content.decode()
    assert "Proxy pool" in overview and "2/3" in overview
