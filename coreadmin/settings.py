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

# --- tracing ---
# Share of threads (by thread_id) whose spans are kept; apps.tracing.sampling.
TRACING_DEFAULT_SAMPLE_RATE = env.number("TRACING_DEFAULT_SAMPLE_RATE", 0.10)
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
