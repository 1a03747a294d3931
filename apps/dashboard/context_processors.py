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
    urls = [(item, reverse(item.url_name)) for item in [OVERVIEW, *nav]]
    # The longest matching prefix wins, so /datasets/retries/ highlights only "Retry
    # queue" and not "Datasets" as well.
    matches = [
        url
        for _item, url in urls
        if request.path == url or (url != "/" and request.path.startswith(url))
    ]
    active_url = max(matches, key=len) if matches else None
    items = [{"label": item.label, "url": url, "active": url == active_url} for item, url in urls]
    return {
        "nav_items": items,
        "can_operate": can_operate(user) if user is not None else False,
    }
