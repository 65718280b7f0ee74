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
-- ARGV[6]  adaptive decreaseFactor, or "" when not adaptive
-- ARGV[7]  adaptive minRefillRatio (with ARGV[6])
-- ARGV[8]  adaptive recoveryMs (with ARGV[6])
--
-- A throttle slowing the key stays: the key recovers from it towards its new rate, as in the
-- memory limiter.
--
-- Returns 1

if redis.replicate_commands then
  redis.replicate_commands()
end

local own_capacity, refill_per_ms = own_limits(KEYS[2])
local capacity = tonumber(own_capacity)
if not own_capacity then
  capacity, refill_per_ms = tonumber(ARGV[1]), tonumber(ARGV[2])
end

if ARGV[3] == '' and not own_capacity then
  -- Already at the configured limits: nothing changes.
  return 1
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

local now = now_ms(ARGV[5])

local tokens, at, w, throttled_at = parse_bucket(state)
local rate = refill_per_ms
local beta, k
if w then
  if ARGV[6] == '' then
    w = nil
  else
    beta = tonumber(ARGV[6])
    k = tonumber(ARGV[8])
    rate = cubic_rate(w, now - throttled_at, beta, k, refill_per_ms * tonumber(ARGV[7]),
      refill_per_ms)
    if rate == refill_per_ms then
      w = nil
    end
  end
end
local elapsed = now - at
if elapsed > 0 then
  tokens = math.min(tokens + elapsed * rate, capacity)
end
if now > at then
  at = now
end
tokens = math.min(tokens, new_capacity)
if not w and tokens >= new_capacity then
  -- Full at the new capacity (or above it, cut down): what a missing bucket stands for.
  redis.call('DEL', KEYS[1])
  return 1
end
local ttl
if w then
  ttl = throttled_ttl(tokens, new_capacity, w, throttled_at, now, beta, k,
    new_refill_per_ms * tonumber(ARGV[7]), new_refill_per_ms)
else
  ttl = math.max(1, math.ceil((new_capacity - tokens) / new_refill_per_ms))
end
write_bucket(KEYS[1], tokens, at, w, throttled_at, ttl)
return 1
