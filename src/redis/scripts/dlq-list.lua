--[[
  A page of dead letters, oldest first.

  KEYS[1] entries   hash: id -> entry JSON
  KEYS[2] index     sorted set scored by position: `order` for all, or one reason's index
  KEYS[3] seq       counter of positions

  ARGV[1] after     exclusive lower position (0 for the first page)
  ARGV[2] limit     most entries to return
  ARGV[3] upTo      inclusive upper position, or '+inf'

  Returns {tail, more, id1, position1, json1, id2, ...}: `tail` is the newest position now,
  `more` is 1 when entries remain past this page.
]]
local limit = tonumber(ARGV[2])
local rows = redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], ARGV[3], 'WITHSCORES', 'LIMIT', 0, limit + 1)
local out = {tonumber(redis.call('GET', KEYS[3]) or '0'), 0}
local n = #rows / 2
if n > limit then
  out[2] = 1
  n = limit
end
for i = 1, n do
  local id = rows[2 * i - 1]
  local json = redis.call('HGET', KEYS[1], id)
  if json then
    out[#out + 1] = id
    out[#out + 1] = rows[2 * i]
    out[#out + 1] = json
  end
end
return out
