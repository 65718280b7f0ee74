--[[
  Shared by every delivery script that writes (prepended to its source). Every such script
  takes ARGV[1] = base (`{<prefix>:deliveries}`) and ARGV[2] = record TTL in milliseconds.
  Keys under the base: `:r:<key>` record hash, `:x:<externalId>` and `:a:<alias>` strings
  holding a record's key, `:due` the due index (sorted set, score = due time in epoch ms).

  A record's state (JSON) holds createdAt, attempts, rev (the lease token: changed by every
  write of the due time), due (epoch ms as a decimal string, absent when not due), alias and
  sender.
]]
local BASE = ARGV[1]
local TTL = ARGV[2]
local DUE = BASE .. ':due'

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function attempts_of(state)
  if type(state.attempts) ~= 'table' then
    state.attempts = {}
  end
  return state.attempts
end

-- Writes state under key. dueIn: nil keeps the due time and token, 'close' leaves the index,
-- else a delay in ms from now. The record, its index keys and the due index live TTL ms more.
local function save(key, state, dueIn)
  if dueIn ~= nil then
    state.rev = (tonumber(state.rev) or 0) + 1
    if dueIn == 'close' then
      state.due = nil
      redis.call('ZREM', DUE, key)
    else
      local at = now_ms() + tonumber(dueIn)
      state.due = string.format('%d', at)
      redis.call('ZADD', DUE, at, key)
    end
  end
  local encoded = cjson.encode(state)
  local recordKey = BASE .. ':r:' .. key
  redis.call('HSET', recordKey, 'state', encoded)
  redis.call('PEXPIRE', recordKey, TTL)
  redis.call('PEXPIRE', DUE, TTL)
  for _, a in ipairs(attempts_of(state)) do
    local index = BASE .. ':x:' .. tostring(a.externalId)
    if a.externalId ~= nil and redis.call('GET', index) == key then
      redis.call('PEXPIRE', index, TTL)
    end
  end
  if state.alias ~= nil and redis.call('GET', BASE .. ':a:' .. state.alias) == key then
    redis.call('PEXPIRE', BASE .. ':a:' .. state.alias, TTL)
  end
  return encoded
end
