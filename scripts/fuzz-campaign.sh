#!/bin/bash
# Sanitized libFuzzer campaigns, run by hand (not by CI, which only replays the kept corpora).
#   bash scripts/fuzz-campaign.sh [SECONDS] [TARGET...]
# Builds every fuzz target with clang, libFuzzer, ASan and UBSan (UBSan aborts) in build-fuzz/
# (JOBS=N compile jobs, default nproc; the build's output goes to build-fuzz/build.log),
# runs each TARGET (default: all of fuzz/*_fuzz.cpp) for SECONDS (default 600) on one core,
# starting from its kept corpus, then minimises kept + found into fuzz/corpus/<name>/: libFuzzer's
# -set_cover_merge=1 with -use_counters=0 (edges, not hit counts) picks a small set with the same
# coverage, which replaces the libFuzzer-named inputs (40 hex digits); hand-named inputs (seeds,
# regression inputs) are always kept. A crash stops the script with the reproducer path; fix it,
# add the reproducer to the corpus under a name that says what it is, rerun. Each run's summary
# line (executions, execs/s, coverage, corpus size, sanitizers, CPU) is appended to
# build-fuzz/campaigns.log for the closing note (docs/fuzzing.md).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}; shift || true
command -v clang++ >/dev/null || { echo "fuzz-campaign.sh: needs clang (apt-get install clang)" >&2; exit 1; }
CC=clang CXX=clang++ cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DRELAYPERMIT_FUZZ=ON -DRELAYPERMIT_TESTS=OFF -DRELAYPERMIT_BENCH=OFF \
  ${CMAKE_CXX_COMPILER_LAUNCHER:+-DCMAKE_CXX_COMPILER_LAUNCHER=$CMAKE_CXX_COMPILER_LAUNCHER} >/dev/null
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/*_fuzz.cpp; do n=$(basename "$f" .cpp); targets+=("${n%_fuzz}"); done
fi
if ! cmake --build build-fuzz -j"${JOBS:-$(nproc)}" --target "${targets[@]/%/_fuzz}" >build-fuzz/build.log 2>&1; then
  grep -m5 -B2 -A3 'error' build-fuzz/build.log >&2 || tail -20 build-fuzz/build.log >&2
  echo "fuzz-campaign.sh: the build failed; see build-fuzz/build.log" >&2; exit 1
fi
# minimise TARGET KEPT WORK: replaces KEPT's libFuzzer-named inputs by a minimal set covering
# KEPT + WORK; hand-named inputs stay, and a minimal input equal to one of them is not copied.
minimise() {
  local fresh hand f n; fresh=$(mktemp -d -t "fuzz-min-$1.XXXXXX")
  build-fuzz/fuzz/$1_fuzz -set_cover_merge=1 -use_counters=0 "$fresh" "$2" "$3"
  hand=$(find "$2" -regextype posix-extended -type f ! -regex '.*/[0-9a-f]{40}' -exec sha1sum {} + | cut -c1-40)
  find "$2" -regextype posix-extended -type f -regex '.*/[0-9a-f]{40}' -delete
  for f in "$fresh"/*; do
    n=$(basename "$f"); grep -qx "$n" <<<"$hand" || cp "$f" "$2/$n"
  done
  rm -rf "$fresh"
}
for t in "${targets[@]}"; do
  kept=fuzz/corpus/$t; mkdir -p "$kept"
  work=$(mktemp -d -t "fuzz-$t.XXXXXX")
  echo "== $t: ${secs}s from $(ls "$kept" | wc -l) kept inputs"
  log=build-fuzz/$t.log
  # Inputs longer than libFuzzer's default 4096 bytes where a target's code changes beyond it
  # (the pair search's SIMD batches: 64 blocks of 64 bytes, and the batch after).
  extra=(); case $t in pair_search) extra=(-max_len=20000) ;; esac
  if ! build-fuzz/fuzz/${t}_fuzz -max_total_time="$secs" -rss_limit_mb=4096 -timeout=10 "${extra[@]}" \
        -print_final_stats=1 -artifact_prefix="build-fuzz/$t-" "$work" "$kept" >"$log" 2>&1; then
    echo "fuzz-campaign.sh: $t failed; see $log and build-fuzz/$t-*" >&2; rm -rf "$work"; exit 1
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | head -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)  # the campaign's last line, not the merge's
  before=$(ls "$kept" | wc -l)
  minimise "$t" "$kept" "$work" >>"$log" 2>&1
  after=$(ls "$kept" | wc -l)
  echo "$(date -u +%FT%TZ) $t secs=$secs execs=$execs execs/s=$(( ${execs:-0} / secs )) $cov corpus=$before->$after" \
    "sanitizers=address,undefined cpu=\"$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)\"" \
    | tee -a build-fuzz/campaigns.log
  rm -rf "$work"
done
