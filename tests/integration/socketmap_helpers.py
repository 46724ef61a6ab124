"""Helpers for the socketmap integration tests: a private Postfix whose relay decision is
`check_client_access socketmap:inet:127.0.0.1:PORT:relaypermit, reject_unauth_destination`, a
netstring client, and `postmap -q` against the socketmap."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path
from typing import Optional

from rp_harness import Postfix, port_accepts, wait_until


class SocketmapPostfix(Postfix):
    """rp_harness.Postfix (private instance, mynetworks = 127.0.0.1/32, discard transport) with
    smtpd_relay_restrictions replaced by a socketmap access map on 127.0.0.1:socketmap_port."""

    def __init__(self, root: Path, socketmap_port: int):
        # The second smtpd (unix_port) keeps the harness' policy-socket override; it is unused.
        super().__init__(root, policy="inet:127.0.0.1:1", policy_socket=root / "unused-policy.sock")
        self.socketmap_port = socketmap_port

    @property
    def map_name(self) -> str:
        return f"socketmap:inet:127.0.0.1:{self.socketmap_port}:relaypermit"

    def write_config(self) -> None:
        super().write_config()
        main_cf = self.conf_dir / "main.cf"
        lines = []
        for line in main_cf.read_text().splitlines():
            if line.startswith("smtpd_relay_restrictions ="):
                line = ("smtpd_relay_restrictions = "
                        f"check_client_access {self.map_name}, reject_unauth_destination")
            lines.append(line)
        main_cf.write_text("\n".join(lines) + "\n")


def netstring(payload: bytes) -> bytes:
    return str(len(payload)).encode() + b":" + payload + b","


class SocketmapClient:
    """A blocking netstring client (many requests on one connection, like Postfix)."""

    def __init__(self, host: str, port: int, timeout: float = 10):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def ask(self, name: str, key: str) -> Optional[str]:
        self.sock.sendall(netstring(f"{name} {key}".encode()))
        while True:
            colon = self.buf.find(b":")
            if colon > 0:
                n = int(self.buf[:colon])
                if len(self.buf) >= colon + 1 + n + 1:
                    payload = self.buf[colon + 1:colon + 1 + n]
                    assert self.buf[colon + 1 + n:colon + 2 + n] == b",", self.buf
                    self.buf = self.buf[colon + 2 + n:]
                    return payload.decode()
            data = self.sock.recv(4096)
            if not data:
                return None
            self.buf += data

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def postmap_query(key: str, map_name: str) -> subprocess.CompletedProcess:
    """`postmap -q KEY MAP`: exit 0 and the value on stdout when found, exit 1 when not."""
    return subprocess.run(["postmap", "-q", key, map_name], capture_output=True, text=True, timeout=30)


def socketmap_listening(port: int, timeout: float = 3.0) -> bool:
    """True when something accepts on 127.0.0.1:port within timeout (the daemon is already up,
    so a missing listener means the [socketmap] section is not wired into this build)."""
    try:
        wait_until(lambda: port_accepts("127.0.0.1", port), timeout=timeout, what="socketmap port")
        return True
    except TimeoutError:
        return False
