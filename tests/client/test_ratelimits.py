"""Rate limiting through the client against the live ratelimits endpoints."""

from __future__ import annotations

import time

import pytest
from coreadmin_client import Client, NotFoundError, RateLimitError

from tests.client.conftest import requires, run_async


@pytest.fixture(autouse=True)
def policies(admin: Client) -> None:
    requires("/api/v1/ratelimits/k/acquire")
    admin.request(
        "PUT", "/api/v1/ratelimits/slow", json={"limit": 1, "period_ms": 600_000, "burst": 3}
    )
    admin.request(
        "PUT", "/api/v1/ratelimits/fast", json={"limit": 2, "period_ms": 1000, "burst": 1}
    )


def test_try_acquire_grants_the_burst_then_refuses(client: Client) -> None:
    assert [client.try_acquire("slow") for _ in range(4)] == [True, True, True, False]


def test_try_acquire_counts_the_cost(client: Client) -> None:
    assert client.try_acquire("slow", cost=3) is True
    assert client.try_acquire("slow", cost=1) is False


def test_acquire_waits_for_the_servers_retry_after_then_succeeds(
    server_url: str, scraper_key: str
) -> None:
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)  # 0.5 s at 2/s: the server's bucket refills in real time

    with Client(server_url, scraper_key, sleep=sleep, make_default=False) as c:
        for _ in range(2):
            c.acquire("fast")
    assert len(waits) >= 1 and all(0 < w < 1.0 for w in waits)


def test_acquire_gives_up_with_rate_limit_error_when_the_wait_exceeds_the_timeout(
    client: Client,
) -> None:
    client.acquire("slow", cost=3)
    with pytest.raises(RateLimitError):
        client.acquire("slow", timeout=1.0)


def test_an_unknown_key_is_a_configuration_error(client: Client) -> None:
    with pytest.raises(NotFoundError):
        client.try_acquire("nobody-configured-this")


def test_async_forms(client: Client) -> None:
    async def main() -> list[bool]:
        await client.aacquire("slow")
        return [await client.atry_acquire("slow") for _ in range(3)]

    assert run_async(main()) == [True, True, False]
