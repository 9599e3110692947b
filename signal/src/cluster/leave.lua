-- Removes a member, but only the connection that recorded it: a member that resumed
-- elsewhere, or on a newer connection here, stays.
-- KEYS: room hash, rooms set, this relay's rooms set
-- ARGV: id, connection, room, relay
-- Returns the other relays with members in the room, to be told; none if nothing was removed.
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if not raw or cjson.decode(raw).conn ~= ARGV[2] then
  return {}
end
redis.call('HDEL', KEYS[1], ARGV[1])
local relays, seen, mine = {}, {}, false
local entries = redis.call('HGETALL', KEYS[1])
for i = 2, #entries, 2 do
  local relay = cjson.decode(entries[i]).relay
  if relay == ARGV[4] then
    mine = true
  elseif not seen[relay] then
    seen[relay] = true
    relays[#relays + 1] = relay
  end
end
if #entries == 0 then
  redis.call('SREM', KEYS[2], ARGV[3])
end
if not mine then
  redis.call('SREM', KEYS[3], ARGV[3])
end
return relays
