--[[
  Leases the records whose due time has come, earliest first: each one's due time becomes
  now + lease and its token (rev) changes. Members whose record expired leave the index.
  (delivery-common.lua is prepended: ARGV[1] base, ARGV[2] TTL.)

  KEYS[1] the due index (sorted set `<base>:due`)

  ARGV[3] most records to claim, an integer >= 1
  ARGV[4] lease, in milliseconds

  Returns a flat list {key, payload, state, ...} of the claimed records, after the write.
]]
local limit = tonumber(ARGV[3])
local now = now_ms()
local out = {}
local claimed = 0
while claimed < limit do
  local batch = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, limit - claimed)
  if #batch == 0 then
    break
  end
  for _, key in ipairs(batch) do
    local stored = redis.call('HMGET', BASE .. ':r:' .. key, 'payload', 'state')
    if not stored[2] then
      redis.call('ZREM', KEYS[1], key)
    else
      local state = cjson.decode(stored[2])
      local encoded = save(key, state, ARGV[4])
      table.insert(out, key)
      table.insert(out, stored[1])
      table.insert(out, encoded)
      claimed = claimed + 1
    end
  end
end
return out
