--[[
  Adds an attempt to a delivery record, or fills in the external id of the attempt with the
  same attemptId (a known external id is never replaced). The record and the external-id
  index keys of its attempts then live ARGV[5] milliseconds more.

  KEYS[1] record    hash: payload, state (see delivery-begin.lua)

  ARGV[1] index prefix: the key `<prefix><externalId>` holds the record's logical key; it
          shares the record's hash tag, so it is on the same Redis Cluster slot
  ARGV[2] the record's logical key
  ARGV[3] attemptId
  ARGV[4] externalId, or '' when not known yet
  ARGV[5] record TTL, in milliseconds
  ARGV[6] the attempt's time, in epoch milliseconds (kept as the string given: cjson would
          round a number to 14 digits)

  Returns {payload, state} after the write, or 0 when there is no record (nothing written).
]]
local stored = redis.call('HMGET', KEYS[1], 'payload', 'state')
if not stored[2] then
  return 0
end
local state = cjson.decode(stored[2])
if type(state.attempts) ~= 'table' then
  state.attempts = {}
end
local found = nil
for _, a in ipairs(state.attempts) do
  if a.attemptId == ARGV[3] then
    found = a
  end
end
local indexed = ARGV[4]
if found == nil then
  local a = {attemptId = ARGV[3], at = ARGV[6], rank = 0, statusTimes = {}}
  if indexed ~= '' then
    a.externalId = indexed
  end
  table.insert(state.attempts, a)
elseif found.externalId == nil and indexed ~= '' then
  found.externalId = indexed
else
  indexed = ''
end
if indexed ~= '' then
  redis.call('SET', ARGV[1] .. indexed, ARGV[2], 'NX')
end
local encoded = cjson.encode(state)
redis.call('HSET', KEYS[1], 'state', encoded)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
for _, a in ipairs(state.attempts) do
  if a.externalId ~= nil and redis.call('GET', ARGV[1] .. a.externalId) == ARGV[2] then
    redis.call('PEXPIRE', ARGV[1] .. a.externalId, ARGV[5])
  end
end
return {stored[1], encoded}
