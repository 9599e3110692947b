-- Renews this relay's presence, clears away what relays whose presence expired left
-- behind, and lists the relays alive.
-- KEYS: relays zset
-- ARGV: relay, presence ttl in ms, key prefix
-- Returns {'1' if this relay was not present (new, or expired), relay, relay, ...}.
local now = now_ms()
local fresh = redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)
for _, relay in ipairs(dead) do
  local rooms = ARGV[3] .. 'relay:' .. relay .. ':rooms'
  for _, room in ipairs(redis.call('SMEMBERS', rooms)) do
    local key = ARGV[3] .. 'room:' .. room
    local entries = redis.call('HGETALL', key)
    for i = 1, #entries, 2 do
      if cjson.decode(entries[i + 1]).relay == relay then redis.call('HDEL', key, entries[i]) end
    end
    if redis.call('EXISTS', key) == 0 then redis.call('SREM', ARGV[3] .. 'rooms', room) end
  end
  redis.call('DEL', rooms)
  redis.call('ZREM', KEYS[1], relay)
end
local reply = redis.call('ZRANGEBYSCORE', KEYS[1], now, '+inf')
table.insert(reply, 1, tostring(fresh))
return reply
