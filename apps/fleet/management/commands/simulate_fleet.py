"""manage.py simulate_fleet: a living fleet against a running coreadmin (see
apps/fleet/simulator). Exits 0 when every dataset reconciles exactly, else 1."""

from __future__ import annotations

import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.fleet.simulator import Plan, simulate


def _credentials_key() -> str:
    """The demo admin key that `make run` / `make demo` saved, if any."""
    path = Path(os.environ.get("COREADMIN_DATA_DIR", ".data")) / "demo-credentials.txt"
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return ""
    saved = dict(line.split("=", 1) for line in lines if "=" in line)
    return saved.get("api_key", "")


class Command(BaseCommand):
    help = (
        "Runs simulated scrapers (local target sites and forward proxies on 127.0.0.1) "
        "against a running coreadmin through coreadmin_client, then reconciles per dataset."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--scrapers", type=int, default=4)
        parser.add_argument(
            "--duration", type=float, default=60.0, help="seconds; 0 runs until Ctrl-C"
        )
        parser.add_argument(
            "--url", default=os.environ.get("COREADMIN_URL", "http://127.0.0.1:8000")
        )
        parser.add_argument(
            "--api-key",
            default=os.environ.get("COREADMIN_API_KEY", ""),
            help="an admin key (default: $COREADMIN_API_KEY, else .data/demo-credentials.txt)",
        )
        parser.add_argument("--service", default="sim")
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument(
            "--port-base",
            type=int,
            default=0,
            help="fixed ports for the sites and proxies from here (0: any free ports)",
        )
        parser.add_argument("--no-outage", action="store_true", help="no 503 window for shop")
        parser.add_argument("--spool-dir", default="", help="the writers' spool (default: none)")
        parser.add_argument("--report", default="", help="also write the report to this file")

    def handle(self, *args: Any, **options: Any) -> None:
        key = options["api_key"] or _credentials_key()
        if not key:
            raise CommandError("no API key: pass --api-key or set COREADMIN_API_KEY")
        if options["scrapers"] < 1:
            raise CommandError("--scrapers must be at least 1")
        plan = Plan(
            scrapers=options["scrapers"],
            duration=max(0.0, options["duration"]),
            service=options["service"],
            seed=options["seed"],
            outage=None if options["no_outage"] else Plan().outage,
            spool_dir=Path(options["spool_dir"]) if options["spool_dir"] else None,
        )
        for noisy in ("httpx", "httpcore"):  # one line per request would drown the report
            logging.getLogger(noisy).setLevel(logging.WARNING)
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        report = simulate(
            plan,
            options["url"],
            key,
            stop=stop,
            port_base=options["port_base"],
            progress=lambda line: self.stdout.write(line),
            on_world=lambda world: self.stdout.write(
                "world: "
                + ", ".join(f"{n} {s.url()}" for n, s in world.sites.items())
                + f"; {len(world.proxies)} proxies"
            ),
        )
        self.stdout.write(report.text())
        if options["report"]:
            Path(options["report"]).write_text(report.text() + "\n")
        if not report.exact:
            raise CommandError("the reconciliation is not exact")
