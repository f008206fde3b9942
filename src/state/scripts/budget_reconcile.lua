-- Add spend settled while Redis was unavailable (kept in a process's local ledger) to a window,
-- and claim the alert thresholds it crossed, as a settle would. No reservation is involved.
-- KEYS[1] totals (hash, as in budget_reserve.lua).
-- ARGV[1] amount (nano-USD), ARGV[2] expire at (unix s), ARGV[3] limit (nano-USD; -1: none,
-- no alerts), ARGV[4] holder (who claims an alert), ARGV[5..] alert thresholds in percent.
-- Returns {spent, {thresholds this call claimed}}.
local spent = redis.call('HINCRBY', KEYS[1], 'spent', ARGV[1])
local limit = tonumber(ARGV[3])
local claimed = {}
if limit >= 0 then
  for i = 5, #ARGV do
    local percent = tonumber(ARGV[i])
    if spent * 100 >= limit * percent
        and redis.call('HSETNX', KEYS[1], 'alert:' .. ARGV[i], ARGV[4]) == 1 then
      claimed[#claimed + 1] = percent
    end
  end
end
-- The window's own expiry (a day past its period), even for a window that ended meanwhile.
redis.call('EXPIREAT', KEYS[1], ARGV[2])
return {spent, claimed}
