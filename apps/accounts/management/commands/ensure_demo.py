from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandParser

from apps.accounts.models import ApiKey
from apps.accounts.permissions import OPERATORS
from apps.accounts.services import api_key_create


class Command(BaseCommand):
    help = (
        "Creates a demo operator and a demo admin API key once, keeps their credentials in "
        "a file under .data/, and prints them (every run, so a newcomer can log in)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--credentials-file", default=".data/demo-credentials.txt")

    def handle(self, *args: Any, **options: Any) -> None:
        path = Path(options["credentials_file"])
        lines = path.read_text().splitlines() if path.exists() else []
        saved = dict(line.split("=", 1) for line in lines if "=" in line)
        user = User.objects.filter(username="operator").first()
        key_ok = ApiKey.objects.filter(
            prefix=saved.get("api_key", "cak_x_")[4:12], revoked_at__isnull=True
        ).exists()
        if user is None or "password" not in saved:
            password = secrets.token_urlsafe(12)
            user = user or User(username="operator", is_staff=True, is_superuser=True)
            user.set_password(password)
            user.save()
            user.groups.add(Group.objects.get(name=OPERATORS))
            saved["password"] = password
        if not key_ok:
            saved["api_key"] = api_key_create(name="demo", scope=ApiKey.Scope.ADMIN).raw_key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(f"{k}={v}\n" for k, v in saved.items()))
        path.chmod(0o600)
        self.stdout.write("Demo operator: username=operator password=" + saved["password"])
        self.stdout.write("Demo admin API key: " + saved["api_key"])
