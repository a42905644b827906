"""The kernel side of sluice-run's semantic tests, run inside the test's namespace.

Ports (TCP unless said):
  7    echo (also UDP 7)
  9    sends b"late\n" DELAY seconds after the connection opens (DELAY: first line read)
  10   sink: SHA-256 of everything until EOF, sent back as hex
  11   sends N bytes of a fixed pattern (N: first line), then closes
Runs until killed.
"""
import hashlib
import socket
import sys
import threading
import time

HOST = sys.argv[1]


def serve(port, handler):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((HOST, port))
    s.listen(64)

    def loop():
        while True:
            c, _ = s.accept()
            threading.Thread(target=handler, args=(c,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()


def echo(c):
    with c:
        while True:
            d = c.recv(65536)
            if not d:
                return
            c.sendall(d)


def late(c):
    with c:
        f = c.makefile("rb")
        delay = float(f.readline())
        time.sleep(delay)
        c.sendall(b"late\n")
        c.recv(1)


def sink(c):
    with c:
        h = hashlib.sha256()
        while True:
            d = c.recv(65536)
            if not d:
                break
            h.update(d)
        c.sendall(h.hexdigest().encode())


def source(c):
    with c:
        f = c.makefile("rb")
        n = int(f.readline())
        block = bytes(i % 251 for i in range(65536))
        while n > 0:
            k = min(n, len(block))
            c.sendall(block[:k])
            n -= k


def udp_echo():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((HOST, 7))
    while True:
        d, a = u.recvfrom(65536)
        u.sendto(d, a)


serve(7, echo)
serve(9, late)
serve(10, sink)
serve(11, source)
threading.Thread(target=udp_echo, daemon=True).start()
print("peer ready", flush=True)
while True:
    time.sleep(3600)
