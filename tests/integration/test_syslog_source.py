"""`type = "syslog"`: a POP host forwards its mail log with real rsyslog (omfwd) to relaypermit
over loopback, by UDP, TCP with octet counting, TCP with LF framing and (when rsyslog's gtls
driver is installed) TLS; a login forwarded that way permits relay, a failed login does not, and
a datagram forged by a peer outside allow_from grants nothing.

The daemon must have the syslog source wired in: until then these tests skip (the daemon
refuses the config with "not available in this version").
"""

from __future__ import annotations

import socket
import subprocess

import pytest

from rp_harness import free_port, make_dir, mapped_libraries, port_accepts, toml_str, wait_until
from syslog_helpers import (Forward, Rsyslog, dovecot_failed_login, dovecot_login, have,
                            make_self_signed, rsyslog_gtls_available)

pytestmark = pytest.mark.skipif(not (have("rsyslogd") and have("logger")),
                                reason="rsyslogd or logger missing: run scripts/install-test-servers.sh")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def syslog_source(listen: list[str], allow_from: list[str] | None = None, **tls) -> str:
    lst = lambda xs: "[" + ", ".join(toml_str(x) for x in xs) + "]"
    text = f"\n[[source]]\ntype = \"syslog\"\nlisten = {lst(listen)}\n"
    if allow_from is not None:
        text += f"allow_from = {lst(allow_from)}\n"
    for k, v in tls.items():
        text += f"{k} = {toml_str(v)}\n"
    return text


@pytest.fixture(scope="module")
def syslog_wired(rp_binary, workdir) -> bool:
    """Whether this daemon has the syslog source: start it with only a tcp syslog listener and
    see whether that port accepts, or whether it exits saying "not available in this version"."""
    d = make_dir(workdir / "syslog-probe")
    port = free_port()
    conf = d / "probe.toml"
    conf.write_text(f"state_dir = {toml_str(d / 'state')}\n"
                    f"control_socket = {toml_str(d / 'run' / 'control.sock')}\n"
                    f"\n[policy]\nlisten = [\"127.0.0.1:{free_port()}\"]\n"
                    + syslog_source([f"tcp:127.0.0.1:{port}"]))
    err_path = d / "stderr"
    with open(err_path, "w") as err:
        proc = subprocess.Popen([str(rp_binary), "run", "--config", str(conf)], stdin=subprocess.DEVNULL,
                                stdout=err, stderr=err)
    try:
        def settled():
            if proc.poll() is not None:
                return "exited"
            return "listening" if port_accepts("127.0.0.1", port) else None
        state = wait_until(settled, what="the syslog probe daemon to listen or exit")
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
    if state == "listening":
        return True
    text = err_path.read_text()
    if "not available in this version" in text:
        return False
    raise RuntimeError(f"syslog probe daemon failed:\n{text}")


@pytest.fixture(autouse=True)
def _need_wiring(syslog_wired):
    if not syslog_wired:
        pytest.skip("the syslog source is not wired into this daemon yet (\"not available in this version\")")


def start_or_skip(daemon) -> None:
    daemon.start()


@pytest.fixture
def rsyslog_factory(testdir, request):
    made: list[Rsyslog] = []

    def make(forwards, **kw) -> Rsyslog:
        r = Rsyslog(testdir / f"rsyslog{len(made)}", forwards, **kw)
        made.append(r)
        r.start()
        return r

    yield make
    for r in made:
        r.stop()
        rep = getattr(request.node, "rep_call", None)
        if rep is None or rep.failed:
            print(f"\n--- rsyslogd output ({r.out_path}) ---\n{r.output()}")


@pytest.mark.parametrize("protocol", ["udp", "tcp-octet", "tcp-lf", "tcp-lf-rfc5424"])
def test_rsyslog_forwarding_permits_relay(make_daemon, rsyslog_factory, protocol):
    port = free_udp_port() if protocol == "udp" else free_port()
    kind = "udp" if protocol == "udp" else "tcp"
    d = make_daemon(extra=syslog_source([f"{kind}:127.0.0.1:{port}"]))
    start_or_skip(d)
    template = "RSYSLOG_SyslogProtocol23Format" if protocol.endswith("rfc5424") else None
    r = rsyslog_factory([Forward(protocol.removesuffix("-rfc5424"), port, template)])
    r.log(dovecot_failed_login("mallory", "127.0.0.31"))
    r.log(dovecot_login("alice", "127.0.0.32"))
    r.log("multi\nline message that is not a login", tag="postfix/smtpd")
    r.log(dovecot_login("bob", "127.0.0.33", proto="imap"))
    d.wait_permitted("127.0.0.32")
    d.wait_permitted("127.0.0.33")
    assert d.check("127.0.0.31").returncode == 1, "a failed login must not permit relay"
    p = d.permit_for("127.0.0.33")
    assert p is not None and p.get("user") == "bob", p


