"""Leasing from several processes at once: the per-proxy cap is never exceeded and round
robin stays exactly fair (each lease is one atomic Lua script in Redis)."""

from __future__ import annotations

import multiprocessing as mp
from collections import Counter

import pytest
from django.db import connections

from apps.accounts.auth import Principal
from apps.accounts.services import api_key_create
from apps.proxies.models import PoolPolicy
from apps.proxies.services import NoProxyAvailable, lease_acquire, proxy_create

# The children only talk to Postgres and Redis over fresh connections; the threads fork
# warns about (loopback test servers of other tests) are never touched in them.
pytestmark = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded")


def _leaser(principal: Principal, count: int, barrier, out) -> None:
    connections.close_all()
    got: list[int | None] = []
    barrier.wait()
    for _ in range(count):
        try:
            got.append(
                lease_acquire(principal=principal, service="reddit", target="t.com").proxy_id
            )
        except NoProxyAvailable:
            got.append(None)
    connections.close_all()
    out.put(got)


def _run(processes: int, per_process: int) -> list[int | None]:
    key = api_key_create(name="multi", scope="scraper").api_key
    principal = Principal(key_id=key.pk, name=key.name, scope=key.scope, service="")
    connections.close_all()
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(processes), ctx.Queue()
    workers = [
        ctx.Process(target=_leaser, args=(principal, per_process, barrier, out))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    results = [out.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    return [proxy_id for batch in results for proxy_id in batch]


@pytest.mark.django_db(transaction=True)
def test_concurrent_leasers_in_several_processes_never_exceed_the_per_proxy_cap():
    PoolPolicy.objects.create(service="reddit", max_leases_per_proxy=2, lease_seconds=120)
    proxies = [proxy_create(url=f"http://10.0.0.1:{9000 + i}", service="reddit") for i in range(3)]
    granted = _run(processes=6, per_process=4)
    counts = Counter(p for p in granted if p is not None)
    assert counts == {proxy.pk: 2 for proxy in proxies}
    assert granted.count(None) == 24 - 6


@pytest.mark.django_db(transaction=True)
def test_round_robin_stays_exactly_fair_across_processes():
    proxies = [proxy_create(url=f"http://10.0.0.2:{9000 + i}", service="reddit") for i in range(4)]
    granted = _run(processes=4, per_process=30)
    assert Counter(granted) == {proxy.pk: 30 for proxy in proxies}
