"""`relaypermit config check` and `config show` as an administrator runs them, and relaypermit(8)
against the binary's own command table (`relaypermit --help`, `relaypermit help COMMAND`), so
the man page cannot drift from the commands."""

import json
import re
import subprocess
from pathlib import Path

MAN8 = Path(__file__).resolve().parents[2] / "docs" / "man" / "relaypermit.8"


def run_bin(binary, *args):
    return subprocess.run([str(binary), *map(str, args)], capture_output=True, text=True, timeout=60)


def help_commands(binary) -> dict:
    """Command name -> its options, from `relaypermit --help` and `relaypermit help COMMAND`."""
    r = run_bin(binary, "--help")
    assert r.returncode == 0, r.stderr
    names = []
    in_table = False
    for line in r.stdout.splitlines():
        if line == "commands:":
            in_table = True
        elif in_table and line.startswith("  "):
            # "config check  validate ...": the name is the lowercase words before the doc's gap
            head = line[2:].split("  ")[0].split()
            names.append(" ".join(w for w in head if re.fullmatch(r"[a-z]+", w)))
        elif in_table and line == "":
            break
    out = {}
    for name in names:
        h = run_bin(binary, "help", *name.split())
        assert h.returncode == 0, (name, h.stderr)
        out[name] = set(re.findall(r"^  (--[a-z-]+)", h.stdout, re.M))
    return out


def man_commands() -> dict:
    """Command name -> the text of its entries in the COMMANDS section of relaypermit(8)."""
    out: dict = {}
    section, nest, tag_next, current = "", 0, False, None
    for line in MAN8.read_text().splitlines():
        if line.startswith(".SH "):
            section, current = line[4:], None
        if section != "COMMANDS":
            tag_next = line.startswith(".TP")
            continue
        if line.startswith(".RS"):
            nest += 1
        if line.startswith(".RE"):
            nest -= 1
        if tag_next and nest == 0 and line.startswith(".B "):
            words = []
            for w in line[3:].split():
                if not re.fullmatch(r"[a-z]+", w):
                    break
                words.append(w)
            current = " ".join(words)
            out.setdefault(current, "")
        if current is not None:
            out[current] += line.replace("\\-", "-") + "\n"
        tag_next = line.startswith(".TP")
    return out


def test_man_page_lists_exactly_the_command_table(rp_binary):
    table = help_commands(rp_binary)
    man = man_commands()
    assert set(table) - {"help"} <= set(man), f"relaypermit(8) lacks {sorted(set(table) - set(man))}"
    assert set(man) - {"help"} == set(table) - {"help"}, f"relaypermit(8) documents {sorted(set(man) - set(table))}"
    for name, options in table.items():
        missing = [o for o in sorted(options - {"--config"}) if o not in man[name]]
        assert not missing, f"relaypermit(8), {name}: options {missing} not documented"


def test_config_check_reports_every_error_in_one_run(rp_binary, testdir):
    cfg = testdir / "bad.toml"
    cfg.write_text('ttl = "30x"\nipv6_prefix = 200\nnonsense = 1\n[[source]]\ntype = "whoson"\n'
                   'listen = "unix:/run/w"\n[limits]\nwindow = "rolling"\n[socketmap]\nstatic = "rel"\n')
    r = run_bin(rp_binary, "config", "check", "--config", cfg)
    assert r.returncode == 2, r
    lines = [l for l in r.stderr.splitlines() if l.startswith("relaypermit: ")]
    assert len(lines) == 6, r.stderr
    for part in ("bad.toml:1: ttl", "bad.toml:2: ipv6_prefix", "bad.toml:3: nonsense", "listens on tcp or udp",
                 "limits.window", "socketmap.static"):
        assert part in r.stderr, (part, r.stderr)
    # In file order.
    nums = [int(re.search(r"bad\.toml:(\d+):", l).group(1)) for l in lines]
    assert nums == sorted(nums), lines


