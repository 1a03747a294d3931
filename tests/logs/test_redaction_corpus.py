"""The redaction corpus: every secret below, sent in messages, logger names, context
values (nested in dicts and lists) and under secret-named keys, is absent from what is
stored; ordinary numbers survive."""

from __future__ import annotations

import json
import logging

import pytest
from django.db import connection

from apps.logs.services import log_lines_store_server
from coreadmin.logging import BufferedStoreHandler
from coreadmin.redaction import REDACTED, Redactor, configure_default_redactor
from tests.logs.conftest import record

pytestmark = pytest.mark.django_db

API_KEY = "cak_ab12cd34_Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Jh1Gf0EdCbA98765"
# (text carrying a secret, the fragment that must not be stored)
CORPUS = [
    ("mail jane.doe+scraper@example.co.uk now", "jane.doe"),
    ("contact USER.NAME@EXAMPLE.COM", "USER.NAME"),
    ("call (555) 123-4567", "123-4567"),
    ("call 555-123-4567", "555-123"),
    ("call 555.123.4567", "555.123"),
    ("call +44 20 7946 0958", "7946"),
    ("call +1-202-555-0143", "555-0143"),
    ("call +33 1 42 68 53 00", "42 68 53"),
    ("call 020 7946 0958 (UK)", "7946 0958"),
    ("whatsapp +4915112345678", "15112345678"),
    ("visa 4111 1111 1111 1111 charged", "4111 1111"),
    ("mastercard 5555-5555-5555-4444", "5555-5555"),
    ("amex 378282246310005", "378282246310005"),
    ("discover 6011111111111117.", "6011111111111117"),
    (f"key {API_KEY} used", "Zx9Yw8Vu7Ts6"),
    (f"X-API-Key={API_KEY}", "Zx9Yw8Vu7Ts6"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", "eyJhbGciOiJIUzI1NiJ9"),
    ("sent bearer abcdef0123456789xyz", "abcdef0123456789xyz"),
    ("proxy http://scraper:hunter2pass@10.0.0.1:8080 failed", "hunter2pass"),
    ("db postgres://app:pg-Secret-77@db:5432/x", "pg-Secret-77"),
    ("cache redis://:redisPw99@cache:6379/0", "redisPw99"),
    ("login password=s3cr3t-value ok", "s3cr3t-value"),
    ('body {"password": "json-pw-1"}', "json-pw-1"),
    ("api_key: tok-123456", "tok-123456"),
    ("client_secret=ghp_abcdefgh", "ghp_abcdefgh"),
]
SECRET_KEYS = {
    "password": "pw-nested-1",
    "apiKey": "ak-nested-2",
    "client_secret": "cs-nested-3",
    "Authorization": "Basic dXNlcjpwYXNz",
    "cookie": "sessionid=ck-nested-4",
    "private_key": "pk-nested-5",
    "X-API-Key": "xk-nested-6",
    "refresh_token": "rt-nested-7",
}
KEPT = [
    "order 4111111111111112 shipped",  # not Luhn-valid: an id, kept
    "took 1234 ms",
    "at 2026-09-21T14:13:00Z",
    "status 200 after 3 retries",
    "ip 10.0.0.1 port 8080",
    "item 9876543210123 listed",  # 13 digits, not Luhn-valid
]


def stored_text() -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT string_agg(message || ' ' || logger || ' ' || thread_id || ' ' "
            "|| context::text, E'\\n') FROM logs_logline"
        )
        return cursor.fetchone()[0] or ""


def corpus_records() -> list[dict]:
    records = []
    for i, (text, _leak) in enumerate(CORPUS):
        records.append(
            record(
                message=text,
                logger=f"scraper.{text}",
                context={
                    "note": text,
                    "nested": {"deeper": {"value": text, "list": [text, {"again": text}]}},
                    "credentials": dict(SECRET_KEYS),
                    "items": [{"token": f"tok-in-list-{i}"}],
                    text: "secret used as a key",
                },
            )
        )
    return records


def assert_nothing_leaked(text: str) -> None:
    leaks = [leak for _source, leak in CORPUS if leak in text]
    leaks += [v for v in SECRET_KEYS.values() if v in text]
    leaks += [f"tok-in-list-{i}" for i in range(len(CORPUS)) if f"tok-in-list-{i}" in text]
    assert not leaks, leaks
    assert REDACTED in text


def test_nothing_of_the_corpus_is_stored_from_the_api(scraper_api, clock):
    response = scraper_api.post("/api/v1/logs", {"records": corpus_records()})
    assert response.json()["stored"] == len(CORPUS)
    assert_nothing_leaked(stored_text())
    body = scraper_api.get("/api/v1/logs", limit=1000).json()
    assert len(body["items"]) == len(CORPUS)
    # What the lines say, without the ids, timestamps and the tail cursor (a snapshot of
    # transaction ids), whose digits can hold a short corpus number by chance.
    said = [{k: v for k, v in item.items() if k not in ("id", "ts")} for item in body["items"]]
    assert_nothing_leaked(json.dumps(said))


def test_nothing_of_the_corpus_is_stored_from_the_servers_own_lines(clock):
    handler = BufferedStoreHandler(log_lines_store_server, start_thread=False)
    logger = logging.getLogger("coreadmin.test.corpus")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        for text, _leak in CORPUS:
            logger.warning("server saw: %s", text)
        handler.drain()
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    assert_nothing_leaked(stored_text())


def test_ordinary_numbers_are_kept(scraper_api, clock):
    scraper_api.post("/api/v1/logs", {"records": [record(message=text) for text in KEPT]})
    text = stored_text()
    for kept in KEPT:
        assert kept in text


def test_extra_patterns_and_key_names_from_settings_apply_to_ingestion(scraper_api, clock):
    configure_default_redactor([r"ACCT-\d{6}"], ["ssn"])
    try:
        scraper_api.post(
            "/api/v1/logs",
            {
                "records": [
                    record(message="acct ACCT-123456", context={"user": {"SSN": "078-05-1120"}})
                ]
            },
        )
    finally:
        configure_default_redactor()
    text = stored_text()
    assert "ACCT-123456" not in text and "078-05-1120" not in text


def test_an_extra_pattern_also_applies_to_identifier_like_text():
    redactor = Redactor(extra_patterns=[r"internal_\w+"])
    assert redactor.text("internal_codename") == REDACTED
