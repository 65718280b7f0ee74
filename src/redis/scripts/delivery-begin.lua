--[[
  Makes a delivery record unless its key already has one (the first one is kept).
  (delivery-common.lua is prepended: ARGV[1] base, ARGV[2] TTL.)

  KEYS[1] record    hash: payload -> serialised payload, state -> JSON of
                    {createdAt, rev, due?, alias?, sender?, attempts: [{attemptId, externalId?, at,
                    status?, rank, statusAt?, statusTimes, errors? (a JSON string)}]}; times in
                    epoch milliseconds, those from callers kept as decimal strings

  ARGV[3] the record's key
  ARGV[4] serialised payload
  ARGV[5] alias, or '' for none: `<base>:a:<alias>` then holds the key (first one kept)
  ARGV[6] delay until the record is due, in ms, or '' for not due
  ARGV[7] sender, or '' for none

  Returns {1, payload, state} when made (createdAt is the Redis server's TIME), or
  {0, stored payload, stored state} when the key already had a record.
]]
local stored = redis.call('HMGET', KEYS[1], 'payload', 'state')
if stored[2] then
  return {0, stored[1], stored[2]}
end
local state = {createdAt = now_ms(), attempts = {}, rev = 0}
if ARGV[5] ~= '' then
  state.alias = ARGV[5]
  redis.call('SET', BASE .. ':a:' .. ARGV[5], ARGV[3], 'NX')
end
if ARGV[7] ~= '' then
  state.sender = ARGV[7]
end
redis.call('HSET', KEYS[1], 'payload', ARGV[4])
local dueIn = nil
if ARGV[6] ~= '' then
  dueIn = ARGV[6]
end
local encoded = save(ARGV[3], state, dueIn)
return {1, ARGV[4], encoded}
