"""A private Redis server for the shared-store tests (Debian's redis-server).

The server lives in its own directory (config, log, data), listens on a free 127.0.0.1 port and
runs in the foreground as a child of the test process (daemonize no), so kill() can SIGKILL it
for outage tests and start() brings it back on the same port. By default nothing is persisted
(`save ""`, no AOF): a restarted server is empty, as after losing its memory. persist=True turns
on the append-only file with fsync per write, so a restart (even after kill()) keeps every key.
The password, if any, is written to the 0600 config file and handed to redis-cli through
REDISCLI_AUTH, so it never appears on a command line.

    with RedisServer(workdir / "redis", password="secret") as r:
        r.url                        # redis://:secret@127.0.0.1:PORT/0 (what `store =` takes)
        r.cli("DBSIZE")              # "0"
        r.kill(); r.start()          # outage and recovery on the same port

Security: the server runs as the test user (root in CI) and only listens on 127.0.0.1.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import urllib.parse
from pathlib import Path
from typing import Optional

from rp_harness import free_port, make_dir, run, tail, wait_until

REDIS_SERVER = "/usr/bin/redis-server"
REDIS_CLI = "/usr/bin/redis-cli"


def have_redis() -> bool:
    return os.access(REDIS_SERVER, os.X_OK) and os.access(REDIS_CLI, os.X_OK)


def _resp(*args: str) -> bytes:
    """A command in the Redis protocol (binary safe, unlike inline commands)."""
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = a.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def _quote_conf(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class RedisServer:
    """One redis-server process; see the module docstring."""

    def __init__(self, workdir: Path, password: Optional[str] = None, persist: bool = False):
        self.root = make_dir(workdir)
        self.password = password
        self.persist = persist
        self.port = free_port()
        self.conf_path = self.root / "redis.conf"
        self.log_path = self.root / "redis.log"
        self.proc: Optional[subprocess.Popen] = None

    @property
    def url(self) -> str:
        """redis://:password@127.0.0.1:PORT/0 (the password %-escaped), or without userinfo."""
        auth = ""
        if self.password is not None:
            auth = ":" + urllib.parse.quote(self.password, safe="") + "@"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def __enter__(self) -> "RedisServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _write_config(self) -> None:
        lines = [
            "bind 127.0.0.1",
            f"port {self.port}",
            "daemonize no",
            f"dir {_quote_conf(str(self.root))}",
            f"logfile {_quote_conf(str(self.log_path))}",
            'save ""',
            "appendonly " + ("yes" if self.persist else "no"),
            "appendfsync always",
        ]
        if self.password is not None:
            lines.append(f"requirepass {_quote_conf(self.password)}")
        fd = os.open(self.conf_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("\n".join(lines) + "\n")

    def ping(self) -> bool:
        """True when the server answers PING (after AUTH when it has a password)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                data = (_resp("AUTH", self.password) if self.password is not None else b"") + _resp("PING")
                s.sendall(data)
                want = (b"+OK\r\n" if self.password is not None else b"") + b"+PONG\r\n"
                got = b""
                while len(got) < len(want):
                    chunk = s.recv(256)
                    if not chunk:
                        return False
                    got += chunk
                return got.startswith(want)
        except OSError:
            return False

    def start(self, timeout: float = 15) -> None:
        """Starts the server (again, on the same port after stop()/kill()); returns when PING works."""
        if self.running():
            return
        self._write_config()
        self.proc = subprocess.Popen([REDIS_SERVER, str(self.conf_path)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                     cwd=self.root)

        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}:\n{tail(self.log_path)}")
            return self.ping()

        wait_until(ready, timeout, "redis-server to answer PING")

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM and wait (a clean shutdown; with persist=True it writes its files)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL, for outage tests: clients see their connections drop at once."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def cli(self, *args: str, db: int = 0) -> str:
        """Runs one command with redis-cli; returns its output without the final newline.
        Raises RuntimeError when redis-cli fails or the server answers an error."""
        env = {**os.environ}
        if self.password is not None:
            env["REDISCLI_AUTH"] = self.password
        r = run([REDIS_CLI, "-h", "127.0.0.1", "-p", str(self.port), "-n", str(db), *args],
                timeout=30, env=env)
        out = r.stdout.rstrip("\n")
        if r.returncode != 0 or out.startswith(("ERR", "WRONGPASS", "NOPERM", "WRONGTYPE")):
            raise RuntimeError(f"redis-cli {args[0] if args else ''}: {out} {r.stderr.strip()}")
        return out
