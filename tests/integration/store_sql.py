"""Private PostgreSQL 15 and MariaDB servers for the shared-store tests (Debian packages).

Each server lives in its own directory (data, unix socket, log), listens on a free 127.0.0.1
port and runs in the foreground as a child of the test process, so kill() can SIGKILL it for
outage tests and start() brings it back on the same port with the same data. Both get a
database `relaypermit` and a password-protected user `relaypermit`; `url` is what a daemon's
`store =` takes. The superuser is reached through the unix socket without a password
(PostgreSQL: trust for local connections; MariaDB: root by unix_socket authentication), so no
password ever appears on a command line.

    with PostgresServer(workdir / "pg", "secret") as pg:
        pg.url                      # postgresql://relaypermit:secret@127.0.0.1:PORT/relaypermit
        pg.sql("SELECT count(*) FROM relaypermit_permits")   # [('0',)]

Durability settings trade power-loss safety for speed (no fsync), which a test does not need;
a SIGKILLed server still keeps every committed transaction.
Security: the servers run as postgres (PostgreSQL refuses root) or root (MariaDB) and only
listen on 127.0.0.1 and their private unix socket.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import urllib.parse
from pathlib import Path
from typing import Optional

from rp_harness import free_port, make_dir, port_accepts, run, tail, wait_until

PG_BIN = Path("/usr/lib/postgresql/15/bin")
DB_NAME = "relaypermit"
DB_USER = "relaypermit"


def make_self_signed(directory: Path, owner: Optional[str] = None) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1/localhost: (cert, key) in directory."""
    cert, key = directory / "server.crt", directory / "server.key"
    run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
         "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", key, "-out", cert], check=True)
    os.chmod(key, 0o600)
    if owner is not None:
        pw = pwd.getpwnam(owner)
        for p in (cert, key):
            os.chown(p, pw.pw_uid, pw.pw_gid)
    return cert, key


class _Server:
    """Common lifecycle: start() runs the server process, waits until a login works."""

    scheme = ""

    def __init__(self, workdir: Path, password: str, tls: bool = False):
        self.root = make_dir(workdir)
        self.password = password
        self.tls = tls
        self.port = free_port()
        self.log_path = self.root / "server.log"
        self.proc: Optional[subprocess.Popen] = None
        self.cert: Optional[Path] = None

    @property
    def url(self) -> str:
        pw = urllib.parse.quote(self.password, safe="")
        return f"{self.scheme}://{DB_USER}:{pw}@127.0.0.1:{self.port}/{DB_NAME}"

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _spawn(self, argv: list, user: Optional[str]) -> None:
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, user=user,
                                         start_new_session=True)
        finally:
            log.close()

    def _wait_ready(self, probe) -> None:
        def ready():
            if not self.running():
                raise RuntimeError(f"{type(self).__name__} exited:\n{tail(self.log_path)}")
            return port_accepts("127.0.0.1", self.port) and probe()
        wait_until(ready, timeout=30, what=f"{type(self).__name__} on port {self.port}",
                   interval=0.05)

    def stop(self) -> None:
        """Clean shutdown (SIGTERM); no-op when not running."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash or outage; start() restarts on the same port and data."""
        if self.proc is None:
            return
        # The whole process group: PostgreSQL's children would otherwise keep the port.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


