"""One test per migration guide (docs/migrating/*.md), following the guide as an administrator
would (issue 15, "Migration guides"):

- the old system's state is made for real, in its own format and at the guide's path: a Berkeley
  DB hash made with Berkeley DB's own db_load (pop-before-smtp), a btree dracd.db with
  dracd.allow (DRAC), a table in a private PostgreSQL and MariaDB (SQL recipe), a RELAY_CTRL_DIR
  with login mtimes (relay-ctrl), a text access file and its access.db made with Sendmail's
  makemap (SMTP-after-POP), smtp-poplock's static_allowed;
- the guide's `relaypermit.toml` block and its shell commands are taken from the markdown itself,
  so a guide that drifts from the program breaks its test. Only what a test must is changed, the
  same way for every guide: absolute paths under /etc, /var and /run move into the test's
  directory (`rooted`), the well-known ports become free ones, and `relaypermit` is a wrapper that
  adds `--config` (the guides use the default /etc/relaypermit/relaypermit.toml). The daemon gets
  its own state_dir and control_socket in front of the guide's keys, and where the test's SMTP
  clients must come from loopback, `ignore = ["127.0.0.1/32"]` (the default ignores 127.0.0.0/8);
- the MTA is real where Debian has it: the site's Postfix relays through the old hash/btree map,
  then through relaypermit after the guide's main.cf edit and `postfix reload` (pop-before-smtp,
  DRAC); Sendmail reads the old, then the exported access.db (SMTP-after-POP);
- the checks are the guide's own "Check" section where it can run here (`rpcinfo`, `nc`,
  `check --chain -- /usr/bin/env`, `makemap -u`), plus `relaypermit check`/`list`: the live
  permits survived the cut-over with the right expiry, expired entries were skipped, and the old
  clients' protocol still works where the guide keeps it (DRAC RPC through rpcbind, whoson over
  TCP and UDP, relay-ctrl's datagram, `allow --chain` in the POP chain as the user the guide
  names, the syslog FIFO through a private rsyslogd).
"""

from __future__ import annotations

import calendar
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Optional

import pytest

from conftest import _failed
from rp_harness import (DEFAULT_TIMEOUT, PolicyClient, Postfix, Relaypermit, free_port, make_dir, port_accepts,
                        reachable_binary, run, tail, unix_answers, wait_until)
from store_sql import MariaDbServer, PostgresServer, have_mariadb, have_postgres
from mta_servers import Sendmail
from test_dropins import call_drac, drac_client, rpcbind, stderr_has, udp_ask  # noqa: F401 (fixtures)
from test_fifo_journald import _start_activated as start_activated
from test_mta_real import sendmail_relays
from test_syslog_source import free_udp_port

GUIDES = Path(__file__).resolve().parents[2] / "docs" / "migrating"
# Sendmail's makemap from the private prefix of scripts/install-test-mtas.sh; `-C /dev/null`
# stands for the site's sendmail.cf, which this machine does not have.
MAKEMAP = Path(os.environ.get("RP_MAKEMAP", "/opt/relaypermit-test/sendmail/usr/libexec/sendmail/makemap"))


# ---- reading a guide ----------------------------------------------------------------------------

def guide(name: str) -> str:
    return (GUIDES / f"{name}.md").read_text()


def section(text: str, heading: str) -> str:
    """The body of `## heading` up to the next `## `."""
    m = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert m, f"the guide has no '## {heading}' section"
    return m.group(1)


def blocks(text: str, lang: Optional[str] = None) -> list[str]:
    """Fenced code blocks (indented ones inside list items too), optionally of one language."""
    found = []
    for m in re.finditer(r"^( *)```(\w*)\n(.*?)^\1```", text, re.M | re.S):
        if lang is None or m.group(2) == lang:
            indent = len(m.group(1))
            found.append("".join(line[indent:] + "\n" for line in m.group(3).splitlines()))
    return found


def inline(text: str) -> list[str]:
    """Inline code spans outside the fenced blocks, a line break inside one read as a space."""
    prose = re.sub(r"^( *)```.*?^\1```", "", text, flags=re.M | re.S)
    return [re.sub(r"\s*\n\s*", " ", s) for s in re.findall(r"`([^`]+)`", prose)]


def span(text: str, pattern: str) -> str:
    """The one inline code span that matches pattern (a regex)."""
    hits = [s for s in inline(text) if re.search(pattern, s)]
    assert len(hits) == 1, f"expected one `...` matching {pattern!r}, found {hits}"
    return hits[0]


def commands(block: str) -> list[str]:
    """The commands of a sh block: continuation lines joined, comments and blanks dropped."""
    joined = block.replace("\\\n", " ")
    return [c.strip() for c in joined.splitlines() if c.strip() and not c.strip().startswith("#")]


# ---- running a guide's steps --------------------------------------------------------------------

