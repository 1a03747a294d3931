from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command

from apps.accounts.models import ApiKey
from apps.accounts.services import api_key_create, api_key_revoke, hash_key

pytestmark = pytest.mark.django_db


def whoami(client, key: str | None):
    headers = {"X-API-Key": key} if key is not None else {}
    return client.get("/api/v1/whoami", headers=headers)


def test_a_valid_key_authenticates_and_whoami_names_it(client, make_api_key):
    key = make_api_key("scraper", service="reddit", name="reddit-scraper")
    response = whoami(client, key)
    assert response.status_code == 200
    assert response.json() == {"name": "reddit-scraper", "scope": "scraper", "service": "reddit"}


def test_keys_have_the_documented_format_and_only_a_hash_is_stored():
    created = api_key_create(name="k")
    assert created.raw_key.startswith(f"cak_{created.api_key.prefix}_")
    assert len(created.api_key.prefix) == 8
    row = ApiKey.objects.get(pk=created.api_key.pk)
    assert row.key_hash == hash_key(created.raw_key)
    secret = created.raw_key.split("_", 2)[2]
    assert secret not in str(row.__dict__)


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda k: None, "api_key_missing"),
        (lambda k: "", "api_key_missing"),
        (lambda k: "not-a-key", "api_key_malformed"),
        (lambda k: k[:-5], "api_key_invalid"),  # truncated
        (lambda k: k.upper(), "api_key_malformed"),  # case-changed prefix is not our format
        (lambda k: k[:-1] + ("A" if k[-1] != "A" else "B"), "api_key_invalid"),  # one char
        (lambda k: k[:14] + k[14:].swapcase(), "api_key_invalid"),  # case-changed secret
        (lambda k: " " + k, "api_key_malformed"),  # leading space
        (lambda k: "cak_zzzzzzzz_" + "a" * 40, "api_key_invalid"),  # unknown
    ],
    ids=[
        "missing",
        "empty",
        "malformed",
        "truncated",
        "upper",
        "altered",
        "secret-case",
        "leading-space",
        "unknown",
    ],
)
def test_bad_keys_are_refused_with_401_and_a_precise_code(client, make_api_key, mutate, code):
    key = make_api_key("admin")
    response = whoami(client, mutate(key))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == code


def test_a_revoked_key_is_refused(client, make_api_key):
    key = make_api_key()
    api_key_revoke(api_key=ApiKey.objects.get(), actor="test")
    response = whoami(client, key)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "api_key_revoked"


def test_an_expired_key_is_refused(client, make_api_key, clock):
    key = make_api_key(expires_in_days=1)
    assert whoami(client, key).status_code == 200
    clock.advance(seconds=86_400 + 1)
    response = whoami(client, key)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "api_key_expired"


def test_revocation_is_seen_within_the_cache_bound(client, make_api_key, clock, settings):
    key = make_api_key()
    assert whoami(client, key).status_code == 200
    ApiKey.objects.update(revoked_at=clock.now())  # another process revokes it
    clock.advance(seconds=settings.API_KEY_CACHE_SECONDS + 0.01)
    assert whoami(client, key).status_code == 401


def test_a_scraper_key_is_refused_on_admin_endpoints_with_403(client, make_api_key):
    key = make_api_key("scraper")
    response = client.get("/api/v1/keys", headers={"X-API-Key": key})
    assert response.status_code == 403
    body = response.json()["error"]
    assert body["code"] == "insufficient_scope"
    assert body["details"]["required_scope"] == "admin"


def test_an_admin_key_may_call_admin_endpoints(client, make_api_key):
    key = make_api_key("admin")
    response = client.get("/api/v1/keys", headers={"X-API-Key": key})
    assert response.status_code == 200
    assert response.json()["count"] == 1


def test_a_service_restricted_key_is_refused_for_another_service():
    from apps.accounts.auth import PermissionDenied, Principal, require_service

    principal = Principal(key_id=1, name="k", scope="scraper", service="reddit")
    require_service(principal, "reddit")
    with pytest.raises(PermissionDenied) as caught:
        require_service(principal, "twitter")
    assert caught.value.status == 403
    assert caught.value.code == "service_not_allowed"


def test_authentication_writes_last_used_at_most_once_per_interval(
    client, make_api_key, clock, django_assert_num_queries
):
    key = make_api_key()
    whoami(client, key)  # loads the key and writes last_used_at
    first = ApiKey.objects.get().last_used_at
    assert first == clock.now()
    with django_assert_num_queries(0):
        for _ in range(20):
            assert whoami(client, key).status_code == 200
    clock.advance(seconds=61)
    whoami(client, key)
    assert ApiKey.objects.get().last_used_at == clock.now()


def test_create_api_key_command_prints_the_key_alone_on_the_last_line(capsys):
    call_command(
        "create_api_key",
        "--name",
        "cli",
        "--scope",
        "admin",
        "--service",
        "reddit",
        "--expires-days",
        "30",
    )
    last_line = capsys.readouterr().out.strip().splitlines()[-1]
    row = ApiKey.objects.get(name="cli")
    assert last_line.startswith(f"cak_{row.prefix}_")
    assert row.key_hash == hash_key(last_line)
    assert (row.scope, row.service) == ("admin", "reddit")
    assert row.expires_at is not None
    assert row.expires_at - row.created_at > dt.timedelta(days=29)


def test_keys_api_creates_shows_once_and_revokes(admin_api, client):
    created = admin_api.post("/api/v1/keys", {"name": "new", "scope": "scraper"})
    assert created.status_code == 201
    raw = created.json()["key"]
    assert whoami(client, raw).status_code == 200
    listed = admin_api.get("/api/v1/keys").json()
    assert all("key" not in item and "key_hash" not in item for item in listed["items"])
    revoked = admin_api.post(f"/api/v1/keys/{created.json()['id']}/revoke")
    assert revoked.json()["revoked_at"] is not None
