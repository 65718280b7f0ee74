--[[
  Applies a status report to the attempt whose external id it names. A higher rank replaces
  the attempt's status; a lower one changes nothing; of one rank the earlier payload timestamp
  is kept (core/delivery/status-rank.ts, foldByRank: the same rule). statusTimes keeps each
  status's earliest payload time. The record and its index keys then live ARGV[6] ms more.

  KEYS[1] index     string: the logical key of the record whose attempt has this external id

  ARGV[1] record prefix: the record of logical key k is `<prefix>k`, under the index's hash tag
  ARGV[2] index prefix (see delivery-attempt.lua)
  ARGV[3] status
  ARGV[4] rank, an integer >= 1
  ARGV[5] the report's payload timestamp, in epoch milliseconds
  ARGV[6] record TTL, in milliseconds
  ARGV[7] the report's errors, a JSON array
  ARGV[8] the external id

  Returns {'applied' | 'stale', key, attemptId, payload, state} after the write, or
  {'unknown'} when no record's attempt has this external id (nothing written).
]]
local key = redis.call('GET', KEYS[1])
if not key then
  return {'unknown'}
end
local recordKey = ARGV[1] .. key
local stored = redis.call('HMGET', recordKey, 'payload', 'state')
if not stored[2] then
  return {'unknown'}
end
local state = cjson.decode(stored[2])
local found = nil
if type(state.attempts) == 'table' then
  for _, a in ipairs(state.attempts) do
    if a.externalId == ARGV[8] then
      found = a
    end
  end
end
if found == nil then
  return {'unknown'}
end
local status = ARGV[3]
local rank = tonumber(ARGV[4])
local at = tonumber(ARGV[5])
if type(found.statusTimes) ~= 'table' then
  found.statusTimes = {}
end
-- Times are kept as the decimal strings given (cjson would round a number to 14 digits).
local known = found.statusTimes[status]
if known == nil or at < tonumber(known) then
  found.statusTimes[status] = ARGV[5]
end
local changed
if found.status == nil then
  changed = true
elseif rank ~= found.rank then
  changed = rank > found.rank
else
  changed = at < tonumber(found.statusAt)
end
if changed then
  found.status = status
  found.rank = rank
  found.statusAt = ARGV[5]
  found.errors = ARGV[7]
end
local encoded = cjson.encode(state)
redis.call('HSET', recordKey, 'state', encoded)
redis.call('PEXPIRE', recordKey, ARGV[6])
for _, a in ipairs(state.attempts) do
  if a.externalId ~= nil and redis.call('GET', ARGV[2] .. a.externalId) == key then
    redis.call('PEXPIRE', ARGV[2] .. a.externalId, ARGV[6])
  end
end
return {changed and 'applied' or 'stale', key, found.attemptId, stored[1], encoded}
