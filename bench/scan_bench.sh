#!/bin/bash
# Scan throughput: `relaypermit scan FILE` against `cat FILE > /dev/null` on the same
# genlog.py log, page cache warm and the log held there (bench/pin.py), paired runs (the
# commands alternate within each round; the best of RUNS rounds is kept; whole-process time:
# start-up and pattern compilation included).
# Also times two references from the tools it replaces (see below).
# Prints a Markdown table for docs/benchmarks.md and checks the logins found against genlog's
# truth. The one-thread scan is also timed against `cat` on each CPU in turn, both pinned to it
# (at most PIN_CPUS CPUs, default 8): on a host whose CPUs differ in speed (the second host of
# docs/benchmarks.md), an unpinned best may pair a `cat` on the fast CPU with a scan on the slow.
# Usage: bench/scan_bench.sh [BINARY] [LINES]   (defaults: build/relaypermit, 7000000 ≈ 1 GB)
# LOG=FILE uses an existing genlog.py log (with FILE.events from --truth-events) instead.
set -euo pipefail
BIN=${1:-build/relaypermit}
LINES=${2:-7000000}
GENLOG=${GENLOG:-$(dirname "$0")/../../shared/bench/genlog.py}  # in a worktree: GENLOG=/work/shared/bench/genlog.py
DIR=${BENCH_DIR:-/tmp/relaypermit-bench}
RUNS=${RUNS:-5}
if [ -z "${LOG:-}" ]; then
  mkdir -p "$DIR"
  LOG=$DIR/genlog-$LINES.log
  if [ ! -f "$LOG" ]; then
    python3 "$GENLOG" -n "$LINES" -o "$LOG" --truth-events "$LOG.events" >/dev/null 2>&1
  fi
fi
# All built-in sets plus one [[pattern]] of the admin's (a UW-style line genlog never writes).
USERCFG=$(mktemp /tmp/relaypermit-bench-XXXXXX.toml)
trap 'rm -f "$USERCFG"' EXIT
printf '%s\n' '[[pattern]]' 'name = "my-ipop3d"' \
  "regex = 'ipop3d\\[\\d+\\]: Login user=(?<user>\\S+) host=(?:\\S+ )?\\[(?<ip>[0-9a-fA-F:.]+)\\]'" >"$USERCFG"
cat "$LOG" >/dev/null  # warm the page cache
found=$("$BIN" scan "$LOG" | wc -l)
found1=$("$BIN" scan --threads 1 "$LOG" | wc -l)
foundu=$("$BIN" scan --config "$USERCFG" "$LOG" | wc -l)
truth=$(wc -l <"$LOG.events")
# Which read path `scan` takes here (--read-path auto measures the first chunks both ways), for
# the three configurations the summary compares with cat.
read_path() { "$BIN" scan --stats "$@" "$LOG" 2>&1 >/dev/null | sed -n 's/.*read path //p' | head -1; }
export PATH_ALL PATH_ONE PATH_DOVECOT PREFILTER
PATH_ALL=$(read_path); PATH_ONE=$(read_path --threads 1); PATH_DOVECOT=$(read_path --pattern dovecot)
# How the built-in sets' literals are found here (Hyperscan, and the pair search's instruction set).
PREFILTER=$("$BIN" scan --stats "$LOG" 2>&1 >/dev/null | sed -n 's/.*, prefilter \(.*\), read path .*/\1/p' | head -1)
BENCH_SRC=$(cd "$(dirname "$0")" && pwd) python3 - "$RUNS" "$LOG" "$BIN" "$found" "$truth" "$USERCFG" <<'PY'
import os, subprocess, sys, time
runs, (log, binary, found, truth, usercfg) = int(sys.argv[1]), sys.argv[2:7]
ref_runs = min(runs, int(os.environ.get("REF_RUNS", "3")))
cmds = [
    ("cat FILE > /dev/null", ["cat", log]),
    ("relaypermit scan --pattern dovecot FILE", [binary, "scan", "--pattern", "dovecot", log]),
    ("relaypermit scan --threads 1 --pattern dovecot FILE", [binary, "scan", "--threads", "1", "--pattern", "dovecot", log]),
    ("relaypermit scan --threads 1 FILE (all pattern sets)", [binary, "scan", "--threads", "1", log]),
    ("relaypermit scan FILE (all pattern sets)", [binary, "scan", log]),
    ("relaypermit scan --read-path read FILE", [binary, "scan", "--read-path", "read", log]),
    ("relaypermit scan --read-path mmap FILE", [binary, "scan", "--read-path", "mmap", log]),
    ("relaypermit scan --threads 1 --read-path read FILE", [binary, "scan", "--threads", "1", "--read-path", "read", log]),
    ("relaypermit scan --threads 1 --read-path mmap FILE", [binary, "scan", "--threads", "1", "--read-path", "mmap", log]),
    ("relaypermit scan --config C FILE (all sets and one [[pattern]])", [binary, "scan", "--config", usercfg, log]),
]
# References from the tools relaypermit replaces, slow, so fewer rounds (REF_RUNS, default 3):
# pop-before-smtp.pl's matching loop with its Dovecot 2.x $pat ([LOGTIME] expanded as it does);
# the same loop with every server's $pat, as its "Match Many Patterns" set-up runs it
# (bench/pbs_many_patterns.pl; ~25 s per run, so one round); and grep -oE printing the
# address field of the Dovecot lines. Their output goes to a pipe this script drains, not to
# /dev/null: GNU grep stops at the first match when its output is /dev/null.
PBS = (r"/^(\w\w\w +\d+ \d\d:\d\d:\d\d) \S+ dovecot: (?:imap|pop3)-login: Login: user=\S+, "
       r"method=\S+, rip=(.*), lip=/o and print qq($2\n)")
