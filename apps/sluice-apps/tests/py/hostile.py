"""A hostile network against sluice-http on 198.18.0.2:80, from the kernel's side of the
tap (run inside the test's namespace, as root: raw sockets). Each attack is bounded in
packets and time. Prints one `name value` line per result; the Rust test asserts on them.

Usage: hostile.py SHA256_OF_BIG_BIN
"""

import hashlib
import os
import random
import socket
import struct
import sys
import time

SRV, ME = "198.18.0.2", "198.18.0.1"
WANT = sys.argv[1]
rng = random.Random(7)
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
sniff = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))  # from the IP header on
# Room for our own outgoing frames too (they are queued here as well).
sniff.setsockopt(socket.SOL_SOCKET, 33, 64 << 20)  # SO_RCVBUFFORCE
sniff.bind(("sl0", 0))
sniff.setblocking(False)


def out(name, value):
    print(name, value, flush=True)


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip(src, dst, proto, payload, ttl=64):
    # The kernel fills in the total length, the ID and the header checksum (raw(7)).
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 0, 0, 0x4000, ttl, proto, 0,
                       socket.inet_aton(src), socket.inet_aton(dst)) + payload


def tcp(src, dst, sport, dport, seq, ack, flags, payload=b"", win=65535, good=True):
    h = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 5 << 4,
                    flags, win, 0, 0)
    pseudo = struct.pack("!4s4sBBH", socket.inet_aton(src), socket.inet_aton(dst), 0, 6,
                         len(h) + len(payload))
    c = csum(pseudo + h + payload)
    if not good:
        c ^= 0x5A5A
    h = h[:16] + struct.pack("!H", c) + h[18:]
    return ip(src, dst, 6, h + payload)


def send(pkt):
    try:
        raw.sendto(pkt, (SRV, 0))
    except OSError:
        pass


def drain():
    """Frames the server sent since the last call: (sport, dport, flags, payload length)."""
    seen = []
    while True:
        try:
            data, addr = sniff.recvfrom(65535)
        except BlockingIOError:
            return seen
        if addr[2] == socket.PACKET_OUTGOING or len(data) < 40:
            continue
        ihl = (data[0] & 15) * 4
        if data[12:16] != socket.inet_aton(SRV) or data[9] != 6:
            continue
        total = struct.unpack("!H", data[2:4])[0]
        sport, dport = struct.unpack("!HH", data[ihl:ihl + 4])
        off = (data[ihl + 12] >> 4) * 4
        seen.append((sport, dport, data[ihl + 13], total - ihl - off))


def get(path, s=None, close=True):
    s = s or socket.create_connection((SRV, 80), timeout=20)
    s.settimeout(20)
    hdr = "Connection: close\r\n" if close else ""
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n" % (path, hdr)).encode())
    data = b""
    head, length = None, None
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        data += b
        if head is None and b"\r\n\r\n" in data:
            head, data = data.split(b"\r\n\r\n", 1)
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
        if length is not None and len(data) >= length:
            break
    return data


t0 = time.time()
# Without timestamps on the live connection, a forged ACK needs no plausible TSval to reach
# the sequence check (with them it would be dropped earlier, unanswered: RFC 7323 3.2).
with open("/proc/sys/net/ipv4/tcp_timestamps", "w") as f:
    f.write("0")
live = socket.create_connection((SRV, 80), timeout=20)
lport = live.getsockname()[1]
drain()

# 1. Out-of-window pure ACKs on a live connection: answered at Linux's invalid-segment
#    rate, not one for one.
for i in range(1000):
    send(tcp(ME, SRV, lport, 80, rng.getrandbits(32), rng.getrandbits(32), 0x10))
time.sleep(0.3)
answered = sum(1 for (sp, dp, _, _) in drain() if sp == 80 and dp == lport)
out("ooo_acks_answered", answered)

