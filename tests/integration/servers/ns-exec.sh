#!/bin/sh
# ns-exec.sh LOGSOCK SCRATCHDIR [--bind SRC DST]... [--netlo] -- COMMAND...
# Runs COMMAND in the current (private, see below) mount namespace with /dev/log pointing at
# LOGSOCK, so that a server's syslog() goes to the test's private rsyslogd instead of the
# system's. Must be started under `unshare -m --propagation private` (and `-n` with --netlo):
# the mounts made here are then invisible outside.
#   /dev is replaced by a tmpfs holding bind mounts of every original /dev entry except `log`,
#   plus a symlink /dev/log -> LOGSOCK (the host's /dev is never written to).
#   --bind SRC DST  bind-mounts SRC over DST (e.g. a private /etc/courier/authdaemonrc).
#   --netlo         brings up `lo` (for a private network namespace, `unshare -n`).
set -eu
sock=$1; scratch=$2; shift 2
while [ $# -gt 0 ]; do
  case "$1" in
    --bind) mount --bind "$2" "$3"; shift 3 ;;
    --netlo) ip link set lo up; shift ;;
    --) shift; break ;;
    *) echo "ns-exec.sh: bad argument $1" >&2; exit 2 ;;
  esac
done
old=$scratch/olddev
mkdir -p "$old"
mount --rbind /dev "$old"
mount -t tmpfs -o mode=755,size=64k rpdev /dev
for e in "$old"/* ; do
  n=${e##*/}
  [ "$n" = log ] && continue
  if [ -L "$e" ]; then cp -P "$e" "/dev/$n"
  elif [ -d "$e" ]; then mkdir "/dev/$n"; mount --rbind "$e" "/dev/$n"
  else : >"/dev/$n"; mount --bind "$e" "/dev/$n"; fi
done
ln -s "$sock" /dev/log
umount -l "$old"
exec "$@"
