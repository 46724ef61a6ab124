"""The PostgreSQL and MySQL/MariaDB shared-store backends against real servers (Debian packages).

One private PostgreSQL 15 and one private MariaDB per module (store_sql.py), on free loopback
ports with private data directories. The backends' behaviour is checked by the GoogleTest
suites, run here with the server's URL in the environment:
  - Engines/SharedBackendConformance.*/<engine>: the contract every shared store keeps
    (tests/unit/test_shared_backend.cpp), including schema creation by four daemons at once on
    the empty database (hence first), no lost update, and propagation latency (printed);
  - Engines/SqlBackend.*/<engine> and MysqlChangeLog.*: SQL-only checks
    (tests/unit/test_sql_backend.cpp): the documented MTA query, purge, encodings, the budget
    counters' table;
  - Engines/SharedCounters.*/<engine>: the budget counters every shared engine keeps
    (tests/unit/test_shared_counters.cpp): atomic adds by several daemons, expiry, purge.
Then the real Postfix client code answers from the table directly: `postmap -q` with the
pgsql:/mysql: map files exactly as docs/store-sql.md gives them, with no relaypermit running.
TLS: sslmode=require / ssl=true work against a server with a certificate and are refused by one
without. End to end: two relaypermit daemons share each engine (grant on one, answered by the
other and by Postfix's map; revoke likewise; Postfix keeps answering with every daemon stopped;
the password is in neither logs nor command lines). Last, the server harness's kill/restart
that outage tests rely on.
"""

from __future__ import annotations

import os
import re
import shutil
import urllib.parse
from pathlib import Path

import pytest

from rp_harness import Relaypermit, make_dir, port_accepts, run, wait_until
from store_sql import MariaDbServer, PostgresServer, have_mariadb, have_postgres

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "store-sql.md"
# Characters a URL must escape and a .cf file must not choke on.
PASSWORD = "Rp:pw@1/x%y"


def _require_root():
    if os.geteuid() != 0:
        pytest.skip("needs root (starts private PostgreSQL and MariaDB servers)")


@pytest.fixture(scope="module")
def pg(workdir):
    _require_root()
    if not have_postgres():
        pytest.skip("PostgreSQL 15 is not installed: run scripts/install-deps.sh --test")
    server = PostgresServer(make_dir(workdir / "pg"), PASSWORD)
    with server:
        yield server


@pytest.fixture(scope="module")
def my(workdir):
    _require_root()
    if not have_mariadb():
        pytest.skip("MariaDB is not installed: run scripts/install-deps.sh --test")
    server = MariaDbServer(make_dir(workdir / "my"), PASSWORD)
    with server:
        yield server


def gtest(binary: Path, env: dict, pattern: str, expect_pass: bool = True) -> str:
    """Runs the unit-test binary on `pattern`; asserts every selected test ran and passed."""
    r = run([binary, f"--gtest_filter={pattern}", "--gtest_color=no"], timeout=300,
            env={**os.environ, **env})
    out = r.stdout + r.stderr
    if not expect_pass:
        assert r.returncode != 0, out
        return out
    assert r.returncode == 0, out
    assert "[  SKIPPED ]" not in out, out
    m = re.search(r"\[  PASSED  \] (\d+) test", out)
    assert m and int(m.group(1)) > 0, out
    for line in out.splitlines():
        if line.startswith("[ latency  ]"):
            print(line)
    return out


def cf_from_doc(engine: str) -> str:
    """The Postfix map file docs/store-sql.md gives for `engine` (pgsql or mysql)."""
    text = DOC.read_text()
    m = re.search(r"```\n(# /etc/postfix/relaypermit-" + engine + r"\.cf\n.*?)```", text, re.S)
    assert m, f"{DOC} has no relaypermit-{engine}.cf block"
    return m.group(1)


def postmap_q(cf: Path, engine: str, key: str) -> tuple[int, str]:
    r = run(["postmap", "-q", key, f"{engine}:{cf}"], timeout=60)
    return r.returncode, (r.stdout + r.stderr).strip()


def write_cf(path: Path, engine: str, server) -> Path:
    text = cf_from_doc(engine)
    values = {"hosts": f"inet:127.0.0.1:{server.port}", "user": "relaypermit",
              "password": server.password, "dbname": "relaypermit"}
    lines = []
    for line in text.splitlines():
        key = line.split("=", 1)[0].strip()
        if key in values:
            line = f"{key} = {values[key]}"
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    return path


