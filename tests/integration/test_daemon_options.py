"""Daemon options end to end: ipv6_prefix makes a permit cover the client's /64, `user` drops
privileges (state and control socket then belong to that user), and ignore_mynetworks adds
Postfix's mynetworks to `ignore`."""
import os
import pwd
import shutil

import pytest


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
