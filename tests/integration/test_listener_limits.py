"""Listener limits against the real binary (issue 12 item 7): with 5000 idle policy connections
open (more than the default max_clients = 4096), a new client is still answered: the longest-idle
connections were closed to make room instead of the newcomer being refused. The observed latency
is printed, not asserted tightly (the deadline is generous so a slow host passes)."""
import json
import resource
import socket
import time

import pytest

from rp_harness import wait_until

IDLE = 5000
REQUEST = (b"request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address=192.0.2.1\n"
           b"client_name=unknown\n\n")


def _raise_nofile(wanted: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < wanted:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {wanted}")
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))  # the daemon inherits it too


def _policy_status(d) -> dict:
    r = d.cli("status", "--json")
    assert r.returncode == 0, r.stderr
    return next(f for f in json.loads(r.stdout)["frontends"] if f["name"] == "policy")


def test_5000_idle_policy_connections_do_not_lock_out_a_new_client(make_daemon):
    _raise_nofile(2 * IDLE + 1000)  # our client ends + the daemon's (same limit, inherited)
    d = make_daemon(log_level="info")
    d.start()
    idle = []
    try:
        for _ in range(IDLE):
            s = socket.create_connection(("127.0.0.1", d.policy_port), timeout=10)
            idle.append(s)
        wait_until(lambda: (lambda st: st["active"] + st["refused"] >= IDLE)(_policy_status(d)), 60,
                   what=f"the daemon took all {IDLE} connections")
        st = _policy_status(d)
        assert st["active"] <= 4096, st
        assert st["refused"] >= IDLE - 4096, st

        started = time.monotonic()
        with socket.create_connection(("127.0.0.1", d.policy_port), timeout=10) as fresh:
            fresh.sendall(REQUEST)
            answer = b""
            while not answer.endswith(b"\n\n"):
                chunk = fresh.recv(4096)
                assert chunk, "the daemon closed the new client instead of answering it"
                answer += chunk
        latency_ms = (time.monotonic() - started) * 1000
        print(f"\nnew client answered with {IDLE} idle connections open in {latency_ms:.1f} ms")
        assert answer == b"action=DUNNO\n\n"

        # The longest idle (the first opened) made room: the daemon closed it.
        idle[0].settimeout(10)
        assert idle[0].recv(1) == b""
        assert d.running()
    finally:
        for s in idle:
            s.close()
