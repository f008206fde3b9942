-- Replace a reservation by the actual cost, and claim the alert thresholds this spend crossed.
-- KEYS as in budget_reserve.lua.
-- ARGV[1] reservation id, ARGV[2] actual cost (nano-USD), ARGV[3] expire at (unix s),
-- ARGV[4] limit (nano-USD; -1: none, no alerts), ARGV[5] holder (who claims an alert),
-- ARGV[6..] alert thresholds in percent (80, 90, 95, 100).
-- Returns {spent, reserved in flight, 1 if the reservation was still held else 0,
--          {thresholds this call claimed}}.
-- A threshold is claimed with HSETNX on the window's totals hash: the first settle whose spend
-- reaches it, in the whole fleet, claims it; every later one sees it taken. The claim expires
-- with the window, so the next day or month alerts again.
local held = redis.call('HGET', KEYS[2], ARGV[1])
if held then
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('HINCRBY', KEYS[1], 'reserved', -tonumber(held))
end
local spent = redis.call('HINCRBY', KEYS[1], 'spent', ARGV[2])
local reserved = tonumber(redis.call('HGET', KEYS[1], 'reserved') or '0')
local limit = tonumber(ARGV[4])
local claimed = {}
if limit >= 0 then
  for i = 6, #ARGV do
    local percent = tonumber(ARGV[i])
    if spent * 100 >= limit * percent
        and redis.call('HSETNX', KEYS[1], 'alert:' .. ARGV[i], ARGV[5]) == 1 then
      claimed[#claimed + 1] = percent
    end
  end
end
for i = 1, 3 do
  redis.call('EXPIREAT', KEYS[i], ARGV[3])
end
return {spent, reserved, held and 1 or 0, claimed}
