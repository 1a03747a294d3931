"""The leasing index in Redis: which proxies of a service are usable, in what rotation
order, which are banned for which target, how many leases each holds, sticky sessions.

Postgres is the system of record; this index is rebuilt from it whenever the service's
``meta`` key is missing (first use, Redis restart, a day idle), and kept current by
``pool_sync_proxy`` when a proxy changes status. One lease is one Lua script: it examines
at most PROXY_LEASE_MAX_PROBES candidates, so its cost does not grow with the pool.

Keys (all under REDIS_KEY_PREFIX, all with a TTL that every lease refreshes):

- ``px:q:<svc>``        ZSET usable proxy id -> rotation score (round robin sequence, or
                        last-lease time in ms for lru / weighted)
- ``px:seq:<svc>``      round-robin sequence counter
- ``px:w:<svc>``        HASH proxy id -> health score (weights for ``weighted``)
- ``px:info:<svc>``     HASH proxy id -> JSON connection info (password still encrypted)
- ``px:meta:<svc>``     HASH total -> pool size (usable share for the slow-down hint)
- ``px:ban:<svc>:<t>``  ZSET proxy id -> banned-until ms, per target
- ``px:act:<id>``       ZSET lease id -> lease expiry ms (the concurrent-lease cap)
- ``px:sess:<svc>:<s>`` proxy id of a sticky session
- ``px:lease:<id>``     the lease record (JSON) until a minute after it expires
- ``px:reported:<id>``  set by the first report of a lease (a second one is 409)
- ``px:journal``        LIST of lease records waiting for the batch writer to Postgres
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import orjson
import redis
from django.conf import settings

from apps.proxies.models import Proxy, ProxyBan
from coreadmin.clock import clock
from coreadmin.redis import LuaScript, connection, key

POOL_TTL_SECONDS = 24 * 3600
# A lease's record stays in Redis this long after it expires; a later report finds the row
# the batch writer stored (every 5 s). Short, because there is one record per lease.
RECORD_GRACE_SECONDS = 60
# A report marker (second report -> 409) lives this long; after that the stored row's
# outcome catches a repeated report.
REPORTED_MARKER_SECONDS = 600
# At most this many lease records wait for the batch writer (oldest dropped first).
JOURNAL_MAX = 200_000
# The lease that makes the journal this long writes it itself, so rows reach Postgres
# even when no beat runs flush_leases.
JOURNAL_FLUSH_EVERY = 1000

_LEASE = LuaScript(
    """
local q, w, info, meta = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local ban, sess, seq = KEYS[5], KEYS[6], KEYS[7]
local now = tonumber(ARGV[1])
local strategy = ARGV[2]
local cap = tonumber(ARGV[3])
local lease_id = ARGV[4]
local lease_until = tonumber(ARGV[5])
local probes = tonumber(ARGV[6])
local seed = tonumber(ARGV[7])
local sticky_ttl = tonumber(ARGV[8])
local pool_ttl = tonumber(ARGV[9])
local act_prefix = ARGV[10]
local min_fraction = tonumber(ARGV[11])
local slow_max = tonumber(ARGV[12])
local act_ttl = tonumber(ARGV[13])
local record_key, journal = ARGV[14], ARGV[15]
local record_ttl = tonumber(ARGV[16])
local journal_max = tonumber(ARGV[17])

if redis.call('EXISTS', meta) == 0 then return {-1} end
for _, k in ipairs({q, w, info, meta}) do redis.call('EXPIRE', k, pool_ttl) end

local function rand()
  seed = (16807 * seed) % 2147483647
  return seed / 2147483647
end

local cap_frees = nil  -- earliest moment a capped candidate gets a slot back
local function eligible(id)
  local until_ms = redis.call('ZSCORE', ban, id)
  if until_ms and tonumber(until_ms) > now then return false end
  if cap > 0 then
    local act = act_prefix .. id
    redis.call('ZREMRANGEBYSCORE', act, '-inf', now)
    if redis.call('ZCARD', act) >= cap then
      local first = redis.call('ZRANGE', act, 0, 0, 'WITHSCORES')
      local frees = tonumber(first[2])
      if frees and (not cap_frees or frees < cap_frees) then cap_frees = frees end
      return false
    end
  end
  return true
