#!/usr/bin/env python3
"""Where the CPU of a route goes (the "Profile" section of docs/benchmarks.md).

Two tools, both on the release `otp-server` (`debug = 1` keeps symbols),
WORKERS=1, the memory store, limits raised as in bench/load.py:

- `callgrind`: the server runs under `valgrind --tool=callgrind` with
  collection off; after a warm-up the harness switches it on
  (`callgrind_control -i on`), drives the route with wrk for a few seconds,
  dumps (`callgrind_control -d`) and divides the instructions by the
  responses the server counted in `/metrics`. Instruction counts are
  repeatable on a busy machine; valgrind does not emulate SHA-NI, so SHA-256
  weighs more than natively. Prints instructions per request and the top
  functions (inclusive and exclusive).
- `perf`: `perf record -F 999 -g` (software cpu-clock: this VM has no
  hardware counters) on the pinned server during a wrk run; prints the top
  symbols by self samples, kernel included.
  With `--dwarf` it records call chains (`--call-graph dwarf`, 499 Hz; the
  release build has no frame pointers) and also prints the inclusive share
  of our functions; the kernel's share of the samples is printed either way.

Routes: `bearer` and `cookie` (GET /api/v1/token/verify, one token),
`bearer_many` (1 000 distinct tokens in turn: no cache hits), `verify_wrong`,
`verify_right` (POST /api/v1/otp/verify), `refresh` (POST /api/v1/token/refresh).

`--redis` runs the server with `STORE_BACKEND=redis` against a redis-server
of its own (pinned with the server, as in bench/load.py) and, for
callgrind, also counts redis-server's instructions per request (a second
valgrind around redis-server, switched on and dumped with the server's), so
both halves of a Redis-backed route are in instructions. With
`--native-redis` redis-server runs outside valgrind: only otp-server's
instructions are counted, which is what a change to the store's client
side moves (and under load a valgrinded redis-server makes the server time
out).

Usage:
    python3 bench/profile.py --tool callgrind --routes bearer,cookie,verify_right,refresh
    python3 bench/profile.py --tool perf --routes bearer --seconds 10
    python3 bench/profile.py --tool callgrind --redis --routes verify_wrong,verify_right
    python3 bench/profile.py --tool callgrind --redis --native-redis --routes verify_wrong
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load  # noqa: E402  (the harness's helpers: processes, codes, wrk)

ROUTES = {
    "bearer": "/api/v1/token/verify",
    "cookie": "/api/v1/token/verify",
    "bearer_many": "/api/v1/token/verify",
    "verify_wrong": "/api/v1/otp/verify",
    "verify_right": "/api/v1/otp/verify",
    "refresh": "/api/v1/token/refresh",
    # the cheapest route through the actix-web App and its middlewares
    "healthz": "/healthz",
}


def start(h: load.Harness, tool: str, out: Path, extra: dict) -> tuple[load.Proc, str]:
    port = load.free_port()
    argv = [str(h.binary), "serve", "--bind", f"127.0.0.1:{port}"]
    if tool == "callgrind":
        argv = ["valgrind", "--tool=callgrind", "--instr-atstart=no",
                f"--callgrind-out-file={out}"] + argv
    p = h.start(argv, env=h.server_env(extra), cpu=load.SERVER_CPU)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if load.http("GET", url + "/healthz")[0] == 200:
                return p, url
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


def server_pid(p: load.Proc, tool: str) -> int:
    # taskset execs its command: the process is the server (or valgrind)
    return p.pid


def load_for(h: load.Harness, route: str, url: str, count: int) -> tuple[str, dict]:
    """wrk script and environment driving `route`."""
    if route == "bearer":
        return "get.lua", {"BENCH_TOKEN": h.fetch_token(url, "prof-user")}
    if route == "healthz":
        return "get.lua", {"BENCH_TOKEN": ""}
    if route == "cookie":
        return "get.lua", {"BENCH_COOKIE": h.fetch_token(url, "prof-cookie-user")}
    prefix = f"prof-{route}-{int(time.time())}"
    if route == "bearer_many":
        toks = h.tmp / f"{prefix}-access.txt"
        h.mint_refresh_tokens(url, prefix, 1000, access=toks)
        return "get_many.lua", {"BENCH_TOKENS": str(toks)}
    if route in ("verify_wrong", "verify_right"):
        return "post_bodies.lua", {"BENCH_BODIES": str(h.bodies(prefix, count, route == "verify_right"))}
    if route == "refresh":
        return "post_bodies.lua", {"BENCH_BODIES": str(h.mint_refresh_tokens(url, prefix, count))}
    raise SystemExit(f"unknown route {route}")


def start_redis_callgrind(h: load.Harness, out: Path) -> tuple[load.Proc, str]:
    """redis-server under callgrind (collection off), pinned like the server."""
    return h.start_redis(("valgrind", "--tool=callgrind", "--instr-atstart=no",
                          f"--callgrind-out-file={out}"), wait=60)


def totals(dump: Path) -> tuple[int, str]:
    """Total instructions of a callgrind dump, and its exclusive annotation."""
    ann = subprocess.run(["callgrind_annotate", "--inclusive=no", str(dump)], capture_output=True,
                         text=True).stdout
    m = re.search(r"([\d,]+) \(100.0%\)\s+PROGRAM TOTALS", ann) or re.search(r"([\d,]+)\s+PROGRAM TOTALS", ann)
    if not m:
        raise RuntimeError(f"no totals in callgrind_annotate output of {dump}: {ann[:1500]}")
    return int(m.group(1).replace(",", "")), ann


def latest(out: Path) -> Path:
    return sorted(out.parent.glob(out.name + "*"), key=lambda f: f.stat().st_size)[-1]


def callgrind(h: load.Harness, route: str, a) -> None:
    out = Path(tempfile.mkdtemp(prefix="otp-prof-")) / "callgrind.out"
    rout = out.parent / "redis.callgrind.out"
    extra, rp = {}, None
    if a.redis and a.native_redis:
        # only otp-server under valgrind: its own instructions per request
        # (the client side of the Redis store), with room for its slowness
        _, rurl = h.start_redis()
        extra = {"STORE_BACKEND": "redis", "REDIS_URL": rurl, "REDIS_TIMEOUT_MS": "5000"}
    elif a.redis:
        rp, rurl = start_redis_callgrind(h, rout)
        extra = {"STORE_BACKEND": "redis", "REDIS_URL": rurl, "REDIS_TIMEOUT_MS": "5000"}
    p, url = start(h, "callgrind", out, extra)
    pids = [p.pid] + ([rp.pid] if rp else [])
    try:
        script, env = load_for(h, route, url, a.count)
        before = h.metrics(url, ROUTES[route])
        for pid in pids:
            subprocess.run(["callgrind_control", "-i", "on", str(pid)], check=True, capture_output=True)
        w = h.wrk(url + ROUTES[route], script, env, a.seconds)
        for pid in pids:
            subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)
            subprocess.run(["callgrind_control", "-i", "off", str(pid)], check=True, capture_output=True)
        after = h.metrics(url, ROUTES[route])
    finally:
        h.stop(p)
        if rp:
            h.stop(rp)
    served = sum(after.values()) - sum(before.values())
    dump = latest(out)
    total, ann = totals(dump)
    backend = " on Redis" if a.redis else ""
    print(f"\n== {route}{backend} (callgrind): {served} responses {dict((k, after.get(k, 0) - before.get(k, 0)) for k in after)}, "
          f"wrk {w['requests']}; {total:,} instructions = {total / max(served, 1):,.0f} per request")
    if rp:
        rtotal, _ = totals(latest(rout))
        print(f"   redis-server: {rtotal:,} instructions = {rtotal / max(served, 1):,.0f} per request")
    print(top(ann, a.top, "self"))
    inc = subprocess.run(["callgrind_annotate", "--inclusive=yes", str(dump)], capture_output=True,
                         text=True).stdout
    print(top(inc, a.top, "inclusive, our code and the HTTP/JSON layers", INTERESTING))
    if a.keep:
        print(f"(dump kept: {dump})")


# The inclusive rows of perf --dwarf: our crates, the JSON and Redis
# clients, the hashes and the send/receive system calls.
OURS = re.compile(r"(otp_|serde_json::(de|ser)::(from|to)_|redis::(aio|script)|sha2::sha256::x86|"
                  r"__libc_(send|recv)|tracing_core::event::Event::dispatch)")
# Inclusive rows worth showing (the framework's frames above the handler
# are ~100 % each and say nothing).
INTERESTING = re.compile(r"otp_|serde_json|h1::(codec|decoder|encoder)|httparse|tracing|prometheus|"
                         r"sha2|ring::|base64|HeaderMap|malloc|mi_free|mio::|redis::|send|recv|write|read")


def top(annotate: str, n: int, kind: str, only: re.Pattern | None = None) -> str:
    rows = []
    for line in annotate.splitlines():
        m = re.match(r"\s*([\d,]+) \(\s*([\d.]+)%\)\s+(\S.*)$", line)
        if m and only is not None and not only.search(m.group(3)):
            continue
        if m and "PROGRAM TOTALS" not in line:
            name = m.group(3)
            name = re.sub(r"^\S*?:", "", name, count=1) if ":" in name.split(" ")[0] else name
            rows.append(f"   {m.group(2):>5}%  {shorten(name)}")
        if len(rows) >= n:
            break
    return f"  top {n} ({kind}):\n" + "\n".join(rows)


def shorten(name: str) -> str:
    name = re.sub(r"<[^<>]*>", "<…>", name)
    name = re.sub(r"<[^<>]*>", "<…>", name)
    return name[:150]


def perf(h: load.Harness, route: str, a) -> None:
    extra = {}
    if a.redis:
        _, rurl = h.start_redis()
        extra = {"STORE_BACKEND": "redis", "REDIS_URL": rurl}
    p, url = start(h, "perf", Path("/dev/null"), extra)
    data = Path(tempfile.mkdtemp(prefix="otp-perf-")) / "perf.data"
    try:
        script, env = load_for(h, route, url, a.count)
        h.wrk(url + ROUTES[route], script, env, 1)  # warm-up
        # --dwarf: call chains unwound from the stack copies (the release
        # build has no frame pointers), at a lower rate: perf's own cost
        graph = ["-F", "499", "--call-graph", "dwarf,16384"] if a.dwarf else ["-F", "999", "-g"]
        rec = subprocess.Popen(["perf", "record", *graph, "-o", str(data), "-p", str(p.pid)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        w = h.wrk(url + ROUTES[route], script, env, a.seconds)
        rec.send_signal(signal.SIGINT)
        rec.wait(timeout=60)
    finally:
        h.stop(p)
    dso = subprocess.run(["perf", "report", "-i", str(data), "--no-children", "--sort", "dso", "--stdio",
                          "-g", "none"], capture_output=True, text=True).stdout
    kernel = sum(float(m.group(1)) for m in re.finditer(r"^\s+([\d.]+)%\s+\[kernel", dso, re.M))
    rep = subprocess.run(["perf", "report", "-i", str(data), "--no-children", "--sort", "symbol",
                          "--stdio", "-g", "none", "--percent-limit", "0.7"],
                         capture_output=True, text=True).stdout
    rows = [l for l in rep.splitlines() if re.match(r"\s+[\d.]+%", l)][: a.top]
    print(f"\n== {route} (perf, {a.seconds:.0f} s, {w['requests'] / (w['duration_us'] / 1e6):,.0f} req/s under perf; "
          f"kernel {kernel:.1f} % of the samples):")
    print("\n".join("  " + shorten(r.strip()) for r in rows))
    if a.dwarf:
        inc = subprocess.run(["perf", "report", "-i", str(data), "--children", "--sort", "symbol", "--stdio",
                              "-g", "none", "--percent-limit", "1"], capture_output=True, text=True).stdout
        seen, out = set(), []
        for line in inc.splitlines():
            m = re.match(r"\s+([\d.]+)%\s+[\d.]+%\s+\[\.\]\s+(.*)$", line)
            if m and OURS.match(m.group(2).lstrip("<")):
                name = shorten(m.group(2).replace(" (inlined)", "").strip())
                if name not in seen:
                    seen.add(name)
                    out.append(f"  {float(m.group(1)):6.2f}%  {name}")
        print("  inclusive (call chains), our code and the HTTP/JSON layers:")
        print("\n".join(out[: a.top]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tool", choices=["callgrind", "perf"], default="callgrind")
    ap.add_argument("--routes", default="bearer,cookie,verify_wrong,verify_right,refresh")
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--count", type=int, default=60_000, help="identities/refresh tokens prepared per POST route")
    ap.add_argument("--top", type=int, default=18)
    ap.add_argument("--keep", action="store_true", help="keep the callgrind dumps")
    ap.add_argument("--dwarf", action="store_true",
                    help="perf: record call chains (dwarf) and print inclusive shares of our functions")
    ap.add_argument("--redis", action="store_true",
                    help="STORE_BACKEND=redis against a redis-server of its own (callgrind: profiled too)")
    ap.add_argument("--native-redis", action="store_true",
                    help="with --redis and callgrind: redis-server runs natively (only otp-server is "
                         "counted; repeatable figures for the client side of the Redis store)")
    ap.add_argument("--target-dir", default=os.environ.get("CARGO_TARGET_DIR", str(load.ROOT / "target")))
    a = ap.parse_args()
    # the harness's options that its helpers read
    a.profile, a.workers, a.duration, a.warmup = "release", 1, a.seconds, 0
    a.redis_cpu, a.redis_socket = load.SERVER_CPU, "tcp"
    h = load.Harness(a)
    if not h.binary.is_file():
        print(f"{h.binary} missing: cargo build --release -p otp-server", file=sys.stderr)
        return 2
    try:
        for route in a.routes.split(","):
            (callgrind if a.tool == "callgrind" else perf)(h, route, a)
    finally:
        h.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
