"""Black-box test harness: private Dovecot 2.3, Postfix 3.7 and relaypermit instances on loopback.

Each instance lives in its own directory with its own config, runtime, state and log files and
listens on free 127.0.0.1 ports, so it never touches the system's services or their ports.
Waiting is always for a condition with a deadline (wait_until), never a fixed sleep.

Directories that the servers' unprivileged processes (dovenull, dovecot, postfix, nobody) must
traverse are created 0755 under a world-traversable work directory (pytest's tmp_path is 0700).
Mail processes of the Dovecot instance run as `nobody`; nothing is created in the system's
user database.

Security: the processes started here run as root (Dovecot and Postfix drop privileges
themselves); all traffic stays on 127.0.0.0/8.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import smtplib
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, Iterable, Optional

DEFAULT_TIMEOUT = 15.0


# ---------------------------------------------------------------------------------------------
# Generic helpers


def wait_until(predicate: Callable[[], object], timeout: float = DEFAULT_TIMEOUT,
               what: str = "condition", interval: float = 0.02):
    """Polls predicate until it returns a true value (returned) or timeout seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


def ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def free_port(host: str = "127.0.0.1", also_v6: bool = False) -> int:
    """A TCP port that was free a moment ago (the kernel picks it; small race accepted);
    also_v6: free on ::1 as well."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        if not also_v6:
            return port
        try:
            with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s6:
                s6.bind(("::1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no port free on both 127.0.0.1 and ::1")


def port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def unix_accepts(path: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            s.connect(path)
            return True
    except OSError:
        return False


def unix_answers(path: str) -> bool:
    """True once the daemon's loop answers on its control socket: every step of the start,
    sources included, is done by then (a bound socket alone only means the first steps ran)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            s.connect(path)
            s.sendall(b'{"cmd":"status"}\n')
            return len(s.recv(1)) == 1
    except OSError:
        return False


def make_dir(path: Path, mode: int = 0o755, owner: Optional[str] = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)
    if owner is not None:
        pw = pwd.getpwnam(owner)
        os.chown(path, pw.pw_uid, pw.pw_gid)
    return path


def reachable_binary(binary: Path, directory: Path) -> Path:
    """`binary` if any user may execute it (every directory above it searchable by others), else
    a copy in `directory` (0755), for the unprivileged users the tests run it as (dovecot,
    nobody): a build tree in root's 0700 home is out of their reach."""
    binary = binary.resolve()
    if all(os.stat(d).st_mode & 0o001 for d in binary.parents) and os.stat(binary).st_mode & 0o001:
        return binary
    dst = make_dir(directory) / binary.name
    shutil.copy2(binary, dst)
    os.chmod(dst, 0o755)
    return dst


def mapped_libraries(pid: int) -> set[str]:
    """The file names of the shared libraries process `pid` has mapped (from /proc/PID/maps)."""
    with open(f"/proc/{pid}/maps") as f:
        return {os.path.basename(line.split()[5]) for line in f if len(line.split()) >= 6 and ".so" in line}


# Libraries that relaypermit opens only when a feature needs them (src/util/dynlib.hpp).
ON_DEMAND_LIBRARIES = ("libgnutls", "libsystemd", "libpq", "libmariadb")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def read_pidfile(path: Path) -> Optional[int]:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as e:
        return f"<{path}: {e}>"


def run(argv: list, timeout: float = 60, check: bool = False, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout, check=check, **kw)