end

local chosen = nil
if sess ~= '' then
  local sid = redis.call('GET', sess)
  if sid and redis.call('ZSCORE', q, sid) and eligible(sid) then chosen = sid end
end

if not chosen then
  if strategy == 'weighted' then
    local fallback = nil
    for _ = 1, probes do
      local c = redis.call('ZRANDMEMBER', q)
      if not c then break end
      if eligible(c) then
        local weight = tonumber(redis.call('HGET', w, c) or '1') or 1
        if weight < 0.05 then weight = 0.05 end
        if rand() < weight then chosen = c break end
        if not fallback then fallback = c end
      end
    end
    chosen = chosen or fallback
  else
    for _, c in ipairs(redis.call('ZRANGE', q, 0, probes - 1)) do
      if eligible(c) then chosen = c break end
    end
    if not chosen and redis.call('ZCARD', q) > probes then
      for _, c in ipairs(redis.call('ZRANDMEMBER', q, probes)) do
        if eligible(c) then chosen = c break end
      end
    end
  end
end

local total = tonumber(redis.call('HGET', meta, 'total') or '0') or 0
local slow = 0
if total > 0 and min_fraction > 0 then
  local usable = redis.call('ZCARD', q) - redis.call('ZCOUNT', ban, '(' .. now, '+inf')
  local share = usable / total
  if share < min_fraction then
    if share < 0 then share = 0 end
    slow = slow_max * (1 - share / min_fraction)
  end
end

