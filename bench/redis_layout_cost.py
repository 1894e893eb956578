#!/usr/bin/env python3
"""What a fresh identity's wrong-code decision would cost redis-server with
fewer keys per identity (issue 17, docs/benchmarks.md "Redis: where
redis-server's time goes").

A wrong code of a fresh identity makes today's decision script (layout 3,
crates/otp-ratelimit/src/redis.rs) create five keys: three limit windows
(sorted sets) and two use states (integers), each also in Redis' expiry
table, beside the client IP's window that exists already. This runs
scripts of three shapes made of the same steps in the same order, each against a private
redis-server pinned to CPU 0, with a fresh identity per call and one
shared per-IP key (pipelined in batches of 32, as the server's
multiplexed connection batches them), and prints redis-server's CPU per
call (utime+stime from /proc/PID/stat) and the keys left:

- `layout 3`: the identity's windows and use states as five keys;
- `folded`: the identity's windows as score bands of one sorted set
  (band × 2^42 + ms; once the key holds events, each band trimmed with
  `ZREMRANGEBYSCORE` and counted with `ZCOUNT` over its live range; one
  `ZADD` of the three events, one expiry) and its use states as fields of
  one hash (`HINCRBY`, the expiry set when the hash is created, as
  layout 3 sets a use state's): two keys;
- `folded, counted only`: the same without the bands' trims (each band
  still counted with `ZCOUNT` over its live range), the least a fold
  costs once the identity's keys hold events.

These are shapes of the work, not the store's scripts: no packed
arguments, no reply. They price the lever a key layout 4 would pull;
they decide none of its questions (scoped windows sharing one key
collision-free, pruning old use-state fields, expiries that never
shorten, Cluster slots).

With `--pool N` the calls cycle over N identities, so after the first pass
every identity's keys exist and hold events (the trims and counts run).
The shapes enforce no limit: each window ends up with calls / N events
(the store's limits keep a real one at its `max`, 10–100 by default), and
the per-IP window is 1 s (600 s by default), which both shapes share.

    python3 bench/redis_layout_cost.py [--calls 150000] [--rounds 3] [--pool N]
"""
import argparse
import os
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load  # noqa: E402  (the harness's redis-server and CPU ticks)
from redis_lua_cost import command  # noqa: E402  (RESP encoding)

PROLOGUE = r"""
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ms = math.floor(now / 1000)
local function int(n) return string.format('%d', n) end
"""

# KEYS: the per-IP window, the identity's three windows, its two use states.
LAYOUT_3 = PROLOGUE + r"""
local wins = {1000, 600000, 86400000, 86400000}
for i = 1, 4 do
  if redis.call('ZCARD', KEYS[i]) > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', int(now - wins[i] * 1000))
  end
end
for i = 1, 4 do
  redis.call('ZADD', KEYS[i], int(now), ARGV[1])
  redis.call('PEXPIREAT', KEYS[i], int(ms + 1 + wins[i]))
end
for i = 5, 6 do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('PEXPIREAT', KEYS[i], int(ms + 900000)) end
end
return 1
"""

# KEYS: the per-IP window, the identity's banded windows, its use states.
FOLDED = PROLOGUE + r"""
if redis.call('ZCARD', KEYS[1]) > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', int(now - 1000000))
end
local B = 4398046511104
local wins = {600000, 86400000, 86400000}
if redis.call('ZCARD', KEYS[2]) > 0 then
  for b = 1, 3 do
    redis.call('ZREMRANGEBYSCORE', KEYS[2], int(b * B), '(' .. int(b * B + ms - wins[b]))
    redis.call('ZCOUNT', KEYS[2], '(' .. int(b * B + ms - wins[b]), int(b * B + ms))
  end
end
redis.call('ZADD', KEYS[1], int(now), ARGV[1])
redis.call('PEXPIREAT', KEYS[1], int(ms + 1 + 1000))
redis.call('ZADD', KEYS[2], int(B + ms), '1' .. ARGV[1], int(2 * B + ms), '2' .. ARGV[1],
           int(3 * B + ms), '3' .. ARGV[1])
redis.call('PEXPIREAT', KEYS[2], int(ms + 1 + 86400000))
local created = redis.call('HINCRBY', KEYS[3], 'a', 1) == 1
redis.call('HINCRBY', KEYS[3], 'b', 1)
if created then redis.call('PEXPIREAT', KEYS[3], int(ms + 900000)) end
return 1
"""

# The folded shape counting each band without trimming it (a trim left to
# the rare call that finds the set too big; not done here): the lower bound
# of the fold's work for an identity whose keys hold events.
FOLDED_COUNT_ONLY = FOLDED.replace(
    "    redis.call('ZREMRANGEBYSCORE', KEYS[2], int(b * B), '(' .. int(b * B + ms - wins[b]))\n", "")

SHAPES = {
    "layout 3": (LAYOUT_3, lambda h: ["ip", f"{h}:rl:v", f"{h}:rl:d", f"{h}:rl:dn", f"{h}:n:1", f"{h}:n:2"]),
    "folded": (FOLDED, lambda h: ["ip", f"{h}:rl", f"{h}:n"]),
    "folded, counted only": (FOLDED_COUNT_ONLY, lambda h: ["ip", f"{h}:rl", f"{h}:n"]),
}


def run(h: "load.Harness", shape: str, calls: int, pool: int = 0, batch: int = 32) -> tuple[float, int]:
    """redis-server's CPU µs per call of `shape`, and the keys it left; with
    `pool`, the calls cycle over that many identities instead of a fresh
    one each. A fresh redis-server of the harness's (on `--redis-cpu`,
    CPU 0) per run."""
    src, keys_of = SHAPES[shape]
    rp, url = h.start_redis()
    try:
        s = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=60)
        f = s.makefile("rb")
        s.sendall(command("SCRIPT", "LOAD", src))
        f.readline()
        sha = f.readline()[:-2]
        t0 = load.cpu_ticks([rp.pid])
        sent = 0
        while sent < calls:
            n = min(batch, calls - sent)
            s.sendall(b"".join(command("EVALSHA", sha, len(k), *k, f"t{i}")
                               for i in range(sent, sent + n) for k in [keys_of(f"{{{i % (pool or calls):016x}}}")]))
            for _ in range(n):
                line = f.readline()
                if not line.startswith(b":"):
                    raise RuntimeError(f"{shape}: {line!r}")
            sent += n
        us = (load.cpu_ticks([rp.pid]) - t0) / os.sysconf("SC_CLK_TCK") / calls * 1e6
        s.sendall(command("DBSIZE"))
        return us, int(f.readline()[1:])
    finally:
        h.stop(rp)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=150_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--pool", type=int, default=0,
                    help="cycle over this many identities (their keys exist after the first pass) "
                         "instead of a fresh identity per call")
    a = ap.parse_args()
    h = load.Harness(argparse.Namespace(redis_cpu=load.SERVER_CPU, redis_socket="tcp",
                                        target_dir=str(load.ROOT / "target"), profile="release"))
    try:
        for r in range(a.rounds):
            for shape in SHAPES:
                us, keys = run(h, shape, a.calls, a.pool)
                print(f"round {r + 1}  {shape:21} {us:6.2f} µs of redis-server CPU per call, "
                      f"{keys:,} keys after {a.calls:,} calls", flush=True)
        return 0
    finally:
        h.cleanup()


if __name__ == "__main__":
    sys.exit(main())
