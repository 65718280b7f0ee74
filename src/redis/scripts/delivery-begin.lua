--[[
  Makes a delivery record unless its key already has one (the first one is kept).

  KEYS[1] record    hash: payload -> serialised payload, state -> JSON of
                    {createdAt, attempts: [{attemptId, externalId?, at, status?, rank,
                    statusAt?, statusTimes, errors? (a JSON string)}]}; times in epoch
                    milliseconds, those from callers kept as decimal strings

  ARGV[1] serialised payload
  ARGV[2] record TTL, in milliseconds

  Returns {1, payload, state} when made (createdAt is the Redis server's TIME), or
  {0, stored payload, stored state} when the key already had a record.
]]
local stored = redis.call('HMGET', KEYS[1], 'payload', 'state')
if stored[2] then
  return {0, stored[1], stored[2]}
end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local state = '{"createdAt":' .. string.format('%d', now) .. ',"attempts":[]}'
redis.call('HSET', KEYS[1], 'payload', ARGV[1], 'state', state)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, ARGV[1], state}
