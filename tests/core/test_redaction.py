from __future__ import annotations

import io
import logging
import logging.config

import pytest
import structlog

from coreadmin.logging import configure_logging
from coreadmin.redaction import REDACTED, Redactor, redact, redact_text

SECRETS = {
    "email": "reach me at jane.doe+scraper@example.co.uk please",
    "phone_us": "call (555) 123-4567 now",
    "phone_dashes": "call 555-123-4567 now",
    "phone_intl": "call +44 20 7946 0958 now",
    "phone_dots": "call 555.123.4567 now",
    "card": "card 4111 1111 1111 1111 charged",
    "card_compact": "card 4012888888881881 charged",
    "api_key": "key cak_ab12cd34_Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Jh1Gf0EdCbA9876 used",
    "bearer": "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.signature",
    "url_password": "proxy http://scraper:hunter2pass@10.0.0.1:8080 failed",
    "key_value": "login with password=s3cr3t-value ok",
}
LEAKS = [
    "jane.doe",
    "123-4567",
    "7946",
    "4111 1111",
    "4012888888881881",
    "Zx9Yw8Vu7",
    "eyJhbGciOiJIUzI1NiJ9",
    "hunter2pass",
    "s3cr3t-value",
    "555.123",
]


@pytest.mark.parametrize("name", SECRETS)
def test_each_pattern_is_redacted_in_free_text(name):
    redacted = redact_text(SECRETS[name])
    assert REDACTED in redacted
    assert not any(leak in redacted for leak in LEAKS), redacted


def test_ordinary_numbers_are_kept():
    text = "order 4111111111111112 took 1234 ms at 2026-11-23T01:02:03Z, status 200, id 9876543"
    assert redact_text(text) == text


def test_url_keeps_user_and_host_but_not_password():
    assert redact_text("http://bob:pw123@h:1") == f"http://bob:{REDACTED}@h:1"


def test_secret_named_keys_are_redacted_at_any_depth():
    context = {
        "user": "bob",
        "headers": {"Authorization": "Basic abc", "X-Api-Key": "whatever"},
        "db": {"password": "pw", "options": [{"client_secret": "cs", "note": "mail a@b.io"}]},
        "session_token": "t",
        "count": 3,
    }
    assert redact(context) == {
        "user": "bob",
        "headers": {"Authorization": REDACTED, "X-Api-Key": REDACTED},
        "db": {
            "password": REDACTED,
            "options": [{"client_secret": REDACTED, "note": f"mail {REDACTED}"}],
        },
        "session_token": REDACTED,
        "count": 3,
    }


def test_extra_patterns_and_key_names_are_configurable():
    redactor = Redactor(extra_patterns=[r"ACCT-\d{6}"], extra_key_names=["ssn"])
    assert redactor.text("acct ACCT-123456") == f"acct {REDACTED}"
    assert redactor.value({"SSN": "078-05-1120"}) == {"SSN": REDACTED}


def test_every_line_the_server_emits_is_redacted():
    """Both structlog loggers and plain logging go through the redaction processor."""
    stream = io.StringIO()
    config = configure_logging(level="INFO", fmt="json")
    config["handlers"]["console"]["stream"] = stream
    config["handlers"]["console"]["class"] = "logging.StreamHandler"
    logging.config.dictConfig(config)
    try:
        structlog.get_logger("t").info(
            "user jane.doe+scraper@example.co.uk logged in", context={"password": "hunter2pass"}
        )
        logging.getLogger("plain").warning("proxy http://u:hunter2pass@h:1 down")
        output = stream.getvalue()
    finally:
        from django.conf import settings

        logging.config.dictConfig(settings.LOGGING)
    assert output.count(REDACTED) >= 3
    assert "jane.doe" not in output and "hunter2pass" not in output
