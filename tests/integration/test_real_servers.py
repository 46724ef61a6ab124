"""Golden corpora written by REAL servers (issue 3, "Proof").

Each test starts one real POP3/IMAP server from Debian 12 privately on free loopback ports, with
its syslog going to a private rsyslogd that writes three framings (RSYSLOG_TraditionalFileFormat,
Debian's default RSYSLOG_FileFormat, RSYSLOG_SyslogProtocol23Format), logs in with curl from
distinct 127.0.0.x sources with right and wrong passwords, waits for the server's lines, and
asserts that `relaypermit scan` prints EXACTLY one `IP<TAB>USER<TAB>SERVER` line per successful
login in each framing, and none for failures (GNU Mailutils: none at all, it never logs the client
address with the login).

Needs root, `scripts/install-deps.sh --test` (Dovecot) and `scripts/install-test-servers.sh`
(the others, unpacked under /opt/relaypermit-test). A server that does not run from Debian's
build is skipped with the reason. docs/servers-testing.md explains how each one is run.
RELAYPERMIT_SAVE_CORPUS=DIR copies the captured logs to DIR/<server>.<framing>.log.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import sys
import tempfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "servers"))
import realsrv  # noqa: E402
from realsrv import (FRAMINGS, PREFIX, PrivateSyslog, Procs, SystemUsers,  # noqa: E402
                     curl_login, free_port, in_private_ns, make_dir, port_accepts, run, scan,
                     tail, wait_until)

PASSWORDS = {"rptestuser": "Rp-test-pw-1", "rptestuser2": "Rp-test-pw-2"}
U1, U2 = "rptestuser", "rptestuser2"


# ---------------------------------------------------------------------------------------------
# fixtures


def _root_is_a_mount_point():
    """False in a chroot whose root is a plain directory: `unshare -m --propagation private`
    must make "/" private and fails there (EINVAL), and without it the private /dev/log mounts
    would propagate to the host."""
    try:
        with open("/proc/self/mountinfo") as f:
            return any(line.split()[4] == "/" for line in f)
    except OSError:
        return False


def _need_root_and(*programs):
    if os.geteuid() != 0:
        pytest.skip("needs root (private mount namespaces, system test users, servers)")
    if not _root_is_a_mount_point():
        pytest.skip("/ is not a mount point (a chroot): private mount namespaces cannot be made "
                    "private here, so the servers' /dev/log cannot be redirected safely")
    missing = [p for p in programs if shutil.which(p) is None]
    if missing:
        pytest.skip(f"missing {', '.join(missing)}: run scripts/install-test-servers.sh")


@pytest.fixture(scope="module")
def rootdir():
    """World-traversable (the servers' unprivileged processes must reach their files)."""
    d = Path(tempfile.mkdtemp(prefix="rprs-"))
    os.chmod(d, 0o755)
    yield d
    if os.environ.get("RP_IT_KEEP"):
        os.write(2, f"\nreal-servers work directory kept: {d}\n".encode())
    else:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def users(rootdir):
    _need_root_and("useradd", "chpasswd", "userdel")
    su = SystemUsers(rootdir / "home", PASSWORDS)
    try:
        su.setup()
    except RuntimeError as e:
        su.teardown()
        pytest.skip(str(e))
    yield su
    su.teardown()


_counter = iter(range(1, 1000))


class Ctx:
    """One test's world: its directory, processes and private syslog."""

    def __init__(self, root: Path, tmp_path: Path, rp_binary: Path, request):
        self.dir = make_dir(root / f"s{next(_counter):02d}")
        self.tmp_path = tmp_path
        self.rp = rp_binary
        self.request = request
        self.procs = Procs()
        self.syslog = PrivateSyslog(self.dir / "syslog", self.procs)
        self.rp_config = self.dir / "relaypermit.toml"
        self.rp_config.write_text("# empty: built-in patterns only\n")

    def ns(self, argv, binds=(), netns=False, name="ns"):
        return in_private_ns(self.syslog, self.dir / f"{name}-scratch", argv, binds, netns)


@pytest.fixture
def ctx(rootdir, tmp_path, rp_binary, request):
    _need_root_and("rsyslogd", "unshare", "curl")
    c = Ctx(rootdir, tmp_path, rp_binary, request)
    c.syslog.start()
    yield c
    c.procs.stop_all()
    realsrv.kill_user_processes(PASSWORDS)
    for f in FRAMINGS:  # the corpus, also when the test failed
        if c.syslog.files[f].exists():
            shutil.copy(c.syslog.files[f], tmp_path / c.syslog.files[f].name)


# ---------------------------------------------------------------------------------------------
# the check every server goes through


def exercise(ctx: Ctx, server: str, logins, markers: dict[str, int], expected_server: str | None,
             netns_pid=None, corpus_name=None, sequential_first: int = 0, login_options=None):
    """logins: (proto, port, user, password, source, should_succeed). markers: substring ->
    how many lines must contain it in every framing before scanning. expected_server: the
    SERVER column for successes, or None when the server's lines must grant nothing."""
    # Concurrently (after the first sequential_first ones): servers delay their answer to a
    # failed login by seconds (PAM, Courier).
    def login(lg):
        return curl_login(lg[0], lg[2], lg[3], lg[1], lg[4], netns_pid=netns_pid,
                          login_options=(login_options or {}).get(lg[0]))
    results = [login(lg) for lg in logins[:sequential_first]]
    with ThreadPoolExecutor(max_workers=len(logins)) as pool:
        results += list(pool.map(login, logins[sequential_first:]))
    for (proto, port, user, password, source, ok), r in zip(logins, results):
        if ok:
            assert r.returncode == 0, (f"{server}: {proto} login {user} from {source} failed "
                                       f"(curl {r.returncode}): {r.stderr}")
        else:
            assert r.returncode != 0, f"{server}: {proto} login {user} with a wrong password worked"
    ctx.syslog.wait_counts(markers)

    expected = Counter()
    if expected_server is not None:
        expected = Counter(f"{src}\t{user}\t{expected_server}"
                           for _, _, user, _, src, ok in logins if ok)
    name = corpus_name or server
    save = os.environ.get("RELAYPERMIT_SAVE_CORPUS")
    problems = []
    for framing in FRAMINGS:
        path = ctx.syslog.files[framing]
        got, explain = scan(ctx.rp, ctx.rp_config, path)
        corpus = ctx.tmp_path / f"{name}.{framing}.log"
        shutil.copy(path, corpus)
        if save:
            make_dir(Path(save))
            shutil.copy(path, Path(save) / f"{name}.{framing}.log")
        if got != expected:
            problems.append(f"[{framing}] expected {sorted(expected.elements())}\n"
                            f"  got {sorted(got.elements())}\n  --explain:\n{explain}"
                            f"  corpus ({path}):\n{path.read_text(errors='replace')}")
    assert not problems, f"{server}: scan disagrees with the logins\n" + "\n".join(problems)


# ---------------------------------------------------------------------------------------------
# Dovecot 2.3 (package from scripts/install-deps.sh --test)


def _start_dovecot(ctx, d: Path, passdb_lines: list[str], instance_name: str | None = None):
    """A private Dovecot 2.3 logging through syslog (/dev/log): passdb_lines are its
    passwd-file's lines (the userdb holds every PASSWORDS user, homes owned by nobody).
    instance_name is also its syslog tag ("dovecot" without one). Returns (pop3, imap) ports."""
    _need_root_and("dovecot", "doveadm")
    make_dir(d)
    base = make_dir(d / "run")
    make_dir(d / "state")
    nobody = pwd.getpwnam("nobody")
    homes = make_dir(d / "home", owner="nobody")
    users, passdb = d / "users", d / "passdb"
    with users.open("w") as f:
        for user, password in PASSWORDS.items():
            home = make_dir(homes / user, 0o700, owner="nobody")
            f.write(f"{user}:{{PLAIN}}{password}:{nobody.pw_uid}:{nobody.pw_gid}::{home}\n")
    passdb.write_text("".join(ln + "\n" for ln in passdb_lines))
    os.chmod(users, 0o644)
    os.chmod(passdb, 0o644)
    pop3, imap = free_port(), free_port()
    conf = d / "dovecot.conf"
    conf.write_text(f"""\
# private instance of tests/integration/test_real_servers.py: logs through syslog (/dev/log).
base_dir = {base}
state_dir = {d / "state"}
{f"instance_name = {instance_name}" if instance_name else "# no instance_name: the syslog tag is dovecot"}
log_path = syslog
syslog_facility = mail
protocols = pop3 imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
first_valid_uid = 1
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passdb}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {users}
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {imap}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {pop3}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0600
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
""")
    out = d / "dovecot.out"
    p = ctx.procs.popen(ctx.ns(["dovecot", "-c", conf], name=d.name), out)
    assert p.wait(30) == 0, f"dovecot -c {conf}: {tail(out)}"

    def stop():
        pid = realsrv.read_pid(base / "master.pid")
        if pid:
            os.kill(pid, signal.SIGTERM)
            wait_until(lambda: not realsrv.alive(pid), 10, "dovecot to stop")
    ctx.procs.stoppers.append(stop)
    wait_until(lambda: port_accepts("127.0.0.1", pop3) and port_accepts("127.0.0.1", imap), 15,
               "dovecot's listeners")
    return pop3, imap


def test_dovecot(ctx):
    pop3, imap = _start_dovecot(ctx, ctx.dir / "dovecot",
                                [f"{u}:{{PLAIN}}{pw}" for u, pw in PASSWORDS.items()])
    logins = [
        ("pop3", pop3, U1, PASSWORDS[U1], "127.0.0.11", True),
        ("imap", imap, U2, PASSWORDS[U2], "127.0.0.12", True),
        ("imap", imap, U1, PASSWORDS[U1], "127.0.0.13", True),
        ("pop3", pop3, U1, PASSWORDS[U1], "127.0.0.11", True),  # a second login, same address
        ("pop3", pop3, U1, "wrong", "127.0.0.21", False),
        ("imap", imap, U2, "wrong", "127.0.0.22", False),
    ]
    exercise(ctx, "dovecot", logins,
             {"-login: Login: user=<": 4, "auth failed": 2}, "dovecot")


def test_dovecot_proxy(ctx):
    """A Dovecot proxy (tag dovecot) in front of a backend Dovecot (instance_name rpbackend, so
    its tag is not Dovecot's and its own Login lines, with the proxy's address, grant nothing).
    The proxy's 2.3.19 line is "proxy(u,H:P): Started proxying to <H> (N secs): user=<u>, ...,
    rip=CLIENT"; a login the proxy accepts and the backend refuses ("proxy dest auth failed")
    must not grant."""
    bpop3, bimap = _start_dovecot(ctx, ctx.dir / "backend",
                                  [f"{u}:{{PLAIN}}{pw}" for u, pw in PASSWORDS.items()],
                                  instance_name="rpbackend")
    # U1 is proxied to the backend's IMAP, U2 to its POP3 (one port per user: the passdb
    # cannot tell the protocol apart); "rpbounce" passes the proxy and fails at the backend.
    pop3, imap = _start_dovecot(ctx, ctx.dir / "proxy", [
        f"{U1}:{{PLAIN}}{PASSWORDS[U1]}::::::proxy=y host=127.0.0.1 port={bimap} pass={PASSWORDS[U1]}",
        f"{U2}:{{PLAIN}}{PASSWORDS[U2]}::::::proxy=y host=127.0.0.1 port={bpop3} pass={PASSWORDS[U2]}",
        f"rpbounce:{{PLAIN}}Rp-bounce::::::proxy=y host=127.0.0.1 port={bimap} pass=not-the-password",
    ])
    logins = [
        ("imap", imap, U1, PASSWORDS[U1], "127.0.0.14", True),
        ("pop3", pop3, U2, PASSWORDS[U2], "127.0.0.15", True),
        ("imap", imap, U1, "wrong", "127.0.0.24", False),
        ("imap", imap, "rpbounce", "Rp-bounce", "127.0.0.25", False),
    ]
    exercise(ctx, "dovecot-proxy", logins,
             {"Started proxying to": 2, "auth failed": 2, "imap-login: Login: user=<": 1,
              "pop3-login: Login: user=<": 1},
             "dovecot")


# ---------------------------------------------------------------------------------------------
# Courier pop3d/imapd (unpacked courier-base/-pop/-imap; courier-authlib + authdaemond packages)


def _prefix(server: str, *files: str) -> Path:
    root = PREFIX / server
    for f in files:
        if not (root / f.lstrip("/")).exists():
            pytest.skip(f"{server}: {root / f.lstrip('/')} missing: run scripts/install-test-servers.sh")
    return root


def test_courier(ctx, users):
    _need_root_and("courierlogger", "tcpserver")
    cp = _prefix("courier", "usr/sbin/couriertcpd", "usr/lib/courier/courier/courierpop3login",
                 "usr/lib/courier/courier/imaplogin", "usr/bin/imapd")
    authdaemond = Path("/usr/lib/courier/courier-authlib/authdaemond")
    if not authdaemond.exists() or not Path("/etc/courier/authdaemonrc").exists():
        pytest.skip("courier: courier-authdaemon not installed: run scripts/install-test-servers.sh")
    d = make_dir(ctx.dir / "courier")
    # Private authdaemond: its config and socket directory are bind-mounted over the compiled-in
    # paths inside the namespace. authpam: the test users are system users.
    rc = d / "authdaemonrc"
    rc.write_text('authmodulelist="authpam"\ndaemons=2\nauthdaemonvar=/run/courier/authdaemon\n'
                  'DEBUG_LOGIN=0\nDEFAULTOPTIONS=""\nLOGGEROPTS=""\n')
    var = make_dir(d / "authdaemon", 0o750)
    pop3, imap = free_port(), free_port()
    script = d / "start.sh"
    script.write_text(f"""\
#!/bin/sh
# courier pop3d + imapd as /usr/lib/courier/{{pop3d,imapd}} start them, on private ports
set -e
courierlogger -name=authdaemond {authdaemond} &
env -i /bin/sh -c 'set -a; prefix=/usr; exec_prefix=/usr; sbindir=/usr/sbin; bindir=/usr/bin
  . {cp}/etc/courier/pop3d; . {cp}/etc/courier/pop3d-ssl; POP3_STARTTLS=NO
  exec courierlogger -name=pop3d {cp}/usr/sbin/couriertcpd -address=127.0.0.1 -maxprocs=40 \\
    -maxperip=40 -nodnslookup -noidentlookup {pop3} \\
    {cp}/usr/lib/courier/courier/courierpop3login {cp}/usr/lib/courier/courier/courierpop3d Maildir' &
env -i /bin/sh -c 'set -a; prefix=/usr; exec_prefix=/usr; sbindir=/usr/sbin; bindir=/usr/bin
  . {cp}/etc/courier/imapd; . {cp}/etc/courier/imapd-ssl; IMAP_STARTTLS=NO
  IMAP_SHAREDINDEXFILE={d}/shared-index
  exec courierlogger -name=imapd {cp}/usr/sbin/couriertcpd -address=127.0.0.1 -maxprocs=40 \\
    -maxperip=40 -nodnslookup -noidentlookup {imap} \\
    {cp}/usr/lib/courier/courier/imaplogin {cp}/usr/bin/imapd Maildir' &
wait
""")
    os.chmod(script, 0o755)
    ctx.procs.popen(ctx.ns([script], binds=[(rc, "/etc/courier/authdaemonrc"),
                                            (var, "/run/courier/authdaemon")]), d / "out")
    wait_until(lambda: port_accepts("127.0.0.1", pop3) and port_accepts("127.0.0.1", imap)
               and (var / "socket").exists(), 15, f"courier listeners: {tail(d / 'out')}")
    logins = [
        ("pop3", pop3, U1, PASSWORDS[U1], "127.0.0.11", True),
        ("imap", imap, U2, PASSWORDS[U2], "127.0.0.12", True),
        ("imap", imap, U1, PASSWORDS[U1], "127.0.0.13", True),
        ("pop3", pop3, U2, PASSWORDS[U2], "127.0.0.11", True),
        ("pop3", pop3, U1, "wrong", "127.0.0.21", False),
        ("imap", imap, U2, "wrong", "127.0.0.22", False),
    ]
    exercise(ctx, "courier", logins, {"LOGIN, user=": 4, "LOGIN FAILED, user=": 2}, "courier")


# ---------------------------------------------------------------------------------------------
# Cyrus imapd/pop3d 3.6 (unpacked cyrus-common/-imapd/-pop3d; saslauthd from sasl2-bin)


def test_cyrus(ctx, users):
    _need_root_and("saslauthd")
    cy = _prefix("cyrus", "usr/lib/cyrus/bin/master", "usr/lib/cyrus/bin/imapd",
                 "usr/lib/cyrus/bin/pop3d")
    try:
        pwd.getpwnam("cyrus")
    except KeyError:
        pytest.skip("cyrus: no system user cyrus (Cyrus drops privileges to it): run "
                    "scripts/install-test-servers.sh")
    d = make_dir(ctx.dir / "cyrus")
    lib = make_dir(d / "lib", 0o750, "cyrus", "mail")
    spool = make_dir(d / "spool", 0o750, "cyrus", "mail")
    for sub in ("db", "socket", "proc", "log", "msg", "user", "quota", "sieve"):
        make_dir(lib / sub, 0o750, "cyrus", "mail")
    mux = make_dir(d / "saslauthd", 0o755)
    bin_ = cy / "usr/lib/cyrus/bin"
    pop3, imap = free_port(), free_port()
    conf = d / "imapd.conf"
    conf.write_text(f"""\
configdirectory: {lib}
partition-default: {spool}
sievedir: {lib}/sieve
allowplaintext: yes
sasl_mech_list: PLAIN LOGIN
sasl_pwcheck_method: saslauthd
sasl_saslauthd_path: {mux}/mux
autocreate_quota: 0
autocreate_inbox_folders: Sent
unixhierarchysep: yes
popminpoll: 0
""")
    master_conf = d / "cyrus.conf"
    master_conf.write_text(f"""\
START {{
  recover cmd="{bin_}/ctl_cyrusdb -C {conf} -r"
}}
SERVICES {{
  imap cmd="{bin_}/imapd -C {conf} -U 30" listen="127.0.0.1:{imap}" prefork=0 maxchild=20
  pop3 cmd="{bin_}/pop3d -C {conf} -U 30" listen="127.0.0.1:{pop3}" prefork=0 maxchild=20
}}
EVENTS {{
}}
""")
    os.chmod(conf, 0o644)
    os.chmod(master_conf, 0o644)
    script = d / "start.sh"
    script.write_text(f"""\
#!/bin/sh
set -e
export LD_LIBRARY_PATH={cy}/usr/lib/x86_64-linux-gnu
saslauthd -d -a pam -n 2 -m {mux} > {d}/saslauthd.out 2>&1 &
exec {bin_}/master -C {conf} -M {master_conf} -p {d}/master.pid
""")
    os.chmod(script, 0o755)
    ctx.procs.popen(ctx.ns([script]), d / "out")
    wait_until(lambda: port_accepts("127.0.0.1", pop3) and port_accepts("127.0.0.1", imap)
               and (mux / "mux").exists(), 20, f"cyrus listeners: {tail(d / 'out')}")
    logins = [
        ("imap", imap, U1, PASSWORDS[U1], "127.0.0.11", True),
        ("imap", imap, U2, PASSWORDS[U2], "127.0.0.12", True),
        ("pop3", pop3, U1, PASSWORDS[U1], "127.0.0.13", True),
        ("pop3", pop3, U2, PASSWORDS[U2], "127.0.0.14", True),
        ("pop3", pop3, U1, "wrong", "127.0.0.21", False),
        ("imap", imap, U2, "wrong", "127.0.0.22", False),
    ]
    # The IMAP logins first, one by one: they create the INBOXes that POP3 logins need.
    exercise(ctx, "cyrus", logins, {"User logged in": 4, "badlogin:": 2}, "cyrus",
             sequential_first=2)


# ---------------------------------------------------------------------------------------------
# popa3d 1.0.3: standalone (-D) it logs "Session from IP" then, from the same pid,
# "Authentication passed for USER"; inetd mode would log no address at all. -D binds the
# compiled-in 0.0.0.0:110, so it runs in a private network namespace too (only its own lo).


def test_popa3d(ctx, users):
    _need_root_and("nsenter", "ip")
    pp = _prefix("popa3d", "usr/sbin/popa3d")
    try:
        pwd.getpwnam("popa3d")
    except KeyError:
        pytest.skip("popa3d: no system user popa3d: run scripts/install-test-servers.sh")
    if not Path("/var/lib/popa3d").is_dir():
        pytest.skip("popa3d: no /var/lib/popa3d (its chroot): run scripts/install-test-servers.sh")
    d = make_dir(ctx.dir / "popa3d")
    # popa3d -D detaches; the script then holds the namespace (for nsenter) until the end.
    script = d / "start.sh"
    script.write_text(f"#!/bin/sh\nset -e\n{pp}/usr/sbin/popa3d -D\nexec sleep 2147483647\n")
    os.chmod(script, 0o755)
    p = ctx.procs.popen(ctx.ns([script], netns=True), d / "out")
    ctx.procs.stoppers.append(lambda: realsrv.kill_pids(realsrv.pids_in_netns_of(p.pid)))

    def listening():
        if p.poll() is not None:
            raise RuntimeError(f"popa3d exited {p.returncode}: {tail(d / 'out')}")
        r = run(["nsenter", f"--net=/proc/{p.pid}/ns/net", "ss", "-Hltn", "sport = :110"])
        return ":110" in r.stdout
    wait_until(listening, 15, "popa3d on port 110 in its namespace")
    logins = [
        ("pop3", 110, U1, PASSWORDS[U1], "127.0.0.11", True),
        ("pop3", 110, U2, PASSWORDS[U2], "127.0.0.12", True),
        ("pop3", 110, U1, PASSWORDS[U1], "127.0.0.13", True),
        ("pop3", 110, U1, "wrong", "127.0.0.21", False),
        ("pop3", 110, U2, "wrong", "127.0.0.22", False),
    ]
    exercise(ctx, "popa3d", logins,
             {"Authentication passed for": 3, "Authentication failed for": 2}, "popa3d",
             netns_pid=p.pid)


# ---------------------------------------------------------------------------------------------
# solid-pop3d 0.15 (Debian builds it with the extended log: "user X authenticated - IP"),
# inetd-style under tcpserver. Its greeting carries an APOP timestamp, and Debian 12's curl
# (7.88) then always logs in with APOP (no way to force USER/PASS before curl 8.2), so each
# user gets an APOP secret (= its password) with solid-pop3d's pop_auth; the success line then
# reads "user X authenticated through APOP - IP".


def test_solid_pop3d(ctx, users):
    _need_root_and("tcpserver", "setpriv")
    sp = _prefix("solid-pop3d", "usr/sbin/solid-pop3d", "usr/bin/pop_auth")
    d = make_dir(ctx.dir / "solid-pop3d")
    for user, password in PASSWORDS.items():
        pw = pwd.getpwnam(user)
        r = realsrv.subprocess.run(
            ["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}", "--clear-groups",
             str(sp / "usr/bin/pop_auth")], input=f"{password}\n{password}\n", text=True,
            capture_output=True, timeout=10)
        assert r.returncode == 0 and (Path(pw.pw_dir) / ".spop3d").exists(), r
    port = free_port()
    ctx.procs.popen(ctx.ns(["tcpserver", "-R", "-H", "-l", "0", "127.0.0.1", port,
                            sp / "usr/sbin/solid-pop3d"]), d / "out")
    wait_until(lambda: port_accepts("127.0.0.1", port), 15, "tcpserver for solid-pop3d")
    logins = [
        ("pop3", port, U1, PASSWORDS[U1], "127.0.0.11", True),
        ("pop3", port, U2, PASSWORDS[U2], "127.0.0.12", True),
        ("pop3", port, U1, PASSWORDS[U1], "127.0.0.13", True),
        ("pop3", port, U1, "wrong", "127.0.0.21", False),
        ("pop3", port, U2, "wrong", "127.0.0.22", False),
    ]
    # Successes one by one: two concurrent sessions of one user contend for the maildrop lock.
    exercise(ctx, "solid-pop3d", logins, {" authenticated": 3, "APOP authentication failed": 2},
             "solid-pop3d", sequential_first=3)


# ---------------------------------------------------------------------------------------------
# GNU Mailutils 3.15 pop3d/imap4d: NEGATIVE. The login line carries no client address (the
# daemon's parent logs a bare address under another pid), so no line may grant.


def test_gnu_mailutils_grants_nothing(ctx, users):
    mu = _prefix("mailutils", "usr/sbin/imap4d")
    d = make_dir(ctx.dir / "mailutils")
    imap = free_port()
    # imap4d only: pop3d's greeting offers APOP, Debian 12's curl (7.88) then always uses APOP,
    # and pop3d kept reading /etc/apop.db whatever apop-database-file said (daemon and inetd
    # mode), so no POP3 login could succeed without writing to the host's /etc.
    iconf = d / "imap4d.conf"
    iconf.write_text(f"""\
logging {{ syslog yes; facility mail; }};
server 127.0.0.1:{imap} {{ }};
mailbox {{ mailbox-pattern "/var/mail/${{user}}"; }};
""")
    ctx.procs.popen(ctx.ns([mu / "usr/sbin/imap4d", f"--config-file={iconf}", "--daemon",
                            "--foreground"]), d / "out")
    wait_until(lambda: port_accepts("127.0.0.1", imap), 15,
               f"mailutils imap4d listener (see {d / 'out'})")
    logins = [
        ("imap", imap, U1, PASSWORDS[U1], "127.0.0.11", True),
        ("imap", imap, U2, PASSWORDS[U2], "127.0.0.12", True),
        ("imap", imap, U1, "wrong", "127.0.0.21", False),
        ("imap", imap, U2, "wrong", "127.0.0.22", False),
    ]
    # curl would pick CRAM-MD5, for which these users have no secret: SASL PLAIN, checked by
    # Mailutils against PAM.
    exercise(ctx, "mailutils", logins, {"logged in (source:": 2, "GSASL error": 2}, None,
             login_options={"imap": "AUTH=PLAIN"})
