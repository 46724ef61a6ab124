"""One permit table for several hosts: a "POP host" daemon and two "SMTP host" daemons share a
real Redis, PostgreSQL 15 or MariaDB (Debian packages, private instances on loopback).

For each engine:
  - propagation: logins the POP host reads from its mail log are answered OK by both SMTP hosts'
    policy services; the delay from the control-socket grant on one daemon to OK on another is
    measured over 200 grants (p50/p99 printed; the issue's bound is 50 ms);
  - expiry: a short permit is denied on every host once its time has passed;
  - revoke on an SMTP host reaches the POP host;
  - restart: a restarted SMTP host answers from the shared table at once;
  - outage in the middle: the store is SIGKILLed, logins keep coming, lookups answer DUNNO
    (store_outage = "dunno") and status says UNAVAILABLE; once the store is back every login
    is permitted on every host until its own expiry (nothing lost, expiry kept).

Redis only: a revoke on one host is final for a session open on another (docs/limits.md,
"Revokes are final"), even when that host's session refresh crossed the revoke.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import statistics
import threading
import time
from pathlib import Path

import pytest

from rp_harness import PolicyClient, Relaypermit, free_port, make_dir, wait_until
from store_redis import RedisServer, have_redis
from store_sql import MariaDbServer, PostgresServer, have_mariadb, have_postgres

PASSWORD = "Sh:pw@1/x%y"


@pytest.fixture(scope="module", params=["redis", "pgsql", "mysql"])
def engine(request, workdir):
    name = request.param
    if os.geteuid() != 0:
        pytest.skip("needs root (PostgreSQL runs as user postgres)")
    if name == "redis":
        if not have_redis():
            pytest.skip("redis-server is not installed: run scripts/install-deps.sh --test")
        server = RedisServer(make_dir(workdir / "shared-redis"), password=PASSWORD, persist=True)  # AOF, as in production
    elif name == "pgsql":
        if not have_postgres():
            pytest.skip("PostgreSQL 15 is not installed: run scripts/install-deps.sh --test")
        server = PostgresServer(make_dir(workdir / "shared-pg"), PASSWORD)
    else:
        if not have_mariadb():
            pytest.skip("MariaDB is not installed: run scripts/install-deps.sh --test")
        server = MariaDbServer(make_dir(workdir / "shared-my"), PASSWORD)
    with server:
        yield name, server


def dovecot_line(ip: str, user: str) -> str:
    """A Dovecot 2.3 login line as Debian 12's rsyslog writes it (ISO timestamp, now)."""
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")
    return (f"{now} pophost dovecot: pop3-login: Login: user=<{user}>, method=PLAIN, rip={ip}, "
            f"lip=127.0.0.1, mpid=4242, session=<x{abs(hash(ip)) % 10**8}>\n")


class control:
    """A persistent control-socket connection (JSON lines), as `relaypermit allow` uses."""

    def __init__(self, daemon: Relaypermit):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(str(daemon.control_socket))
        self.buf = b""

    def ask(self, req: dict) -> dict:
        self.sock.sendall(json.dumps(req).encode() + b"\n")
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            assert chunk, "control socket closed"
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)


def ok(client: PolicyClient, ip: str) -> bool:
    reply = client.ask(ip)
    assert reply is not None, "policy service closed the connection"
    return reply.get("action") == "OK"


