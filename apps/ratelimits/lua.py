"""GCRA in one Lua script: decide, update the bucket and count, atomically.

Times are integer microseconds passed in by the caller (the injectable clock), so the
arithmetic is exact in Lua's doubles (below 2**53) and never over-grants under any
concurrency: each decision reads and writes the bucket's theoretical arrival time (TAT)
inside one script.

KEYS: 1 bucket (TAT, expires when the bucket is full again), 2 the policy's per-minute
counts hash, 3 this hour's "denied" (or "shadow") sorted set of callers.
ARGV: now_us, emission interval T_us, burst, cost, shadow (1/0), caller name.
Returns {allowed, would_allow, retry_after_us, remaining, reset_after_us}.
"""

GCRA_SCRIPT = r"""
local now = tonumber(ARGV[1])
local t = tonumber(ARGV[2])
local burst = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local shadow = ARGV[5] == '1'
local tau = t * burst
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + t * cost
local allow_at = new_tat - tau
local would, retry, remaining, reset
if now >= allow_at then
  would = 1
  retry = 0
  remaining = math.floor((now - allow_at) / t)
  reset = new_tat - now
  redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil(reset / 1000) + 1)
else
  would = 0
  retry = allow_at - now
  remaining = math.floor((tau - (tat - now)) / t)
  reset = tat - now
end
-- Per-minute counts for the dashboard: fields g<minute>, d<minute>, s<minute>. The first
-- count of a minute drops the fields of one to two hours before and refreshes the TTL, so
-- the hash holds about the last hour and steady state costs one HINCRBY.
local minute = math.floor(now / 60000000)
local kind = 'g'
if would == 0 then
  if shadow then kind = 's' else kind = 'd' end
  if redis.call('ZINCRBY', KEYS[3], 1, ARGV[6]) == '1' then
    redis.call('EXPIRE', KEYS[3], 90000)
  end
end
if redis.call('HINCRBY', KEYS[2], kind .. minute, 1) == 1 then
  local old = {}
  for m = minute - 120, minute - 60 do old[#old + 1] = kind .. m end
  redis.call('HDEL', KEYS[2], unpack(old))
  redis.call('EXPIRE', KEYS[2], 7200)
end
local allowed = would
if shadow then allowed = 1 end
return {allowed, would, string.format('%.0f', retry), remaining, string.format('%.0f', reset)}
"""
