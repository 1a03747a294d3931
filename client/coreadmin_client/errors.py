"""The exception hierarchy. Catch ``CoreadminError`` for everything the client raises.

CoreadminError
├── NetworkError            the server could not be reached (after retries)
├── ApiError                the server answered with an error body (status, code, details)
│   ├── AuthenticationError 401 / 403: missing, bad, revoked key or missing scope
│   ├── NotFoundError       404
│   ├── ConflictError       409 (e.g. batch_id_conflict)
│   ├── PayloadTooLargeError 413
│   ├── ValidationError     422, ``fields`` lists each bad field
│   ├── RateLimitError      429, or a rate-limit acquire that was refused
│   └── ServerError         5xx (after retries)
│       └── NoProxyAvailableError  503 no_proxy_available
├── CircuitOpenError        a circuit_protected call refused by the fleet's circuit
└── BackpressureError       a BatchWriter queue is full and overflow="raise"
"""

from __future__ import annotations

from typing import Any


class CoreadminError(Exception):
    """Base of everything coreadmin_client raises."""


class NetworkError(CoreadminError):
    """Connecting, sending or reading failed (refused, reset, timeout), after retries."""


class ApiError(CoreadminError):
    """The server answered with an error status and API.md's error body."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}
        self.retry_after = retry_after


class AuthenticationError(ApiError):
    """401 (no, malformed, unknown, revoked or expired key) or 403 (scope or service)."""


class NotFoundError(ApiError):
    pass


class ConflictError(ApiError):
    pass


class PayloadTooLargeError(ApiError):
    pass


class ValidationError(ApiError):
    @property
    def fields(self) -> list[dict[str, str]]:
        return list(self.details.get("fields", []))


class RateLimitError(ApiError):
    """429 from the server, or ``try_acquire``/``acquire(timeout=)`` refused locally."""


class ServerError(ApiError):
    pass


class NoProxyAvailableError(ServerError):
    pass


class CircuitOpenError(CoreadminError):
    def __init__(self, name: str, state: str, retry_after_ms: float) -> None:
        super().__init__(f"circuit {name!r} is {state}; retry in {retry_after_ms:.0f} ms")
        self.name = name
        self.state = state
        self.retry_after_ms = retry_after_ms


class BackpressureError(CoreadminError):
    """The writer's queue is full (``overflow="raise"``); nothing was enqueued."""


_BY_STATUS: dict[int, type[ApiError]] = {
    401: AuthenticationError,
    403: AuthenticationError,
    404: NotFoundError,
    409: ConflictError,
    413: PayloadTooLargeError,
    422: ValidationError,
    429: RateLimitError,
}


def error_for(status: int, body: Any, retry_after: float | None) -> ApiError:
    """The exception for an error response (body already decoded, or None)."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        error = {"code": "http_" + str(status), "message": "HTTP error without an error body."}
    code = str(error.get("code", "error"))
    message = str(error.get("message", ""))
    details = error.get("details") if isinstance(error.get("details"), dict) else {}
    cls: type[ApiError]
    if status == 503 and code == "no_proxy_available":
        cls = NoProxyAvailableError
    elif status >= 500:
        cls = ServerError
    else:
        cls = _BY_STATUS.get(status, ApiError)
    return cls(status, code, message, details, retry_after)
