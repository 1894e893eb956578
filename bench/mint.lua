-- Sign-in ahead of the refresh scenarios (not measured): POST the verify
-- bodies of BENCH_BODIES (one per line, each pair once, no wrap-around) and
-- write one refresh body per 200 answer to BENCH_MINT_OUT,
-- `{"refresh_token":"<token>"}`, so every measured refresh spends a fresh
-- refresh token. With BENCH_MINT_ACCESS_OUT, the access tokens go to that
-- file too, one per line (bench/get_many.lua). Stops sending after the last
-- body.
dofile(os.getenv("BENCH_DIR") .. "/wrk_common.lua")
local reqs = {}
local n = 0
local i = 0
local out = nil
local access_out = nil
init = function(args)
  local headers = { ["Content-Type"] = "application/json" }
  for line in io.lines(os.getenv("BENCH_BODIES")) do
    n = n + 1
    reqs[n] = wrk.format("POST", nil, headers, line)
  end
  out = io.open(os.getenv("BENCH_MINT_OUT"), "w")
  local access = os.getenv("BENCH_MINT_ACCESS_OUT")
  if access and access ~= "" then
    access_out = io.open(access, "w")
  end
end
request = function()
  i = i + 1
  if i > n then
    -- all pairs spent: ask for something harmless until wrk's time is up
    return wrk.format("GET", "/healthz")
  end
  return reqs[i]
end
response = function(status, headers, body)
  if status == 200 then
    local t = string.match(body, '"refresh_token":"([^"]+)"')
    if t then
      -- flushed at once: the harness stops wrk with SIGINT when enough
      -- tokens are written, and a thread's buffers are never flushed then
      out:write('{"refresh_token":"', t, '"}\n')
      out:flush()
    end
    local a = access_out and string.match(body, '"access_token":"([^"]+)"')
    if a then
      access_out:write(a, "\n")
      access_out:flush()
    end
  end
end
done = function(summary, latency, requests)
  report(summary, latency)
end
