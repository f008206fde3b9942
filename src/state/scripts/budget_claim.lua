-- Claim one alert threshold of a budget window without spending: the 100% alert of a refusal
-- (a block budget refuses before its spend reaches the limit, so no settle would ever claim it).
-- KEYS[1] totals (hash, as in budget_reserve.lua).
-- ARGV[1] threshold (percent), ARGV[2] holder, ARGV[3] expire at (unix s).
-- Returns 1 when this call claimed it, 0 when someone in the fleet did before.
local claimed = redis.call('HSETNX', KEYS[1], 'alert:' .. ARGV[1], ARGV[2])
redis.call('EXPIREAT', KEYS[1], ARGV[3])
return claimed
