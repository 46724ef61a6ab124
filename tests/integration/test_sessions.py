"""Session-aware lifetime (issue 17, docs/limits.md) against a real Dovecot 2.3: an IMAP session
kept open beyond ttl keeps its address permitted; after LOGOUT the permit ends ttl later;
`list` shows the session state; `revoke --user` ends the session; a restart keeps it.

ttl is a few seconds so the test is short; every wait is for a condition with a deadline, and
every bound on an expiry is taken from what the daemon has done (a state seen through `list`),
not from when the test ran. What remains of the host's speed: the daemon's loop must not stall
for half a ttl (3 s), or the permit runs out before its refresh (fail closed, by design)."""
import imaplib
import json
import signal
import socket
import time
from datetime import datetime

import pytest

from rp_harness import wait_until

TTL_S = 6


class SourcedIMAP(imaplib.IMAP4):
    """imaplib's client, connecting from a chosen loopback address (127.0.0.x)."""

    def __init__(self, host, port, source):
        self._source = source
        super().__init__(host, port, timeout=20)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(self._source, 0))


def expires_epoch(permit: dict) -> float:
    return datetime.fromisoformat(permit["expires"].replace("Z", "+00:00")).timestamp()


def status_sessions(daemon) -> dict:
    r = daemon.cli("status", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)["sessions"]


@pytest.fixture
def session_daemon(make_daemon, dovecot):
    d = make_daemon(sources=[dovecot.log_path], ttl=f"{TTL_S}s", extra='max_lifetime = "1h"')
    d.start()
    return d


def open_session(dovecot, daemon, source, user="alice"):
    m = SourcedIMAP("127.0.0.1", dovecot.imap_port, source)
    m.login(user, f"{user}-secret")
    daemon.wait_permitted(source)
    wait_until(lambda: (daemon.permit_for(source) or {}).get("session") == "open", what="session state open")
    return m


def started_session(make_daemon, dovecot, source, ttl=f"{TTL_S}s"):
    """A daemon with max_lifetime = 1h and an open IMAP session from `source`."""
    d = make_daemon(sources=[dovecot.log_path], ttl=ttl, extra='max_lifetime = "1h"')
    d.start()
    return d, open_session(dovecot, d, source)


def wait_extended(daemon, ip, beyond: float):
    """Waits, checking all along that ip stays permitted, until its permit expires after `beyond`
    (epoch seconds): only a refresh of the open session can move it there."""
    def extended():
        r = daemon.check(ip)
        assert r.returncode == 0, f"{ip} lost its permit while its session was open: {r.stdout}{r.stderr}"
        p = daemon.permit_for(ip)
        return p is not None and expires_epoch(p) > beyond
    wait_until(extended, timeout=30, what=f"the permit of {ip} to be extended past {beyond}", interval=0.1)


def test_open_imap_session_outlives_ttl_and_logout_ends_it_ttl_later(dovecot, session_daemon):
    d = session_daemon
    login_at = time.time()
    m = open_session(dovecot, d, "127.0.0.2")
    # The session stays open: the permit is extended again and again, well past login + ttl.
    wait_extended(d, "127.0.0.2", login_at + 3 * TTL_S)
    assert d.check("127.0.0.2").returncode == 0
    assert d.permit_for("127.0.0.2")["session"] == "open"
    header, *rows = d.cli("list").stdout.splitlines()
    assert header.split()[4:6] == ["SESSION", "BUDGET"], header
    assert any(r.split()[0] == "127.0.0.2" and r.split()[4:6] == ["open", "-"] for r in rows), rows

    m.logout()
    dovecot.wait_log("Disconnected: Logged out")
    wait_until(lambda: (d.permit_for("127.0.0.2") or {}).get("session") == "closed", what="session state closed")
    closed_seen = time.time()  # the daemon has read the end line by now
    p = d.permit_for("127.0.0.2")
    # ttl after the end (or after the last refresh before it), never login + max_lifetime (1h).
    assert expires_epoch(p) <= closed_seen + TTL_S + 1, p
    d.wait_not_permitted("127.0.0.2", timeout=TTL_S + 20)
    s = status_sessions(d)
    assert s["open"] == 0 and s["ended"] >= 1 and s["opened"] >= 1, s


def test_connection_closed_without_logout_ends_the_session(dovecot, session_daemon):
    d = session_daemon
    m = open_session(dovecot, d, "127.0.0.3", user="bob")
    m.shutdown()  # the client goes away: "Disconnected: Connection closed ..."
    dovecot.wait_log("imap(bob)")
    wait_until(lambda: status_sessions(d)["open"] == 0, what="the session to end")
    d.wait_not_permitted("127.0.0.3", timeout=TTL_S + 20)


