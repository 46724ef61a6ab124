#!/bin/bash
# Installs what relaypermit needs from Debian 12 (bookworm) with apt.
#   scripts/install-deps.sh          build dependencies (compiler, CMake, libraries)
#   scripts/install-deps.sh --test   also the real servers and tools the integration tests drive
#                                    (Postfix, Dovecot POP3/IMAP, curl, swaks, python3-pytest)
# Idempotent and non-interactive: when everything is installed it changes nothing and needs no
# network. Runs as root (or through sudo when that exists). Works on a minbase root with no
# sudo, python or ca-certificates.
#
# Mail servers installed here are only test tools: the tests start private instances on
# loopback ports. So that a container or chroot does not end up with the system Postfix and
# Dovecot running on the standard ports, service starts are denied during the install (a
# temporary policy-rc.d, only when none exists) and a service that started anyway because of
# this install is stopped. Services that were installed before are left alone.
set -euo pipefail

WITH_TEST=0
for arg in "$@"; do
  case "$arg" in
    --test) WITH_TEST=1 ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-deps.sh: unknown argument: $arg (usage: install-deps.sh [--test])" >&2; exit 2 ;;
  esac
done

BUILD_PKGS=(cmake g++ make pkg-config libtomlplusplus-dev libfmt-dev libsqlite3-dev libpcre2-dev
  nlohmann-json3-dev libgtest-dev libgmock-dev libbenchmark-dev libsystemd-dev libhyperscan-dev
  libcdb-dev libdb5.3-dev liblmdb-dev libgnutls28-dev libhiredis-dev libpq-dev libmariadb-dev)
# bsdutils provides script(1), used to see `postfix start` errors without a tty.
# clang (with its sanitizer runtimes) builds build-asan: it compiles the suite a third faster than
# g++ and its UBSan checks more (alignment of references, for one).
TEST_PKGS=(clang libclang-rt-14-dev
  postfix dovecot-core dovecot-pop3d dovecot-imapd swaks curl python3 python3-pytest
  bsdutils postfix-cdb ucspi-tcp rsyslog rsyslog-gnutls openssl systemd-journal-remote
  redis-server postgresql-15 mariadb-server postfix-pgsql postfix-mysql postfix-lmdb)

PKGS=("${BUILD_PKGS[@]}")
[ "$WITH_TEST" = 1 ] && PKGS+=("${TEST_PKGS[@]}")

SUDO=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else
    echo "install-deps.sh: must run as root (no sudo here)" >&2; exit 2; fi
fi

installed() {  # installed PKG: true when dpkg has it fully installed
  [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null | cut -c1-2)" = "ii" ]
}

MISSING=()
for p in "${PKGS[@]}"; do installed "$p" || MISSING+=("$p"); done
if [ ${#MISSING[@]} = 0 ]; then
  echo "install-deps.sh: all ${#PKGS[@]} packages already installed"
  exit 0
fi
echo "install-deps.sh: installing ${MISSING[*]}"

export DEBIAN_FRONTEND=noninteractive
APT_OPTS=(-y -q -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold
  --no-install-recommends)

# Packages whose services we must not leave running if this run installs them.
NEW_POSTFIX=0; NEW_DOVECOT=0
installed postfix || NEW_POSTFIX=1
installed dovecot-core || NEW_DOVECOT=1

if [ $NEW_POSTFIX = 1 ] && [[ " ${MISSING[*]} " == *" postfix "* ]]; then
  # Without this the postfix postinst asks which kind of mail server this is.
  printf '%s\n' 'postfix postfix/main_mailer_type select Local only' \
    | "${SUDO[@]}" debconf-set-selections
fi

POLICY=/usr/sbin/policy-rc.d
OUR_POLICY=0
cleanup_policy() {
  if [ $OUR_POLICY = 1 ]; then "${SUDO[@]}" rm -f "$POLICY"; OUR_POLICY=0; fi
}
trap cleanup_policy EXIT
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\n# temporary, from relaypermit scripts/install-deps.sh: deny service starts\nexit 101\n' \
    | "${SUDO[@]}" tee "$POLICY" >/dev/null
  "${SUDO[@]}" chmod 755 "$POLICY"
  OUR_POLICY=1
fi

# `apt-get update` only when the package lists are missing or an install fails for want of
# them (then once).
lists_present() { compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; }
UPDATED=0
if ! lists_present; then "${SUDO[@]}" apt-get update -q; UPDATED=1; fi
if ! "${SUDO[@]}" apt-get install "${APT_OPTS[@]}" "${MISSING[@]}"; then
  if [ $UPDATED = 1 ]; then exit 1; fi
  echo "install-deps.sh: install failed; refreshing the package lists once and retrying" >&2
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" apt-get install "${APT_OPTS[@]}" "${MISSING[@]}"
fi
cleanup_policy

# Stop services that this install started anyway (no policy-rc.d effect, e.g. a pre-existing
# policy that allows starts). Only those from packages that were not installed before.
stop_if_running() {  # stop_if_running NAME PIDFILE COMMAND...
  local name=$1 pidfile=$2; shift 2
  if [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile" 2>/dev/null)" 2>/dev/null; then
    echo "install-deps.sh: stopping the system $name this install started (tests use private instances)"
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
      "${SUDO[@]}" systemctl stop "$name" || "${SUDO[@]}" "$@" || true
    else
      "${SUDO[@]}" "$@" || true
    fi
  fi
}
if [ $NEW_POSTFIX = 1 ] && installed postfix; then
  stop_if_running postfix /var/spool/postfix/pid/master.pid postfix stop
fi
if [ $NEW_DOVECOT = 1 ] && installed dovecot-core; then
  stop_if_running dovecot /run/dovecot/master.pid doveadm stop
fi

STILL=()
for p in "${PKGS[@]}"; do installed "$p" || STILL+=("$p"); done
if [ ${#STILL[@]} != 0 ]; then
  echo "install-deps.sh: still missing: ${STILL[*]}" >&2
  exit 1
fi
echo "install-deps.sh: done"
