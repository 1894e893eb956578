-- wrk script of bench/soak.sh: a paced mix of the four API calls a deployed
-- service sees, with every response's status counted.
--   70% GET  /api/v1/token/verify   (valid bearer)      -> 200
--   10% POST /api/v1/otp/request    (random identity of SOAK_IDENTITIES) -> 200
--   10% POST /api/v1/otp/verify     (wrong code)        -> 400, then 429 once
--        the identity's daily verify limit (30) is spent
--   10% POST /api/v1/token/introspect (valid token)     -> 200
-- Pacing: each connection waits SOAK_DELAY_MS between requests (wrk's
-- delay() hook), so the rate is about connections * 1000 / (delay + latency).
-- 429 is counted apart (bench/soak.sh checks from the server's metrics that
-- it only ever comes from /otp/verify); anything else is unexpected.

local token = os.getenv("SOAK_TOKEN")
local delay_ms = tonumber(os.getenv("SOAK_DELAY_MS") or "1")
local pool = tonumber(os.getenv("SOAK_IDENTITIES") or "10000")
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

function init(args)
  n = 0
  ok = 0
  bad400 = 0
  s429 = 0
  unexpected = 0
  seen = {}
  math.randomseed(id * 7919 + os.time())
end

function delay()
  return delay_ms
end

request = function()
  n = n + 1
  local k = n % 10
  if k < 7 then
    return wrk.format("GET", "/api/v1/token/verify",
      { ["Authorization"] = "Bearer " .. token })
  end
  local ident = "soak" .. math.random(pool) .. "@example.com"
  local h = { ["Content-Type"] = "application/json" }
  if k == 7 then
    return wrk.format("POST", "/api/v1/otp/request", h,
      '{"identity":"' .. ident .. '"}')
  elseif k == 8 then
    return wrk.format("POST", "/api/v1/otp/verify", h,
      '{"identity":"' .. ident .. '","otp":"000000"}')
  else
    return wrk.format("POST", "/api/v1/token/introspect", h,
      '{"token":"' .. token .. '"}')
  end
end

response = function(status, headers, body)
  if status == 200 then
    ok = ok + 1
  elseif status == 400 then
    bad400 = bad400 + 1
  elseif status == 429 then
    s429 = s429 + 1
  else
    unexpected = unexpected + 1
    seen[status] = (seen[status] or 0) + 1
  end
end

function done(summary, latency, requests)
  local ok_t, b_t, l_t, u_t = 0, 0, 0, 0
  local codes = {}
  for _, t in ipairs(threads) do
    ok_t = ok_t + t:get("ok")
    b_t = b_t + t:get("bad400")
    l_t = l_t + t:get("s429")
    u_t = u_t + t:get("unexpected")
  end
  local e = summary.errors
  io.write(string.format(
    'SOAKJSON {"requests":%d,"duration_us":%d,"ok":%d,"s400":%d,"s429":%d,"unexpected":%d,' ..
    '"connect":%d,"read":%d,"write":%d,"timeout":%d,"p50":%d,"p90":%d,"p99":%d,' ..
    '"p999":%d,"max":%d}\n',
    summary.requests, summary.duration, ok_t, b_t, l_t, u_t, e.connect, e.read, e.write,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
