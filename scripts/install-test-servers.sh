#!/bin/bash
# Installs the extra real POP3/IMAP servers that tests/integration/test_real_servers.py drives,
# on Debian 12 (bookworm), as root, non-interactively and idempotently.
#
#   scripts/install-test-servers.sh            install what is missing
#   scripts/install-test-servers.sh --list     print what is (or would be) in use, change nothing
#
# Courier, Cyrus, popa3d, solid-pop3d and GNU Mailutils pop3d/imap4d conflict with the Dovecot
# packages that `scripts/install-deps.sh --test` installs (they all provide pop3-server or
# imap-server). They are never `dpkg -i`'d: their .debs are fetched with `apt-get download` and
# unpacked with `dpkg -x` into private prefixes under /opt/relaypermit-test/<server>, and the tests
# run the binaries from there with private configs and ports. Only packages that conflict with
# nothing are installed with apt: rsyslog (the tests run private rsyslogd instances), ucspi-tcp
# (tcpserver, for inetd-style servers), courier-authlib + courier-authdaemon (Courier's
# authentication daemon), sasl2-bin and the SASL modules (Cyrus), and the shared libraries the
# unpacked servers link against.
#
# Service starts are denied during the install (a temporary policy-rc.d, only when none exists),
# and system services that this install started anyway (rsyslog, courier-authdaemon, saslauthd)
# are stopped. The system Dovecot and Postfix are not touched.
set -euo pipefail

PREFIX=/opt/relaypermit-test
LIST_ONLY=0
for arg in "$@"; do
  case "$arg" in
    --list) LIST_ONLY=1 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-test-servers.sh: unknown argument: $arg" >&2; exit 2 ;;
  esac
done
if [ "$(id -u)" != 0 ]; then
  echo "install-test-servers.sh: must run as root" >&2; exit 2
fi

# Installed normally with apt: conflict with nothing the project installs.
APT_PKGS=(rsyslog ucspi-tcp courier-authlib courier-authdaemon sasl2-bin libsasl2-modules db-util
  curl
  # drop-in protocols (tests/integration/test_dropins.py): rpcgen, the ONC RPC library, rpcbind
  rpcsvc-proto libtirpc-dev rpcbind
  # test_metrics.py reads /metrics with a real Prometheus parser; test_socket_activation.py
  # passes listeners with systemd-socket-activate
  python3-prometheus-client systemd
  # libraries of the unpacked servers
  libcourier-unicode4 libidn12 libgamin0 libgdbm6 libpcre3 libgnutls30 libclamav12 libical3
  libicu72 libjansson4 libkrb5-3 libldap-2.5-0 libpq5 libsqlite3-0 libxapian30 libxml2 libzephyr4
  libwrap0 libcom-err2 liblockfile1 libpam0g libmailutils9 libmu-dbm9 libgsasl18
  libkyotocabinet16v5 libnsl2 libunistring2 libgssapi-krb5-2 libk5crypto3 libdb5.3 libssl3)

# server prefix name -> packages unpacked into it (never installed)
declare -A UNPACK=(
  [courier]="courier-base courier-pop courier-imap"
  [cyrus]="cyrus-common cyrus-pop3d cyrus-imapd"
  [popa3d]="popa3d"
  [solid-pop3d]="solid-pop3d"
  [mailutils]="mailutils-pop3d mailutils-imap4d"
)

SELF=install-test-servers.sh
. "$(dirname "$0")/lib/private-prefix.sh"

if [ $LIST_ONLY = 1 ]; then
  list_versions "${!UNPACK[@]}"
  exit 0
fi

lists_present || apt_update_once

# --- 1. packages installed with apt ------------------------------------------------------------
MISSING=()
for p in "${APT_PKGS[@]}"; do installed "$p" || MISSING+=("$p"); done
SERVICES=(rsyslog courier-authdaemon saslauthd)
declare -A WAS_INSTALLED=()
for p in rsyslog courier-authdaemon sasl2-bin; do installed "$p" && WAS_INSTALLED[$p]=1 || true; done

