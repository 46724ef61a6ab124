"""The drop-in protocol sources (`type = "drac"`, "whoson", "relay-ctrl-udp"), each driven by a
client written from its protocol's definition:

- DRAC: an rpcgen client built from tests/integration/dropins/drac.x (Debian's rpcsvc-proto and
  libtirpc) finds program 900101 through Debian's rpcbind, exactly as dracauth() does, and calls
  DRACPROC_ADD version 1 (IPv4) and 2 (IPv6) over UDP and TCP: each call grants; a caller that
  allow_file does not list gets ADD_PERM and grants nothing; `rpcinfo` pings the NULL procedure;
  the registration is gone after the daemon stops.
- whoson over TCP and UDP: LOGIN grants, QUERY answers +name, LOGOUT revokes (QUERY then -),
  garbage gets *, a client outside allow_from is refused.
- relay-ctrl: the address datagram is answered with one byte 0x01 and grants.
Every grant is checked with `relaypermit check`.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from rp_harness import free_port, make_dir, tail, toml_str, unix_accepts, wait_until
from test_syslog_source import free_udp_port

HERE = Path(__file__).resolve().parent
RPCBIND_SOCKET = "/run/rpcbind.sock"


def lst(xs) -> str:
    return "[" + ", ".join(toml_str(x) for x in xs) + "]"


def source(kind: str, listen: list[str] | None = None, **keys) -> str:
    text = f"\n[[source]]\ntype = \"{kind}\"\n"
    if listen is not None:
        text += f"listen = {lst(listen)}\n"
    for k, v in keys.items():
        text += f"{k} = {lst(v) if isinstance(v, list) else toml_str(v)}\n"
    return text


def udp_ask(port: int, payload: bytes, source_ip: str = "127.0.0.1", timeout: float = 10) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source_ip, 0))
        s.settimeout(timeout)
        s.sendto(payload, ("127.0.0.1", port))
        return s.recvfrom(65536)[0]


def stderr_has(d, needle: str) -> bool:
    return d.stderr_path.exists() and needle in d.stderr_path.read_text(errors="replace")


# ---- DRAC ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def drac_client(workdir) -> Path:
    """The rpcgen client of drac.x, built once."""
    for prog in ("rpcgen", "gcc"):
        if not shutil.which(prog):
            pytest.skip(f"{prog} missing: run scripts/install-test-servers.sh")
    if not Path("/usr/include/tirpc/rpc/rpc.h").exists():
        pytest.skip("libtirpc-dev missing: run scripts/install-test-servers.sh")
    d = make_dir(workdir / "drac-client")
    for f in ("drac.x", "drac_client.c"):
        shutil.copy(HERE / "dropins" / f, d / f)
    for flag, out in (("-h", "drac.h"), ("-l", "drac_clnt.c"), ("-c", "drac_xdr.c")):
        subprocess.run(["rpcgen", "-C", flag, "drac.x", "-o", out], cwd=d, check=True, capture_output=True)
    subprocess.run(["gcc", "-I/usr/include/tirpc", "-o", "drac_client", "drac_client.c", "drac_clnt.c",
                    "drac_xdr.c", "-ltirpc"], cwd=d, check=True, capture_output=True)
    return d / "drac_client"


@pytest.fixture(scope="module")
def rpcbind():
    """Debian's rpcbind: the host's if one runs, else our own `rpcbind -f -w` (not `-h
    127.0.0.1`: Debian 12's rpcbind aborts with a double free then)."""
    if unix_accepts(RPCBIND_SOCKET):
        yield None
        return
    exe = shutil.which("rpcbind") or "/usr/sbin/rpcbind"
    if not os.access(exe, os.X_OK):
        pytest.skip("rpcbind missing: run scripts/install-test-servers.sh")
    proc = subprocess.Popen([exe, "-f", "-w"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: proc.poll() is not None or unix_accepts(RPCBIND_SOCKET), what="rpcbind socket")
        if proc.poll() is not None:
            pytest.skip(f"rpcbind did not start: {proc.stderr.read().decode(errors='replace')}")
        yield proc
    finally:
        proc.terminate()
        proc.wait(10)


def call_drac(client: Path, proto: str, address: str) -> str:
    r = subprocess.run([str(client), "127.0.0.1", proto, address], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"drac_client {proto} {address}: {r.stdout}{r.stderr}"
    return r.stdout.strip()


def rpcinfo_ping(proto: str, version: int) -> subprocess.CompletedProcess:
    return subprocess.run(["rpcinfo", "-T", proto, "127.0.0.1", "900101", str(version)], capture_output=True,
                          text=True, timeout=60)


def drac_registered() -> bool:
    r = subprocess.run(["rpcinfo", "-p", "127.0.0.1"], capture_output=True, text=True, timeout=60)
    return any(line.split()[:1] == ["900101"] for line in r.stdout.splitlines())


def start_drac_daemon(make_daemon, name: str, **keys):
    listen = [f"udp:127.0.0.1:{free_udp_port()}", f"tcp:127.0.0.1:{free_port()}"]
    d = make_daemon(name, extra=source("drac", listen, **keys))
    d.start()
    wait_until(lambda: stderr_has(d, "registered with rpcbind") or stderr_has(d, "cannot register"),
               what="rpcbind registration")
    assert stderr_has(d, "registered with rpcbind"), tail(d.stderr_path)
    return d


def test_drac_v1_and_v2_over_udp_and_tcp_grant(make_daemon, drac_client, rpcbind):
    d = start_drac_daemon(make_daemon, "drac")
    # The NULL procedure answers (rpcinfo -T pings it) on both transports and versions.
    for proto in ("udp", "tcp"):
        for version in (1, 2):
            r = rpcinfo_ping(proto, version)
            assert r.returncode == 0 and "ready and waiting" in r.stdout, r.stdout + r.stderr
    cases = [("udp", "127.0.0.21"), ("tcp", "127.0.0.22"), ("udp", "2001:db8::21"), ("tcp", "2001:db8::22")]
    for proto, address in cases:
        assert call_drac(drac_client, proto, address) == "0"  # ADD_SUCCESS
        d.wait_permitted(address)
        permit = d.permit_for(address)
        assert permit is not None and permit.get("user", "") in ("", "-"), permit
    # The Dovecot plugin repeats the call while the session lives: each call extends.
    assert call_drac(drac_client, "udp", "127.0.0.21") == "0"
    d.wait_permitted("127.0.0.21")
    assert d.stop() == 0
    assert not drac_registered(), "program 900101 still registered after the daemon stopped"


def test_drac_caller_not_in_allow_file_gets_add_perm(make_daemon, drac_client, rpcbind, testdir):
    allow = testdir / "dracd.allow"
    allow.write_text("# only the POP server at 192.0.2.1\n255.255.255.255 192.0.2.1\n")
    d = start_drac_daemon(make_daemon, "drac-perm", allow_file=str(allow))
    assert call_drac(drac_client, "udp", "127.0.0.23") == "1"  # ADD_PERM
    assert call_drac(drac_client, "tcp", "127.0.0.23") == "1"
    assert d.check("127.0.0.23").returncode == 1
    assert d.stop() == 0


# ---- whoson -------------------------------------------------------------------------------------

class WhosonTcp:
    def __init__(self, port: int, source_ip: str = "127.0.0.1"):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=(source_ip, 0))
        self.buf = b""

    def ask(self, line: str) -> str:
        self.sock.sendall(line.encode() + b"\r\n\r\n")
        while b"\r\n\r\n" not in self.buf:
            data = self.sock.recv(4096)
            if not data:
                raise ConnectionError(f"closed after {line!r}")
            self.buf += data
        reply, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return reply.decode()

    def close(self):
        self.sock.close()


def whoson_daemon(make_daemon, name: str, **keys):
    tcp, udp = free_port(), free_udp_port()
    d = make_daemon(name, extra=source("whoson", [f"tcp:127.0.0.1:{tcp}", f"udp:127.0.0.1:{udp}"], **keys))
    d.start()
    return d, tcp, udp


def test_whoson_over_tcp(make_daemon):
    d, tcp, _ = whoson_daemon(make_daemon, "whoson-tcp")
    c = WhosonTcp(tcp)
    assert c.ask("QUERY 127.0.0.31") .startswith("-")
    assert c.ask("LOGIN 127.0.0.31 alice").startswith("+")
    d.wait_permitted("127.0.0.31")
    assert c.ask("QUERY 127.0.0.31") == "+alice"
    assert c.ask("query 127.0.0.31") == "+alice"  # verbs are case-insensitive
    assert c.ask("LOGOUT 127.0.0.31").startswith("+")
    assert c.ask("QUERY 127.0.0.31").startswith("-")
    assert d.check("127.0.0.31").returncode == 1
    assert c.ask("LOGOUT 127.0.0.31").startswith("-")  # nothing left to revoke
    assert c.ask("HELLO there").startswith("*")
    assert c.ask("LOGIN not-an-address bob").startswith("*")
    assert c.ask("QUIT").startswith("+")
    assert c.sock.recv(16) == b""  # closed after QUIT
    c.close()


def test_whoson_over_udp(make_daemon):
    d, _, udp = whoson_daemon(make_daemon, "whoson-udp")
    assert udp_ask(udp, b"LOGIN 127.0.0.32 bob\r\n\r\n").startswith(b"+")
    d.wait_permitted("127.0.0.32")
    assert udp_ask(udp, b"QUERY 127.0.0.32\r\n\r\n") == b"+bob\r\n\r\n"
    assert udp_ask(udp, b"LOGOUT 127.0.0.32\r\n\r\n").startswith(b"+")
    assert udp_ask(udp, b"QUERY 127.0.0.32\r\n\r\n").startswith(b"-")
    assert udp_ask(udp, b"\x00\xff garbage\r\n\r\n").startswith(b"*")
    assert d.check("127.0.0.32").returncode == 1


def test_whoson_refuses_clients_outside_allow_from(make_daemon):
    d, tcp, udp = whoson_daemon(make_daemon, "whoson-allow", allow_from=["127.0.0.2/32"])
    # TCP from 127.0.0.1: closed at accept, nothing answered.
    with socket.create_connection(("127.0.0.1", tcp), timeout=10, source_address=("127.0.0.1", 0)) as s:
        try:
            s.sendall(b"LOGIN 127.0.0.33 mallory\r\n\r\n")
            assert s.recv(64) == b""
        except ConnectionResetError:
            pass
    # UDP from 127.0.0.1 gets no answer; a datagram from 127.0.0.2 sent after it is answered,
    # and the socket is read in order, so the refused one was handled by then.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.sendto(b"LOGIN 127.0.0.34 mallory\r\n\r\n", ("127.0.0.1", udp))
    assert udp_ask(udp, b"LOGIN 127.0.0.35 carol\r\n\r\n", source_ip="127.0.0.2").startswith(b"+")
    d.wait_permitted("127.0.0.35")
    for ip in ("127.0.0.33", "127.0.0.34"):
        assert d.check(ip).returncode == 1, ip
    c = WhosonTcp(tcp, source_ip="127.0.0.2")
    assert c.ask("QUERY 127.0.0.35") == "+carol"
    c.close()


# ---- relay-ctrl ---------------------------------------------------------------------------------

def test_relay_ctrl_datagram_is_acknowledged_and_grants(make_daemon):
    port = free_udp_port()
    d = make_daemon("relay-ctrl", extra=source("relay-ctrl-udp", [f"udp:127.0.0.1:{port}"]))
    d.start()
    assert udp_ask(port, b"127.0.0.41") == b"\x01"
    d.wait_permitted("127.0.0.41")
    assert udp_ask(port, b"2001:db8::41\0") == b"\x01"
    d.wait_permitted("2001:db8::41")
    assert d.permit_for("127.0.0.41") is not None
