"""The relaypermit binary as a user runs it: `scan` over a log real Dovecot wrote, the binary
copied alone to another directory, and the control commands' exit codes."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from rp_harness import ON_DEMAND_LIBRARIES, mapped_libraries
from syslog_helpers import make_self_signed

SAMPLE = """\
Nov 22 00:31:13 imap-login: Info: Login: user=<alice>, method=PLAIN, rip=192.0.2.10, lip=192.0.2.1, mpid=14305, session=<Z5cNotNgTsDAAAIK>
Nov 22 00:31:14 mail dovecot: pop3-login: Login: user=<bob>, method=PLAIN, rip=::ffff:198.51.100.4, lip=::ffff:198.51.100.1, mpid=14306, session=<Z5cNotNgTsDAAAIL>
Nov 22 00:31:15 imap-login: Info: Disconnected: Connection closed (auth failed, 1 attempts in 2 secs): user=<x, method=PLAIN, rip=203.0.113.9, lip=203.0.113.1>, method=PLAIN, rip=203.0.113.8, lip=203.0.113.1, session=<Z5cNotNgTsDAAAIM>
2026-11-22T00:34:23.322872+00:00 mail dovecot: imap-login: Login: user=<carol>, method=PLAIN, rip=2001:DB8:0:0:0:0:0:1, lip=2001:db8::2, mpid=14307, session=<Z5cNotNgTsDAAAIN>
2026-11-22T00:34:24.000001+00:00 mail dovecot: imap-login: Logged in: user=<dave>, method=PLAIN, rip=203.0.113.5, lip=203.0.113.1, mpid=14308, session=<Z5cNotNgTsDAAAIO>
Nov 22 00:31:16 mail dovecot: pop3-login: Aborted login (auth failed, 1 attempts in 2 secs): user=<eve>, method=PLAIN, rip=203.0.113.6, lip=203.0.113.1, session=<Z5cNotNgTsDAAAIP>
"""
SAMPLE_EXPECTED = ("192.0.2.10\talice\tdovecot\n"
                   "198.51.100.4\tbob\tdovecot\n"
                   "2001:db8::1\tcarol\tdovecot\n"
                   "203.0.113.5\tdave\tdovecot\n")


def run_bin(binary, *args, stdin="", cwd=None, env=None):
    return subprocess.run([str(binary), *map(str, args)], input=stdin, capture_output=True,
                          text=True, timeout=60, cwd=cwd, env=env)


def test_scan_real_dovecot_log(rp_binary, dovecot, testdir):
    assert dovecot.login_pop3("alice", "alice-secret", "127.0.0.2").returncode == 0
    assert dovecot.login_pop3("alice", "wrong", "127.0.0.4").returncode != 0
    assert dovecot.login_imap("x, method=PLAIN, rip=127.0.0.9, lip=127.0.0.1", "wrong",
                              "127.0.0.5").returncode != 0
    assert dovecot.login_imap("bob", "bob-secret", "127.0.0.3").returncode == 0
    assert dovecot.login_pop3("carol", "carol-secret", "127.0.0.2").returncode == 0
    for ip in ("127.0.0.4", "127.0.0.5"):
        dovecot.wait_log(f"rip={ip}, lip=")
    dovecot.wait_log("user=<carol>")
    expected = ("127.0.0.2\talice\tdovecot\n"
                "127.0.0.3\tbob\tdovecot\n"
                "127.0.0.2\tcarol\tdovecot\n")
    empty = testdir / "empty.toml"
    empty.write_text("")

    r = run_bin(rp_binary, "scan", dovecot.log_path, "--config", empty)
    assert (r.returncode, r.stdout) == (0, expected), r.stderr
    r = run_bin(rp_binary, "scan", "--config", empty, stdin=dovecot.log_text())
    assert (r.returncode, r.stdout) == (0, expected), r.stderr
    r = run_bin(rp_binary, "scan", "--pattern", "dovecot", dovecot.log_path, "--config", empty)
    assert (r.returncode, r.stdout) == (0, expected), r.stderr
    r = run_bin(rp_binary, "scan", "--explain", dovecot.log_path, "--config", empty)
    assert r.returncode == 0, r.stderr
    rows = [line.split("\t") for line in r.stdout.splitlines()]
    assert [row[:3] for row in rows] == [line.split("\t") for line in expected.splitlines()]
    assert all(len(row) == 6 and row[3].startswith("dovecot/") and row[4].endswith("Z")
               and row[5].startswith("line: ") for row in rows), r.stdout


def test_scan_escapes_user_names(rp_binary, testdir):
    """A user name is the client's text: a tab must not shift scan's columns, nor an escape
    sequence reach the terminal, nor a right-to-left override reorder the row, nor a name pose as
    an escape; other UTF-8 is printed as it is."""
    users = [b"a\tb", b"x\x1b[31mred", b"q\xff", "j\u00f6rg".encode(), b"back\\slash",
             b"a\\tb", "rtl\u202eevil".encode()]
    log = b"".join(b"Nov 22 00:31:13 mail dovecot: imap-login: Login: user=<" + u +
                   b">, method=PLAIN, rip=192.0.2.%d, lip=192.0.2.1, mpid=1, session=<s>\n" % (70 + i)
                   for i, u in enumerate(users))
    path = testdir / "users.log"
    path.write_bytes(log)
    empty = testdir / "empty.toml"
    empty.write_text("")
    r = subprocess.run([str(rp_binary), "scan", "--config", str(empty), str(path)], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    expected = ["192.0.2.70\ta\\tb\tdovecot",
                "192.0.2.71\tx\\x1b[31mred\tdovecot",
                "192.0.2.72\tq\\xff\tdovecot",
                "192.0.2.73\tj\u00f6rg\tdovecot",
                "192.0.2.74\tback\\\\slash\tdovecot",
                "192.0.2.75\ta\\\\tb\tdovecot",
                "192.0.2.76\trtl\\xe2\\x80\\xaeevil\tdovecot"]
    assert r.stdout.decode().splitlines() == expected


def test_fresh_binary_alone_elsewhere(rp_binary, testdir):
    alone = testdir / "alone"
    alone.mkdir()
    binary = alone / "relaypermit"
    shutil.copy2(rp_binary, binary)
    env = {"PATH": "/usr/bin:/bin", "LANG": "C", "HOME": str(alone)}

    r = run_bin(binary, "--version", cwd=alone, env=env)
    assert (r.returncode, r.stdout.strip()) == (0, "relaypermit 0.1.0"), r.stderr
    r = run_bin(binary, "--help", cwd=alone, env=env)
    assert r.returncode == 0 and "scan" in r.stdout, (r.returncode, r.stdout, r.stderr)

    r = run_bin(binary, "scan", cwd=alone, env=env, stdin=SAMPLE)
    assert (r.returncode, r.stdout) == (0, SAMPLE_EXPECTED), r.stderr
    sample = alone / "mail.log"
    sample.write_text(SAMPLE)
    r = run_bin(binary, "scan", "mail.log", cwd=alone, env=env)
    assert (r.returncode, r.stdout) == (0, SAMPLE_EXPECTED), r.stderr

    # Nothing from the build tree is needed at run time (only system shared libraries).
    ldd = subprocess.run(["ldd", str(binary)], capture_output=True, text=True)
    assert "not found" not in ldd.stdout, ldd.stdout
    libs = [line.split("=>")[1].split()[0] for line in ldd.stdout.splitlines() if "=>" in line]
    assert all(lib.startswith(("/lib/", "/lib64/", "/usr/lib/")) for lib in libs), ldd.stdout
    # No command's start loads the libraries that only some features need: each costs
    # milliseconds at every start, and `allow --chain` starts once per login.
    assert not [lib for lib in libs if lib.split("/")[-1].startswith(ON_DEMAND_LIBRARIES)], ldd.stdout


def test_a_host_without_gnutls_or_libsystemd(rp_binary, testdir):
    """Both libraries hidden in a private mount namespace (each bound over by /dev/null): every
    command still starts, and `config check` names the package that a tls: listener and a
    journald source need, with the file and line of each source."""
    if os.geteuid() != 0 or shutil.which("unshare") is None or shutil.which("openssl") is None:
        pytest.skip("needs root, unshare(1) for a private mount namespace, and openssl for a certificate")
    libs = [Path(f"/lib/x86_64-linux-gnu/{so}").resolve() for so in ("libgnutls.so.30", "libsystemd.so.0")]
    if not all(lib.is_file() for lib in libs):
        pytest.skip(f"not found: {libs}")
    spot = testdir / "mount-probe"
    spot.write_text("x")
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "mount", "--bind", "/dev/null", str(spot)],
                           capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        pytest.skip(f"no private mount namespace here: {probe.stderr.strip()}")
    cert, key = make_self_signed(testdir)
    (testdir / "journal").mkdir()
    cfg = testdir / "rp.toml"
    cfg.write_text(f'[[source]]\ntype = "syslog"\nlisten = ["tls:127.0.0.1:1"]\n'
                   f'tls_cert = "{cert}"\ntls_key = "{key}"\n\n'
                   f'[[source]]\ntype = "journald"\npath = "{testdir / "journal"}"\n')
    sample = testdir / "mail.log"
    sample.write_text(SAMPLE)

    def hidden(*args):
        mounts = " && ".join(f"mount --bind /dev/null {lib}" for lib in libs)
        cmd = " ".join([str(rp_binary), *map(str, args)])
        return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", f"{mounts} && exec {cmd}"],
                              capture_output=True, text=True, timeout=60)

    r = run_bin(rp_binary, "config", "check", "--config", cfg)
    assert r.returncode == 0, r.stdout + r.stderr
    r = hidden("--version")
    assert (r.returncode, r.stdout.strip()) == (0, "relaypermit 0.1.0"), r.stderr
    r = hidden("scan", sample)
    assert (r.returncode, r.stdout) == (0, SAMPLE_EXPECTED), r.stderr
    r = hidden("config", "check", "--config", cfg)
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"{cfg}:1: source syslog:tls:127.0.0.1:1: a tls: listener needs GnuTLS: cannot load libgnutls.so.30 " \
           "(install the package libgnutls30)" in r.stderr, r.stderr
    assert f"{cfg}:7: source journald:{testdir / 'journal'}: cannot load libsystemd.so.0 " \
           "(install the package libsystemd0)" in r.stderr, r.stderr


def test_control_commands_exit_codes(dovecot, make_daemon):
    daemon = make_daemon(sources=[dovecot.log_path])
    # Daemon not running: error.
    r = daemon.check("192.0.2.1")
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    daemon.start()
    assert daemon.check("192.0.2.1").returncode == 1
    # A daemon that follows a file has opened none of the on-demand libraries either.
    loaded = mapped_libraries(daemon.proc.pid)
    assert not [lib for lib in loaded if lib.startswith(ON_DEMAND_LIBRARIES)], loaded
    r = daemon.check("not-an-address")
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)

    r = daemon.cli("allow", "192.0.2.1", "--user", "admin", "--ttl", "1h")
    assert r.returncode == 0, r.stdout + r.stderr
    r = daemon.check("192.0.2.1")
    assert r.returncode == 0 and "admin" in r.stdout, r.stdout
    p = daemon.permit_for("192.0.2.1")
    assert p["source"].split(" ")[0] == "control" and p["user"] == "admin", p
    r = daemon.cli("list")
    assert r.returncode == 0 and "192.0.2.1" in r.stdout, r.stdout + r.stderr

    assert daemon.cli("revoke", "192.0.2.1").returncode == 0
    assert daemon.check("192.0.2.1").returncode == 1
    assert daemon.cli("revoke", "192.0.2.1").returncode == 1

    assert dovecot.login_pop3("bob", "bob-secret", "127.0.0.2").returncode == 0
    daemon.wait_permitted("127.0.0.2")
    assert daemon.cli("revoke", "--user", "bob").returncode == 0
    assert daemon.check("127.0.0.2").returncode == 1

    r = daemon.cli("config", "check")
    assert r.returncode == 0 and r.stdout.startswith("ok"), r.stdout + r.stderr
    r = daemon.cli("status")
    assert r.returncode == 0, r.stdout + r.stderr
    assert daemon.stop() == 0
