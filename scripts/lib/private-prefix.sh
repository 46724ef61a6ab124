# Shared by scripts/install-test-servers.sh and scripts/install-test-mtas.sh (sourced, not run):
# apt helpers and the "apt-get download + dpkg -x into a private prefix" step for test servers
# whose packages conflict with each other or with what the project installs.
# The caller sets SELF (its name, for messages) before sourcing, and runs as root.

installed() {  # installed PKG: true when dpkg has it fully installed
  [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null | cut -c1-2)" = "ii" ]
}
# The candidate version of PKG. awk reads to the end: an early exit would SIGPIPE apt-cache and,
# under pipefail, fail the pipeline.
candidate() { apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ && !v {v=$2} END {print v}'; }

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold
  --no-install-recommends)
lists_present() { compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; }
UPDATED=0
apt_update_once() { if [ $UPDATED = 0 ]; then apt-get update -q; UPDATED=1; fi; }

apt_install_retry() {  # apt_install_retry PKG...: install; on failure refresh the lists once, retry
  if ! apt-get install "${APT_OPTS[@]}" "$@"; then
    [ $UPDATED = 1 ] && return 1
    echo "$SELF: install failed; refreshing the package lists once" >&2
    apt_update_once
    apt-get install "${APT_OPTS[@]}" "$@"
  fi
}

prefix_versions() {  # prefix_versions DEST: what unpack_into recorded, on one line
  tr '\n' ' ' <"$1/.relaypermit-versions" 2>/dev/null || echo '(missing)'
}

list_versions() {  # list_versions NAME...: the caller's APT_PKGS with their versions, then $PREFIX/NAME
  local p s
  for p in "${APT_PKGS[@]}"; do
    printf '%-24s %s\n' "$p" "$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || echo '(not installed)')"
  done
  for s in "$@"; do
    printf '%-24s %s\n' "$PREFIX/$s" "$(prefix_versions "$PREFIX/$s")"
  done
}

unpack_into() {  # unpack_into DEST DOWNLOAD_DIR PKG...: dpkg -x the candidates, unless DEST has them
  local dest=$1 dl=$2 want="" p deb
  shift 2
  for p in "$@"; do want+="$p=$(candidate "$p")"$'\n'; done
  if [ -f "$dest/.relaypermit-versions" ] && [ "$(cat "$dest/.relaypermit-versions")" = "${want%$'\n'}" ]; then
    echo "$SELF: $dest up to date ($(echo $want))"
    return 0
  fi
  echo "$SELF: unpacking $* into $dest"
  mkdir -p "$dl"
  # apt-get download runs as the _apt user: the directory must be writable by it.
  chown _apt "$dl" 2>/dev/null || chmod 777 "$dl"
  (cd "$dl" && apt-get download -q "$@") || { apt_update_once; (cd "$dl" && apt-get download -q "$@"); }
  rm -rf "$dest.new"
  mkdir -p "$dest.new"
  for deb in "$dl"/*.deb; do dpkg -x "$deb" "$dest.new"; done
  printf '%s' "${want%$'\n'}" >"$dest.new/.relaypermit-versions"
  rm -rf "$dest"
  mv "$dest.new" "$dest"
  chmod 755 "$(dirname "$dest")" "$dest"
}
