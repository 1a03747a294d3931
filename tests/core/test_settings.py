"""Settings are read in a fresh interpreter per case, with exactly the given environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
BASE_ENV = {"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "coreadmin.settings"}


def production_env(**overrides: str) -> dict[str, str]:
    env = {
        **BASE_ENV,
        "COREADMIN_ENV": "production",
        "SECRET_KEY": "p" * 20 + "r4nd0m-Pr0duct10n-K3y-w1th-3nough-ch4rs!" + "q" * 10,
        "DATABASE_URL": os.environ.get(
            "DATABASE_URL", "postgres://postgres@127.0.0.1:5432/coreadmin"
        ),
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
        "ALLOWED_HOSTS": "coreadmin.example.com",
        "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }
    env.update(overrides)
    return {k: v for k, v in env.items() if v != ""}


def load(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('loaded')"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_refuses_to_start_naming_every_bad_variable_in_one_message():
    result = load(
        production_env(
            SECRET_KEY="",
            DATABASE_URL="mysql://user:hunter2-db-password@db/coreadmin",
            REDIS_URL="http://cache:6379",
            ALLOWED_HOSTS="",
            ENCRYPTION_KEYS="nope",
            API_MAX_BODY_BYTES="lots",
            DEBUG="maybe",
            LOG_LEVEL="loud",
        )
    )
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("django.core.exc")]
    assert len(errors) == 1, result.stderr
    for name in (
        "SECRET_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "ALLOWED_HOSTS",
        "ENCRYPTION_KEYS",
        "API_MAX_BODY_BYTES",
        "DEBUG",
        "LOG_LEVEL",
    ):
        assert name in errors[0]
    assert "WORKER_HEARTBEAT_STALE_SECONDS" not in errors[0]
    assert "hunter2" not in result.stderr


def test_a_valid_production_environment_loads():
    result = load(production_env())
    assert result.returncode == 0, result.stderr
    assert "loaded" in result.stdout


@pytest.mark.parametrize(
    "command",
    [["manage.py", "check"], ["-m", "celery", "-A", "coreadmin", "worker"]],
    ids=["manage.py", "celery"],
)
def test_every_entry_point_refuses_to_start_with_an_invalid_production_environment(command):
    result = subprocess.run(
        [sys.executable, *command],
        cwd=ROOT,
        env=production_env(REDIS_URL="", SECURE_HSTS_SECONDS="a year"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "REDIS_URL is required" in result.stderr
    assert "SECURE_HSTS_SECONDS must be an integer" in result.stderr


def test_production_has_no_development_defaults():
    result = load({**BASE_ENV, "COREADMIN_ENV": "production"})
    assert result.returncode != 0
    for name in ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS", "ENCRYPTION_KEYS"):
        assert name in result.stderr


def test_development_mode_starts_with_defaults():
    result = load({**BASE_ENV, "COREADMIN_ENV": "development"})
    assert result.returncode == 0, result.stderr
    assert "loaded" in result.stdout


def test_deploy_checks_pass_with_production_values():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_encryption_keys_rotate_first_encrypts_all_decrypt():
    from coreadmin.crypto import decrypt, encrypt, reencrypt

    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    token = encrypt("s3cret", keys=[old])
    assert decrypt(token, keys=[new, old]) == "s3cret"
    rotated = reencrypt(token, keys=[new, old])
    assert decrypt(rotated, keys=[new]) == "s3cret"


def test_problems_of_the_app_blocks_at_the_end_of_settings_stop_start_up_too(monkeypatch):
    # Apps append their settings after the core ones; their problems are raised with the
    # rest when Django starts, not silently dropped.
    from django.apps import apps
    from django.core.exceptions import ImproperlyConfigured

    from coreadmin import settings as module

    monkeypatch.setattr(module.env, "problems", ["LATE_VARIABLE must be an integer, got 'x'"])
    with pytest.raises(ImproperlyConfigured, match="LATE_VARIABLE must be an integer"):
        apps.get_app_config("coreadmin").ready()
