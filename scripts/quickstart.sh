#!/bin/bash
# Install the build dependencies, build relaypermit, and run the daemon on its built-in defaults:
# it follows /var/log/mail.log (waiting for it if missing), keeps permits in /var/lib/relaypermit
# and serves the Postfix policy service on 127.0.0.1:10031. Stop it with Ctrl-C.
# Extra arguments go to `relaypermit run` (e.g. --config FILE).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
# Only the daemon: the unit tests, fuzz replays and benchmarks are scripts/test.sh's business
# (building them too took minutes before the first answer on a fresh machine).
cmake -S . -B build -DRELAYPERMIT_TESTS=OFF -DRELAYPERMIT_BENCH=OFF
cmake --build build -j"$(nproc)" --target relaypermit

for bin in build/relaypermit build/src/cli/relaypermit; do
  if [ -x "$bin" ]; then exec "$bin" run "$@"; fi
done
echo "quickstart.sh: built, but no relaypermit executable found under build/" >&2
exit 1
