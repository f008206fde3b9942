-- GCRA (generic cell rate algorithm): a shared rate limit of LIMIT units per PERIOD with a
-- burst of BURST units, as one theoretical arrival time (TAT) per limit. A call of COST units
-- is allowed when TAT + COST * interval - BURST * interval <= now: up to BURST units at once
-- after an idle stretch, and a steady LIMIT per PERIOD under load; otherwise it learns how
-- long to wait. The TAT is stored with 3 decimals, so fractional intervals do not drift.
-- KEYS[1] the TAT key.
-- ARGV[1] now (ms), ARGV[2] interval per unit (ms, PERIOD / LIMIT), ARGV[3] the burst
-- tolerance (ms, BURST * interval), ARGV[4] cost (units).
-- Returns {1 allowed | 0 not yet, ms to wait before it would be allowed}.
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then
  tat = now
end
local new_tat = tat + interval * cost
local allowed_at = new_tat - tolerance
if allowed_at > now then
  return {0, math.ceil(allowed_at - now)}
end
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 1000)
return {1, 0}
