#!/bin/bash
# Sanitized libFuzzer campaigns, run by hand (not by CI, which only replays the kept corpora).
#   bash scripts/fuzz-campaign.sh [SECONDS] [TARGET...]
# Builds every fuzz target with clang, libFuzzer, ASan and UBSan (UBSan aborts) in build-fuzz/,
# runs each TARGET (default: all of fuzz/*_fuzz.cpp) for SECONDS (default 600) on one core,
# starting from its kept corpus, then merges what it found back into fuzz/corpus/<name>/ (libFuzzer
# -merge=1 keeps only inputs that add coverage). A crash stops the script with the reproducer
# path; fix it, add the reproducer to the corpus, rerun. Each run's summary line (executions,
# coverage, corpus size) is appended to build-fuzz/campaigns.log for the closing note.
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
cmake --build build-fuzz -j"$(nproc)" --target "${targets[@]/%/_fuzz}" >/dev/null
for t in "${targets[@]}"; do
  kept=fuzz/corpus/$t; mkdir -p "$kept"
  work=$(mktemp -d -t "fuzz-$t.XXXXXX")
  echo "== $t: ${secs}s from $(ls "$kept" | wc -l) kept inputs"
  log=build-fuzz/$t.log
  if ! build-fuzz/fuzz/${t}_fuzz -max_total_time="$secs" -rss_limit_mb=4096 -timeout=10 \
        -print_final_stats=1 -artifact_prefix="build-fuzz/$t-" "$work" "$kept" >"$log" 2>&1; then
    echo "fuzz-campaign.sh: $t failed; see $log and build-fuzz/$t-*" >&2; rm -rf "$work"; exit 1
  fi
  before=$(ls "$kept" | wc -l)
  build-fuzz/fuzz/${t}_fuzz -merge=1 "$kept" "$work" >>"$log" 2>&1
  after=$(ls "$kept" | wc -l)
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | head -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
  echo "$(date -u +%FT%TZ) $t secs=$secs execs=$execs $cov corpus=$before->$after cpu=\"$(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)\"" \
    | tee -a build-fuzz/campaigns.log
  rm -rf "$work"
done