class Site:
    """One administrator's machine, shrunk into a test directory: `root` stands for `/`, `bin`
    holds the `relaypermit` stand-in for /usr/sbin/relaypermit."""

    def __init__(self, binary: Path, testdir: Path):
        self.binary = binary
        self.dir = testdir
        self.root = make_dir(testdir / "root")
        for skeleton in ("etc", "var/log", "run"):
            make_dir(self.root / skeleton)
        self.bin = make_dir(testdir / "bin")
        self.config = make_dir(self.root / "etc" / "relaypermit") / "relaypermit.toml"
        self.state_dir = testdir / "state"
        self.control_socket = testdir / "run" / "control.sock"
        self.wrapper = self.bin / "relaypermit"
        self.wrapper.write_text(
            "#!/bin/sh\n# the test's /usr/sbin/relaypermit: the same program with the site's config file\n"
            f"BIN={shlex.quote(str(reachable_binary(binary, testdir / 'program')))} CFG={shlex.quote(str(self.config))}\n"
            'case "$1" in\n'
            '  config) sub=$2; shift 2; exec "$BIN" config "$sub" --config "$CFG" "$@" ;;\n'
            '  "") exec "$BIN" ;;\n'
            '  *) cmd=$1; shift; exec "$BIN" "$cmd" --config "$CFG" "$@" ;;\n'
            "esac\n")
        os.chmod(self.wrapper, 0o755)
        self.ports: dict[str, str] = {}
        self.policy_port: Optional[int] = None
        self.daemon: Optional[Relaypermit] = None

    def path(self, absolute: str) -> Path:
        """Where the guide's absolute path lives on this site."""
        return self.root / absolute.lstrip("/")

    def rooted(self, text: str) -> str:
        """The guide's text with /etc, /var and /run paths moved under root, /usr/sbin/relaypermit
        replaced by the wrapper and the well-known ports by the test's."""
        text = text.replace("/usr/sbin/relaypermit", str(self.wrapper))
        text = re.sub(r"(?<![\w.\-/])/(etc|var|run)/", lambda m: f"{self.root}/{m.group(1)}/", text)
        for old, new in self.ports.items():
            text = text.replace(old, new)
        return text

    def install_config(self, toml: str, prelude: str = "") -> None:
        """Step "put the file above in /etc/relaypermit/relaypermit.toml", with the test's own
        state_dir and control socket (and prelude) in front of the guide's keys."""
        text = (f'state_dir = "{self.state_dir}"\ncontrol_socket = "{self.control_socket}"\n'
                f'log_level = "debug"\n{prelude}\n{self.rooted(toml)}')
        if not re.search(r"^\[policy\]", text, re.M):  # not the default 127.0.0.1:10031 in a test
            self.policy_port = free_port()
            text += f'\n[policy]\nlisten = ["127.0.0.1:{self.policy_port}"]\n'
        self.config.write_text(text)
        os.chmod(self.config, 0o644)

    def sh(self, command: str, env: Optional[dict] = None, user: Optional[str] = None,
           group: Optional[str] = None, stdin: str = "") -> subprocess.CompletedProcess:
        """Runs one of the guide's commands (rooted) with the wrapper first on PATH; user/group:
        as that uid and gid with no supplementary groups, the environment kept (as after
        checkpassword's or script-login's switch)."""
        full_env = {"PATH": f"{self.bin}:/usr/sbin:/usr/bin:/sbin:/bin", **(env or {})}
        ids = {} if user is None else {"user": user, "group": group or user, "extra_groups": []}
        return subprocess.run(["/bin/sh", "-c", self.rooted(command)], input=stdin, capture_output=True,
                              text=True, timeout=60, env=full_env, cwd=self.dir, **ids)

    def ok(self, command: str, **kw) -> str:
        r = self.sh(command, **kw)
        assert r.returncode == 0, f"{command!r} failed ({r.returncode}):\n{r.stdout}{r.stderr}"
        return r.stdout + r.stderr

    def start(self, policy_port: Optional[int] = None, fifo: Optional[tuple[int, str]] = None) -> Relaypermit:
        """`systemctl enable --now relaypermit`: `relaypermit run` with the installed config;
        fifo = (descriptor, name): passed as a socket unit's ListenFIFO= would pass it."""
        policy_port = policy_port or self.policy_port
        # The harness's daemon object (CLI helpers, stop); it writes a config of its own under
        # rp/, which is not used: the daemon runs with the site's file.
        d = Relaypermit(self.binary, self.dir / "rp", policy_port=policy_port)
        d.config, d.state_dir, d.control_socket = self.config, self.state_dir, self.control_socket
        d.stderr_path = self.dir / "daemon.stderr"
        self.daemon = d
        if fifo is not None:
            start_activated(d, *fifo)
        else:
            err = open(d.stderr_path, "a")
            d.proc = subprocess.Popen([str(self.binary), "run", "--config", str(self.config)],
                                      stdin=subprocess.DEVNULL, stdout=err, stderr=err)
            err.close()

        def ready():
            if d.proc.poll() is not None:
                raise RuntimeError(f"relaypermit run exited with {d.proc.returncode}:\n{tail(d.stderr_path)}")
            return port_accepts("127.0.0.1", policy_port) and unix_answers(str(self.control_socket))
        wait_until(ready, DEFAULT_TIMEOUT, what="relaypermit's control socket")
        return d


@pytest.fixture
def site(rp_binary, testdir, request):
    if os.geteuid() != 0:
        pytest.skip("the migration tests need root (uid switches, rpcbind, private servers)")
    s = Site(rp_binary, testdir)
    yield s
    if s.daemon is not None:
        try:
            s.daemon.stop()
        except Exception:  # noqa: BLE001 - teardown goes on
            pass
        if _failed(request):
            print(f"\n--- relaypermit stderr ({s.daemon.stderr_path}) ---\n{tail(s.daemon.stderr_path, 60)}")


def counts(out: str) -> dict:
    m = re.search(r"imported (\d+) .*?expired (\d+), malformed (\d+), refused by policy (\d+), skipped (\d+)", out)
    assert m, f"no counts line in: {out}"
    return dict(zip(("imported", "expired", "malformed", "refused", "skipped"), map(int, m.groups())))


