"""Typed readers for environment variables.

Every reader records a problem instead of raising, so start-up can report every bad
variable in one message (see ``Env.raise_if_invalid``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured

_MISSING = object()


@dataclass
class Env:
    production: bool
    environ: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    problems: list[str] = field(default_factory=list)

    def _read(self, name: str, dev_default: Any, parse: Callable[[str], Any], what: str) -> Any:
        raw = self.environ.get(name)
        if raw is None or raw == "":
            if self.production or dev_default is _MISSING:
                self.problems.append(f"{name} is required")
                return None
            return dev_default
        try:
            return parse(raw)
        except ValueError as exc:
            self.problems.append(f"{name} must be {what} ({exc})")
            return None

    def string(self, name: str, dev_default: Any = _MISSING, *, optional: bool = False) -> Any:
        if optional and not self.environ.get(name):
            return dev_default if dev_default is not _MISSING else ""
        return self._read(name, dev_default, lambda v: v, "text")

    def integer(self, name: str, default: int, *, minimum: int = 0) -> int:
        """Tunables with a safe default in every mode."""
        raw = self.environ.get(name)
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{name} must be an integer, got {raw!r}")
            return default
        if value < minimum:
            self.problems.append(f"{name} must be at least {minimum}, got {value}")
            return default
        return value

    def number(self, name: str, default: float, *, minimum: float = 0.0) -> float:
        raw = self.environ.get(name)
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            self.problems.append(f"{name} must be a number, got {raw!r}")
            return default
        if value < minimum:
            self.problems.append(f"{name} must be at least {minimum}, got {value}")
            return default
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.environ.get(name)
        if not raw:
            return default
        if raw.lower() in {"1", "true", "yes", "on"}:
            return True
        if raw.lower() in {"0", "false", "no", "off"}:
            return False
        self.problems.append(f"{name} must be true or false, got {raw!r}")
        return default

    def items(self, name: str, dev_default: Any = _MISSING) -> Any:
        def parse(raw: str) -> list[str]:
            items = [part.strip() for part in raw.split(",") if part.strip()]
            if not items:
                raise ValueError("empty list")
            return items

        return self._read(name, dev_default, parse, "a comma-separated list")

    def raise_if_invalid(self) -> None:
        if self.problems:
            raise ImproperlyConfigured("Invalid configuration: " + "; ".join(self.problems) + ".")
