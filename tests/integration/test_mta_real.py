"""Every MTA asks relaypermit: the real MTAs of Debian 12 on loopback, end to end.

Each test grants 127.0.0.2 through the control socket (`relaypermit allow 127.0.0.2 --user
alice`, ttl 4s) and then checks with the real MTA that 127.0.0.2 may relay (RCPT to a non-local
domain: 250), that 127.0.0.3 may not (5xx), and that after the ttl 127.0.0.2 is denied again.
127.0.0.2 is also checked before the grant. Nothing is delivered: the sessions end at RCPT, and
every MTA's route out is an unreachable loopback port.

 - Postfix 3.7, cdb map: `check_client_access cdb:...` on the postfix-cdb export (the socketmap
   path is test_socketmap_postfix.py).
 - Sendmail 8.17 via its socket map (FEATURE(`access_db', `socket ... inet:PORT@127.0.0.1'))
   and via access.db (the sendmail-access export), each a private `sendmail -bD`.
 - Exim 4.96 via ${readsocket} ([readsocket] listener), `exim4 -bh IP` (the real ACLs).
 - tcpserver (ucspi-tcp) running `relaypermit check --chain -- prog`, prog printing RELAYCLIENT;
   and tcpserver -x reading the tcprules-cdb export.
 - OpenSMTPD 6.8: `match from src <relaypermit>` on a file table (the opensmtpd-table export),
   reloaded by the export's after_write `smtpctl update table relaypermit`.

Sendmail, Exim and OpenSMTPD come from scripts/install-test-mtas.sh (unpacked under
/opt/relaypermit-test); a missing one skips with the reason. IPv6 relay is not tested with
Sendmail: on loopback the client address equals the listening address, which Sendmail lets relay
anyway. See mta_servers.py for how each instance is kept private.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import _require_programs, _require_root
from mta_servers import CdbPostfix, Exim, Opensmtpd, Sendmail, smtp_rcpt
from rp_harness import (PRINT_RELAYCLIENT, ask_tcpserver, free_port, ipv6_loopback_available, run, tail,
                        wait_until)

TTL = 4          # seconds: permits expire quickly, so "denied again" is part of every test
PERMITTED = "127.0.0.2"
OTHER = "127.0.0.3"


def grant(d, ip: str = PERMITTED) -> float:
    r = d.cli("allow", ip, "--user", "alice")
    assert r.returncode == 0, r.stdout + r.stderr
    return time.monotonic()


def expect_relay_cycle(d, relays, granted_at: float, what: str, permitted: str = PERMITTED,
                       other: str | None = OTHER) -> None:
    """relays(ip) -> bool asks the real MTA. `permitted` relays soon after the grant, `other`
    never, and `permitted` is denied again once the permit expired."""
    wait_until(lambda: relays(permitted), TTL - 1.5, what=f"{what}: {permitted} to relay", interval=0.05)
    assert time.monotonic() - granted_at < TTL, f"{what}: the permit was seen only after its ttl"
    if other is not None:
        assert not relays(other), f"{what}: {other} relays without a permit"
    d.wait_not_permitted(permitted, timeout=TTL + 5)
    wait_until(lambda: not relays(permitted), 5, what=f"{what}: {permitted} to be denied after expiry",
               interval=0.05)


def smtp_relays(port: int, what: str):
    def relays(ip: str) -> bool:
        code, msg = smtp_rcpt(port, ip)
        if code == 250:
            return True
        assert 500 <= code < 600, f"{what} from {ip}: {code} {msg}"
        return False
    return relays


@pytest.fixture(scope="module")
def mta_dir(workdir) -> Path:
    _require_root()
    d = workdir / "mta"
    d.mkdir(mode=0o755, exist_ok=True)
    return d


# ---------------------------------------------------------------------------------------------
# Postfix via a cdb map (the postfix-cdb export)


@pytest.fixture(scope="module")
def cdb_postfix(mta_dir):
    _require_programs("postfix", "postconf", "postmap", "script")
    if "cdb" not in run(["postconf", "-m"]).stdout.split():
        pytest.skip("Postfix without the cdb map type: apt-get install postfix-cdb")
    pf = CdbPostfix(mta_dir / "postfix-cdb", mta_dir / "pf-map" / "relaypermit.cdb")
    try:
        pf.start()
        yield pf
    finally:
        pf.stop()
        print(f"\n--- postfix (cdb) log ---\n{tail(pf.log_path)}")


def test_postfix_cdb_map(cdb_postfix, make_daemon):
    d = make_daemon(ttl=f"{TTL}s", extra=f'[[export]]\ntype = "postfix-cdb"\npath = "{cdb_postfix.cdb_path}"\n')
    d.start()
    relays = smtp_relays(cdb_postfix.port, "postfix cdb")
    assert not relays(PERMITTED)
    expect_relay_cycle(d, relays, grant(d), "postfix cdb")


# ---------------------------------------------------------------------------------------------
# Sendmail via its socket map and via access.db


@pytest.fixture(scope="module")
def sendmail_socketmap_port() -> int:
    return free_port()


def _make_sendmail(root: Path, access_spec: str):
    _require_programs("m4")
    reason = Sendmail.skip_reason()
    if reason:
        pytest.skip(reason)
    return Sendmail(root, free_port(), access_spec)


@pytest.fixture(scope="module")
def sendmail_socketmap(mta_dir, sendmail_socketmap_port):
    sm = _make_sendmail(mta_dir / "sm-socket", f"socket -T<TMPF> -d5 inet:{sendmail_socketmap_port}@127.0.0.1")
    if "SOCKETMAP" not in sm.compiled_with():
        pytest.skip("this Sendmail build lacks SOCKETMAP (sendmail -d0.1); the access.db test covers Sendmail")
    try:
        sm.start()
        yield sm
    finally:
        sm.stop()
        print(f"\n--- sendmail (socket map) output ---\n{tail(sm.out_path)}")


@pytest.fixture(scope="module")
def sendmail_accessdb(mta_dir):
    db = mta_dir / "sm-db-map" / "access"
    sm = _make_sendmail(mta_dir / "sm-db", f"hash -T<TMPF> -o {db}")
    sm.access_db = Path(str(db) + ".db")
    # As on a real system the map exists when Sendmail starts (an empty one, from makemap).
    db.parent.mkdir(mode=0o755, exist_ok=True)
    r = subprocess.run([str(Sendmail.makemap), "-C", "/dev/null", "hash", str(db)], input="", capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    try:
        sm.start()
        yield sm
    finally:
        sm.stop()
        print(f"\n--- sendmail (access.db) output ---\n{tail(sm.out_path)}")


def sendmail_relays(sm: Sendmail):
    def relays(ip: str) -> bool:
        code, msg = smtp_rcpt(sm.port, ip)
        if code == 250:
            return True
        assert code == 550 and "Relaying denied" in msg, f"sendmail from {ip}: {code} {msg}"
        return False
    return relays


def test_sendmail_socket_map(sendmail_socketmap, sendmail_socketmap_port, make_daemon):
    d = make_daemon(ttl=f"{TTL}s", extra=f'[socketmap]\nlisten = ["127.0.0.1:{sendmail_socketmap_port}"]\n')
    d.start()
    relays = sendmail_relays(sendmail_socketmap)
    assert not relays(PERMITTED)
    expect_relay_cycle(d, relays, grant(d), "sendmail socket map")


def test_sendmail_access_db(sendmail_accessdb, make_daemon):
    d = make_daemon(ttl=f"{TTL}s",
                    extra=f'[[export]]\ntype = "sendmail-access"\npath = "{sendmail_accessdb.access_db}"\n')
    d.start()
    wait_until(sendmail_accessdb.access_db.exists, 5, what="the sendmail-access export")
    relays = sendmail_relays(sendmail_accessdb)
    assert not relays(PERMITTED)
    expect_relay_cycle(d, relays, grant(d), "sendmail access.db")


# ---------------------------------------------------------------------------------------------
# Exim via ${readsocket}


@pytest.fixture(scope="module")
def exim(mta_dir):
    reason = Exim.skip_reason()
    if reason:
        pytest.skip(reason)
    return Exim(mta_dir / "exim", free_port())


def exim_relays(exim: Exim):
    def relays(ip: str) -> bool:
        code, msg = exim.rcpt(ip)
        if code == 250:
            return True
        assert code == 550 and "relay not permitted" in msg, f"exim -bh {ip}: {code} {msg}"
        return False
    return relays


def test_exim_readsocket(exim, make_daemon):
    d = make_daemon(ttl=f"{TTL}s", extra=f'[readsocket]\nlisten = ["127.0.0.1:{exim.readsocket_port}"]\n')
    d.start()
    relays = exim_relays(exim)
    assert not relays(PERMITTED)
    expect_relay_cycle(d, relays, grant(d), "exim readsocket")


def test_exim_readsocket_ipv6(exim, make_daemon):
    """IPv6 clients through the same ACL. -bh only simulates the client address (no packet is
    sent), so documentation addresses serve as clients here."""
    d = make_daemon(ttl=f"{TTL}s", extra=f'[readsocket]\nlisten = ["127.0.0.1:{exim.readsocket_port}"]\n')
    d.start()
    relays = exim_relays(exim)
    assert not relays("2001:db8::5")
    expect_relay_cycle(d, relays, grant(d, "2001:db8::5"), "exim readsocket IPv6", "2001:db8::5", "2001:db8::6")


# ---------------------------------------------------------------------------------------------
# tcpserver: `check --chain`, and -x on the tcprules-cdb export




def test_tcpserver_check_chain(tcpserver, make_daemon, rp_binary):
    d = make_daemon(ttl=f"{TTL}s")
    d.start()
    port = tcpserver([str(rp_binary), "check", "--chain", "--config", str(d.config), "--", *PRINT_RELAYCLIENT])
    relays = lambda ip: ask_tcpserver(ip, port) == "rc=\n"  # noqa: E731
    assert ask_tcpserver(PERMITTED, port) == "rc=unset\n"
    expect_relay_cycle(d, relays, grant(d), "tcpserver check --chain")
    assert ask_tcpserver(OTHER, port) == "rc=unset\n"


def test_tcpserver_x_tcprules_cdb(tcpserver, make_daemon, testdir):
    cdb = testdir / "tcp" / "tcp.smtp.cdb"
    static = testdir / "tcp.smtp"
    static.write_text("127.:allow\n")
    d = make_daemon(ttl=f"{TTL}s",
                    extra=f'[[export]]\ntype = "tcprules-cdb"\npath = "{cdb}"\nstatic = "{static}"\n')
    d.start()
    wait_until(cdb.exists, 5, what="the tcprules-cdb export")
    port = tcpserver("-x", str(cdb), PRINT_RELAYCLIENT)
    relays = lambda ip: ask_tcpserver(ip, port) == "rc=\n"  # noqa: E731
    assert ask_tcpserver(PERMITTED, port) == "rc=unset\n"
    expect_relay_cycle(d, relays, grant(d), "tcpserver -x")
    assert ask_tcpserver(OTHER, port) == "rc=unset\n"


# ---------------------------------------------------------------------------------------------
# OpenSMTPD: file table + smtpctl update table


@pytest.fixture(scope="module")
def opensmtpd(mta_dir):
    reason = Opensmtpd.skip_reason()
    if reason:
        pytest.skip(reason)
    _require_programs("unshare", "nsenter")
    table_dir = mta_dir / "smtpd-table"
    table_dir.mkdir(mode=0o755, exist_ok=True)
    o = Opensmtpd(mta_dir / "opensmtpd", free_port(also_v6=ipv6_loopback_available()), table_dir / "relaypermit",
                  ipv6=ipv6_loopback_available())
    try:
        o.start()
        yield o
    finally:
        o.stop()
        print(f"\n--- smtpd -d output ---\n{tail(o.out_path)}")


def test_opensmtpd_file_table(opensmtpd, make_daemon):
    argv = ", ".join(f'"{a}"' for a in opensmtpd.update_table_argv())
    d = make_daemon(ttl=f"{TTL}s", extra=(f'[[export]]\ntype = "opensmtpd-table"\npath = "{opensmtpd.table}"\n'
                                         f'after_write = [{argv}]\nafter_write_timeout = "10s"\n'))
    d.start()
    relays = smtp_relays(opensmtpd.port, "opensmtpd")
    wait_until(lambda: "after_write" in d.stderr_path.read_text(), 5, what="the first after_write run")
    assert not relays(PERMITTED)
    expect_relay_cycle(d, relays, grant(d), "opensmtpd file table")
    assert opensmtpd.table.read_text().splitlines()[-1] == "0.0.0.0"
    log = d.stderr_path.read_text()
    assert "after_write" in log and "exited with" not in log and "killed" not in log, tail(d.stderr_path)


def test_opensmtpd_file_table_ipv6(opensmtpd, make_daemon):
    """::1 (the only IPv6 loopback address, so no second IPv6 client) relays while permitted."""
    if not opensmtpd.ipv6:
        pytest.skip("no IPv6 on the loopback interface")
    argv = ", ".join(f'"{a}"' for a in opensmtpd.update_table_argv())
    d = make_daemon(ttl=f"{TTL}s", ignore=[], extra=(f'[[export]]\ntype = "opensmtpd-table"\npath = "{opensmtpd.table}"\n'
                                                    f'after_write = [{argv}]\n'))
    d.start()

    def relays(ip: str) -> bool:
        code, msg = smtp_rcpt(opensmtpd.port, ip, host="::1" if ":" in ip else "127.0.0.1")
        assert code == 250 or 500 <= code < 600, f"opensmtpd from {ip}: {code} {msg}"
        return code == 250
    wait_until(lambda: "after_write" in d.stderr_path.read_text(), 5, what="the first after_write run")
    assert not relays("::1")
    expect_relay_cycle(d, relays, grant(d, "::1"), "opensmtpd file table IPv6", "::1", OTHER)
    assert "::1" not in opensmtpd.table.read_text().split()


def test_sendmail_socket_map_static_entries(sendmail_socketmap, sendmail_socketmap_port, make_daemon, testdir):
    """[socketmap] static: an admin's `Connect:IP RELAY` entry (makemap text, as in the old
    /etc/mail/access) relays through the real Sendmail with no permit; another address is still
    denied; an edited file counts after SIGHUP alone."""
    static = testdir / "relaypermit-static"
    static.write_text("# the admin's entries\nConnect:127.0.0.7 RELAY\n")
    d = make_daemon(extra=f'[socketmap]\nlisten = ["127.0.0.1:{sendmail_socketmap_port}"]\nstatic = "{static}"\n')
    d.start()
    relays = sendmail_relays(sendmail_socketmap)
    assert relays("127.0.0.7"), "the static Connect:127.0.0.7 RELAY entry"
    assert not relays("127.0.0.8")
    static.write_text("Connect:127.0.0.8 RELAY\n")
    before = len(d.stderr_path.read_text())
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in d.stderr_path.read_text()[before:], 10, what="reload")
    assert relays("127.0.0.8")
    assert not relays("127.0.0.7")
