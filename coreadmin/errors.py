"""The common error shape of API.md and the exception that produces it.

Services raise ``ApiError`` (or a subclass); the API's exception handlers and the
plain-Django views (healthz, 404 under /api/) render it as
``{"error": {"code", "message", "details"}}``.
"""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse


class ApiError(Exception):
    status = 400
    code = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details = details or {}
        self.headers = headers or {}


class NotFound(ApiError):
    status = 404
    code = "not_found"


class Conflict(ApiError):
    status = 409
    code = "conflict"


class BatchIdConflict(Conflict):
    """A batch_id sent again with different items (datasets, logs, spans)."""

    code = "batch_id_conflict"


class PayloadTooLarge(ApiError):
    status = 413
    code = "payload_too_large"


class ValidationFailed(ApiError):
    """422 with ``details.fields``: a list of ``{"path": "a.b", "reason": "..."}``."""

    status = 422
    code = "validation_error"

    def __init__(self, message: str, fields: list[dict[str, str]]) -> None:
        super().__init__(message, details={"fields": fields})


class ServiceUnavailable(ApiError):
    status = 503
    code = "service_unavailable"


class DatabaseUnavailable(ServiceUnavailable):
    code = "database_unavailable"


class RedisUnavailable(ServiceUnavailable):
    code = "redis_unavailable"


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JsonResponse:
    response = JsonResponse(error_body(code, message, details), status=status)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def api_error_response(exc: ApiError) -> JsonResponse:
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)
