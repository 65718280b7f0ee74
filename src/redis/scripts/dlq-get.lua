--[[
  Reads one dead letter.

  KEYS[1] entries   hash: id -> entry JSON
  ARGV[1] id

  Returns the entry JSON, or nil when absent.
]]
return redis.call('HGET', KEYS[1], ARGV[1])
