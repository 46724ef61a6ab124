"""End to end (issue 2 "Proof"): a real Dovecot 2.3 login becomes a relay permit that a real
Postfix 3.7 honours through the policy service, exactly until it expires.

Clients: 127.0.0.2 logs in and relays; 127.0.0.3 never logs in; failing logins come from their
own addresses (Dovecot delays repeated failures per IP). The daemon ignores only 127.0.0.1/32.
"""

import datetime as dt
import re
import time

import pytest

from rp_harness import PolicyClient

OUTSIDE = "user@example.net"


def parse_time(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


def assert_relays(postfix, ip, via_unix=False):
    code, msg = postfix.rcpt(ip, OUTSIDE, via_unix=via_unix)
    assert code == 250, f"Postfix refused relay from {ip} with a permit: {code} {msg}"


def assert_refuses(postfix, ip, via_unix=False):
    code, msg = postfix.rcpt(ip, OUTSIDE, via_unix=via_unix)
    assert code == 554 and "Relay access denied" in msg, \
        f"Postfix should refuse relay from {ip}: {code} {msg}"


def audit_lines(daemon, verb: str, ip: str) -> list:
    text = daemon.stderr_path.read_text(errors="replace")
    return re.findall(rf"\b{verb} ip={re.escape(ip)}(?:/\d+)? .*", text)


def test_pop3_and_imap_logins_permit_relay(postfix, dovecot, daemon):
    assert_refuses(postfix, "127.0.0.2")
    assert daemon.check("127.0.0.2").returncode == 1

    r = dovecot.login_pop3("alice", "alice-secret", "127.0.0.2")
    assert r.returncode == 0, r.stderr
    out = daemon.wait_permitted("127.0.0.2")
    assert "alice" in out, out
    assert_relays(postfix, "127.0.0.2")
    assert_refuses(postfix, "127.0.0.3")
    # The same through Postfix's unix-socket policy client.
    assert_relays(postfix, "127.0.0.2", via_unix=True)
    assert_refuses(postfix, "127.0.0.3", via_unix=True)

    r = dovecot.login_imap("bob", "bob-secret", "127.0.0.5")
    assert r.returncode == 0, r.stderr
    assert "bob" in daemon.wait_permitted("127.0.0.5")
    assert_relays(postfix, "127.0.0.5")
    assert_refuses(postfix, "127.0.0.3")

    p = daemon.permit_for("127.0.0.2")
    assert p is not None, daemon.list_json()
    assert p["user"] == "alice"
    # The source's name (default TYPE:PATH), perhaps followed by details.
    assert p["source"].split(" ")[0] == f"file:{dovecot.log_path}", p
    granted, expires = parse_time(p["granted"]), parse_time(p["expires"])
    # expires = the login's log time (whole seconds, local time) + ttl 30m.
    assert dt.timedelta(minutes=29, seconds=58) <= expires - granted <= dt.timedelta(minutes=30, seconds=1)
    assert len(audit_lines(daemon, "grant", "127.0.0.2")) == 1
    assert "user=alice" in audit_lines(daemon, "grant", "127.0.0.2")[0]


def test_failed_logins_grant_nothing(postfix, dovecot, daemon):
    # Wrong password over POP3 and IMAP; a failed login whose user name carries `rip=` text.
    assert dovecot.login_pop3("alice", "wrong", "127.0.0.4").returncode != 0
    assert dovecot.login_imap("bob", "wrong", "127.0.0.6").returncode != 0
    assert dovecot.login_pop3("x, method=PLAIN, rip=127.0.0.9, lip=127.0.0.1", "wrong",
                              "127.0.0.7").returncode != 0
    assert dovecot.login_pop3("nosuchuser", "wrong", "127.0.0.8").returncode != 0
    for ip in ("127.0.0.4", "127.0.0.6", "127.0.0.7", "127.0.0.8"):
        dovecot.wait_log(f"rip={ip}, lip=")
    # Barrier: the daemon reads the log in order, so once this later login is granted it has
    # seen every failure above.
    assert dovecot.login_pop3("carol", "carol-secret", "127.0.0.10").returncode == 0
    daemon.wait_permitted("127.0.0.10")
    for ip in ("127.0.0.4", "127.0.0.6", "127.0.0.7", "127.0.0.8", "127.0.0.9"):
        r = daemon.check(ip)
        assert r.returncode == 1, f"{ip}: {r.returncode} {r.stdout}{r.stderr}"
        assert r.stdout.startswith("not permitted"), r.stdout
    assert [p["ip"].split("/")[0] for p in daemon.list_json()] == ["127.0.0.10"]
    assert_refuses(postfix, "127.0.0.4")


def test_permit_expires_after_ttl(postfix, dovecot, make_daemon):
    ttl = 6
    daemon = make_daemon(sources=[dovecot.log_path], ttl=f"{ttl}s")
    daemon.start()
    assert_refuses(postfix, "127.0.0.2")  # also starts an smtpd before the clock runs
    before = time.time()
    assert dovecot.login_pop3("alice", "alice-secret", "127.0.0.2").returncode == 0
    daemon.wait_permitted("127.0.0.2", timeout=ttl - 1)
    assert_relays(postfix, "127.0.0.2")
    p = daemon.permit_for("127.0.0.2")
    expires = parse_time(p["expires"]).timestamp()
    # Dovecot logs whole seconds: expiry is within [login second + ttl, login + ttl].
    assert int(before) + ttl - 1 <= expires <= time.time() + ttl, (before, p)

    daemon.wait_not_permitted("127.0.0.2", timeout=ttl + 5)
    # An expired permit is never served (<= 1 s late).
    assert time.time() <= expires + 1.5, f"expired at {expires}, noticed at {time.time()}"
    assert_refuses(postfix, "127.0.0.2")
    assert daemon.permit_for("127.0.0.2") is None


def test_permit_survives_kill9_and_restart_does_not_extend(postfix, dovecot, daemon):
    assert dovecot.login_imap("alice", "alice-secret", "127.0.0.2").returncode == 0
    daemon.wait_permitted("127.0.0.2")
    before = daemon.permit_for("127.0.0.2")
    daemon.kill9()

    # With the daemon down, `check` answers from the store, read-only, and says so. The grant may
    # still have been in the writer's queue at the kill (the log line is read again at the start,
    # since its checkpoint was not stored either), so yes or no are both honest answers here.
    r = daemon.check("127.0.0.2")
    assert r.returncode in (0, 1), f"check with the daemon down: {r.returncode} {r.stdout}{r.stderr}"
    assert "not running" in r.stderr, r.stderr

    t0 = time.monotonic()
    daemon.start()
    assert time.monotonic() - t0 < 5
    r = daemon.check("127.0.0.2")
    assert r.returncode == 0, f"permit lost over kill -9: {r.returncode} {r.stdout}{r.stderr}"
    after = daemon.permit_for("127.0.0.2")
    assert after["expires"] == before["expires"], (before, after)
    assert after["user"] == "alice"
    assert_relays(postfix, "127.0.0.2")

    # A clean stop and start keeps it too, still unextended; the login is not granted twice.
    assert daemon.stop() == 0
    daemon.start()
    assert daemon.check("127.0.0.2").returncode == 0
    assert daemon.permit_for("127.0.0.2")["expires"] == before["expires"]
    assert_relays(postfix, "127.0.0.2")


def test_rotation_while_running_loses_nothing(postfix, dovecot, daemon):
    assert dovecot.login_pop3("alice", "alice-secret", "127.0.0.2").returncode == 0
    daemon.wait_permitted("127.0.0.2")

    # A login immediately before the rename: its line may land in either file.
    assert dovecot.login_pop3("bob", "bob-secret", "127.0.0.5").returncode == 0
    old = dovecot.log_path.with_name("dovecot.log.1")
    dovecot.log_path.rename(old)
    assert dovecot.login_imap("carol", "carol-secret", "127.0.0.6").returncode == 0  # into old
    dovecot.wait_log("rip=127.0.0.6", path=old)
    dovecot.reopen_log()
    assert dovecot.login_imap("alice", "alice-secret", "127.0.0.7").returncode == 0  # into new
    dovecot.wait_log("rip=127.0.0.7")

    for ip in ("127.0.0.5", "127.0.0.6", "127.0.0.7"):
        daemon.wait_permitted(ip)
    assert_relays(postfix, "127.0.0.6")
    assert_relays(postfix, "127.0.0.7")
    for ip in ("127.0.0.2", "127.0.0.5", "127.0.0.6", "127.0.0.7"):
        assert len(audit_lines(daemon, "grant", ip)) == 1, audit_lines(daemon, "grant", ip)
        assert audit_lines(daemon, "extend", ip) == [], f"{ip} counted twice"


def test_rotation_while_stopped_loses_nothing(postfix, dovecot, daemon):
    assert dovecot.login_pop3("alice", "alice-secret", "127.0.0.2").returncode == 0
    daemon.wait_permitted("127.0.0.2")
    assert daemon.stop() == 0

    assert dovecot.login_pop3("bob", "bob-secret", "127.0.0.5").returncode == 0
    dovecot.wait_log("rip=127.0.0.5")
    dovecot.log_path.rename(dovecot.log_path.with_name("dovecot.log.1"))
    dovecot.reopen_log()
    assert dovecot.login_imap("carol", "carol-secret", "127.0.0.6").returncode == 0
    dovecot.wait_log("rip=127.0.0.6")

    daemon.start()
    for ip in ("127.0.0.2", "127.0.0.5", "127.0.0.6"):
        daemon.wait_permitted(ip)
        assert len(audit_lines(daemon, "grant", ip)) == 1, audit_lines(daemon, "grant", ip)
        assert audit_lines(daemon, "extend", ip) == [], f"{ip} counted twice"
    assert_relays(postfix, "127.0.0.5")


def test_static_allow_and_ignore(postfix, dovecot, make_daemon):
    daemon = make_daemon(sources=[dovecot.log_path], allow=["127.0.0.20/31"],
                         ignore=["127.0.0.1/32", "127.0.0.30/32"])
    daemon.start()
    r = daemon.check("127.0.0.21")
    assert r.returncode == 0 and "static allow" in r.stdout, r.stdout
    assert_relays(postfix, "127.0.0.20")
    assert_refuses(postfix, "127.0.0.22")

    assert dovecot.login_pop3("alice", "alice-secret", "127.0.0.30").returncode == 0
    assert dovecot.login_pop3("bob", "bob-secret", "127.0.0.31").returncode == 0
    daemon.wait_permitted("127.0.0.31")  # barrier: the ignored login was read before this one
    assert daemon.check("127.0.0.30").returncode == 1
    assert_refuses(postfix, "127.0.0.30")


@pytest.mark.parametrize("endpoint", ["unix", "tcp"])
def test_policy_protocol_direct(dovecot, make_daemon, endpoint):
    daemon = make_daemon(sources=[dovecot.log_path], allow=["198.51.100.0/24"])
    daemon.start()
    where = f"unix:{daemon.policy_socket}" if endpoint == "unix" else daemon.policy_endpoint
    with PolicyClient(where) as c:
        assert c.ask("127.0.0.2") == {"action": "DUNNO"}
        assert c.ask("198.51.100.7") == {"action": "OK"}
        assert dovecot.login_imap("alice", "alice-secret", "127.0.0.2").returncode == 0
        daemon.wait_permitted("127.0.0.2")
        # Same connection, reused as Postfix does.
        assert c.ask("127.0.0.2") == {"action": "OK"}
        assert c.ask("127.0.0.3") == {"action": "DUNNO"}

        # A malformed request closes that connection only.
        with PolicyClient(where) as bad:
            bad.send_raw(b"this line has no equals sign\n\n")
            bad.sock.settimeout(5)
            try:
                reply = bad.read_reply()
            except (ConnectionResetError, TimeoutError) as e:
                reply = e
            assert reply is None or isinstance(reply, ConnectionResetError), reply
        assert c.ask("127.0.0.2") == {"action": "OK"}


def test_ipv6_login(dovecot, make_daemon):
    if not dovecot.ipv6:
        pytest.skip("no IPv6 on the loopback interface")
    daemon = make_daemon(sources=[dovecot.log_path])
    daemon.start()
    r = dovecot.login_imap("alice", "alice-secret", "::1")
    assert r.returncode == 0, r.stderr
    assert "alice" in daemon.wait_permitted("::1")
    assert daemon.check("::2").returncode == 1
    assert daemon.permit_for("::1")["user"] == "alice"
    with PolicyClient(daemon.policy_endpoint) as c:
        assert c.ask("::1") == {"action": "OK"}
        assert c.ask("0:0:0:0:0:0:0:1") == {"action": "OK"}
        assert c.ask("::2") == {"action": "DUNNO"}
