#!/usr/bin/env python3
"""Growth of the embedded store (issue 14): RSS, start-up, `status` and policy lookups at
1k / 10k / 100k / 1M live permits, and policy latency while 1M permits expire at once.

For each size it writes permits.db directly (half IPv4 hosts, half IPv6 /64s as with
ipv6_prefix = 64, distinct users "userN@example.org", expiring in 2 h, plus the 8 permits
policy_bench's clients look for), starts `relaypermit run` on it, and reports the daemon's
VmRSS, the time from start to the first policy answer, one `relaypermit status` round trip,
and `policy_bench --connect` (8 clients, median of 3 rounds; req/s and p99), the time of a full
`relaypermit list > /dev/null` (streamed), policy_bench's p99 while full lists run back to back,
and the restart to the first `status` answer after SIGTERM and after kill -9. `status` is a
`relaypermit status` process (its own start-up, ~3 ms, included). The mass-expiry case loads 1M permits
that all expire a few seconds after the start and runs policy_bench across that instant.

Usage: bench/scale_bench.py [--build build] [--sizes 1000,10000,100000,1000000] [--duration 3]
Needs BUILD/relaypermit and BUILD/bench/policy_bench (cmake -DRELAYPERMIT_BENCH=ON). Prints
Markdown; docs/benchmarks.md quotes it with the CPU model.
"""
import argparse, os, re, shutil, sqlite3, subprocess, sys, tempfile, time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "integration"))
from rp_harness import Relaypermit  # noqa: E402

SCHEMA = """
CREATE TABLE IF NOT EXISTS permits (network TEXT PRIMARY KEY, user TEXT NOT NULL, source TEXT NOT NULL,
  granted_us INTEGER NOT NULL, expires_us INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('schema_version', '1');
"""


def network(i: int) -> str:
    if i % 2 == 0:
        j = i // 2
        return f"10.{(j >> 16) & 255}.{(j >> 8) & 255}.{j & 255}"
    j = i // 2
    return f"2001:db8:{(j >> 16) & 0xffff:x}:{j & 0xffff:x}::/64"


def write_db(state: Path, n: int, expires_in: float) -> None:
    state.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(state / "permits.db"))
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(SCHEMA)
    now = int(time.time() * 1e6)
    exp = now + int(expires_in * 1e6)
    rows = ((network(i), f"user{i}@example.org", "mail", now, exp) for i in range(n))
    db.executemany("INSERT INTO permits VALUES (?,?,?,?,?)", rows)
    far = now + 7200 * 10**6  # policy_bench's clients: 198.51.100.10 + even i hold permits
    db.executemany("INSERT INTO permits VALUES (?,?,?,?,?)",
                   ((f"198.51.100.{10 + i}", "bench", "bench", now, far) for i in range(0, 16, 2)))
    db.commit()
    db.close()


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def policy_bench(bench: Path, port: int, duration: float, rounds: int = 3) -> tuple[float, float, float]:
    """(daemon req/s, daemon p99 µs, daemon ÷ reference epoll responder measured in the same run)."""
    out = subprocess.run([str(bench), "--connect", f"127.0.0.1:{port}", "--duration", str(duration),
                          "--rounds", str(rounds), "--clients", "8"], capture_output=True, text=True, check=True).stdout
    # "| 8 | ref req/s | p50 / p99 | frontend req/s | p50 / p99 | ratio |" in the median table
    row = [l for l in out.splitlines() if re.match(r"\|\s*8\s*\|", l)][-1]
    cells = [c.strip() for c in row.strip("|").split("|")]
    return float(cells[3]), float(cells[4].split("/")[1]), float(cells[5])


