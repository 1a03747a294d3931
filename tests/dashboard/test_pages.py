from __future__ import annotations

import pytest

from apps.accounts.models import ApiKey, AuditEntry
from apps.accounts.services import api_key_create

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/", "/keys/", "/tiles/none/"])
def test_pages_require_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_login_then_overview_shows_system_status(client, operator_user):
    response = client.post("/login/", {"username": "olivia", "password": "pw-olivia"})
    assert response.status_code == 302
    page = client.get("/")
    html = page.content.decode()
    assert page.status_code == 200
    for part in ("PostgreSQL", "Redis", "Celery worker"):
        assert part in html
    assert 'hx-trigger="every 5s"' in html
    assert "/static/django_htmx/" in html or "htmx" in html


def test_the_status_panel_refreshes_as_a_partial(operator_client):
    response = operator_client.get("/", headers={"HX-Request": "true"})
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="system-status"')
    assert "<html" not in html


def test_navigation_links_only_to_pages_that_exist(operator_client):
    import re

    html = operator_client.get("/").content.decode()
    nav = html.split('<nav class="nav"', 1)[1].split("</nav>", 1)[0]
    links = re.findall(r'href="([^"]+)"', nav)
    assert "/" in links and "/keys/" in links
    for link in links:
        assert operator_client.get(link).status_code == 200, link


def test_htmx_is_served_from_our_static_files(operator_client):
    html = operator_client.get("/").content.decode()
    assert "unpkg" not in html and "cdn" not in html.lower()
    assert "django_htmx/htmx" in html or "htmx.min.js" in html


def test_csrf_token_is_sent_through_hx_headers(operator_client):
    html = operator_client.get("/").content.decode()
    assert 'hx-headers=\'{"X-CSRFToken": "' in html


def test_an_operator_revokes_a_key_and_it_is_audited(operator_client):
    created = api_key_create(name="leaked")
    response = operator_client.post(f"/keys/{created.api_key.pk}/revoke/")
    assert response.status_code == 200
    assert "revoked" in response.content.decode()
    assert ApiKey.objects.get(pk=created.api_key.pk).revoked_at is not None
    entry = AuditEntry.objects.get()
    assert (entry.actor, entry.action) == ("olivia", "api_key.revoke")


def test_a_viewer_is_refused_a_write_action(viewer_client):
    created = api_key_create(name="k")
    response = viewer_client.post(f"/keys/{created.api_key.pk}/revoke/")
    assert response.status_code == 403
    assert ApiKey.objects.get(pk=created.api_key.pk).revoked_at is None
    assert not AuditEntry.objects.exists()


def test_a_viewer_sees_no_revoke_button(viewer_client):
    api_key_create(name="k")
    html = viewer_client.get("/keys/").content.decode()
    assert "Revoke</button>" not in html


def test_a_post_without_csrf_token_is_refused(csrf_operator_client):
    created = api_key_create(name="k")
    response = csrf_operator_client.post(f"/keys/{created.api_key.pk}/revoke/")
    assert response.status_code == 403
    assert ApiKey.objects.get(pk=created.api_key.pk).revoked_at is None


def test_key_list_query_count_does_not_grow_with_rows(
    operator_client, django_assert_max_num_queries
):
    for i in range(3):
        api_key_create(name=f"k{i}")
    with django_assert_max_num_queries(12) as small:
        operator_client.get("/keys/")
    for i in range(30):
        api_key_create(name=f"more{i}")
    with django_assert_max_num_queries(len(small.captured_queries)):
        operator_client.get("/keys/")
