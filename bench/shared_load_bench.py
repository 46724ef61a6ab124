#!/usr/bin/env python3
"""Shared stores at scale (issue 14): the time from `relaypermit run` with `store = redis://...` or
`postgresql://...` to its first policy answer that needs the engine's snapshot, at 1M permits.

For each engine it starts a private server on loopback (tests/integration's RedisServer /
PostgresServer), fills it with --n permits the way bench/scale_bench.py writes them (half IPv4
hosts, half IPv6 /64s, distinct users, expiring in 2 h, plus the benchmark clients' permits):
Redis through `redis-cli --pipe` (SET key value PXAT, the key layout of redis_backend.cpp),
PostgreSQL through COPY into the table the daemon itself created on a first, empty start. Then:
  cold     the daemon's local state removed (no outbox, no local snapshot): start -> action=OK
  restart  SIGTERM, start again with its local state: start -> action=OK
  outage   (--outage) SIGTERM, the engine stopped, start with store_outage = "cache":
           start -> action=OK from the local snapshot alone; then the engine is started again
Lookups answer DUNNO until the store is up (store_outage = "dunno"), so the first action=OK for
a permitted client is the moment the snapshot is loaded. RSS is VmRSS once serving. CPU seconds
(user + system) of the daemon and of the engine's processes up to that answer are printed too:
on a shared 2-core host wall times stretch with the load, CPU seconds much less.

Usage: bench/shared_load_bench.py [--build build] [--n 1000000] [--engines redis,postgresql]
       [--dir /work/benchdata/shared] [--rounds 3] [--outage]
Prints Markdown; docs/benchmarks.md quotes it with the CPU model. Needs redis-server and
PostgreSQL 15 (scripts/install-test-servers.sh) and root (PostgreSQL runs as postgres).
"""
import argparse, datetime, os, shutil, signal, socket, statistics, subprocess, sys, time
from pathlib import Path

here = Path(__file__).resolve().parent
sys.path.insert(0, str(here))
sys.path.insert(0, str(here.parent / "tests" / "integration"))
from rp_harness import Relaypermit, policy_request, wait_until  # noqa: E402
from scale_bench import network, rss_mb  # noqa: E402
import restart_bench  # noqa: E402
from store_redis import REDIS_CLI, RedisServer  # noqa: E402
from store_sql import PostgresServer  # noqa: E402

PERMITTED = "198.51.100.10"
BENCH_CLIENTS = [f"198.51.100.{10 + i}" for i in range(0, 16, 2)]


def rows(n: int, now_us: int, exp_us: int):
    for i in range(n):
        yield network(i), f"user{i}@example.org", "mail", now_us, exp_us
    for c in BENCH_CLIENTS:
        yield c, "bench", "bench", now_us, exp_us


