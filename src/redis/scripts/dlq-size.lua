--[[
  Counts dead letters.

  KEYS[1] entries   hash: id -> entry JSON

  Returns the number of entries.
]]
return redis.call('HLEN', KEYS[1])
