-- POST the JSON bodies of BENCH_BODIES (one per line) in turn, wrapping
-- around at the end. Each body is formatted once at start-up.
dofile(os.getenv("BENCH_DIR") .. "/wrk_common.lua")
local reqs = {}
local n = 0
local i = 0
init = function(args)
  local headers = { ["Content-Type"] = "application/json" }
  for line in io.lines(os.getenv("BENCH_BODIES")) do
    n = n + 1
    reqs[n] = wrk.format("POST", nil, headers, line)
  end
end
request = function()
  i = i + 1
  if i > n then i = 1 end
  return reqs[i]
end
done = function(summary, latency, requests) report(summary, latency) end
