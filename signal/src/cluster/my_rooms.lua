-- The rooms Redis holds members of this relay in.
-- KEYS: this relay's rooms set
return redis.call('SMEMBERS', KEYS[1])
