"""`relaypermit import FORMAT PATH` against a running daemon, with each older system's artifact
made for real (issue 15, "Imports of live state"):

- pop-before-smtp and DRAC databases written by Perl's DB_File (Berkeley DB hash and btree, as
  pop-before-smtp.pl and rpc.dracd wrote them),
- a relay-ctrl directory with files whose mtimes are the login times (and a symlink planted in it),
- a sendmail access file as the SMTP-after-POP patch writes it (with the admin's own entries),
- a PostgreSQL table of addresses and login times (the Dovecot wiki's SQL recipe),
- smtp-poplock's static_allowed file turned into an allow_file, re-read on SIGHUP,
and the postfix-lmdb / postfix-hash exports read by Postfix's own `postmap -q`.
Every import is checked with `relaypermit check` / `list`; --dry-run must change nothing and
malformed entries must be counted, never stop the import.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from conftest import _require_programs
from rp_harness import make_dir, run, toml_str, wait_until
from store_sql import DB_USER, PostgresServer, have_postgres
from test_reload import reload_and_wait

FUTURE = int(time.time()) + 3600


def perl_db(path: Path, kind: str, records: dict) -> None:
    """Writes `records` (str -> str; "\\0" allowed) with DB_File as $DB_HASH or $DB_BTREE."""
    script = ('use DB_File; use Fcntl; my %h; '
              f'tie %h, "DB_File", $ARGV[0], O_CREAT|O_RDWR, 0644, $DB_{kind.upper()} or die "tie: $!"; '
              'while (my $l = <STDIN>) { chomp $l; my ($k, $v) = split /\\t/, $l, 2; '
              '$k =~ s/\\\\0/\\0/g; $v =~ s/\\\\0/\\0/g; $h{$k} = $v; } untie %h;')
    lines = "".join(f"{k.replace(chr(0), chr(92) + '0')}\t{v.replace(chr(0), chr(92) + '0')}\n"
                    for k, v in records.items())
    r = subprocess.run(["perl", "-e", script, str(path)], input=lines, text=True, capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr


def counts(out: str) -> dict:
    """The summary line's numbers: imported, expired, malformed, refused, skipped."""
    found = {}
    for name, key in (("imported", r"imported (\d+)"), ("expired", r"expired (\d+)"),
                      ("malformed", r"malformed (\d+)"), ("refused", r"refused by policy (\d+)"),
                      ("skipped", r"skipped (\d+)")):
        m = re.search(key, out)
        assert m, f"no '{name}' count in: {out}"
        found[name] = int(m.group(1))
    return found


@pytest.fixture
def rp(make_daemon):
    d = make_daemon(ttl="30m", ignore=["127.0.0.0/8", "192.0.2.250/32"], extra='max_ttl = "2h"')
    d.start()
    return d


def permitted(d, ip: str) -> bool:
    r = d.check(ip)
    assert r.returncode in (0, 1), r.stdout + r.stderr
    return r.returncode == 0


