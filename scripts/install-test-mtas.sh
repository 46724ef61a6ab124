#!/bin/bash
# Installs the MTAs that tests/integration/test_mta_real.py drives besides Postfix: Sendmail 8.17,
# Exim 4.96 and OpenSMTPD 6.8 from Debian 12 (bookworm), as root, non-interactively and
# idempotently.
#
#   scripts/install-test-mtas.sh            install what is missing
#   scripts/install-test-mtas.sh --list     print what is (or would be) in use, change nothing
#
# All of them conflict with the Postfix that `scripts/install-deps.sh --test` installs (they
# provide mail-transport-agent), so they are never `dpkg -i`'d: their .debs are fetched with
# `apt-get download` and unpacked with `dpkg -x` into private prefixes
# /opt/relaypermit-test/{sendmail,exim,opensmtpd}; the tests run them from there with private
# configs, spools and loopback ports. Installed with apt (they conflict with nothing): m4 (builds
# sendmail.cf from sendmail-cf's macros), ucspi-tcp (tcpserver), util-linux (unshare, nsenter).
#
# What the packages' maintainer scripts would have done and the unpacked binaries need:
#  - system users: Debian-exim (compiled into exim4), opensmtpd and opensmtpq (smtpd's
#    privilege separation);
#  - smtpctl setgid opensmtpq (it refuses to run otherwise);
#  - the empty directories /var/lib/opensmtpd/empty (smtpd's chroot) and /var/spool/smtpd (the
#    tests bind-mount a private spool over it in their own mount namespace).
# Nothing is started, and no system configuration (/etc/mail, /etc/exim4, /etc/smtpd.conf) is
# written.
set -euo pipefail

PREFIX=/opt/relaypermit-test
LIST_ONLY=0
for arg in "$@"; do
  case "$arg" in
    --list) LIST_ONLY=1 ;;
    -h|--help) sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-test-mtas.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done
if [ "$(id -u)" != 0 ]; then
  echo "install-test-mtas.sh: must run as root" >&2; exit 2
fi

APT_PKGS=(m4 ucspi-tcp util-linux libdb5.3 libevent-2.1-7 libssl3 libsasl2-2 libwrap0
  libldap-2.5-0 libnsl2 liblockfile1 libgnutls30 libgnutls-dane0 libidn12 libidn2-0
  libpcre2-8-0 libpam0g libcrypt1 zlib1g)

# prefix name -> packages unpacked into it (never installed)
declare -A UNPACK=(
  [sendmail]="sendmail-bin sendmail-cf sendmail-base"
  [exim]="exim4-daemon-light exim4-base exim4-config"
  [opensmtpd]="opensmtpd"
)
MTAS=(sendmail exim opensmtpd)

SELF=install-test-mtas.sh
. "$(dirname "$0")/lib/private-prefix.sh"

if [ $LIST_ONLY = 1 ]; then
  list_versions "${MTAS[@]}"
  exit 0
fi

lists_present || apt_update_once

# --- 1. packages installed with apt (no services among them) --------------------------------
MISSING=()
for p in "${APT_PKGS[@]}"; do installed "$p" || MISSING+=("$p"); done
if [ ${#MISSING[@]} != 0 ]; then
  echo "install-test-mtas.sh: apt-get install ${MISSING[*]}"
  apt_install_retry "${MISSING[@]}"
else
  echo "install-test-mtas.sh: all ${#APT_PKGS[@]} apt packages already installed"
fi

# --- 2. the MTAs: apt-get download + dpkg -x into private prefixes --------------------------
DL=$(mktemp -d /tmp/rp-test-mtas.XXXXXX)
trap 'rm -rf "$DL"' EXIT
chmod 755 "$DL"
mkdir -p "$PREFIX"
chmod 755 "$PREFIX"
for s in "${MTAS[@]}"; do
  unpack_into "$PREFIX/$s" "$DL/$s" ${UNPACK[$s]}
done

# --- 3. what the maintainer scripts would have created ---------------------------------------
if ! getent passwd Debian-exim >/dev/null; then
  echo "install-test-mtas.sh: creating the system user Debian-exim (compiled into exim4)"
  adduser --system --group --quiet --home /var/spool/exim4 --no-create-home --disabled-login \
    --force-badname Debian-exim
fi
for name in opensmtpd opensmtpq; do
  getent group "$name" >/dev/null || addgroup --system --quiet "$name"
  if ! getent passwd "$name" >/dev/null; then
    echo "install-test-mtas.sh: creating the system user $name (OpenSMTPD's privilege separation)"
    adduser --system --quiet --home /var/lib/opensmtpd/empty --no-create-home --disabled-password \
      --ingroup "$name" "$name"
  fi
done
SMTPCTL=$PREFIX/opensmtpd/usr/sbin/smtpctl
if [ "$(stat -c '%G %a' "$SMTPCTL")" != "opensmtpq 2755" ]; then
  chgrp opensmtpq "$SMTPCTL"
  chmod 2755 "$SMTPCTL"
fi
[ -d /var/lib/opensmtpd/empty ] || { mkdir -p /var/lib/opensmtpd/empty; chmod 755 /var/lib/opensmtpd/empty; }
[ -d /var/spool/smtpd ] || { mkdir -p /var/spool/smtpd; chmod 711 /var/spool/smtpd; }

echo "install-test-mtas.sh: done. In use:"
for p in m4 ucspi-tcp; do
  printf '  %-26s %s\n' "$p" "$(dpkg-query -W -f='${Version}' "$p")"
done
for s in "${MTAS[@]}"; do
  printf '  %-26s %s\n' "$PREFIX/$s" "$(tr '\n' ' ' <"$PREFIX/$s/.relaypermit-versions")"
done
