-- Slows one token bucket after the server throttled it, for every process sharing it, in one
-- atomic step: the memory limiter's `throttled` (src/memory/token-bucket.ts), step for step.
-- The key's effective refill drops to decreaseFactor times its current one (never below the
-- floor), recovers along cubic_rate (token-bucket-adaptive.lua), and the bucket is emptied for
-- `hold` milliseconds at the lowered rate (a Retry-After, already capped by the caller).
--
-- KEYS[1]  the bucket (see token-bucket.lua)
-- KEYS[2]  the key's own limits, "<capacity> <refill per ms>" (see token-bucket-rate.lua)
-- ARGV[1]  configured capacity (tokens)
-- ARGV[2]  configured refill (tokens per millisecond)
-- ARGV[3]  now in milliseconds from the client's clock, or "" to use the server's TIME
-- ARGV[4]  decreaseFactor
-- ARGV[5]  minRefillRatio
-- ARGV[6]  recoveryMs
-- ARGV[7]  throttleWindowMs: a throttle within this long of the last one is the same one
-- ARGV[8]  hold: milliseconds to keep the bucket empty (0: empty it, refilling at once)
--
-- Returns 1 when the rate was lowered, 0 when the throttle fell in the last one's window

if redis.replicate_commands then
  redis.replicate_commands()
end

local own_capacity, refill_per_ms = own_limits(KEYS[2])
local capacity = tonumber(own_capacity)
if not own_capacity then
  capacity, refill_per_ms = tonumber(ARGV[1]), tonumber(ARGV[2])
end

local now = now_ms(ARGV[3])

local beta = tonumber(ARGV[4])
local floor = refill_per_ms * tonumber(ARGV[5])
local k = tonumber(ARGV[6])

local tokens, at, w, throttled_at
local state = redis.call('GET', KEYS[1])
if state then
  tokens, at, w, throttled_at = parse_bucket(state)
else
  tokens = capacity
  at = now
end
if w and now - throttled_at < tonumber(ARGV[7]) then
  return 0
end

local rate = refill_per_ms
if w then
  rate = cubic_rate(w, now - throttled_at, beta, k, floor, refill_per_ms)
end
local next_rate = math.max(rate * beta, floor)
if now > at then
  at = now
end
tokens = -tonumber(ARGV[8]) * next_rate
write_bucket(KEYS[1], tokens, at, rate, now,
  throttled_ttl(tokens, capacity, rate, now, now, beta, k, floor, refill_per_ms))
return 1
