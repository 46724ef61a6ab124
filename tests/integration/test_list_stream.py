"""`relaypermit list` streams (issue 14): filters --user, --ip CIDR, --source (daemon running
and stopped), and a listing of 200k permits produced only as fast as the client reads it, with
policy lookups answered while a client holds a half-read listing."""

from __future__ import annotations

import json
import socket
import sqlite3
import time

from rp_harness import PolicyClient

SCHEMA = """
CREATE TABLE IF NOT EXISTS permits (network TEXT PRIMARY KEY, user TEXT NOT NULL, source TEXT NOT NULL,
  granted_us INTEGER NOT NULL, expires_us INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('schema_version', '1');
"""


def write_db(state_dir, n: int) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(state_dir / "permits.db"))
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(SCHEMA)
    now = int(time.time() * 1e6)
    exp = now + 7200 * 10**6
    db.executemany("INSERT INTO permits VALUES (?,?,?,?,?)",
                   ((f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}", f"user{i}", "bulk", now, exp)
                    for i in range(n)))
    db.commit()
    db.close()


def ips(daemon, *args) -> list[str]:
    r = daemon.cli("list", "--json", *args)
    assert r.returncode == 0, r.stdout + r.stderr
    return sorted(p["ip"] for p in json.loads(r.stdout))


def test_list_filters_running_and_stopped(make_daemon):
    daemon = make_daemon()
    daemon.start()
    for ip, user in [("192.0.2.1", "alice"), ("192.0.2.2", "bob"), ("198.51.100.7", "alice"), ("2001:db8::5", "carol")]:
        assert daemon.cli("allow", ip, "--user", user).returncode == 0
    for stopped in (False, True):
        assert ips(daemon, "--user", "alice") == ["192.0.2.1", "198.51.100.7"]
        assert ips(daemon, "--ip", "192.0.2.0/24") == ["192.0.2.1", "192.0.2.2"]
        assert ips(daemon, "--ip", "2001:db8::/32", "--user", "carol") == ["2001:db8::5"]
        assert ips(daemon, "--source", "control", "--user", "bob") == ["192.0.2.2"]
        assert ips(daemon, "--source", "nothing") == []
        r = daemon.cli("list", "--user", "alice")
        assert r.returncode == 0 and r.stdout.startswith("IP") and len(r.stdout.splitlines()) == 3, r.stdout
        r = daemon.cli("list", "--ip", "192.0.2.1/16")  # host bits set: refused with the reason
        assert r.returncode == 2 and "192.0.2.1/16" in r.stderr, r.stderr
        if not stopped:
            assert daemon.stop() == 0


def test_large_list_streams_while_lookups_go_on(make_daemon):
    n = 200_000
    daemon = make_daemon()
    write_db(daemon.state_dir, n)
    daemon.start(timeout=120)
    # A client that asks for the list and reads only a little: the daemon produces no more
    # meanwhile, and policy lookups are answered.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(30)
        s.connect(str(daemon.control_socket))
        s.sendall(b'{"cmd":"list","source":"bulk"}\n')
        got = s.recv(4096)
        assert got.startswith(b'{"ok":true,"permits":[{'), got[:100]
        time.sleep(0.5)  # let the daemon produce whatever it would
        t0 = time.monotonic()
        with PolicyClient(daemon.policy_endpoint, timeout=30) as c:
            for i in range(20):
                assert "action" in c.ask(f"10.0.0.{i}")
        assert time.monotonic() - t0 < 10
        while not got.endswith(b"\n"):
            chunk = s.recv(1 << 20)
            assert chunk, "connection closed mid-list"
            got += chunk
    reply = json.loads(got)
    assert reply["ok"] is True and len(reply["permits"]) == n
    assert len({p["ip"] for p in reply["permits"]}) == n  # each once
    # The CLI prints the whole listing too.
    r = daemon.cli("list", timeout=120)
    assert r.returncode == 0 and len(r.stdout.splitlines()) == n + 1, r.stderr
