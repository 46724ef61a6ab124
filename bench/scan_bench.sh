#!/bin/bash
# Scan throughput: `relaypermit scan FILE` against `cat FILE > /dev/null` on the same
# genlog.py log, page cache warm, paired runs (whole-process time: start-up and pattern
# compilation included). Prints a Markdown table for docs/benchmarks.md.
# Usage: bench/scan_bench.sh [BINARY] [LINES]   (defaults: build/relaypermit, 7000000 ≈ 1 GB)
set -euo pipefail
BIN=${1:-build/relaypermit}
LINES=${2:-7000000}
GENLOG=${GENLOG:-$(dirname "$0")/../../shared/bench/genlog.py}
DIR=${BENCH_DIR:-/tmp/relaypermit-bench}
mkdir -p "$DIR"
LOG=$DIR/genlog-$LINES.log
if [ ! -f "$LOG" ]; then
  python3 "$GENLOG" -n "$LINES" -o "$LOG" --truth-events "$LOG.events" >/dev/null 2>&1
fi
RUNS=${RUNS:-5}
best() {  # best wall time in seconds of RUNS runs of "$@" (stdout discarded)
  python3 - "$RUNS" "$@" <<'PY'
import subprocess, sys, time
runs = int(sys.argv[1]); cmd = sys.argv[2:]
best = float("inf")
for _ in range(runs):
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    best = min(best, time.perf_counter() - t0)
print(f"{best:.4f}")
PY
}
cat "$LOG" >/dev/null  # warm the page cache
n=$(wc -l <"$LOG")
size=$(stat -c %s "$LOG")
t_cat=$(best cat "$LOG")
t_one=$(best "$BIN" scan --pattern dovecot "$LOG")
t_all=$(best "$BIN" scan "$LOG")
found=$("$BIN" scan "$LOG" | wc -l)
truth=$(wc -l <"$LOG.events")
python3 - "$n" "$size" "$t_cat" "$t_one" "$t_all" "$found" "$truth" <<'PY'
import sys
n, size, tc, t1, ta, found, truth = sys.argv[1:]
n = int(n); size = int(size); tc, t1, ta = map(float, (tc, t1, ta))
print(f"log: {n} lines, {size/1e9:.2f} GB; logins found {found}, truth {truth}")
print("| command | seconds (best) | lines/s | time ÷ cat |")
print("|---|---|---|---|")
for name, t in (("cat FILE > /dev/null", tc), ("relaypermit scan --pattern dovecot FILE", t1), ("relaypermit scan FILE (all pattern sets)", ta)):
    print(f"| `{name}` | {t:.4f} | {n/max(t,1e-9)/1e6:.1f}M | {t/max(tc,1e-9):.2f} |")
PY
[ "$found" = "$truth" ] || { echo "MISMATCH: scan found $found logins, truth says $truth" >&2; exit 1; }
