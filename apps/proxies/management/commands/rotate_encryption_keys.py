from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from apps.proxies.services import proxies_reencrypt


class Command(BaseCommand):
    help = (
        "Re-encrypts every stored secret (proxy passwords) under the first key of "
        "ENCRYPTION_KEYS. Run it after putting a new key first; then the old keys can be "
        "removed from the list."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        count = proxies_reencrypt()
        self.stdout.write(f"Re-encrypted {count} secrets under the first key.")
