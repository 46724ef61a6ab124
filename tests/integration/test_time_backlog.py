"""Old logins never get fresh permits (issue 12 item 1), through the real binary.

A first start reads the whole log file (a backlog). Lines in every time form that version e10e7cb
recognised but did not parse (Dovecot's log_timestamp = "%Y-%m-%d %H:%M:%S " with and without
fractions, Dovecot 1.x's own log, a [[pattern]] whose time is inside the line, and the other
forms added with them) must be aged by their own time: months old, no permit. A line without a
parseable time grants only when it is appended live, never from the backlog, and the refusal is
counted in `status`. The tests wait for conditions (the counters), never for fixed times.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

from rp_harness import wait_until

OLD = time.time() - 90 * 86400  # months-old logins
DOVECOT_FIELDS = "method=PLAIN, rip={ip}, lip=192.0.2.250, mpid=1, session=<x>"

PATTERN = r'''
[[pattern]]
name = "mypop"
regex = 'mypop\[\d+\]: login ok user=(?<user>\S+) at (?<time>.+?) from (?<ip>[0-9a-fA-F:.]+)$'
'''


def local(fmt: str, t: float) -> str:
    return time.strftime(fmt, time.localtime(t))


def utc(fmt: str, t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime(fmt)


def dovecot_login(ip: str, user: str = "old") -> str:
    return f"imap-login: Info: Login: user=<{user}>, " + DOVECOT_FIELDS.format(ip=ip)


def old_lines() -> dict[str, str]:
    """One months-old login per formerly unparsed form, by address."""
    t = OLD
    return {
        # Dovecot's own log, log_timestamp = "%Y-%m-%d %H:%M:%S " (local time)
        "192.0.2.11": f"{local('%Y-%m-%d %H:%M:%S', t)} " + dovecot_login("192.0.2.11"),
        # ... with microseconds (log_timestamp = "%Y-%m-%d %H:%M:%S.%{usecs} ")
        "192.0.2.12": f"{local('%Y-%m-%d %H:%M:%S', t)}.123456 " + dovecot_login("192.0.2.12"),
        # Dovecot 1.x's own log: the time after "dovecot: "
        "192.0.2.13": f"dovecot: {local('%b %d %H:%M:%S', t)} Info: imap-login: Login: user=<old>, "
                      + DOVECOT_FIELDS.format(ip="192.0.2.13"),
        # a [[pattern]] whose time is not at the start of the line
        "192.0.2.14": f"mypop[7]: login ok user=old at {utc('%Y-%m-%dT%H:%M:%SZ', t)} from 192.0.2.14",
        # journalctl -o short-unix / syslog-ng ts-format(unix)
        "192.0.2.15": f"{int(t)}.250000 mx1 dovecot: imap-login: Login: user=<old>, "
                      + DOVECOT_FIELDS.format(ip="192.0.2.15"),
        # runit svlogd -tt (UTC)
        "192.0.2.16": f"{utc('%Y-%m-%d_%H:%M:%S', t)}.12345 dovecot: imap-login: Login: user=<old>, "
                      + DOVECOT_FIELDS.format(ip="192.0.2.16"),
        # journalctl -o short-iso (zone without a colon)
        "192.0.2.17": f"{utc('%Y-%m-%dT%H:%M:%S', t)}+0000 mx1 dovecot: imap-login: Login: user=<old>, "
                      + DOVECOT_FIELDS.format(ip="192.0.2.17"),
    }


UNTIMED_IP = "192.0.2.30"
# Dovecot with log_timestamp = "": no time anywhere in the line.
UNTIMED = "imap-login: Info: Login: user=<untimed>, " + DOVECOT_FIELDS.format(ip=UNTIMED_IP)
RECENT_IP = "192.0.2.31"


def status(d) -> dict:
    r = d.cli("status", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def test_backlog_ages_every_time_form_and_refuses_untimed_lines(make_daemon, testdir):
    log = testdir / "mail.log"
    old = old_lines()
    recent = f"{local('%Y-%m-%d %H:%M:%S', time.time() - 60)} " + dovecot_login(RECENT_IP, "recent")
    log.write_text("\n".join([*old.values(), UNTIMED, recent]) + "\n")

    d = make_daemon(sources=[log], extra=PATTERN)
    d.start()
    # The backlog (one batch) was read when the recent login is granted.
    d.wait_permitted(RECENT_IP)
    for ip in [*old, UNTIMED_IP]:
        assert d.check(ip).returncode == 1, f"{ip} was granted from the backlog: {d.permit_for(ip)}"
    wait_until(lambda: status(d).get("untimed") == 1, what="the untimed backlog line to be counted")
    # scan --explain says where each time came from
    r = d.cli("scan", "--explain", log)
    assert r.returncode == 0, r.stderr
    explained = {row.split("\t")[0]: row.split("\t")[5] for row in r.stdout.splitlines()}
    assert explained[UNTIMED_IP] == "reading time: no time in line", r.stdout
    assert explained["192.0.2.14"] == "line (captured): rfc3339", r.stdout
    assert all(explained[ip].startswith("line") for ip in old), r.stdout

    # The same untimed line appended live (after the source reached the end): granted.
    with open(log, "a") as f:
        f.write(UNTIMED + "\n")
    d.wait_permitted(UNTIMED_IP)
    assert status(d).get("untimed") == 1
    for ip in old:
        assert d.check(ip).returncode == 1
