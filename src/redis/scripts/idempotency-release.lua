--[[
  Drops a claim so that a retry can run again, for the current holder only.

  KEYS[1]  the record (see idempotency-claim.lua)
  ARGV[1]  the holder's fencing token

  Returns  1 when released; 0 when ARGV[1] no longer holds the key
]]
local record = redis.call('HMGET', KEYS[1], 's', 't')
if record[1] ~= 'p' or record[2] ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
return 1
