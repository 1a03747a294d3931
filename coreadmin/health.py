"""Liveness, readiness and metrics endpoints (no auth)."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse

from coreadmin.errors import error_response
from coreadmin.redis import connection as redis_connection


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def check_postgres() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:  # any failure means "not ready"; the reason is reported
        return f"error: {type(exc).__name__}"


def check_redis() -> str:
    try:
        redis_connection().ping()
        return "ok"
    except Exception as exc:
        return f"error: {type(exc).__name__}"


def readyz(request: HttpRequest) -> JsonResponse:
    checks = {"postgres": check_postgres(), "redis": check_redis()}
    failing = [name for name, result in checks.items() if result != "ok"]
    status = "ok" if not failing else "unavailable: " + ", ".join(failing)
    return JsonResponse({"status": status, "checks": checks}, status=503 if failing else 200)


def api_not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    return error_response(404, "not_found", f"There is no API endpoint at {request.path}.")