# ---------------------------------------------------------------------------------------------


def test_pgsql_conformance(pg, unit_tests):
    gtest(unit_tests, {"RP_TEST_PGSQL_URL": pg.url},
          "Engines/SharedBackendConformance.*/pgsql:Engines/SqlBackend.*/pgsql:Engines/SharedCounters.*/pgsql"
          ":-*WritesPostfixFixture*")


def test_mysql_conformance(my, unit_tests):
    gtest(unit_tests, {"RP_TEST_MYSQL_URL": my.url},
          "Engines/SharedBackendConformance.*/mysql:Engines/SqlBackend.*/mysql:MysqlChangeLog.*"
          ":Engines/SharedCounters.*/mysql"
          ":-*WritesPostfixFixture*:*ChangeFdStaysReadable*:*ForgedNotifications*")  # PostgreSQL only


@pytest.mark.parametrize("engine", ["pgsql", "mysql"])
def test_postfix_queries_the_table_directly(engine, request, unit_tests, testdir):
    if shutil.which("postmap") is None:
        pytest.skip("postfix is not installed")
    server = request.getfixturevalue("pg" if engine == "pgsql" else "my")
    env = {"RP_TEST_PGSQL_URL" if engine == "pgsql" else "RP_TEST_MYSQL_URL": server.url,
           "RP_TEST_SQL_FIXTURE": "1"}
    # The backend writes: 192.0.2.7 live, 192.0.2.8 expired, 2001:db8:7:7::/64 live.
    gtest(unit_tests, env, f"Engines/SqlBackend.WritesPostfixFixture/{engine}")
    cf = write_cf(testdir / f"relaypermit-{engine}.cf", engine, server)
    # Postfix's own pgsql/mysql client code; no relaypermit is running.
    assert postmap_q(cf, engine, "192.0.2.7") == (0, "OK")
    assert postmap_q(cf, engine, "2001:db8:7:7::25") == (0, "OK")
    for absent in ("192.0.2.8", "192.0.2.9", "2001:db8:7:8::1", "mail.example.com", "192.0.2"):
        assert postmap_q(cf, engine, absent) == (1, ""), absent


def test_pgsql_tls(pg, unit_tests, testdir):
    pattern = "Engines/SharedBackendConformance.UpsertCreatesAndAnnouncesToEveryBackend/pgsql"
    out = gtest(unit_tests, {"RP_TEST_PGSQL_URL": pg.url + "?sslmode=require"}, pattern,
                expect_pass=False)
    assert "SSL" in out, out  # the plain server refuses: "server does not support SSL"
    with PostgresServer(make_dir(testdir / "pgtls"), PASSWORD, tls=True) as tls:
        gtest(unit_tests, {"RP_TEST_PGSQL_URL": tls.url + "?sslmode=require"}, pattern)
        gtest(unit_tests, {"RP_TEST_PGSQL_URL":
                           tls.url + f"?sslmode=verify-full&sslrootcert={tls.cert}"}, pattern)
        assert tls.sql("SELECT count(*) FROM pg_stat_ssl WHERE ssl") is not None


def test_mysql_tls(my, unit_tests, testdir):
    pattern = "Engines/SharedBackendConformance.UpsertCreatesAndAnnouncesToEveryBackend/mysql"
    out = gtest(unit_tests, {"RP_TEST_MYSQL_URL": my.url + "?ssl=true"}, pattern,
                expect_pass=False)
    assert "SSL" in out or "TLS" in out, out
    with MariaDbServer(make_dir(testdir / "mytls"), PASSWORD, tls=True) as tls:
        gtest(unit_tests, {"RP_TEST_MYSQL_URL": tls.url + "?ssl=true"}, pattern)
        gtest(unit_tests, {"RP_TEST_MYSQL_URL": tls.url + f"?ssl_ca={tls.cert}"}, pattern)


