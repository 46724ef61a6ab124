"""The harness's real servers behave as the relaypermit tests assume (no relaypermit needed):
Dovecot writes its own log format for POP3/IMAP logins and failures, and Postfix refuses to
relay for the test clients when the policy service says nothing."""

import re


LOGIN_RE = r"^\w{3} [ \d]\d \d\d:\d\d:\d\d (pop3|imap)-login: Info: Login: user=<(\w+)>, method=PLAIN, rip=([\d.]+), "


def test_dovecot_logs_logins_in_its_own_format(dovecot):
    r = dovecot.login_pop3("alice", "alice-secret", "127.0.0.2")
    assert r.returncode == 0, r.stderr
    r = dovecot.login_imap("bob", "bob-secret", "127.0.0.3")
    assert r.returncode == 0, r.stderr
    r = dovecot.login_pop3("carol", "wrong", "127.0.0.4")
    assert r.returncode != 0
    dovecot.wait_log("rip=127.0.0.4")
    logins = [m.groups() for m in re.finditer(LOGIN_RE, dovecot.log_text(), re.M)]
    assert logins == [("pop3", "alice", "127.0.0.2"), ("imap", "bob", "127.0.0.3")]
    assert "pop3-login: Info: Disconnected" in dovecot.log_text()
    assert "auth failed" in dovecot.log_text()


def test_dovecot_log_reopen_after_rename(dovecot):
    old = dovecot.log_path.with_name("dovecot.log.1")
    dovecot.log_path.rename(old)
    dovecot.reopen_log()
    assert dovecot.login_imap("alice", "alice-secret", "127.0.0.2").returncode == 0
    dovecot.wait_log("Login: user=<alice>")
    assert "Login: user=<alice>" not in old.read_text()


def test_postfix_without_policy_answer_refuses_relay(postfix):
    # No relaypermit listens (or one without permits does): default_action=DUNNO, then
    # reject_unauth_destination.
    code, msg = postfix.rcpt("127.0.0.3")
    assert code == 554 and "Relay access denied" in msg, (code, msg)
    # Local delivery is not relaying.
    code, msg = postfix.rcpt("127.0.0.3", rcpt="postmaster@localhost")
    assert code == 250, (code, msg)
