-- POST /otp/request with a fresh identity per request (load-r<N>).
dofile(os.getenv("BENCH_DIR") .. "/wrk_common.lua")
local headers = { ["Content-Type"] = "application/json" }
local i = 0
request = function()
  i = i + 1
  return wrk.format("POST", nil, headers, '{"identity":"load-r' .. i .. '"}')
end
done = function(summary, latency, requests) report(summary, latency) end
