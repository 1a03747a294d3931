from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from apps.accounts.permissions import can_operate
from coreadmin.panels import NavItem, discover

OVERVIEW = NavItem("Overview", "dashboard:overview", order=0)


def navigation(request: HttpRequest) -> dict[str, Any]:
    nav, _tiles = discover()
    user = getattr(request, "user", None)
    items = []
    for item in [OVERVIEW, *nav]:
        url = reverse(item.url_name)
        active = request.path == url or (url != "/" and request.path.startswith(url))
        items.append({"label": item.label, "url": url, "active": active})
    return {
        "nav_items": items,
        "can_operate": can_operate(user) if user is not None else False,
    }
