"""A real browser (Debian's chromium, headless) against a live server."""

from __future__ import annotations

import re

import pytest

from apps.accounts.models import ApiKey, AuditEntry
from apps.accounts.services import api_key_create

pytestmark = pytest.mark.django_db(transaction=True)


def test_every_page_in_the_navigation_renders_without_console_errors(
    logged_in_page, live_server, console_errors, artifacts
):
    page = logged_in_page
    links = page.eval_on_selector_all("nav.nav a", "els => els.map(e => e.getAttribute('href'))")
    assert "/" in links
    for href in links:
        response = page.goto(live_server.url + href)
        assert response is not None and response.status == 200, href
        page.wait_for_load_state("networkidle")
        name = re.sub(r"[^a-z0-9]+", "-", href.strip("/")) or "overview"
        page.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
    assert console_errors == []


def test_the_status_panel_refreshes_itself(logged_in_page):
    page = logged_in_page
    with page.expect_response(
        lambda r: r.request.headers.get("hx-request") == "true", timeout=15_000
    ):
        pass
    assert page.locator("#system-status").inner_text().count("PostgreSQL") == 1


def test_an_operator_revokes_a_key_in_place(logged_in_page, live_server, console_errors):
    created = api_key_create(name="leaked-key")
    page = logged_in_page
    page.goto(live_server.url + "/keys/")
    page.once("dialog", lambda dialog: dialog.accept())
    page.click(f"#key-{created.api_key.pk} button")
    page.wait_for_selector(f"#key-{created.api_key.pk} .badge-down")
    assert ApiKey.objects.get(pk=created.api_key.pk).revoked_at is not None
    assert AuditEntry.objects.filter(action="api_key.revoke").count() == 1
    assert console_errors == []
