"""[[export]] map files end to end: the daemon writes them, the real readers read them.

Postfix's `postmap -q KEY cdb:FILE` (package postfix-cdb) reads the postfix-cdb export; tcpserver
-x (ucspi-tcp) reads the tcprules-cdb export per connection, so a client from 127.0.0.2
(permitted) sees RELAYCLIENT and one from 127.0.0.3 does not; relay-ctrl-dir gets one file per
permit; makemap -u (sendmail-bin, or $RP_MAKEMAP for an extracted copy) dumps the access.db.
After the permit's ttl every file drops it again.

Until the daemon wires [[export]] (src/exports/exporter.hpp: open_exporter), the exporters do not
create their directories at start, and the test skips saying so.
"""

from __future__ import annotations

import os
import shutil
import time

import pytest

from rp_harness import PRINT_RELAYCLIENT, ask_tcpserver, run, wait_until


def _postmap_cdb_available() -> bool:
    if shutil.which("postmap") is None:
        return False
    r = run(["postconf", "-m"])
    return r.returncode == 0 and "cdb" in r.stdout.split()


def _makemap() -> str | None:
    env = os.environ.get("RP_MAKEMAP")
    if env and os.access(env, os.X_OK):
        return env
    return shutil.which("makemap")


def postmap_q(key: str, table: str) -> str | None:
    r = run(["postmap", "-q", key, table])
    return r.stdout.strip() if r.returncode == 0 else None


def test_exports_follow_permits_and_expiry(make_daemon, testdir, tcpserver):
    if os.geteuid() != 0:
        pytest.skip("integration tests need root")
    if not _postmap_cdb_available():
        pytest.skip("postmap with the cdb map type missing: apt-get install postfix-cdb")
    etc = testdir / "etc"
    tcp_static = testdir / "tcp.smtp"
    tcp_static.write_text('127.0.0.4:deny\n127.:allow\n:allow\n')
    access_static = testdir / "access"
    access_static.write_text("Connect:localhost RELAY\n")
    extra = (
        f'[[export]]\ntype = "postfix-cdb"\npath = "{etc}/postfix/relaypermit.cdb"\n\n'
        f'[[export]]\ntype = "tcprules-cdb"\npath = "{etc}/tcp/tcp.smtp.cdb"\nstatic = "{tcp_static}"\n\n'
        f'[[export]]\ntype = "sendmail-access"\npath = "{etc}/mail/access.db"\nstatic = "{access_static}"\n\n'
        f'[[export]]\ntype = "relay-ctrl-dir"\npath = "{testdir}/relay-ctrl/allow"\n')
    d = make_daemon(extra=extra)
    d.start()
    d.check("127.0.0.9")  # answered from the loop: the exporters were opened before it ran
    if not (etc / "postfix").is_dir():
        pytest.skip("[[export]] is not wired into the daemon in this build (no export directory created)")

    table = f"cdb:{etc}/postfix/relaypermit"
    tcp_cdb = etc / "tcp" / "tcp.smtp.cdb"
    rc_file = testdir / "relay-ctrl" / "allow" / "127.0.0.2"
    r = d.cli("allow", "127.0.0.2", "--user", "alice", "--ttl", "4s")
    assert r.returncode == 0, r.stdout + r.stderr
    granted = time.monotonic()

    wait_until(lambda: postmap_q("127.0.0.2", table) == "OK", 5, what="postfix-cdb to hold 127.0.0.2")
    wait_until(tcp_cdb.exists, 5, what="tcprules export")
    wait_until(rc_file.exists, 5, what="relay-ctrl file")
    assert time.monotonic() - granted < 4
    assert postmap_q("127.0.0.3", table) is None
    assert rc_file.read_bytes() == b"USER=alice\0"

    port = tcpserver("-x", str(tcp_cdb), PRINT_RELAYCLIENT)
    wait_until(lambda: ask_tcpserver("127.0.0.2", port) == "rc=\n", 5, what="tcpserver to see the permit")
    assert ask_tcpserver("127.0.0.3", port) == "rc=unset\n"  # the admin's `127.:allow`: no RELAYCLIENT
    assert ask_tcpserver("127.0.0.4", port) == ""              # the admin's deny: closed at once

    makemap = _makemap()
    if makemap:
        dump = run([makemap, "-C", "/dev/null", "-u", "hash", str(etc / "mail" / "access.db")])
        assert dump.returncode == 0, dump.stderr
        assert sorted(dump.stdout.splitlines()) == ["connect:127.0.0.2\tRELAY", "connect:localhost\tRELAY"]

    # expiry: every export drops the permit again
    wait_until(lambda: postmap_q("127.0.0.2", table) is None, 10, what="postfix-cdb to drop 127.0.0.2")
    wait_until(lambda: not rc_file.exists(), 5, what="relay-ctrl file removal")
    wait_until(lambda: ask_tcpserver("127.0.0.2", port) == "rc=unset\n", 5, what="tcpserver to drop the permit")
    if makemap:
        dump = run([makemap, "-C", "/dev/null", "-u", "hash", str(etc / "mail" / "access.db")])
        assert dump.stdout.splitlines() == ["connect:localhost\tRELAY"]
    assert (testdir / "relay-ctrl" / "allow").is_dir()
