--[[
  Marks a key as seen. One SET NX PX; a script only because adapters speak EVALSHA.

  KEYS[1]  the mark
  ARGV[1]  TTL, in milliseconds

  Returns  1 the first time within the TTL, 0 after
]]
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  return 1
end
return 0
