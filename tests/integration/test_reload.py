"""Reload is all or nothing (issue 12 item 6) and auth-policy listeners are bound before privileges
are dropped (item 13), against the real binary with SIGHUP.

A reload builds the whole new set of sources, frontends and exporters first, keeping listeners
whose configuration did not change; only when everything opened does it replace the running set.
Otherwise the running set is left untouched and the log says why. Login lines use addresses from
192.0.2.0/24 as text only; every listener is on 127.0.0.1.
"""

import http.client
import json
import os
import signal
import socket
import time

import pytest

from rp_harness import PolicyClient, free_port, wait_until


def login_line(user: str, ip: str) -> str:
    stamp = time.strftime("%b %e %H:%M:%S")  # local time, as syslog writes it
    return (f"{stamp} mail dovecot: imap-login: Login: user=<{user}>, method=PLAIN, rip={ip}, "
            f"lip=127.0.0.1, mpid=1, session=<s{user}>\n")


def append(path, text: str) -> None:
    with open(path, "a") as f:
        f.write(text)


def file_source(name: str, path) -> str:
    return f'\n[[source]]\ntype = "file"\nname = "{name}"\npath = "{path}"\n'


def busy_tcp_port() -> socket.socket:
    """A listening socket on a free 127.0.0.1 port: nobody else can bind that port while it lives."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    return s


def reload_and_wait(d, what: str) -> str:
    """Sends SIGHUP and waits until the daemon logged the outcome `what`; returns the new log text."""
    before = len(d.stderr_path.read_text())
    d.proc.send_signal(signal.SIGHUP)
    return wait_until(lambda: (lambda t: t if what in t else None)(d.stderr_path.read_text()[before:]), 10,
                      what=f"reload outcome '{what}'")


def test_reload_where_the_second_of_three_sources_fails_keeps_all_three(make_daemon, testdir):
    logs = [testdir / f"s{i}.log" for i in range(3)]
    for log in logs:
        log.write_text("")
    d = make_daemon(extra="".join(file_source(f"s{i}", log) for i, log in enumerate(logs)))
    d.start()
    for i, log in enumerate(logs):
        append(log, login_line(f"u{i}", f"192.0.2.{10 + i}"))
    for i in range(3):
        d.wait_permitted(f"192.0.2.{10 + i}")

    with busy_tcp_port() as busy:
        port = busy.getsockname()[1]
        # The 2nd source becomes a syslog listener on a port that is taken: it cannot open.
        d.extra = (file_source("s0", logs[0]) +
                   f'\n[[source]]\ntype = "syslog"\nname = "s1"\nlisten = "tcp:127.0.0.1:{port}"\n' +
                   file_source("s2", logs[2]))
        d.write_config()
        text = reload_and_wait(d, "reload failed")
    assert "s1" in text and "keeping the running configuration" in text, text
    # All three old sources still run: each grants a new login.
    for i, log in enumerate(logs):
        append(log, login_line(f"v{i}", f"192.0.2.{20 + i}"))
    for i in range(3):
        d.wait_permitted(f"192.0.2.{20 + i}")
    assert d.running()


def test_reload_to_an_unbindable_policy_endpoint_keeps_the_old_policy_listener(make_daemon):
    d = make_daemon()
    d.start()
    old = d.policy_endpoint
    with PolicyClient(old) as c:
        assert c.ask("192.0.2.30") == {"action": "DUNNO"}
        with busy_tcp_port() as busy:
            d.policy_port = busy.getsockname()[1]
            d.write_config()
            text = reload_and_wait(d, "reload failed")
        assert "[policy]" in text, text
        # The connection Postfix holds is still served, and new ones are accepted.
        assert c.ask("192.0.2.30") == {"action": "DUNNO"}
    with PolicyClient(old) as fresh:
        assert fresh.ask("192.0.2.31") == {"action": "DUNNO"}
    assert d.running()


def test_reload_success_replaces_what_changed(make_daemon, testdir):
    """The positive side: a reload that opens everything swaps in the new policy endpoint."""
    d = make_daemon()
    d.start()
    d.policy_port = free_port()
    d.write_config()
    reload_and_wait(d, "configuration reloaded")
    with PolicyClient(d.policy_endpoint) as c:
        assert c.ask("192.0.2.32") == {"action": "DUNNO"}


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _privileged_tcp_port() -> int:
    """A free TCP port below 1024 on 127.0.0.1 (only root may bind it)."""
    port = next((p for p in range(900, 1000) if _bindable(p)), None)
    if port is None:
        pytest.skip("no free TCP port in 900..999")
    return port


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to bind a privileged port and switch users")
def test_auth_policy_source_on_a_privileged_port_with_user(make_daemon):
    port = _privileged_tcp_port()
    d = make_daemon(extra=f'user = "nobody"\n\n[[source]]\ntype = "dovecot-auth-policy"\n'
                          f'listen = ["127.0.0.1:{port}"]\n')
    d.start()
    body = json.dumps({"device_id": "", "login": "alice", "protocol": "imap", "pwhash": "0009",
                       "remote": "192.0.2.40", "session_id": "x", "success": True, "policy_reject": False,
                       "tls": False})
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/?command=report", body, {"Content-Type": "application/json"})
    assert conn.getresponse().status == 200
    conn.close()
    d.wait_permitted("192.0.2.40")
    # An unchanged reload keeps the listener (it could not be bound again without root).
    reload_and_wait(d, "configuration reloaded")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/?command=report", body.replace("192.0.2.40", "192.0.2.41"),
                 {"Content-Type": "application/json"})
    assert conn.getresponse().status == 200
    conn.close()
    d.wait_permitted("192.0.2.41")


def test_socketmap_static_read_at_start_and_on_every_sighup(make_daemon, testdir):
    """[socketmap] static: the admin's Sendmail access entries are answered beside the permits;
    SIGHUP re-reads the file even when relaypermit.toml is unchanged; a bad file at a reload is
    logged and the running entries stay; a bad file at start stops the start."""
    from socketmap_helpers import SocketmapClient
    static = testdir / "relaypermit-static"
    static.write_text("# the admin's entries\nConnect:192.0.2.7 RELAY\nFrom:spammer@example.com REJECT\n")
    port = free_port()
    d = make_daemon(extra=f'[socketmap]\nlisten = ["127.0.0.1:{port}"]\nstatic = "{static}"\n')
    d.start()
    assert d.cli("allow", "192.0.2.1").returncode == 0
    c = SocketmapClient("127.0.0.1", port)
    try:
        assert c.ask("access", "connect:192.0.2.7") == "OK RELAY"
        assert c.ask("access", "from:spammer@example.com") == "OK REJECT"
        assert c.ask("access", "connect:192.0.2.1") == "OK RELAY"  # a permit
        assert c.ask("access", "connect:192.0.2.8") == "NOTFOUND "

        static.write_text("Connect:192.0.2.8 RELAY\nConnect:192.0.2.1 REJECT\n")  # the config is unchanged
        reload_and_wait(d, "configuration reloaded")
        assert c.ask("access", "connect:192.0.2.7") == "NOTFOUND "
        assert c.ask("access", "connect:192.0.2.8") == "OK RELAY"
        assert c.ask("access", "connect:192.0.2.1") == "OK REJECT"  # the admin's entry wins

        static.write_text("Connect:192.0.2.9 RELAY\nconnect:192.0.2.9 REJECT\n")  # duplicate key
        text = reload_and_wait(d, "configuration reloaded")
        assert "[socketmap] static" in text and "duplicate" in text and "keeps its 2 static entries" in text, text
        assert c.ask("access", "connect:192.0.2.8") == "OK RELAY"
        assert c.ask("access", "connect:192.0.2.9") == "NOTFOUND "
    finally:
        c.close()
    r = d.cli("config", "check")
    assert r.returncode == 2 and "[socketmap] static" in r.stderr and "duplicate" in r.stderr, r.stderr
    assert d.stop() == 0
    with pytest.raises(RuntimeError, match="socketmap"):
        d.start(timeout=20)
