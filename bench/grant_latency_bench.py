#!/usr/bin/env python3
"""Grant latency: a Dovecot login line appended to the followed log -> the policy service says
action=OK for that client. Starts `relaypermit run` with a private config in a temp dir, keeps
one persistent policy connection, and for each of N logins appends one line (a fresh client
address each time) and polls the policy service until it answers OK. Reports p50/p90/p99/max.

Usage: bench/grant_latency_bench.py [--binary build/relaypermit] [-n 2000]
The poll loop adds its own round trip (~0.05 ms on loopback) to each figure.
"""
import argparse, os, shutil, socket, subprocess, sys, tempfile, time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="build/relaypermit")
    ap.add_argument("-n", type=int, default=2000)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="rp-grant-bench-")
    port = free_port()
    log = os.path.join(tmp, "mail.log")
    open(log, "w").close()
    cfg = os.path.join(tmp, "rp.toml")
    with open(cfg, "w") as f:
        f.write(f'state_dir = "{tmp}/state"\ncontrol_socket = "{tmp}/control.sock"\n'
                f'log_level = "warning"\nttl = "1h"\n[[source]]\ntype = "file"\npath = "{log}"\n'
                f'[policy]\nlisten = ["127.0.0.1:{port}"]\n')
    daemon = subprocess.Popen([args.binary, "run", "--config", cfg], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                conn = socket.create_connection(("127.0.0.1", port))
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit("daemon did not start")
                time.sleep(0.01)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        rfile = conn.makefile("rb")

        def ask(ip):
            conn.sendall(f"request=smtpd_access_policy\nprotocol_state=RCPT\nclient_address={ip}\n\n".encode())
            line = rfile.readline()
            rfile.readline()
            return line.strip() == b"action=OK"

        lat = []
        with open(log, "a", buffering=1) as out:
            for i in range(args.n):
                ip = f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
                stamp = time.strftime("%b %e %H:%M:%S")
                line = (f"{stamp} mx1 dovecot: imap-login: Login: user=<u{i}>, method=PLAIN, rip={ip}, "
                        f"lip=192.0.2.1, mpid={i}, session=<s{i}>\n")
                t0 = time.perf_counter()
                out.write(line)
                out.flush()
                while not ask(ip):
                    if time.perf_counter() - t0 > 5:
                        sys.exit(f"login {i} never granted")
                lat.append(time.perf_counter() - t0)
        lat.sort()
        pct = lambda p: lat[min(len(lat) - 1, int(p / 100 * len(lat)))] * 1000
        print(f"grant latency over {len(lat)} logins (line appended -> policy OK):")
        print("| p50 | p90 | p99 | max |\n|---|---|---|---|")
        print(f"| {pct(50):.3f} ms | {pct(90):.3f} ms | {pct(99):.3f} ms | {lat[-1]*1000:.3f} ms |")
    finally:
        daemon.terminate()
        daemon.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
