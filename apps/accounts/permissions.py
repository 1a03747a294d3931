"""Who may do what on the dashboard. Checked in views, never only in templates."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden

OPERATORS = "operators"
VIEWERS = "viewers"


def can_operate(user: Any) -> bool:
    if not getattr(user, "is_authenticated", False):
        return False
    if user.is_superuser:
        return True
    cached = getattr(user, "_coreadmin_can_operate", None)
    if cached is None:
        cached = user.groups.filter(name=OPERATORS).exists()
        user._coreadmin_can_operate = cached
    return cached


def operator_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """For write actions: logged-in members of the operators group (or superusers)."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not can_operate(request.user):
            return HttpResponseForbidden(
                "Read-only viewers cannot change anything; ask an operator."
            )
        return view(request, *args, **kwargs)

    return wrapper
