--[[
  Ends a failed redrive: stores the entry with the new failure appended and drops the lease,
  only if this redrive still holds it (a consumer whose lease ran out writes nothing).

  KEYS[1] entries   hash: id -> entry JSON
  KEYS[2] leases    hash: id -> "<expiresAtMs>:<token>"

  ARGV[1] id
  ARGV[2] token
  ARGV[3] entry JSON with the failure appended

  Returns 1 when stored, 0 when the lease was lost or the entry is gone.
]]
local lease = redis.call('HGET', KEYS[2], ARGV[1])
if not lease or string.sub(lease, -(#ARGV[2] + 1)) ~= (':' .. ARGV[2]) then
  return 0
end
redis.call('HDEL', KEYS[2], ARGV[1])
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
