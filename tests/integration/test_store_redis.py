"""The Redis shared-store backend against a real redis-server (Debian package).

One private Redis per module (store_redis.py) on a free loopback port, with a password that
needs %-escaping in the URL. The backend's behaviour is checked by the GoogleTest suites in
tests/unit/test_shared_backend.cpp, run here with RP_TEST_REDIS_URL set:
  - Engines/SharedBackendConformance.*/redis: the contract every shared store keeps (first:
    four daemons connecting at once; no lost update; propagation latency, printed);
  - RedisBackend.*: key layout and expiry, arbitrary bytes, foreign keys and messages,
    databases and prefixes kept apart, a killed subscriber connection;
the budget counters (Engines/SharedCounters.*/redis, tests/unit/test_shared_counters.cpp) on
a database of their own (their rows expire, not removed by the suite);
and again as the least-privilege ACL user that docs/store-redis.md gives, on another database,
and after the server was SIGKILLed and restarted on the same port.
"""

from __future__ import annotations

import os
import re
import urllib.parse
from pathlib import Path

import pytest

from rp_harness import make_dir, run
from store_redis import RedisServer, have_redis

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "store-redis.md"
PASSWORD = "Rd:pw@1/x%y"
ACL_PASSWORD = "Acl pw:2/%"
CONFORMANCE = "Engines/SharedBackendConformance.*/redis"
REDIS_ONLY = "RedisBackend.*:RedisBackendFactory.*:StoreUrl.*"


@pytest.fixture(scope="module")
def redis(workdir):
    if not have_redis():
        pytest.skip("redis-server is not installed: run scripts/install-deps.sh --test")
    with RedisServer(make_dir(workdir / "redis"), password=PASSWORD) as server:
        yield server


def gtest(binary: Path, url: str, pattern: str) -> str:
    """Runs the unit-test binary on `pattern` against `url`; asserts that every selected test
    ran (none skipped) and passed."""
    r = run([binary, f"--gtest_filter={pattern}", "--gtest_color=no"], timeout=300,
            env={**os.environ, "RP_TEST_REDIS_URL": url})
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "[  SKIPPED ]" not in out, out
    m = re.search(r"\[  PASSED  \] (\d+) test", out)
    assert m and int(m.group(1)) > 0, out
    for line in out.splitlines():
        if line.startswith(("[ latency  ]", "[ message  ]")):
            print(line)
    return out


def test_redis_conformance(redis, unit_tests):
    out = gtest(unit_tests, redis.url, f"{CONFORMANCE}:{REDIS_ONLY}")
    assert "PropagationLatency/redis" in out
    assert redis.cli("DBSIZE") == "0", "the suite removes what it wrote"


def test_redis_budget_counters(redis, unit_tests):
    gtest(unit_tests, redis.url.replace("/0", "/4"), "Engines/SharedCounters.*/redis")


def test_redis_acl_user_from_the_docs(redis, unit_tests):
    m = re.search(r"^ACL SETUSER relaypermit .*$", DOC.read_text(), re.M)
    assert m, f"{DOC} has no ACL SETUSER line"
    args = [a.replace("PASSWORD", ACL_PASSWORD) for a in m.group(0).split()]
    assert redis.cli(*args) == "OK"
    pw = urllib.parse.quote(ACL_PASSWORD, safe="")
    url = f"redis://relaypermit:{pw}@127.0.0.1:{redis.port}/0"
    gtest(unit_tests, url, CONFORMANCE)
    # database 5 needs nothing more (+select is in the line)
    gtest(unit_tests, url.replace("/0", "/5"), "Engines/SharedBackendConformance.Upsert*/redis")
    # and the ACL really limits: another prefix is refused, with a clear error
    r = run([unit_tests, "--gtest_filter=Engines/SharedBackendConformance.UpsertCreates*/redis"],
            timeout=120, env={**os.environ, "RP_TEST_REDIS_URL": url + "?prefix=other:"})
    out = r.stdout + r.stderr
    assert r.returncode != 0, out
    assert "NOPERM" in out or "No permissions" in out or "no permissions" in out, out
    assert ACL_PASSWORD not in out and pw not in out, out


def test_redis_survives_a_killed_server(redis, unit_tests):
    redis.cli("SET", "relaypermit:permit:192.0.2.9", "1:1:99999999999999999:0:x")
    redis.kill()
    redis.start()
    assert redis.cli("DBSIZE") == "0", "no persistence unless asked"
    gtest(unit_tests, redis.url, "Engines/SharedBackendConformance.ReconnectsAfterDisconnect/redis")
