"""Real Postfix 3.7 asking relaypermit through a socketmap access map:
`smtpd_relay_restrictions = check_client_access socketmap:inet:127.0.0.1:PORT:relaypermit,
reject_unauth_destination`. A client with a permit relays, another is denied, and after expiry
the first is denied again; `postmap -q` sees the same answers. Skipped until the daemon wires
`[socketmap] listen` (SocketmapFrontend)."""

from __future__ import annotations

import time

import pytest

from conftest import _require_programs, _require_root
from rp_harness import free_port, tail
from socketmap_helpers import SocketmapClient, SocketmapPostfix, postmap_query, socketmap_listening


@pytest.fixture(scope="module")
def sm_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def sm_postfix(workdir, sm_port):
    _require_root()
    _require_programs("postfix", "postconf", "postmap", "script")
    pf = SocketmapPostfix(workdir / "postfix-socketmap", sm_port)
    try:
        pf.start()
        yield pf
    finally:
        pf.stop()
        print(f"\n--- postfix (socketmap) log ---\n{tail(pf.log_path)}")


def start_with_socketmap(make_daemon, dovecot, sm_port, ttl: str = "30m"):
    d = make_daemon(sources=[dovecot.log_path], ttl=ttl,
                    extra=f'[socketmap]\nlisten = ["127.0.0.1:{sm_port}"]\n')
    d.start()
    if not socketmap_listening(sm_port):
        pytest.fail("daemon started but nothing listens on the [socketmap] port")
    return d


def relays(pf: SocketmapPostfix, source: str) -> bool:
    code, msg = pf.rcpt(source)
    if code == 250:
        return True
    assert code in (454, 554) and "Relay access denied" in msg, f"{source}: {code} {msg}"
    return False


def test_socketmap_protocol_direct(make_daemon, dovecot, sm_port):
    d = start_with_socketmap(make_daemon, dovecot, sm_port)
    assert dovecot.login_pop3("alice", "alice-secret", "127.0.0.2").returncode == 0
    d.wait_permitted("127.0.0.2")
    with SocketmapClient("127.0.0.1", sm_port) as c:
        assert c.ask("relaypermit", "127.0.0.2") == "OK OK"
        assert c.ask("relaypermit", "[127.0.0.2]") == "OK OK"
        assert c.ask("relaypermit", "::ffff:127.0.0.2") == "OK OK"
        assert c.ask("relaypermit", "127.0.0.3") == "NOTFOUND "
        assert c.ask("relaypermit", "client.example.org") == "NOTFOUND "
        # Sendmail's access map.
        assert c.ask("access", "connect:127.0.0.2") == "OK RELAY"
        assert c.ask("access", "connect:[127.0.0.2]") == "OK RELAY"
        assert c.ask("access", "127.0.0.2") == "NOTFOUND "
        assert c.ask("access", "connect:127.0.0") == "NOTFOUND "
        assert c.ask("access", "from:alice@example.org") == "NOTFOUND "


def test_postfix_relays_via_socketmap_until_expiry(sm_postfix, make_daemon, dovecot, sm_port):
    ttl = 6
    d = start_with_socketmap(make_daemon, dovecot, sm_port, ttl=f"{ttl}s")
    assert not relays(sm_postfix, "127.0.0.2")
    assert dovecot.login_pop3("alice", "alice-secret", "127.0.0.2").returncode == 0
    d.wait_permitted("127.0.0.2", timeout=ttl - 1)
    assert relays(sm_postfix, "127.0.0.2")
    assert not relays(sm_postfix, "127.0.0.3")

    r = postmap_query("127.0.0.2", sm_postfix.map_name)
    assert r.returncode == 0 and r.stdout.strip() == "OK", (r.returncode, r.stdout, r.stderr)
    r = postmap_query("127.0.0.3", sm_postfix.map_name)
    assert r.returncode == 1 and r.stdout == "", (r.returncode, r.stdout, r.stderr)
    r = postmap_query("192.0.2.1", f"socketmap:inet:127.0.0.1:{sm_port}:x")
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)

    d.wait_not_permitted("127.0.0.2", timeout=ttl + 5)
    noticed = time.time()
    assert not relays(sm_postfix, "127.0.0.2")
    r = postmap_query("127.0.0.2", sm_postfix.map_name)
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    assert time.time() - noticed < 30
