"""Client basics against the live server: auth, the exception hierarchy, retries."""

from __future__ import annotations

import random
import socket
from pathlib import Path

import pytest
from coreadmin_client import (
    AuthenticationError,
    Client,
    NetworkError,
    NotFoundError,
    RetryPolicy,
    ServerError,
)
from coreadmin_client.errors import RateLimitError, ValidationError, error_for
from coreadmin_client.transport import parse_retry_after

from tests.client.conftest import FAST, run_async
from tests.client.relay import Relay


def test_a_valid_key_reaches_the_server_sync_and_async(client: Client) -> None:
    assert client.whoami()["scope"] == "scraper"
    assert run_async(client.awhoami())["name"] == "client-scraper"


def test_a_bad_key_raises_authentication_error_without_retrying(server_url: str) -> None:
    sleeps: list[float] = []
    bad = Client(server_url, "cak_nope0000_" + "x" * 30, sleep=sleeps.append, retry=FAST)
    with bad as c, pytest.raises(AuthenticationError) as info:
        c.whoami()
    assert info.value.status == 401 and info.value.message
    assert sleeps == []


def test_a_scraper_key_on_an_admin_endpoint_is_an_authentication_error(client: Client) -> None:
    with pytest.raises(AuthenticationError) as info:
        client.request("POST", "/api/v1/keys", json={"name": "x", "scope": "scraper"})
    assert info.value.status == 403


def test_an_unknown_path_is_not_found_and_not_retried(server_url: str, scraper_key: str) -> None:
    sleeps: list[float] = []
    c = Client(server_url, scraper_key, sleep=sleeps.append, retry=FAST)
    with c, pytest.raises(NotFoundError):
        c.request("GET", "/api/v1/no-such-thing")
    assert sleeps == []


def test_a_closed_port_is_a_network_error_after_every_attempt() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    sleeps: list[float] = []
    policy = RetryPolicy(max_attempts=4, backoff_base=0.1, backoff_max=1.0)
    c = Client(f"http://127.0.0.1:{port}", "k", sleep=sleeps.append, retry=policy)
    with c, pytest.raises(NetworkError):
        c.whoami()
    assert len(sleeps) == 3
    assert all(0 <= s <= min(1.0, 0.1 * 2**i) for i, s in enumerate(sleeps))


def test_a_server_that_comes_back_is_reached_by_the_retries(relay: Relay, scraper_key: str) -> None:
    relay.stop()

    def sleep_then_recover(seconds: float) -> None:
        relay.start()

    with Client(relay.url, scraper_key, sleep=sleep_then_recover, retry=FAST) as c:
        assert c.whoami()["scope"] == "scraper"


def test_backoff_uses_full_jitter_under_the_cap_and_honours_retry_after() -> None:
    policy = RetryPolicy(backoff_base=0.5, backoff_max=4.0, retry_after_max=30.0)
    rng = random.Random(7)
    delays = [policy.delay(attempt, None, rng) for attempt in range(10) for _ in range(50)]
    assert max(delays) <= 4.0 and min(delays) >= 0
    assert len({round(d, 6) for d in delays}) > 400  # jittered, not a fixed schedule
    assert policy.delay(0, 12.0, rng) >= 12.0
    assert policy.delay(0, 500.0, rng) == 30.0


def test_retry_after_is_read_as_seconds_or_as_an_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None


def test_error_bodies_map_onto_the_exception_hierarchy() -> None:
    body = {
        "error": {
            "code": "validation_error",
            "message": "bad",
            "details": {"fields": [{"path": "records.0.id", "reason": "required"}]},
        }
    }
    error = error_for(422, body, None)
    assert isinstance(error, ValidationError) and error.fields[0]["path"] == "records.0.id"
    assert isinstance(error_for(429, None, 3.0), RateLimitError)
    assert error_for(429, None, 3.0).retry_after == 3.0
    assert isinstance(error_for(502, "<html>", None), ServerError)


def test_the_client_is_usable_as_an_async_context_manager(
    server_url: str, scraper_key: str, tmp_path: Path
) -> None:
    async def main() -> str:
        async with Client(server_url, scraper_key, make_default=False) as c:
            return str((await c.awhoami())["scope"])

    assert run_async(main()) == "scraper"
