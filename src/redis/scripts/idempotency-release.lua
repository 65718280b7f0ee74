--[[
  Drops a claim so that a retry can run again, for the current holder only.

  KEYS[1]  the record (layout in idempotency-claim.lua)
  ARGV[1]  the holder's fencing token

  Returns  1 when released; 0 when ARGV[1] no longer holds the key
]]
local record = redis.call('GET', KEYS[1])
if not record or string.sub(record, 1, 1) ~= 'p' then
  return 0
end
local colon = string.find(record, ':', 2, true)
if string.sub(record, 2, colon - 1) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
return 1