def test_revoke_user_ends_the_users_sessions(dovecot, session_daemon):
    d = session_daemon
    m = open_session(dovecot, d, "127.0.0.4", user="carol")
    r = d.cli("revoke", "--user", "carol")
    assert r.returncode == 0, r.stdout + r.stderr
    assert status_sessions(d)["open"] == 0
    assert d.check("127.0.0.4").returncode == 1
    # No open session is left to extend it again while the IMAP connection stays open.
    assert d.permit_for("127.0.0.4") is None
    m.logout()


def test_open_session_survives_a_restart(dovecot, make_daemon):
    # A longer ttl: the permit must still be live when the daemon is back (a session never
    # revives a permit that ran out while the daemon was stopped).
    d, m = started_session(make_daemon, dovecot, "127.0.0.5", ttl="20s")
    d.stop()
    assert (d.state_dir / "sessions.jsonl").read_text().count('"id"') == 1
    d.start()
    restarted_at = time.time()
    assert status_sessions(d)["open"] == 1
    wait_extended(d, "127.0.0.5", restarted_at + 20)
    m.logout()
    wait_until(lambda: status_sessions(d)["open"] == 0, what="the session to end after the restart")


def test_without_max_lifetime_the_permit_lives_ttl_after_the_login(dovecot, make_daemon):
    d = make_daemon(sources=[dovecot.log_path], ttl=f"{TTL_S}s")
    d.start()
    m = SourcedIMAP("127.0.0.1", dovecot.imap_port, "127.0.0.6")
    m.login("alice", "alice-secret")
    d.wait_permitted("127.0.0.6")
    assert d.permit_for("127.0.0.6")["session"] == "none"
    d.wait_not_permitted("127.0.0.6", timeout=TTL_S + 20)  # the session is still open
    m.logout()


def test_max_lifetime_bounds_a_session_whose_end_line_never_comes(dovecot, make_daemon):
    # max_lifetime = ttl: the session stays open (its end line "never comes"), yet the permit
    # ends max_lifetime after the login and the session is counted as capped.
    d = make_daemon(sources=[dovecot.log_path], ttl=f"{TTL_S}s", extra=f'max_lifetime = "{TTL_S}s"')
    d.start()
    m = open_session(dovecot, d, "127.0.0.7")
    p = d.permit_for("127.0.0.7")
    granted = datetime.fromisoformat(p["granted"].replace("Z", "+00:00")).timestamp()
    assert expires_epoch(p) <= granted + TTL_S + 1, p  # never beyond login + max_lifetime
    d.wait_not_permitted("127.0.0.7", timeout=TTL_S + 20)  # the IMAP connection is still open
    wait_until(lambda: status_sessions(d)["capped"] == 1, what="the session to be capped")
    m.logout()


def reload_with(daemon, extra: str):
    """Rewrites the daemon's config with `extra` and sends SIGHUP; returns once it reloaded."""
    before = daemon.stderr_path.read_text().count("configuration reloaded")
    daemon.extra = extra
    daemon.write_config()
    daemon.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: daemon.stderr_path.read_text().count("configuration reloaded") > before, what="the reload")


def test_reload_with_a_smaller_max_lifetime_tightens_open_sessions(dovecot, make_daemon):
    # Review of issue 17, item 2: the session's cap was login + 1h; after a reload with
    # max_lifetime = ttl it is login + ttl: the permit ends although the IMAP session stays open.
    d, m = started_session(make_daemon, dovecot, "127.0.0.8")
    reload_with(d, f'max_lifetime = "{TTL_S}s"')
    d.wait_not_permitted("127.0.0.8", timeout=TTL_S + 20)  # the IMAP connection is still open
    wait_until(lambda: status_sessions(d)["open"] == 0, what="the session to be capped")
    assert status_sessions(d)["capped"] == 1
    m.logout()


def test_reload_without_max_lifetime_ends_session_awareness(dovecot, make_daemon):
    d, m = started_session(make_daemon, dovecot, "127.0.0.9")
    reload_with(d, "")
    wait_until(lambda: status_sessions(d)["open"] == 0, what="the sessions to end")
    d.wait_not_permitted("127.0.0.9", timeout=TTL_S + 20)  # ttl after its last extension
    m.logout()


def test_restart_with_a_smaller_max_lifetime_tightens_saved_sessions(dovecot, make_daemon):
    d, m = started_session(make_daemon, dovecot, "127.0.0.10", ttl="20s")
    d.stop()
    d.extra = 'max_lifetime = "20s"'
    d.write_config()
    d.start()
    d.wait_not_permitted("127.0.0.10", timeout=60)  # login + 20 s at the latest
    wait_until(lambda: status_sessions(d)["open"] == 0, what="the restored session to be capped")
    m.logout()