def test_pop_host_and_smtp_hosts_share_one_table(engine, rp_binary, testdir):
    name, server = engine
    log = testdir / "mail.log"
    log.write_text("")
    store = f'store = "{server.url}"\nstore_outage = "dunno"'
    pop = Relaypermit(rp_binary, testdir / "pop", sources=[log], extra=store, log_level="info")
    smtp = [Relaypermit(rp_binary, testdir / f"smtp{i}", extra=store, log_level="info") for i in (1, 2)]
    daemons = [pop, *smtp]
    try:
        for d in daemons:
            d.start()
        clients = [PolicyClient(d.policy_endpoint) for d in smtp]

        # Logins read from the POP host's mail log are answered OK by both SMTP hosts.
        ips = [f"192.0.2.{i}" for i in range(10, 20)]
        with open(log, "a") as f:
            for ip in ips:
                f.write(dovecot_line(ip, "u" + ip.rsplit(".", 1)[1]))
        for c in clients:
            wait_until(lambda: all(ok(c, ip) for ip in ips), 10, what="logins to reach every SMTP host")
        assert not ok(clients[0], "192.0.2.99")

        # Propagation delay, grant on one daemon -> OK from another's policy service.
        delays = []
        controls = [control(pop), control(smtp[0])]
        for i in range(200):
            ip = f"198.51.100.{i + 1}"
            (src, dst) = (controls[1], clients[1]) if i % 2 else (controls[0], clients[0])
            t0 = time.monotonic()
            reply = src.ask({"cmd": "allow", "ip": ip, "user": "bench", "ttl_ms": 600000})
            assert reply.get("ok"), reply
            while not ok(dst, ip):
                assert time.monotonic() - t0 < 30, f"{ip} never reached the other daemon"
            delays.append((time.monotonic() - t0) * 1000)
        delays.sort()
        p50, p99 = statistics.median(delays), delays[int(len(delays) * 0.99) - 1]
        print(f"\n{name}: grant->OK on another daemon over {len(delays)} grants: "
              f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, max {delays[-1]:.2f} ms")
        # Reported, not asserted: the delay depends on the host's speed and load (a loaded 2-core
        # host showed p99 448 ms), so the figure belongs to bench/ and docs/benchmarks.md.

        # Expiry: exact and local on every host.
        r = smtp[1].cli("allow", "203.0.113.5", "--ttl", "2s")
        assert r.returncode == 0
        wait_until(lambda: ok(clients[0], "203.0.113.5"), 5, what="short permit on smtp1")
        # Each host expires it on its own clock. Wait for the conditions, not for the POP host
        # first: it may learn the permit a poll later (MySQL polls once a second), and a check
        # of it before then passed at once while the SMTP hosts still (rightly) answered OK.
        wait_until(lambda: not ok(clients[0], "203.0.113.5") and not ok(clients[1], "203.0.113.5"), 10,
                   what="the 2 s permit to expire on both SMTP hosts")
        pop.wait_not_permitted("203.0.113.5", timeout=10)

        # Revoke on an SMTP host reaches the POP host and the other SMTP host.
        r = smtp[0].cli("revoke", "192.0.2.10")
        assert r.returncode == 0, r.stdout + r.stderr
        pop.wait_not_permitted("192.0.2.10", timeout=5)
        wait_until(lambda: not ok(clients[1], "192.0.2.10"), 5, what="revoke to reach smtp2")

        # A restarted SMTP host answers from the shared table.
        clients[1].close()
        smtp[1].stop()
        smtp[1].start()
        clients[1] = PolicyClient(smtp[1].policy_endpoint)
        wait_until(lambda: ok(clients[1], "192.0.2.11"), 10, what="restarted smtp2 to answer")

        # Outage in the middle: kill the store, keep logging in, bring it back.
        server.kill()
        with open(log, "a") as f:
            for i in range(30, 40):
                f.write(dovecot_line(f"192.0.2.{i}", f"late{i}"))
        wait_until(lambda: not ok(clients[0], "192.0.2.11"), 15,
                   what="lookups to answer DUNNO while the store is down")
        st = smtp[0].cli("status").stdout
        assert "UNAVAILABLE" in st, st
        wait_until(lambda: len([p for p in pop.list_json() if p["user"].startswith("late")]) == 10, 10,
                   what="the POP host to read the logins during the outage")
        late = {p["ip"]: p["expires"] for p in pop.list_json() if p["user"].startswith("late")}
        server.start()
        for c in clients:
            wait_until(lambda: all(ok(c, f"192.0.2.{i}") for i in range(30, 40)), 30,
                       what="logins made during the outage to reach every SMTP host")
        for p in smtp[0].list_json():
            if p["ip"] in late:
                assert p["expires"] == late[p["ip"]], "replay keeps each permit's own expiry"
        assert "store: available" in smtp[0].cli("status").stdout
        for d in daemons:
            assert d.running()
    finally:
        for d in daemons:
            d.stop()


class SubscriberHold:
    """A TCP proxy in front of Redis that can hold what Redis sends to subscriber connections
    (the ones that sent SUBSCRIBE): a daemon behind it keeps writing but hears no news, as one
    does while a revoke's notification is on its way."""

    def __init__(self, port: int):
        self.target = port
        self.port = free_port()
        self.hold = threading.Event()
        self.released = threading.Event()
        self.released.set()
        self.lsock = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.lsock.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            state = {"sub": False}
            threading.Thread(target=self._pump, args=(client, server, state, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, state, False), daemon=True).start()

    def _pump(self, src, dst, state, upstream):
        try:
            while data := src.recv(65536):
                if upstream and b"SUBSCRIBE" in data.upper():
                    state["sub"] = True
                if not upstream and state["sub"] and self.hold.is_set():
                    self.released.wait()  # held, in order, until release()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def freeze(self):
        self.released.clear()
        self.hold.set()

    def release(self):
        self.hold.clear()
        self.released.set()

    def close(self):
        self.release()
        self.lsock.close()


def open_sessions(daemon: Relaypermit) -> int:
    r = daemon.cli("status", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)["sessions"]["open"]


def test_revoke_on_one_host_ends_a_session_another_host_refreshes(rp_binary, testdir):
    if not have_redis():
        pytest.skip("redis-server is not installed: run scripts/install-deps.sh --test")
    with RedisServer(make_dir(testdir / "redis")) as server:
        hold = SubscriberHold(server.port)
        log = testdir / "mail.log"
        log.write_text("")
        a = Relaypermit(rp_binary, testdir / "a", extra=f'store = "{server.url}"', log_level="info")
        b = Relaypermit(rp_binary, testdir / "b", sources=[log], ttl="4s", log_level="info",
                        extra=f'store = "redis://127.0.0.1:{hold.port}/0"\nmax_lifetime = "1h"')
        try:
            a.start()
            b.start()
            ip = "192.0.2.50"
            with open(log, "a") as f:
                f.write(dovecot_line(ip, "alice"))
            wait_until(lambda: open_sessions(b) == 1, 10, what="the session to open on host B")
            a.wait_permitted(ip)

            # B hears nothing while A revokes; B's next refresh (every 2 s) writes the permit again.
            hold.freeze()
            r = a.cli("revoke", ip)
            assert r.returncode == 0, r.stdout + r.stderr
            wait_until(lambda: "revoke ip=192.0.2.50" in a.stderr_path.read_text(), 5, what="the revoke on A")
            a.wait_permitted(ip, timeout=15)  # the crossing refresh reached A through Redis
            hold.release()

            # B hears of the revoke: the session of the login before it ends, the permit is removed
            # again, everywhere, and stays removed.
            wait_until(lambda: open_sessions(b) == 0, 15, what="host B to end the revoked session")
            a.wait_not_permitted(ip, timeout=10)
            b.wait_not_permitted(ip, timeout=10)
            assert "by=revoked_elsewhere" in b.stderr_path.read_text()

            # A new login after the revoke earns its permit and session normally.
            with open(log, "a") as f:
                f.write(dovecot_line(ip, "alice").replace("session=<x", "session=<y"))
            wait_until(lambda: open_sessions(b) == 1, 10, what="the new login's session")
            a.wait_permitted(ip)
        finally:
            hold.close()
            for d in (a, b):
                d.stop()
