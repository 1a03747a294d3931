"""GCRA in one Lua script: decide and update the bucket atomically, nothing else.

Times are integer microseconds passed in by the caller (the injectable clock), so the
arithmetic is exact in Lua's doubles (below 2**53) and never over-grants under any
concurrency: each decision reads and writes the bucket's theoretical arrival time (TAT)
inside one script. The hot path is one GET and (when granted) one PSETEX on one key, and
the reply is one integer; the caller derives remaining / retry-after / reset from it
(``decision_from_reply``). Dashboard counts are kept per process and flushed separately
(apps/ratelimits/stats.py).

What the script does not do, because it costs Redis time on every decision (measured
with INFO commandstats, bench/bench_ratelimits.py): multiply (the caller passes
``T * cost`` and ``T * burst``), compute a TTL (the caller passes one constant per
policy: when a decision is granted, new TAT - now <= T * burst, so the bucket is full
again, and its key no longer needed, at most ``T * burst`` after the write), or format
the TAT (Redis writes a Lua number given to a command with 17 significant digits, exact
for integers below 2**53; only Lua's own tostring rounds to 14).

KEYS: 1 bucket (TAT, expires when the bucket is full again).
ARGV: now_us, increment_us (T * cost), tolerance_us (T * burst), ttl_ms (``gcra_args``).
Returns the new TAT (> 0) when granted, or minus the unchanged TAT (< 0) when denied.
"""

GCRA_SCRIPT = r"""
local now = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + tonumber(ARGV[2])
if now >= new_tat - tonumber(ARGV[3]) then
  redis.call('PSETEX', KEYS[1], ARGV[4], new_tat)
  return new_tat
end
return -tat
"""


def gcra_args(*, now: int, t: int, burst: int, cost: int) -> list[int]:
    """The script's ARGV for a decision at ``now`` (all integers, microseconds but the
    TTL in milliseconds, rounded up, plus one for the clock's granularity)."""
    tolerance = t * burst
    return [now, t * cost, tolerance, -(-tolerance // 1000) + 1]


def decision_from_reply(
    reply: int, *, now: int, t: int, burst: int, cost: int
) -> tuple[int, int, int, int]:
    """(would_allow, retry_after_us, remaining, reset_after_us) from the script's integer,
    the same arithmetic as the script (and as the in-process fallback bucket)."""
    if reply > 0:
        allow_at = reply - t * burst
        return 1, 0, (now - allow_at) // t, reply - now
    tat = -reply
    allow_at = tat + t * cost - t * burst
    return 0, allow_at - now, (t * burst - (tat - now)) // t, tat - now
