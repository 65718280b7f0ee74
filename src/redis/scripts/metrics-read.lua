--[[
  Reads the buckets of a window of fleet metrics in one round trip.

  KEYS[1 ..] bucket hashes, oldest first (see metrics-flush.lua)

  Returns one flat HGETALL reply per key ({} for a bucket nobody wrote or that expired).
]]
local out = {}
for k = 1, #KEYS do
  out[k] = redis.call('HGETALL', KEYS[k])
end
return out
