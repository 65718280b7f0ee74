--[[
  Adds an attempt to a delivery record, or fills in the external id of the attempt with the
  same attemptId (a known external id is never replaced).
  (delivery-common.lua is prepended: ARGV[1] base, ARGV[2] TTL.)

  KEYS[1] record    hash: payload, state (see delivery-begin.lua)

  ARGV[3] the record's logical key
  ARGV[4] attemptId
  ARGV[5] externalId, or '' when not known yet
  ARGV[6] the attempt's time, in epoch milliseconds (kept as the string given: cjson would
          round a number to 14 digits)
  ARGV[7] ifAttempts: write only if the record holds this many attempts; '' for always
  ARGV[8] the new due time: a delay in ms, 'close' to leave the due index, '' for no change

  Returns {'recorded', payload, state} after the write, {'conflict', payload, state} when
  ifAttempts did not match, or 0 when there is no record (nothing written either way).
]]
local stored = redis.call('HMGET', KEYS[1], 'payload', 'state')
if not stored[2] then
  return 0
end
local state = cjson.decode(stored[2])
local attempts = attempts_of(state)
if ARGV[7] ~= '' and #attempts ~= tonumber(ARGV[7]) then
  return {'conflict', stored[1], stored[2]}
end
local found = nil
for _, a in ipairs(attempts) do
  if a.attemptId == ARGV[4] then
    found = a
  end
end
local indexed = ARGV[5]
if found == nil then
  local a = {attemptId = ARGV[4], at = ARGV[6], rank = 0, statusTimes = {}}
  if indexed ~= '' then
    a.externalId = indexed
  end
  table.insert(attempts, a)
elseif found.externalId == nil and indexed ~= '' then
  found.externalId = indexed
else
  indexed = ''
end
if indexed ~= '' then
  redis.call('SET', BASE .. ':x:' .. indexed, ARGV[3], 'NX')
end
local dueIn = nil
if ARGV[8] ~= '' then
  dueIn = ARGV[8]
end
return {'recorded', stored[1], save(ARGV[3], state, dueIn)}
