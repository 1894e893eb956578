-- GET with a fixed bearer token (BENCH_TOKEN) or a fixed session cookie
-- (BENCH_COOKIE: sent as `Cookie: otp_session=<token>`, as a browser behind
-- the web gate sends it, SPEC §11); the request is built once by wrk (no
-- per-request Lua), exactly as for the nginx baseline.
dofile(os.getenv("BENCH_DIR") .. "/wrk_common.lua")
local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end
local cookie = os.getenv("BENCH_COOKIE")
if cookie and cookie ~= "" then
  wrk.headers["Cookie"] = "otp_session=" .. cookie
end
done = function(summary, latency, requests) report(summary, latency) end
