"""[metrics]: the HTTP listener for Prometheus and health checks, against the built daemon.

- /metrics is read with python3-prometheus-client's own parser (text format 0.0.4): the families
  are there, build_info carries the version, and the counters move after a grant (a Dovecot login
  line in the followed log) and a lookup (a policy request);
- /health is 200 {"status":"ok"} on a well daemon, and 503 naming the reason when a shared store
  URL points at a closed port;
- hostile HTTP clients (garbage, a huge header, an idle connection, wrong paths and methods)
  get 400/404/405 or are closed, and the daemon keeps serving;
- `relaypermit status` shows each export (last write, failures).
Every wait is for a condition with a deadline.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import time

import pytest

from rp_harness import PolicyClient, free_port, wait_until

parser = pytest.importorskip("prometheus_client.parser",
                             reason="python3-prometheus-client is missing: run scripts/install-test-servers.sh")


def dovecot_line(ip: str, user: str) -> str:
    now = dt.datetime.now(dt.timezone.utc).isoformat(timespec="microseconds")
    return (f"{now} pophost dovecot: pop3-login: Login: user=<{user}>, method=PLAIN, rip={ip}, "
            f"lip=127.0.0.1, mpid=4242, session=<x{abs(hash(ip)) % 10**8}>\n")


def http(port: int, request: bytes, timeout: float = 10) -> bytes:
    """Sends `request` and reads until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(request)
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out


def get(port: int, path: str, method: str = "GET") -> tuple[int, dict, bytes]:
    raw = http(port, f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    return int(lines[0].split()[1]), headers, body


def samples(port: int) -> dict:
    """{(name, frozenset(labels)): value} of the whole page, through the real parser."""
    status, headers, body = get(port, "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain; version=0.0.4")
    out = {}
    for family in parser.text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(page: dict, name: str, **labels) -> float:
    return page.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def metrics_daemon(make_daemon, testdir):
    log = testdir / "mail.log"
    log.write_text("")
    port = free_port()
    d = make_daemon(sources=[log], extra=f'[metrics]\nlisten = ["127.0.0.1:{port}"]\n',
                    log_level="info")
    d.start()
    wait_until(lambda: get(port, "/health")[0] == 200, what="the metrics listener")
    return d, port, log


def test_counters_move_after_a_grant_and_a_lookup(metrics_daemon):
    d, port, log = metrics_daemon
    source = f"file:{log}"
    before = samples(port)
    version = json.loads(d.cli("status", "--json").stdout)["version"]
    assert value(before, "relaypermit_build_info", version=version) == 1
    assert value(before, "relaypermit_permits") == 0
    for name in ("relaypermit_store_available", "relaypermit_store_queue_length", "relaypermit_uptime_seconds"):
        assert any(k[0] == name for k in before), name
    assert not any("user" in dict(k[1]) or "ip" in dict(k[1]) for k in before), "no per-user or per-address label"

    with open(log, "a") as f:
        f.write(dovecot_line("127.0.0.2", "alice"))
    d.wait_permitted("127.0.0.2")
    page = wait_until(lambda: (p := samples(port)) and value(p, "relaypermit_permits") == 1 and p,
                      what="relaypermit_permits == 1")
    assert value(page, "relaypermit_grants_total", source=source, server="dovecot") == 1
    assert value(page, "relaypermit_permit_changes_total", change="created") == 1
    assert value(page, "relaypermit_source_lines_total", source=source, kind="logins") == 1
    assert value(page, "relaypermit_source_unread_bytes", source=source) == 0
    assert value(page, "relaypermit_source_lag_seconds", source=source) >= 0

    with PolicyClient(d.policy_endpoint) as c:
        assert c.ask("127.0.0.2")["action"].startswith("OK")
        assert c.ask("127.0.0.3")["action"] == "DUNNO"
    page = wait_until(lambda: (p := samples(port))
                      and value(p, "relaypermit_lookups_total", frontend="policy", answer="not_permitted") >= 1 and p,
                      what="the lookups to be counted")
    assert value(page, "relaypermit_lookups_total", frontend="policy", answer="permitted") \
        == value(before, "relaypermit_lookups_total", frontend="policy", answer="permitted") + 1

    status, headers, body = get(port, "/health")
    assert status == 200 and json.loads(body) == {"status": "ok"}
    status, headers, body = get(port, "/metrics", method="HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0


def test_health_is_503_when_the_shared_store_is_unreachable(make_daemon):
    closed = free_port()  # nothing listens there
    port = free_port()
    d = make_daemon(extra=f'store = "redis://127.0.0.1:{closed}/0"\nstore_outage = "dunno"\n'
                          f'[metrics]\nlisten = ["127.0.0.1:{port}"]\n', log_level="info")
    d.start()

    def unhealthy():
        status, _, body = get(port, "/health")
        return status == 503 and json.loads(body)
    reply = wait_until(unhealthy, what="/health to say 503")
    assert reply["status"] == "unavailable"
    assert any(r.startswith("shared store unavailable") for r in reply["reasons"]), reply
    assert value(samples(port), "relaypermit_store_available", store="shared") == 0


def test_hostile_http_clients(metrics_daemon):
    d, port, _ = metrics_daemon
    idle = socket.create_connection(("127.0.0.1", port), timeout=60)  # connects and says nothing

    garbage = http(port, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256)) + b"\r\n\r\n")
    assert garbage == b"" or garbage.startswith(b"HTTP/1.1 400 ")
    huge = http(port, b"GET /metrics HTTP/1.1\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n")
    assert huge == b"" or huge.startswith(b"HTTP/1.1 400 ")
    assert get(port, "/admin")[0] == 404
    assert get(port, "/metrics", method="POST")[0] == 405
    assert http(port, b"GET /metrics HTTP/2.0\r\n\r\n").startswith(b"HTTP/1.1 400 ")

    # The daemon kept serving: metrics, health, and its policy service.
    assert get(port, "/health")[0] == 200
    assert value(samples(port), "relaypermit_permits") == 0
    with PolicyClient(d.policy_endpoint) as c:
        assert c.ask("127.0.0.9")["action"] == "DUNNO"

    # The idle client is closed by the listener (10 s to complete a request), not kept forever.
    idle.settimeout(60)
    start = time.monotonic()
    assert idle.recv(1) == b""
    assert time.monotonic() - start < 60
    idle.close()


