"""Request types for annotations: what our middleware adds to Django's HttpRequest."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails


class ApiRequest(HttpRequest):
    """A ninja request after authentication; ``auth`` is apps.accounts.auth.Principal."""

    auth: Any
