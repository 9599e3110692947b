-- Admits a member to a room, cluster-wide: prunes members of dead relays, checks the name
-- and the limits, then records the member.
-- KEYS: room hash, rooms set, relays zset, this relay's rooms set, sequence counter
-- ARGV: id, name, lowercase name, relay, connection, max peers per room, max rooms, room
-- Returns {verdict, previous relay or '', id, entry, id, entry, ...} for the other members;
-- verdict is ok, name-taken, room-full or too-many-rooms.
local now = now_ms()
local id, relay = ARGV[1], ARGV[4]
local reply = {'ok', ''}
local taken = false
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  local other, entry = entries[i], cjson.decode(entries[i + 1])
  if other == id then
    reply[2] = entry.relay
  elseif not alive(KEYS[3], entry.relay, now) then
    redis.call('HDEL', KEYS[1], other)
  else
    reply[#reply + 1] = other
    reply[#reply + 1] = entries[i + 1]
    -- Classic connections have no names.
    if ARGV[3] ~= '' and entry.lname == ARGV[3] then taken = true end
  end
end
local others = (#reply - 2) / 2
if others == 0 and reply[2] == '' then
  redis.call('SREM', KEYS[2], ARGV[8])
end
if taken then
  reply[1] = 'name-taken'
  return reply
end
if others >= tonumber(ARGV[6]) then
  reply[1] = 'room-full'
  return reply
end
if redis.call('SISMEMBER', KEYS[2], ARGV[8]) == 0 and redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[7]) then
  return {'too-many-rooms', reply[2]}
end
local seq = redis.call('INCR', KEYS[5])
redis.call('HSET', KEYS[1], id, cjson.encode({name = ARGV[2], lname = ARGV[3], relay = relay, conn = ARGV[5], seq = seq}))
redis.call('SADD', KEYS[2], ARGV[8])
redis.call('SADD', KEYS[4], ARGV[8])
return reply
