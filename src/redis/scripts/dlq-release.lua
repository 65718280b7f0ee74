--[[
  Ends a failed redrive: stores the entry with the new failure appended and replaces the
  lease by the entry's not-before time (the redrive backoff, "<notBeforeMs>:" with no token,
  on the server's clock), only if this redrive still holds the lease (a consumer whose lease
  ran out, or a re-sent release, writes nothing).

  KEYS[1] entries   hash: id -> entry JSON
  KEYS[2] leases    hash: id -> "<expiresAtMs>:<token>", or "<notBeforeMs>:" after a failure

  ARGV[1] id
  ARGV[2] token
  ARGV[3] entry JSON with the failure appended
  ARGV[4] delayMs   the redrive backoff, in milliseconds

  Returns 1 when stored, 0 when the lease was lost or the entry is gone.
]]
local lease = redis.call('HGET', KEYS[2], ARGV[1])
if not lease or string.sub(lease, -(#ARGV[2] + 1)) ~= (':' .. ARGV[2]) then
  return 0
end
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 0
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[2], ARGV[1], (now + tonumber(ARGV[4])) .. ':')
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return 1
