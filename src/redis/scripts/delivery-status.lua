--[[
  Applies a status report to the attempt whose external id it names. A higher rank replaces
  the attempt's status; a lower one changes nothing; of one rank the earlier payload timestamp
  is kept (core/delivery/status-rank.ts, foldByRank: the same rule). statusTimes keeps each
  status's earliest payload time. When no attempt has the external id but the alias names a
  record, the external id is given to that record's latest attempt without one first.
  (delivery-common.lua is prepended: ARGV[1] base, ARGV[2] TTL.)

  KEYS[1] index     string: the logical key of the record whose attempt has this external id

  ARGV[3] status
  ARGV[4] rank, an integer >= 1
  ARGV[5] the report's payload timestamp, in epoch milliseconds
  ARGV[6] the report's errors, a JSON array
  ARGV[7] the external id
  ARGV[8] alias, or ''
  ARGV[9] 'close' | 'wake' | '': what the report does to the due time when its attempt is
          the record's latest

  Returns {'applied' | 'stale', key, attemptId, payload, state, attached (1 | 0)} after the
  write, or {'unknown'} when no record's attempt has this external id (nothing written).
]]
local function find(key)
  local stored = redis.call('HMGET', BASE .. ':r:' .. key, 'payload', 'state')
  if not stored[2] then
    return nil
  end
  return stored
end

local key = redis.call('GET', KEYS[1])
local stored = nil
local state = nil
local found = nil
local attached = 0
if key then
  stored = find(key)
  if stored then
    state = cjson.decode(stored[2])
    for _, a in ipairs(attempts_of(state)) do
      if a.externalId == ARGV[7] then
        found = a
      end
    end
  end
end
if found == nil and ARGV[8] ~= '' then
  key = redis.call('GET', BASE .. ':a:' .. ARGV[8])
  if key then
    stored = find(key)
    if stored then
      state = cjson.decode(stored[2])
      local attempts = attempts_of(state)
      for i = #attempts, 1, -1 do
        if attempts[i].externalId == nil then
          found = attempts[i]
          break
        end
      end
      if found ~= nil then
        found.externalId = ARGV[7]
        attached = 1
        redis.call('SET', KEYS[1], key, 'NX')
      end
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
  found.errors = ARGV[6]
end
local attempts = attempts_of(state)
local dueIn = nil
if attempts[#attempts] == found then
  if ARGV[9] == 'close' then
    dueIn = 'close'
  elseif ARGV[9] == 'wake' then
    dueIn = '0'
  end
end
local encoded = save(key, state, dueIn)
return {changed and 'applied' or 'stale', key, found.attemptId, stored[1], encoded, attached}