def test_forged_datagram_from_outside_allow_from_grants_nothing(make_daemon, rsyslog_factory):
    port = free_udp_port()
    d = make_daemon(extra=syslog_source([f"udp:127.0.0.1:{port}"], allow_from=["127.0.0.1/32"]))
    start_or_skip(d)
    forged = f"<22>Nov 22 00:31:13 mx1 dovecot: {dovecot_login('eve', '127.0.0.41')}\n".encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.9", 0))
        s.sendto(forged, ("127.0.0.1", port))
    # rsyslog sends from 127.0.0.1 (allowed) to the same socket, after the forged datagram.
    r = rsyslog_factory([Forward("udp", port)])
    r.log(dovecot_login("alice", "127.0.0.42"))
    d.wait_permitted("127.0.0.42")
    assert d.check("127.0.0.41").returncode == 1, "a datagram from outside allow_from must grant nothing"


def test_tcp_octet_and_lf_senders_share_one_listener(make_daemon, rsyslog_factory):
    port = free_port()
    d = make_daemon(extra=syslog_source([f"tcp:127.0.0.1:{port}"]))
    start_or_skip(d)
    a = rsyslog_factory([Forward("tcp-octet", port)])
    b = rsyslog_factory([Forward("tcp-lf", port)])
    a.log(dovecot_login("alice", "127.0.0.51"))
    b.log(dovecot_login("bob", "127.0.0.52"))
    d.wait_permitted("127.0.0.51")
    d.wait_permitted("127.0.0.52")


@pytest.mark.skipif(not rsyslog_gtls_available(), reason="rsyslog-gnutls (rsyslog's gtls driver) is not installed")
@pytest.mark.skipif(not have("openssl"), reason="openssl missing (needed to make a test certificate)")
def test_rsyslog_tls_forwarding_permits_relay(make_daemon, rsyslog_factory, testdir):
    cert, key = make_self_signed(testdir, "server")
    port = free_port()
    d = make_daemon(extra=syslog_source([f"tls:127.0.0.1:{port}"], tls_cert=str(cert), tls_key=str(key)))
    start_or_skip(d)
    # rsyslog checks our certificate against the self-signed one as its CA.
    r = rsyslog_factory([Forward("tls", port)], tls_ca=cert)
    r.log(dovecot_login("alice", "127.0.0.61"))
    d.wait_permitted("127.0.0.61")
    # GnuTLS was opened by the tls: listener, not linked at start (src/util/dynlib.hpp).
    assert any(lib.startswith("libgnutls.so.30") for lib in mapped_libraries(d.proc.pid))


@pytest.mark.skipif(not rsyslog_gtls_available(), reason="rsyslog-gnutls (rsyslog's gtls driver) is not installed")
@pytest.mark.skipif(not have("openssl"), reason="openssl missing (needed to make a test certificate)")
def test_tls_client_certificate_required_when_tls_ca_is_set(make_daemon, rsyslog_factory, testdir):
    cert, key = make_self_signed(testdir, "server")
    client_cert, client_key = make_self_signed(testdir, "client")
    other_cert, other_key = make_self_signed(testdir, "other")
    port = free_port()
    d = make_daemon(extra=syslog_source([f"tls:127.0.0.1:{port}"], tls_cert=str(cert), tls_key=str(key),
                                        tls_ca=str(client_cert)))
    start_or_skip(d)
    # A client whose certificate tls_ca did not sign is refused; the signed one is accepted.
    bad = rsyslog_factory([Forward("tls", port)], tls_ca=cert, tls_cert=other_cert, tls_key=other_key)
    bad.log(dovecot_login("eve", "127.0.0.71"))
    good = rsyslog_factory([Forward("tls", port)], tls_ca=cert, tls_cert=client_cert, tls_key=client_key)
    good.log(dovecot_login("alice", "127.0.0.72"))
    d.wait_permitted("127.0.0.72")
    assert d.check("127.0.0.71").returncode == 1, "a client without an accepted certificate must grant nothing"
