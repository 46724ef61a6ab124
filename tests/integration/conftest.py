"""pytest fixtures for the black-box integration tests (real Dovecot 2.3 and Postfix 3.7).

Run: python3 -m pytest -q tests/integration --relaypermit=build/src/cli/relaypermit
(ctest's `integration` test does exactly this). Needs root and the Debian packages that
`scripts/install-deps.sh --test` installs; tests skip with the reason when those are missing.
Set RP_IT_KEEP=1 to keep the work directory (configs, logs) for inspection.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from rp_harness import Dovecot, Postfix, Relaypermit, ask_tcpserver, free_port, make_dir, tail, wait_until

USERS = {"alice": "alice-secret", "bob": "bob-secret", "carol": "carol-secret"}


def pytest_addoption(parser):
    parser.addoption("--relaypermit", action="store", default=os.environ.get("RELAYPERMIT_BIN"),
                     help="path to the relaypermit binary under test (or $RELAYPERMIT_BIN)")


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _failed(request) -> bool:
    rep = getattr(request.node, "rep_call", None)
    return rep is None or rep.failed


def _require_root():
    if os.geteuid() != 0:
        pytest.skip("integration tests need root (they start private Dovecot and Postfix)")


def _require_programs(*names):
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        pytest.skip(f"missing {', '.join(missing)}: run scripts/install-deps.sh --test")


@pytest.fixture(scope="session")
def rp_binary(pytestconfig) -> Path:
    value = pytestconfig.getoption("relaypermit")
    if not value:
        pytest.skip("no --relaypermit=PATH (or RELAYPERMIT_BIN) given")
    path = Path(value).resolve()
    if not os.access(path, os.X_OK):
        pytest.fail(f"--relaypermit={value}: not an executable file")
    return path


@pytest.fixture(scope="session")
def unit_tests(rp_binary) -> Path:
    """The rp_unit_tests binary run against real servers by some tests: RP_UNIT_TESTS if set
    (scripts/test.sh points it at the sanitized build's, so the release build needs only the
    daemon), else the one of the daemon's own build."""
    override = os.environ.get("RP_UNIT_TESTS")
    if override:
        if not os.access(override, os.X_OK):
            pytest.fail(f"RP_UNIT_TESTS={override}: not an executable file")
        return Path(override).resolve()
    for candidate in (rp_binary.parent / "tests" / "rp_unit_tests",
                      rp_binary.parent.parent.parent / "tests" / "rp_unit_tests"):
        if os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(f"rp_unit_tests not found next to {rp_binary} (build the rp_unit_tests target)")


@pytest.fixture(scope="session")
def workdir():
    """A world-traversable session directory (pytest's tmp dirs are 0700, but Dovecot's and
    Postfix's unprivileged processes must reach their files)."""
    d = Path(tempfile.mkdtemp(prefix="rpit-"))
    os.chmod(d, 0o755)
    yield d
    if os.environ.get("RP_IT_KEEP"):
        os.write(2, f"\nintegration work directory kept: {d}\n".encode())
    else:
        shutil.rmtree(d, ignore_errors=True)


_test_counter = itertools.count(1)


@pytest.fixture
def testdir(workdir, request) -> Path:
    """The test's own directory. Short names: unix socket paths must stay under 108 bytes."""
    d = make_dir(workdir / f"t{next(_test_counter):02d}")
    (d / "TEST").write_text(request.node.nodeid + "\n")
    return d


@pytest.fixture(scope="session")
def policy_port() -> int:
    """The policy port every test's relaypermit listens on (the session's Postfix asks it)."""
    return free_port()


@pytest.fixture(scope="session")
def policy_socket(workdir) -> Path:
    """The unix policy socket every test's relaypermit listens on (the session's Postfix asks it
    through its second smtpd)."""
    return workdir / "policy.sock"


@pytest.fixture(scope="session")
def postfix(workdir, policy_port, policy_socket):
    _require_root()
    _require_programs("postfix", "postconf", "script")
    pf = Postfix(workdir / "postfix", f"inet:127.0.0.1:{policy_port}", policy_socket)
    try:
        pf.start()
        yield pf
    finally:
        pf.stop()


@pytest.fixture
def dovecot(testdir, request):
    _require_root()
    _require_programs("dovecot", "doveadm", "curl")
    dc = Dovecot(testdir / "dc", USERS)
    try:
        dc.start()
        yield dc
    finally:
        dc.stop()
        if _failed(request):
            print(f"\n--- dovecot log ({dc.log_path}) ---\n{tail(dc.log_path)}")


@pytest.fixture
def make_daemon(rp_binary, testdir, policy_port, policy_socket, request):
    """make_daemon(sources=[...], ttl=..., ...) -> Relaypermit (not started). All daemons made
    here are stopped at teardown, whatever the outcome."""
    made: list[Relaypermit] = []

    def make(name: str = "rp", **kw) -> Relaypermit:
        kw.setdefault("policy_port", policy_port)
        kw.setdefault("policy_socket", policy_socket)
        d = Relaypermit(rp_binary, testdir / name, **kw)
        made.append(d)
        return d

    yield make
    for d in made:
        try:
            d.stop()
        except Exception:  # noqa: BLE001 - teardown must reach every daemon
            pass
        if _failed(request):
            print(f"\n--- relaypermit stderr ({d.stderr_path}) ---\n{tail(d.stderr_path, 60)}")


@pytest.fixture
def daemon(make_daemon, dovecot):
    """A running relaypermit following the test's Dovecot log, ttl 30m."""
    d = make_daemon(sources=[dovecot.log_path])
    d.start()
    return d


@pytest.fixture(autouse=True)
def _postfix_log_on_failure(request):
    yield
    if "postfix" in request.fixturenames and _failed(request):
        pf = request.getfixturevalue("postfix")
        print(f"\n--- postfix log ({pf.log_path}) ---\n{tail(pf.log_path, 30)}")


@pytest.fixture
def tcpserver():
    """Starts tcpserver on a free loopback port: tcpserver(*options, program_argv) -> port.
    Stopped at the end of the test."""
    if shutil.which("tcpserver") is None:
        pytest.skip("tcpserver missing: apt-get install ucspi-tcp")
    procs: list = []

    def start(*args) -> int:
        port = free_port()
        p = subprocess.Popen(["tcpserver", "-q", "-R", "-H", "-l", "0", *args[:-1], "127.0.0.1", str(port),
                              *args[-1]], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        procs.append(p)
        wait_until(lambda: ask_tcpserver("127.0.0.9", port) is not None, 10, what="tcpserver listening")
        return port
    yield start
    for p in procs:
        p.terminate()
        p.wait(10)
