-- Publishes that a circuit breaker is open for the fleet until UNTIL (Unix ms), never shortening
-- a later open_until another process published (GT semantics, atomically). The value is
-- "UNTIL:OPEN_FOR" (both ms); the key expires by itself after TTL ms, which outlasts UNTIL by
-- the half-open hold, so a crashed fleet forgets it. A lease holder's token also frees the
-- probe lease, whatever was kept.
-- KEYS[1] the open key, KEYS[2] the probe lease key (same hash tag).
-- ARGV[1] until (Unix ms), ARGV[2] open for (ms), ARGV[3] TTL (ms, over 0), ARGV[4] the lease
-- token of the caller, or '' when it holds no lease.
-- Returns {until, open_for} as now stored.
local stored_until, stored_open_for
local current = redis.call('GET', KEYS[1])
if current then
  local u, o = string.match(current, '^(%-?%d+):(%d+)$')
  stored_until, stored_open_for = tonumber(u), tonumber(o)
end
if ARGV[4] ~= '' and redis.call('GET', KEYS[2]) == ARGV[4] then
  redis.call('DEL', KEYS[2])
end
if stored_until and stored_until >= tonumber(ARGV[1]) then
  return {stored_until, stored_open_for}
end
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. ARGV[2], 'PX', ARGV[3])
return {tonumber(ARGV[1]), tonumber(ARGV[2])}
