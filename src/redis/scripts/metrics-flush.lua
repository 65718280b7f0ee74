--[[
  Adds one process's metrics delta to an interval's bucket (fleet metrics).

  KEYS[1] bucket    hash of one interval: 'c:<counter>' -> sum, 'h:<bucket>' -> count,
                    'max' -> largest latency (ms), 'i:<instance>' -> 1,
                    'q:<queue>' -> JSON sample, 'b:<circuit>' -> JSON state

  ARGV[1] TTL of the bucket, in milliseconds (set on every write)
  ARGV[2] n: the number of (field, increment) pairs that follow
  ARGV[3 .. 2 + 2n] field, increment: added with HINCRBYFLOAT
  ARGV[3 + 2n] the largest latency of the delta in milliseconds, or '' when none
  ARGV[4 + 2n ..] field, value: set with HSET (the instance mark, queue samples, circuits)

  Returns 1.
]]
local key = KEYS[1]
local n = tonumber(ARGV[2])
local i = 3
for _ = 1, n do
  redis.call('HINCRBYFLOAT', key, ARGV[i], ARGV[i + 1])
  i = i + 2
end
local max = ARGV[i]
if max ~= '' then
  local current = tonumber(redis.call('HGET', key, 'max'))
  if current == nil or tonumber(max) > current then
    redis.call('HSET', key, 'max', max)
  end
end
i = i + 1
while i < #ARGV do
  redis.call('HSET', key, ARGV[i], ARGV[i + 1])
  i = i + 2
end
redis.call('PEXPIRE', key, ARGV[1])
return 1
