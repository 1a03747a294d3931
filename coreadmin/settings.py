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


def _scheme(url: str) -> str:
    # Only the scheme goes into the message: the rest of a URL may hold a password.
    return repr(url.split("://", 1)[0]) if "://" in url else "no scheme"


def _check_database_url(value: str) -> dict:
    try:
        config = dict(dj_database_url.parse(value, conn_max_age=60, conn_health_checks=True))
    except ValueError:
        config = {}
    if config.get("ENGINE") != "django.db.backends.postgresql":
        raise ValueError(f"got {_scheme(value)}")
    return config


def _check_redis_url(value: str) -> str:
    if not value.startswith(("redis://", "rediss://", "unix://")):
        raise ValueError(f"got {_scheme(value)}")
    return value


DEBUG = env.boolean("DEBUG", default=not PRODUCTION)
SECRET_KEY = env._read(
    "SECRET_KEY", "django-insecure-development-only-key", _check_secret_key, "a long random string"
)
ALLOWED_HOSTS = env.items("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"]) or []
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
LOG_LEVEL = (env.string("LOG_LEVEL", "INFO", optional=True) or "INFO").upper()
if LOG_LEVEL not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
    env.problems.append(
        f"LOG_LEVEL must be DEBUG, INFO, WARNING, ERROR or CRITICAL, got {LOG_LEVEL!r}"
    )
    LOG_LEVEL = "INFO"
LOG_FORMAT = env.string("LOG_FORMAT", "json" if PRODUCTION else "console", optional=True)
if LOG_FORMAT not in {"json", "console"}:
    env.problems.append(f"LOG_FORMAT must be json or console, got {LOG_FORMAT!r}")
    LOG_FORMAT = "json"

# No raise here: the problems of this module, including the blocks apps append below, are
# reported together, in one message, by coreadmin.apps.CoreadminConfig.ready() when Django
# starts (manage.py, gunicorn, Celery, pytest all go through django.setup()).

