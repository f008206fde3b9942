-- Ends a probe lease: frees the lease if the caller (TOKEN) still holds it and, when CLOSE is
-- '1' (the probe succeeded and its breaker closed), deletes the published open_until unless a
-- later one was published meanwhile (a newer trip elsewhere keeps the fleet open).
-- KEYS[1] the open key, KEYS[2] the probe lease key (same hash tag).
-- ARGV[1] the lease token, ARGV[2] now (Unix ms), ARGV[3] '1' to close, '0' to only free.
-- Returns 1 when no open_until is left for the breaker, else 0.
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
local current = redis.call('GET', KEYS[1])
if not current then
  return 1
end
if ARGV[3] ~= '1' then
  return 0
end
local stored_until = tonumber(string.match(current, '^(%-?%d+):'))
if stored_until == nil or stored_until <= tonumber(ARGV[2]) then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
