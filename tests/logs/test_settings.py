"""Log and fleet settings are read from the environment and checked at start-up."""

from __future__ import annotations

from tests.core.test_settings import load, production_env


def test_bad_log_and_fleet_settings_stop_start_up_naming_each_one():
    result = load(
        production_env(
            LOGS_RETENTION_DAYS="debug=two",
            LOGS_REDACT_EXTRA_PATTERNS='["(unclosed"]',
            FLEET_DEFAULT_MIN_LOG_LEVEL="loud",
            FLEET_DEFAULT_SPAN_SAMPLE_RATE="1.5",
        )
    )
    assert result.returncode != 0
    message = result.stderr.strip().splitlines()[-1]
    for name in (
        "LOGS_RETENTION_DAYS",
        "LOGS_REDACT_EXTRA_PATTERNS",
        "FLEET_DEFAULT_MIN_LOG_LEVEL",
        "FLEET_DEFAULT_SPAN_SAMPLE_RATE",
    ):
        assert name in message


def test_good_log_settings_are_accepted():
    result = load(
        production_env(
            LOGS_RETENTION_DAYS="debug=1,error=90",
            LOGS_REDACT_EXTRA_PATTERNS='["ACCT-\\\\d{6}"]',
            LOGS_REDACT_EXTRA_KEYS="ssn,iban",
        )
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "loaded" in result.stdout
