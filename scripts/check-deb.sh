#!/bin/bash
# Installs dist/relaypermit_*.deb with apt and checks what the package promises (issue "Debian
# package"): the files, the account and its adm membership, the conffile, man pages, units,
# bash completion, a daemon that starts from the installed files, and purge. Run as root on a
# machine (or a fresh-machine.sh root) where scripts/build-deb.sh has written the package:
#   bash scripts/build-deb.sh && bash scripts/check-deb.sh
# There is no systemd inside a chroot: the daemon is started by hand with the unit's command.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
deb=$(ls -t dist/relaypermit_*.deb | head -1)
fail=0
ok()   { echo "ok   $*"; }
bad()  { echo "FAIL $*"; fail=1; }
check() { local what=$1; shift; if "$@" >/dev/null 2>&1; then ok "$what"; else bad "$what"; fi; }

apt-get -o DPkg::Lock::Timeout=600 install -y -q "./$deb"
for f in /usr/sbin/relaypermit /etc/relaypermit/relaypermit.toml \
         /usr/share/man/man8/relaypermit.8.gz /usr/share/man/man5/relaypermit.toml.5.gz \
         /lib/systemd/system/relaypermit.service /lib/systemd/system/relaypermit-policy.socket \
         /lib/systemd/system/relaypermit-fifo.socket \
         /usr/lib/sysusers.d/relaypermit.conf /usr/lib/tmpfiles.d/relaypermit.conf \
         /usr/share/bash-completion/completions/relaypermit /usr/share/doc/relaypermit/copyright; do
  check "installed: $f" test -e "$f"
done
check "conffile: /etc/relaypermit/relaypermit.toml" \
  sh -c "dpkg-query -W -f='\${Conffiles}' relaypermit | grep -q ' /etc/relaypermit/relaypermit.toml '"
check "account relaypermit exists" getent passwd relaypermit
check "relaypermit is in group adm (reads /var/log/mail.log)" sh -c "id -nG relaypermit | tr ' ' '\n' | grep -qx adm"
check "socket units are not enabled" sh -c "! test -e /etc/systemd/system/sockets.target.wants/relaypermit-policy.socket"
check "the shipped config passes config check" /usr/sbin/relaypermit config check --config /etc/relaypermit/relaypermit.toml
check "man relaypermit.toml(5) renders" sh -c "zcat /usr/share/man/man5/relaypermit.toml.5.gz | grep -q '^.TH'"

# The daemon from the installed files, as the unit runs it (minus systemd's sandbox).
touch /var/log/mail.log
install -d -o relaypermit -g relaypermit -m 0750 /var/lib/relaypermit /run/relaypermit
setpriv_cmd=(setpriv --reuid=relaypermit --regid=relaypermit --init-groups)
"${setpriv_cmd[@]}" /usr/sbin/relaypermit run --config /etc/relaypermit/relaypermit.toml \
  >/tmp/rp-deb.log 2>&1 &
pid=$!
for _ in $(seq 1 300); do
  if /usr/sbin/relaypermit status >/dev/null 2>&1; then break; fi
  kill -0 $pid 2>/dev/null || break
  sleep 0.1
done
check "installed daemon answers relaypermit status" /usr/sbin/relaypermit status
check "installed daemon answers the policy port" \
  sh -c "printf 'request=smtpd_access_policy\nclient_address=192.0.2.7\n\n' | timeout 5 bash -c 'exec 3<>/dev/tcp/127.0.0.1/10031; cat >&3; head -1 <&3' | grep -q '^action='"
kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true

if [ "${LINTIAN:-1}" = 1 ]; then check "lintian: no error" lintian --fail-on error "$deb"; fi
apt-get -y -q purge relaypermit
check "purge removed /var/lib/relaypermit" sh -c "! test -e /var/lib/relaypermit"
check "purge removed /etc/relaypermit" sh -c "! test -e /etc/relaypermit/relaypermit.toml"
[ $fail = 0 ] && echo "check-deb.sh: all checks passed" || { echo "check-deb.sh: some checks failed" >&2; exit 1; }