INSTALLED_APPS = [
    "coreadmin",  # first: its ready() stops start-up on invalid settings
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
# Sessions live in Postgres only, not cached_db on the Redis cache: django-redis raises
# when Redis is down, which locked operators out of the very pages that say Redis is
# degraded. One indexed primary-key read per dashboard request is cheap; Redis stays
# optional for the dashboard (tests/dashboard/test_redis_down.py).
SESSION_ENGINE = "django.contrib.sessions.backends.db"

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

from coreadmin.logging import configure_logging  # noqa: E402

LOGGING = configure_logging(level=LOG_LEVEL, fmt=LOG_FORMAT or "console")
DJANGO_STRUCTLOG_CELERY_ENABLED = True
# Echo a caller-supplied X-Request-ID (scrapers send theirs) so both sides log one id.
DJANGO_STRUCTLOG_TRUST_UPSTREAM_REQUEST_ID = True

# --- proxies ---
# Leasing (docs/proxies.md has the table): default lease length and strategy, how many
# candidates one lease may examine (the bound that keeps selection cost flat), stickiness.
PROXY_LEASE_SECONDS = env.integer("PROXY_LEASE_SECONDS", 300, minimum=1)
PROXY_DEFAULT_STRATEGY = env.string("PROXY_DEFAULT_STRATEGY", "round_robin", optional=True)
PROXY_LEASE_MAX_PROBES = env.integer("PROXY_LEASE_MAX_PROBES", 32, minimum=1)
PROXY_STICKY_SECONDS = env.integer("PROXY_STICKY_SECONDS", 1800, minimum=1)
PROXY_MAX_LEASES_PER_PROXY = env.integer("PROXY_MAX_LEASES_PER_PROXY", 0)
PROXY_RETRY_AFTER_SECONDS = env.integer("PROXY_RETRY_AFTER_SECONDS", 30, minimum=1)
# Outcomes: moving-average weight, per-target ban cooldown (doubles per repeat, capped).
PROXY_EWMA_ALPHA = env.number("PROXY_EWMA_ALPHA", 0.2)
PROXY_BAN_BASE_SECONDS = env.integer("PROXY_BAN_BASE_SECONDS", 300, minimum=1)
PROXY_BAN_MAX_SECONDS = env.integer("PROXY_BAN_MAX_SECONDS", 6 * 3600, minimum=1)
PROXY_BAN_RESET_SECONDS = env.integer("PROXY_BAN_RESET_SECONDS", 24 * 3600, minimum=1)
# Quarantine after this many failures in a row; re-checked with randomized backoff.
PROXY_QUARANTINE_AFTER_FAILURES = env.integer("PROXY_QUARANTINE_AFTER_FAILURES", 5, minimum=1)
PROXY_RECHECK_BASE_SECONDS = env.integer("PROXY_RECHECK_BASE_SECONDS", 60, minimum=1)
PROXY_RECHECK_MAX_SECONDS = env.integer("PROXY_RECHECK_MAX_SECONDS", 3600, minimum=1)
# Pool-shrink protection: below this usable share, leases carry slow_down_ms.
PROXY_MIN_USABLE_FRACTION = env.number("PROXY_MIN_USABLE_FRACTION", 0.5)
PROXY_SLOW_DOWN_MAX_MS = env.number("PROXY_SLOW_DOWN_MAX_MS", 5000.0)
# Health checks: through each proxy to this URL; the body must contain the text if set.
PROXY_CHECK_URL = env.string("PROXY_CHECK_URL", "https://example.com/", optional=True)
PROXY_CHECK_EXPECT_TEXT = env.string("PROXY_CHECK_EXPECT_TEXT", "", optional=True) or ""
PROXY_CHECK_TIMEOUT_SECONDS = env.number("PROXY_CHECK_TIMEOUT_SECONDS", 10.0)
PROXY_CHECK_CONCURRENCY = env.integer("PROXY_CHECK_CONCURRENCY", 20, minimum=1)
PROXY_CHECK_INTERVAL_SECONDS = env.integer("PROXY_CHECK_INTERVAL_SECONDS", 900, minimum=10)
PROXY_CHECK_HISTORY_DAYS = env.integer("PROXY_CHECK_HISTORY_DAYS", 14, minimum=1)
# Each beat run (every minute) checks at most this many due proxies, claiming them first.
PROXY_CHECK_BATCH_SIZE = env.integer("PROXY_CHECK_BATCH_SIZE", 2000, minimum=1)
PROXY_CHECK_CLAIM_SECONDS = env.integer("PROXY_CHECK_CLAIM_SECONDS", 900, minimum=60)
env.raise_if_invalid()
CELERY_BEAT_SCHEDULE["proxies-health-checks"] = {
    "task": "apps.proxies.tasks.check_due_proxies",
    "schedule": 60.0,
}
CELERY_BEAT_SCHEDULE["proxies-prune-history"] = {
    "task": "apps.proxies.tasks.prune_history",
    "schedule": 3600.0,
}
CELERY_BEAT_SCHEDULE["proxies-flush-leases"] = {
    "task": "apps.proxies.tasks.flush_leases",
    "schedule": 5.0,
}

# --- circuits ---
# Defaults of a circuit created on first use (each is editable per circuit in admin / API).
CIRCUIT_DEFAULTS = {
    "failure_threshold": env.integer("CIRCUIT_FAILURE_THRESHOLD", 5),
    "recovery_timeout_ms": env.number("CIRCUIT_RECOVERY_TIMEOUT_MS", 60_000.0),
    "half_open_max_calls": env.integer("CIRCUIT_HALF_OPEN_MAX_CALLS", 1, minimum=1),
    "success_threshold": env.integer("CIRCUIT_SUCCESS_THRESHOLD", 1, minimum=1),
    # The resilience4j-style rate rules are off (0) unless configured.
    "failure_rate_threshold": env.number("CIRCUIT_FAILURE_RATE_THRESHOLD", 0.0),
    "slow_call_rate_threshold": env.number("CIRCUIT_SLOW_CALL_RATE_THRESHOLD", 0.0),
    "slow_call_duration_ms": env.number("CIRCUIT_SLOW_CALL_DURATION_MS", 5_000.0),
    "minimum_calls": env.integer("CIRCUIT_MINIMUM_CALLS", 20, minimum=1),
    "sliding_window_ms": env.number("CIRCUIT_SLIDING_WINDOW_MS", 60_000.0, minimum=1000.0),
}
# A half-open probe that never reports back frees its slot after this long.
CIRCUIT_PROBE_TIMEOUT_MS = env.number("CIRCUIT_PROBE_TIMEOUT_MS", 30_000.0, minimum=100.0)
# An idle circuit's Redis state expires after this long (it is rebuilt as closed, or as the
# forced state kept in Postgres). Every call refreshes it.
CIRCUIT_STATE_TTL_SECONDS = env.integer("CIRCUIT_STATE_TTL_SECONDS", 7 * 86400, minimum=60)
# How long a web process trusts its cached copy of a circuit's configuration.
CIRCUIT_CONFIG_CACHE_SECONDS = env.number("CIRCUIT_CONFIG_CACHE_SECONDS", 5.0)
# After Redis failed to answer, circuits and rate limits answer degraded (fail open / local
# bucket) without trying Redis again for this long, so an outage costs one timeout per
# process per interval rather than one per request.
REDIS_FAILOPEN_RETRY_SECONDS = env.number("REDIS_FAILOPEN_RETRY_SECONDS", 1.0)
CELERY_BEAT_SCHEDULE["circuits-flush-events"] = {
    "task": "apps.circuits.tasks.circuit_events_flush",
    "schedule": 15.0,
}

# --- ratelimits ---
# How long a web process trusts its cached copy of a policy and its per-key overrides.
RATELIMIT_POLICY_CACHE_SECONDS = env.number("RATELIMIT_POLICY_CACHE_SECONDS", 5.0)
# Most buckets one process keeps while Redis is down (least recently used go first).
RATELIMIT_LOCAL_BUCKETS = env.integer("RATELIMIT_LOCAL_BUCKETS", 10_000, minimum=10)
# Decision counts (dashboard) are kept per process and flushed to Redis in one pipeline
# this often; while Redis is down at most RATELIMIT_STATS_MAX_PENDING distinct counters
# are kept for the next flush, beyond that counts are dropped (and counted in /metrics).
RATELIMIT_STATS_FLUSH_S = env.number("RATELIMIT_STATS_FLUSH_S", 1.0)
RATELIMIT_STATS_MAX_PENDING = env.integer("RATELIMIT_STATS_MAX_PENDING", 50_000, minimum=100)

# --- datasets ---
# Batch writes: limits (refused with 413), retry queue backoff, batch-id retention.
DATASETS_MAX_BATCH_RECORDS = env.integer("DATASETS_MAX_BATCH_RECORDS", 5000, minimum=1)
DATASETS_MAX_BODY_BYTES = env.integer("DATASETS_MAX_BODY_BYTES", 10 * 1024 * 1024, minimum=1024)
DATASETS_BATCH_ID_RETENTION_HOURS = env.integer("DATASETS_BATCH_ID_RETENTION_HOURS", 72, minimum=24)
DATASETS_RETRY_MAX_ATTEMPTS = env.integer("DATASETS_RETRY_MAX_ATTEMPTS", 8, minimum=1)
DATASETS_RETRY_BASE_SECONDS = env.number("DATASETS_RETRY_BASE_SECONDS", 30.0, minimum=0.01)
# Capped at one hour: Celery's visibility timeout (2 h) must stay above it.
DATASETS_RETRY_MAX_DELAY_SECONDS = env.number("DATASETS_RETRY_MAX_DELAY_SECONDS", 3600.0)
if DATASETS_RETRY_MAX_DELAY_SECONDS > 3600:
    env.problems.append("DATASETS_RETRY_MAX_DELAY_SECONDS must be at most 3600")
DATASETS_RETRY_CLAIM_BATCH = env.integer("DATASETS_RETRY_CLAIM_BATCH", 200, minimum=1)
DATASETS_RETRY_POLL_SECONDS = env.number("DATASETS_RETRY_POLL_SECONDS", 10.0, minimum=1.0)
# Resolved retry items (written or discarded) and their attempts are kept this long.
DATASETS_RESOLVED_RETENTION_DAYS = env.integer("DATASETS_RESOLVED_RETENTION_DAYS", 30, minimum=1)
CELERY_BEAT_SCHEDULE["datasets-retry-due"] = {
    "task": "apps.datasets.tasks.retry_due",
    "schedule": DATASETS_RETRY_POLL_SECONDS,
}
CELERY_BEAT_SCHEDULE["datasets-prune-batches"] = {
    "task": "apps.datasets.tasks.prune_batches",
    "schedule": 3600.0,
}
CELERY_BEAT_SCHEDULE["datasets-prune-resolved"] = {
    "task": "apps.datasets.tasks.prune_resolved",
    "schedule": 3600.0,
}
CELERY_BEAT_SCHEDULE["datasets-compact-counts"] = {
    "task": "apps.datasets.tasks.compact_counts",
    "schedule": 300.0,
}

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
# How long a log or span batch_id is remembered (a client's resend of it stores nothing).
TELEMETRY_BATCH_ID_RETENTION_HOURS = env.integer(
    "TELEMETRY_BATCH_ID_RETENTION_HOURS", 72, minimum=24
)
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

# --- tracing ---
# The share of threads whose spans are kept is the fleet's per-service span_sample_rate
# (FLEET_DEFAULT_SPAN_SAMPLE_RATE when a service has none); apps.tracing.sampling.
# Raw spans (thread waterfalls) are kept this many days; daily partitions are dropped.
TRACING_RAW_RETENTION_DAYS = env.integer("TRACING_RAW_RETENTION_DAYS", 3, minimum=1)
# Per-minute sketches back windows up to 6 h; per-hour sketches back longer windows.
TRACING_MINUTE_RETENTION_DAYS = env.integer("TRACING_MINUTE_RETENTION_DAYS", 2, minimum=1)
TRACING_HOUR_RETENTION_DAYS = env.integer("TRACING_HOUR_RETENTION_DAYS", 35, minimum=8)
TRACING_MAX_SPANS_PER_REQUEST = env.integer("TRACING_MAX_SPANS_PER_REQUEST", 5000, minimum=1)
# The server traces its own requests (middleware) as service "coreadmin".
TRACING_SELF_ENABLED = env.boolean("TRACING_SELF_ENABLED", MODE != "test")
TRACING_SELF_SERVICE = env.string("TRACING_SELF_SERVICE", "coreadmin", optional=True) or "coreadmin"
# Own spans are buffered per process and written every this many seconds (0: per request).
TRACING_SELF_FLUSH_SECONDS = env.number(
    "TRACING_SELF_FLUSH_SECONDS", 0.0 if MODE == "test" else 5.0
)
MIDDLEWARE.insert(
    MIDDLEWARE.index("coreadmin.metrics.PrometheusMiddleware") + 1,
    "apps.tracing.middleware.SelfTracingMiddleware",
)
CELERY_BEAT_SCHEDULE["tracing-retention"] = {
    "task": "apps.tracing.tasks.tracing_retention",
    "schedule": 3600.0,
}
env.raise_if_invalid()

# --- caching ---
# Our own caches' counters are written as cache-stats at most this often per process.
CACHING_PUBLISH_SECONDS = env.number("CACHING_PUBLISH_SECONDS", 60.0, minimum=1.0)
CACHING_PUBLISH_ENABLED = env.boolean("CACHING_PUBLISH_ENABLED", MODE != "test")
CACHING_SELF_SERVICE = env.string("CACHING_SELF_SERVICE", "coreadmin", optional=True) or "coreadmin"
CACHING_RETENTION_DAYS = env.integer("CACHING_RETENTION_DAYS", 14, minimum=1)
MIDDLEWARE.append("apps.caching.middleware.CacheStatsMiddleware")
CELERY_BEAT_SCHEDULE["caching-redis-info"] = {
    "task": "apps.caching.tasks.redis_info_sample",
    "schedule": 60.0,
}
CELERY_BEAT_SCHEDULE["caching-retention"] = {
    "task": "apps.caching.tasks.cache_stats_retention",
    "schedule": 3600.0,
}
env.raise_if_invalid()