def resp(*args: str) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def fill_redis(r: RedisServer, n: int, now_us: int, exp_us: int) -> None:
    path = r.root / "fill.resp"
    with open(path, "wb") as f:
        for net, user, source, g, e in rows(n, now_us, exp_us):
            value = f"1:{g}:{e}:{len(user)}:{user}{source}"
            f.write(resp("SET", f"relaypermit:permit:{net}", value, "PXAT", str(e // 1000 + 1)))
    with open(path, "rb") as f:
        subprocess.run([REDIS_CLI, "-h", "127.0.0.1", "-p", str(r.port), "--pipe"], stdin=f,
                       stdout=subprocess.DEVNULL, check=True)
    path.unlink()


def fill_pg(pg: PostgresServer, n: int, now_us: int, exp_us: int) -> None:
    ts = lambda us: datetime.datetime.fromtimestamp(us / 1e6, datetime.timezone.utc).isoformat()
    g, e = ts(now_us), ts(exp_us)
    data = "".join(f"{net}\t{user}\t{source}\t{g}\t{e}\n" for net, user, source, _, _ in rows(n, now_us, exp_us))
    subprocess.run(["psql", "-h", str(pg.sock), "-p", str(pg.port), "-U", "postgres", "-d", "relaypermit",
                    "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c",
                    "COPY relaypermit_permits (network, username, source, granted, expires) FROM STDIN"],
                   input=data.encode(), check=True)
    pg.sql("VACUUM ANALYZE relaypermit_permits")


def ask(port: int, t0: float, deadline: float = 300.0) -> float:
    """Seconds from t0 to the first action=OK for a permitted client (DUNNO: ask again)."""
    while True:
        if time.monotonic() - t0 > deadline:
            raise RuntimeError("no action=OK within the deadline")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=deadline) as s:
                while True:
                    s.sendall(policy_request(PERMITTED))
                    buf = b""
                    while not buf.endswith(b"\n\n"):
                        chunk = s.recv(4096)
                        if not chunk:
                            raise ConnectionResetError
                        buf += chunk
                    if b"action=OK" in buf:
                        return time.monotonic() - t0
                    if time.monotonic() - t0 > deadline:
                        raise RuntimeError(f"still {buf!r} after the deadline")
                    time.sleep(0.005)
        except (ConnectionRefusedError, ConnectionResetError):
            time.sleep(0.002)


def cpu_s(pids) -> float:
    """User + system CPU seconds of these live processes (all their threads)."""
    total = 0
    for pid in pids:
        try:
            f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(f[11]) + int(f[12])
    return total / os.sysconf("SC_CLK_TCK")


def engine_pids(server) -> list:
    """The engine's processes: redis-server, or PostgreSQL's whole session (one per connection)."""
    if server is None or not server.running():
        return []
    if isinstance(server, RedisServer):
        return [server.proc.pid]
    sid = os.getsid(server.proc.pid)
    out = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.getsid(int(pid)) == sid:
                out.append(int(pid))
        except OSError:
            pass
    return out


CPU = {"daemon": [], "engine": []}


def start_timed(d: Relaypermit, server=None) -> float:
    """Start -> first action=OK; also records the CPU seconds the daemon and the engine spent
    meanwhile (on a 2-core host shared with builds, wall times stretch; CPU seconds much less).
    PostgreSQL's figure misses backends that ended meanwhile (none of the daemon's)."""
    e0 = cpu_s(engine_pids(server))
    took = restart_bench.start_timed(d, answer=ask)
    CPU["daemon"].append(cpu_s([d.proc.pid]))
    CPU["engine"].append(cpu_s(engine_pids(server)) - e0)
    return took


def stop(d: Relaypermit) -> None:
    if d.proc is not None and d.proc.poll() is None:
        d.proc.send_signal(signal.SIGTERM)
        d.proc.wait(120)


def wipe_local(d: Relaypermit) -> None:
    for f in d.state_dir.glob("shared-*"):
        f.unlink()


def run_engine(binary: Path, root: Path, engine: str, n: int, rounds: int, outage: bool):
    server = RedisServer(root / "redis") if engine == "redis" else PostgresServer(root / "pg", "benchpw")
    server.start()
    CPU["daemon"].clear()
    CPU["engine"].clear()
    d = Relaypermit(binary, root / f"daemon-{engine}", log_level="notice",
                    extra=f'store = "{server.url}"\nipv6_prefix = 64\nmax_permits = 2000000\n')
    try:
        now_us = int(time.time() * 1e6)
        exp_us = now_us + 7200 * 10**6
        t = time.monotonic()
        if engine == "redis":
            fill_redis(server, n, now_us, exp_us)
        else:
            d.start(timeout=60)  # creates the schema, on its worker thread
            wait_until(lambda: "store: available" in d.cli("status").stdout, 60, what="the schema")
            stop(d)
            fill_pg(server, n, now_us, exp_us)
        filled = time.monotonic() - t
        cold, warm, down = [], [], []
        for _ in range(rounds):
            wipe_local(d)
            cold.append(start_timed(d, server))
            stop(d)
            warm.append(start_timed(d, server))
            rss = rss_mb(d.proc.pid)
            stop(d)
        if outage:
            d.extra += 'store_outage = "cache"\n'
            d.write_config()
            server.stop()
            for _ in range(rounds):
                down.append(start_timed(d))
                stop(d)
            server.start()
        print(f"{engine}: cold {cold} restart {warm} down {down} cpu {CPU}", file=sys.stderr, flush=True)
        return filled, cold, warm, down, rss
    finally:
        stop(d)
        server.stop()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--engines", default="redis,postgresql")
    ap.add_argument("--dir", default="/work/benchdata/shared")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--outage", action="store_true")
    args = ap.parse_args()
    binary = Path(args.build).resolve() / "relaypermit"
    root = Path(args.dir)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    os.chmod(root, 0o755)
    fmt = lambda xs: f"{statistics.median(xs):.2f} / {max(xs):.2f}" if xs else "-"
    print("| engine | permits | cold start s (median / max) | restart s (median / max) "
          "| engine down, store_outage=cache s | daemon CPU s | engine CPU s | RSS MB | filled in s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for engine in args.engines.split(","):
        filled, cold, warm, down, rss = run_engine(binary, root / engine, engine, args.n, args.rounds, args.outage)
        med = lambda xs: f"{statistics.median(xs):.2f}" if xs else "-"
        print(f"| {engine} | {args.n:,} | {fmt(cold)} | {fmt(warm)} | {fmt(down)} | {med(CPU['daemon'])} "
              f"| {med(CPU['engine'])} | {rss:.0f} | {filled:.1f} |", flush=True)


if __name__ == "__main__":
    main()