@pytest.mark.parametrize("engine", ["pgsql", "mysql"])
def test_two_daemons_share_the_table_and_postfix_reads_it(engine, request, rp_binary, testdir):
    """End to end: a grant on daemon A is answered by daemon B and by Postfix's own map lookup
    on the table; a revoke on B is seen by A and by Postfix. A has the password in its URL, B in
    store_password_file; neither the logs nor the command lines show it."""
    server = request.getfixturevalue("pg" if engine == "pgsql" else "my")
    pw_file = testdir / "store-password"
    pw_file.write_text(server.password + "\n")
    os.chmod(pw_file, 0o600)
    url_without_pw = server.url.replace(":" + urllib.parse.quote(server.password, safe="") + "@", "@")
    a = Relaypermit(rp_binary, testdir / "a", extra=f'store = "{server.url}"')
    b = Relaypermit(rp_binary, testdir / "b",
                    extra=f'store = "{url_without_pw}"\nstore_password_file = "{pw_file}"')
    cf = write_cf(testdir / f"relaypermit-{engine}.cf", engine, server)
    ip = "192.0.2.61"
    try:
        a.start()
        b.start()
        r = a.cli("allow", ip, "--user", "alice", "--ttl", "10m")
        assert r.returncode == 0, r.stdout + r.stderr
        b.wait_permitted(ip, timeout=5)
        assert postmap_q(cf, engine, ip) == (0, "OK")
        r = b.cli("revoke", ip)
        assert r.returncode == 0, r.stdout + r.stderr
        a.wait_not_permitted(ip, timeout=5)
        assert postmap_q(cf, engine, ip) == (1, "")
        for d in (a, b):
            with open(f"/proc/{d.proc.pid}/cmdline", "rb") as f:
                assert server.password.encode() not in f.read()
            assert server.password not in d.stderr_path.read_text()
        # relaypermit outage: with every daemon stopped, Postfix still answers from the table
        r = a.cli("allow", "192.0.2.62", "--ttl", "10m")
        assert r.returncode == 0, r.stdout + r.stderr
        wait_until(lambda: postmap_q(cf, engine, "192.0.2.62") == (0, "OK"), timeout=5,
                   what="the grant to reach the table")
        a.stop()
        b.stop()
        assert postmap_q(cf, engine, "192.0.2.62") == (0, "OK")
        assert postmap_q(cf, engine, ip) == (1, "")
    finally:
        for d in (a, b):
            d.stop()


@pytest.mark.parametrize("engine", ["pgsql", "mysql"])
def test_daemons_survive_a_killed_server(engine, request, rp_binary, testdir):
    """The database is SIGKILLed under two running daemons: a grant made meanwhile waits in A's
    outbox and reaches B and the table once the server is back on the same port."""
    server = request.getfixturevalue("pg" if engine == "pgsql" else "my")
    a = Relaypermit(rp_binary, testdir / "a", extra=f'store = "{server.url}"')
    b = Relaypermit(rp_binary, testdir / "b", extra=f'store = "{server.url}"')
    cf = write_cf(testdir / f"relaypermit-{engine}.cf", engine, server)
    try:
        a.start()
        b.start()
        r = a.cli("allow", "192.0.2.63", "--ttl", "10m")
        assert r.returncode == 0, r.stdout + r.stderr
        b.wait_permitted("192.0.2.63", timeout=5)
        server.kill()
        r = a.cli("allow", "192.0.2.64", "--ttl", "10m")
        assert r.returncode == 0, r.stdout + r.stderr
        server.start()
        b.wait_permitted("192.0.2.64", timeout=30)
        assert postmap_q(cf, engine, "192.0.2.64") == (0, "OK")
        assert a.running() and b.running()
    finally:
        for d in (a, b):
            d.stop()


@pytest.mark.parametrize("engine", ["pgsql", "mysql"])
def test_server_harness_kill_and_restart_keep_port_and_data(engine, request):
    """What outage tests rely on: kill() is abrupt, start() comes back on the same port with
    every committed row."""
    server = request.getfixturevalue("pg" if engine == "pgsql" else "my")
    port, url = server.port, server.url
    server.sql("CREATE TABLE harness_probe (v INT)")
    try:
        server.sql("INSERT INTO harness_probe VALUES (42)")
        server.kill()
        assert not server.running()
        assert not port_accepts("127.0.0.1", port)
        server.start()
        assert (server.port, server.url) == (port, url)
        assert server.sql("SELECT v FROM harness_probe") == [("42",)]
    finally:
        server.sql("DROP TABLE harness_probe")