if not chosen then
  local first = redis.call('ZRANGEBYSCORE', ban, '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  local retry = -1
  if first[2] then retry = tonumber(first[2]) - now end
  if cap_frees and (retry < 0 or cap_frees - now < retry) then retry = cap_frees - now end
  return {0, tostring(retry), tostring(slow)}
end

if strategy == 'round_robin' then
  redis.call('ZADD', q, redis.call('INCR', seq), chosen)
  redis.call('EXPIRE', seq, pool_ttl)
else
  redis.call('ZADD', q, now, chosen)
end
local act = act_prefix .. chosen
redis.call('ZREMRANGEBYSCORE', act, '-inf', now)  -- expired leases go, cap or not
redis.call('ZADD', act, lease_until, lease_id)
redis.call('EXPIRE', act, act_ttl)
if sess ~= '' then redis.call('SET', sess, chosen, 'EX', sticky_ttl) end
-- The lease record: read by its report, and journalled for the batch writer to Postgres.
local record = cjson.encode({
  id = lease_id, key = ARGV[18], proxy = tonumber(chosen), service = ARGV[19],
  target = ARGV[20], session = ARGV[21], at = now, until_ms = lease_until
})
redis.call('SET', record_key, record, 'EX', record_ttl)
local journal_len = redis.call('RPUSH', journal, record)
redis.call('LTRIM', journal, -journal_max, -1)
redis.call('EXPIRE', journal, pool_ttl)
return {tonumber(chosen), redis.call('HGET', info, chosen), tostring(slow), journal_len}
"""
)

_SYNC = LuaScript(
    """
local q, w, info, meta = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
if redis.call('EXISTS', meta) == 0 then return 0 end
local id, usable, weight, payload, total, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if usable == '1' then
  redis.call('ZADD', q, 'NX', 0, id)
else
  redis.call('ZREM', q, id)
end
redis.call('HSET', w, id, weight)
redis.call('HSET', info, id, payload)
redis.call('HSET', meta, 'total', total)
for _, k in ipairs({q, w, info, meta}) do redis.call('EXPIRE', k, ttl) end
return 1
"""
)


def _keys(service: str) -> dict[str, str]:
    return {
        "q": key("px", "q", service),
        "w": key("px", "w", service),
        "info": key("px", "info", service),
        "meta": key("px", "meta", service),
        "seq": key("px", "seq", service),
    }


def ban_key(service: str, target: str) -> str:
    return key("px", "ban", service, target)


def active_key(proxy_id: int) -> str:
    return key("px", "act", proxy_id)


def _info(proxy: Proxy) -> bytes:
    return orjson.dumps(
        {
            "scheme": proxy.scheme,
            "host": proxy.host,
            "port": proxy.port,
            "username": proxy.username,
            "password": proxy.password_encrypted,
        }
    )


def pool_rebuild(*, service: str, force: bool = True) -> int:
    """Rebuilds the service's index from Postgres in one MULTI; returns the pool size.

    With ``force=False`` (what a lease does when it finds no index) it builds only if the
    index is still missing, and gives way when another process built it meanwhile (WATCH),
    so a crowd of first leases does not rebuild it over and over and reset the rotation.
    """
    k = _keys(service)
    with connection().pipeline(transaction=True) as pipe:
        pipe.watch(k["meta"])
        if not force and pipe.exists(k["meta"]):
            return -1
        proxies = list(
            Proxy.objects.filter(service=service).only(
                "id",
                "scheme",
                "host",
                "port",
                "username",
                "password_encrypted",
                "status",
                "health_score",
            )
        )
        bans = ProxyBan.objects.filter(
            proxy__service=service, banned_until__gt=clock.now()
        ).values_list("proxy_id", "target", "banned_until")
        pipe.multi()
        pipe.delete(k["q"], k["w"], k["info"], k["seq"])
        usable = {str(p.id): 0 for p in proxies if p.status == Proxy.Status.ACTIVE}
        if usable:
            pipe.zadd(k["q"], usable)
        if proxies:
            pipe.hset(k["w"], mapping={str(p.id): p.health_score for p in proxies})
            pipe.hset(k["info"], mapping={str(p.id): _info(p) for p in proxies})
        ban_ttl = settings.PROXY_BAN_MAX_SECONDS + 60
        for proxy_id, target, until in bans:
            pipe.zadd(ban_key(service, target), {str(proxy_id): int(until.timestamp() * 1000)})
            pipe.expire(ban_key(service, target), ban_ttl)
        pipe.hset(k["meta"], mapping={"total": len(proxies)})
        for name in ("q", "w", "info", "meta"):
            pipe.expire(k[name], POOL_TTL_SECONDS)
        try:
            pipe.execute()
        except redis.WatchError:
            return -1  # another process built it first
    return len(proxies)


def pool_sync_proxy(*, proxy: Proxy) -> None:
    """Puts one proxy's current status, weight and connection info into the index (a no-op
    when the index does not exist yet: the next lease builds it from Postgres)."""
    k = _keys(proxy.service)
    total = Proxy.objects.filter(service=proxy.service).count()
    _SYNC(
        [k["q"], k["w"], k["info"], k["meta"]],
        [
            proxy.id,
            "1" if proxy.status == Proxy.Status.ACTIVE else "0",
            proxy.health_score,
            _info(proxy),
            total,
            POOL_TTL_SECONDS,
        ],
    )


def pool_forget(*, service: str) -> None:
    """Drops the service's index so the next lease rebuilds it (bulk changes, deletes)."""
    connection().delete(key("px", "meta", service))


def pool_set_weight(*, service: str, proxy_id: int, weight: float) -> None:
    k = _keys(service)
    pipe = connection().pipeline(transaction=False)
    pipe.hset(k["w"], str(proxy_id), str(weight))
    pipe.expire(k["w"], POOL_TTL_SECONDS)
    pipe.execute()


def pool_ban(*, service: str, target: str, proxy_id: int, until_ms: int) -> None:
    name = ban_key(service, target)
    pipe = connection().pipeline(transaction=False)
    pipe.zadd(name, {str(proxy_id): until_ms})
    pipe.expire(name, settings.PROXY_BAN_MAX_SECONDS + 60)
    pipe.execute()


