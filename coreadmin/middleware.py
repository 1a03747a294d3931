from __future__ import annotations

from collections.abc import Callable

import structlog
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from coreadmin.errors import error_response


class BodySizeLimitMiddleware:
    """Refuses a body whose declared length is over the limit before anything reads it.

    Bodies without a Content-Length (chunked) are cut by Django's
    DATA_UPLOAD_MAX_MEMORY_SIZE while being read; the API turns that into the same 413.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        length = request.META.get("CONTENT_LENGTH")
        if length:
            try:
                declared = int(length)
            except ValueError:
                return error_response(400, "bad_request", "Content-Length is not a number.")
            limit = settings.API_MAX_BODY_BYTES
            if declared > limit:
                return error_response(
                    413,
                    "payload_too_large",
                    f"The request body is {declared} bytes; the limit is {limit} bytes.",
                    {"limit_bytes": limit, "received_bytes": declared},
                )
        return self.get_response(request)


class RequestIdHeaderMiddleware:
    """Returns the request id django-structlog bound to every log line as X-Request-ID."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        if request_id:
            response["X-Request-ID"] = request_id
        return response


class ApiErrorShapeMiddleware:
    """Under /api/, an error response that did not come from our handlers (Django's 405
    from ninja's method dispatch, a 500 page) is replaced by API.md's error shape."""

    CODES = {
        400: "bad_request",
        403: "permission_denied",
        404: "not_found",
        405: "method_not_allowed",
        413: "payload_too_large",
        500: "internal_error",
    }

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and request.path.startswith("/api/")
            and not response.get("Content-Type", "").startswith("application/json")
        ):
            status = response.status_code
            message = {
                405: f"{request.method} is not allowed here; allowed: {response.get('Allow', '')}.",
                500: "Something went wrong on our side; nothing you sent was acknowledged.",
            }.get(status, "The request could not be served.")
            shaped = error_response(status, self.CODES.get(status, "error"), message)
            if "Allow" in response:
                shaped["Allow"] = response["Allow"]
            return shaped
        return response
