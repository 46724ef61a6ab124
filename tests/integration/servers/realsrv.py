"""Helpers for tests/integration/test_real_servers.py: real POP3/IMAP servers from Debian 12,
run privately on loopback, logging through a private rsyslogd into three syslog framings.

- PrivateSyslog: an rsyslogd of its own (`rsyslogd -n -f CONF -i PIDFILE`) that listens only on a
  private unix socket (imuxsock, system socket off) and writes every message three times:
  RSYSLOG_TraditionalFileFormat (RFC 3164 style), RSYSLOG_FileFormat (ISO 8601, Debian 12's
  default) and RSYSLOG_SyslogProtocol23Format (RFC 5424).
- in_private_ns(): the argv that runs a server in a private mount namespace (`unshare -m`) where
  /dev/log is a symlink to that private socket (servers call syslog(), which always writes to
  /dev/log); optionally also a private network namespace for servers with a hard-wired port.
- SystemUsers: system accounts with known passwords for PAM-authenticating servers, created
  only when missing and removed at the end only when created here.
- curl_login(), scan(): the client side and the relaypermit side.

Security: everything started here runs as root on 127.0.0.0/8 only; the host's /dev, /etc and
/run are never written to (private views are bind mounts inside the private namespace).
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Iterable, Optional

HERE = Path(__file__).resolve().parent
NS_EXEC = HERE / "ns-exec.sh"
PREFIX = Path(os.environ.get("RELAYPERMIT_TEST_SERVERS", "/opt/relaypermit-test"))
FRAMINGS = ("traditional", "iso", "rfc5424")
TEMPLATES = {
    "traditional": "RSYSLOG_TraditionalFileFormat",
    "iso": "RSYSLOG_FileFormat",
    "rfc5424": "RSYSLOG_SyslogProtocol23Format",
}
USER_GECOS = "relaypermit test user"


# ---------------------------------------------------------------------------------------------
# generic


def wait_until(predicate: Callable[[], object], timeout: float = 20.0, what: str = "condition",
               interval: float = 0.02):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what}")
        time.sleep(interval)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def make_dir(path: Path, mode: int = 0o755, owner: Optional[str] = None,
             group: Optional[str] = None) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, mode)
    if owner or group:
        shutil.chown(path, owner, group)
    return path


def run(argv: Iterable, timeout: float = 30, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in argv], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout, **kw)


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as e:
        return f"<{path}: {e}>"


class Procs:
    """Processes started by one test; stop_all() ends them (TERM, then KILL) by pid."""

    def __init__(self):
        self.popens: list[subprocess.Popen] = []
        self.pids: list[int] = []
        self.stoppers: list[Callable[[], object]] = []

    def popen(self, argv: Iterable, log: Path, **kw) -> subprocess.Popen:
        with open(log, "ab") as out:
            p = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True, **kw)
        self.popens.append(p)
        return p

    def stop_all(self) -> None:
        for stop in reversed(self.stoppers):
            try:
                stop()
            except Exception:  # noqa: BLE001 - teardown must reach everything
                pass
        for p in reversed(self.popens):
            # Each was started in its own session and process group: signal the group (its
            # children: tcpserver's connections, a daemon's workers), then end, by pid, what
            # is left in the group (some ignore SIGTERM, e.g. saslauthd -d's workers).
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
            kill_pids(pids_in_group(p.pid))
        for pid in self.pids:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    break
                try:
                    wait_until(lambda: not alive(pid), 5, f"pid {pid} to exit")
                    break
                except TimeoutError:
                    continue


def read_pid(path: Path) -> Optional[int]:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def pids_in_group(pgid: int) -> list[int]:
    """Pids whose process group is pgid."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                out.append(int(d))
        except (OSError, IndexError, ValueError):
            continue
    return out


def pids_in_netns_of(pid: int) -> list[int]:
    """All pids in the network namespace of pid (for a private `unshare -n` namespace: all
    processes the test started there, including daemons that detached from their session)."""
    try:
        ns = os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return []
    if ns == os.readlink("/proc/self/ns/net"):
        return []  # never the host's namespace
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.readlink(f"/proc/{d}/ns/net") == ns:
                    out.append(int(d))
            except OSError:
                pass
    return out


