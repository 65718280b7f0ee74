--[[
  Ends a lease: moves a record's due time, only if its token (rev) is still the one given.
  (delivery-common.lua is prepended: ARGV[1] base, ARGV[2] TTL.)

  KEYS[1] record    hash: payload, state (see delivery-begin.lua)

  ARGV[3] the record's logical key
  ARGV[4] the lease token
  ARGV[5] a delay in ms, or 'close' to leave the due index

  Returns 1 when moved, 0 when the token changed or the record is gone (nothing written).
]]
local stored = redis.call('HGET', KEYS[1], 'state')
if not stored then
  return 0
end
local state = cjson.decode(stored)
if tostring(tonumber(state.rev) or 0) ~= ARGV[4] then
  return 0
end
save(ARGV[3], state, ARGV[5])
return 1
