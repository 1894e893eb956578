#!/usr/bin/env python3
"""What each step of a Redis store script costs redis-server (issue 17).

Starts redis-server 7 under `valgrind --tool=callgrind` (collection off) on
a free loopback port, and for each variant below loads a small Lua script,
runs it `--calls` times with `EVALSHA` (10 fresh keys per call, so a write
creates its key as a first event of a fresh identity does) and prints the
instructions redis-server executed per call, and per step: (variant -
baseline) / 10, where the baseline is the same call running an empty loop.
Instruction counts are repeatable whatever else the machine is doing, so
two variants of a script step can be compared in one run; they do not count
cache misses, so a step that touches a big keyspace costs more in time
than here.

The steps are the ones the store's scripts (crates/otp-ratelimit/src/redis.rs)
are made of: a limit window is ZCARD + ZADD + PEXPIRE on a fresh key, a
failure count INCR + PEXPIRE, a use counter GET; `int()` is string.format.

    python3 bench/redis_lua_cost.py [--calls 1000]
"""
import argparse
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load  # noqa: E402  (free_port)
from profile import totals  # noqa: E402  (a callgrind dump's total)
from redis_profile import resp  # noqa: E402  (the RESP reader)


def command(*args: bytes | str) -> bytes:
    """One command in RESP (what redis-cli sends)."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Client:
    """One connection; replies parsed by redis_profile's RESP reader."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.f = self.sock.makefile("rb")

    def cmd(self, *args):
        self.sock.sendall(command(*args))
        return resp(self.f)


# (name, Lua run for k = KEYS[j], j = 1..10). Every variant gets 10 fresh
# keys per call; "existing key" steps first create the key in the same
# loop, and their cost is the difference of two rows.
STEPS = [
    ("baseline: empty loop over 10 keys", ""),
    ("TIME", "redis.call('TIME')"),
    ("GET, missing key", "redis.call('GET', k)"),
    ("ZCARD, missing key", "redis.call('ZCARD', k)"),
    ("ZADD, fresh key", "redis.call('ZADD', k, '1733000000000000', 'tag')"),
    ("ZADD + PEXPIRE, fresh key", "redis.call('ZADD', k, '1733000000000000', 'tag') "
                                  "redis.call('PEXPIRE', k, '60000')"),
    ("INCR, fresh key", "redis.call('INCR', k)"),
    ("INCR + PEXPIRE, fresh key", "redis.call('INCR', k) redis.call('PEXPIRE', k, '60000')"),
    ("SET PX, fresh key", "redis.call('SET', k, '1', 'PX', '60000')"),
    ("HSET one field, fresh key", "redis.call('HSET', k, 'f', '1')"),
    ("MGET of 2 missing keys", "redis.call('MGET', k, KEYS[11 - j])"),
    ("string.format('%d', n)", "local s = string.format('%d', 1733000000000000 + j)"),
    ("string concatenation (key .. n)", "local s = k .. j"),
    # An identity's three verify windows on a fresh identity, as layout 3
    # keeps them (a key each: ZCARD, ZADD, PEXPIRE) and as the score-band
    # design of docs/benchmarks.md would (one key: a ZCOUNT per band, one
    # ZADD of three pairs, one PEXPIRE); not built in the store.
    ("3 windows, a key each (layout 3)",
     "for _, w in ipairs({':a', ':b', ':c'}) do local kw = k .. w "
     "redis.call('ZCARD', kw) redis.call('ZADD', kw, '1733000000000', 'tag') "
     "redis.call('PEXPIRE', kw, '86400000') end"),
    ("3 windows, one key in score bands",
     "redis.call('ZCOUNT', k, '4398046511104', '4398046511105') "
     "redis.call('ZCOUNT', k, '8796093022208', '8796093022209') "
     "redis.call('ZCOUNT', k, '13194139533312', '13194139533313') "
     "redis.call('ZADD', k, '4398046511105', 't1', '8796093022209', 't2', '13194139533313', 't3') "
     "redis.call('PEXPIRE', k, '86400000')"),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=1000, help="EVALSHA calls per variant (default 1000)")
    a = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="otp-lua-cost-")) / "callgrind.out"
    port = load.free_port()
    p = subprocess.Popen(["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
                          "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ctl = lambda *args: subprocess.run(["callgrind_control", *args, str(p.pid)], check=True, capture_output=True)
    try:
        deadline = time.time() + 60
        while True:
            try:
                c = Client(port)
                c.cmd("PING")
                break
            except OSError:
                if time.time() > deadline:
                    raise RuntimeError("redis-server did not start under valgrind")
                time.sleep(0.2)
        print(f"redis-server {c.cmd('INFO', 'server').decode().split('redis_version:')[1].split()[0]} "
              f"under callgrind; {a.calls} EVALSHA calls per variant, 10 fresh keys each")
        base = None
        for n, (name, step) in enumerate(STEPS):
            sha = c.cmd("SCRIPT", "LOAD", f"for j = 1, 10 do local k = KEYS[j] {step} end return 1")
            if not (isinstance(sha, bytes) and len(sha) == 40):
                raise RuntimeError(f"SCRIPT LOAD of {name!r} answered {sha!r}")
            keys = lambda i: [f"otp:cost:{{{n:02d}{i:030x}}}:{j}" for j in range(10)]
            for i in range(20):  # warm-up: the script compiled, the allocator settled
                c.cmd("EVALSHA", sha, 10, *keys(a.calls + i))
            ctl("-z")
            ctl("-i", "on")
            for i in range(a.calls):
                # each script returns the integer 1; anything else is an error reply
                if (r := c.cmd("EVALSHA", sha, 10, *keys(i))) != 1:
                    raise RuntimeError(f"{name!r} answered {r!r}")
            ctl("-i", "off")
            ctl("-d")
            dump = max(out.parent.glob(out.name + ".*"), key=lambda f: f.stat().st_mtime)
            per_call = totals(dump)[0] / a.calls
            dump.unlink()
            if base is None:
                base = per_call
                print(f"  {name:<36} {per_call:9,.0f} instructions per EVALSHA")
            else:
                print(f"  {name:<36} {(per_call - base) / 10:9,.0f} instructions per step")
        return 0
    finally:
        p.kill()
        p.wait()


if __name__ == "__main__":
    sys.exit(main())
