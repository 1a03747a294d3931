"""The NinjaAPI v1: X-API-Key auth, API.md's error shape for every status, one router
per app. Routers live in apps/<app>/api.py; this module only wires them in."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import redis
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.http import Http404, HttpRequest, HttpResponse
from ninja import NinjaAPI, Schema
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser
from ninja.renderers import BaseRenderer

from apps.accounts.api import router as accounts_router
from apps.accounts.auth import Principal, scraper_auth
from apps.caching.api import router as caching_router
from apps.circuits.api import router as circuits_router
from apps.datasets.api import router as datasets_router
from apps.fleet.api import router as fleet_router
from apps.logs.api import router as logs_router
from apps.proxies.api import router as proxies_router
from apps.ratelimits.api import router as ratelimits_router
from apps.tracing.api import router as tracing_router
from coreadmin.dbfailures import infrastructure_failure
from coreadmin.errors import (
    ApiError,
    DatabaseUnavailable,
    RedisUnavailable,
    api_error_response,
    error_response,
)

logger = logging.getLogger("coreadmin.api")


class MalformedJson(ApiError):
    status = 400
    code = "malformed_json"


class JsonParser(Parser):
    def parse_body(self, request: HttpRequest) -> Any:
        try:
            return orjson.loads(request.body)
        except orjson.JSONDecodeError as exc:
            raise MalformedJson(f"The request body is not valid JSON: {exc}.") from exc


class JsonRenderer(BaseRenderer):
    media_type = "application/json"

    def render(self, request: HttpRequest, data: Any, *, response_status: int) -> bytes:
        return orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS)


api = NinjaAPI(
    title="coreadmin API",
    version="1",
    description="Control plane for scraper fleets. Contract: API.md. Send X-API-Key.",
    urls_namespace="api-v1",
    auth=scraper_auth,
    parser=JsonParser(),
    renderer=JsonRenderer(),
    docs_url="/docs",
    openapi_url="/openapi.json",
)


def _field_path(loc: list[Any] | tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    # ninja prefixes the parameter source and name: ("body", "payload", "records", 0)
    if parts and parts[0] in {"body", "query", "path", "header", "cookie", "form"}:
        parts = parts[2:] if len(parts) > 2 else parts[1:]
    return ".".join(parts) or "body"


@api.exception_handler(ApiError)
def on_api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    if isinstance(exc.__cause__, RequestDataTooBig):
        exc = ApiError(str(exc), status=413, code="payload_too_large")
    return api_error_response(exc)


@api.exception_handler(ValidationError)
def on_validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    fields = [
        {"path": _field_path(e.get("loc", ())), "reason": e.get("msg", "")} for e in exc.errors
    ]
    return error_response(
        422, "validation_error", "The request is not valid; see details.fields.", {"fields": fields}
    )


@api.exception_handler(Http404)
def on_not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return error_response(404, "not_found", str(exc) or "Not found.")


@api.exception_handler(AuthenticationError)
def on_authentication_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    return error_response(401, "authentication_failed", "Send a valid key in X-API-Key.")


@api.exception_handler(HttpError)
def on_http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    if isinstance(exc.__cause__, MalformedJson):
        return api_error_response(exc.__cause__)
    if isinstance(exc.__cause__, RequestDataTooBig):
        return error_response(413, "payload_too_large", "The request body is too large.")
    codes = {
        400: "bad_request",
        401: "authentication_failed",
        403: "permission_denied",
        404: "not_found",
        405: "method_not_allowed",
        413: "payload_too_large",
        429: "rate_limited",
    }
    return error_response(exc.status_code, codes.get(exc.status_code, "error"), str(exc))


@api.exception_handler(RequestDataTooBig)
def on_too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return error_response(413, "payload_too_large", "The request body is too large.")


@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def on_database_error(request: HttpRequest, exc: DatabaseError) -> HttpResponse:
    """Postgres unreachable (restarting, failed over, out of connections) anywhere in a
    request, authentication included: 503 with Retry-After, so clients retry, instead of
    a 500 that reads as a bug. The broken connection is dropped for the next request."""
    if not infrastructure_failure(exc):
        return on_unexpected(request, exc)
    logger.warning("database unavailable: %s", exc)
    connection.close()
    return api_error_response(
        DatabaseUnavailable(
            "The database is not answering; nothing of this request was acknowledged. "
            "Send it again shortly.",
            headers={"Retry-After": "1"},
        )
    )


@api.exception_handler(redis.exceptions.ConnectionError)
@api.exception_handler(redis.exceptions.TimeoutError)
def on_redis_error(request: HttpRequest, exc: Exception) -> HttpResponse:
    """Redis unreachable where an endpoint has no degraded answer of its own."""
    logger.warning("redis unavailable: %s", exc)
    return api_error_response(
        RedisUnavailable(
            "Redis is not answering; nothing of this request was acknowledged. "
            "Send it again shortly.",
            headers={"Retry-After": "1"},
        )
    )


@api.exception_handler(Exception)
def on_unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    logger.exception("unhandled API error", exc_info=exc)
    return error_response(
        500,
        "internal_error",
        "Something went wrong on our side; nothing you sent was acknowledged. "
        "Quote the X-Request-ID header when reporting it.",
    )


class WhoAmI(Schema):
    name: str
    scope: str
    service: str | None


@api.get("/whoami", response=WhoAmI, tags=["accounts"])
def whoami(request: HttpRequest) -> dict[str, Any]:
    """The calling key's name, scope and service restriction. Costs one auth check."""
    principal: Principal = request.auth  # type: ignore[attr-defined]
    return {"name": principal.name, "scope": principal.scope, "service": principal.service or None}


api.add_router("/keys", accounts_router)
api.add_router("/proxies", proxies_router)
api.add_router("/circuits", circuits_router)
api.add_router("/ratelimits", ratelimits_router)
api.add_router("/", datasets_router)
api.add_router("/", logs_router)
api.add_router("/", tracing_router)
api.add_router("/", caching_router)
api.add_router("/fleet", fleet_router)