def run_cutover_imports(s: Site, text: str, fmt: str, expect: dict) -> None:
    """The guide's `--dry-run` then real import commands of `fmt`, in the guide's order."""
    cmds = [c for b in blocks(section(text, "Cut-over"), "sh") for c in commands(b)
            if c.startswith(f"relaypermit import {fmt}")]
    assert [("--dry-run" in c) for c in cmds] == [True, False], cmds
    before = s.daemon.list_json()
    dry = s.ok(cmds[0])
    assert "dry run, nothing changed" in dry and counts(dry) == expect, dry
    assert s.daemon.list_json() == before, "--dry-run changed the permits"
    real = s.ok(cmds[1])
    assert counts(real) == expect, real


def listed(s: Site) -> dict[str, str]:
    """`relaypermit list` as the admin reads it: address -> the SOURCE column."""
    rows = s.ok("relaypermit list").splitlines()
    assert rows and rows[0].split()[0] == "IP" and rows[0].split()[-1] == "SOURCE", rows
    return {r.split()[0].split("/")[0]: r.split()[-1] for r in rows[1:] if r.strip()}


def grant_logged(d: Relaypermit, address: str, field: str) -> bool:
    """The daemon logged a `grant` line for address with field (`server=drac`, `source=control`),
    what journalctl would show."""
    log = d.stderr_path.read_text(errors="replace")
    return re.search(rf"grant ip={re.escape(address)}(/\d+)? user=\S* (\S+ )*{field} ", log) is not None


def expiry(permit: dict) -> float:
    return calendar.timegm(time.strptime(permit["expires"][:19], "%Y-%m-%dT%H:%M:%S"))


def guide_policy_port(s: Site, text: str) -> int:
    """The guide's MTA line names the [policy] port of its own toml: the test's port for both."""
    toml = blocks(section(text, "relaypermit.toml"), "toml")[0]
    listen = re.search(r'^listen = \["127\.0\.0\.1:(\d+)"\]', toml, re.M)
    assert listen, "no [policy] listen in the guide's toml"
    assert f"check_policy_service inet:127.0.0.1:{listen.group(1)}" in text, "MTA line and [policy] differ"
    port = free_port()
    s.ports[f"127.0.0.1:{listen.group(1)}"] = f"127.0.0.1:{port}"
    return port


def policy_action(port: int, address: str) -> str:
    with PolicyClient(f"inet:127.0.0.1:{port}") as c:
        return c.ask(address)["action"]


# ---- pop-before-smtp ----------------------------------------------------------------------------

def db_load(path: Path, kind: str, records: dict[bytes, bytes]) -> None:
    """A Berkeley DB file made by Berkeley DB's own db_load (db-util), keys and values as bytes."""
    text = "VERSION=3\nformat=bytevalue\ntype=" + kind + "\nHEADER=END\n"
    text += "".join(f" {k.hex()}\n {v.hex()}\n" for k, v in records.items()) + "DATA=END\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["db_load", str(path)], input=text, text=True, capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr


class OldPostfix(Postfix):
    """The pop-before-smtp site's Postfix: its access map line in smtpd_recipient_restrictions
    (smtpd_relay_restrictions empty, as on a site that predates it), one restriction per line."""

    def __init__(self, root: Path, map_line: str):
        super().__init__(root, "unused", root / "unused.sock")
        self.restrictions = ["permit_mynetworks,", f"{map_line},", "reject_unauth_destination"]

    def write_config(self) -> None:
        super().write_config()
        main = self.conf_dir / "main.cf"
        lines = [line for line in main.read_text().splitlines()
                 if not line.startswith(("smtpd_relay_restrictions", "smtpd_recipient_restrictions"))]
        lines += ["smtpd_relay_restrictions =", "smtpd_recipient_restrictions ="]
        lines += [f"    {r}" for r in self.restrictions]
        main.write_text("\n".join(lines) + "\n")

    def edit_and_reload(self, old: str, new_lines: list[str]) -> None:
        """Step 3 as an admin does it: the old line replaced by the guide's lines, `postfix reload`."""
        main = self.conf_dir / "main.cf"
        text = main.read_text()
        assert f"    {old}\n" in text, text
        main.write_text(text.replace(f"    {old}\n", "".join(f"{line}\n" for line in new_lines)))
        r = run(["postfix", "-c", self.conf_dir, "reload"])
        assert r.returncode == 0, r.stdout + r.stderr

    def relays(self, source: str) -> bool:
        return self.rcpt(source)[0] == 250


def test_pop_before_smtp_guide(site, dovecot):
    """docs/migrating/pop-before-smtp.md: the site's Postfix relays for the addresses in the hash
    DB (made by db_load); the DB is imported with now + ttl; after the guide's main.cf edit and
    `postfix reload` the same Postfix relays for the imported address through relaypermit and
    for a new Dovecot login read by the guide's log source, and still refuses others."""
    if shutil.which("postfix") is None or "hash" not in run(["postconf", "-m"]).stdout.split():
        pytest.skip("Postfix with hash: maps missing (scripts/install-deps.sh --test)")
    text = guide("pop-before-smtp")
    toml = blocks(section(text, "relaypermit.toml"), "toml")[0]
    cut = section(text, "Cut-over")
    # The old state: pop-before-smtp.pl's DB_File hash, keys NUL-terminated as Postfix's hash:
    # lookups try them, read by the site's Postfix through the map line the guide replaces.
    db = site.path("/etc/postfix/pop-before-smtp.db")
    db_load(db, "hash", {b"192.0.2.10\0": b"ok\0", b"127.0.0.13\0": b"ok\0", b"junk\0": b"ok\0"})
    old_line = re.search(r"#\s*(check_client_access hash:\S+),", cut).group(1)
    postfix = OldPostfix(site.dir / "postfix", site.rooted(old_line))
    postfix.start()
    try:
        pop_before_smtp_cutover(site, text, toml, cut, dovecot, postfix, old_line)
    finally:
        postfix.stop()


