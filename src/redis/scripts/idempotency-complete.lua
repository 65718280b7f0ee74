--[[
  Stores the result of a claimed key, for the current holder only.

  KEYS[1]  the record (layout in idempotency-claim.lua)
  ARGV[1]  the holder's fencing token, escaped
  ARGV[2]  TTL of the result, in milliseconds
  ARGV[3]  serialised result

  Returns  1 when stored; 0 when ARGV[1] no longer holds the key (the lease ran out, and the
           key was released, completed or taken over)
]]
local record = redis.call('GET', KEYS[1])
if not record or string.sub(record, 1, 1) ~= 'p' then
  return 0
end
local colon = string.find(record, ':', 2, true)
local owner = string.sub(record, 2, colon - 1)
local slash = string.find(owner, '/', 1, true)
if slash then
  owner = string.sub(owner, 1, slash - 1)
end
if owner ~= ARGV[1] then
  return 0
end
local fingerprint = string.sub(record, colon + 1)
redis.call('SET', KEYS[1], 'c' .. #fingerprint .. ':' .. fingerprint .. ARGV[3], 'PX', ARGV[2])
return 1
