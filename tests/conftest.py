"""Fixtures shared by the whole suite. Everything talks to the real Postgres and Redis
named by DATABASE_URL and REDIS_URL (make test provides them)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.test import Client

from apps.accounts.auth import clear_key_cache
from apps.accounts.permissions import OPERATORS, VIEWERS
from apps.accounts.services import api_key_create
from apps.fleet.selectors import clear_service_config_cache
from coreadmin.clock import clock as global_clock
from coreadmin.redis import connection


def _our_keys() -> list[bytes]:
    return list(connection().scan_iter(match=settings.REDIS_KEY_PREFIX + "*", count=1000))


@pytest.fixture(autouse=True)
def redis_keys_are_ours_and_expire() -> Iterator[None]:
    """After every test: every Redis key under our prefix must have a TTL (or be listed,
    with its reason, in settings.REDIS_KEYS_WITHOUT_TTL); then the test's keys go."""
    yield
    client = connection()
    keys = _our_keys()
    allowed = tuple(settings.REDIS_KEY_PREFIX + p for p in settings.REDIS_KEYS_WITHOUT_TTL)
    immortal = [
        k.decode() for k in keys if not k.decode().startswith(allowed) and client.ttl(k) == -1
    ]
    if keys:
        client.delete(*keys)
    clear_key_cache()
    clear_service_config_cache()  # a test's configuration rows are rolled back
    if immortal:
        pytest.fail(f"Redis keys without a TTL: {immortal}")


@pytest.fixture
def clock() -> Iterator[Any]:
    """The injected clock, frozen at a fixed moment; advance it instead of sleeping."""
    global_clock.freeze(1_790_000_000.0)  # 2026-09-21T14:13:20Z
    yield global_clock
    global_clock.unfreeze()


class ApiClient:
    """A Django test client that speaks JSON and sends an API key."""

    def __init__(self, client: Client, key: str | None) -> None:
        self.client = client
        self.key = key

    def _headers(self, headers: dict[str, str] | None) -> dict[str, str]:
        out = {"X-API-Key": self.key} if self.key else {}
        out.update(headers or {})
        return out

    def get(self, path: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
        return self.client.get(path, params, headers=self._headers(headers))

    def _send(self, method: str, path: str, body: Any, headers: dict[str, str] | None) -> Any:
        data = body if isinstance(body, bytes | str) else orjson.dumps(body)
        return getattr(self.client, method)(
            path, data=data, content_type="application/json", headers=self._headers(headers)
        )

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        return self._send("post", path, {} if body is None else body, headers)

    def put(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        return self._send("put", path, {} if body is None else body, headers)

    def patch(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        return self._send("patch", path, {} if body is None else body, headers)

    def delete(self, path: str, headers: dict[str, str] | None = None) -> Any:
        return self.client.delete(path, headers=self._headers(headers))


@pytest.fixture
def make_api_key(db: None) -> Callable[..., str]:
    def make(scope: str = "scraper", service: str = "", name: str = "test-key", **kw: Any) -> str:
        return api_key_create(name=name, scope=scope, service=service, **kw).raw_key

    return make


@pytest.fixture
def scraper_api(make_api_key: Callable[..., str]) -> ApiClient:
    return ApiClient(Client(), make_api_key("scraper", name="scraper-key"))


@pytest.fixture
def admin_api(make_api_key: Callable[..., str]) -> ApiClient:
    return ApiClient(Client(), make_api_key("admin", name="admin-key"))


@pytest.fixture
def anon_api() -> ApiClient:
    return ApiClient(Client(), None)


def _user(username: str, group: str) -> User:
    user = User.objects.create_user(username=username, password="pw-" + username)
    # get_or_create: transactional tests flush the groups the data migration made.
    user.groups.add(Group.objects.get_or_create(name=group)[0])
    return user


@pytest.fixture
def operator_user(db: None) -> User:
    return _user("olivia", OPERATORS)


@pytest.fixture
def viewer_user(db: None) -> User:
    return _user("victor", VIEWERS)


@pytest.fixture
def operator_client(operator_user: User) -> Client:
    client = Client()
    client.force_login(operator_user)
    return client


@pytest.fixture
def viewer_client(viewer_user: User) -> Client:
    client = Client()
    client.force_login(viewer_user)
    return client


@pytest.fixture
def csrf_operator_client(operator_user: User) -> Client:
    """An operator whose client enforces CSRF like a browser would."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator_user)
    return client


@pytest.fixture
def redis_down(settings: Any) -> Iterator[None]:
    """Redis unreachable for the code under test: the caches point at a closed port."""
    from apps.circuits import services as circuit_services
    from tests.circuits.faults import caches_for, closed_port_url

    settings.CACHES = caches_for(closed_port_url(), settings.CACHES)
    circuit_services.clear_config_cache()
    circuit_services.backoff.reset()
    yield
    circuit_services.clear_config_cache()
    circuit_services.backoff.reset()