def pop_before_smtp_cutover(site, text, toml, cut, dovecot, postfix, old_line) -> None:
    assert postfix.relays("127.0.0.13") and not postfix.relays("127.0.0.14")
    # The mail log is the one Dovecot writes (the guide's $logfile).
    log = site.path("/var/log/mail.log")
    log.symlink_to(dovecot.log_path)
    port = guide_policy_port(site, text)
    # Test-only: loopback is the only place a test's client can come from.
    site.install_config(toml, prelude='ignore = ["127.0.0.1/32"]')
    assert re.search(r"`relaypermit config check`", section(text, "Cut-over"))
    site.ok("relaypermit config check")
    d = site.start(port)
    run_cutover_imports(site, text, "pop-before-smtp",
                        {"imported": 2, "expired": 0, "malformed": 1, "refused": 0, "skipped": 0})
    # Check: imported, source import:pop-before-smtp, `relaypermit check 192.0.2.10` permitted.
    check = span(section(text, "Check"), r"^relaypermit check ")
    assert "permitted" in site.ok(check)
    assert listed(site)["192.0.2.10"] == "import:pop-before-smtp"
    p = d.permit_for("127.0.0.13")
    assert p["source"] == "import:pop-before-smtp" and abs(expiry(p) - (time.time() + 1800)) < 60, p
    # Step 3: the guide's main.cf lines in place of the map line, postfix reload.
    step3 = [b for b in blocks(cut) if "check_policy_service" in b]
    assert len(step3) == 1, step3
    postfix.edit_and_reload(site.rooted(old_line) + ",", site.rooted(step3[0]).splitlines())
    # Logins from now on are granted from the log (the same Dovecot the old system read).
    assert dovecot.login_pop3("alice", "alice-secret", "127.0.0.12").returncode == 0
    d.wait_permitted("127.0.0.12")
    wait_until(lambda: postfix.relays("127.0.0.12"), what="Postfix to relay for the new login after reload")
    assert postfix.relays("127.0.0.13") and not postfix.relays("127.0.0.14")
    assert "check_policy_service" in run(["postconf", "-c", postfix.conf_dir, "-h", "smtpd_recipient_restrictions"]).stdout


# ---- DRAC ---------------------------------------------------------------------------------------

def test_drac_guide(site, drac_client, rpcbind):  # noqa: F811 (fixtures)
    """docs/migrating/drac.md: dracd.db (btree) imported with each expiry, the expired entry
    skipped; the guide's rpcinfo checks pass; a dracauth() call through rpcbind from a caller
    that the guide's dracd.allow lists grants; the site's Postfix, which relayed through the
    dracd map, relays through relaypermit after step 4's edit and `postfix reload`."""
    text = guide("drac")
    toml = blocks(section(text, "relaypermit.toml"), "toml")[0]
    cut = section(text, "Cut-over")
    now = int(time.time())
    db_load(site.path("/etc/mail/dracd.db"), "btree",
            {b"192.0.2.20\0": f"{now + 900}\0".encode(), b"192.0.2.21\0": f"{now - 60}\0".encode(),
             b"2001:db8::20\0": f"{now + 1200}\0".encode(), b"127.0.0.24\0": f"{now + 900}\0".encode()})
    allow = site.path("/etc/mail/dracd.allow")
    allow.write_text("# netmask netaddr: the POP/IMAP servers on this host\n255.0.0.0 127.0.0.0\n")
    # The site's Postfix reads dracd.db (an all-numerical access result is OK).
    old_line, new_line = re.search(r"Postfix: replace `(check_client_access btree:\S+)` with\s+`(check_policy_service [^`]+)`",
                                   cut).groups()
    postfix = None
    if shutil.which("postfix") and "btree" in run(["postconf", "-m"]).stdout.split():
        postfix = OldPostfix(site.dir / "postfix", site.rooted(old_line))
        postfix.start()
    try:
        drac_cutover(site, text, toml, cut, now, allow, drac_client, postfix, old_line, new_line)
    finally:
        if postfix is not None:
            postfix.stop()