if [ ${#MISSING[@]} != 0 ]; then
  echo "install-test-servers.sh: apt-get install ${MISSING[*]}"
  POLICY=/usr/sbin/policy-rc.d
  OUR_POLICY=0
  cleanup_policy() { if [ $OUR_POLICY = 1 ]; then rm -f "$POLICY"; OUR_POLICY=0; fi; }
  trap cleanup_policy EXIT
  if [ ! -e "$POLICY" ]; then
    printf '#!/bin/sh\n# temporary, from relaypermit scripts/install-test-servers.sh: deny service starts\nexit 101\n' >"$POLICY"
    chmod 755 "$POLICY"
    OUR_POLICY=1
  fi
  apt_install_retry "${MISSING[@]}"
  cleanup_policy
  # Stop system services this install started anyway (tests run private instances).
  stop_pidfile() {  # stop_pidfile NAME PIDFILE
    local pid
    pid=$(cat "$2" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      echo "install-test-servers.sh: stopping the system $1 that this install started"
      if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
        systemctl stop "$1" || kill "$pid" || true
      else
        kill "$pid" || true
      fi
    fi
  }
  [ -n "${WAS_INSTALLED[rsyslog]:-}" ] || stop_pidfile rsyslog /run/rsyslogd.pid
  [ -n "${WAS_INSTALLED[courier-authdaemon]:-}" ] || stop_pidfile courier-authdaemon /run/courier/authdaemon/pid
  [ -n "${WAS_INSTALLED[sasl2-bin]:-}" ] || stop_pidfile saslauthd /run/saslauthd/saslauthd.pid
else
  echo "install-test-servers.sh: all ${#APT_PKGS[@]} apt packages already installed"
fi
: "${SERVICES[@]}"

# --- 2. conflicting servers: apt-get download + dpkg -x into private prefixes -----------------
DL=$(mktemp -d /tmp/rp-test-servers.XXXXXX)
trap 'rm -rf "$DL"; [ "${OUR_POLICY:-0}" = 1 ] && rm -f /usr/sbin/policy-rc.d; true' EXIT
chmod 755 "$DL"
mkdir -p "$PREFIX"
for s in courier cyrus popa3d solid-pop3d mailutils; do
  unpack_into "$PREFIX/$s" "$DL/$s" ${UNPACK[$s]}
done

# --- 3. system accounts the unpacked servers expect (what their postinst would create) --------
# Cyrus drops privileges to the compiled-in user "cyrus" (group mail).
if ! getent passwd cyrus >/dev/null; then
  echo "install-test-servers.sh: creating the system user cyrus (Cyrus runs as it)"
  adduser --system --ingroup mail --home /var/lib/cyrus --no-create-home --disabled-password \
    --gecos "Cyrus Mailsystem User" cyrus >/dev/null 2>&1
fi

# popa3d drops privileges to the compiled-in user "popa3d" and chroots to /var/lib/popa3d.
if ! getent passwd popa3d >/dev/null; then
  echo "install-test-servers.sh: creating the system user popa3d (popa3d runs as it)"
  adduser --system --group --home /var/lib/popa3d --no-create-home --disabled-password \
    --gecos "popa3d POP3 server" popa3d >/dev/null 2>&1
fi
# solid-pop3d drops privileges to the compiled-in user "spop3d".
if ! getent passwd spop3d >/dev/null; then
  echo "install-test-servers.sh: creating the system user spop3d (solid-pop3d runs as it)"
  adduser --system --no-create-home --home /nonexistent --disabled-password \
    --gecos "solid-pop3d POP3 server" spop3d >/dev/null 2>&1
fi
# ... and reads bulletins from /var/lib/solid-pop3d/bulletins (a missing directory ends every
# session right after the login).
if [ ! -d /var/lib/solid-pop3d/bulletins ]; then
  mkdir -p /var/lib/solid-pop3d/bulletins; chmod 755 /var/lib/solid-pop3d /var/lib/solid-pop3d/bulletins
fi
if [ ! -d /var/lib/popa3d ]; then mkdir -p /var/lib/popa3d; chmod 755 /var/lib/popa3d; fi
if [ ! -d /var/lib/cyrus ]; then mkdir -p /var/lib/cyrus; chown cyrus:mail /var/lib/cyrus; chmod 750 /var/lib/cyrus; fi

echo "install-test-servers.sh: done. In use:"
for p in rsyslog ucspi-tcp courier-authlib courier-authdaemon sasl2-bin; do
  printf '  %-22s %s\n' "$p" "$(dpkg-query -W -f='${Version}' "$p")"
done
for s in courier cyrus popa3d solid-pop3d mailutils; do
  printf '  %-22s %s\n' "$PREFIX/$s" "$(tr '\n' ' ' <"$PREFIX/$s/.relaypermit-versions")"
done