def lease_key(lease_id: str) -> str:
    return key("px", "lease", lease_id)


def journal_key() -> str:
    return key("px", "journal")


def lease_record(lease_id: str) -> dict[str, Any] | None:
    """The lease as recorded by the lease script (None once it is gone from Redis)."""
    raw: Any = connection().get(lease_key(lease_id))
    return orjson.loads(raw) if raw else None


def lease_mark_reported(lease_id: str) -> bool:
    """True the first time only: a lease is reported once."""
    name = key("px", "reported", lease_id)
    return bool(connection().set(name, 1, nx=True, ex=REPORTED_MARKER_SECONDS))


def journal_take(limit: int = 5000) -> list[dict[str, Any]]:
    """Removes and returns up to ``limit`` journalled lease records, oldest first."""
    raw: Any = connection().lpop(journal_key(), limit) or []
    return [orjson.loads(item) for item in raw]


def pool_unban(*, service: str, target: str, proxy_id: int) -> None:
    connection().zrem(ban_key(service, target), str(proxy_id))


def pool_release(*, proxy_id: int, lease_id: str, journal: dict[str, Any] | None = None) -> None:
    """Frees the lease's slot under the cap; journals its reported record, if given."""
    pipe = connection().pipeline(transaction=False)
    pipe.zrem(active_key(proxy_id), lease_id)
    if journal is not None:
        pipe.rpush(journal_key(), orjson.dumps(journal))
        pipe.expire(journal_key(), POOL_TTL_SECONDS)
    pipe.execute()


def active_lease_counts(proxy_ids: list[int]) -> dict[int, int]:
    """Unexpired leases per proxy (one round trip)."""
    now = clock.ms()
    pipe = connection().pipeline(transaction=False)
    for proxy_id in proxy_ids:
        pipe.zcount(active_key(proxy_id), f"({now}", "+inf")
    return dict(zip(proxy_ids, pipe.execute(), strict=True))


@dataclass(frozen=True)
class Pick:
    proxy_id: int
    info: dict[str, Any]
    slow_down_ms: float
    journal_length: int = 0  # lease records waiting for the batch writer, this one included


@dataclass(frozen=True)
class NoPick:
    # until the first ban for this target ends or a capped proxy's first lease expires
    retry_after_ms: float | None
    slow_down_ms: float


def pool_pick(
    *,
    service: str,
    target: str,
    session: str,
    strategy: str,
    cap: int,
    lease_id: str,
    lease_seconds: int,
    min_usable_fraction: float,
    key_id: int,
) -> Pick | NoPick:
    """Atomically chooses a proxy and records the lease against its cap."""
    k = _keys(service)
    now = clock.ms()
    keys = [
        k["q"],
        k["w"],
        k["info"],
        k["meta"],
        ban_key(service, target),
        key("px", "sess", service, session) if session else "",
        k["seq"],
    ]
    args = [
        now,
        strategy,
        cap,
        lease_id,
        now + lease_seconds * 1000,
        settings.PROXY_LEASE_MAX_PROBES,
        random.randint(1, 2_147_483_646),
        settings.PROXY_STICKY_SECONDS,
        POOL_TTL_SECONDS,
        key("px", "act", ""),
        min_usable_fraction,
        settings.PROXY_SLOW_DOWN_MAX_MS,
        lease_seconds + 60,
        lease_key(lease_id),
        journal_key(),
        lease_seconds + RECORD_GRACE_SECONDS,
        JOURNAL_MAX,
        str(key_id),
        service,
        target,
        session,
    ]
    result = _LEASE(keys, args, client=connection())
    if result[0] == -1:
        pool_rebuild(service=service, force=False)
        result = _LEASE(keys, args, client=connection())
    if result[0] == 0:
        retry = float(result[1])
        return NoPick(retry if retry >= 0 else None, float(result[2]))
    return Pick(int(result[0]), orjson.loads(result[1]), float(result[2]), int(result[3]))
