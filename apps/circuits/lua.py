"""The one Lua script that reads and changes a circuit's state in Redis.

Every operation (acquire, record, force) is one EVALSHA of this script, so however many
callers race, each sees and makes transitions one at a time, and a transition happens
once. The caller passes the time (``now`` in ms, from the injectable clock) and the
circuit's configuration; the script never reads the Redis clock.

KEYS: 1 state hash, 2 sliding-window hash, 3 half-open probe zset, 4 per-minute stats
hash, 5 event outbox list (shared by all circuits).

A transition appends its event (JSON, with an id "<epoch>-<seq>" unique per circuit) to
the outbox and returns it; the caller writes it to Postgres (unique on circuit + id) and
removes it from the outbox; a periodic task writes whatever a crashed caller left.
"""

CIRCUIT_SCRIPT = r"""
local h, win, probes, stats, outbox = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local op = ARGV[1]
local now = tonumber(ARGV[2])
local fail_threshold = tonumber(ARGV[3])
local recovery = tonumber(ARGV[4])
local ho_max = tonumber(ARGV[5])
local succ_threshold = tonumber(ARGV[6])
local rate_threshold = tonumber(ARGV[7])
local slow_threshold = tonumber(ARGV[8])
local slow_ms = tonumber(ARGV[9])
local min_calls = tonumber(ARGV[10])
local nbuckets = tonumber(ARGV[11])
local bucket_ms = tonumber(ARGV[12])
local probe_timeout = tonumber(ARGV[13])
local ttl = tonumber(ARGV[14])
local initial = ARGV[15]
local name = ARGV[16]
local arg1 = ARGV[17]
local arg2 = ARGV[18]
local token = ARGV[19]

local cur = redis.call('HMGET', h, 'state', 'failures', 'successes', 'opened_at',
                      'changed_at', 'epoch')
local state = cur[1]
local failures = tonumber(cur[2]) or 0
local opened_at = tonumber(cur[4]) or 0
local changed_at = tonumber(cur[5]) or now
local epoch = cur[6]
local wrote = false
if not state then
  state = initial
  epoch = string.format('%.0f', now)
  if state == 'forced_open' then opened_at = now end
  redis.call('HSET', h, 'state', state, 'failures', 0, 'successes', 0, 'opened_at', opened_at,
             'changed_at', now, 'epoch', epoch, 'seq', 0)
  changed_at = now
  wrote = true
end

local events = {}

local function enter(to, reason)
  if state == to then return end
  wrote = true
  local seq = redis.call('HINCRBY', h, 'seq', 1)
  local id = epoch .. '-' .. seq
  local ev = cjson.encode({circuit = name, id = id, from_state = state, to_state = to,
                           reason = reason, at = string.format('%.0f', now)})
  state = to
  changed_at = now
  redis.call('HSET', h, 'state', to, 'changed_at', now, 'successes', 0)
  if to ~= 'open' then
    failures = 0
    redis.call('HSET', h, 'failures', 0)
  end
  redis.call('DEL', probes)
  if to == 'open' or to == 'forced_open' then
    opened_at = now
    redis.call('HSET', h, 'opened_at', now)
  end
  if to == 'closed' or to == 'forced_closed' then
    redis.call('DEL', win)
  end
  redis.call('RPUSH', outbox, ev)
  redis.call('PEXPIRE', outbox, 86400000)
  table.insert(events, ev)
end

local function stat(kind)
  -- per-minute counts, fields <kind><epoch minute>; the first count of a minute drops the
  -- fields of one to two hours before and refreshes the TTL (steady state: one HINCRBY)
  local minute = math.floor(now / 60000)
  if redis.call('HINCRBY', stats, kind .. minute, 1) == 1 then
    local old = {}
    for m = minute - 120, minute - 60 do old[#old + 1] = kind .. m end
    redis.call('HDEL', stats, unpack(old))
    redis.call('PEXPIRE', stats, 7200000)
  end
end

local function window_add(failed, slow)
  local stamp = math.floor(now / bucket_ms)
  local slot = stamp % nbuckets
  if tonumber(redis.call('HGET', win, 't' .. slot)) ~= stamp then
    redis.call('HSET', win, 't' .. slot, stamp, 'c' .. slot, 0, 'f' .. slot, 0, 's' .. slot, 0)
  end
  redis.call('HINCRBY', win, 'c' .. slot, 1)
  if failed then redis.call('HINCRBY', win, 'f' .. slot, 1) end
  if slow then redis.call('HINCRBY', win, 's' .. slot, 1) end
  redis.call('PEXPIRE', win, math.ceil(nbuckets * bucket_ms) + 60000)
end

local function window_totals()
  local fields = {}
  for i = 0, nbuckets - 1 do
    fields[#fields + 1] = 't' .. i
    fields[#fields + 1] = 'c' .. i
    fields[#fields + 1] = 'f' .. i
    fields[#fields + 1] = 's' .. i
  end
  local vals = redis.call('HMGET', win, unpack(fields))
  local oldest = math.floor(now / bucket_ms) - nbuckets
  local calls, fails, slows = 0, 0, 0
  for i = 0, nbuckets - 1 do
    local t = tonumber(vals[i * 4 + 1])
    if t and t > oldest then
      calls = calls + (tonumber(vals[i * 4 + 2]) or 0)
      fails = fails + (tonumber(vals[i * 4 + 3]) or 0)
      slows = slows + (tonumber(vals[i * 4 + 4]) or 0)
    end
  end
  return calls, fails, slows
end

local allowed = 0
local retry = 0

if op == 'acquire' then
  if state == 'closed' or state == 'forced_closed' then
    allowed = 1
  elseif state == 'forced_open' then
    retry = recovery
  else
    if state == 'open' then
      if now >= opened_at + recovery then
        enter('half_open', 'recovery timeout elapsed; admitting probes')
      else
        retry = opened_at + recovery - now
      end
    end
    if state == 'half_open' then
      redis.call('ZREMRANGEBYSCORE', probes, '-inf', now)
      if redis.call('ZCARD', probes) < ho_max then
        redis.call('ZADD', probes, now + probe_timeout, token)
        redis.call('PEXPIRE', probes, math.ceil(probe_timeout) + 1000)
        allowed = 1
      else
        local first = redis.call('ZRANGE', probes, 0, 0, 'WITHSCORES')
        retry = math.max(0, (tonumber(first[2]) or now) - now)
      end
    end
  end
  if allowed == 1 then stat('a') else stat('d') end
elseif op == 'record' then
  local failed = arg1 == 'failure'
  local slow = slow_threshold > 0 and tonumber(arg2) >= slow_ms
  if failed then stat('f') else stat('s') end
  if slow then stat('w') end
  if state == 'closed' then
    if rate_threshold > 0 or slow_threshold > 0 then window_add(failed, slow) end
    if failed then
      failures = redis.call('HINCRBY', h, 'failures', 1)
      wrote = true
      if fail_threshold > 0 and failures >= fail_threshold then
        enter('open', failures .. ' consecutive failures (threshold ' .. fail_threshold .. ')')
      end
    elseif failures > 0 then
      failures = 0
      redis.call('HSET', h, 'failures', 0)
      wrote = true
    end
    if state == 'closed' and (failed or slow) and (rate_threshold > 0 or slow_threshold > 0) then
      local calls, fails, slows = window_totals()
      if calls >= min_calls then
        if rate_threshold > 0 and fails * 100 >= rate_threshold * calls then
          enter('open', string.format(
            'failure rate %.1f%% of %d calls in the window (threshold %g%%)',
            fails * 100 / calls, calls, rate_threshold))
        elseif slow_threshold > 0 and slows * 100 >= slow_threshold * calls then
          enter('open', string.format(
            'slow-call rate %.1f%% of %d calls in the window (threshold %g%%)',
            slows * 100 / calls, calls, slow_threshold))
        end
      end
    end
  elseif state == 'half_open' then
    -- free this probe's slot (a caller that did not send its probe_id frees the oldest)
    if token ~= '' then
      redis.call('ZREM', probes, token)
    else
      redis.call('ZPOPMIN', probes)
    end
    if failed then
      enter('open', 'a probe failed in half_open')
    else
      local successes = redis.call('HINCRBY', h, 'successes', 1)
      if successes >= succ_threshold then
        enter('closed', successes .. ' successful probe(s) (threshold ' .. succ_threshold .. ')')
      end
    end
  end
elseif op == 'force' then
  if arg1 == 'closed' and state == 'closed' then
    redis.call('HSET', h, 'failures', 0, 'successes', 0)
    redis.call('DEL', win, probes)
    failures = 0
  else
    enter(arg1, arg2)
  end
end

-- The state's TTL is refreshed whenever it changes (an idle circuit's state expires
-- CIRCUIT_STATE_TTL_SECONDS after its last change and is rebuilt as the initial state).
if wrote or op ~= 'acquire' then redis.call('PEXPIRE', h, ttl) end
local result = {state, allowed, string.format('%.3f', retry), failures,
                string.format('%.0f', opened_at), string.format('%.0f', changed_at)}
for _, ev in ipairs(events) do result[#result + 1] = ev end
return result
"""
