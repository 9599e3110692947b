-- Shared by every script: time by Redis's clock (relays' clocks may disagree), and whether
-- a relay's presence has not yet expired.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function alive(relays, relay, now)
  local expires = redis.call('ZSCORE', relays, relay)
  return expires ~= false and expires ~= nil and tonumber(expires) >= now
end
