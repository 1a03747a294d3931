"""A canary password appears nowhere but in the lease response to the key that leased:
not in the API's list, detail or errors, the admin, the dashboard, command output or logs."""

from __future__ import annotations

import logging

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client

from apps.proxies.models import Proxy

from .conftest import CANARY

URL = f"http://alice:{CANARY}@proxy.example.net:3128"


@pytest.fixture
def superuser_client(db) -> Client:
    user = User.objects.create_superuser("root", password="pw-root-long-enough")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def captured_logs(caplog, capsys):
    caplog.set_level(logging.DEBUG)

    def text() -> str:
        out = capsys.readouterr()
        return caplog.text + out.out + out.err + "".join(str(r.__dict__) for r in caplog.records)

    return text


def test_the_canary_shows_only_in_the_lessees_lease_response(
    admin_api, scraper_api, superuser_client, operator_client, captured_logs, clock, capsys
):
    created = admin_api.post("/api/v1/proxies", {"url": URL, "service": "reddit"})
    proxy_id = created.json()["id"]
    seen: dict[str, str] = {
        "create response": created.content.decode(),
        "api list": admin_api.get("/api/v1/proxies").content.decode(),
        "api detail": admin_api.get(f"/api/v1/proxies/{proxy_id}").content.decode(),
        "api patch": admin_api.patch(
            f"/api/v1/proxies/{proxy_id}", {"country": "us"}
        ).content.decode(),
    }
    lease = scraper_api.post("/api/v1/proxies/lease", {"service": "reddit", "target": "x.com"})
    assert CANARY in lease.json()["proxy_url"]  # the one place it belongs
    seen["report"] = scraper_api.post(
        f"/api/v1/proxies/leases/{lease.json()['lease_id']}/report", {"outcome": "banned"}
    ).content.decode()
    seen["duplicate error"] = admin_api.post(
        "/api/v1/proxies", {"url": URL, "service": "reddit"}
    ).content.decode()
    seen["invalid url error"] = admin_api.post(
        "/api/v1/proxies", {"url": f"http://alice:{CANARY}@h:99999", "service": "reddit"}
    ).content.decode()
    seen["admin change list"] = superuser_client.get("/admin/proxies/proxy/").content.decode()
    seen["admin change form"] = superuser_client.get(
        f"/admin/proxies/proxy/{proxy_id}/change/"
    ).content.decode()
    seen["admin leases"] = superuser_client.get("/admin/proxies/lease/").content.decode()
    seen["dashboard list"] = operator_client.get("/proxies/").content.decode()
    seen["dashboard detail"] = operator_client.get(f"/proxies/{proxy_id}/").content.decode()
    seen["overview"] = operator_client.get("/").content.decode()
    seen["not found page"] = operator_client.get("/proxies/987654/").content.decode()
    call_command(
        "check_proxies", "--attempts", "1", "--timeout", "0.2", "--url", "http://127.0.0.1:9/"
    )
    seen["command output"] = capsys.readouterr().out
    seen["logs"] = captured_logs()
    leaks = [where for where, text in seen.items() if CANARY in text]
    assert leaks == []
    stored = Proxy.objects.get(pk=proxy_id).password_encrypted
    assert stored not in seen["admin change form"]


def test_another_key_never_gets_the_password_through_a_report(
    admin_api, scraper_api, make_api_key, clock
):
    admin_api.post("/api/v1/proxies", {"url": URL, "service": "reddit"})
    lease = scraper_api.post("/api/v1/proxies/lease", {"service": "reddit", "target": "x.com"})
    other = Client()
    response = other.post(
        f"/api/v1/proxies/leases/{lease.json()['lease_id']}/report",
        data={"outcome": "success"},
        content_type="application/json",
        headers={"X-API-Key": make_api_key("scraper", name="other")},
    )
    assert response.status_code == 404 and CANARY not in response.content.decode()


def test_the_admin_password_is_write_only_and_kept_when_left_blank(superuser_client, clock):
    proxy = Proxy(scheme="http", host="10.0.0.9", port=8080, username="bob", service="reddit")
    proxy.set_password(CANARY)
    proxy.save()
    form = {
        "scheme": "http",
        "host": "10.0.0.9",
        "port": "8081",
        "username": "bob",
        "new_password": "",
        "service": "reddit",
        "country": "",
        "tags": "[]",
        "status": "active",
        "bans-TOTAL_FORMS": "0",
        "bans-INITIAL_FORMS": "0",
    }
    response = superuser_client.post(f"/admin/proxies/proxy/{proxy.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:2000]
    proxy.refresh_from_db()
    assert proxy.port == 8081 and proxy.password() == CANARY
    superuser_client.post(
        f"/admin/proxies/proxy/{proxy.pk}/change/", {**form, "new_password": "rotated-pw"}
    )
    proxy.refresh_from_db()
    assert proxy.password() == "rotated-pw"


def test_admin_actions_freeze_and_unfreeze(superuser_client, make_proxy, clock):
    proxy = make_proxy()
    superuser_client.post(
        "/admin/proxies/proxy/", {"action": "freeze", "_selected_action": [proxy.pk]}
    )
    assert Proxy.objects.get(pk=proxy.pk).status == "frozen"
    superuser_client.post(
        "/admin/proxies/proxy/", {"action": "unfreeze", "_selected_action": [proxy.pk]}
    )
    assert Proxy.objects.get(pk=proxy.pk).status == "active"


def test_deleting_a_ban_in_the_admin_lifts_it_for_leasing(
    superuser_client, scraper_api, make_proxy, clock
):
    proxy = make_proxy(password=CANARY)
    grant = scraper_api.post("/api/v1/proxies/lease", {"service": "reddit", "target": "x.com"})
    scraper_api.post(
        f"/api/v1/proxies/leases/{grant.json()['lease_id']}/report", {"outcome": "banned"}
    )
    ban = proxy.bans.get()
    assert (
        scraper_api.post(
            "/api/v1/proxies/lease", {"service": "reddit", "target": "x.com"}
        ).status_code
        == 503
    )
    form = {
        "scheme": "http",
        "host": proxy.host,
        "port": str(proxy.port),
        "username": "user",
        "new_password": "",
        "service": "reddit",
        "country": "",
        "tags": "[]",
        "status": "active",
        "bans-TOTAL_FORMS": "1",
        "bans-INITIAL_FORMS": "1",
        "bans-0-id": str(ban.pk),
        "bans-0-proxy": str(proxy.pk),
        "bans-0-DELETE": "on",
    }
    response = superuser_client.post(f"/admin/proxies/proxy/{proxy.pk}/change/", form)
    assert response.status_code == 302, response.content.decode()[:3000]
    assert not proxy.bans.exists()
    assert (
        scraper_api.post(
            "/api/v1/proxies/lease", {"service": "reddit", "target": "x.com"}
        ).status_code
        == 200
    )
