"""Issue 12 items 4, 11, 12 against the real binary: audit lines cannot be forged (one event, one
line on stderr, also in journald's stream format), `config check` warns about secrets others can
read and never prints a store password, and privileged directories are not symlinks."""

import json
import os
import re
import socket
import subprocess

from rp_harness import free_port, port_accepts, toml_str, wait_until


def _post_report(port: int, body: dict) -> str:
    data = json.dumps(body).encode()
    req = (b"POST /?command=report HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Content-Length: " + str(len(data)).encode() + b"\r\nConnection: close\r\n\r\n" + data)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(req)
        out = b""
        while chunk := s.recv(4096):
            out += chunk
    return out.decode(errors="replace")


def _lines(rp) -> list[str]:
    return rp.stderr_path.read_text(errors="replace").splitlines()


def test_forged_user_names_stay_one_line(make_daemon, monkeypatch):
    # journald's stream protocol: each line begins with "<N>"; a "<3>" after a newline in a user
    # name would have been a second record with priority "error".
    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
    port = free_port()
    rp = make_daemon(extra=(f'\n[[source]]\ntype = "dovecot-auth-policy"\nname = "ap"\n'
                            f'listen = ["127.0.0.1:{port}"]\n'))
    rp.start()
    wait_until(lambda: port_accepts("127.0.0.1", port), what="auth policy listener")

    # The control protocol refuses control characters in a user name outright (control_codec);
    # the refusal itself is one escaped line.
    r = rp.cli("allow", "127.0.0.61", "--user", "x\nrevoke ip=192.0.2.9")
    assert r.returncode == 2 and "control characters" in r.stderr, r.stderr
    assert "\nrevoke" not in r.stderr, r.stderr
    reply = _post_report(port, {"login": "bob\n<3>relaypermit: forged", "remote": "127.0.0.62",
                                "success": True, "policy_reject": False, "protocol": "imap"})
    assert " 2" in reply.splitlines()[0], reply
    rp.wait_permitted("127.0.0.62")
    wait_until(lambda: any("127.0.0.62" in line for line in _lines(rp)), what="the grant line")

    lines = [line for line in _lines(rp) if not line.startswith("--- start")]
    assert all(re.match(r"<[0-7]>", line) for line in lines), lines
    assert not any(re.match(r"(<[0-7]>)?(revoke |relaypermit: forged)", line) for line in lines), lines
    assert not any(line.startswith("<6>grant ip=127.0.0.61 ") for line in lines), lines
    second = [line for line in lines if line.startswith("<6>grant ip=127.0.0.62 ")]
    assert len(second) == 1, lines
    assert 'user="bob\\n<3>relaypermit: forged"' in second[0], second[0]


def _config_check(binary, config) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), "config", "check", "--config", str(config)],
                          capture_output=True, text=True, timeout=60)


def test_config_check_warns_about_readable_secrets(rp_binary, testdir):
    pw = testdir / "store.pw"
    pw.write_text("s3cret-from-file\n")
    header = testdir / "api.header"
    header.write_text("X-Relay-Key: hdr-s3cret\n")
    cfg = testdir / "secrets.toml"
    cfg.write_text(f"state_dir = {toml_str(str(testdir / 'state'))}\n"
                   'store = "redis://relay:in/line@s3cret@127.0.0.1:6379/0"\n'
                   f"store_password_file = {toml_str(str(pw))}\n"
                   f'\n[[source]]\ntype = "dovecot-auth-policy"\nlisten = ["127.0.0.1:{free_port()}"]\n'
                   f"api_header_file = {toml_str(str(header))}\n")
    for f in (pw, header, cfg):
        os.chmod(f, 0o600)
    r = _config_check(rp_binary, cfg)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "warning" not in r.stdout + r.stderr

    for f in (pw, header, cfg):
        os.chmod(f, 0o644)
    r = _config_check(rp_binary, cfg)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    for what, f in (("store_password_file", pw), ("api_header_file", header), ("the config file", cfg)):
        assert re.search(rf"warning: {what}.* {re.escape(str(f))} .*readable by others", out), out
    for secret in ("in/line@s3cret", "s3cret-from-file", "hdr-s3cret"):
        assert secret not in out, out


def test_config_errors_never_show_a_store_password(rp_binary, testdir):
    for url, secret in (("Redis://relay:pa/ss@127.0.0.1/0", "pa/ss"),
                        ("postgres:/rp:s3cr3t@db/relay", "s3cr3t"),
                        ("rp:s3cr3t@db:5432/relay", "s3cr3t"),
                        ("redis://relay:hunter2@127.0.0.1:99999/0", "hunter2"),
                        ("redis://relay:pw@127.0.0.1/0?timeout=x&password=hunter2", "hunter2")):
        cfg = testdir / "bad-store.toml"
        cfg.write_text(f"state_dir = {toml_str(str(testdir / 'state'))}\nstore = {toml_str(url)}\n")
        r = _config_check(rp_binary, cfg)
        assert r.returncode != 0, (url, r.stdout)
        assert secret not in r.stdout + r.stderr, (url, r.stdout + r.stderr)


def test_symlinked_state_dir_is_refused(make_daemon, testdir):
    target = testdir / "elsewhere"
    target.mkdir(mode=0o700)
    rp = make_daemon(extra="user = \"nobody\"\n")
    rp.state_dir = rp.root / "state-link"
    os.symlink(target, rp.state_dir)
    rp.write_config()
    r = subprocess.run([str(rp.binary), "run", "--config", str(rp.config)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2, r.stderr
    assert "symbolic link" in r.stderr, r.stderr
    st = os.stat(target)
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (0, 0, 0o700)
