-- Makes a room's record of this relay's members match the relay after Redis came back:
-- adds the members it has, removes the ones it no longer has, and leaves alone a member
-- that has since resumed on another relay. No limits are checked: these members are in.
-- KEYS: room hash, rooms set, relays zset, this relay's rooms set, sequence counter
-- ARGV: relay, room, then id, name, lowercase name, connection for each member here
-- Returns {id, entry, ...} for the members on other relays.
local now = now_ms()
local me = ARGV[1]
local here = {}
for i = 3, #ARGV, 4 do here[ARGV[i]] = true end
local reply = {}
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local other, entry = entries[i], cjson.decode(entries[i + 1])
  if entry.relay == me then
    if not here[other] then redis.call('HDEL', KEYS[1], other) end
  elseif not alive(KEYS[3], entry.relay, now) then
    redis.call('HDEL', KEYS[1], other)
  else
    reply[#reply + 1] = other
    reply[#reply + 1] = entries[i + 1]
  end
end
for i = 3, #ARGV, 4 do
  local raw = redis.call('HGET', KEYS[1], ARGV[i])
  local entry = raw and cjson.decode(raw)
  if not entry or entry.relay == me then
    local seq = entry and entry.seq or redis.call('INCR', KEYS[5])
    redis.call('HSET', KEYS[1], ARGV[i], cjson.encode({name = ARGV[i + 1], lname = ARGV[i + 2], relay = me, conn = ARGV[i + 3], seq = seq}))
  end
end
if redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[2], ARGV[2])
else
  redis.call('SADD', KEYS[2], ARGV[2])
end
if #ARGV > 2 then
  redis.call('SADD', KEYS[4], ARGV[2])
else
  redis.call('SREM', KEYS[4], ARGV[2])
end
return reply
