--[[
  Claims an idempotency key, or reports who holds it and what came of it.

  KEYS[1]  the record, a string that expires with the lease or the result's TTL:
             in progress: 'p' .. owner .. ':' .. fingerprint
             completed:   'c' .. #fingerprint .. ':' .. fingerprint .. serialised result
           owner is the fencing token, escaped so that it holds no ':' or '/', followed by
           '/' .. a random attempt id when the token is the caller's request id; fingerprint is
           '' when none was given
  ARGV[1]  the new owner (token, or token .. '/' .. attempt)
  ARGV[2]  lease, in milliseconds
  ARGV[3]  fingerprint, or '' for none
  ARGV[4]  the escaped token alone

  Returns  1                                  claimed: the key was free, or held in progress by
                                              the same token (the caller's own claim, sent
                                              again or retried), whose lease starts anew
           { 'in_progress', ms left on the lease }
           { 'completed', serialised result }
           { 'mismatch' }                     a different fingerprint holds the key
]]
local fingerprint = ARGV[3]
if redis.call('SET', KEYS[1], 'p' .. ARGV[1] .. ':' .. fingerprint, 'NX', 'PX', ARGV[2]) then
  return 1
end
local record = redis.call('GET', KEYS[1])
local colon = string.find(record, ':', 2, true)
if string.sub(record, 1, 1) == 'c' then
  local length = tonumber(string.sub(record, 2, colon - 1))
  local stored = string.sub(record, colon + 1, colon + length)
  if fingerprint ~= '' and stored ~= '' and stored ~= fingerprint then
    return { 'mismatch' }
  end
  return { 'completed', string.sub(record, colon + length + 1) }
end
local stored = string.sub(record, colon + 1)
if fingerprint ~= '' and stored ~= '' and stored ~= fingerprint then
  return { 'mismatch' }
end
local owner = string.sub(record, 2, colon - 1)
local slash = string.find(owner, '/', 1, true)
if slash then
  owner = string.sub(owner, 1, slash - 1)
end
if owner == ARGV[4] then
  if stored == '' then
    stored = fingerprint
  end
  redis.call('SET', KEYS[1], 'p' .. ARGV[1] .. ':' .. stored, 'PX', ARGV[2])
  return 1
end
return { 'in_progress', redis.call('PTTL', KEYS[1]) }