# 2. Blind RSTs, SYNs and data with random sequence numbers on the live connection.
for i in range(2000):
    seq, ack = rng.getrandbits(32), rng.getrandbits(32)
    kind = i % 3
    if kind == 0:
        send(tcp(ME, SRV, lport, 80, seq, 0, 0x04))
    elif kind == 1:
        send(tcp(ME, SRV, lport, 80, seq, 0, 0x02))
    else:
        send(tcp(ME, SRV, lport, 80, seq, ack, 0x18, os.urandom(100)))
time.sleep(0.3)
drain()

# 3. A spoofed ICMP "fragmentation needed", MTU 68, quoting a sequence number the server
#    never sent: ignored (RFC 5927 4.1), so segments stay full-sized.
quoted = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 40, 0, 0x4000, 64, 6, 0,
                     socket.inet_aton(SRV), socket.inet_aton(ME))
quoted += struct.pack("!HHI", 80, lport, rng.getrandbits(32))
icmp = struct.pack("!BBHHH", 3, 4, 0, 0, 68) + quoted
icmp = icmp[:2] + struct.pack("!H", csum(icmp)) + icmp[4:]
send(ip(ME, SRV, 1, icmp))
time.sleep(0.1)
body = get("/big.bin", live, close=False)
out("live_sha256_ok", int(hashlib.sha256(body).hexdigest() == WANT))
segs = [n for (sp, dp, _, n) in drain() if sp == 80 and dp == lport]
out("live_max_segment", max(segs) if segs else 0)
live.close()

# 4. A SYN flood from spoofed sources of the subnet, and SYN+FIN to the listener.
for i in range(5000):
    src = "198.18.0.%d" % rng.randint(100, 250)
    send(tcp(src, SRV, rng.randint(1024, 65535), 80, rng.getrandbits(32), 0, 0x02))
for i in range(50):
    send(tcp(ME, SRV, 40000 + i, 80, rng.getrandbits(32), 0, 0x03))
time.sleep(0.3)
synfin_answers = sum(1 for (sp, dp, fl, _) in drain() if sp == 80 and 40000 <= dp < 40050 and fl & 0x12 == 0x12)
out("syn_fin_answered", synfin_answers)

# 5. Malformed segments and datagrams of every kind.
for i in range(3000):
    k = i % 6
    sport = rng.randint(1024, 65535)
    if k == 0:  # bad TCP checksum
        p = tcp(ME, SRV, sport, 80, rng.getrandbits(32), 0, 0x02, good=False)
    elif k == 1:  # data offset beyond the segment
        h = bytearray(tcp(ME, SRV, sport, 80, 1, 0, 0x02)[20:])
        h[12] = 15 << 4
        p = ip(ME, SRV, 6, bytes(h))
    elif k == 2:  # truncated TCP header
        p = ip(ME, SRV, 6, os.urandom(rng.randint(0, 19)))
    elif k == 3:  # every flag at once
        p = tcp(ME, SRV, sport, 80, rng.getrandbits(32), rng.getrandbits(32), 0xFF, os.urandom(10))
    elif k == 4:  # garbage for another protocol
        p = ip(ME, SRV, rng.choice([1, 17, 47, 132, 253]), os.urandom(rng.randint(0, 200)))
    else:  # random options bytes
        opts = os.urandom(20)
        h = struct.pack("!HHIIBBHHH", sport, 80, 1, 0, 10 << 4, 0x02, 65535, 0, 0) + opts
        p = ip(ME, SRV, 6, h)
    send(p)
time.sleep(0.3)
drain()

# 6. TIME-WAIT churn: the server closes first, a thousand times.
churn_ok = 0
for i in range(1000):
    try:
        if get("/small.txt") == b"hello\n":
            churn_ok += 1
    except OSError:
        pass
out("churn_ok", churn_ok)

# 7. After all of it, a fresh client gets the file intact.
body = get("/big.bin")
out("fresh_sha256_ok", int(hashlib.sha256(body).hexdigest() == WANT))
out("seconds", round(time.time() - t0, 1))
