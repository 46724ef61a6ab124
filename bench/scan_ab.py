#!/usr/bin/env python3
"""Paired A/B of two relaypermit binaries' `scan` against `cat` on the same log.

Each round runs `cat LOG`, then each binary with `--threads 1` and with the default threads, in
that order, so that all commands see the same moment of the host; the best and the median of
the rounds are printed with their ratio to cat's. Whole-process wall time. For a change to the
scan path: build the binary before and after it and compare in one run (docs/benchmarks.md).
Before the rounds, each command's output is compared with the old binary's (a change that
finds other logins is no speed-up); during them the log is held in the page cache (pin.py).

With --cpu N, `cat` and the `--threads 1` scans run on CPU N only (the default-thread scans
stay free): on a host whose CPUs differ in speed (the second host of docs/benchmarks.md: one
vCPU ~40% slower than the other), an unpinned process lands on either, and the best and the
median mix the two.

Usage: bench/scan_ab.py OLD NEW [--log FILE] [--rounds N] [--cpu N]
(default log: /tmp/relaypermit-bench/genlog-7000000.log, what bench/scan_bench.sh makes)
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import subprocess
import sys
import os
import time

from pin import pinned


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--log", default="/tmp/relaypermit-bench/genlog-7000000.log")
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--cpu", type=int, help="run cat and the --threads 1 scans on this CPU only")
    args = ap.parse_args()
    if args.cpu is not None and args.cpu not in os.sched_getaffinity(0):
        sys.exit(f"--cpu {args.cpu}: not among this process's CPUs {sorted(os.sched_getaffinity(0))}")
    cmds = {"cat": ["cat", args.log]}
    for tag, binary in (("old", args.old), ("new", args.new)):
        cmds[f"{tag} --threads 1"] = [binary, "scan", "--threads", "1", args.log]
        cmds[f"{tag} default"] = [binary, "scan", args.log]
    times: dict[str, list[float]] = {k: [] for k in cmds}
    outputs = {name: hashlib.sha256(subprocess.run(cmd, stdout=subprocess.PIPE, check=True).stdout).hexdigest()
               for name, cmd in cmds.items() if name != "cat"}
    if len(set(outputs.values())) != 1:
        sys.exit("the outputs differ: " + ", ".join(f"{name} {digest[:12]}" for name, digest in outputs.items()))
    every_cpu = os.sched_getaffinity(0)

    def run_timed(name: str, cmd: list[str]) -> float:
        # The child inherits this process's CPUs: set around the spawn, not in the child (a
        # preexec_fn makes Python fork and run code in the child, ~13 ms more on this host).
        pin = args.cpu is not None and (name == "cat" or name.endswith("--threads 1"))
        if pin:
            os.sched_setaffinity(0, {args.cpu})
        try:
            t0 = time.perf_counter()
            subprocess.run(cmd, stdout=subprocess.DEVNULL, check=True)
            return time.perf_counter() - t0
        finally:
            if pin:
                os.sched_setaffinity(0, every_cpu)

    with pinned(args.log):
        for _ in range(args.rounds):
            for name, cmd in cmds.items():
                times[name].append(run_timed(name, cmd))
    cat_best, cat_median = min(times["cat"]), statistics.median(times["cat"])
    where = "" if args.cpu is None else f", cat and --threads 1 on CPU {args.cpu}"
    print(f"{args.rounds} rounds, {args.log}, the same output from every scan{where}")
    print("| command | best s | median s | best ÷ cat | median ÷ cat |")
    print("|---|---|---|---|---|")
    for name, ts in times.items():
        best, median = min(ts), statistics.median(ts)
        print(f"| {name} | {best:.4f} | {median:.4f} | {best / cat_best:.2f} | {median / cat_median:.2f} |")


if __name__ == "__main__":
    main()
