"""The client against a live coreadmin (pytest-django's live_server: real HTTP, real
Postgres and Redis). Nothing of our server is mocked."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from coreadmin_client import Client, RetryPolicy
from django.urls import Resolver404, resolve

from tests.client.relay import Relay

# Fast retries: the tests exercise the retry logic, not the waiting.
FAST = RetryPolicy(max_attempts=3, backoff_base=0.01, backoff_max=0.05, retry_after_max=0.05)


def requires(path: str) -> None:
    """Skips when the endpoint is not on this branch yet (it lands with its app's branch)."""
    try:
        match = resolve(path)
    except Resolver404:
        pytest.skip(f"{path} is not served on this branch yet")
    if getattr(match.func, "__name__", "") == "api_not_found":
        pytest.skip(f"{path} is not served on this branch yet")


@pytest.fixture
def server_url(live_server: Any) -> Iterator[str]:
    yield str(live_server.url)
    # Live-server tests commit; Django's flush does not reach the unmanaged, partitioned
    # raw-span table, so clear what the client shipped lest other tests count it.
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE tracing_span")


@pytest.fixture
def admin_key(make_api_key: Callable[..., str]) -> str:
    return make_api_key("admin", name="client-admin")


@pytest.fixture
def scraper_key(make_api_key: Callable[..., str]) -> str:
    return make_api_key("scraper", name="client-scraper")


@pytest.fixture
def client(server_url: str, scraper_key: str, tmp_path: Path) -> Iterator[Client]:
    with Client(server_url, scraper_key, service="reddit", retry=FAST) as c:
        yield c


@pytest.fixture
def admin(server_url: str, admin_key: str) -> Iterator[Client]:
    with Client(server_url, admin_key, retry=FAST, make_default=False) as c:
        yield c


@pytest.fixture
def relay(live_server: Any) -> Iterator[Relay]:
    parts = urlsplit(str(live_server.url))
    r = Relay(parts.hostname or "127.0.0.1", parts.port or 80)
    r.start()
    yield r
    r.stop()


def wait_until(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    """Waits for background threads to reach a state (polling; no fixed sleeps)."""
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


def run_async(coro: Any) -> Any:
    """asyncio.run in a fresh thread: other suites (playwright) may leave an event loop
    running in the test thread, where asyncio.run refuses to start."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
