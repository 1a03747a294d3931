"""GCRA in one Lua script: decide and update the bucket atomically, nothing else.

Times are integer microseconds passed in by the caller (the injectable clock), so the
arithmetic is exact in Lua's doubles (below 2**53) and never over-grants under any
concurrency: each decision reads and writes the bucket's theoretical arrival time (TAT)
inside one script. The hot path is one GET and (when granted) one SET PX on one key; the
dashboard counts are kept per process and flushed separately (apps/ratelimits/stats.py).

KEYS: 1 bucket (TAT, expires when the bucket is full again).
ARGV: now_us, emission interval T_us, burst, cost.
Returns integers {would_allow, retry_after_us, remaining, reset_after_us}.
"""

GCRA_SCRIPT = r"""
local now = tonumber(ARGV[1])
local t = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + t * tonumber(ARGV[4])
local tau = t * tonumber(ARGV[3])
local allow_at = new_tat - tau
if now >= allow_at then
  local reset = new_tat - now
  redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil(reset / 1000) + 1)
  return {1, 0, math.floor((now - allow_at) / t), reset}
end
return {0, allow_at - now, math.floor((tau - (tat - now)) / t), tat - now}
"""
