"""How an app shows itself on the dashboard without the dashboard importing it by name.

An app that has pages declares them in ``apps/<app>/panels.py``:

    NAV = [NavItem("Proxies", "proxies:list", order=20)]
    TILES = [Tile("proxies", "Proxy pool", "proxies/_tile.html", proxy_tile_context,
                  url_name="proxies:list", order=20)]

The dashboard discovers those modules (like admin.py), puts NAV in the navigation (so
there are no links to sections that do not exist) and shows TILES on the overview, each
refreshing itself by polling /tiles/<slug>/.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from django.apps import apps


@dataclass(frozen=True)
class NavItem:
    label: str
    url_name: str
    order: int = 50


@dataclass(frozen=True)
class Tile:
    slug: str
    title: str
    template: str
    context: Callable[[], dict[str, Any]]
    url_name: str | None = None
    order: int = 50
    refresh_seconds: int = 10
    extra: dict[str, Any] = field(default_factory=dict)


_discovered: tuple[list[NavItem], list[Tile]] | None = None


def discover() -> tuple[list[NavItem], list[Tile]]:
    global _discovered
    if _discovered is None:
        nav: list[NavItem] = []
        tiles: list[Tile] = []
        for config in apps.get_app_configs():
            if not config.name.startswith("apps."):
                continue
            try:
                module = import_module(f"{config.name}.panels")
            except ModuleNotFoundError as exc:
                if exc.name != f"{config.name}.panels":
                    raise
                continue
            nav.extend(getattr(module, "NAV", []))
            tiles.extend(getattr(module, "TILES", []))
        _discovered = (sorted(nav, key=lambda n: n.order), sorted(tiles, key=lambda t: t.order))
    return _discovered
