"""Daemon options end to end: ipv6_prefix makes a permit cover the client's /64, `user` drops
privileges (state and control socket then belong to that user) and a reload keeps a privileged
syslog listener bound, and ignore_mynetworks adds Postfix's mynetworks to `ignore`."""
import os
import pwd
import shutil
import signal
import socket
import time

import pytest

from rp_harness import wait_until


def test_ipv6_prefix_covers_the_64(make_daemon):
    d = make_daemon(extra="ipv6_prefix = 64\n")
    d.start()
    r = d.cli("allow", "2001:db8:1:2::5", "--user", "privacy")
    assert r.returncode == 0, r.stderr
    assert d.check("2001:db8:1:2:aaaa:bbbb:cccc:dddd").returncode == 0
    assert d.check("2001:db8:1:3::5").returncode == 1
    assert d.check("2001:db8:1:2::5").returncode == 0
    r = d.cli("revoke", "2001:db8:1:2::77")  # any address of the /64 revokes it
    assert r.returncode == 0, r.stdout + r.stderr
    assert d.check("2001:db8:1:2::5").returncode == 1


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch users")
def test_user_drops_privileges(make_daemon):
    nobody = pwd.getpwnam("nobody")
    d = make_daemon(extra='user = "nobody"\n')
    d.start()
    assert d.cli("allow", "192.0.2.55").returncode == 0
    pid = d.proc.pid
    with open(f"/proc/{pid}/status") as f:
        uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
    assert all(int(u) == nobody.pw_uid for u in uids), uids
    assert os.stat(d.state_dir).st_uid == nobody.pw_uid
    assert os.stat(os.path.join(d.state_dir, "permits.db")).st_uid == nobody.pw_uid


@pytest.mark.skipif(shutil.which("postconf") is None, reason="postconf (postfix) not installed")
def test_ignore_mynetworks(make_daemon):
    d = make_daemon(ignore=[], extra="ignore_mynetworks = true\n")
    d.start()
    r = d.cli("status", "--json")
    assert r.returncode == 0, r.stderr
    log = d.stderr_path.read_text()
    assert "ignore_mynetworks:" in log and "network(s) from Postfix's mynetworks added" in log, log


def _privileged_udp_port() -> int:
    """A free UDP port below 1024 on 127.0.0.1 (only root may bind it)."""
    for port in range(900, 1000):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    pytest.skip("no free UDP port in 900..999")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to bind a privileged port and switch users")
def test_reload_keeps_a_privileged_syslog_listener_after_dropping_root(make_daemon):
    """syslog on a port < 1024 with `user = "nobody"`: a SIGHUP that changes the patterns keeps the
    already bound listener (it could not be bound again without root) and gives it the new ones."""
    port = _privileged_udp_port()
    d = make_daemon(extra=f'user = "nobody"\n\n[[source]]\ntype = "syslog"\nlisten = "udp:127.0.0.1:{port}"\n')
    d.start()

    def send(message: str) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            stamp = time.strftime("%b %e %H:%M:%S")  # local time, as a syslog daemon writes it
            s.sendto(f"<22>{stamp} pophost {message}".encode(), ("127.0.0.1", port))

    send("dovecot: pop3-login: Login: user=<alice>, method=PLAIN, rip=192.0.2.91, lip=127.0.0.1, mpid=1, "
         "session=<a>")
    wait_until(lambda: d.check("192.0.2.91").returncode == 0, 10, what="syslog login before reload")
    # Reload with a user pattern added.
    d.extra += ('\n[[pattern]]\nname = "legacy"\n'
                'regex = \'legacypop\\[\\d+\\]: OK (?<user>\\S+) from (?<ip>\\S+)$\'\n')
    d.write_config()
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in d.stderr_path.read_text(), 10, what="reload")
    send("legacypop[7]: OK bob from 192.0.2.92")
    send("dovecot: pop3-login: Login: user=<carol>, method=PLAIN, rip=192.0.2.93, lip=127.0.0.1, mpid=1, "
         "session=<b>")
    wait_until(lambda: d.check("192.0.2.92").returncode == 0, 10, what="user pattern after reload")
    wait_until(lambda: d.check("192.0.2.93").returncode == 0, 10, what="built-in pattern after reload")
    # The user pattern joined the literal prefilter with the longest plain run of its regex.
    r = d.cli("config", "check")
    assert r.returncode == 0 and 'pattern legacy (login): only lines holding "legacypop["' in r.stdout, r.stdout
    assert "Permission denied" not in d.stderr_path.read_text()
