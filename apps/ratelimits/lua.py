"""GCRA in one Lua script: decide, update the bucket and count, atomically.

Times are integer microseconds passed in by the caller (the injectable clock), so the
arithmetic is exact in Lua's doubles (below 2**53) and never over-grants under any
concurrency: each decision reads and writes the bucket's theoretical arrival time (TAT)
inside one script.

KEYS: 1 bucket (TAT, expires when the bucket is full again), 2 the policy's per-minute
stats hash, 3 this hour's "denied" (or "shadow") sorted set of callers.
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
local minute = math.floor(now / 60000000)
local slot = minute % 60
if tonumber(redis.call('HGET', KEYS[2], 'm' .. slot)) ~= minute then
  redis.call('HSET', KEYS[2], 'm' .. slot, minute, 'g' .. slot, 0, 'd' .. slot, 0, 's' .. slot, 0)
end
local kind = 'g'
if would == 0 then
  if shadow then kind = 's' else kind = 'd' end
  redis.call('ZINCRBY', KEYS[3], 1, ARGV[6])
  redis.call('EXPIRE', KEYS[3], 90000)
end
redis.call('HINCRBY', KEYS[2], kind .. slot, 1)
redis.call('EXPIRE', KEYS[2], 7200)
local allowed = would
if shadow then allowed = 1 end
return {allowed, would, string.format('%.0f', retry), remaining, string.format('%.0f', reset)}
"""
