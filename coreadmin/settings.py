"""coreadmin settings: one env-driven module.

``COREADMIN_ENV`` selects the mode: ``development`` (default; sensible local defaults),
``test`` (development defaults, used by the test suite) or ``production`` (every required
variable must be set and valid; start-up stops with one message naming each bad one).
The table of variables is in README.md.
"""

from __future__ import annotations

import base64
import hashlib
import os
from pathlib import Path

import dj_database_url
from cryptography.fernet import Fernet

from coreadmin.env import Env

BASE_DIR = Path(__file__).resolve().parent.parent

# Under pytest (which sets PYTEST_VERSION before pytest-django imports settings) the
# default mode is "test", so a plain `pytest` gets per-worker Redis key spaces too.
MODE = Env(production=False).string(
    "COREADMIN_ENV", "test" if os.environ.get("PYTEST_VERSION") else "development"
)
if MODE not in {"development", "test", "production"}:
    MODE = "invalid"
PRODUCTION = MODE != "development" and MODE != "test"
env = Env(production=PRODUCTION)
if MODE == "invalid":
    env.problems.append("COREADMIN_ENV must be development, test or production")


def _dev_fernet_key(label: str) -> str:
    return base64.urlsafe_b64encode(
        hashlib.sha256(f"coreadmin-dev-{label}".encode()).digest()
    ).decode()


def _check_secret_key(value: str) -> str:
    if PRODUCTION and (
        len(value) < 50 or value.startswith("django-insecure") or len(set(value)) < 5
    ):
        raise ValueError("at least 50 characters, random, and not a development key")
    return value


def _check_fernet_keys(keys: list[str]) -> list[str]:
    for index, key in enumerate(keys):
        try:
            Fernet(key)
        except ValueError as exc:
            raise ValueError(f"key #{index + 1} is not a Fernet key") from exc
    return keys


def _check_database_url(value: str) -> dict:
    config = dict(dj_database_url.parse(value, conn_max_age=60, conn_health_checks=True))
    if config.get("ENGINE") != "django.db.backends.postgresql":
        raise ValueError("a postgres:// URL")
    return config


def _check_redis_url(value: str) -> str:
    if not value.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError("a redis:// URL")
    return value


DEBUG = env.boolean("DEBUG", default=not PRODUCTION)
SECRET_KEY = env._read(
    "SECRET_KEY", "django-insecure-development-only-key", _check_secret_key, "a long random string"
)
ALLOWED_HOSTS = env.items("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = (
    env.items("CSRF_TRUSTED_ORIGINS", []) if env.environ.get("CSRF_TRUSTED_ORIGINS") else []
)

DATABASES = {
    "default": env._read(
        "DATABASE_URL",
        _check_database_url("postgres://postgres@127.0.0.1:5432/coreadmin"),
        _check_database_url,
        "a postgres:// URL",
    )
    or {}
}
REDIS_URL = env._read("REDIS_URL", "redis://127.0.0.1:6379/0", _check_redis_url, "a redis:// URL")
# Every key we write in Redis starts with this; tests give each worker its own prefix.
REDIS_KEY_PREFIX = env.string("REDIS_KEY_PREFIX", "ca:", optional=True) or "ca:"
if MODE == "test":
    # Each pytest-xdist worker gets its own key space, so workers never see each
    # other's circuits or buckets and cleanup after a test deletes only its own keys.
    REDIS_KEY_PREFIX += "test:" + os.environ.get("PYTEST_XDIST_WORKER", "main") + ":"
# Keys under our prefix that live without a TTL, and why (checked by the test suite):
REDIS_KEYS_WITHOUT_TTL = {
    "celery:": "Celery's broker queues and unacked-message index; Celery removes them.",
}

# Secrets at rest (proxy passwords): the first key encrypts, all keys decrypt (rotation).
ENCRYPTION_KEYS = env._read(
    "ENCRYPTION_KEYS",
    [_dev_fernet_key("1")],
    lambda raw: _check_fernet_keys([k.strip() for k in raw.split(",") if k.strip()]),
    "a comma-separated list of Fernet keys",
)

