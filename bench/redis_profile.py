#!/usr/bin/env python3
"""Where a Redis-backed POST /api/v1/otp/verify spends Redis's time (issue 17).

Starts redis-server and the release otp-server like bench/load.py (same
harness class, server and Redis on CPU 0, wrk on CPU 1), drives right-code
(default) or wrong-code verifies of fresh identities for --duration seconds,
and prints: req/s, p50/p99, CPU per request of otp-server and of
redis-server, redis-server's reads and writes of its clients per verify
(how well the round trips batch), `INFO commandstats` per verify (calls and µs of EVALSHA and
of every command the scripts run), `redis-cli --latency` (PING under load,
ms: min max avg samples) and, with --slowlog, the SLOWLOG of every command
(threshold 0: median and p90 µs per script, told apart by SHA and key
count; the log itself slows Redis down, so take the split, not the sum).
With --perf, `perf record -g` of otp-server goes to target/redis-profile.data.

    python3 bench/redis_profile.py [--duration 10] [--wrong] [--slowlog] [--perf]
"""
import argparse
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load  # noqa: E402


def resp(f):
    line = f.readline()
    t, rest = line[:1], line[1:-2]
    if t == b"*":
        n = int(rest)
        return None if n < 0 else [resp(f) for _ in range(n)]
    if t == b"$":
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:-2]
    if t == b":":
        return int(rest)
    return rest


def slowlog_summary(port: str) -> None:
    with socket.create_connection(("127.0.0.1", int(port))) as s:
        f = s.makefile("rb")
        s.sendall(b"SLOWLOG GET -1\r\n")
        entries = resp(f)
    by: dict[str, list[int]] = {}
    for e in entries:
        dur, args = e[2], e[3]
        name = args[0].decode().upper()
        if name == "EVALSHA":
            name = f"EVALSHA {args[1].decode()[:8]} keys={args[2].decode()}"
        by.setdefault(name, []).append(dur)
    for k, v in sorted(by.items(), key=lambda kv: -sum(kv[1])):
        v.sort()
        print(f"  {k:<32} n={len(v):>7}  median {statistics.median(v):6.1f} us  "
              f"p90 {v[int(len(v) * 0.9)]:6.1f} us")


def redis_io(cli) -> tuple[int, int]:
    """redis-server's `total_reads_processed` / `total_writes_processed`."""
    info = dict(l.split(":", 1) for l in cli("INFO", "stats").splitlines() if ":" in l)
    return int(info.get("total_reads_processed", 0)), int(info.get("total_writes_processed", 0))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--wrong", action="store_true", help="wrong codes instead of right ones")
    ap.add_argument("--slowlog", action="store_true")
    ap.add_argument("--perf", action="store_true")
    ap.add_argument("--redis-cpu", default=load.SERVER_CPU)
    ap.add_argument("--target-dir", default=str(load.ROOT / "target"))
    o = ap.parse_args()
    args = argparse.Namespace(workers=1, connections=64, redis_cpu=o.redis_cpu, redis_socket="tcp", target_dir=o.target_dir,
                              profile="release", warmup=0, duration=o.duration)
    h = load.Harness(args)
    try:
        rp, rurl = h.start_redis()
        port = rurl.rsplit(":", 1)[1]
        cli = lambda *a: subprocess.run(["redis-cli", "-p", port, *a], capture_output=True, text=True).stdout
        p, url, _ = h.start_server({"STORE_BACKEND": "redis", "REDIS_URL": rurl})
        body = h.bodies(f"rprof-{int(time.time())}", int(o.duration * 40_000) + 1000, right=not o.wrong)
        cli("CONFIG", "SET", "slowlog-log-slower-than", "0" if o.slowlog else "1000000")
        cli("CONFIG", "SET", "slowlog-max-len", "500000")
        cli("SLOWLOG", "RESET")
        cli("CONFIG", "RESETSTAT")
        c0, r0 = load.cpu_ticks([p.pid]), load.cpu_ticks([rp.pid])
        rs0 = redis_io(cli)
        perf = None
        if o.perf:
            perf = subprocess.Popen(["perf", "record", "-F", "999", "-g", "-o",
                                     str(load.ROOT / "target/redis-profile.data"), "-p", str(p.pid),
                                     "--", "sleep", str(max(1, o.duration - 1))],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        lat: list[str] = []
        def latency() -> None:
            time.sleep(min(2, o.duration / 4))
            r = subprocess.run(["timeout", str(max(1, int(o.duration / 2))), "redis-cli", "-p", port,
                                "--latency", "--raw"], capture_output=True, text=True)
            lat.append(r.stdout.strip())
        t = threading.Thread(target=latency)
        t.start()
        before = h.metrics(url, "/api/v1/otp/verify")
        w = h.wrk(url + "/api/v1/otp/verify", "post_bodies.lua", {"BENCH_BODIES": str(body)}, o.duration)
        after = h.metrics(url, "/api/v1/otp/verify")
        c1, r1 = load.cpu_ticks([p.pid]), load.cpu_ticks([rp.pid])
        rs1 = redis_io(cli)
        t.join()
        if perf:
            perf.wait()
        n, secs = w["requests"], w["duration_us"] / 1e6
        st = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) - before.get(k, 0)}
        served = max(1, sum(st.values()))
        print(f"{'wrong' if o.wrong else 'right'}-code verify on Redis: {n / secs:.0f} req/s  "
              f"p50 {w['p50'] / 1000:.3f} ms  p99 {w['p99'] / 1000:.3f} ms  "
              f"otp-server cpu {(c1 - c0) / load.CLK_TCK * 1e6 / served:.1f} us/req  "
              f"redis-server cpu {(r1 - r0) / load.CLK_TCK * 1e6 / served:.1f} us/req  statuses {st}")
        print(f"  redis-server reads/writes of its clients per verify {(rs1[0] - rs0[0]) / served:.2f} / "
              f"{(rs1[1] - rs0[1]) / served:.2f} (2 round trips per verify: under 2 when the "
              "multiplexed connection batches several requests' commands in one write)")
        for line in cli("INFO", "commandstats").splitlines():
            m = re.match(r"cmdstat_([\w|]+):calls=(\d+),usec=(\d+),usec_per_call=([\d.]+)", line)
            if m and m[1] not in ("info", "config", "slowlog", "ping"):
                print(f"  {m[1]:<18} calls/verify {int(m[2]) / served:5.2f}  "
                      f"usec/verify {int(m[3]) / served:6.2f}  usec_per_call {m[4]}")
        print("  redis-cli --latency under load (ms: min max avg samples):", " ".join(lat))
        if o.slowlog:
            slowlog_summary(port)
        return 0
    finally:
        h.cleanup()


if __name__ == "__main__":
    sys.exit(main())