def run_daemonizing(argv: list, output: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    """Runs a command that leaves a daemon behind. Its output goes to a file, not a pipe: the
    daemon inherits the descriptors, and a pipe would never reach end-of-file."""
    with open(output, "a+") as out:
        start = out.tell()
        r = subprocess.run([str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=out,
                           stderr=subprocess.STDOUT, timeout=timeout)
        out.seek(start)
        r.stdout, r.stderr = out.read(), ""
    return r


# ---------------------------------------------------------------------------------------------
# Dovecot


class Dovecot:
    """A private Dovecot 2.3 instance: passwd-file users (mail uid nobody), POP3 and IMAP on
    127.0.0.1 (and ::1 when the loopback has IPv6), logging to its own file (`log_path`) in
    Dovecot's format: `Nov 22 00:31:13 imap-login: Info: Login: ...`."""

    def __init__(self, root: Path, users: dict[str, str]):
        self.root = make_dir(root)
        self.users = users
        self.conf = self.root / "dovecot.conf"
        self.base_dir = self.root / "run"
        self.log_path = self.root / "dovecot.log"
        self.ipv6 = ipv6_loopback_available()
        self.pop3_port = free_port(also_v6=self.ipv6)
        self.imap_port = free_port(also_v6=self.ipv6)
        self.instance = f"rp-it-{self.root.parent.name}-{os.getpid()}"
        self.started = False

    def write_config(self) -> None:
        make_dir(self.base_dir)
        make_dir(self.root / "state")
        homes = make_dir(self.root / "home", owner="nobody")
        nobody = pwd.getpwnam("nobody")
        passwd = self.root / "passwd"
        with passwd.open("w") as f:
            for user, password in self.users.items():
                home = make_dir(homes / user, mode=0o700, owner="nobody")
                f.write(f"{user}:{{PLAIN}}{password}:{nobody.pw_uid}:{nobody.pw_gid}::{home}\n")
        os.chmod(passwd, 0o644)
        addresses = "127.0.0.1, ::1" if self.ipv6 else "127.0.0.1"
        self.conf.write_text(f"""\
# private test instance written by tests/integration/rp_harness.py
instance_name = {self.instance}
base_dir = {self.base_dir}
state_dir = {self.root / "state"}
log_path = {self.log_path}
info_log_path = {self.log_path}
debug_log_path = {self.log_path}
protocols = pop3 imap
listen = {addresses}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
first_valid_uid = 1
mail_location = maildir:~/Maildir
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = passwd-file
  args = username_format=%u {passwd}
}}
service imap-login {{
  inet_listener imap {{
    address = {addresses}
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    address = {addresses}
    port = {self.pop3_port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
# Mail processes run as nobody: let them reach the stats writer without error lines.
service stats {{
  unix_listener stats-reader {{
    mode = 0600
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
""")

    def start(self) -> None:
        self.write_config()
        self.log_path.touch()
        r = run_daemonizing(["dovecot", "-c", self.conf], self.root / "start.out")
        if r.returncode != 0:
            raise RuntimeError(f"dovecot -c {self.conf} failed ({r.returncode}): {r.stderr}\n"
                               f"{tail(self.log_path)}")
        self.started = True
        wait_until(lambda: port_accepts("127.0.0.1", self.pop3_port)
                   and port_accepts("127.0.0.1", self.imap_port),
                   what=f"dovecot listeners {self.pop3_port}/{self.imap_port}")

    def master_pid(self) -> Optional[int]:
        return read_pidfile(self.base_dir / "master.pid")

    def stop(self) -> None:
        if not self.started:
            return
        pid = self.master_pid()
        if pid is not None and pid_alive(pid):
            os.kill(pid, signal.SIGTERM)  # what `doveadm stop` does, without its 1 s polling
        else:
            run(["doveadm", "-c", self.conf, "stop"], timeout=30)
        if pid is not None:
            try:
                wait_until(lambda: not pid_alive(pid), timeout=10, what="dovecot to stop")
            except TimeoutError:
                os.kill(pid, signal.SIGKILL)
        self.started = False

    def _log_process_pids(self) -> list[int]:
        master = self.master_pid()
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    stat = f.read()
            except OSError:
                continue
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            if ppid == master and comm == "log":
                pids.append(int(entry))
        return pids

    def _log_process_has_current_file(self) -> bool:
        target = str(self.log_path)
        pids = self._log_process_pids()
        for pid in pids:
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
            except OSError:
                return False
            if not any(os.readlink(f"/proc/{pid}/fd/{fd}") == target for fd in fds
                       if os.path.exists(f"/proc/{pid}/fd/{fd}")):
                return False
        return bool(pids)

    def reopen_log(self) -> None:
        """`doveadm log reopen`, which only signals the master; waits until Dovecot's log
        process has the (new) log_path open, so later lines go to the new file."""
        run(["doveadm", "-c", self.conf, "log", "reopen"], check=True)
        wait_until(self._log_process_has_current_file, what="dovecot's log process to reopen")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def _curl(self, scheme: str, port: int, user: str, password: str, source: str):
        server = "[::1]" if ":" in source else "127.0.0.1"
        return run(["curl", "-sS", "-g", "--max-time", "20", "--interface", source,
                    "--user", f"{user}:{password}", f"{scheme}://{server}:{port}/"], timeout=30)

    def login_pop3(self, user: str, password: str, source: str) -> subprocess.CompletedProcess:
        """Logs in over POP3 from the local address source (e.g. 127.0.0.2, or ::1 to use
        IPv6 when self.ipv6) with curl."""
        return self._curl("pop3", self.pop3_port, user, password, source)

    def login_imap(self, user: str, password: str, source: str) -> subprocess.CompletedProcess:
        return self._curl("imap", self.imap_port, user, password, source)

    def wait_log(self, needle: str, timeout: float = DEFAULT_TIMEOUT, path: Optional[Path] = None):
        """Waits until the log file (default: the current one) contains needle."""
        p = path or self.log_path
        return wait_until(lambda: needle in p.read_text(errors="replace"), timeout,
                          what=f"{needle!r} in {p}")


# ---------------------------------------------------------------------------------------------
# Postfix

MASTER_CF = """\
# private test instance written by tests/integration/rp_harness.py (no chroot anywhere)
127.0.0.1:{port} inet n - n - - smtpd
127.0.0.1:{unix_port} inet n - n - - smtpd
  -o {{ smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, check_policy_service {{ unix:{policy_socket}, timeout=10s, default_action=DUNNO }}, reject_unauth_destination }}
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class Postfix:
    """A private Postfix 3.7 instance: smtpd on 127.0.0.1:port, mynetworks = 127.0.0.1/32 only,
    relay decided by `check_policy_service {policy}, reject_unauth_destination`, everything
    delivered to the discard transport, log in maillog_file. A second smtpd on unix_port asks
    the policy service on the unix socket policy_socket instead."""

    def __init__(self, root: Path, policy: str, policy_socket: Path):
        self.root = make_dir(root)
        self.conf_dir = make_dir(self.root / "etc")
        self.queue_dir = make_dir(self.root / "queue")
        self.data_dir = make_dir(self.root / "data", owner="postfix")
        self.log_path = self.root / "maillog"
        self.port = free_port()
        self.unix_port = free_port()
        self.policy = policy
        self.policy_socket = policy_socket
        self.started = False

    def write_config(self) -> None:
        main = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.queue_dir),
            "data_directory": str(self.data_dir),
            "maillog_file": str(self.log_path),
            "maillog_file_prefixes": str(self.root),
            "myhostname": "mx.relaypermit-test.invalid",
            "mydomain": "relaypermit-test.invalid",
            "myorigin": "$myhostname",
            "mydestination": "localhost",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.1/32",
            "smtpd_peername_lookup": "no",
            "smtpd_banner": "$myhostname ESMTP",
            "smtpd_helo_required": "no",
            "smtpd_recipient_restrictions": "",
            # As README's quick start; mynetworks does not contain the test clients.
            "smtpd_relay_restrictions":
                "permit_mynetworks, permit_sasl_authenticated, "
                f"check_policy_service {{ {self.policy}, timeout=10s, default_action=DUNNO }}, "
                "reject_unauth_destination",
            "default_transport": "discard:relaypermit test",
            "relay_transport": "discard:relaypermit test",
            "local_transport": "discard:relaypermit test",
            "alias_maps": "",
            "alias_database": "",
            "biff": "no",
            "smtp_tls_security_level": "none",
            "smtpd_tls_security_level": "none",
            "shlib_directory": "/usr/lib/postfix",
        }
        with (self.conf_dir / "main.cf").open("w") as f:
            f.write("# private test instance written by tests/integration/rp_harness.py\n")
            for k, v in main.items():
                f.write(f"{k} = {v}\n")
        (self.conf_dir / "master.cf").write_text(MASTER_CF.format(
            port=self.port, unix_port=self.unix_port, policy_socket=self.policy_socket))

    def start(self) -> None:
        self.write_config()
        # `postfix start` prints fatal errors only to a terminal: give it one with script(1).
        r = run_daemonizing(["script", "-qec", f"postfix -c {self.conf_dir} start", "/dev/null"],
                            self.root / "start.out")
        if r.returncode != 0:
            raise RuntimeError(f"postfix -c {self.conf_dir} start failed ({r.returncode}):\n"
                               f"{r.stdout}{r.stderr}\n{tail(self.log_path)}")
        self.started = True
        wait_until(lambda: port_accepts("127.0.0.1", self.port)
                   and port_accepts("127.0.0.1", self.unix_port),
                   what=f"postfix smtpd :{self.port} and :{self.unix_port}")

    def master_pid(self) -> Optional[int]:
        return read_pidfile(self.queue_dir / "pid" / "master.pid")

    def stop(self) -> None:
        if not self.started:
            return
        pid = self.master_pid()
        run(["postfix", "-c", self.conf_dir, "stop"], timeout=30)
        if pid is not None:
            try:
                wait_until(lambda: not pid_alive(pid), timeout=15, what="postfix master to stop")
            except TimeoutError:
                os.kill(pid, signal.SIGKILL)
        self.started = False

    def rcpt(self, source: str, rcpt: str = "user@example.net", sender: str = "a@example.org",
             via_unix: bool = False) -> tuple[int, str]:
        """One SMTP session from local address source up to RCPT TO; returns RCPT's reply.
        via_unix: use the smtpd whose policy client uses the unix socket."""
        port = self.unix_port if via_unix else self.port
        with smtplib.SMTP("127.0.0.1", port, source_address=(source, 0), timeout=30) as s:
            code, _ = s.ehlo("client.relaypermit-test.invalid")
            assert code == 250, f"EHLO failed: {code}"
            code, msg = s.mail(sender)
            assert code == 250, f"MAIL FROM failed: {code} {msg!r}"
            code, msg = s.rcpt(rcpt)
            try:
                s.rset()
            except smtplib.SMTPException:
                pass
            return code, msg.decode(errors="replace")


# ---------------------------------------------------------------------------------------------
# relaypermit


# tcpserver (ucspi-tcp): a program that prints what RELAYCLIENT it was given ("rc=" when set
# empty, "rc=unset" otherwise), and a client that connects from a chosen source address.
PRINT_RELAYCLIENT = ["/bin/sh", "-c", 'echo "rc=${RELAYCLIENT-unset}"']


def ask_tcpserver(source: str, port: int) -> Optional[str]:
    """Connects from `source` to tcpserver on 127.0.0.1:`port`; returns what the program
    printed (None: nothing listens)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(10)
    try:
        s.bind((source, 0))
        s.connect(("127.0.0.1", port))
        out = b""
        while chunk := s.recv(256):
            out += chunk
        return out.decode()
    except (ConnectionRefusedError, ConnectionResetError):
        return None
    finally:
        s.close()


def toml_str(s: str) -> str:
    return json.dumps(str(s))  # a JSON string is a valid TOML basic string for our paths


class Relaypermit:
    """The relaypermit daemon under test, with a private config, state dir and sockets."""

    def __init__(self, binary: Path, root: Path, sources: Iterable[Path] = (), ttl: str = "30m",
                 ignore: Iterable[str] = ("127.0.0.1/32",), allow: Iterable[str] = (),
                 policy_port: Optional[int] = None, policy_socket: Optional[Path] = None,
                 extra: str = "", log_level: str = "debug"):
        self.binary = Path(binary)
        self.root = make_dir(root)
        self.config = self.root / "relaypermit.toml"
        self.state_dir = self.root / "state"
        self.control_socket = self.root / "run" / "control.sock"
        self.policy_socket = Path(policy_socket or self.root / "policy.sock")
        self.policy_port = policy_port or free_port()
        self.stderr_path = self.root / "daemon.stderr"
        self.proc: Optional[subprocess.Popen] = None
        self.sources = list(sources)
        self.ttl = ttl
        self.ignore = list(ignore)
        self.allow = list(allow)
        self.extra = extra
        self.log_level = log_level
        self.write_config()

    @property
    def policy_endpoint(self) -> str:
        return f"inet:127.0.0.1:{self.policy_port}"

    def write_config(self) -> None:
        lst = lambda xs: "[" + ", ".join(toml_str(x) for x in xs) + "]"
        text = (f"state_dir = {toml_str(self.state_dir)}\n"
                f"control_socket = {toml_str(self.control_socket)}\n"
                f"ttl = {toml_str(self.ttl)}\n"
                f"ignore = {lst(self.ignore)}\n"
                f"allow = {lst(self.allow)}\n"
                f"log_level = {toml_str(self.log_level)}\n"
                f"{self.extra}\n")
        for src in self.sources:
            text += f"\n[[source]]\ntype = \"file\"\npath = {toml_str(src)}\n"
        text += (f"\n[policy]\nlisten = {lst([f'127.0.0.1:{self.policy_port}', 'unix:' + str(self.policy_socket)])}\n")
        self.config.write_text(text)

    # -- process control --

    def start(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        assert self.proc is None or self.proc.poll() is not None, "daemon already running"
        err = open(self.stderr_path, "a")
        err.write(f"--- start {time.strftime('%H:%M:%S')} ---\n")
        err.flush()
        self.proc = subprocess.Popen([str(self.binary), "run", "--config", str(self.config)],
                                     stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        err.close()

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"relaypermit run exited with {self.proc.returncode}:\n"
                                   f"{tail(self.stderr_path)}")
            # A kill -9 leaves the old control socket file behind: connect, not just exists().
            return (port_accepts("127.0.0.1", self.policy_port)
                    and unix_answers(str(self.control_socket)))
        wait_until(ready, timeout, what="relaypermit policy port and control socket")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self, timeout: float = 10) -> Optional[int]:
        """SIGTERM, then SIGKILL after timeout; returns the exit status (None if not running)."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.terminate()
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- CLI --

    def cli(self, *args, stdin: Optional[str] = None, timeout: float = 30) -> subprocess.CompletedProcess:
        argv = [str(self.binary), *[str(a) for a in args], "--config", str(self.config)]
        return subprocess.run(argv, input=stdin if stdin is not None else "", capture_output=True,
                              text=True, timeout=timeout)

    def check(self, ip: str) -> subprocess.CompletedProcess:
        return self.cli("check", ip)

    def wait_permitted(self, ip: str, timeout: float = DEFAULT_TIMEOUT) -> str:
        def ok():
            r = self.check(ip)
            if r.returncode == 2:
                raise AssertionError(f"relaypermit check {ip} error: {r.stdout}{r.stderr}")
            return r.stdout if r.returncode == 0 else None
        return wait_until(ok, timeout, what=f"permit for {ip}", interval=0.05)

    def wait_not_permitted(self, ip: str, timeout: float) -> None:
        def gone():
            r = self.check(ip)
            if r.returncode == 2:
                raise AssertionError(f"relaypermit check {ip} error: {r.stdout}{r.stderr}")
            return r.returncode == 1
        wait_until(gone, timeout, what=f"permit for {ip} to expire", interval=0.05)

    def list_json(self) -> list:
        r = self.cli("list", "--json")
        assert r.returncode == 0, f"list --json failed ({r.returncode}): {r.stdout}{r.stderr}"
        return json.loads(r.stdout)

    def permit_for(self, ip: str) -> Optional[dict]:
        for p in self.list_json():
            if p.get("ip", "").split("/")[0] == ip:  # "192.0.2.1" or "192.0.2.1/32"
                return p
        return None


# ---------------------------------------------------------------------------------------------
# Postfix policy delegation protocol client


def policy_request(client_address: str, **extra) -> bytes:
    attrs = {
        "request": "smtpd_access_policy",
        "protocol_state": "RCPT",
        "protocol_name": "ESMTP",
        "client_address": client_address,
        "client_name": "unknown",
        "reverse_client_name": "unknown",
        "helo_name": "client.relaypermit-test.invalid",
        "sender": "a@example.org",
        "recipient": "user@example.net",
        "recipient_count": "0",
        "queue_id": "",
        "instance": "1234.5678.9abc.0",
        "size": "0",
        "etrn_domain": "",
        "stress": "",
        "sasl_method": "",
        "sasl_username": "",
        "sasl_sender": "",
        "ccert_subject": "",
        "ccert_issuer": "",
        "ccert_fingerprint": "",
        "encryption_protocol": "",
        "encryption_cipher": "",
        "encryption_keysize": "0",
        "server_address": "127.0.0.1",
        "server_port": "25",
    }
    attrs.update(extra)
    return "".join(f"{k}={v}\n" for k, v in attrs.items()).encode() + b"\n"


class PolicyClient:
    """One persistent policy connection (TCP or unix), as Postfix's smtpd keeps them."""

    def __init__(self, endpoint: str, timeout: float = 10):
        if endpoint.startswith("unix:"):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(endpoint[5:])
        else:
            host, port = endpoint.removeprefix("inet:").removeprefix("tcp:").rsplit(":", 1)
            self.sock = socket.create_connection((host, int(port)), timeout=timeout)
        self.buf = b""

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def read_reply(self) -> Optional[dict]:
        """Reads one reply (attributes up to an empty line); None if the server closed."""
        while b"\n\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        block, self.buf = self.buf.split(b"\n\n", 1)
        return dict(line.split("=", 1) for line in block.decode().split("\n") if line)

    def ask(self, client_address: str, **extra) -> Optional[dict]:
        self.send_raw(policy_request(client_address, **extra))
        return self.read_reply()

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
