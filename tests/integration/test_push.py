"""Direct pushes with the real Dovecot 2.3 from Debian (issue 4):

(a) a Dovecot post-login script running `relaypermit allow --chain -- "$@"` as user dovecot,
    with the daemon's control socket root:dovecot 0660 (`control_group = "dovecot"`): a login
    grants a permit; with the daemon down or frozen the login still succeeds at once.
(b) relaypermit as Dovecot's auth policy server (`type = "dovecot-auth-policy"`): successful
    POP3/IMAP logins grant, failed ones do not; `api_header` refuses requests without it.

Both need the lead's wiring (the `--chain` flag, the source type in the daemon): until then each
test is skipped with the reason, detected by running the binary.
"""

from __future__ import annotations

import grp
import os
import socket
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import USERS, _require_programs, _require_root
from rp_harness import Dovecot, free_port, make_dir, reachable_binary, tail, toml_str, unix_accepts, wait_until


# ---------------------------------------------------------------------------------------------
# wiring detection


def _chain_wired(binary: Path, tmp: Path) -> bool:
    """`allow --chain -- PROGRAM` execs PROGRAM even without an address (a warning only);
    an unwired binary rejects the unknown option with exit 2."""
    cfg = tmp / "wired.toml"
    cfg.write_text(f"control_socket = {toml_str(tmp / 'nowhere.sock')}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("IP", "TCPREMOTEIP")}
    r = subprocess.run([str(binary), "allow", "--chain", "--config", str(cfg), "--", "/bin/sh", "-c", "exit 42"],
                       capture_output=True, text=True, timeout=10, env=env, stdin=subprocess.DEVNULL)
    return r.returncode == 42


def _auth_policy_wired(binary: Path, tmp: Path) -> str:
    """Returns "" when a daemon with a dovecot-auth-policy source starts, else why not (an
    unwired daemon refuses the type with "not available in this version")."""
    cfg = tmp / "wired-ap.toml"
    sock = tmp / "wired.sock"
    port = free_port()
    cfg.write_text(f"state_dir = {toml_str(tmp / 'wstate')}\n"
                   f"control_socket = {toml_str(sock)}\n"
                   f"[policy]\nlisten = [\"127.0.0.1:{free_port()}\"]\n"
                   f"[[source]]\ntype = \"dovecot-auth-policy\"\nlisten = [\"127.0.0.1:{port}\"]\n"
                   f"api_header = \"X-Relay-Key: k\"\n")
    p = subprocess.Popen([str(binary), "run", "--config", str(cfg)], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True)
    try:
        wait_until(lambda: p.poll() is not None or (unix_accepts(str(sock)) and _accepts(port)), timeout=10,
                   what="probe daemon")
    finally:
        started = p.poll() is None
        if started:
            p.terminate()
        out, _ = p.communicate(timeout=10)
    return "" if started else out.strip().splitlines()[-1] if out.strip() else "probe daemon exited"


@pytest.fixture
def chain_wired(rp_binary, testdir):
    if not _chain_wired(rp_binary, testdir):
        pytest.skip("`relaypermit allow --chain` is not wired into the command table yet")


@pytest.fixture
def auth_policy_wired(rp_binary, testdir):
    why = _auth_policy_wired(rp_binary, testdir)
    if why:
        pytest.skip(f"source type dovecot-auth-policy is not wired into the daemon yet ({why})")


# ---------------------------------------------------------------------------------------------
# a private Dovecot with extra configuration


class PushDovecot(Dovecot):
    """The harness's private Dovecot plus extra dovecot.conf text (post-login service, auth
    policy settings)."""

    def __init__(self, root: Path, users: dict[str, str], extra: str):
        super().__init__(root, users)
        self.extra = extra

    def write_config(self) -> None:
        super().write_config()
        with self.conf.open("a") as f:
            f.write("\n# test_push.py\n" + self.extra)


@pytest.fixture
def push_dovecot(testdir, request):
    """push_dovecot(extra) -> a started PushDovecot; stopped at teardown."""
    _require_root()
    _require_programs("dovecot", "doveadm", "curl")
    made: list[PushDovecot] = []

    def make(extra: str) -> PushDovecot:
        dc = PushDovecot(testdir / "dc", USERS, extra)
        made.append(dc)
        dc.start()
        return dc

    yield make
    for dc in made:
        dc.stop()
        rep = getattr(request.node, "rep_call", None)
        if rep is None or rep.failed:
            print(f"\n--- dovecot log ({dc.log_path}) ---\n{tail(dc.log_path, 60)}")


def post_login_config(script: Path) -> str:
    # docs/dovecot-push.md, "Post-login script"
    return f"""\
service imap {{
  executable = imap postlogin
}}
service pop3 {{
  executable = pop3 postlogin
}}
service postlogin {{
  executable = script-login {script}
  user = $default_internal_user
  unix_listener postlogin {{
  }}
}}
"""


def write_script(testdir: Path, binary: Path, config: Path) -> Path:
    script = make_dir(testdir / "bin") / "relaypermit-postlogin.sh"  # reachable_binary may not have made it
    script.write_text("#!/bin/sh\n"
                      f"exec {binary} allow --chain --config {config} -- \"$@\"\n")
    os.chmod(script, 0o755)
    return script


class FrozenServer:
    """A unix socket server that accepts connections and never answers (a hung daemon)."""

    def __init__(self, path: Path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        os.chmod(path, 0o666)
        self.sock.listen(64)
        self.sock.settimeout(0.1)
        self.held = []
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
                self.held.append(c)
            except OSError:
                pass

    def close(self):
        self.stop = True
        self.thread.join(5)
        for c in self.held:
            c.close()
        self.sock.close()
        try:
            os.unlink(self.path)
        except OSError:
            pass


# ---------------------------------------------------------------------------------------------
# (a) post-login script


def test_post_login_script_grants_and_never_blocks_logins(rp_binary, testdir, make_daemon, push_dovecot,
                                                          chain_wired):
    binary = reachable_binary(rp_binary, testdir / "bin")  # user dovecot runs it
    rp = make_daemon(extra='control_group = "dovecot"')
    os.chmod(rp.config, 0o644)  # the script runs as user dovecot and reads it
    script = write_script(testdir, binary, rp.config)
    rp.start()

    # The control socket is root:dovecot 0660 (the daemon runs as root here).
    st = os.stat(rp.control_socket)
    assert st.st_uid == 0
    assert st.st_gid == grp.getgrnam("dovecot").gr_gid
    assert stat.S_IMODE(st.st_mode) == 0o660

    dc = push_dovecot(post_login_config(script))

    r = dc.login_pop3("alice", USERS["alice"], "127.0.0.21")
    assert r.returncode == 0, r.stderr
    rp.wait_permitted("127.0.0.21")
    assert rp.permit_for("127.0.0.21")["user"] == "alice"

    r = dc.login_imap("bob", USERS["bob"], "127.0.0.22")
    assert r.returncode == 0, r.stderr
    rp.wait_permitted("127.0.0.22")
    assert rp.permit_for("127.0.0.22")["user"] == "bob"

    # A failed login never runs the script.
    r = dc.login_pop3("carol", "wrong", "127.0.0.23")
    assert r.returncode != 0
    dc.wait_log("rip=127.0.0.23")
    r = dc.login_pop3("carol", USERS["carol"], "127.0.0.24")
    assert r.returncode == 0, r.stderr
    rp.wait_permitted("127.0.0.24")
    assert rp.check("127.0.0.23").returncode == 1

    # Daemon down: the login still succeeds at once, the script warns in Dovecot's log.
    rp.stop()
    t0 = time.monotonic()
    r = dc.login_pop3("alice", USERS["alice"], "127.0.0.25")
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 5
    dc.wait_log("relaypermit: allow --chain")

    # Frozen daemon (accepts, never answers): the login succeeds after at most ~1 s more.
    frozen = FrozenServer(rp.control_socket)
    try:
        t0 = time.monotonic()
        r = dc.login_imap("bob", USERS["bob"], "127.0.0.26")
        elapsed = time.monotonic() - t0
        assert r.returncode == 0, r.stderr
        assert elapsed < 4, f"login took {elapsed:.2f}s with a frozen daemon"
        assert frozen.held, "the script never connected"
    finally:
        frozen.close()

    # Back up: grants again.
    rp.start()
    r = dc.login_imap("alice", USERS["alice"], "127.0.0.27")
    assert r.returncode == 0, r.stderr
    rp.wait_permitted("127.0.0.27")


# ---------------------------------------------------------------------------------------------
# (b) auth policy server


def auth_policy_dovecot_config(port: int, api_header: str = "") -> str:
    # docs/dovecot-push.md, "Auth policy server"
    text = (f"auth_policy_server_url = http://127.0.0.1:{port}/\n"
            "auth_policy_hash_nonce = relaypermit-test-nonce\n"
            "auth_policy_check_before_auth = no\n"
            "auth_policy_check_after_auth = no\n"
            "auth_policy_report_after_auth = yes\n")
    if api_header:
        text += f"auth_policy_server_api_header = {api_header}\n"
    return text


def auth_policy_source(port: int, api_header: str = "") -> str:
    text = f'\n[[source]]\ntype = "dovecot-auth-policy"\nname = "dovecot-auth-policy"\nlisten = ["127.0.0.1:{port}"]\n'
    if api_header:
        text += f"api_header = {toml_str(api_header)}\n"
    return text


def test_auth_policy_reports_grant_successful_logins_only(make_daemon, push_dovecot, auth_policy_wired):
    port = free_port()
    rp = make_daemon(extra=auth_policy_source(port))
    rp.start()
    wait_until(lambda: _accepts(port), what="auth policy listener")
    dc = push_dovecot(auth_policy_dovecot_config(port))

    r = dc.login_pop3("alice", USERS["alice"], "127.0.0.31")
    assert r.returncode == 0, r.stderr
    rp.wait_permitted("127.0.0.31")
    assert rp.permit_for("127.0.0.31")["user"] == "alice"

    r = dc.login_imap("bob", USERS["bob"], "127.0.0.32")
    assert r.returncode == 0, r.stderr
    rp.wait_permitted("127.0.0.32")

    r = dc.login_imap("carol", "wrong", "127.0.0.33")
    assert r.returncode != 0
    # A later success proves the failure's report was handled before it (one kept-alive connection).
    r = dc.login_pop3("carol", USERS["carol"], "127.0.0.34")
    assert r.returncode == 0, r.stderr
    rp.wait_permitted("127.0.0.34")
    assert rp.check("127.0.0.33").returncode == 1


def test_auth_policy_api_header(make_daemon, push_dovecot, auth_policy_wired):
    port = free_port()
    rp = make_daemon(extra=auth_policy_source(port, "X-Relay-Key: s3cret"))
    rp.start()
    wait_until(lambda: _accepts(port), what="auth policy listener")

    # Dovecot sends the wrong key: logins still work, nothing is granted.
    dc = push_dovecot(auth_policy_dovecot_config(port, "X-Relay-Key: wrong"))
    r = dc.login_pop3("alice", USERS["alice"], "127.0.0.41")
    assert r.returncode == 0, r.stderr
    wait_until(lambda: "without the api_header" in rp.stderr_path.read_text(errors="replace"),
               what="the daemon to refuse the request")
    assert rp.check("127.0.0.41").returncode == 1
    dc.stop()

    # The right key grants.
    dc2 = push_dovecot(auth_policy_dovecot_config(port, "X-Relay-Key: s3cret"))
    r = dc2.login_imap("bob", USERS["bob"], "127.0.0.42")
    assert r.returncode == 0, r.stderr
    rp.wait_permitted("127.0.0.42")


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