def test_config_check_exit_codes_and_checked_files(rp_binary, testdir):
    log = testdir / "mail.log"
    log.write_text("")
    allow = testdir / "static.allow"
    allow.write_text("192.0.2.0/24\n")
    static = testdir / "relaypermit-static"
    static.write_text("Connect:192.0.2.7 RELAY\n")
    cfg = testdir / "ok.toml"
    body = (f'allow_file = ["{allow}"]\nmax_lifetime = "2h"\n[[source]]\ntype = "file"\npath = "{log}"\n'
            f'[socketmap]\nlisten = ["127.0.0.1:0"]\nstatic = "{static}"\n')
    cfg.write_text(body)
    r = run_bin(rp_binary, "config", "check", "--config", cfg)
    assert (r.returncode, r.stdout.splitlines()[0]) == (0, f"ok: {cfg}"), r
    allow.write_text("192.0.2.0/24\nnot-a-network\n")
    r = run_bin(rp_binary, "config", "check", "--config", cfg)
    assert r.returncode == 2 and f"{allow}:2" in r.stderr, r
    allow.write_text("192.0.2.0/24\n")
    static.write_text("Connect:192.0.2.7\n")  # no value
    r = run_bin(rp_binary, "config", "check", "--config", cfg)
    assert r.returncode == 2 and "[socketmap] static" in r.stderr, r
    static.unlink()
    r = run_bin(rp_binary, "config", "check", "--config", cfg)
    assert r.returncode == 2 and str(static) in r.stderr, r
    cfg.write_text(body.replace('max_lifetime = "2h"', 'max_lifetime = "2d"'))
    r = run_bin(rp_binary, "config", "check", "--config", cfg)
    assert r.returncode == 2 and 'max_lifetime = "2d" must lie between ttl (30m) and max_ttl (1d)' in r.stderr, r
    r = run_bin(rp_binary, "config", "check", "--config", testdir / "missing.toml")
    assert r.returncode == 2 and "missing.toml" in r.stderr, r
    # check --json with the daemon stopped: the offline verdict as JSON, from the same file.
    cfg.write_text(f'state_dir = "{testdir / "state"}"\ncontrol_socket = "{testdir / "c.sock"}"\n'
                   f'allow_file = ["{allow}"]\n')
    r = run_bin(rp_binary, "check", "192.0.2.9", "--json", "--config", cfg)
    assert r.returncode == 0, r
    v = json.loads(r.stdout)
    assert v["permitted"] is True and v["daemon"] is False and v["kind"] == "allow", v


def test_config_show_masks_secrets_and_parses_back(rp_binary, testdir):
    header = testdir / "header"
    header.write_text("X-Relay-Key: hunter2-header\n")
    header.chmod(0o600)
    cfg = testdir / "show.toml"
    cfg.write_text('store = "redis://u:hunter2@127.0.0.1:6379/0"\nttl = "5m"\n'
                   '[[source]]\ntype = "dovecot-auth-policy"\nlisten = "127.0.0.1:0"\napi_header = "X-Key: hunter2"\n'
                   '[limits]\nrecipients = "100/1h"\n')
    cfg.chmod(0o600)
    r = run_bin(rp_binary, "config", "show", "--config", cfg)
    assert r.returncode == 0, r
    assert "hunter2" not in r.stdout, r.stdout
    assert 'store = "redis://u:***@127.0.0.1:6379/0"' in r.stdout or "redis://***@" in r.stdout, r.stdout
    assert 'api_header = "***"' in r.stdout and 'state_dir = "/var/lib/relaypermit"' in r.stdout, r.stdout
    assert "\n[limits]\nrecipients = \"100/1h\"\n" in r.stdout, r.stdout
    n = run_bin(rp_binary, "config", "show", "--non-default", "--config", cfg)
    assert n.returncode == 0 and "state_dir" not in n.stdout and 'ttl = "5m"' in n.stdout, n
    assert "hunter2" not in n.stdout, n.stdout
    # Without secrets, the output is a configuration that shows the same again.
    plain = testdir / "plain.toml"
    plain.write_text('ttl = "5m"\nmax_lifetime = "1h"\n[[source]]\ntype = "whoson"\nlisten = "tcp:127.0.0.1:0"\n'
                     '[metrics]\nlisten = "127.0.0.1:0"\n')
    first = run_bin(rp_binary, "config", "show", "--config", plain)
    assert first.returncode == 0, first
    again = testdir / "again.toml"
    again.write_text(first.stdout)
    second = run_bin(rp_binary, "config", "show", "--config", again)
    assert (second.returncode, second.stdout) == (0, first.stdout), second.stderr
