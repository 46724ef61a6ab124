"""Socket activation: systemd-socket-activate (package systemd) holds the policy listener and
passes it to `relaypermit run` the way relaypermit-policy.socket does (LISTEN_FDS, LISTEN_PID,
LISTEN_FDNAMES). The daemon takes the passed socket for its configured endpoint instead of
binding (the connection that triggered the start is answered), and closes a passed socket that no
endpoint has. Every wait is for a condition with a deadline.
"""

from __future__ import annotations

import shutil
import signal
import subprocess

import pytest

from rp_harness import PolicyClient, free_port, port_accepts, tail, unix_accepts, wait_until

ACTIVATE = shutil.which("systemd-socket-activate")


@pytest.fixture
def activated(make_daemon):
    if ACTIVATE is None:
        pytest.skip("systemd-socket-activate is missing: apt-get install systemd")
    policy = free_port()
    stray = free_port()
    d = make_daemon(policy_port=policy, log_level="info")
    # The harness config has the TCP endpoint plus a unix socket the daemon binds itself.
    err = open(d.stderr_path, "a")
    proc = subprocess.Popen([ACTIVATE, "-l", f"127.0.0.1:{policy}", "-l", f"127.0.0.1:{stray}",
                             "--fdname=policy:stray",
                             str(d.binary), "run", "--config", str(d.config)],
                            stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    err.close()
    d.proc = proc  # make_daemon's teardown stops it
    yield d, policy, stray
    if proc.poll() is None:
        proc.terminate()
        proc.wait(10)


def wait_activator_listening(d, *ports):
    """systemd-socket-activate says "Listening on ADDR as FD." for each socket before it waits;
    connecting earlier would race its bind."""
    wait_until(lambda: all(f"127.0.0.1:{p}" in d.stderr_path.read_text() for p in ports),
               what="systemd-socket-activate to listen")


def test_daemon_serves_the_passed_policy_listener(activated):
    d, policy, stray = activated
    wait_activator_listening(d, policy, stray)
    # This connection makes systemd-socket-activate exec the daemon, which finds it waiting in the
    # passed socket's queue: nothing was refused while it started.
    with PolicyClient(f"127.0.0.1:{policy}", timeout=30) as c:
        assert c.ask("127.0.0.9")["action"] == "DUNNO"
        wait_until(lambda: unix_accepts(str(d.control_socket)), what="the control socket")
        r = d.cli("allow", "127.0.0.9", "--user", "alice")
        assert r.returncode == 0, r.stdout + r.stderr
        assert c.ask("127.0.0.9")["action"].startswith("OK")
    log = d.stderr_path.read_text()
    assert f"tcp:127.0.0.1:{policy}: using the socket passed by the service manager" in log, tail(d.stderr_path)
    # The passed socket nobody configured is logged and closed: its port no longer accepts.
    wait_until(lambda: "closing descriptor" in d.stderr_path.read_text(), what="the stray socket to be closed")
    assert "(stray)" in d.stderr_path.read_text()
    wait_until(lambda: not port_accepts("127.0.0.1", stray), what="the stray port to stop accepting")
    # The unix endpoint of the same [policy] was bound by the daemon itself.
    with PolicyClient(f"unix:{d.policy_socket}") as c:
        assert c.ask("127.0.0.9")["action"].startswith("OK")
    assert d.running()


def test_reload_of_a_changed_policy_keeps_the_passed_socket(activated):
    """A changed [policy] that keeps its endpoint is reopened after its predecessor closed; the
    probe and the new listener take the passed socket again (it stays open in the daemon)."""
    d, policy, stray = activated
    wait_activator_listening(d, policy, stray)
    with PolicyClient(f"127.0.0.1:{policy}", timeout=30) as c:
        assert c.ask("127.0.0.9")["action"] == "DUNNO"
    d.config.write_text(d.config.read_text().replace("[policy]\n", "[policy]\nmax_clients = 100\n"))
    d.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: "configuration reloaded" in d.stderr_path.read_text(), what="the reload")
    with PolicyClient(f"127.0.0.1:{policy}", timeout=30) as c:
        assert c.ask("127.0.0.9")["action"] == "DUNNO"
    assert d.stop() == 0
