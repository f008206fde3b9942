-- Reserve AMOUNT against a budget window, atomically across the fleet.
-- KEYS[1] totals (hash: spent, reserved, alert:PCT), KEYS[2] reservations (hash: id -> amount),
-- KEYS[3] reservation deadlines (sorted set: id -> ms). All three share one hash tag.
-- ARGV[1] limit (nano-USD; -1: no limit, reserve anyway), ARGV[2] amount (nano-USD),
-- ARGV[3] reservation id, ARGV[4] now (ms), ARGV[5] hold (ms), ARGV[6] expire at (unix s).
-- Returns {1 reserved | 0 refused | 2 id already held, spent, reserved in flight}.
local now = tonumber(ARGV[4])
-- Reservations past their deadline belong to a process that never settled (it crashed or was
-- killed): free what they held.
local stale = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
for _, id in ipairs(stale) do
  local held = redis.call('HGET', KEYS[2], id)
  if held then
    redis.call('HINCRBY', KEYS[1], 'reserved', -tonumber(held))
    redis.call('HDEL', KEYS[2], id)
  end
  redis.call('ZREM', KEYS[3], id)
end
local spent = tonumber(redis.call('HGET', KEYS[1], 'spent') or '0')
local reserved = tonumber(redis.call('HGET', KEYS[1], 'reserved') or '0')
if redis.call('HEXISTS', KEYS[2], ARGV[3]) == 1 then
  return {2, spent, reserved}
end
local limit = tonumber(ARGV[1])
local amount = tonumber(ARGV[2])
if limit >= 0 and spent + reserved + amount > limit then
  return {0, spent, reserved}
end
redis.call('HSET', KEYS[2], ARGV[3], ARGV[2])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[5]), ARGV[3])
reserved = redis.call('HINCRBY', KEYS[1], 'reserved', ARGV[2])
for i = 1, 3 do
  redis.call('EXPIREAT', KEYS[i], ARGV[6])
end
return {1, spent, reserved}
