from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from apps.caching.services import own_stats_publish

logger = logging.getLogger("coreadmin.caching")


class CacheStatsMiddleware:
    """After a response, writes our own caches' counter deltas if CACHING_PUBLISH_SECONDS
    have passed in this process (one clock read otherwise). Never fails the request."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not settings.CACHING_PUBLISH_ENABLED:
            return response
        try:
            own_stats_publish()
        except Exception:
            logger.warning("could not publish cache stats", exc_info=True)
        return response
