--[[
  Adds a dead letter unless one with the same id is already there (the first one is kept).

  KEYS[1] entries   hash: id -> entry JSON
  KEYS[2] order     sorted set: id scored by its position (insertion order)
  KEYS[3] seq       counter of positions
  KEYS[4] reasonOf  hash: id -> reason
  KEYS[5] reasons   set of reasons that have an index
  KEYS[6] index     sorted set of this entry's reason: id scored by position
  KEYS[7] leases    hash: id -> "<expiresAtMs>:<token>", or "<notBeforeMs>:"

  ARGV[1] id
  ARGV[2] entry JSON
  ARGV[3] reason
  ARGV[4] the entry's not-before time in epoch milliseconds, or '' (due now)

  Returns {1, json} when added, {0, stored json} when the id was already there.
]]
local existing = redis.call('HGET', KEYS[1], ARGV[1])
if existing then
  return {0, existing}
end
local seq = redis.call('INCR', KEYS[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], seq, ARGV[1])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[3])
redis.call('SADD', KEYS[5], ARGV[3])
redis.call('ZADD', KEYS[6], seq, ARGV[1])
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[7], ARGV[1], ARGV[4] .. ':')
end
return {1, ARGV[2]}
