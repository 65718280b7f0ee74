--[[
  Reads a delivery record, by its key or by an external id of one of its attempts.

  KEYS[1] the record (by key), or the index key of an external id (by external id)

  ARGV[1] '' to read KEYS[1] as the record; else the record prefix, KEYS[1] being an index
          key that holds the logical key (see delivery-attempt.lua)

  Returns {key or '', payload, state}, or 0 when there is no such record.
]]
local recordKey = KEYS[1]
local key = ''
if ARGV[1] ~= '' then
  key = redis.call('GET', KEYS[1])
  if not key then
    return 0
  end
  recordKey = ARGV[1] .. key
end
local stored = redis.call('HMGET', recordKey, 'payload', 'state')
if not stored[2] then
  return 0
end
return {key, stored[1], stored[2]}
