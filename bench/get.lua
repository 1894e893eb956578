-- GET with a fixed bearer token (BENCH_TOKEN); the request is built once by
-- wrk (no per-request Lua), exactly as for the nginx baseline.
dofile(os.getenv("BENCH_DIR") .. "/wrk_common.lua")
local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
done = function(summary, latency, requests) report(summary, latency) end
