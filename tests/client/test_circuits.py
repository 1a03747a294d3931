"""circuit_protected against the live circuits endpoints."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from coreadmin_client import CircuitOpenError, Client, circuit_protected

from tests.client.conftest import FAST, requires, run_async, wait_until

CONFIG = {
    "failure_threshold": 2,
    "recovery_timeout_ms": 600_000,
    "half_open_max_calls": 1,
    "success_threshold": 1,
}


@pytest.fixture(autouse=True)
def circuit(admin: Client) -> str:
    requires("/api/v1/circuits/search/acquire")
    admin.request("PUT", "/api/v1/circuits/search", json=CONFIG)
    return "search"


def server_state(admin: Client) -> str:
    return str(admin.request("POST", "/api/v1/circuits/search/acquire", json={})["state"])


def test_calls_on_a_closed_circuit_are_decided_locally(server_url: str, scraper_key: str) -> None:
    with Client(server_url, scraper_key, max_staleness=600, make_default=False) as c:
        seen: list[str] = []
        c.transport.sync_client().event_hooks["request"].append(lambda r: seen.append(r.url.path))

        @circuit_protected("search", client=c)
        def fetch(x: int) -> int:
            return x * 2

        assert [fetch(i) for i in range(200)] == [i * 2 for i in range(200)]
        c.flush(10)
    assert seen.count("/api/v1/circuits/search/acquire") == 1
    assert seen.count("/api/v1/circuits/search/record") <= 1  # one coalesced success


def test_failures_open_the_circuit_for_the_fleet_and_later_calls_get_the_fallback(
    client: Client, admin: Client
) -> None:
    @circuit_protected("search", client=client, fallback=lambda q: f"cached {q}")
    def search(q: str) -> str:
        raise ConnectionError("upstream down")

    for _ in range(2):
        with pytest.raises(ConnectionError):
            search("a")
    client.flush(10)
    assert server_state(admin) == "open"
    client.circuits.forget("search")
    assert search("b") == "cached b"


def test_a_circuit_forced_open_elsewhere_refuses_calls_within_the_staleness_bound(
    server_url: str, scraper_key: str, admin: Client
) -> None:
    with Client(server_url, scraper_key, max_staleness=0.05, make_default=False) as c:
        guard = circuit_protected("search", client=c)
        with guard:
            pass
        admin.request("POST", "/api/v1/circuits/search/force", json={"state": "forced_open"})

        def refused() -> bool:
            try:
                with guard:
                    return False
            except CircuitOpenError as exc:
                return exc.state == "forced_open"

        wait_until(refused, timeout=5)


def test_the_context_manager_raises_circuit_open_on_entry(client: Client, admin: Client):
    admin.request("POST", "/api/v1/circuits/search/force", json={"state": "forced_open"})
    ran = []
    with pytest.raises(CircuitOpenError) as info, circuit_protected("search", client=client):
        ran.append(1)
    assert ran == [] and info.value.name == "search"


def test_async_decorator_and_context_manager(client: Client, admin: Client) -> None:
    @circuit_protected("search", client=client)
    async def fetch() -> str:
        await asyncio.sleep(0)
        return "ok"

    @circuit_protected("search", client=client, fallback=lambda: "fallback")
    async def failing() -> str:
        raise TimeoutError

    async def main() -> list[Any]:
        out: list[Any] = [await fetch()]
        async with circuit_protected("search", client=client):
            out.append("inside")
        for _ in range(2):
            with pytest.raises(TimeoutError):
                await failing()
        await asyncio.to_thread(client.flush, 10)
        client.circuits.forget()
        out.append(await failing())
        return out

    assert run_async(main()) == ["ok", "inside", "fallback"]
    assert server_state(admin) == "open"


def test_ignored_exceptions_do_not_count_as_failures(client: Client, admin: Client) -> None:
    @circuit_protected("search", client=client, ignore=(KeyError,))
    def lookup() -> None:
        raise KeyError("missing")

    for _ in range(3):
        with pytest.raises(KeyError):
            lookup()
    client.flush(10)
    assert server_state(admin) == "closed"


def test_an_unreachable_server_fails_open_and_counts_it(scraper_key: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with Client(f"http://127.0.0.1:{port}", scraper_key, retry=FAST, make_default=False) as c:

        @circuit_protected("search", client=c)
        def work() -> int:
            return 1

        assert work() == 1 and c.circuits.fail_open_count == 1
    with (
        Client(
            f"http://127.0.0.1:{port}", scraper_key, retry=FAST, fail_open=False, make_default=False
        ) as strict,
        pytest.raises(CircuitOpenError),
    ):
        circuit_protected("search", client=strict)(lambda: 1)()


def test_after_the_recovery_timeout_a_probe_is_admitted_and_its_success_closes_the_circuit(
    client: Client, admin: Client
) -> None:
    admin.request("PUT", "/api/v1/circuits/search", json={**CONFIG, "recovery_timeout_ms": 100})
    healthy = [False]

    @circuit_protected("search", client=client)
    def call() -> str:
        if not healthy[0]:
            raise ConnectionError("down")
        return "up"

    for _ in range(2):
        with pytest.raises(ConnectionError):
            call()
    client.flush(10)
    assert server_state(admin) == "open"
    healthy[0] = True

    def probe_succeeded() -> bool:
        try:
            return call() == "up"
        except CircuitOpenError:
            return False

    wait_until(probe_succeeded, timeout=10)
    client.flush(10)
    assert server_state(admin) == "closed"
    events = admin.request("GET", "/api/v1/circuits/search/events")["items"]
    assert [e["to_state"] for e in events][:3] == ["closed", "half_open", "open"]
