"""Secrets at rest: Fernet with key rotation (MultiFernet). The first key of
ENCRYPTION_KEYS encrypts; every key decrypts, so a key can be retired after
`manage.py rotate_encryption_keys` has re-encrypted everything under the first."""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, MultiFernet
from django.conf import settings


@lru_cache(maxsize=8)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k) for k in keys])


def _keys(keys: list[str] | None) -> tuple[str, ...]:
    return tuple(keys if keys is not None else settings.ENCRYPTION_KEYS)


def encrypt(plaintext: str, *, keys: list[str] | None = None) -> str:
    return _fernet(_keys(keys)).encrypt(plaintext.encode()).decode()


def decrypt(token: str, *, keys: list[str] | None = None) -> str:
    return _fernet(_keys(keys)).decrypt(token.encode()).decode()


def reencrypt(token: str, *, keys: list[str] | None = None) -> str:
    """Returns the token encrypted under the first key (unchanged plaintext)."""
    return _fernet(_keys(keys)).rotate(token.encode()).decode()