many = os.path.join(os.environ["BENCH_SRC"], "pbs_many_patterns.pl")
refs = [
    ("perl -ne (pop-before-smtp's Dovecot $pat)", ["perl", "-ne", PBS, log], ref_runs),
    ("perl pbs_many_patterns.pl (pop-before-smtp, every server's $pat)", ["perl", many, log], 1),
    ("grep -oE 'Login: user=<[^>]*>, method=[A-Z]+, rip=[0-9a-f.:]+'",
     ["grep", "-oE", "Login: user=<[^>]*>, method=[A-Z]+, rip=[0-9a-f.:]+", log], ref_runs),
]
best = [float("inf")] * (len(cmds) + len(refs))
# (cpu, cat, scan --threads 1) on that CPU alone.
cpus_all = os.sched_getaffinity(0)
cpus = sorted(cpus_all)[: int(os.environ.get("PIN_CPUS", "8"))]
pinned_best = {c: [float("inf"), float("inf")] for c in cpus}
pinned_cmds = [["cat", log], [binary, "scan", "--threads", "1", log]]
sys.path.insert(0, os.environ["BENCH_SRC"])
from pin import pinned  # the log stays in the page cache during the rounds (see pin.py)
with pinned(log):
    for r in range(runs):
        for i, (_, cmd) in enumerate(cmds):
            t0 = time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            best[i] = min(best[i], time.perf_counter() - t0)
        for c in cpus:
            # The child inherits this process's CPUs, set around the spawn (a preexec_fn would
            # make Python fork and run code in the child: ~13 ms more per command on this host).
            os.sched_setaffinity(0, {c})
            try:
                for k, cmd in enumerate(pinned_cmds):
                    t0 = time.perf_counter()
                    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
                    pinned_best[c][k] = min(pinned_best[c][k], time.perf_counter() - t0)
            finally:
                os.sched_setaffinity(0, set(cpus_all))
        for j, (_, cmd, nruns) in enumerate(refs):
            if r >= nruns:
                continue
            t0 = time.perf_counter()
            out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True).stdout
            best[len(cmds) + j] = min(best[len(cmds) + j], time.perf_counter() - t0)
            got = out.count(b"\n")
            if got != int(truth):
                sys.exit(f"reference {cmd[:2]} found {got} logins, truth {truth}")
n = sum(1 for _ in open(log, "rb"))
size = os.path.getsize(log)
print(f"log: {n} lines, {size/1e9:.2f} GB, {os.cpu_count()} CPUs; logins found {found}, truth {truth}")
print(f"| command | seconds (best of {runs}) | lines/s | time ÷ cat |")
print("|---|---|---|---|")
rounds = [runs] * len(cmds) + [min(runs, nr) for (_, _, nr) in refs]
for (name, *_), t, nr in zip(cmds + refs, best, rounds):
    note = "" if nr == runs else f" (best of {nr})"
    print(f"| `{name}` | {t:.4f}{note} | {n/max(t,1e-9)/1e6:.1f}M | {t/max(best[0],1e-9):.2f} |")
scan = best[4]
print(f"prefilter (all sets): {os.environ.get('PREFILTER') or '?'}")
print("read path and time ÷ cat (--read-path auto):")
for label, i, env in [("all sets, default threads", 4, "PATH_ALL"), ("all sets, --threads 1", 3, "PATH_ONE"),
                      ("Dovecot set only, default threads", 1, "PATH_DOVECOT")]:
    print(f"  {label}: {best[i]/max(best[0],1e-9):.2f}x cat, read path {os.environ.get(env) or '?'}")
print("all sets, --threads 1, and cat on the same CPU (best of each):")
for c in cpus:
    cat_t, scan_t = pinned_best[c]
    print(f"  CPU {c}: scan {scan_t:.4f} s, cat {cat_t:.4f} s: {scan_t/max(cat_t,1e-9):.2f}x cat")
print(f"relaypermit scan (all sets) is {best[len(cmds)]/scan:.1f}x faster than the one-pattern perl loop, "
      f"{best[len(cmds)+1]/scan:.0f}x faster than the every-pattern perl loop and "
      f"{best[len(cmds)+2]/scan:.1f}x faster than grep -oE")
PY
[ "$found" = "$truth" ] && [ "$found1" = "$truth" ] && [ "$foundu" = "$truth" ] ||
  { echo "MISMATCH: scan found $found ($found1 on one thread, $foundu with a [[pattern]]) logins, truth says $truth" >&2; exit 1; }
