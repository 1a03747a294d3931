"""Redaction of personal data and secrets, for every log line we emit or ingest.

Written here rather than taken from a library: the patterns are ours (our API key
format, Luhn-checked card numbers so order ids survive) and the function runs on every
log line, so it is one pass of precompiled regexes with no per-call allocation of
patterns.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[REDACTED]"

SECRET_KEY_NAME = re.compile(
    r"(?i)(pass(word|wd|phrase)?|secret|token|api[_-]?key|apikey|authorization|auth[_-]?header"
    r"|cookie|session[_-]?id|private[_-]?key|credential|client[_-]?secret|x-api-key)"
)

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})+")
_API_KEY = re.compile(r"\bcak_[a-z0-9]{8}_[A-Za-z0-9]{8,}\b")
_BEARER = re.compile(r"(?i)\b(bearer|token|basic)\s+[A-Za-z0-9\-._~+/]{8,}=*")
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]*):([^\s@/]+)@")
_KEY_VALUE = re.compile(
    r"(?i)\b((?:pass(?:word|wd)?|secret|token|api[_-]?key|apikey|authorization|client[_-]?secret)"
    r"[\"']?\s*[:=]\s*)(\"[^\"]*\"|'[^']*'|[^\s,;&]+)"
)
# 13 to 19 digits, optionally grouped by spaces or dashes; redacted only if Luhn-valid.
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
# What every card number and phone number above lies in: five or more characters of
# digits and separators, starting with a digit, "+" or "(" and ending with a digit. A
# log line full of short numbers ("in 88 ms status 200") holds none; one search for it
# costs less than counting the digits and running _PHONE.
_NUMBER_RUN = re.compile(r"[\d+(][\d +().-]{3,}\d")
# What any card match lies in: 13 or more characters of digits, spaces and dashes.
_CARD_RUN = re.compile(r"\d[\d -]{11,}\d")
# Phone numbers: international (+CC ...), North American (555) 123-4567 / 555-123-4567 /
# 555.123.4567, and grouped European forms. Requires separators or a leading + so that
# plain ids and timestamps are kept.
_PHONE = re.compile(
    r"(?<![\w+])(?:"
    r"\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}"
    r"|\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}"
    r"|\d{3}[.-]\d{3}[.-]\d{4}"
    r"|0\d{1,4}[ ]\d{3,4}[ ]\d{3,4}"
    r")(?!\w)"
)


def _luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = ord(char) - 48
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _card_replacement(match: re.Match[str]) -> str:
    digits = re.sub(r"[ -]", "", match.group(0))
    if 13 <= len(digits) <= 19 and _luhn_valid(digits):
        return REDACTED
    return match.group(0)


class Redactor:
    """Holds the built-in patterns plus configurable extra ones."""

    def __init__(
        self, extra_patterns: Iterable[str] = (), extra_key_names: Iterable[str] = ()
    ) -> None:
        self.extra_patterns = [re.compile(p) for p in extra_patterns]
        names = [re.escape(n) for n in extra_key_names if n]
        self.extra_key_names = re.compile("(?i)(" + "|".join(names) + ")") if names else None
        self._secret_keys: dict[str, bool] = {}

    def is_secret_key(self, key: str) -> bool:
        known = self._secret_keys.get(key)
        if known is not None:
            return known
        secret = bool(
            SECRET_KEY_NAME.search(key)
            or (self.extra_key_names and self.extra_key_names.search(key))
        )
        if len(self._secret_keys) >= 10_000:  # bounded: context keys are mostly a few names
            self._secret_keys.clear()
        self._secret_keys[key] = secret
        return secret

    def text(self, value: str) -> str:
        """Each pattern runs only if the text holds what it needs (``@`` for an email,
        ``://`` for a URL, enough digits for a card...): those checks are plain substring
        searches in C, so a line that holds nothing sensitive costs a few of them."""
        if not value:
            return value
        # Identifiers (most keys, logger names, levels) cannot match a built-in pattern
        # unless they hold one of our API keys: skip the regexes for them.
        if not self.extra_patterns and value.isidentifier() and "cak_" not in value:
            return value
        if "@" in value:
            if "://" in value:
                value = _URL_PASSWORD.sub(r"\1:" + REDACTED + "@", value)
            value = _EMAIL.sub(REDACTED, value)
        if "cak_" in value:
            value = _API_KEY.sub(REDACTED, value)
        lower = value.lower()
        if "bearer" in lower or "token" in lower or "basic" in lower:
            value = _BEARER.sub(lambda m: m.group(1) + " " + REDACTED, value)
        if ("=" in value or ":" in value) and (
            "pass" in lower
            or "secret" in lower
            or "token" in lower
            or "key" in lower
            or "authorization" in lower
        ):
            value = _KEY_VALUE.sub(lambda m: m.group(1) + REDACTED, value)
        if _NUMBER_RUN.search(value):
            if _CARD_RUN.search(value):
                value = _CARD.sub(_card_replacement, value)
            value = _PHONE.sub(REDACTED, value)
        for pattern in self.extra_patterns:
            value = pattern.sub(REDACTED, value)
        return value

    def value(self, value: Any, key: str | None = None) -> Any:
        if key is not None and self.is_secret_key(key) and value not in (None, "", [], {}):
            return REDACTED
        # Exact types first: what JSON decodes to, without the ABC checks of isinstance
        # against Mapping (half the cost of redacting a small context).
        kind = type(value)
        if kind is str:
            return self.text(value)
        if kind is dict:
            return self._mapping(value)
        if kind in _SCALARS:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, Mapping):
            return self._mapping(value)
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value

    def _mapping(self, value: Mapping[Any, Any]) -> dict[str, Any]:
        # Keys are redacted too: an email used as a key must not survive either.
        out = {}
        for k, v in value.items():
            name = k if type(k) is str else str(k)
            out[self.text(name)] = self.value(v, name)
        return out


_SCALARS = frozenset({int, float, bool, type(None)})


default_redactor = Redactor()


def configure_default_redactor(
    extra_patterns: Iterable[str] = (), extra_key_names: Iterable[str] = ()
) -> Redactor:
    """Replaces the redactor every log line goes through (settings call this with
    LOGS_REDACT_EXTRA_PATTERNS and LOGS_REDACT_EXTRA_KEYS)."""
    global default_redactor
    default_redactor = Redactor(extra_patterns, extra_key_names)
    return default_redactor


def redact_text(value: str) -> str:
    return default_redactor.text(value)


def redact(value: Any, key: str | None = None) -> Any:
    return default_redactor.value(value, key)


def redact_event_dict(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: redacts the event text and every field, nested ones too."""
    return {k: (redact(v, k) if k != "event" else redact(v)) for k, v in event_dict.items()}