def drac_cutover(site, text, toml, cut, now, allow, drac_client, postfix, old_line, new_line) -> None:  # noqa: F811
    if postfix is not None:
        assert postfix.relays("127.0.0.24") and not postfix.relays("127.0.0.25")
    port = guide_policy_port(site, text)
    # Test-only: loopback is the only place the test's SMTP client can come from.
    site.install_config(toml, prelude='ignore = ["127.0.0.1/32"]')
    site.ok("relaypermit config check")
    d = site.start(port)
    wait_until(lambda: stderr_has(d, "registered with rpcbind") or stderr_has(d, "cannot register"),
               what="rpcbind registration")
    # Step 2's check: versions 1 and 2 on udp and tcp.
    step2 = re.search(r"`(rpcinfo -p \| grep 900101)`", section(text, "Cut-over")).group(1)
    registered = {tuple(line.split()[1:3]) for line in site.ok(step2).splitlines()}
    assert registered >= {("1", "udp"), ("1", "tcp"), ("2", "udp"), ("2", "tcp")}, registered
    run_cutover_imports(site, text, "drac", {"imported": 3, "expired": 1, "malformed": 0, "refused": 0, "skipped": 0})
    p = d.permit_for("192.0.2.20")
    assert p["source"] == "import:drac" and abs(expiry(p) - (now + 900)) <= 2, p
    assert d.permit_for("2001:db8::20") is not None and d.check("192.0.2.21").returncode == 1
    # Check: rpcinfo answers; a POP server's dracauth() call grants (server drac).
    assert "ready and waiting" in site.ok(span(section(text, "Check"), r"^rpcinfo -T udp"))
    assert call_drac(drac_client, "udp", "192.0.2.22") == "0"
    assert call_drac(drac_client, "tcp", "2001:db8::22") == "0"
    d.wait_permitted("192.0.2.22")
    d.wait_permitted("2001:db8::22")
    assert grant_logged(d, "192.0.2.22", "server=drac")
    assert listed(site)["192.0.2.20"] == "import:drac"
    assert policy_action(port, "192.0.2.20") == "OK" and policy_action(port, "192.0.2.21") != "OK"
    if postfix is not None:  # step 4
        postfix.edit_and_reload(site.rooted(old_line) + ",", [f"    {site.rooted(new_line)},"])
        assert call_drac(drac_client, "udp", "127.0.0.26") == "0"
        wait_until(lambda: postfix.relays("127.0.0.26"), what="Postfix to relay for a DRAC grant after reload")
        assert postfix.relays("127.0.0.24") and not postfix.relays("127.0.0.25")
    # A caller that dracd.allow does not list is refused, as rpc.dracd refuses it.
    listed_callers = allow.read_text()
    allow.write_text("255.255.255.255 192.0.2.1\n")
    d.stop()
    d2 = site.start(port)
    wait_until(lambda: d2.stderr_path.read_text().count("registered with rpcbind") == 2,
               what="the second registration with rpcbind")
    assert call_drac(drac_client, "udp", "192.0.2.23") == "1"  # ADD_PERM
    assert d2.permit_for("192.0.2.20") is not None, "the imported permits survive a restart"
    # dracd.allow is re-read on SIGHUP (the config itself unchanged): the caller is listed again.
    allow.write_text(listed_callers)
    reloads = d2.stderr_path.read_text().count("configuration reloaded")
    d2.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: d2.stderr_path.read_text().count("configuration reloaded") > reloads,
               what="the reload after dracd.allow changed")
    wait_until(lambda: d2.stderr_path.read_text().count("registered with rpcbind") >= 3,
               what="the reopened DRAC source's registration with rpcbind")
    assert call_drac(drac_client, "udp", "192.0.2.24") == "0"  # the caller is listed again
    d2.wait_permitted("192.0.2.24")


# ---- SQL table ----------------------------------------------------------------------------------

SQL_SERVERS = {"postgresql": (PostgresServer, have_postgres), "mysql": (MariaDbServer, have_mariadb)}


@pytest.mark.parametrize("scheme", ["postgresql", "mysql"])
def test_sql_table_guide(site, workdir, scheme):
    """docs/migrating/sql-table.md: the recipe's table (address, login time) in a private
    PostgreSQL or MariaDB, imported with the guide's own query; the post-login script of step 3
    grants when run as user dovecot (control_group), as Dovecot's script-login runs it."""
    server_class, available = SQL_SERVERS[scheme]
    if not available():
        pytest.skip(f"{scheme} server missing (scripts/install-deps.sh --test)")
    text = guide("sql-table")
    toml = blocks(section(text, "relaypermit.toml"), "toml")[0]
    cut = section(text, "Cut-over")
    with server_class(make_dir(workdir / f"sql-{scheme}-{os.getpid()}"), "s3cret") as db:
        # The recipe's table, written by the old post-login script: `time` is the login in the
        # server's local time, which is not UTC here (a server in Berlin, or one hour east).
        if scheme == "postgresql":
            db.sql("ALTER DATABASE relaypermit SET timezone TO 'Europe/Berlin'")
        else:
            db.sql("SET GLOBAL time_zone = '+01:00'")
        db.sql("CREATE TABLE relay (ip varchar(46) PRIMARY KEY, time timestamp NOT NULL)")
        db.sql("INSERT INTO relay VALUES ('192.0.2.30', now() - interval '2' minute), "
               "('192.0.2.31', now() - interval '3' hour), ('2001:db8::30', now())")
        if scheme == "postgresql":  # the guide's reader only reads (MariaDB's user has the database)
            db.sql("GRANT SELECT ON relay TO relaypermit")
        port = guide_policy_port(site, text)
        site.install_config(toml)
        site.ok("relaypermit config check")
        d = site.start(port)
        guide_url = re.search(rf"--url '({scheme}://[^']+)'", cut).group(1)
        site.ports[guide_url] = db.url
        if scheme == "postgresql":
            run_cutover_imports(site, text, "sql",
                                {"imported": 2, "expired": 1, "malformed": 0, "refused": 0, "skipped": 0})
        else:  # the MySQL variant is one command in the prose: dry run, then for real
            cmd = "relaypermit import sql " + span(cut, rf"^--url '{scheme}://").replace("\n", " ")
            assert counts(site.ok(cmd + " --dry-run"))["imported"] == 2 and d.list_json() == []
            assert counts(site.ok(cmd)) == {"imported": 2, "expired": 1, "malformed": 0, "refused": 0, "skipped": 0}
        p = d.permit_for("192.0.2.30")
        assert p["source"] == "import:sql" and abs(expiry(p) - (time.time() - 120 + 1800)) < 60, p
        assert d.check("192.0.2.31").returncode == 1 and d.permit_for("2001:db8::30") is not None
    # Step 3: the post-login script as docs/dovecot-push.md shows it, run as script-login runs it.
    script_line = span(cut, r"allow --chain")
    script = site.dir / "postlogin.sh"
    script.write_text(f"#!/bin/sh\n{site.rooted(script_line)}\n")
    os.chmod(script, 0o755)
    r = site.sh(f'{script} /bin/echo session', env={"IP": "192.0.2.32", "USER": "alice"}, user="dovecot")
    assert r.returncode == 0 and r.stdout == "session\n", r.stdout + r.stderr
    p = d.permit_for("192.0.2.32")
    assert p and p["user"] == "alice" and p["source"] == "control", p
    assert grant_logged(d, "192.0.2.32", "source=control")
    assert listed(site)["192.0.2.30"] == "import:sql"
    assert policy_action(port, "192.0.2.32") == "OK"


