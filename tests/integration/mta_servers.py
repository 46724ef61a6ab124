"""Private instances of the real MTAs of Debian 12 for tests/integration/test_mta_real.py.

Sendmail 8.17, Exim 4.96 and OpenSMTPD 6.8 conflict with the system Postfix, so
scripts/install-test-mtas.sh unpacks them (apt-get download + dpkg -x) under
/opt/relaypermit-test/<mta> ($RP_TEST_MTA_PREFIX overrides); each runs here with its own config,
spool and loopback port, and never delivers anything: the tests stop at RCPT, every route out is
an unreachable loopback port, and no DNS is asked.

 - Sendmail: sendmail.cf built with m4 from sendmail-cf's macros, `sendmail -bD` (foreground
   daemon) in its own UTS and mount namespace (unshare): its hostname is a qualified name and
   /etc/hosts, /etc/nsswitch.conf and /etc/resolv.conf are private files there, because at start
   Sendmail resolves its own name and sleeps a minute per retry while that name is unqualified
   (containers are often called `vm` or similar).
 - Exim: `exim4 -C CONF -bh IP` (host-checking mode: one SMTP session on stdin/stdout from IP,
   the real ACLs including ${readsocket}, nothing delivered).
 - OpenSMTPD: `smtpd -d` in its own mount namespace, with a private spool bind-mounted over the
   compiled-in /var/spool/smtpd and a private directory over /run (the control socket
   /run/smtpd.sock is compiled in too); `smtpctl` reaches it through
   `nsenter --mount=/proc/PID/ns/mnt`.

Security: everything runs as root (as the packages' daemons start), listens on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import shutil
import signal
import smtplib
import subprocess
from pathlib import Path
from typing import Optional

from rp_harness import Postfix, make_dir, port_accepts, run, tail, wait_until

PREFIX = Path(os.environ.get("RP_TEST_MTA_PREFIX", "/opt/relaypermit-test"))
HOSTNAME = "mx.relaypermit-test.invalid"
RCPT = "user@example.net"  # never a local domain of any instance: RCPT decides relaying


def smtp_rcpt(port: int, source: str, rcpt: str = RCPT, host: str = "127.0.0.1") -> tuple[int, str]:
    """One SMTP session from local address `source` up to RCPT TO; returns RCPT's reply. RSET
    and QUIT follow: nothing is ever queued."""
    with smtplib.SMTP(host, port, source_address=(source, 0), timeout=20) as s:
        code, _ = s.ehlo("client.relaypermit-test.invalid")
        assert code == 250, f"EHLO from {source}: {code}"
        code, msg = s.mail("sender@example.org")
        assert code == 250, f"MAIL FROM from {source}: {code} {msg!r}"
        code, msg = s.rcpt(rcpt)
        try:
            s.rset()
        except smtplib.SMTPException:
            pass
        return code, msg.decode(errors="replace")


def namespaces_unavailable(*flags: str) -> Optional[str]:
    """A skip reason when `unshare FLAGS` cannot create the namespaces here (no CAP_SYS_ADMIN,
    seccomp), or None."""
    if shutil.which("unshare") is None:
        return "unshare missing (util-linux)"
    r = run(["unshare", *flags, "--propagation", "private", "true"], timeout=20)
    if r.returncode != 0:
        return f"cannot create {' '.join(flags)} namespaces here: {r.stderr.strip()}"
    return None


def missing_programs(*paths: Path) -> Optional[str]:
    """A skip reason naming the first missing program, or None."""
    for p in paths:
        if not os.access(p, os.X_OK):
            return f"{p} missing: run scripts/install-test-mtas.sh"
    return None


class _Namespaced:
    """A foreground daemon started through unshare(1) in private namespaces; a small shell
    prologue sets them up, then execs the daemon (so the Popen's pid is the daemon's)."""

    def __init__(self, root: Path):
        self.root = make_dir(root)
        self.out_path = self.root / "daemon.out"
        self.proc: Optional[subprocess.Popen] = None

    def _spawn(self, unshare_flags: list[str], prologue: str, argv: list[str]) -> None:
        script = self.root / "ns-start.sh"
        script.write_text("#!/bin/sh\nset -e\n" + prologue + 'exec "$@"\n')
        script.chmod(0o755)
        out = open(self.out_path, "ab")
        self.proc = subprocess.Popen(["unshare", *unshare_flags, "--propagation", "private", str(script), *argv],
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        out.close()

    def _wait_port(self, port: int, what: str) -> None:
        def up():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{what} exited with {self.proc.returncode}:\n{tail(self.out_path)}")
            return port_accepts("127.0.0.1", port)
        wait_until(up, 20, what=f"{what} on 127.0.0.1:{port}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        except ProcessLookupError:
            pass


# ---------------------------------------------------------------------------------------------
# Sendmail


class Sendmail(_Namespaced):
    """A private Sendmail 8.17 daemon on 127.0.0.1:port whose access map is `access_spec`
    (the second argument of FEATURE(`access_db'), e.g. `socket -T<TMPF> -d5 inet:PORT@127.0.0.1`
    or `hash -T<TMPF> -o /path/access`). Relay only through the access map: no relay domains,
    no probed interfaces; the smart host is an unreachable loopback port."""

    base = PREFIX / "sendmail"
    binary = base / "usr/libexec/sendmail/sendmail"
    makemap = base / "usr/libexec/sendmail/makemap"
    cf_m4 = base / "usr/share/sendmail/cf/m4/cf.m4"

    def __init__(self, root: Path, port: int, access_spec: str):
        super().__init__(root)
        self.port = port
        self.access_spec = access_spec

    @classmethod
    def skip_reason(cls) -> Optional[str]:
        reason = missing_programs(cls.binary, cls.makemap)
        if reason:
            return reason
        if not cls.cf_m4.exists():
            return f"{cls.cf_m4} missing (sendmail-cf): run scripts/install-test-mtas.sh"
        if shutil.which("m4") is None:
            return "m4 missing: run scripts/install-test-mtas.sh"
        return namespaces_unavailable("--uts", "--mount")

    def _prologue(self) -> str:
        r = self.root
        return (f"hostname {HOSTNAME}\n"
                f"mount --bind {r}/hosts /etc/hosts\n"
                f"mount --bind {r}/nsswitch.conf /etc/nsswitch.conf\n"
                f"mount --bind {r}/resolv.conf /etc/resolv.conf\n")

    def compiled_with(self) -> str:
        """`sendmail -d0.1 -bt` (the "Compiled with:" list), run in the private namespaces."""
        self.write_config()
        script = self.root / "ns-check.sh"
        script.write_text("#!/bin/sh\nset -e\n" + self._prologue() + 'exec "$@"\n')
        script.chmod(0o755)
        r = run(["unshare", "--uts", "--mount", "--propagation", "private", script, self.binary, "-d0.1", "-bt",
                 "-C", self.root / "sendmail.cf"], timeout=20)
        return r.stdout

    def write_config(self) -> None:
        q = make_dir(self.root / "mqueue", 0o700)
        (self.root / "aliases").write_text("")
        (self.root / "hosts").write_text(f"127.0.0.1 {HOSTNAME} localhost\n")
        (self.root / "nsswitch.conf").write_text("passwd: files\ngroup: files\nshadow: files\nhosts: files\n")
        (self.root / "resolv.conf").write_text("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")
        (self.root / "service.switch").write_text("hosts files\naliases files\n")
        r = self.root
        mc = f"""divert(-1)
# private test instance written by tests/integration/mta_servers.py
divert(0)dnl
include(`{self.cf_m4}')dnl
VERSIONID(`relaypermit test')dnl
OSTYPE(`linux')dnl
define(`confDOMAIN_NAME', `{HOSTNAME}')dnl
define(`confDONT_PROBE_INTERFACES', `True')dnl
define(`confSERVICE_SWITCH_FILE', `{r}/service.switch')dnl
define(`confHOSTS_FILE', `{r}/hosts')dnl
define(`QUEUE_DIR', `{q}')dnl
define(`confPID_FILE', `{r}/sendmail.pid')dnl
define(`STATUS_FILE', `{r}/statistics')dnl
define(`ALIAS_FILE', `{r}/aliases')dnl
define(`confHELP_FILE', `/dev/null')dnl
define(`confLOG_LEVEL', `9')dnl
define(`SMART_HOST', `[127.0.0.1]:9')dnl
dnl the test's files live under /tmp (world-writable): Sendmail would refuse the maps there
define(`confDONT_BLAME_SENDMAIL', `MapInUnsafeDirPath')dnl
FEATURE(`nocanonify')dnl
FEATURE(`no_default_msa')dnl
FEATURE(`accept_unresolvable_domains')dnl
FEATURE(`access_db', `{self.access_spec}')dnl
DAEMON_OPTIONS(`Family=inet, Addr=127.0.0.1, Port={self.port}, Name=MTA')dnl
MAILER(`local')dnl
MAILER(`smtp')dnl
"""
        (self.root / "sendmail.mc").write_text(mc)
        m4 = run(["m4", self.root / "sendmail.mc"], timeout=30)
        if m4.returncode != 0:
            raise RuntimeError(f"m4 sendmail.mc failed: {m4.stderr}")
        (self.root / "sendmail.cf").write_text(m4.stdout)

    def start(self) -> None:
        self.write_config()
        r = self.root
        self._spawn(["--uts", "--mount"], self._prologue(),
                    [str(self.binary), "-C", str(r / "sendmail.cf"), "-bD", "-L", "sm-relaypermit-test"])
        self._wait_port(self.port, "sendmail -bD")


# ---------------------------------------------------------------------------------------------
# Exim


class Exim:
    """Exim 4.96 in host-checking mode with a private config whose RCPT ACL is the one of
    docs/mta-exim.md: accept when ${readsocket} on 127.0.0.1:readsocket_port says `yes`, else
    require a local domain."""

    binary = PREFIX / "exim/usr/sbin/exim4"

    def __init__(self, root: Path, readsocket_port: int):
        self.root = make_dir(root)
        self.conf = self.root / "exim.conf"
        self.readsocket_port = readsocket_port
        spool = make_dir(self.root / "spool")
        logs = make_dir(self.root / "log")
        self.conf.write_text(f"""# private test instance written by tests/integration/mta_servers.py
exim_user = root
exim_group = root
never_users =
spool_directory = {spool}
log_file_path = {logs}/%slog
primary_hostname = {HOSTNAME}
domainlist local_domains = localhost
acl_smtp_rcpt = acl_check_rcpt
host_lookup =
rfc1413_hosts =

begin acl

acl_check_rcpt:
  accept  condition = ${{if eq{{${{readsocket{{inet:127.0.0.1:{readsocket_port}}}{{$sender_host_address\\n}}{{2s}}{{}}{{no}}}}}}{{yes}}}}
          control   = submission
  require message   = relay not permitted
          domains   = +local_domains
  accept
""")

    @classmethod
    def skip_reason(cls) -> Optional[str]:
        return missing_programs(cls.binary)

    def rcpt(self, source: str, rcpt: str = RCPT) -> tuple[int, str]:
        """`exim4 -bh source`: the SMTP dialogue as from `source`; returns RCPT's reply."""
        dialogue = ("EHLO client.relaypermit-test.invalid\r\nMAIL FROM:<sender@example.org>\r\n"
                    f"RCPT TO:<{rcpt}>\r\nRSET\r\nQUIT\r\n")
        r = subprocess.run([str(self.binary), "-C", str(self.conf), "-bh", source], input=dialogue,
                           capture_output=True, text=True, timeout=30)
        replies = [ln for ln in r.stdout.splitlines() if ln[:3].isdigit() and ln[3:4] == " "]
        # greeting, EHLO (last line), MAIL, RCPT, RSET, QUIT
        assert len(replies) >= 4, f"exim -bh {source}: {r.returncode}\n{r.stdout}\n{r.stderr}"
        code, text = replies[3][:3], replies[3][4:]
        return int(code), text


# ---------------------------------------------------------------------------------------------
# OpenSMTPD


class Opensmtpd(_Namespaced):
    """A private OpenSMTPD 6.8 on 127.0.0.1:port with
    `table relaypermit file:TABLE` and `match from src <relaypermit> for any action "relay"`
    (relay to an unreachable loopback port). Other clients match no rule: 550."""

    base = PREFIX / "opensmtpd"
    smtpd = base / "usr/sbin/smtpd"
    smtpctl = base / "usr/sbin/smtpctl"

    def __init__(self, root: Path, port: int, table: Path, ipv6: bool = False):
        super().__init__(root)
        self.port = port
        self.table = table
        self.ipv6 = ipv6  # also listen on [::1]:port
        self.conf = self.root / "smtpd.conf"

    @classmethod
    def skip_reason(cls) -> Optional[str]:
        reason = missing_programs(cls.smtpd, cls.smtpctl)
        if reason:
            return reason
        for prog in ("unshare", "nsenter"):
            if shutil.which(prog) is None:
                return f"{prog} missing (util-linux)"
        for d in ("/var/spool/smtpd", "/var/lib/opensmtpd/empty"):
            if not os.path.isdir(d):
                return f"{d} missing: run scripts/install-test-mtas.sh"
        st = os.stat(cls.smtpctl)
        if not st.st_mode & 0o2000:
            return f"{cls.smtpctl} is not setgid opensmtpq: run scripts/install-test-mtas.sh"
        return namespaces_unavailable("--mount")

    def start(self) -> None:
        spool = make_dir(self.root / "spool", 0o711)
        run_dir = make_dir(self.root / "run")
        if not self.table.exists():
            # smtpd refuses an empty list table for `from src` at start (what the export writes).
            self.table.write_text("0.0.0.0\n")
        self.conf.write_text(f"""# private test instance written by tests/integration/mta_servers.py
table relaypermit file:{self.table}
listen on 127.0.0.1 port {self.port}
{f"listen on ::1 port {self.port}" if self.ipv6 else ""}
action "relay" relay host smtp://127.0.0.1:9
match from src <relaypermit> for any action "relay"
""")
        check = run([self.smtpd, "-n", "-f", self.conf], timeout=20)
        if check.returncode != 0:
            raise RuntimeError(f"smtpd -n: {check.stdout}{check.stderr}")
        prologue = (f"mount --bind {run_dir} /run\n"
                    f"mount --bind {spool} /var/spool/smtpd\n")
        self._spawn(["--mount"], prologue, [str(self.smtpd), "-d", "-f", str(self.conf)])
        self._wait_port(self.port, "smtpd -d")

    def update_table_argv(self) -> list[str]:
        """`smtpctl update table relaypermit`, run inside smtpd's mount namespace (where
        /run/smtpd.sock is)."""
        return ["nsenter", f"--mount=/proc/{self.proc.pid}/ns/mnt", "--", str(self.smtpctl), "update", "table",
                "relaypermit"]


# ---------------------------------------------------------------------------------------------
# Postfix with a cdb access map


class CdbPostfix(Postfix):
    """rp_harness.Postfix (private instance, mynetworks = 127.0.0.1/32, discard transport) whose
    relay decision is `check_client_access cdb:MAP, reject_unauth_destination`; MAP is the
    postfix-cdb export's path without `.cdb`."""

    def __init__(self, root: Path, cdb_path: Path):
        super().__init__(root, policy="inet:127.0.0.1:1", policy_socket=root / "unused-policy.sock")
        self.cdb_path = cdb_path

    def write_config(self) -> None:
        super().write_config()
        name = str(self.cdb_path)[:-len(".cdb")]
        if not self.cdb_path.exists():  # smtpd needs the map to exist (the daemon replaces it)
            self.cdb_path.parent.mkdir(parents=True, exist_ok=True)
            Path(name).write_text("")  # postmap's source text: no entries
            r = run(["postmap", f"cdb:{name}"], timeout=30)
            if r.returncode != 0:
                raise RuntimeError(f"postmap cdb:{name}: {r.stderr}")
        main_cf = self.conf_dir / "main.cf"
        lines = []
        for line in main_cf.read_text().splitlines():
            if line.startswith("smtpd_relay_restrictions ="):
                line = f"smtpd_relay_restrictions = check_client_access cdb:{name}, reject_unauth_destination"
            lines.append(line)
        main_cf.write_text("\n".join(lines) + "\n")
