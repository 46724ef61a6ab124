#!/usr/bin/env python3
"""Restart of the embedded store at scale (issue 14): the time from `relaypermit run` to the first
policy answer, at first start, after SIGTERM and after kill -9, and the daemon's RSS.

For each size it writes permits.db the way bench/scale_bench.py does (half IPv4 hosts, half IPv6
/64s, distinct users, expiring in 2 h, plus the benchmark clients' permits) under --dir, then:
starts the daemon, and at once connects to the policy port (retrying while it is not yet bound)
and sends one request for a permitted client; the listeners are bound before the store is
loaded, so the answer comes when the daemon serves. The figure is process start -> that answer,
measured --rounds times per case (median and max printed). Then SIGTERM -> start -> answer and
kill -9 -> start -> answer. RSS is VmRSS once serving.

Usage: bench/restart_bench.py [--build build] [--sizes 1000,1000000] [--dir /work/benchdata/restart]
       [--rounds 3]
Prints Markdown; docs/benchmarks.md quotes it with the CPU model. Needs only BUILD/relaypermit.
"""
import argparse, os, signal, socket, statistics, subprocess, sys, time
from pathlib import Path

here = Path(__file__).resolve().parent
sys.path.insert(0, str(here))
sys.path.insert(0, str(here.parent / "tests" / "integration"))
from rp_harness import Relaypermit, policy_request  # noqa: E402
from scale_bench import rss_mb, write_db  # noqa: E402

PERMITTED = "198.51.100.10"  # one of the benchmark clients write_db adds


def first_answer(port: int, t0: float, deadline: float = 120.0) -> float:
    """Seconds from t0 to the first policy answer for a permitted client."""
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=deadline)
            break
        except ConnectionRefusedError:
            if time.monotonic() - t0 > deadline:
                raise
            time.sleep(0.002)
    with s:
        s.sendall(policy_request(PERMITTED))
        buf = b""
        while not buf.endswith(b"\n\n"):
            chunk = s.recv(4096)
            if not chunk:
                raise RuntimeError("policy connection closed before an answer")
            buf += chunk
    took = time.monotonic() - t0
    if b"action=OK" not in buf:
        raise RuntimeError(f"unexpected answer {buf!r}")
    return took


def start_timed(d: Relaypermit, answer=first_answer) -> float:
    """Starts the daemon; answer(policy_port, t0) waits for the answer and returns the time."""
    err = open(d.stderr_path, "a")
    t0 = time.monotonic()
    d.proc = subprocess.Popen([str(d.binary), "run", "--config", str(d.config)],
                              stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    err.close()
    return answer(d.policy_port, t0)


def stop(d: Relaypermit, how: str) -> None:
    if how == "term":
        d.proc.send_signal(signal.SIGTERM)
    else:
        d.proc.kill()
    d.proc.wait(120)


def run_size(binary: Path, root: Path, n: int, rounds: int):
    d = Relaypermit(binary, root / f"n{n}", extra="ipv6_prefix = 64\nmax_permits = 2000000\n",
                    log_level="warning")
    for f in d.state_dir.glob("permits.db*"):
        f.unlink()
    t = time.monotonic()
    write_db(d.state_dir, n, 7200.0)
    written = time.monotonic() - t
    first = start_timed(d)
    rss = rss_mb(d.proc.pid)
    times = {"term": [], "kill": []}
    try:
        for _ in range(rounds):
            for how in ("term", "kill"):
                stop(d, how)
                times[how].append(start_timed(d))
        rss = max(rss, rss_mb(d.proc.pid))
    finally:
        if d.proc.poll() is None:
            stop(d, "term")
    return written, first, rss, times


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--sizes", default="1000,1000000")
    ap.add_argument("--dir", default="/work/benchdata/restart")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    binary = Path(args.build).resolve() / "relaypermit"
    root = Path(args.dir)
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o755)
    print("| permits | first start s | restart after SIGTERM s (median / max) | after kill -9 s (median / max) "
          "| RSS MB | db written in s |")
    print("|---|---|---|---|---|---|")
    for n in [int(x) for x in args.sizes.split(",")]:
        written, first, rss, t = run_size(binary, root, n, args.rounds)
        fmt = lambda xs: f"{statistics.median(xs):.3f} / {max(xs):.3f}"
        print(f"| {n:,} | {first:.3f} | {fmt(t['term'])} | {fmt(t['kill'])} | {rss:.1f} | {written:.1f} |",
              flush=True)


if __name__ == "__main__":
    main()