# ---- relay-ctrl ---------------------------------------------------------------------------------

def test_relay_ctrl_guide(site):
    """docs/migrating/relay-ctrl.md: RELAY_CTRL_DIR imported (mtime + 15m, the old file
    skipped); the POP chain's `allow --chain` grants when run as the uid checkpassword switches to
    (in control_group), and not as another uid; the SMTP chain sets RELAYCLIENT exactly as the
    guide's check says; relay-ctrl-send's datagram is acknowledged and grants."""
    text = guide("relay-ctrl")
    toml = blocks(section(text, "relaypermit.toml"), "toml")[0]
    cut = section(text, "Cut-over")
    now = time.time()
    spool = make_dir(site.path("/var/spool/relay-ctrl/allow"), 0o700)
    for name, age in (("192.0.2.10", 120), ("192.0.2.41", 600), ("192.0.2.42", 1200), ("2001:db8::40", 30)):
        (spool / name).write_text("")
        os.utime(spool / name, (now - age, now - age))
    # vpopmail's group vchkpw is not on this machine: nogroup stands for it, nobody for vpopmail.
    site.ports['control_group = "vchkpw"'] = 'control_group = "nogroup"'
    udp = free_udp_port()
    site.ports["udp:127.0.0.1:811"] = f"udp:127.0.0.1:{udp}"
    site.install_config(toml)
    site.ok("relaypermit config check")
    # Step 1: the old relay-ctrl-udp receiver holds the port until it is stopped.
    assert re.search(r"relay-ctrl-udp`\), stop it now", cut)
    old_receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    old_receiver.bind(("127.0.0.1", udp))
    with pytest.raises(RuntimeError, match="811|Address already in use"):
        site.start()
    old_receiver.close()
    d = site.start()
    run_cutover_imports(site, text, "relay-ctrl", {"imported": 3, "expired": 1, "malformed": 0, "refused": 0, "skipped": 0})
    p = d.permit_for("192.0.2.41")
    assert p["source"] == "import:relay-ctrl" and abs(expiry(p) - (now - 600 + 900)) <= 2, p
    assert d.check("192.0.2.42").returncode == 1 and listed(site)["192.0.2.10"] == "import:relay-ctrl"
    # Step 3: the POP chain after checkpassword (which has switched to vpopmail:vchkpw).
    pop = re.search(r"/bin/checkpassword (/usr/sbin/relaypermit allow --chain --) qmail-pop3d", cut).group(1)
    served = site.sh(f"{pop} /bin/echo pop3d", env={"TCPREMOTEIP": "192.0.2.43", "USER": "alice"},
                     user="nobody", group="nogroup")
    assert served.returncode == 0 and served.stdout == "pop3d\n", served.stdout + served.stderr
    assert d.permit_for("192.0.2.43")["user"] == "alice"
    # A uid outside control_group cannot grant (and its login still goes on).
    other = site.sh(f"{pop} /bin/echo pop3d", env={"TCPREMOTEIP": "192.0.2.44"}, user="daemon", group="daemon")
    assert other.stdout == "pop3d\n" and "ermission denied" in other.stderr, other.stderr
    assert d.check("192.0.2.44").returncode == 1
    # Step 4 and the Check: the SMTP chain sets RELAYCLIENT= for a permitted client only.
    assert re.search(r"tcpserver \.\.\. /usr/sbin/relaypermit check --chain -- /var/qmail/bin/qmail-smtpd", cut)
    check = span(section(text, "Check"), r"^TCPREMOTEIP=")
    assert site.ok(check) == "RELAYCLIENT=\n"
    assert site.sh(check.replace("192.0.2.10", "192.0.2.42")).stdout == ""
    # relay-ctrl-send on another POP host: its datagram is acknowledged with 0x01 and grants.
    assert udp_ask(udp, b"192.0.2.45") == b"\x01"
    d.wait_permitted("192.0.2.45")
    # "Which user": control_group also opens the spool, so a login while the daemon is down is
    # granted when it starts again.
    assert d.stop() == 0
    served = site.sh(f"{pop} /bin/echo pop3d", env={"TCPREMOTEIP": "192.0.2.46"}, user="nobody", group="nogroup")
    assert served.stdout == "pop3d\n" and "spool" in served.stderr, served.stderr
    site.start().wait_permitted("192.0.2.46")


# ---- Sendmail access.db -------------------------------------------------------------------------

def makemap_dump(db: Path) -> list[str]:
    r = run([MAKEMAP, "-C", "/dev/null", "-u", "hash", db])
    assert r.returncode == 0, r.stderr
    return sorted(line.strip() for line in r.stdout.splitlines() if line.strip())


