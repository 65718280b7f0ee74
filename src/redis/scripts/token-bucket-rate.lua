-- Gives one token bucket its own limits, or returns it to the configured ones, in one atomic
-- step: the bucket is refilled up to now at the limits it had, its tokens are cut to the new
-- capacity, and its expiry is set for the new rate (the maths of token-bucket.lua).
--
-- KEYS[1]  the bucket (see token-bucket.lua)
-- KEYS[2]  the key's own limits, "<capacity> <refill per ms>"
-- ARGV[1]  configured capacity (tokens)
-- ARGV[2]  configured refill (tokens per millisecond)
-- ARGV[3]  new capacity, or "" to return to the configured limits
-- ARGV[4]  new refill (tokens per millisecond), ignored with ARGV[3] = ""
-- ARGV[5]  now in milliseconds from the client's clock, or "" to use the server's TIME
--
-- Returns 1

if redis.replicate_commands then
  redis.replicate_commands()
end

local capacity = tonumber(ARGV[1])
local refill_per_ms = tonumber(ARGV[2])
local own = redis.call('GET', KEYS[2])
if own then
  local space = string.find(own, ' ', 1, true)
  capacity = tonumber(string.sub(own, 1, space - 1))
  refill_per_ms = tonumber(string.sub(own, space + 1))
end

local new_capacity, new_refill_per_ms
if ARGV[3] == '' then
  new_capacity = tonumber(ARGV[1])
  new_refill_per_ms = tonumber(ARGV[2])
  redis.call('DEL', KEYS[2])
else
  new_capacity = tonumber(ARGV[3])
  new_refill_per_ms = tonumber(ARGV[4])
  redis.call('SET', KEYS[2], ARGV[3] .. ' ' .. ARGV[4])
end

local state = redis.call('GET', KEYS[1])
if not state then
  -- A missing bucket is a full one, at any capacity.
  return 1
end

local now
if ARGV[5] == '' then
  local time = redis.call('TIME')
  now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
else
  now = tonumber(ARGV[5])
end

local space = string.find(state, ' ', 1, true)
local tokens = tonumber(string.sub(state, 1, space - 1))
local at = tonumber(string.sub(state, space + 1))
local elapsed = now - at
if elapsed > 0 then
  tokens = math.min(tokens + elapsed * refill_per_ms, capacity)
end
if now > at then
  at = now
end
if tokens >= new_capacity then
  -- Full at the new capacity (or above it, cut down): what a missing bucket stands for.
  redis.call('DEL', KEYS[1])
  return 1
end
local full_in_ms = math.max(1, math.ceil((new_capacity - tokens) / new_refill_per_ms))
redis.call('SET', KEYS[1], string.format('%.17g %.17g', tokens, at), 'PX', full_in_ms)
return 1
