-- Reads a room's members on live relays, changing nothing.
-- KEYS: room hash, relays zset
-- Returns {id, entry, ...}.
local now = now_ms()
local reply = {}
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  if alive(KEYS[2], cjson.decode(entries[i + 1]).relay, now) then
    reply[#reply + 1] = entries[i]
    reply[#reply + 1] = entries[i + 1]
  end
end
return reply
