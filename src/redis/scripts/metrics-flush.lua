--[[
  Adds one process's metrics delta to an interval's bucket (fleet metrics).

  KEYS[1] bucket    hash of one interval: 'c:<counter>' -> sum, 'h:<bucket>' -> count,
                    'max' -> largest latency (ms), 'sh:<instrument>|<bucket>' -> count and
                    'smax:<instrument>' -> largest value of a section's latency,
                    'i:<instance>' -> 1, 'q:<queue>' -> JSON sample, 'b:<circuit>' -> JSON state

  ARGV[1] TTL of the bucket, in milliseconds (set on every write)
  ARGV[2] n: the number of (field, increment) pairs that follow
  ARGV[3 .. 2 + 2n] field, increment: added with HINCRBYFLOAT
  ARGV[3 + 2n] m: the number of (field, value) pairs that follow, each kept at its largest
  ARGV[4 + 2n .. 3 + 2n + 2m] field, value: set unless the stored value is larger
  ARGV[4 + 2n + 2m ..] field, value: set with HSET (the instance mark, queue samples, circuits)

  Returns 1.
]]
local key = KEYS[1]
local i = 3
for _ = 1, tonumber(ARGV[2]) do
  redis.call('HINCRBYFLOAT', key, ARGV[i], ARGV[i + 1])
  i = i + 2
end
local m = tonumber(ARGV[i])
i = i + 1
for _ = 1, m do
  local current = tonumber(redis.call('HGET', key, ARGV[i]))
  if current == nil or tonumber(ARGV[i + 1]) > current then
    redis.call('HSET', key, ARGV[i], ARGV[i + 1])
  end
  i = i + 2
end
while i < #ARGV do
  redis.call('HSET', key, ARGV[i], ARGV[i + 1])
  i = i + 2
end
redis.call('PEXPIRE', key, ARGV[1])
return 1
