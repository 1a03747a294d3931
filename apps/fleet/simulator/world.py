"""The outside world of a simulated fleet: two target sites and a handful of forward
proxies on 127.0.0.1 (coreadmin.devservers), each with a behaviour a real pool has.

=============  ==========================================================================
proxy          behaviour
=============  ==========================================================================
healthy-1..3   forward everything
flaky          drops 30% of connections without an answer (failures)
slow           waits 1.5 s before forwarding (over the scrapers' 1 s timeout: timeouts)
shop-banned    the "shop" site has banned its IP: 403 there, fine for "news"
news-captcha   the "news" site answers it with a captcha page and status 200
=============  ==========================================================================

Each site also has pages that ban (403), pages that serve a captcha with 200, slow pages
and, during an outage window the scrapers choose, 503s; see scraper.py for the mix.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from coreadmin.devservers import ForwardProxy, TargetSite

PROXY_AUTH = ("sim", "sim-secret")


@dataclass
class World:
    sites: dict[str, TargetSite]  # target name ("news", "shop") -> site
    proxies: dict[str, ForwardProxy] = field(default_factory=dict)  # name -> proxy

    def site_hits(self) -> dict[str, int]:
        return {name: sum(site.hits.values()) for name, site in self.sites.items()}

    def proxy_requests(self) -> dict[str, int]:
        return {name: proxy.requests for name, proxy in self.proxies.items()}


@contextlib.contextmanager
def running_world(port_base: int = 0) -> Iterator[World]:
    """Starts the sites and proxies; ``port_base`` > 0 gives them fixed ports from there
    (so a re-run of the demo finds the same proxy rows), 0 lets the kernel choose."""

    def port(offset: int) -> int:
        return port_base + offset if port_base else 0

    with contextlib.ExitStack() as stack:
        news = stack.enter_context(TargetSite(slow_ms=600, port=port(0)))
        shop = stack.enter_context(TargetSite(slow_ms=600, port=port(1)))
        world = World(sites={"news": news, "shop": shop})
        specs: list[tuple[str, dict[str, object]]] = [
            ("healthy-1", {}),
            ("healthy-2", {}),
            ("healthy-3", {}),
            ("flaky", {"mode": "flaky", "fail_rate": 0.3}),
            ("slow", {"mode": "slow", "delay_ms": 1500.0}),
            ("shop-banned", {"mode": "banned", "banned_targets": {shop.netloc}}),
            (
                "news-captcha",
                {"mode": "banned", "banned_targets": {news.netloc}, "ban_status": 200},
            ),
        ]
        for offset, (name, options) in enumerate(specs, start=2):
            proxy = ForwardProxy(
                name=f"sim-{name}",
                auth=PROXY_AUTH,
                port=port(offset),
                **options,  # type: ignore[arg-type]
            )
            world.proxies[name] = stack.enter_context(proxy)
        yield world