class PostgresServer(_Server):
    """A private PostgreSQL 15: initdb into workdir/data (as user postgres), postgres on
    127.0.0.1:port with its unix socket in workdir/sock. tls=True also enables SSL with a
    self-signed certificate (`cert`), so `?sslmode=require` works."""

    scheme = "postgresql"

    def __init__(self, workdir: Path, password: str, tls: bool = False):
        super().__init__(workdir, password, tls)
        os.chown(self.root, pwd.getpwnam("postgres").pw_uid, -1)
        self.data = self.root / "data"
        self.sock = make_dir(self.root / "sock", owner="postgres")

    def _initdb(self) -> None:
        r = run(["runuser", "-u", "postgres", "--", PG_BIN / "initdb", "-D", self.data,
                 "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256",
                 "--encoding=UTF8", "--locale=C", "--no-sync", "--no-instructions"], timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{r.stdout}{r.stderr}")
        if self.tls:
            self.cert, _ = make_self_signed(self.data, owner="postgres")

    def _provision(self) -> None:
        pw = self.password.replace("'", "''")
        self.sql(f"CREATE ROLE {DB_USER} LOGIN PASSWORD '{pw}'")
        self.sql(f"CREATE DATABASE {DB_NAME} OWNER {DB_USER}")

    def start(self) -> None:
        fresh = not (self.data / "PG_VERSION").exists()
        if fresh:
            self._initdb()
        argv = [PG_BIN / "postgres", "-D", self.data, "-c", "listen_addresses=127.0.0.1",
                "-c", f"port={self.port}", "-c", f"unix_socket_directories={self.sock}",
                "-c", "fsync=off", "-c", "full_page_writes=off", "-c", "max_connections=60",
                "-c", "shared_buffers=16MB", "-c", "logging_collector=off",
                "-c", f"ssl={'on' if self.tls else 'off'}"]
        self._spawn(argv, user="postgres")
        self._wait_ready(lambda: self._query("SELECT 1", check=False) is not None)
        if fresh:
            self._provision()

    def _query(self, query: str, database: str = "postgres", check: bool = True):
        r = run(["psql", "-h", self.sock, "-p", self.port, "-U", "postgres", "-d", database,
                 "-X", "-A", "-t", "-q", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", query],
                timeout=60)
        if r.returncode != 0:
            if check:
                raise RuntimeError(f"psql: {query!r} failed:\n{r.stderr}")
            return None
        return [tuple(line.split("\t")) for line in r.stdout.splitlines() if line]

    def sql(self, query: str, database: str = DB_NAME) -> list[tuple[str, ...]]:
        """Runs query as the superuser in `database`; rows as tuples of text (NULL = '')."""
        if database == DB_NAME and not self._db_exists():
            database = "postgres"
        return self._query(query, database)

    def _db_exists(self) -> bool:
        return bool(self._query(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'",
                                "postgres"))


class MariaDbServer(_Server):
    """A private MariaDB (10.11 on Debian 12): mariadb-install-db into workdir/data, mariadbd
    as root on 127.0.0.1:port with its unix socket workdir/mysql.sock. tls=True starts it with
    a self-signed certificate (`cert`), so `?ssl=true` works."""

    scheme = "mysql"

    def __init__(self, workdir: Path, password: str, tls: bool = False):
        super().__init__(workdir, password, tls)
        self.data = self.root / "data"
        self.sock = self.root / "mysql.sock"

    def start(self) -> None:
        fresh = not (self.data / "mysql").exists()
        if fresh:
            r = run(["mariadb-install-db", "--no-defaults", f"--datadir={self.data}", "--user=root",
                     "--auth-root-authentication-method=socket", "--skip-test-db",
                     "--skip-name-resolve", "--innodb-log-file-size=8M",
                     "--innodb-buffer-pool-size=16M", "--innodb-fast-shutdown=3"], timeout=120)
            if r.returncode != 0:
                raise RuntimeError(f"mariadb-install-db failed:\n{r.stdout}{r.stderr}")
            if self.tls:
                self.cert, _ = make_self_signed(self.root)
        argv = ["mariadbd", "--no-defaults", f"--datadir={self.data}", "--user=root",
                f"--port={self.port}", "--bind-address=127.0.0.1", f"--socket={self.sock}",
                f"--pid-file={self.root / 'mariadbd.pid'}", "--skip-name-resolve",
                "--innodb-flush-log-at-trx-commit=2", "--innodb-log-file-size=8M",
                "--innodb-buffer-pool-size=16M", "--skip-log-bin", "--max-connections=100",
                "--innodb-doublewrite=0", "--innodb-fast-shutdown=3"]
        if self.tls:
            argv += [f"--ssl-cert={self.root / 'server.crt'}", f"--ssl-key={self.root / 'server.key'}"]
        self._spawn(argv, user=None)
        self._wait_ready(lambda: self._query("SELECT 1", check=False) is not None)
        if fresh:
            self._provision()

    def _provision(self) -> None:
        pw = self.password.replace("\\", "\\\\").replace("'", "\\'")
        self.sql(f"CREATE DATABASE {DB_NAME} CHARACTER SET utf8mb4")
        self.sql(f"CREATE USER '{DB_USER}'@'127.0.0.1' IDENTIFIED BY '{pw}'")
        self.sql(f"CREATE USER '{DB_USER}'@'localhost' IDENTIFIED BY '{pw}'")
        for host in ("127.0.0.1", "localhost"):
            self.sql(f"GRANT ALL PRIVILEGES ON {DB_NAME}.* TO '{DB_USER}'@'{host}'")

    def _query(self, query: str, database: str = "", check: bool = True):
        argv = ["mariadb", "--no-defaults", f"--socket={self.sock}", "-u", "root", "-B", "-N",
                "-e", query]
        if database:
            argv.append(database)
        r = run(argv, timeout=60)
        if r.returncode != 0:
            if check:
                raise RuntimeError(f"mariadb: {query!r} failed:\n{r.stderr}")
            return None
        return [tuple(line.split("\t")) for line in r.stdout.splitlines()]

    def sql(self, query: str, database: str = DB_NAME) -> list[tuple[str, ...]]:
        """Runs query as root in `database`; rows as tuples of text (NULL = 'NULL')."""
        exists = self._query(f"SHOW DATABASES LIKE '{DB_NAME}'")
        return self._query(query, database if exists or database != DB_NAME else "")


def have_postgres() -> bool:
    return (PG_BIN / "postgres").exists() and shutil.which("psql") is not None


def have_mariadb() -> bool:
    return all(shutil.which(p) for p in ("mariadbd", "mariadb-install-db", "mariadb"))
