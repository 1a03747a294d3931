"""Selectors read in a fixed number of queries, however many proxies and bans exist."""

from __future__ import annotations

from apps.proxies.selectors import pool_summaries, proxy_list, proxy_out
from apps.proxies.services import proxy_ban, proxy_set_status


def test_the_proxy_list_with_bans_takes_two_queries(make_proxy, django_assert_num_queries, clock):
    for index in range(12):
        proxy = make_proxy(host=f"10.7.0.{index}")
        proxy_ban(proxy=proxy, target="a.com")
        proxy_ban(proxy=proxy, target="b.com")
    with django_assert_num_queries(2):
        rows = [proxy_out(p) for p in proxy_list(service="reddit")]
    assert len(rows) == 12 and rows[0]["banned_targets"] == ["a.com", "b.com"]


def test_pool_summaries_take_one_query_and_flag_shrinking_pools(
    make_proxy, django_assert_num_queries, clock
):
    proxies = [make_proxy(service="small") for _ in range(4)] + [make_proxy(service="big")]
    for proxy in proxies[:3]:
        proxy_set_status(proxy=proxy, status="frozen", actor="test")
    proxy_ban(proxy=proxies[4], target="x.com")
    proxy_ban(proxy=proxies[4], target="y.com")
    proxy_ban(proxy=proxies[3], target="x.com")
    with django_assert_num_queries(1):
        pools = {p["service"]: p for p in pool_summaries()}
    assert (pools["small"]["usable"], pools["small"]["total"]) == (1, 4)
    assert pools["small"]["shrinking"] and not pools["big"]["shrinking"]
    assert (pools["big"]["usable"], pools["big"]["total"]) == (1, 1)
    assert pools["big"]["banned"] == 1 and pools["small"]["banned"] == 1
    assert pools["small"]["frozen"] == 3
