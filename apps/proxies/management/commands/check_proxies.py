from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.proxies.checks import CheckConfig
from apps.proxies.models import Proxy
from apps.proxies.services import proxies_check


class Command(BaseCommand):
    help = (
        "Health-checks every proxy (or one service's) through the proxy itself, with up to "
        "--attempts tries each, and records the results. With --strict, exits non-zero "
        "listing each proxy that failed every attempt."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--service", default="")
        parser.add_argument("--attempts", type=int, default=3)
        parser.add_argument("--strict", action="store_true")
        parser.add_argument("--url", default=None, help="Default: PROXY_CHECK_URL.")
        parser.add_argument("--expect-text", default=None)
        parser.add_argument("--timeout", type=float, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["attempts"] < 1:
            raise CommandError("--attempts must be at least 1")
        proxies = Proxy.objects.order_by("id")
        if options["service"]:
            proxies = proxies.filter(service=options["service"])
        config = CheckConfig.from_settings(
            attempts=options["attempts"],
            url=options["url"],
            expect_text=options["expect_text"],
            timeout=options["timeout"],
        )
        listed = list(proxies)
        results = proxies_check(proxies=listed, config=config)
        failed = []
        for proxy in listed:
            result = results[proxy.pk]
            verdict = "ok" if result.ok else f"FAILED ({result.error})"
            latency = f" {result.latency_ms:.0f} ms" if result.latency_ms is not None else ""
            self.stdout.write(
                f"{proxy.pk} {proxy.display_url} [{proxy.service}] {verdict}{latency}"
            )
            if not result.ok:
                failed.append(proxy)
        self.stdout.write(f"{len(listed) - len(failed)} of {len(listed)} proxies passed")
        if options["strict"] and failed:
            names = ", ".join(f"{p.pk} {p.display_url}" for p in failed)
            raise CommandError(f"{len(failed)} proxies failed every attempt: {names}")
