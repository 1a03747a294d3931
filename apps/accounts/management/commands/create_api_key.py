from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.accounts.models import ApiKey
from apps.accounts.services import api_key_create


class Command(BaseCommand):
    help = "Creates an API key and prints it, alone, on the last line (it is shown only once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--name", required=True)
        parser.add_argument("--scope", choices=ApiKey.Scope.values, default=ApiKey.Scope.SCRAPER)
        parser.add_argument("--service", default="")
        parser.add_argument("--expires-days", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["expires_days"] is not None and options["expires_days"] < 1:
            raise CommandError("--expires-days must be at least 1")
        created = api_key_create(
            name=options["name"],
            scope=options["scope"],
            service=options["service"],
            expires_in_days=options["expires_days"],
        )
        key = created.api_key
        self.stdout.write(
            f"Created API key {key.name!r} (scope {key.scope}"
            + (f", service {key.service}" if key.service else "")
            + (f", expires {key.expires_at:%Y-%m-%d}" if key.expires_at else "")
            + "). Store it now; it is not shown again:"
        )
        self.stdout.write(created.raw_key)
