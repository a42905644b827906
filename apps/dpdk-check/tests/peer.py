#!/usr/bin/env python3
"""The kernel's side of sluice-dpdk-check's TCP protocol, with Python's sockets.

  peer.py source HOST PORT CONNECTIONS BYTES   connect, send random bytes, half-close,
                                               check the 40-byte reply (SHA-256 + length)
  peer.py sink PORT EXPECT                     accept EXPECT connections, answer each with
                                               the SHA-256 and length of what it received
Prints "ok=N failed=M" and exits non-zero when anything failed.
"""
import hashlib
import os
import socket
import struct
import sys
import threading


def source(host, port, n, size):
    ok = failed = 0
    lock = threading.Lock()

    def one(i):
        nonlocal ok, failed
        phase = "connect"
        try:
            data = os.urandom(size)
            with socket.create_connection((host, port), timeout=120) as s:
                phase = "send"
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                phase = "reply"
                reply = b""
                while True:
                    chunk = s.recv(64)
                    if not chunk:
                        break
                    reply += chunk
            good = reply == hashlib.sha256(data).digest() + struct.pack(">Q", size)
        except OSError as e:
            print(f"connection {i}: {e} during {phase}", file=sys.stderr)
            good = False
        with lock:
            if good:
                ok += 1
            else:
                failed += 1

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    return ok, failed


def sink(port, expect):
    ok = failed = 0
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("0.0.0.0", port))
    srv.listen(512)
    srv.settimeout(150)
    print("listening", flush=True)
    lock = threading.Lock()

    def serve(conn):
        nonlocal ok, failed
        try:
            conn.settimeout(120)
            h = hashlib.sha256()
            n = 0
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                h.update(chunk)
                n += len(chunk)
            conn.sendall(h.digest() + struct.pack(">Q", n))
            conn.close()
            with lock:
                ok += 1
        except OSError as e:
            print(f"serve: {e}", file=sys.stderr)
            with lock:
                failed += 1

    threads = []
    for _ in range(expect):
        conn, _ = srv.accept()
        t = threading.Thread(target=serve, args=(conn,))
        t.start()
        threads.append(t)
    for t in threads:
        t.join(180)
    return ok, failed


if __name__ == "__main__":
    if sys.argv[1] == "source":
        ok, failed = source(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))
    else:
        ok, failed = sink(int(sys.argv[2]), int(sys.argv[3]))
    print(f"ok={ok} failed={failed}")
    sys.exit(0 if failed == 0 and ok > 0 else 1)
