#!/bin/bash
# Builds the Debian package on Debian 12 (root, apt):  bash scripts/build-deb.sh
# Installs what the build needs (debhelper, the -dev libraries of scripts/install-deps.sh,
# lintian), builds from a copy of the tracked files in a temporary directory (the checkout stays
# clean; no download happens during the build), writes dist/relaypermit_<version>_<arch>.deb and
# runs lintian on it (errors fail the script; warnings are printed). Then, for example:
#   apt-get install ./dist/relaypermit_*.deb
# JOBS=N sets the build parallelism (default: the number of CPUs). LINTIAN=0 skips lintian.
set -euo pipefail
cd "$(dirname "$0")/.."
TOP=$(pwd)
export DEBIAN_FRONTEND=noninteractive

bash scripts/install-deps.sh
need=(debhelper dpkg-dev build-essential fakeroot lintian)
missing=()
for p in "${need[@]}"; do
  [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | cut -c1-2)" = ii ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "build-deb.sh: installing ${missing[*]}"
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -q --no-install-recommends "${missing[@]}"
fi

WORK=$(mktemp -d -t relaypermit-deb.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/src"
if git -C "$TOP" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git -C "$TOP" ls-files -z --cached --others --exclude-standard | tar -C "$TOP" --null -T - -cf - | tar -C "$WORK/src" -xf -
else
  tar -C "$TOP" --exclude='./build*' --exclude=./dist -cf - . | tar -C "$WORK/src" -xf -
fi
(cd "$WORK/src" && DEB_BUILD_OPTIONS="parallel=${JOBS:-$(nproc)} nocheck" dpkg-buildpackage -us -uc -b)
mkdir -p dist
cp "$WORK"/relaypermit_*.deb dist/
deb=$(ls -t dist/relaypermit_*.deb | head -1)
echo "build-deb.sh: wrote $deb"
if [ "${LINTIAN:-1}" = 1 ]; then
  # --fail-on error: an error fails the build; each remaining warning is explained in
  # debian/source/lintian-overrides or docs/packaging.md.
  lintian --fail-on error --info "$deb"
fi
