"""Fixtures for the proxy pool: proxies made through the service layer, a canary password,
and real loopback servers (a target site and forward proxies) for health checks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from apps.proxies.models import PoolPolicy, Proxy
from apps.proxies.services import clear_policy_cache, proxy_create
from coreadmin.devservers import TargetSite

CANARY = "canary-pw-7f3a9c1e5b"


@pytest.fixture(autouse=True)
def _fresh_policies() -> Iterator[None]:
    clear_policy_cache()
    yield
    clear_policy_cache()


@pytest.fixture
def make_proxy(db: None) -> Callable[..., Proxy]:
    counter = iter(range(10_000, 60_000))

    def make(service: str = "reddit", password: str = "pw", **kw: Any) -> Proxy:
        port = kw.pop("port", next(counter))
        host = kw.pop("host", "10.0.0.1")
        user = kw.pop("username", "user")
        auth = f"{user}:{password}@" if user else ""
        proxy = proxy_create(url=f"http://{auth}{host}:{port}", service=service, **kw)
        return proxy

    return make


@pytest.fixture
def policy(db: None) -> Callable[..., PoolPolicy]:
    def make(service: str = "reddit", **kw: Any) -> PoolPolicy:
        row, _ = PoolPolicy.objects.update_or_create(service=service, defaults=kw)
        clear_policy_cache()
        return row

    return make


@pytest.fixture(scope="session")
def target_site() -> Iterator[TargetSite]:
    with TargetSite(slow_ms=3000) as site:
        yield site
