--[[
  Stores the result of a claimed key, for the current holder only.

  KEYS[1]  the record (see idempotency-claim.lua)
  ARGV[1]  the holder's fencing token
  ARGV[2]  TTL of the result, in milliseconds
  ARGV[3]  serialised result

  Returns  1 when stored; 0 when ARGV[1] no longer holds the key (the lease ran out, and the
           key was released, completed or taken over)
]]
local record = redis.call('HMGET', KEYS[1], 's', 't')
if record[1] ~= 'p' or record[2] ~= ARGV[1] then
  return 0
end
redis.call('HDEL', KEYS[1], 't')
redis.call('HSET', KEYS[1], 's', 'c', 'r', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
