-- GET with the bearer tokens of BENCH_TOKENS (one per line) in turn,
-- wrapping around: more distinct tokens than the forward-auth cache holds
-- (256 slots), so every request is verified in full. Each request is
-- formatted once at start-up.
dofile(os.getenv("BENCH_DIR") .. "/wrk_common.lua")
local reqs = {}
local n = 0
local i = 0
init = function(args)
  for line in io.lines(os.getenv("BENCH_TOKENS")) do
    n = n + 1
    reqs[n] = wrk.format("GET", nil, { ["Authorization"] = "Bearer " .. line })
  end
end
request = function()
  i = i + 1
  if i > n then i = 1 end
  return reqs[i]
end
done = function(summary, latency, requests) report(summary, latency) end