def test_sendmail_access_guide(site):
    """docs/migrating/sendmail-access.md: the old access file (admin's entries and the patch's
    RELAY lines) and its access.db made with makemap, read by a real Sendmail; split with the
    guide's grep, the RELAY lines imported after the start; the export's access.db, read by
    makemap and by the same Sendmail, has the admin's entries and one `connect:IP RELAY` per
    permit: the old client still relays, the admin's network too, others do not; a graceful stop
    leaves only the admin's entries (the guide's roll-back)."""
    if not os.access(MAKEMAP, os.X_OK):
        pytest.skip(f"{MAKEMAP} missing: run scripts/install-test-mtas.sh (or set RP_MAKEMAP)")
    text = guide("sendmail-access")
    toml = blocks(section(text, "relaypermit.toml"), "toml")[0]
    access = site.path("/etc/mail/access")
    access.parent.mkdir(parents=True)
    access.write_text("# admin's entries\nspam.example.com\tREJECT\n198.51.100\tRELAY\nConnect:127.0.1 RELAY\n"
                      "From:partner.example\tOK\n"
                      "# added by the SMTP-after-POP patch\n192.0.2.50\tRELAY\nConnect:127.0.0.51 RELAY\n"
                      "IPv6:2001:db8::50\tRELAY\n")
    # The old state as Sendmail used it: makemap hash, as the patch runs it.
    r = subprocess.run([str(MAKEMAP), "-C", "/dev/null", "hash", str(access)], input=access.read_text(), text=True,
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r.stderr
    old = makemap_dump(site.path("/etc/mail/access.db"))
    assert any(line.startswith("192.0.2.50") for line in old), old
    sendmail = None
    if Sendmail.skip_reason() is None and shutil.which("m4"):
        sendmail = Sendmail(site.dir / "sendmail", free_port(), f"hash -T<TMPF> -o {access}")
        sendmail.start()
    try:
        sendmail_cutover(site, text, toml, sendmail)
    finally:
        if sendmail is not None:
            sendmail.stop()


def sendmail_cutover(site: Site, text: str, toml: str, sendmail: Optional[Sendmail]) -> None:
    relays = sendmail_relays(sendmail) if sendmail is not None else None
    if relays:
        assert relays("127.0.0.51") and relays("127.0.1.5") and not relays("127.0.0.52")
    cut = section(text, "Cut-over")
    site.path("/var/log/mail.log").write_text("")
    # Step 1: split off the admin's part with the guide's own grep.
    site.ok(span(cut, r"^grep -v "))
    static = site.path("/etc/mail/access.static").read_text()
    assert "spam.example.com" in static and "198.51.100\tRELAY" in static and "Connect:127.0.1 " in static, static
    assert "192.0.2.5" not in static and "127.0.0.51" not in static and "2001:db8" not in static, static
    # Steps 2 and 4 (3, the patch's hook, does not exist here): config, start.
    site.install_config(toml, prelude='ignore = ["127.0.0.1/32"]')  # test-only: clients are on loopback
    site.ok("relaypermit config check")
    d = site.start()
    run_cutover_imports(site, text, "sendmail-access",
                        {"imported": 3, "expired": 0, "malformed": 0, "refused": 0, "skipped": 4})
    assert listed(site)["127.0.0.51"] == "import:sendmail-access"
    # Check: makemap -u lists the admin's entries and one connect:IP RELAY per permit.
    check = span(section(text, "Check"), r"^makemap -u hash")
    want = {"connect:192.0.2.50", "connect:127.0.0.51"}
    dump = wait_until(lambda: (lambda out: out if want <= {line.split()[0] for line in out} else None)(
        makemap_dump(Path(site.rooted(check.split()[-1])))), what="the imported permits in access.db")
    keys = {line.split()[0].lower(): line.split()[-1] for line in dump}
    assert keys["spam.example.com"] == "REJECT" and keys["198.51.100"] == "RELAY" and keys["connect:127.0.1"] == "RELAY"
    assert keys["from:partner.example"] == "OK" and keys["connect:192.0.2.50"] == "RELAY"
    assert any(k.startswith("connect:ipv6:2001:db8:") or k.startswith("connect:2001:db8:") for k in keys), keys
    if relays:  # the same Sendmail, unchanged, reads relaypermit's access.db
        assert relays("127.0.0.51") and relays("127.0.1.5") and not relays("127.0.0.52")
    # Roll back: a graceful stop rewrites access.db with the admin's entries only.
    assert d.stop() == 0
    after = {line.split()[0].lower() for line in makemap_dump(site.path("/etc/mail/access.db"))}
    assert after == {"spam.example.com", "198.51.100", "connect:127.0.1", "from:partner.example"}, after
    if relays:
        assert relays("127.0.1.5") and not relays("127.0.0.51")


# ---- smtp-poplock -------------------------------------------------------------------------------

def test_smtp_poplock_guide(site):
    """docs/migrating/smtp-poplock.md: static_allowed converted before anything runs; the guide's
    toml reads the converted allow_file and opens the FIFO; a private rsyslogd with the guide's
    `mail.* |FIFO` line carries a Dovecot login into it; relaylock's replacement sets RELAYCLIENT
    for a static network."""
    if shutil.which("rsyslogd") is None:
        pytest.skip("rsyslogd missing: run scripts/install-test-servers.sh")
    text = guide("smtp-poplock")
    toml = blocks(section(text, "relaypermit.toml"), "toml")[0]
    cut = section(text, "Cut-over")
    old = site.path("/etc/smtp-poplock/static_allowed")
    old.parent.mkdir(parents=True)
    old.write_text("# smtp-poplock static_allowed\n192.0.2.60\n198.51.100.\n203.0.113.0/24\n")
    # Step 1, before the config file is in place and before the daemon runs.
    assert not site.config.exists()
    convert = commands(blocks(cut, "sh")[0])
    assert len(convert) == 1 and convert[0].startswith("relaypermit import static"), convert
    site.ok(convert[0])
    converted = site.path("/etc/relaypermit/static_allowed").read_text()
    assert "198.51.100.0/24" in converted and "192.0.2.60" in converted, converted
    # Step 2: config, the FIFO socket unit (packaging/relaypermit-fifo.socket: its ListenFIFO= and
    # FileDescriptorName= are the guide's path and name; this test holds the pipe as systemd
    # would and passes it at start), then the service.
    unit = (Path(__file__).resolve().parents[2] / "packaging" / "relaypermit-fifo.socket").read_text()
    unit_keys = dict(re.findall(r"^(ListenFIFO|FileDescriptorName|SocketMode)=(\S+)$", unit, re.M))
    assert f'name = "{unit_keys["FileDescriptorName"]}"' in toml and f'path = "{unit_keys["ListenFIFO"]}"' in toml
    fifo = site.path(unit_keys["ListenFIFO"])
    os.mkfifo(fifo, int(unit_keys["SocketMode"], 8))
    held = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)
    site.install_config(toml)
    site.ok("relaypermit config check")
    try:
        d = site.start(fifo=(held, unit_keys["FileDescriptorName"]))
    finally:
        os.close(held)
    assert stderr_has(d, "from the descriptor the service manager passed"), tail(d.stderr_path)
    listed = site.ok(span(section(text, "Check"), r"^relaypermit list --static$"))
    assert "198.51.100.0/24" in listed and "203.0.113.0/24" in listed, listed
    # Step 3: syslog writes into the FIFO (a private rsyslogd with the guide's line).
    line = re.search(r"rsyslog: `(mail\.\* \|\S+)`", cut).group(1)
    rs_dir = make_dir(site.dir / "rsyslog")
    sock = rs_dir / "log.sock"
    conf = rs_dir / "rsyslog.conf"
    conf.write_text(f'global(workDirectory="{rs_dir}")\nmodule(load="imuxsock" SysSock.Use="off")\n'
                    f'input(type="imuxsock" Socket="{sock}" CreatePath="on" RateLimit.Interval="0")\n'
                    f"{site.rooted(line)}\n")
    rs = subprocess.Popen(["rsyslogd", "-n", "-f", str(conf), "-i", str(rs_dir / "pid")],
                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(sock.is_socket, what="rsyslogd's socket")
        login = ("pop3-login: Login: user=<alice>, method=PLAIN, rip=192.0.2.61, lip=127.0.0.1, "
                 "mpid=4242, session=<abcdEFGH>")
        subprocess.run(["logger", "-u", str(sock), "-p", "mail.info", "-t", "dovecot", login], check=True, timeout=10)
        d.wait_permitted("192.0.2.61")
    finally:
        rs.terminate()
        rs.wait(10)
    # Step 4 and the Check: relaylock's replacement.
    smtp = span(cut, r"/usr/sbin/relaypermit check --chain --$")
    r = site.sh(f"{smtp} /usr/bin/env", env={"TCPREMOTEIP": "198.51.100.7"})
    assert "RELAYCLIENT=\n" in r.stdout, r.stdout + r.stderr
    r = site.sh(f"{smtp} /usr/bin/env", env={"TCPREMOTEIP": "192.0.2.99"})
    assert "RELAYCLIENT" not in r.stdout, r.stdout


# ---- whoson -------------------------------------------------------------------------------------

def test_whoson_guide(site):
    """docs/migrating/whoson.md: nothing to import; the POP side's LOGIN (UDP) grants, the MTA's
    QUERY with the guide's own nc command (TCP) answers +user, LOGOUT revokes; a permit from
    another source is answered too."""
    if shutil.which("nc") is None:
        pytest.skip("nc missing: run scripts/install-test-servers.sh (netcat-openbsd)")
    text = guide("whoson")
    toml = blocks(section(text, "relaypermit.toml"), "toml")[0]
    tcp, udp = free_port(), free_udp_port()
    site.ports["tcp:127.0.0.1:9876"] = f"tcp:127.0.0.1:{tcp}"
    site.ports["udp:127.0.0.1:9876"] = f"udp:127.0.0.1:{udp}"
    site.ports["127.0.0.1 9876"] = f"127.0.0.1 {tcp}"
    site.install_config(toml)
    site.ok("relaypermit config check")
    d = site.start()
    query = span(section(text, "Check"), r"^printf 'QUERY")

    def ask(command: str) -> list[str]:  # the replies, each "line CRLF CRLF"; nc ends at QUIT's close
        out = site.sh(command)
        assert out.returncode == 0, out.stderr
        return out.stdout.split("\n\n")[:-1]
    assert ask(query)[0].startswith("-") and ask(query)[1].startswith("+")
    assert udp_ask(udp, b"LOGIN 192.0.2.10 alice\r\n\r\n").startswith(b"+")
    d.wait_permitted("192.0.2.10")
    assert ask(query)[0] == "+alice"
    assert listed(site)["192.0.2.10"] == f"whoson:tcp:127.0.0.1:{tcp}"
    assert grant_logged(d, "192.0.2.10", "server=whoson")
    assert udp_ask(udp, b"LOGOUT 192.0.2.10\r\n\r\n").startswith(b"+")
    assert ask(query)[0].startswith("-") and d.check("192.0.2.10").returncode == 1
    # QUERY is answered from every source's permits.
    assert d.cli("allow", "192.0.2.71").returncode == 0
    assert ask(query.replace("192.0.2.10", "192.0.2.71"))[0] == "+"
