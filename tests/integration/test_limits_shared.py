"""[limits] budgets shared through PostgreSQL and MariaDB (issue 17): relaypermit_budget_counters
on a real PostgreSQL 15 and a real MariaDB 10.11 (private instances, store_sql.py), the same
checks test_limits.py makes with Redis:

- two daemons on one database share one recipients budget: daemon A behind a real Postfix spends
  it (250 for each RCPT, then 450 with DEFER_IF_REJECT), daemon B on the policy protocol learns
  the shared total from its own next count and refuses too, within the overshoot docs/limits.md
  bounds; the table holds the total;
- the counts survive a restart of both daemons (read back from the table);
- the database SIGKILLed under a daemon (store_outage = "cache"): the daemon counts alone, still
  refuses past the budget, and its queued counts reach the table once the server is back.
"""

from __future__ import annotations

import json
import os

import pytest

from rp_harness import PolicyClient, Postfix, Relaypermit, free_port, make_dir, wait_until
from store_sql import MariaDbServer, PostgresServer, have_mariadb, have_postgres

PASSWORD = "Lb:pw@1/x%y"
REFUSE = 'action = "DEFER_IF_REJECT 4.7.1 relay permit limit reached"\n'


@pytest.fixture(scope="module", params=["pgsql", "mysql"])
def engine(request, workdir):
    name = request.param
    if os.geteuid() != 0:
        pytest.skip("needs root (PostgreSQL runs as user postgres)")
    if name == "pgsql":
        if not have_postgres():
            pytest.skip("PostgreSQL 15 is not installed: run scripts/install-deps.sh --test")
        server = PostgresServer(make_dir(workdir / "limits-pg"), PASSWORD)
    else:
        if not have_mariadb():
            pytest.skip("MariaDB is not installed: run scripts/install-deps.sh --test")
        server = MariaDbServer(make_dir(workdir / "limits-my"), PASSWORD)
    with server:
        yield name, server


def stored_count(server, key: str) -> int:
    """The sum over windows of `key`'s rows in relaypermit_budget_counters (0: none)."""
    rows = server.sql(f"SELECT COALESCE(SUM(n), 0) FROM relaypermit_budget_counters WHERE counter_key = '{key}'")
    return int(rows[0][0])


def used(d: Relaypermit, ip: str) -> int:
    permit = d.permit_for(ip) or {}
    return int(permit.get("budget", {}).get("recipients", "0/0").split("/")[0])


def counters(d: Relaypermit) -> dict:
    return json.loads(d.cli("status", "--json").stdout)["limits"]["counters"]


def action(c: PolicyClient, ip: str) -> str:
    reply = c.ask(ip)
    assert reply is not None
    return reply["action"]


def test_two_daemons_behind_postfix_and_policy_share_one_budget(engine, rp_binary, testdir):
    name, server = engine
    ip = "127.0.0.71" if name == "pgsql" else "127.0.0.72"
    port = free_port()
    pf = Postfix(make_dir(testdir / "pf"), f"inet:127.0.0.1:{port}", testdir / "pf-unused.sock")
    extra = f'store = "{server.url}"\n[limits]\nrecipients = "4/1h"\n{REFUSE}'
    a = Relaypermit(rp_binary, testdir / "a", policy_port=port, extra=extra)
    b = Relaypermit(rp_binary, testdir / "b", extra=extra)
    try:
        pf.start()
        a.start()
        b.start()
        assert a.cli("allow", ip, "--user", "dave").returncode == 0
        b.wait_permitted(ip)
        for i in range(4):
            assert pf.rcpt(ip, rcpt=f"u{i}@example.net")[0] == 250
        wait_until(lambda: stored_count(server, f"r|{ip}") == 4, 10, what="a's counts in the table")
        with PolicyClient(b.policy_endpoint) as cb:
            # b has not counted this address yet: its first RCPT is answered from its own count
            # (the overshoot docs/limits.md bounds) and brings back the shared total.
            assert action(cb, ip) == "OK"
            wait_until(lambda: used(b, ip) >= 5, 10, what="b to learn the shared total")
            assert action(cb, ip).startswith("DEFER_IF_REJECT 4.7.1")
        code, msg = pf.rcpt(ip)
        assert code == 450 and "relay permit limit reached" in msg, (code, msg)
        assert stored_count(server, f"r|{ip}") == 5
        # Restart both daemons: the counts come back from the table.
        a.stop()
        b.stop()
        a.start()
        wait_until(lambda: used(a, ip) >= 5, 10, what="the counts read back from the table")
        assert pf.rcpt(ip)[0] == 450
    finally:
        a.stop()
        b.stop()
        pf.stop()


def test_counts_wait_for_a_killed_server_and_reach_it_after(engine, rp_binary, testdir):
    name, server = engine
    ip = "192.0.2.73" if name == "pgsql" else "192.0.2.74"
    d = Relaypermit(rp_binary, testdir / "d",
                    extra=f'store = "{server.url}"\nstore_outage = "cache"\n[limits]\nrecipients = "3/1h"\n')
    try:
        d.start()
        assert d.cli("allow", ip, "--ttl", "1h").returncode == 0
        wait_until(lambda: counters(d)["available"], 10, what="the counters' connection")
        with PolicyClient(d.policy_endpoint) as c:
            assert action(c, ip) == "OK"
            wait_until(lambda: stored_count(server, f"r|{ip}") == 1, 10, what="the first count in the table")
            server.kill()
            assert action(c, ip) == "OK"  # counted alone while the database is down
            assert action(c, ip) == "OK"
            assert action(c, ip).startswith("DEFER_IF_PERMIT")  # past the budget, locally
            wait_until(lambda: not counters(d)["available"] and counters(d)["pending"] >= 1, 30,
                       what="the counts to wait for the database")
            server.start()
            wait_until(lambda: counters(d)["available"] and counters(d)["pending"] == 0, 60,
                       what="the queued counts to be written")
            assert stored_count(server, f"r|{ip}") == 3
            assert action(c, ip).startswith("DEFER_IF_PERMIT")
        assert d.running()
    finally:
        d.stop()
