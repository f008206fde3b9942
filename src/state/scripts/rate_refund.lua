-- Give units back to a GCRA limit (see rate_gcra.lua): a call that took more than it used (a
-- token estimate above the usage reported) or that never went out (another limit refused).
-- The TAT moves back by COST intervals but never before now, so a refund cannot build credit
-- beyond the burst.
-- KEYS[1] the TAT key.
-- ARGV[1] now (ms), ARGV[2] interval per unit (ms), ARGV[3] units to give back.
-- Returns 1 when the TAT moved, 0 when there was nothing to give back.
local now = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat <= now then
  return 0
end
local new_tat = math.max(now, tat - tonumber(ARGV[2]) * tonumber(ARGV[3]))
if new_tat <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 1000)
end
return 1
