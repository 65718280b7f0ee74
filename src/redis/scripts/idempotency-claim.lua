--[[
  Claims an idempotency key, or reports who holds it and what came of it.

  KEYS[1]  the record: a hash { s = 'p' (in progress) | 'c' (completed), t = token,
           f = fingerprint, r = serialised result }, expiring with the lease or the TTL
  ARGV[1]  the new fencing token
  ARGV[2]  lease, in milliseconds
  ARGV[3]  fingerprint, or '' for none (the caller sends '' only when there is none)

  Returns  { 'claimed' }
           { 'in_progress', milliseconds left on the lease }
           { 'completed', serialised result }
           { 'mismatch' }
]]
local record = redis.call('HMGET', KEYS[1], 's', 'f', 'r')
local state = record[1]
if not state then
  if ARGV[3] == '' then
    redis.call('HSET', KEYS[1], 's', 'p', 't', ARGV[1])
  else
    redis.call('HSET', KEYS[1], 's', 'p', 't', ARGV[1], 'f', ARGV[3])
  end
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return { 'claimed' }
end
if ARGV[3] ~= '' and record[2] and record[2] ~= ARGV[3] then
  return { 'mismatch' }
end
if state == 'c' then
  return { 'completed', record[3] }
end
return { 'in_progress', redis.call('PTTL', KEYS[1]) }
