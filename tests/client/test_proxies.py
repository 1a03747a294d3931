"""The proxy pool against the live proxies endpoints, a real loopback target site and
real forward proxies (coreadmin.devservers)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from coreadmin_client import Client, NoProxyAvailableError

from tests.client.conftest import requires, run_async

devservers = pytest.importorskip("coreadmin.devservers")


@pytest.fixture
def site() -> Iterator[Any]:
    with devservers.TargetSite() as s:
        yield s


@pytest.fixture
def proxies(admin: Client) -> Iterator[list[Any]]:
    requires("/api/v1/proxies/lease")
    with (
        devservers.ForwardProxy(name="p-one", auth=("u", "pw1")) as one,
        devservers.ForwardProxy(name="p-two", auth=("u", "pw2")) as two,
    ):
        for proxy in (one, two):
            created = admin.request(
                "POST", "/api/v1/proxies", json={"url": proxy.url, "service": "reddit"}
            )
            proxy.coreadmin_id = created["id"]
        yield [one, two]


def via(response: httpx.Response) -> str:
    return response.json()["headers"].get("Via", response.json()["headers"].get("via", ""))


def test_each_request_is_one_lease_and_one_report_and_clients_are_reused_per_proxy(
    client: Client, site: Any, proxies: list[Any]
) -> None:
    pool = client.proxy_pool("reddit")
    responses = [pool.get(site.url("/echo")) for _ in range(4)]
    assert {r.status_code for r in responses} == {200}
    assert {via(r) for r in responses} == {"1.1 p-one", "1.1 p-two"}  # the server rotates
    stats = pool.stats()
    assert stats["leases"] == 4 and stats["clients_created"] == 2 and stats["clients"] == 2
    assert pool.reporter.flush(10)
    assert stats["outcomes"]["success"] == 4 and pool.reporter.counts["written"] == 4
    pool.close()


def test_a_ban_by_status_drops_that_proxy_and_the_next_request_uses_another(
    client: Client, admin: Client, site: Any, proxies: list[Any]
) -> None:
    for proxy in proxies:
        proxy.mode = "banned"
    pool = client.proxy_pool("reddit")
    banned = pool.get(site.url("/ok"))
    assert banned.status_code == 403
    for proxy in proxies:
        proxy.mode = "healthy"
    ok = pool.get(site.url("/ok"))
    assert ok.status_code == 200
    stats = pool.stats()
    assert stats["outcomes"]["banned"] == 1 and stats["leases"] == 2
    assert pool.reporter.flush(10) and pool.reporter.counts["written"] == 2
    banned_for = [
        admin.request("GET", f"/api/v1/proxies/{p.coreadmin_id}")["banned_targets"] for p in proxies
    ]
    assert sum(1 for targets in banned_for if targets) == 1
    pool.close()


def test_a_ban_that_looks_like_success_is_caught_by_the_targets_body_predicate(
    client: Client, site: Any, proxies: list[Any]
) -> None:
    for proxy in proxies:
        proxy.mode = "banned"
        proxy.ban_status = 200
    target = "127.0.0.1"
    pool = client.proxy_pool(
        "reddit", ban_predicates={target: lambda r: devservers.CAPTCHA_TEXT in r.text}
    )
    response = pool.get(site.url("/ok"))
    assert response.status_code == 200 and devservers.CAPTCHA_TEXT in response.text
    assert pool.stats()["outcomes"]["banned"] == 1
    pool.close()


def test_a_sticky_session_keeps_its_proxy(client: Client, site: Any, proxies: list[Any]):
    pool = client.proxy_pool("reddit", max_clients=4)
    seen = {via(pool.get(site.url("/echo"), session="account-17")) for _ in range(3)}
    other_pool = client.proxy_pool("reddit")
    seen.add(via(other_pool.get(site.url("/echo"), session="account-17")))
    assert len(seen) == 1
    pool.close()
    other_pool.close()


def test_max_clients_is_never_exceeded_and_idle_clients_expire(
    client: Client, site: Any, proxies: list[Any]
) -> None:
    now = [0.0]
    pool = client.proxy_pool("reddit", max_clients=1, idle_timeout=60, clock=lambda: now[0])
    for _ in range(4):  # alternating proxies: each new one evicts the idle other
        assert pool.get(site.url("/ok")).status_code == 200
        assert pool.stats()["clients"] == 1
    assert pool.stats()["clients_created"] == 4
    session = [pool.get(site.url("/ok"), session="s") for _ in range(3)]
    assert all(r.status_code == 200 for r in session)
    created = pool.stats()["clients_created"]
    assert created <= 5  # the sticky session kept one proxy, so one client
    now[0] += 61
    pool.get(site.url("/ok"), session="s")  # the idle client expired: a new one
    assert pool.stats()["clients_created"] == created + 1
    pool.close()


def test_a_slow_proxy_is_reported_as_a_timeout(
    client: Client, site: Any, proxies: list[Any]
) -> None:
    for proxy in proxies:
        proxy.mode = "slow"
        proxy.delay_ms = 2000
    pool = client.proxy_pool("reddit", timeout=0.2)
    with pytest.raises(httpx.TimeoutException):
        pool.get(site.url("/ok"))
    assert pool.stats()["outcomes"]["timeout"] == 1
    pool.close()


def test_no_usable_proxy_raises_no_proxy_available(
    client: Client, admin: Client, site: Any, proxies: list[Any]
) -> None:
    for proxy in proxies:
        admin.request("PATCH", f"/api/v1/proxies/{proxy.coreadmin_id}", json={"status": "frozen"})
    pool = client.proxy_pool("reddit")
    with pytest.raises(NoProxyAvailableError) as info:
        pool.get(site.url("/ok"))
    assert info.value.retry_after is not None
    pool.close()


def test_the_async_pool(client: Client, site: Any, proxies: list[Any]) -> None:
    async def main() -> list[int]:
        pool = client.async_proxy_pool("reddit", max_clients=2)
        responses = await asyncio.gather(*(pool.get(site.url("/ok")) for _ in range(6)))
        stats = pool.stats()
        await pool.aclose()
        await client.transport.aclose()  # this loop's connection pool
        assert stats["leases"] == 6 and stats["clients_created"] <= 2
        return [r.status_code for r in responses]

    assert run_async(main()) == [200] * 6


def test_when_every_client_is_busy_a_request_waits_for_one_to_come_back(
    client: Client, site: Any, proxies: list[Any]
) -> None:
    import threading

    pool = client.proxy_pool("reddit", max_clients=1, wait_timeout=30)
    statuses: list[int] = []

    def fetch() -> None:
        statuses.append(pool.get(site.url("/slow?ms=300")).status_code)

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert statuses == [200, 200]
    assert pool.stats()["clients"] == 1 and pool.stats()["leases"] == 2
    pool.close()


@pytest.fixture
def socks_proxy(admin: Client) -> Iterator[Any]:
    """A real SOCKS5 server with auth, registered as the only proxy of service "socksy"."""
    requires("/api/v1/proxies/lease")
    with devservers.SocksProxy(auth=("u", "socks-pw")) as server:
        created = admin.request(
            "POST", "/api/v1/proxies", json={"url": server.url, "service": "socksy"}
        )
        server.coreadmin_id = created["id"]
        yield server


def test_a_request_through_a_leased_socks5_proxy_reaches_the_target(
    client: Client, site: Any, socks_proxy: Any
) -> None:
    lease = client.transport.request(
        "POST", "/api/v1/proxies/lease", json={"service": "socksy", "target": "127.0.0.1"}
    )
    assert lease["proxy_url"] == f"socks5://u:socks-pw@{socks_proxy.netloc}"
    pool = client.proxy_pool("socksy")
    response = pool.get(site.url("/echo"))
    assert response.status_code == 200 and response.json()["path"] == "/echo"
    assert socks_proxy.relayed == 1 and socks_proxy.targets[site.netloc] == 1
    assert site.hits["/echo"] == 1
    assert pool.reporter.flush(10) and pool.reporter.counts["written"] == 1
    assert pool.stats()["outcomes"]["success"] == 1
    pool.close()


def test_a_socks5_proxy_that_hangs_up_is_a_reported_failure_raised_as_proxy_error(
    client: Client, site: Any, socks_proxy: Any
) -> None:
    socks_proxy.mode = "refuse"
    pool = client.proxy_pool("socksy")
    with pytest.raises(httpx.ProxyError, match="SOCKS5 handshake failed"):
        pool.get(site.url("/ok"))
    stats = pool.stats()
    assert stats["outcomes"]["failure"] == 1 and stats["busy"] == 0
    assert pool.reporter.flush(10) and pool.reporter.counts["written"] == 1
    socks_proxy.mode = "healthy"  # the slot was given back: the same client works again
    assert pool.get(site.url("/ok")).status_code == 200
    pool.close()


def test_without_httpx_socks_a_socks5_lease_raises_and_the_pool_keeps_its_capacity(
    client: Client, site: Any, socks_proxy: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    pool = client.proxy_pool("socksy", max_clients=1, wait_timeout=0.5)
    monkeypatch.setitem(sys.modules, "socksio", None)  # as if the [socks] extra were absent
    with pytest.raises(ImportError, match="httpx\\[socks\\]"):
        pool.get(site.url("/ok"))
    monkeypatch.undo()
    assert pool.get(site.url("/ok")).status_code == 200  # max_clients=1 not used up
    assert pool.stats()["clients"] == 1
    pool.close()
