"""Health checks: a GET of PROXY_CHECK_URL through each proxy, with async httpx, a timeout,
bounded concurrency and up to N attempts. A check passes on a 2xx whose body contains
PROXY_CHECK_EXPECT_TEXT (when set): a 200 captcha or ban page is a failure. http(s) and
socks5 proxies alike (socks5 through httpx[socks]); errors name the cause, never a secret."""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass

import httpx
from django.conf import settings
from socksio import SOCKSError

from apps.proxies.models import Proxy


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    latency_ms: float | None
    status_code: int | None
    error: str
    attempts: int


@dataclass(frozen=True)
class CheckConfig:
    url: str
    expect_text: str
    timeout: float
    concurrency: int
    attempts: int

    @classmethod
    def from_settings(cls, *, attempts: int = 1, **overrides: object) -> CheckConfig:
        values: dict = {
            "url": settings.PROXY_CHECK_URL,
            "expect_text": settings.PROXY_CHECK_EXPECT_TEXT,
            "timeout": settings.PROXY_CHECK_TIMEOUT_SECONDS,
            "concurrency": settings.PROXY_CHECK_CONCURRENCY,
            "attempts": attempts,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


async def _attempt(
    proxy_url: str, config: CheckConfig
) -> tuple[bool, float | None, int | None, str]:
    started = time.perf_counter()
    try:
        async with httpx.AsyncClient(
            proxy=proxy_url, timeout=config.timeout, follow_redirects=True, trust_env=False
        ) as client:
            response = await client.get(config.url)
    except httpx.TimeoutException:
        return False, None, None, "timeout"
    except httpx.ProxyError as exc:
        # The proxy itself said no: a refused CONNECT, SOCKS5 credentials, a SOCKS reply.
        return False, None, None, f"proxy error: {_without_secrets(str(exc), proxy_url)}"
    except SOCKSError:
        # httpx lets socksio's errors through unmapped: the proxy hung up or spoke nonsense
        # during the SOCKS5 handshake.
        return False, None, None, "proxy error: SOCKS5 handshake failed (closed or malformed)"
    except (httpx.HTTPError, OSError, ValueError, ImportError) as exc:
        # The message may quote the proxy URL: keep only the exception type.
        return False, None, None, f"connection error ({type(exc).__name__})"
    latency = (time.perf_counter() - started) * 1000
    if not 200 <= response.status_code < 300:
        return False, latency, response.status_code, f"status {response.status_code}"
    if config.expect_text and config.expect_text not in response.text:
        return False, latency, response.status_code, "expected text missing (ban or captcha page?)"
    return True, latency, response.status_code, ""


def _without_secrets(message: str, proxy_url: str) -> str:
    """The message with the proxy's password (raw or %-encoded) blanked, to be safe: the
    messages httpx raises here are fixed texts, but they are stored and shown."""
    raw = urllib.parse.urlsplit(proxy_url).password
    for secret in {raw, urllib.parse.unquote(raw or "")} - {None, ""}:
        message = message.replace(str(secret), "***")
    return message[:200]


async def _check(proxy_url: str, config: CheckConfig, gate: asyncio.Semaphore) -> CheckResult:
    async with gate:
        outcome: tuple[bool, float | None, int | None, str] = (False, None, None, "not run")
        for attempt in range(1, config.attempts + 1):
            outcome = await _attempt(proxy_url, config)
            if outcome[0]:
                return CheckResult(*outcome, attempts=attempt)
        return CheckResult(*outcome, attempts=config.attempts)


async def _check_all(urls: dict[int, str], config: CheckConfig) -> dict[int, CheckResult]:
    gate = asyncio.Semaphore(config.concurrency)
    ids = list(urls)
    results = await asyncio.gather(*(_check(urls[i], config, gate) for i in ids))
    return dict(zip(ids, results, strict=True))


def check_proxies(proxies: Iterable[Proxy], config: CheckConfig) -> dict[int, CheckResult]:
    """Checks each proxy (concurrently, at most config.concurrency at once)."""
    urls = {proxy.pk: proxy.url_with_password() for proxy in proxies}
    if not urls:
        return {}
    return asyncio.run(_check_all(urls, config))