API_MAX_BODY_BYTES = env.integer("API_MAX_BODY_BYTES", 10 * 1024 * 1024, minimum=1024)
# How long an authenticated API key is trusted from the in-process cache: the bound on how
# long a revoked key keeps working on one web process (see docs/architecture.md).
API_KEY_CACHE_SECONDS = env.number("API_KEY_CACHE_SECONDS", 5.0)
API_KEY_LAST_USED_INTERVAL_SECONDS = env.integer("API_KEY_LAST_USED_INTERVAL_SECONDS", 60)
WORKER_HEARTBEAT_STALE_SECONDS = env.integer("WORKER_HEARTBEAT_STALE_SECONDS", 90, minimum=10)
LOG_LEVEL = env.string("LOG_LEVEL", "INFO", optional=True) or "INFO"
LOG_FORMAT = env.string("LOG_FORMAT", "json" if PRODUCTION else "console", optional=True)

env.raise_if_invalid()

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_htmx",
    "django_structlog",
    "django_celery_beat",
    "ninja",
    "apps.accounts",
    "apps.proxies",
    "apps.circuits",
    "apps.ratelimits",
    "apps.datasets",
    "apps.logs",
    "apps.tracing",
    "apps.caching",
    "apps.fleet",
    "apps.dashboard",
]

MIDDLEWARE = [
    "coreadmin.middleware.BodySizeLimitMiddleware",
    "coreadmin.middleware.ApiErrorShapeMiddleware",
    "coreadmin.metrics.PrometheusMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django_structlog.middlewares.RequestMiddleware",
    "coreadmin.middleware.RequestIdHeaderMiddleware",
]

ROOT_URLCONF = "coreadmin.urls"
WSGI_APPLICATION = "coreadmin.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "apps.dashboard.context_processors.navigation",
            ],
        },
    },
]

CACHES = {
    "default": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": REDIS_KEY_PREFIX + "cache",
        "TIMEOUT": 300,
        "OPTIONS": {
            "CLIENT_CLASS": "django_redis.client.DefaultClient",
            "SOCKET_CONNECT_TIMEOUT": 1.0,
            "SOCKET_TIMEOUT": 1.0,
        },
    }
}
SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard:overview"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "staticfiles"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Requests bigger than this are refused (413) before they are read in full.
DATA_UPLOAD_MAX_MEMORY_SIZE = API_MAX_BODY_BYTES
DATA_UPLOAD_MAX_NUMBER_FIELDS = 10_000

# Celery: Redis broker, JSON only, a task is acknowledged after it ran and re-delivered if
# its worker died. The visibility timeout must exceed the longest countdown we schedule
# (retry backoff is capped at one hour), or Redis would hand the task out twice.
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": 2 * 3600,
    "global_keyprefix": REDIS_KEY_PREFIX + "celery:",
}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Defaults; django-celery-beat copies them into the database, where admins can edit them.
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    "worker-heartbeat": {"task": "coreadmin.tasks.worker_heartbeat", "schedule": 30.0},
}

