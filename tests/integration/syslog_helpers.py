"""A private rsyslogd for the syslog receiver tests: reads a unix datagram socket of its own
(imuxsock with the system socket off, so it never touches /dev/log) and forwards mail.* with
omfwd to relaypermit over udp, tcp (octet-counted or LF framing) or tcp+TLS (gtls driver).

Security: rsyslogd runs as root like the other private servers; it only sends to 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Optional

from rp_harness import make_dir, tail, wait_until

GTLS_MODULE_DIRS = ["/usr/lib/x86_64-linux-gnu/rsyslog", "/usr/lib/rsyslog"]


def rsyslog_gtls_available() -> bool:
    return any(Path(d, "lmnsd_gtls.so").exists() for d in GTLS_MODULE_DIRS)


class Forward:
    """One omfwd action. protocol: "udp", "tcp-octet", "tcp-lf", "tls"."""

    def __init__(self, protocol: str, port: int, template: Optional[str] = None):
        self.protocol = protocol
        self.port = port
        self.template = template

    def action(self, tls_ca: Optional[Path], tls_cert: Optional[Path], tls_key: Optional[Path]) -> str:
        args = [f'type="omfwd"', 'target="127.0.0.1"', f'port="{self.port}"']
        if self.protocol == "udp":
            args.append('protocol="udp"')
        else:
            args.append('protocol="tcp"')
            args.append('TCP_Framing="octet-counted"' if self.protocol in ("tcp-octet", "tls")
                        else 'TCP_Framing="traditional"')
            # Keep retrying quickly while relaypermit starts; never drop the queue.
            args += ['action.resumeRetryCount="-1"', 'action.resumeInterval="1"']
        if self.protocol == "tls":
            # x509/certvalid: rsyslog checks our certificate against tls_ca (the POP host knows
            # it talks to the right receiver).
            args += ['StreamDriver="gtls"', 'StreamDriverMode="1"', 'StreamDriverAuthMode="x509/certvalid"']
            if tls_ca is not None:
                args.append(f'StreamDriver.CAFile="{tls_ca}"')
            if tls_cert is not None:
                args += [f'StreamDriver.CertFile="{tls_cert}"', f'StreamDriver.KeyFile="{tls_key}"']
        if self.template:
            args.append(f'template="{self.template}"')
        return "mail.* action(" + " ".join(args) + ")\n"


class Rsyslog:
    def __init__(self, root: Path, forwards: list[Forward], tls_ca: Optional[Path] = None,
                 tls_cert: Optional[Path] = None, tls_key: Optional[Path] = None):
        self.root = make_dir(root)
        self.spool = make_dir(self.root / "spool")
        self.conf = self.root / "rsyslog.conf"
        self.pidfile = self.root / "rsyslogd.pid"
        self.socket = self.root / "log.sock"
        self.out_path = self.root / "rsyslogd.out"
        self.proc: Optional[subprocess.Popen] = None
        text = (f'global(workDirectory="{self.spool}"'
                + (f' DefaultNetstreamDriverCAFile="{tls_ca}"' if tls_ca else "") + ")\n"
                + 'module(load="imuxsock" SysSock.Use="off")\n'
                + f'input(type="imuxsock" Socket="{self.socket}" CreatePath="on" RateLimit.Interval="0")\n')
        for f in forwards:
            text += f.action(tls_ca, tls_cert, tls_key)
        self.conf.write_text(text)

    def start(self) -> None:
        out = open(self.out_path, "a")
        self.proc = subprocess.Popen(["rsyslogd", "-n", "-f", str(self.conf), "-i", str(self.pidfile)],
                                     stdin=subprocess.DEVNULL, stdout=out, stderr=out)
        out.close()

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError(f"rsyslogd exited with {self.proc.returncode}:\n{tail(self.out_path)}")
            return self.socket.is_socket()
        wait_until(ready, what="rsyslogd's input socket")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)

    def log(self, message: str, tag: str = "dovecot", priority: str = "mail.info") -> None:
        subprocess.run(["logger", "-u", str(self.socket), "-p", priority, "-t", tag, message],
                       check=True, timeout=10)

    def output(self) -> str:
        return tail(self.out_path, 40)


def dovecot_login(user: str, ip: str, proto: str = "pop3") -> str:
    return (f"{proto}-login: Login: user=<{user}>, method=PLAIN, rip={ip}, lip=127.0.0.1, mpid={os.getpid()}, "
            f"session=<sess{user}>")


def dovecot_failed_login(user: str, ip: str) -> str:
    return (f"pop3-login: Login aborted: Connection closed (auth failed, 1 attempts in 2 secs) (auth_failed): "
            f"user=<{user}>, method=PLAIN, rip={ip}, lip=127.0.0.1, session=<x>")


def make_self_signed(dirpath: Path, name: str = "server") -> tuple[Path, Path]:
    """A self-signed certificate for CN=127.0.0.1 / IP SAN 127.0.0.1 (openssl), as (cert, key)."""
    cert, key = dirpath / f"{name}.pem", dirpath / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def have(program: str) -> bool:
    return shutil.which(program) is not None
