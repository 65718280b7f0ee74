--[[
  Claims a dead letter for redrive under a lease, unless another consumer holds a live one or
  the entry is not due yet (a failed redrive left its not-before time, "<notBeforeMs>:").
  Claiming again under the token that holds the lease sets a new hold from now.
  Times come from the server's clock (TIME), so consumers' clocks never disagree.

  KEYS[1] entries   hash: id -> entry JSON
  KEYS[2] leases    hash: id -> "<expiresAtMs>:<token>", or "<notBeforeMs>:" after a failure

  ARGV[1] id
  ARGV[2] token     this redrive's fencing token
  ARGV[3] holdMs    how long the claim holds the entry, in milliseconds

  Returns {'claimed', json}, {'leased'} (held or not due) or {'missing'}.
]]
local json = redis.call('HGET', KEYS[1], ARGV[1])
if not json then
  return {'missing'}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = redis.call('HGET', KEYS[2], ARGV[1])
if lease then
  local expires = tonumber(string.match(lease, '^(%d+):'))
  if expires and expires > now and string.sub(lease, -(#ARGV[2] + 1)) ~= (':' .. ARGV[2]) then
    return {'leased'}
  end
end
redis.call('HSET', KEYS[2], ARGV[1], (now + tonumber(ARGV[3])) .. ':' .. ARGV[2])
return {'claimed', json}