@pytest.mark.parametrize("kind", ["hash", "btree"])
def test_pop_before_smtp_db(rp, testdir, kind):
    db = testdir / f"pop-before-smtp-{kind}.db"
    perl_db(db, kind, {"192.0.2.1": "ok", "192.0.2.2\0": "ok", "not-an-address": "ok", "192.0.2.250": "ok"})
    dry = rp.cli("import", "pop-before-smtp", db, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "dry run, nothing changed" in dry.stdout and "192.0.2.1 " in dry.stdout
    assert counts(dry.stdout) == {"imported": 2, "expired": 0, "malformed": 1, "refused": 1, "skipped": 0}
    assert not permitted(rp, "192.0.2.1") and rp.list_json() == []

    r = rp.cli("import", "pop-before-smtp", db)
    assert r.returncode == 0, r.stdout + r.stderr
    assert counts(r.stdout) == {"imported": 2, "expired": 0, "malformed": 1, "refused": 1, "skipped": 0}
    assert "not-an-address" in r.stderr
    p = rp.permit_for("192.0.2.2")
    assert p and p["source"] == "import:pop-before-smtp"
    assert permitted(rp, "192.0.2.1") and not permitted(rp, "192.0.2.250")


@pytest.mark.parametrize("kind", ["btree", "hash"])
def test_drac_db_keeps_each_expiry(rp, testdir, kind):
    db = testdir / f"dracd-{kind}.db"
    now = int(time.time())
    perl_db(db, kind, {"192.0.2.11/32\0": f"{now + 600}\0", "192.0.2.12": str(now - 5),
                       "2001:db8::11/128": str(now + 900), "192.0.2.13": str(now + 86400 * 7),
                       "192.0.2.14": "garbage", "bad-key": str(now + 60)})
    r = rp.cli("import", "drac", db)
    assert r.returncode == 0, r.stdout + r.stderr
    assert counts(r.stdout) == {"imported": 3, "expired": 1, "malformed": 2, "refused": 0, "skipped": 0}
    assert permitted(rp, "192.0.2.11") and permitted(rp, "2001:db8::11")
    assert not permitted(rp, "192.0.2.12")
    p = rp.permit_for("192.0.2.11")
    expires = time.mktime(time.strptime(p["expires"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert abs(expires - (now + 600)) <= 2, p
    # A week ahead is cut to max_ttl (2h), never beyond.
    far = rp.permit_for("192.0.2.13")
    far_exp = time.mktime(time.strptime(far["expires"][:19], "%Y-%m-%dT%H:%M:%S")) - time.timezone
    assert far_exp <= time.time() + 2 * 3600 + 5


def test_relay_ctrl_dir_uses_mtimes_and_ignores_symlinks(rp, testdir):
    d = make_dir(testdir / "relay-ctrl", 0o700)
    now = time.time()
    for name, age in (("192.0.2.21", 60), ("192.0.2.22", 3600), ("2001:db8::21", 10)):
        (d / name).write_text("")
        os.utime(d / name, (now - age, now - age))
    (d / "README").write_text("not an address")
    secret = testdir / "elsewhere"
    secret.write_text("")
    os.symlink(secret, d / "192.0.2.23")
    dry = rp.cli("import", "relay-ctrl", d, "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert counts(dry.stdout)["imported"] == 2 and rp.list_json() == []
    r = rp.cli("import", "relay-ctrl", d)
    assert r.returncode == 0, r.stdout + r.stderr
    assert counts(r.stdout) == {"imported": 2, "expired": 1, "malformed": 2, "refused": 0, "skipped": 0}
    assert permitted(rp, "192.0.2.21") and permitted(rp, "2001:db8::21")
    assert not permitted(rp, "192.0.2.22") and not permitted(rp, "192.0.2.23")
    granted = rp.permit_for("192.0.2.21")["granted"]
    assert granted.startswith(time.strftime("%Y-%m-%dT%H:%M", time.gmtime(now - 60))[:15]), granted


def test_sendmail_access_file_relay_entries(rp, testdir):
    access = testdir / "access"
    access.write_text("# SMTP-after-POP\n192.0.2.31\tRELAY\nconnect:192.0.2.32 RELAY\n"
                      "IPv6:2001:db8::31 RELAY\nspam.example REJECT\n192.0.2.33 OK\njunkline\n")
    r = rp.cli("import", "sendmail-access", access, "--ttl", "10m")
    assert r.returncode == 0, r.stdout + r.stderr
    assert counts(r.stdout) == {"imported": 3, "expired": 0, "malformed": 1, "refused": 0, "skipped": 2}
    assert permitted(rp, "192.0.2.32") and permitted(rp, "2001:db8::31") and not permitted(rp, "192.0.2.33")


def test_import_needs_the_daemon_and_a_known_format(make_daemon, testdir):
    d = make_daemon(name="stopped")
    access = testdir / "access2"
    access.write_text("192.0.2.41 RELAY\n")
    r = d.cli("import", "sendmail-access", access)
    assert r.returncode == 2 and "running daemon" in r.stderr
    r = d.cli("import", "nonesuch", access)
    assert r.returncode == 2 and "unknown format" in r.stderr
    r = d.cli("import", "drac", testdir / "missing.db")
    assert r.returncode == 2


def test_sql_table_through_the_store_client(rp, workdir, testdir):
    if os.geteuid() != 0 or not have_postgres():
        pytest.skip("needs root and PostgreSQL 15 (scripts/install-deps.sh --test)")
    with PostgresServer(make_dir(workdir / "pg-import"), "imp0rt") as pg:
        pg.sql("CREATE TABLE pop_before_smtp (ip varchar(40) PRIMARY KEY, login timestamp NOT NULL, "
               "username varchar(64))")
        pg.sql("INSERT INTO pop_before_smtp VALUES "
               "('192.0.2.51', (now() AT TIME ZONE 'utc') - interval '1 minute', 'alice'), "
               "('192.0.2.52', (now() AT TIME ZONE 'utc') - interval '2 hours', 'bob'), "
               "('not-an-ip', now() AT TIME ZONE 'utc', 'eve')")
        pg.sql(f"GRANT SELECT ON pop_before_smtp TO {DB_USER}")  # the recipe's reader, not its owner
        query = "SELECT ip, login, username FROM pop_before_smtp"
        dry = rp.cli("import", "sql", "--url", pg.url, "--query", query, "--dry-run")
        assert dry.returncode == 0, dry.stdout + dry.stderr
        assert rp.list_json() == []
        r = rp.cli("import", "sql", "--url", pg.url, "--query", query)
        assert r.returncode == 0, r.stdout + r.stderr
        assert counts(r.stdout) == {"imported": 1, "expired": 1, "malformed": 1, "refused": 0, "skipped": 0}
        p = rp.permit_for("192.0.2.51")
        assert p and p["user"] == "alice" and p["source"] == "import:sql"
        bad = rp.cli("import", "sql", "--url", pg.url, "--query", "SELECT nonsense FROM nowhere")
        assert bad.returncode == 2 and "nowhere" in bad.stderr


def test_static_allowed_into_allow_file_reloaded_all_or_nothing(make_daemon, testdir):
    poplock = testdir / "static_allowed"
    poplock.write_text("# smtp-poplock\n192.0.2.61\n198.51.100.0/24\n203.0.113.\nnonsense\n")
    allow_file = testdir / "static.allow"
    allow_file.write_text("")
    d = make_daemon(name="static", allow=["192.0.2.60"], extra=f"allow_file = [{toml_str(allow_file)}]")
    d.start()
    r = d.cli("import", "static", poplock)
    assert r.returncode == 0, r.stderr
    assert "1 malformed" in r.stderr and "nonsense" in r.stderr
    allow_file.write_text(r.stdout)
    assert not permitted(d, "198.51.100.7")
    reload_and_wait(d, "configuration reloaded")
    assert permitted(d, "198.51.100.7") and permitted(d, "203.0.113.9") and permitted(d, "192.0.2.61")
    assert "static allow 198.51.100.0/24" in d.check("198.51.100.7").stdout
    listed = json.loads(d.cli("list", "--static", "--json").stdout)
    assert {"network": "192.0.2.60", "from": f"{d.config}: allow"} in listed
    assert {"network": "198.51.100.0/24", "from": f"{allow_file}:3"} in listed
    table = d.cli("list", "--static").stdout
    assert "203.0.113.0/24" in table and f"{allow_file}:4" in table
    # A bad line: the reload fails and the running list stays as it was.
    allow_file.write_text(r.stdout + "192.0.2.0/33\n")
    reload_and_wait(d, "reload failed")
    assert permitted(d, "198.51.100.7")
    d.stop()
    offline = d.cli("list", "--static")
    assert offline.returncode == 2 and "allow_file" in offline.stderr


def postmap_q(key: str, table: str):
    r = run(["postmap", "-q", key, table])
    return r.stdout.strip() if r.returncode == 0 else None


@pytest.mark.parametrize("kind,suffix", [("lmdb", ".lmdb"), ("hash", ".db")])
def test_postfix_db_exports_read_by_postmap(make_daemon, testdir, kind, suffix):
    _require_programs("postmap", "postconf")
    if kind not in run(["postconf", "-m"]).stdout.split():
        pytest.skip(f"Postfix has no {kind}: map (install postfix-{kind})")
    path = testdir / f"relay-{kind}{suffix}"
    d = make_daemon(name=f"export-{kind}",
                    extra=f'\n[[export]]\ntype = "postfix-{kind}"\npath = {toml_str(path)}\n')
    d.start()
    table = f"{kind}:{str(path)[:-len(suffix)]}"
    assert d.cli("allow", "192.0.2.71").returncode == 0
    assert d.cli("allow", "2001:db8::71").returncode == 0
    wait_until(lambda: postmap_q("192.0.2.71", table) == "OK", what="postmap -q 192.0.2.71")
    assert postmap_q("2001:db8::71", table) == "OK"
    assert postmap_q("192.0.2.72", table) is None
    listing = run(["postmap", "-s", table]).stdout
    assert "192.0.2.71\tOK" in listing
    assert d.cli("revoke", "192.0.2.71").returncode == 0
    wait_until(lambda: postmap_q("192.0.2.71", table) is None, what="192.0.2.71 gone from the map")
    assert postmap_q("2001:db8::71", table) == "OK"
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".") and "tmp" in p.name]