# Security headers; production values pass `manage.py check --deploy`.
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
if PRODUCTION:
    SECURE_SSL_REDIRECT = env.boolean("SECURE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.integer("SECURE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    env.raise_if_invalid()

from coreadmin.logging import configure_logging  # noqa: E402

LOGGING = configure_logging(level=LOG_LEVEL, fmt=LOG_FORMAT or "console")
DJANGO_STRUCTLOG_CELERY_ENABLED = True
# Echo a caller-supplied X-Request-ID (scrapers send theirs) so both sides log one id.
DJANGO_STRUCTLOG_TRUST_UPSTREAM_REQUEST_ID = True

# --- fleet ---
# Defaults for a service that has no ServiceConfiguration row (editable in admin).
FLEET_DEFAULT_BATCH_SIZE = env.integer("FLEET_DEFAULT_BATCH_SIZE", 500, minimum=1)
FLEET_DEFAULT_RATE_LIMIT_POLICIES: list[str] = (
    env.items("FLEET_DEFAULT_RATE_LIMIT_POLICIES", [])
    if env.environ.get("FLEET_DEFAULT_RATE_LIMIT_POLICIES")
    else []
)
FLEET_DEFAULT_MAX_WORKERS = env.integer("FLEET_DEFAULT_MAX_WORKERS", 4, minimum=1)
FLEET_DEFAULT_RETRY_ATTEMPTS = env.integer("FLEET_DEFAULT_RETRY_ATTEMPTS", 3)
FLEET_DEFAULT_SPAN_SAMPLE_RATE = env.number("FLEET_DEFAULT_SPAN_SAMPLE_RATE", 0.10)
FLEET_DEFAULT_MIN_LOG_LEVEL = (
    env.string("FLEET_DEFAULT_MIN_LOG_LEVEL", "info", optional=True) or "info"
).lower()
if FLEET_DEFAULT_SPAN_SAMPLE_RATE > 1.0:
    env.problems.append("FLEET_DEFAULT_SPAN_SAMPLE_RATE must be between 0 and 1")
if FLEET_DEFAULT_MIN_LOG_LEVEL not in {"debug", "info", "warning", "error", "critical"}:
    env.problems.append(
        "FLEET_DEFAULT_MIN_LOG_LEVEL must be one of debug, info, warning, error, critical"
    )
# How long one process trusts its cached copy of a service's configuration: the bound on
# how stale apps.fleet.selectors.service_config() (and so a heartbeat answer) can be.
FLEET_CONFIG_CACHE_SECONDS = env.number("FLEET_CONFIG_CACHE_SECONDS", 5.0)
# An instance whose last heartbeat is older than this is shown as stale.
FLEET_STALE_SECONDS = env.integer("FLEET_STALE_SECONDS", 90, minimum=1)
# Instances silent for longer than this are forgotten by the hourly beat task.
FLEET_FORGET_AFTER_HOURS = env.integer("FLEET_FORGET_AFTER_HOURS", 24, minimum=1)
FLEET_HEARTBEAT_EXTRA_MAX_BYTES = env.integer("FLEET_HEARTBEAT_EXTRA_MAX_BYTES", 8192, minimum=64)
CELERY_BEAT_SCHEDULE["fleet-forget-silent"] = {
    "task": "apps.fleet.tasks.fleet_forget_silent",
    "schedule": 3600.0,
}
# (checked with the logs settings below, so one message names every bad variable)

# --- logs ---
import re as _re  # noqa: E402

import orjson as _orjson  # noqa: E402

_LOGS_RETENTION_DEFAULT = {"debug": 2, "info": 7, "warning": 14, "error": 30, "critical": 30}


def _parse_retention(raw: str) -> dict[str, int]:
    levels = set(_LOGS_RETENTION_DEFAULT)
    out = dict(_LOGS_RETENTION_DEFAULT)
    for part in raw.split(","):
        name, _, days = part.strip().partition("=")
        if name.strip().lower() not in levels or not days.strip().isdigit():
            raise ValueError(f"{part.strip()!r} is not level=days")
        out[name.strip().lower()] = max(1, int(days))
    return out


# Days kept per level, e.g. "debug=2,info=7,warning=14,error=30,critical=30" (levels not
# named keep these defaults). Enforced hourly by dropping or trimming day partitions.
LOGS_RETENTION_DAYS: dict[str, int] = (
    env._read("LOGS_RETENTION_DAYS", {}, _parse_retention, "level=days pairs")
    if env.environ.get("LOGS_RETENTION_DAYS")
    else dict(_LOGS_RETENTION_DEFAULT)
)
LOGS_PARTITIONS_AHEAD_DAYS = env.integer("LOGS_PARTITIONS_AHEAD_DAYS", 3, minimum=1)
LOGS_MAX_BATCH = env.integer("LOGS_MAX_BATCH", 5000, minimum=1)
LOGS_MAX_MESSAGE_CHARS = env.integer("LOGS_MAX_MESSAGE_CHARS", 16_384, minimum=256)
# A line stamped further in the future than this is stored at the server's time instead.
LOGS_MAX_FUTURE_SECONDS = env.integer("LOGS_MAX_FUTURE_SECONDS", 300)


# Extra redaction on top of the built-in patterns: a JSON list of regular expressions,
# and comma-separated key names whose values are always redacted.
def _parse_patterns(raw: str) -> list[str]:
    try:
        patterns = _orjson.loads(raw)
    except _orjson.JSONDecodeError as exc:
        raise ValueError(str(exc)) from exc
    if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
        raise ValueError("not a list of strings")
    for pattern in patterns:
        try:
            _re.compile(pattern)
        except _re.error as exc:
            raise ValueError(f"{pattern!r}: {exc}") from exc
    return patterns


LOGS_REDACT_EXTRA_PATTERNS: list[str] = (
    env._read("LOGS_REDACT_EXTRA_PATTERNS", [], _parse_patterns, "a JSON list of regexes")
    if env.environ.get("LOGS_REDACT_EXTRA_PATTERNS")
    else []
) or []
LOGS_REDACT_EXTRA_KEYS: list[str] = (
    env.items("LOGS_REDACT_EXTRA_KEYS", []) if env.environ.get("LOGS_REDACT_EXTRA_KEYS") else []
)
# The server's own log lines go to the same store through a bounded in-memory buffer
# drained by a background thread (never blocks a request; overflow is counted and
# reported). Off under the test suite, whose tests drive the handler directly.
LOGS_SHIP_SERVER_LOGS = env.boolean("LOGS_SHIP_SERVER_LOGS", MODE != "test")
LOGS_SHIP_BUFFER_LINES = env.integer("LOGS_SHIP_BUFFER_LINES", 10_000, minimum=10)
LOGS_SHIP_BATCH_LINES = env.integer("LOGS_SHIP_BATCH_LINES", 500, minimum=1)
LOGS_SHIP_INTERVAL_SECONDS = env.number("LOGS_SHIP_INTERVAL_SECONDS", 1.0, minimum=0.05)
LOGS_SHIP_LEVEL = (env.string("LOGS_SHIP_LEVEL", "INFO", optional=True) or "INFO").upper()
LOGS_SERVER_SERVICE = env.string("LOGS_SERVER_SERVICE", "coreadmin", optional=True) or "coreadmin"
LOGS_PAGE_SIZE = env.integer("LOGS_PAGE_SIZE", 50, minimum=10)
LOGS_TAIL_INTERVAL_SECONDS = env.integer("LOGS_TAIL_INTERVAL_SECONDS", 3, minimum=1)
CELERY_BEAT_SCHEDULE["logs-maintain-partitions"] = {
    "task": "apps.logs.tasks.logs_maintain_partitions",
    "schedule": 3600.0,
}
if LOGS_SHIP_SERVER_LOGS:
    LOGGING["handlers"]["store"] = {
        "()": "coreadmin.logging.BufferedStoreHandler",
        "sink": "apps.logs.services.log_lines_store_server",
        "service": LOGS_SERVER_SERVICE,
        "capacity": LOGS_SHIP_BUFFER_LINES,
        "batch_size": LOGS_SHIP_BATCH_LINES,
        "interval": LOGS_SHIP_INTERVAL_SECONDS,
        "level": LOGS_SHIP_LEVEL,
    }
    LOGGING["root"]["handlers"].append("store")

from coreadmin.redaction import configure_default_redactor  # noqa: E402

configure_default_redactor(LOGS_REDACT_EXTRA_PATTERNS, LOGS_REDACT_EXTRA_KEYS)
env.raise_if_invalid()
