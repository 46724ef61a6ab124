#!/bin/bash
# Lookup throughput per store: the same `relaypermit run` answers the Postfix policy service
# with the embedded store and with each shared store (private Redis, PostgreSQL 15, MariaDB
# started by the integration tests' harness classes on loopback), measured by
# `policy_bench --connect` (which also measures its reference epoll responder in the same run).
# Half of the benchmark's 16 client addresses hold permits, so half the replies are OK.
#
# Usage: bench/store_bench.sh [BUILD_DIR]     (default build; needs root and
#        scripts/install-deps.sh --test; BUILD_DIR must have relaypermit and bench/policy_bench)
# Prints one Markdown table per store; docs/benchmarks.md has the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
DURATION=${DURATION:-2}
ROUNDS=${ROUNDS:-3}
exec /usr/bin/python3 - "$BUILD" "$DURATION" "$ROUNDS" <<'EOF'
import os, subprocess, sys, tempfile
from pathlib import Path
sys.path.insert(0, "tests/integration")
from rp_harness import Relaypermit, make_dir
from store_redis import RedisServer
from store_sql import MariaDbServer, PostgresServer

build, duration, rounds = Path(sys.argv[1]).resolve(), sys.argv[2], sys.argv[3]
binary, bench = build / "relaypermit", build / "bench" / "policy_bench"
work = Path(tempfile.mkdtemp(prefix="rp-store-bench-"))
os.chmod(work, 0o755)


def measure(name, store_line):
    d = Relaypermit(binary, work / name, extra=store_line, log_level="warning")
    d.start()
    try:
        for i in range(0, 16, 2):
            r = d.cli("allow", f"198.51.100.{10 + i}", "--ttl", "1h")
            assert r.returncode == 0, r.stdout + r.stderr
        for i in range(0, 16, 2):
            d.wait_permitted(f"198.51.100.{10 + i}", timeout=10)
        print(f"\n## store: {name}\n", flush=True)
        subprocess.run([bench, "--connect", f"127.0.0.1:{d.policy_port}", "--duration", duration,
                        "--rounds", rounds, "--clients", "8,64"], check=True)
    finally:
        d.stop()


measure("embedded", "")
with RedisServer(make_dir(work / "redis"), password="bench") as s:
    measure("redis", f'store = "{s.url}"')
with PostgresServer(make_dir(work / "pg"), "bench") as s:
    measure("postgresql", f'store = "{s.url}"')
with MariaDbServer(make_dir(work / "my"), "bench") as s:
    measure("mysql", f'store = "{s.url}"')
EOF
