--[[
  Removes every dead letter. The position counter is kept, so old cursors stay meaningful.

  KEYS[1] entries   hash: id -> entry JSON
  KEYS[2] order     sorted set: id scored by position
  KEYS[3] reasonOf  hash: id -> reason
  KEYS[4] leases    hash: id -> "<expiresAtMs>:<token>"
  KEYS[5] reasons   set of reasons that have an index

  ARGV[1] prefix of the per-reason index keys (`<base>:reason:`), same hash tag

  Returns how many entries there were.
]]
local count = redis.call('HLEN', KEYS[1])
for _, reason in ipairs(redis.call('SMEMBERS', KEYS[5])) do
  redis.call('DEL', ARGV[1] .. reason)
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5])
return count
