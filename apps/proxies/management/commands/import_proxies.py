from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.proxies.pool import pool_forget
from apps.proxies.services import proxy_upsert


class Command(BaseCommand):
    help = (
        "Imports proxies from FILE: one URL per line (scheme://user:pass@host:port), or a CSV "
        "with a header naming url, service and country columns. Re-importing a proxy updates "
        "its password and country instead of adding it twice."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file")
        parser.add_argument("--service", default="", help="Service for lines that name none.")
        parser.add_argument("--country", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["file"])
        if not path.exists():
            raise CommandError(f"{path} does not exist")
        lines = path.read_text().splitlines()
        first = lines[0].lower() if lines else ""
        if "url" in [c.strip() for c in first.split(",")]:
            rows = list(csv.DictReader(lines))
        else:
            rows = [{"url": line} for line in lines]
        created = updated = 0
        errors: list[str] = []
        touched: set[str] = set()
        for number, row in enumerate(rows, start=1):
            url = (row.get("url") or "").strip()
            if not url or url.startswith("#"):
                continue
            service = (row.get("service") or "").strip() or options["service"]
            if not service:
                errors.append(f"row {number}: no service (add a column or pass --service)")
                continue
            country = (row.get("country") or "").strip() or options["country"]
            try:
                _proxy, was_created = proxy_upsert(
                    url=url, service=service, country=country, sync=False
                )
            except ValueError as exc:
                errors.append(f"row {number}: {exc}")
                continue
            touched.add(service)
            created += was_created
            updated += not was_created
        for name in touched:
            pool_forget(service=name)  # the next lease rebuilds the index once
        for error in errors:
            self.stderr.write(error)
        self.stdout.write(f"{created} created, {updated} updated, {len(errors)} rejected")
        if errors and not created and not updated:
            raise CommandError("nothing imported")
