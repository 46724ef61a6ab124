"""[[export]] map files end to end: the daemon writes them, the real readers read them.

Postfix's `postmap -q KEY cdb:FILE` (package postfix-cdb) reads the postfix-cdb export; tcpserver
-x (ucspi-tcp) reads the tcprules-cdb export per connection, so a client from 127.0.0.2
(permitted) sees RELAYCLIENT and one from 127.0.0.3 does not; relay-ctrl-dir gets one file per
permit; makemap -u (sendmail-bin, or $RP_MAKEMAP for an extracted copy) dumps the access.db.
After the permit's ttl every file drops it again.

The lifecycle tests (issue 12 item 3): a write that fails at start (missing `static` file) is
retried until it succeeds, with no further permit change; SIGTERM leaves every export without
dynamic permits; after a start the export is written before the first policy answer.

Until the daemon wires [[export]] (src/exports/exporter.hpp: open_exporter), the exporters do not
create their directories at start, and the test skips saying so.
"""

from __future__ import annotations

import os
import json
import shutil
import subprocess
import time

import pytest

from rp_harness import PRINT_RELAYCLIENT, PolicyClient, ask_tcpserver, run, wait_until


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


def _text(path) -> str:
    return path.read_text() if path.exists() else ""


def _status(d) -> dict:
    r = d.cli("status", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def test_missing_static_at_start_is_retried_until_it_exists(make_daemon, testdir):
    if os.geteuid() != 0:
        pytest.skip("integration tests need root")
    rules = testdir / "tcp.smtp"  # missing at start
    cdb = testdir / "tcp" / "tcp.smtp.cdb"
    d = make_daemon(extra=f'[[export]]\ntype = "tcprules-cdb"\npath = "{cdb}"\nstatic = "{rules}"\n')
    d.start()  # a missing static file is a failed write, not a reason to refuse to serve
    r = d.cli("allow", "127.0.0.2", "--ttl", "30m")
    assert r.returncode == 0, r.stdout + r.stderr
    wait_until(lambda: _status(d)["exports"][0]["failures"] >= 2, 20, what="a retried failure")
    st = _status(d)["exports"][0]
    assert st["failing"] and "does not exist" in st["last_error"], st
    assert not cdb.exists()
    rules.write_text("127.0.0.4:deny\n")  # fixed; no login, no allow, no revoke from here on
    wait_until(cdb.exists, 30, what="the export once the static file exists (retry back-off)")
    data = cdb.read_bytes()
    assert b"127.0.0.4" in data and b"127.0.0.2" in data
    st = _status(d)["exports"][0]
    assert not st["failing"] and st["writes"] >= 1 and st["last_success"], st
    assert (testdir / "rp" / "daemon.stderr").read_text().count("retrying") == 1  # one line per streak


def test_sigterm_leaves_no_dynamic_permit(make_daemon, testdir):
    if os.geteuid() != 0:
        pytest.skip("integration tests need root")
    table = testdir / "opensmtpd-relay"
    rc_dir = testdir / "relay-ctrl"
    tcp_static = testdir / "tcp.smtp"
    tcp_static.write_text("127.0.0.4:deny\n")
    cdb = testdir / "tcp.smtp.cdb"
    d = make_daemon(extra=(f'[[export]]\ntype = "opensmtpd-table"\npath = "{table}"\n\n'
                           f'[[export]]\ntype = "relay-ctrl-dir"\npath = "{rc_dir}"\n\n'
                           f'[[export]]\ntype = "tcprules-cdb"\npath = "{cdb}"\nstatic = "{tcp_static}"\n'))
    d.start()
    for ip in ("127.0.0.2", "127.0.0.3"):
        assert d.cli("allow", ip, "--ttl", "30m").returncode == 0
    wait_until(lambda: "127.0.0.3" in _text(table), 10, what="the table to hold the permits")
    wait_until(lambda: cdb.exists() and b"127.0.0.3" in cdb.read_bytes(), 10, what="the tcprules export to hold them")
    assert (rc_dir / "127.0.0.2").exists()
    assert d.stop() == 0
    lines = [ln for ln in table.read_text().splitlines() if not ln.startswith("#")]
    assert lines == ["0.0.0.0"]
    assert sorted(p.name for p in rc_dir.iterdir()) == []
    data = cdb.read_bytes()
    assert b"127.0.0.4" in data and b"127.0.0.2" not in data and b"127.0.0.3" not in data

    # The permits are still in the store: the next start writes them again.
    d.start()
    wait_until(lambda: "127.0.0.3" in _text(table), 10, what="the permits back after the start")


def test_first_answer_comes_after_the_export_is_written(make_daemon, testdir):
    if os.geteuid() != 0:
        pytest.skip("integration tests need root")
    table = testdir / "opensmtpd-relay"
    d = make_daemon(extra=f'[[export]]\ntype = "opensmtpd-table"\npath = "{table}"\n')
    d.start()
    assert d.cli("allow", "127.0.0.2", "--ttl", "30m").returncode == 0
    wait_until(lambda: "127.0.0.2" in _text(table), 10, what="the table to hold the permit")
    assert d.stop() == 0
    table.unlink()  # whatever a stop left: the start must write the file before answering

    err = open(d.stderr_path, "a")
    d.proc = subprocess.Popen([str(d.binary), "run", "--config", str(d.config)],
                              stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    err.close()

    def first_answer():
        assert d.proc.poll() is None, "the daemon exited"
        try:
            with PolicyClient(d.policy_endpoint, timeout=10) as c:
                return c.ask("127.0.0.2")
        except (ConnectionRefusedError, FileNotFoundError):
            return None
    reply = wait_until(first_answer, 20, what="the first policy answer", interval=0.001)
    content = _text(table) or "(no file)"
    assert reply["action"] == "OK", reply
    assert "\n127.0.0.2\n" in content, content


def test_exports_clean_after_a_crash(make_daemon, testdir):
    """What ExecStopPost= runs: after kill -9 the files still hold permits; `exports clean`
    rewrites them without, and refuses while a daemon answers."""
    if os.geteuid() != 0:
        pytest.skip("integration tests need root")
    table = testdir / "opensmtpd-relay"
    runs = testdir / "after-write-runs"
    d = make_daemon(extra=(f'[[export]]\ntype = "opensmtpd-table"\npath = "{table}"\n'
                           f'after_write = ["/bin/sh", "-c", "echo run >> {runs}"]\n'))
    d.start()
    assert d.cli("allow", "127.0.0.2", "--ttl", "30m").returncode == 0
    wait_until(lambda: "127.0.0.2" in _text(table), 10, what="the table to hold the permit")
    r = d.cli("exports", "clean")
    assert r.returncode == 2 and "daemon answers" in r.stderr, r.stdout + r.stderr
    assert "127.0.0.2" in _text(table)
    d.kill9()
    assert "127.0.0.2" in _text(table)  # what a crash leaves
    before = _text(runs).count("run")
    r = d.cli("exports", "clean")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 export(s) rewritten without permits" in r.stdout
    assert [ln for ln in _text(table).splitlines() if not ln.startswith("#")] == ["0.0.0.0"]
    assert _text(runs).count("run") == before + 1  # after_write told the MTA
