"""Per-process decision counts, flushed to Redis in one pipeline about every second.

The GCRA script only decides; what the dashboard shows (granted / denied / would-deny per
minute, and who was limited per hour) is counted here and written by ``flush()``, which
runs inline when RATELIMIT_STATS_FLUSH_S has passed since the last one (on the next
decision) and from a daemon thread for idle processes. The Redis layout is unchanged:
hash ``rl:<policy>:stats`` (fields g/d/s<minute>, about the last hour, TTL 2 h) and sorted
sets ``rl:<policy>:denied|shadow:<hour>`` of callers (TTL 25 h).

A failed flush keeps the counts and retries at the next one; only when more than
RATELIMIT_STATS_MAX_PENDING distinct counters are pending are new ones dropped, counted in
``coreadmin_ratelimit_stats_dropped_total``.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections import Counter

from django.conf import settings

from coreadmin.failopen import REDIS_ERRORS
from coreadmin.metrics import RATELIMIT_STATS_DROPPED
from coreadmin.redis import connection
from coreadmin.redis import key as redis_key

_lock = threading.Lock()
_flush_lock = threading.Lock()
# (policy, "g"|"d"|"s", minute) -> count; (policy, "denied"|"shadow", hour, caller) -> count
_minutes: Counter[tuple[str, str, int]] = Counter()
_callers: Counter[tuple[str, str, int, str]] = Counter()
_last_flush = 0.0
_cleaned: dict[tuple[str, str], int] = {}  # (policy, kind) -> minute of the last HDEL
_thread: threading.Thread | None = None
# Tests turn the daemon flusher off and call flush() themselves.
BACKGROUND = True


def record(*, policy: str, shadow: bool, would_allow: bool, caller: str, now_us: int) -> None:
    """Counts one decision; flushes when the last flush is RATELIMIT_STATS_FLUSH_S old."""
    global _last_flush
    kind = "g" if would_allow else ("s" if shadow else "d")
    minute_key = (policy, kind, now_us // 60_000_000)
    caller_key = None
    if not would_allow:
        caller_key = (policy, "shadow" if shadow else "denied", now_us // 3_600_000_000, caller)
    limit = settings.RATELIMIT_STATS_MAX_PENDING
    with _lock:
        for counter, counted in ((_minutes, minute_key), (_callers, caller_key)):
            if counted is None:
                continue
            if counted in counter or len(_minutes) + len(_callers) < limit:
                counter[counted] += 1  # type: ignore[index]
            else:
                RATELIMIT_STATS_DROPPED.inc()
        due = time.monotonic() - _last_flush >= settings.RATELIMIT_STATS_FLUSH_S
    _ensure_thread()
    if due:
        flush()


def pending() -> int:
    with _lock:
        return sum(_minutes.values()) + sum(_callers.values())


def flush() -> bool:
    """Writes the pending counts in one pipeline. False (counts kept) if Redis failed."""
    global _last_flush
    with _flush_lock:
        with _lock:
            _last_flush = time.monotonic()
            minutes, callers = _minutes.copy(), _callers.copy()
            _minutes.clear()
            _callers.clear()
        if not minutes and not callers:
            return True
        cleanups = []
        try:
            pipe = connection().pipeline(transaction=False)
            for (policy, kind, minute), n in minutes.items():
                stats = redis_key("rl", policy, "stats")
                pipe.hincrby(stats, f"{kind}{minute}", n)
                # Every time: the hash may be new (expired, Redis restarted or flushed) even
                # when this process already cleaned it this minute.
                pipe.expire(stats, 7200)
                if _cleaned.get((policy, kind)) != minute:
                    # Fields of one to two hours ago go; the hash holds about the last hour.
                    pipe.hdel(stats, *(f"{kind}{m}" for m in range(minute - 120, minute - 59)))
                    cleanups.append(((policy, kind), minute))
            for (policy, kind, hour, caller), n in callers.items():
                ranking = redis_key("rl", policy, kind, hour)
                pipe.zincrby(ranking, n, caller)
                pipe.expire(ranking, 90000)
            pipe.execute()
        except REDIS_ERRORS:
            _restore(minutes, callers)
            return False
        _cleaned.update(cleanups)
        return True


def _restore(
    minutes: Counter[tuple[str, str, int]], callers: Counter[tuple[str, str, int, str]]
) -> None:
    """Puts unflushed counts back, dropping (and counting) what exceeds the bound."""
    limit = settings.RATELIMIT_STATS_MAX_PENDING
    with _lock:
        for source, target in ((minutes, _minutes), (callers, _callers)):
            for counted, n in source.items():
                if counted in target or len(_minutes) + len(_callers) < limit:
                    target[counted] += n  # type: ignore[index]
                else:
                    RATELIMIT_STATS_DROPPED.inc(n)


def reset() -> None:
    """Forgets pending counts (tests)."""
    global _last_flush
    with _flush_lock, _lock:
        _minutes.clear()
        _callers.clear()
        _cleaned.clear()
        _last_flush = time.monotonic()


def _loop() -> None:
    while True:
        threading.Event().wait(max(0.05, settings.RATELIMIT_STATS_FLUSH_S))
        try:
            flush()
        except Exception:
            continue


def _ensure_thread() -> None:
    global _thread
    if not BACKGROUND:
        return
    if _thread is None or not _thread.is_alive():
        with _lock:
            if _thread is None or not _thread.is_alive():
                _thread = threading.Thread(target=_loop, name="ratelimit-stats", daemon=True)
                _thread.start()


atexit.register(flush)