def test_status_text_shows_exports(make_daemon, testdir):
    table = testdir / "relaypermit.table"
    d = make_daemon(extra=f'[[export]]\ntype = "opensmtpd-table"\npath = "{table}"\n', log_level="info")
    d.start()
    r = d.cli("status")
    assert r.returncode == 0, r.stderr
    line = next((l for l in r.stdout.splitlines() if l.startswith(f"export opensmtpd-table:{table}:")), None)
    assert line is not None, r.stdout
    assert "last write 20" in line and "failures 0" in line, line


def test_systemd_ready_status_and_watchdog(make_daemon, testdir, monkeypatch):
    """The daemon under a fake service manager: NOTIFY_SOCKET is a datagram socket of the test,
    WATCHDOG_USEC asks for pings every 0.1 s. Reads the datagrams (each with a deadline)."""
    path = testdir / "notify.sock"
    mgr = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    mgr.bind(str(path))
    mgr.settimeout(30)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    d = make_daemon(log_level="info")
    d.start()
    seen = []
    while not ({"READY=1", "WATCHDOG=1"} <= set(seen) and any(s.startswith("STATUS=") for s in seen)):
        seen.append(mgr.recv(4096).decode())
    status = next(s for s in seen if s.startswith("STATUS="))
    assert status.startswith("STATUS=serving: 0 permits, "), status
    pings = seen.count("WATCHDOG=1")
    while pings < 3:  # keeps pinging while serving
        pings += mgr.recv(4096) == b"WATCHDOG=1"
    assert d.stop() == 0
    rest = []
    mgr.settimeout(0.5)
    try:
        while True:
            rest.append(mgr.recv(4096).decode())
    except socket.timeout:
        pass
    assert "STOPPING=1" in seen + rest
    mgr.close()
