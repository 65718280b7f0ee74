--[[
  Drops a claim so that a retry can run again, for the current holder only.

  KEYS[1]  the record (layout in idempotency-claim.lua)
  ARGV[1]  the holder's fencing token, escaped
  ARGV[2]  the attempt id the claim was made with, or '' for any: a release of a claim that
           timed out names its attempt, so that it can't drop a later claim made with the same
           request id

  Returns  1 when released; 0 when ARGV[1] (and ARGV[2]) no longer hold the key
]]
local record = redis.call('GET', KEYS[1])
if not record or string.sub(record, 1, 1) ~= 'p' then
  return 0
end
local colon = string.find(record, ':', 2, true)
local owner = string.sub(record, 2, colon - 1)
local attempt = ''
local slash = string.find(owner, '/', 1, true)
if slash then
  attempt = string.sub(owner, slash + 1)
  owner = string.sub(owner, 1, slash - 1)
end
if owner ~= ARGV[1] or (ARGV[2] ~= '' and attempt ~= ARGV[2]) then
  return 0
end
redis.call('DEL', KEYS[1])
return 1
