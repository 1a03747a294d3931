"""The redactor skips a pattern when the text cannot hold it (no "@", too few digits...).
Property: the result is exactly what running every pattern unconditionally gives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from coreadmin import redaction as r

PIECES = [
    "a@b.io",
    "jane.doe@example.com",
    "http://u:pw1@h:1",
    "redis://:pw2@h",
    "cak_ab12cd34_",
    "Zx9Yw8Vu7Ts6Rq5Po4Nm",
    "Bearer ",
    "token ",
    "basic ",
    "abcdefgh123",
    "password=",
    "api_key: ",
    "secret",
    "(555) 123-4567",
    "555-123-4567",
    "+44 20 7946 0958",
    "4111 1111 1111 1111",
    "4111111111111112",
    "0",
    "1",
    "9",
    " ",
    "-",
    ".",
    ":",
    "=",
    "@",
    "x",
    "KEY",
    "\n",
    "+",
    "(",
    ")",
    "+1 ",
    "(555)",
    "020 7946 0958",
    "555.123.4567",
    "12",
    "123",
    "4111",
]


def unfiltered(value: str) -> str:
    value = r._URL_PASSWORD.sub(r"\1:" + r.REDACTED + "@", value)
    value = r._EMAIL.sub(r.REDACTED, value)
    value = r._API_KEY.sub(r.REDACTED, value)
    value = r._BEARER.sub(lambda m: m.group(1) + " " + r.REDACTED, value)
    value = r._KEY_VALUE.sub(lambda m: m.group(1) + r.REDACTED, value)
    value = r._CARD.sub(r._card_replacement, value)
    return r._PHONE.sub(r.REDACTED, value)


@settings(max_examples=1500, deadline=None)
@given(st.lists(st.sampled_from(PIECES), max_size=20).map("".join))
def test_prefilters_never_change_the_result(text):
    assert r.Redactor().text(text) == unfiltered(text)
