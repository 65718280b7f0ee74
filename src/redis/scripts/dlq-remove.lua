--[[
  Removes one dead letter, its indexes and any redrive lease on it.

  KEYS[1] entries   hash: id -> entry JSON
  KEYS[2] order     sorted set: id scored by position
  KEYS[3] reasonOf  hash: id -> reason
  KEYS[4] leases    hash: id -> "<expiresAtMs>:<token>"

  ARGV[1] id
  ARGV[2] prefix of the per-reason index keys (`<base>:reason:`); it shares the keys' hash
          tag, so the index lives on the same cluster slot

  Returns 1 when removed, 0 when absent.
]]
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then
  redis.call('HDEL', KEYS[4], ARGV[1])
  return 0
end
local reason = redis.call('HGET', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
if reason then
  redis.call('ZREM', ARGV[2] .. reason, ARGV[1])
end
return 1
