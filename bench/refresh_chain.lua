-- Refresh chains (the RSS run of bench/load.py): starts from the refresh
-- bodies of BENCH_BODIES (`{"refresh_token": …}`, one per line, from
-- mint.lua) and spends each refresh token once, queueing the successor of
-- every 200 answer, so a fixed pool of sessions rotates for as long as wrk
-- runs (the store's state stays bounded: a rotation rewrites its record).
-- With no token ready (all in flight) it asks for /healthz instead.
dofile(os.getenv("BENCH_DIR") .. "/wrk_common.lua")
local pool = {}
local head, tail = 1, 0
local headers = { ["Content-Type"] = "application/json" }
-- queues the refresh token of a JSON text (a minted body or a 200 answer)
local function push(text)
  local t = string.match(text, '"refresh_token":"([^"]+)"')
  if t then
    tail = tail + 1
    pool[tail] = t
  end
end
init = function(args)
  for line in io.lines(os.getenv("BENCH_BODIES")) do
    push(line)
  end
end
request = function()
  if head > tail then
    return wrk.format("GET", "/healthz")
  end
  local t = pool[head]
  pool[head] = nil
  head = head + 1
  return wrk.format("POST", nil, headers, '{"refresh_token":"' .. t .. '"}')
end
response = function(status, headers, body)
  if status == 200 then
    push(body)
  end
end
done = function(summary, latency, requests) report(summary, latency) end
