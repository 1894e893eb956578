#!/usr/bin/env python3
"""The framework floor of forward auth (docs/benchmarks.md): nginx, the
cheapest answer of an actix-web `App` and of an actix-http service (the
layer of otp-http's fast lane, bench/floor/), and otp-server's forward auth
(bearer, one token), in alternating rounds, each on CPU 0 with wrk on CPU 1
as in bench/load.py. Prints req/s, the ratio to nginx of the same round and
the server's user and system CPU per request (/proc/PID/stat).

Usage:
    python3 bench/floor.py                 # build bench/floor, 3 rounds of 8 s
    python3 bench/floor.py --rounds 1 --duration 5 --no-build
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load  # noqa: E402  (the harness's processes, wrk and token helpers)


def ticks(pids: list[int]) -> tuple[int, int]:
    user = system = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        user += int(fields[11])
        system += int(fields[12])
    return user, system


def measure(h: load.Harness, url: str, env: dict, pids: list[int], seconds: float) -> dict:
    h.wrk(url, "get.lua", env, 1)
    u0, s0 = ticks(pids)
    w = h.wrk(url, "get.lua", env, seconds)
    u1, s1 = ticks(pids)
    n = max(w["requests"], 1)
    per = lambda t: t / load.CLK_TCK * 1e6 / n
    return {"rps": w["requests"] / (w["duration_us"] / 1e6), "user": per(u1 - u0),
            "sys": per(s1 - s0), "p99_ms": w["p99"] / 1000}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=8.0)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--target-dir", default=str(load.ROOT / "target"))
    a = ap.parse_args()
    floor = Path(a.target_dir) / "floor" / "release" / "otp-bench-floor"
    server = Path(a.target_dir) / "release" / "otp-server"
    if not a.no_build:
        for cmd in (["cargo", "build", "--release", "--manifest-path", str(load.BENCH / "floor" / "Cargo.toml"),
                     "--target-dir", str(Path(a.target_dir) / "floor")],
                    ["cargo", "build", "--release", "-p", "otp-server"]):
            subprocess.run(cmd, cwd=load.ROOT, check=True)
    args = argparse.Namespace(target_dir=a.target_dir, profile="release", workers=1, connections=64,
                              redis_cpu=load.SERVER_CPU, warmup=1, duration=a.duration)
    h = load.Harness(args)
    print(f"{'round':<6}{'server':<34}{'req/s':>10}{'x nginx':>9}{'user us':>9}{'sys us':>8}{'p99 ms':>8}")
    try:
        for rnd in range(1, a.rounds + 1):
            ng, url = h.start_nginx()
            base = measure(h, url + "/", {"BENCH_TOKEN": ""}, [ng.pid] + load.children(ng.pid), a.duration)
            h.stop(ng)
            rows = [("nginx return 200", base)]
            for mode, label in (("app", "actix-web App, fixed answer"), ("lane", "actix-http service, fixed answer")):
                port = load.free_port()
                p = h.start([str(floor), mode, f"127.0.0.1:{port}"], cpu=load.SERVER_CPU)
                h.wait_http(f"http://127.0.0.1:{port}/", p)
                rows.append((label, measure(h, f"http://127.0.0.1:{port}/api/v1/token/verify",
                                            {"BENCH_TOKEN": "x" * 220}, [p.pid], a.duration)))
                h.stop(p)
            p, surl, _ = h.start_server({})
            tok = h.fetch_token(surl, "load-user")
            rows.append(("otp-server forward auth (bearer)",
                         measure(h, surl + "/api/v1/token/verify", {"BENCH_TOKEN": tok}, [p.pid], a.duration)))
            h.stop(p)
            for label, r in rows:
                print(f"{rnd:<6}{label:<34}{r['rps']:>10.0f}{r['rps'] / base['rps']:>9.2f}"
                      f"{r['user']:>9.2f}{r['sys']:>8.2f}{r['p99_ms']:>8.3f}", flush=True)
    finally:
        h.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
