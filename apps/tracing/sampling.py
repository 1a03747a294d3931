"""Deterministic sampling by thread_id, identical in the server and in coreadmin_client.

A thread is sampled iff the first 8 bytes of sha256(thread_id as UTF-8), read as a
big-endian unsigned integer, are below floor(rate * 2**64). Every span of one thread
therefore gets the same answer, in every process and in the client, and a thread
sampled at rate r stays sampled at any higher rate.
"""

from __future__ import annotations

import hashlib
import math
import time
from typing import Any

from django.core.signals import setting_changed


def thread_hash(thread_id: str) -> int:
    return int.from_bytes(hashlib.sha256(thread_id.encode("utf-8")).digest()[:8], "big")


def threshold(rate: float) -> int:
    rate = min(max(rate, 0.0), 1.0)
    return math.floor(rate * 2**64)


def is_sampled(thread_id: str, rate: float) -> bool:
    return thread_hash(thread_id) < threshold(rate)


def sample_rate_for(service: str) -> float:
    """The span sample rate of a service: its fleet configuration's ``span_sample_rate``
    (edited in the admin, advertised to scrapers with every heartbeat), or
    FLEET_DEFAULT_SPAN_SAMPLE_RATE when the service has no configuration row. The server's
    own spans are those of the service ``coreadmin``."""
    from apps.fleet.selectors import service_config

    return service_config(service).span_sample_rate


# sample_rate_for may read the fleet's per-service config (a query): callers on hot paths
# (every span batch, every request of the self-tracing middleware) read it through this
# per-process memo, so a changed rate applies within RATE_MEMO_SECONDS.
RATE_MEMO_SECONDS = 5.0
_memo: dict[str, tuple[float, float]] = {}


def sample_rate(service: str) -> float:
    now = time.monotonic()
    hit = _memo.get(service)
    if hit is not None and hit[0] > now:
        return hit[1]
    rate = sample_rate_for(service)
    if len(_memo) > 10_000:
        _memo.clear()
    _memo[service] = (now + RATE_MEMO_SECONDS, rate)
    return rate


def _forget_rates(**kwargs: Any) -> None:
    _memo.clear()


setting_changed.connect(_forget_rates)
