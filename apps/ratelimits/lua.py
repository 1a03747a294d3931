"""GCRA in one Lua script: decide and update the bucket atomically, nothing else.

Times are integer microseconds passed in by the caller (the injectable clock), so the
arithmetic is exact in Lua's doubles (below 2**53) and never over-grants under any
concurrency: each decision reads and writes the bucket's theoretical arrival time (TAT)
inside one script. The hot path is one GET and (when granted) one SET PX on one key, and
the reply is one integer; the caller derives remaining / retry-after / reset from it
(``decision_from_reply``). Dashboard counts are kept per process and flushed separately
(apps/ratelimits/stats.py).

KEYS: 1 bucket (TAT, expires when the bucket is full again).
ARGV: now_us, emission interval T_us, burst, cost.
Returns the new TAT (> 0) when granted, or minus the unchanged TAT (< 0) when denied.
"""

GCRA_SCRIPT = r"""
local now = tonumber(ARGV[1])
local t = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + t * tonumber(ARGV[4])
if now >= new_tat - t * tonumber(ARGV[3]) then
  local ttl_ms = math.ceil((new_tat - now) / 1000) + 1
  redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl_ms)
  return new_tat
end
return -tat
"""


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