def kill_pids(pids: list[int]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        try:
            wait_until(lambda: not any(alive(p) for p in pids), 5, f"pids {pids} to exit")
            return
        except TimeoutError:
            continue


# ---------------------------------------------------------------------------------------------
# private rsyslogd


class PrivateSyslog:
    def __init__(self, root: Path, procs: Procs, hostname: str = "mailhost"):
        self.root = make_dir(root)
        self.procs = procs
        self.sock = self.root / "log.sock"
        self.conf = self.root / "rsyslog.conf"
        self.pidfile = self.root / "rsyslogd.pid"
        self.files = {f: self.root / f"{f}.log" for f in FRAMINGS}
        self.hostname = hostname
        self.proc: Optional[subprocess.Popen] = None

    def start(self) -> "PrivateSyslog":
        work = make_dir(self.root / "work", 0o700)
        actions = "\n".join(
            f'*.* action(type="omfile" file="{self.files[f]}" template="{TEMPLATES[f]}")'
            for f in FRAMINGS)
        self.conf.write_text(f"""\
# private rsyslogd of tests/integration/test_real_servers.py
global(workDirectory="{work}" localHostname="{self.hostname}")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="{self.sock}" CreatePath="on" RateLimit.Interval="0")
{actions}
""")
        self.proc = self.procs.popen(["rsyslogd", "-n", "-f", self.conf, "-i", self.pidfile],
                                     self.root / "rsyslogd.out")
        wait_until(lambda: self.sock.exists() or self.proc.poll() is not None, 10,
                   "rsyslogd's socket")
        if self.proc.poll() is not None:
            raise RuntimeError(f"rsyslogd exited: {tail(self.root / 'rsyslogd.out')}")
        os.chmod(self.sock, 0o666)
        return self

    def text(self, framing: str) -> str:
        try:
            return self.files[framing].read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def count(self, needle: str) -> int:
        """The smallest number of lines containing needle over the three files."""
        return min(sum(1 for ln in self.text(f).splitlines() if needle in ln) for f in FRAMINGS)

    def wait_counts(self, needles: dict[str, int], timeout: float = 20.0) -> None:
        def ok():
            return all(self.count(n) >= c for n, c in needles.items())
        try:
            wait_until(ok, timeout, f"log lines {needles}")
        except TimeoutError as e:
            raise TimeoutError(f"{e}\n--- {self.files['traditional']} ---\n"
                               f"{tail(self.files['traditional'])}") from None


def in_private_ns(syslog: PrivateSyslog, scratch: Path, argv: Iterable,
                  binds: Iterable[tuple] = (), netns: bool = False) -> list[str]:
    """argv that runs argv with /dev/log -> syslog.sock (private mount namespace)."""
    make_dir(scratch, 0o700)
    out = ["unshare", "-m", "--propagation", "private"] + (["-n"] if netns else [])
    out += [str(NS_EXEC), str(syslog.sock), str(scratch)]
    for src, dst in binds:
        out += ["--bind", str(src), str(dst)]
    if netns:
        out.append("--netlo")
    return out + ["--"] + [str(a) for a in argv]


# ---------------------------------------------------------------------------------------------
# users


def kill_user_processes(names: Iterable[str]) -> None:
    """Ends (by pid) the processes left running as the test users: servers fork helpers that
    detach from their session (e.g. Courier imapd's gam_server). Only test users' processes."""
    uids = set()
    for n in names:
        try:
            uids.add(pwd.getpwnam(n).pw_uid)
        except KeyError:
            pass
    if not uids:
        return
    victims = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/status") as f:
                for ln in f:
                    if ln.startswith("Uid:"):
                        if int(ln.split()[1]) in uids:
                            victims.append(int(d))
                        break
        except (OSError, ValueError):
            continue
    kill_pids(victims)


class SystemUsers:
    """System accounts NAME with password PASSWORD, home under root, mail spool /var/mail/NAME."""

    def __init__(self, root: Path, users: dict[str, str]):
        self.root = make_dir(root)
        self.users = users
        self.created: list[str] = []
        self.spools: list[Path] = []

    def setup(self) -> None:
        for name, password in self.users.items():
            try:
                pw = pwd.getpwnam(name)
                if pw.pw_gecos.split(",")[0] != USER_GECOS:
                    raise RuntimeError(f"a user {name} exists that these tests did not create")
                self.created.append(name)  # left over by an interrupted run: ours to remove
            except KeyError:
                home = self.root / name
                r = run(["useradd", "-M", "-d", home, "-s", "/usr/sbin/nologin", "-c", USER_GECOS,
                         "-U", name])
                if r.returncode != 0:
                    raise RuntimeError(f"useradd {name}: {r.stderr}")
                self.created.append(name)
            pw = pwd.getpwnam(name)
            r = subprocess.run(["chpasswd"], input=f"{name}:{password}\n", text=True,
                               capture_output=True)
            if r.returncode != 0:
                raise RuntimeError(f"chpasswd {name}: {r.stderr}")
            home = Path(pw.pw_dir)
            make_dir(home, 0o700, name, name)
            for sub in ("Maildir", "Maildir/cur", "Maildir/new", "Maildir/tmp"):
                make_dir(home / sub, 0o700, name, name)
            spool = Path("/var/mail") / name
            if not spool.exists():
                spool.touch()
                shutil.chown(spool, name, "mail")
                os.chmod(spool, 0o660)
                self.spools.append(spool)

    def teardown(self) -> None:
        kill_user_processes(self.created)
        for spool in self.spools:
            try:
                spool.unlink()
            except OSError:
                pass
        for name in self.created:
            run(["userdel", name])
            run(["groupdel", name])  # -U group, if userdel left it


# ---------------------------------------------------------------------------------------------
# client and scanner


def curl_login(proto: str, user: str, password: str, port: int, source: str,
               host: str = "127.0.0.1", netns_pid: Optional[int] = None,
               timeout: float = 15, login_options: Optional[str] = None
               ) -> subprocess.CompletedProcess:
    """One POP3/IMAP login (and a LIST) with curl from the address source; returncode 0 = OK."""
    argv = ["curl", "-s", "-S", "--max-time", str(int(timeout)), "--interface", source,
            "--user", f"{user}:{password}", f"{proto}://{host}:{port}/"]
    if login_options:
        argv[1:1] = ["--login-options", login_options]
    if netns_pid is not None:
        argv = ["nsenter", f"--net=/proc/{netns_pid}/ns/net"] + argv
    return run(argv, timeout=timeout + 5)


def scan(binary: Path, config: Path, file: Path) -> tuple[Counter, str]:
    r = run([binary, "scan", "--config", config, file])
    if r.returncode != 0:
        raise RuntimeError(f"relaypermit scan {file} exited {r.returncode}: {r.stderr}")
    explain = run([binary, "scan", "--config", config, "--explain", file]).stdout
    return Counter(ln for ln in r.stdout.splitlines() if ln), explain
