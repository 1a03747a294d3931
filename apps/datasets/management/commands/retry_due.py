"""`manage.py retry_due`: one retry pass now, without Celery (what the beat task does)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from apps.datasets.tasks import retry_due


class Command(BaseCommand):
    help = "Retries every due item of the retry queue now and prints what happened."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--max-passes", type=int, default=20)

    def handle(self, *args: Any, **options: Any) -> None:
        totals = retry_due(max_passes=options["max_passes"])
        self.stdout.write(
            "claimed {claimed}, resolved {resolved}, failed again {failed}, dead {dead}".format(
                **totals
            )
        )