def run_size(binary, bench, work, n, duration, expires_in=7200.0):
    d = Relaypermit(binary, work / f"n{n}", extra="ipv6_prefix = 64\nmax_permits = 2000000\n", log_level="warning")
    write_db(d.state_dir, n, expires_in)
    t0 = time.monotonic()
    d.start(timeout=120)  # listeners are bound before the store is loaded
    try:
        r = d.cli("status")  # answered once the store is loaded and the loop runs
        started = time.monotonic() - t0
        assert r.returncode == 0, r.stdout + r.stderr
        t1 = time.monotonic()
        r = d.cli("status")
        status_ms = (time.monotonic() - t1) * 1000
        assert r.returncode == 0, r.stdout + r.stderr
        rss = rss_mb(d.proc.pid)
        rps, p99, ratio = policy_bench(bench, d.policy_port, duration)
        t1 = time.monotonic()
        r = d.cli("list", timeout=600)
        list_s = time.monotonic() - t1
        assert r.returncode == 0 and len(r.stdout.splitlines()) >= n, r.stderr
        lists = subprocess.Popen(["sh", "-c", f"while :; do '{binary}' list --config '{d.config}' >/dev/null; done"],
                                 start_new_session=True)
        try:
            _, p99_list, _ = policy_bench(bench, d.policy_port, duration, rounds=1)
        finally:
            os.killpg(lists.pid, 9)  # the loop and the list it runs
            lists.wait()
        restarts = []
        for how in ("term", "kill"):
            if how == "term":
                d.stop(timeout=60)
            else:
                d.proc.kill()
                d.proc.wait()
            t2 = time.monotonic()
            d.start(timeout=120)
            r = d.cli("status")
            restarts.append(time.monotonic() - t2)
            assert r.returncode == 0, r.stdout + r.stderr
        return started, rss, status_ms, rps, p99, ratio, list_s, p99_list, restarts
    finally:
        d.stop(timeout=60)


def mass_expiry(binary, bench, work, n=1_000_000, lead=40.0):
    """1M permits expiring at one instant `lead` s after the database is written; policy_bench
    runs from 5 s before that instant to 7 s after it (3 rounds of 4 s, the reference responder
measured between them; the median row is reported, and the second round spans the instant)."""
    import json
    d = Relaypermit(binary, work / "expiry", extra="ipv6_prefix = 64\nmax_permits = 2000000\n", log_level="warning")
    t_written = time.time()
    write_db(d.state_dir, n, lead)
    expiry_at = t_written + lead
    d.start(timeout=120)
    try:
        wait = expiry_at - 3 - 8.3 - time.time()  # the reference's 8 s + 0.3 s warm-up first
        if wait < 0:
            sys.exit(f"start took too long for the {lead} s lead; raise it")
        time.sleep(wait)
        rps, p99, ratio = policy_bench(bench, d.policy_port, 8, rounds=1)
        st = json.loads(d.cli("status", "--json").stdout)
        print(f"\nmass expiry: {n:,} permits expiring at one instant inside an 8 s policy_bench run "
              f"(8 clients): {rps:,.0f} req/s ({ratio:.2f} of the reference), p99 {p99:.0f} µs; expired afterwards: {st['expired']:,}, "
              f"permits left: {st['permits']}")
    finally:
        d.stop(timeout=60)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--sizes", default="1000,10000,100000,1000000")
    ap.add_argument("--duration", type=float, default=3)
    ap.add_argument("--no-expiry", action="store_true")
    args = ap.parse_args()
    build = Path(args.build).resolve()
    binary, bench = build / "relaypermit", build / "bench" / "policy_bench"
    work = Path(tempfile.mkdtemp(prefix="rp-scale-bench-"))
    os.chmod(work, 0o755)
    try:
        print("| permits | RSS MB | start to serving s | status ms | lookups req/s (8 clients) | p99 µs "
              "| ÷ reference | vs first size | list s | p99 µs during lists | restart s SIGTERM / kill -9 |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        base = None
        for n in [int(x) for x in args.sizes.split(",")]:
            started, rss, status_ms, rps, p99, ratio, list_s, p99_list, restarts = run_size(
                binary, bench, work, n, args.duration)
            base = base or ratio
            print(f"| {n:,} | {rss:.1f} | {started:.2f} | {status_ms:.1f} | {rps:,.0f} | {p99:.0f} | {ratio:.2f} "
                  f"| {ratio / base:.2f}x | {list_s:.2f} | {p99_list:.0f} | {restarts[0]:.2f} / {restarts[1]:.2f} |",
                  flush=True)
        if not args.no_expiry:
            mass_expiry(binary, bench, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
