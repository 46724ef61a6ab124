#!/bin/sh
# Growth figures of issue 14 in one go: the CPU model, then bench/scale_bench.py (RSS, start,
# status, lookups, list time, policy p99 during full lists, restart after SIGTERM and kill -9,
# mass expiry), bench/restart_bench.py (process start -> first policy answer after SIGTERM and
# kill -9; state under its --dir) and bench/export_bench (freshness and loop hold of an export
# rewrite, the copy now spread over loop turns) at 1k / 10k / 100k / 1M permits, and
# bench/shared_load_bench.py (a start with store = redis:// / postgresql:// at 1M permits, and
# with the engine down; needs root, redis-server and PostgreSQL 15), then bench/scan_bench.sh (scan
# against cat with 1 and all pattern sets, 1 and all threads, and the read path taken, over a
# 1 GB genlog.py log made once under $BENCH_DIR, or LOG=FILE). Figures, not tests;
# docs/benchmarks.md quotes them. Needs a build with -DRELAYPERMIT_BENCH=ON.
# Usage: bench/growth.sh [BUILD_DIR] [SIZES]   (defaults: build, 1000,10000,100000,1000000)
set -eu
build=${1:-build}
sizes=${2:-1000,10000,100000,1000000}
here=$(dirname "$0")
lscpu | grep -E '^(Model name|CPU\(s\)):'
python3 "$here/scale_bench.py" --build "$build" --sizes "$sizes" --duration 2
python3 "$here/restart_bench.py" --build "$build" --sizes "$sizes" --rounds 3
"$build/bench/export_bench" --sizes "$sizes" --types postfix-cdb,opensmtpd-table --rounds 3
if [ "$(id -u)" = 0 ] && [ -x /usr/bin/redis-server ] && [ -x /usr/lib/postgresql/15/bin/postgres ]; then
    python3 "$here/shared_load_bench.py" --build "$build" --rounds 3 --outage
fi
bash "$here/scan_bench.sh" "$build/relaypermit"
