"""A shared store's local snapshot (issue 14): a daemon whose engine is down at start still
starts and, with store_outage = "cache", answers from the copy of the engine's table it last saw
(state_dir/shared-snapshot), then converges with the engine once it is back.

With a real Redis (Debian's redis-server, private, AOF on so a restart keeps the keys):
  1. daemon A grants a long permit, a short one, and one it then revokes; daemon B (same Redis)
     grants a permit while A is stopped, so A's local copy cannot know it;
  2. A and Redis stop; the short permit's expiry passes;
  3. A starts with Redis down: it serves the long permit, not the expired one, not the revoked
     one, not B's; status says UNAVAILABLE and counts the outage; the log names the snapshot;
  4. Redis starts: A reconnects and answers for B's permit too (the engine's table replaces the
     copy), and its local copy is rewritten.
"""

from __future__ import annotations

import os
import time

import pytest

from rp_harness import PolicyClient, Relaypermit, make_dir, wait_until
from store_redis import RedisServer, have_redis


def action(daemon: Relaypermit, ip: str) -> str:
    c = PolicyClient(daemon.policy_endpoint)
    try:
        reply = c.ask(ip)
        assert reply is not None, "policy service closed the connection"
        return reply.get("action", "")
    finally:
        c.close()


def test_daemon_starts_from_its_local_snapshot_while_redis_is_down(rp_binary, testdir):
    if not have_redis():
        pytest.skip("redis-server is not installed: run scripts/install-test-servers.sh")
    redis = RedisServer(make_dir(testdir / "redis"), persist=True)
    redis.start()
    store = f'store = "{redis.url}"\nstore_outage = "cache"'
    a = Relaypermit(rp_binary, testdir / "a", extra=store, log_level="info")
    b = Relaypermit(rp_binary, testdir / "b", extra=store, log_level="info")
    try:
        a.start()
        wait_until(lambda: "store: available" in a.cli("status").stdout, 10, what="A to connect")
        for ip, ttl in (("192.0.2.20", "10m"), ("192.0.2.21", "3s"), ("192.0.2.22", "10m")):
            assert a.cli("allow", ip, "--ttl", ttl).returncode == 0
        short_expires = time.time() + 3
        assert a.cli("revoke", "192.0.2.22").returncode == 0
        wait_until(lambda: "queued 0," in a.cli("status").stdout, 10, what="A's grants to reach Redis")
        # The changes come back through pub/sub and are appended to A's local copy.
        wait_until(lambda: action(a, "192.0.2.21") == "OK" and action(a, "192.0.2.22") != "OK", 10,
                   what="A's cache to settle")
        a.stop()
        snapshot = a.state_dir / "shared-snapshot"
        assert snapshot.exists() and (snapshot.stat().st_mode & 0o077) == 0, "a 0600 local copy"

        b.start()
        assert b.cli("allow", "192.0.2.23", "--ttl", "10m").returncode == 0
        wait_until(lambda: "queued 0," in b.cli("status").stdout, 10, what="B's grant to reach Redis")
        b.stop()
        redis.stop()
        wait_until(lambda: time.time() > short_expires + 0.5, 10, what="the short permit's expiry")

        a.start()  # Redis is down: the daemon starts all the same
        wait_until(lambda: action(a, "192.0.2.20") == "OK", 10,
                   what="a live permit from the local copy to be served")
        assert action(a, "192.0.2.21") != "OK", "an expired permit is never served"
        assert action(a, "192.0.2.22") != "OK", "a revoked permit does not come back"
        assert action(a, "192.0.2.23") != "OK", "B's grant is not known yet"
        st = a.cli("status").stdout
        assert "UNAVAILABLE" in st and "outages 1" in st, st
        log = a.stderr_path.read_text()
        assert "from the local snapshot" in log and "unavailable" in log, log[-2000:]

        redis.start()
        wait_until(lambda: action(a, "192.0.2.23") == "OK", 30, what="A to reconnect and converge")
        assert action(a, "192.0.2.20") == "OK"
        assert action(a, "192.0.2.22") != "OK"
        assert "store: available" in a.cli("status").stdout
        assert a.running()
    finally:
        a.stop()
        b.stop()
        redis.stop()
