"""What sluice-run promises an unmodified program, checked from inside one (Python's own
socket, select, os and signal modules, which call the C library as C programs do).

Run as: sluice-run ... -- python3 semantics.py PEER_IP OWN_IP
with peer.py serving on PEER_IP (the kernel, in the same namespace). Prints "ok NAME"
per check and "ALL OK" at the end; exits 1 if any check failed.
"""
import errno
import hashlib
import os
import select
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

PEER, OWN = sys.argv[1], sys.argv[2]
CHECKS = []


def check(f):
    CHECKS.append(f)
    return f


def conn(port=7):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.connect((PEER, port))
    return s


def recv_exact(s, n):
    out = bytearray()
    while len(out) < n:
        d = s.recv(n - len(out))
        assert d, "unexpected end of stream"
        out += d
    return bytes(out)


def expect_errno(code, f, *a):
    try:
        f(*a)
    except OSError as e:
        assert e.errno == code, "expected %s, got %r" % (errno.errorcode[code], e)
        return
    raise AssertionError("expected %s, the call succeeded" % errno.errorcode[code])


class Interrupted(Exception):
    pass


def interrupted_within(f, limit):
    """Runs f with SIGALRM due in 0.1 s; its handler raises. Returns the seconds taken."""

    def handler(sig, frame):
        raise Interrupted()

    old = signal.signal(signal.SIGALRM, handler)
    t0 = time.monotonic()
    signal.setitimer(signal.ITIMER_REAL, 0.1)
    try:
        f()
        raise AssertionError("the wait was not interrupted")
    except Interrupted:
        pass
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    took = time.monotonic() - t0
    assert took < limit, "interrupted only after %.2f s" % took
    return took


@check
def descriptors():
    s = socket.socket()
    e = os.eventfd(0)
    r, w = os.pipe()
    fds = {s.fileno(), e, r, w}
    assert len(fds) == 4, fds
    assert s.fileno() < 1024, "select() needs descriptors below FD_SETSIZE"
    assert stat.S_ISSOCK(os.fstat(s.fileno()).st_mode)
    u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # the kernel's
    assert u.fileno() not in fds
    for f in (e, r, w):
        os.close(f)
    s.close()
    u.close()


@check
def echo_blocking():
    data = os.urandom(1 << 20)
    s = conn()
    t = threading.Thread(target=s.sendall, args=(data,))
    t.start()
    back = recv_exact(s, len(data))
    t.join()
    assert hashlib.sha256(back).digest() == hashlib.sha256(data).digest()
    s.close()


@check
def mixed_epoll():
    s = conn()
    e = os.eventfd(0)
    r, w = os.pipe()
    ep = select.epoll()
    for fd in (s.fileno(), e, r):
        ep.register(fd, select.EPOLLIN)
    assert ep.poll(0) == [], "nothing is ready yet"
    os.eventfd_write(e, 1)
    assert ep.poll(1) == [(e, select.EPOLLIN)]
    os.eventfd_read(e)
    s.sendall(b"x")
    got = ep.poll(2)
    assert got == [(s.fileno(), select.EPOLLIN)], got
    assert s.recv(1) == b"x"
    os.write(w, b"y")
    assert ep.poll(1) == [(r, select.EPOLLIN)]
    os.read(r, 1)
    expect_errno(errno.EEXIST, ep.register, s.fileno(), select.EPOLLIN)
    ep.unregister(s.fileno())
    expect_errno(errno.ENOENT, ep.unregister, s.fileno())
    ep.close()
    for f in (e, r, w):
        os.close(f)
    s.close()


@check
def epoll_timeout_is_kept():
    s = conn()
    ep = select.epoll()
    ep.register(s.fileno(), select.EPOLLIN)
    t0 = time.monotonic()
    assert ep.poll(0.25) == []
    took = time.monotonic() - t0
    assert 0.24 <= took < 0.6, took
    ep.close()
    s.close()


@check
def edge_and_level_triggered():
    s = conn()
    et, lt = select.epoll(), select.epoll()
    et.register(s.fileno(), select.EPOLLIN | select.EPOLLET)
    lt.register(s.fileno(), select.EPOLLIN)
    s.sendall(b"a")
    assert et.poll(2) == [(s.fileno(), select.EPOLLIN)]
    assert lt.poll(2) == [(s.fileno(), select.EPOLLIN)]
    # Unread data: level-triggered reports again, edge-triggered not without news.
    assert lt.poll(0.1) == [(s.fileno(), select.EPOLLIN)]
    assert et.poll(0.2) == []
    s.sendall(b"b")  # news: a new edge, though data was already waiting
    assert et.poll(2) == [(s.fileno(), select.EPOLLIN)]
    time.sleep(0.1)
    assert recv_exact(s, 2) == b"ab"
    assert lt.poll(0.1) == []
    et.close()
    lt.close()
    s.close()


@check
def oneshot():
    s = conn()
    ep = select.epoll()
    ep.register(s.fileno(), select.EPOLLIN | select.EPOLLONESHOT)
    s.sendall(b"a")
    assert ep.poll(2) == [(s.fileno(), select.EPOLLIN)]
    assert ep.poll(0.2) == [], "disabled after one report"
    ep.modify(s.fileno(), select.EPOLLIN | select.EPOLLONESHOT)
    assert ep.poll(2) == [(s.fileno(), select.EPOLLIN)]
    assert s.recv(1) == b"a"
    ep.close()
    s.close()


@check
def poll_and_select_mixed():
    s = conn()
    r, w = os.pipe()
    rl, wl, _ = select.select([s, r], [s], [], 2)
    assert rl == [] and wl == [s], (rl, wl)
    os.write(w, b"z")
    s.sendall(b"q")
    deadline = time.monotonic() + 2
    seen = set()
    while seen != {s, r} and time.monotonic() < deadline:
        rl, _, _ = select.select([s, r], [], [], 1)
        seen |= set(rl)
    assert seen == {s, r}, seen
    p = select.poll()
    p.register(s.fileno(), select.POLLIN)
    p.register(r, select.POLLIN)
    got = dict(p.poll(1000))
    assert got.get(s.fileno(), 0) & select.POLLIN and got.get(r, 0) & select.POLLIN, got
    s.recv(1)
    os.read(r, 1)
    t0 = time.monotonic()
    assert p.poll(200) == []
    assert 0.19 <= time.monotonic() - t0 < 0.6
    os.close(r)
    os.close(w)
    s.close()


@check
def signals_interrupt_waits():
    s = conn()
    ep = select.epoll()
    ep.register(s.fileno(), select.EPOLLIN)
    interrupted_within(lambda: ep.poll(5), 1.0)
    interrupted_within(lambda: select.select([s], [], [], 5), 1.0)
    p = select.poll()
    p.register(s.fileno(), select.POLLIN)
    interrupted_within(lambda: p.poll(5000), 1.0)
    interrupted_within(lambda: s.recv(1), 1.0)
    ep.close()
    s.close()


@check
def sa_restart_restarts_blocking_calls():
    # A signal whose handler has SA_RESTART (siginterrupt False) restarts a blocking recv
    # inside the call: Python's handler runs only when the call returns, with the data.
    # Without SA_RESTART the call ends with EINTR at once and the handler runs then. (SIGINT
    # goes back to its default so that SIGALRM is the only signal handled.)
    ran = []

    def handler(sig, frame):
        ran.append(time.monotonic())

    old = signal.signal(signal.SIGALRM, handler)
    old_int = signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        for restart in (True, False):
            signal.siginterrupt(signal.SIGALRM, not restart)
            s = conn(9)
            s.sendall(b"1.0\n")
            del ran[:]
            t0 = time.monotonic()
            signal.setitimer(signal.ITIMER_REAL, 0.2)
            assert recv_exact(s, 5) == b"late\n"
            assert len(ran) == 1, ran
            at = ran[0] - t0
            assert (at > 0.8) == restart, "restart %s: the handler ran at %.2f s" % (restart, at)
            s.close()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        signal.signal(signal.SIGINT, old_int)


@check
def blocking_read_has_no_give_up_time():
    s = conn(9)
    s.sendall(b"10.5\n")
    t0 = time.monotonic()
    assert recv_exact(s, 5) == b"late\n"
    assert time.monotonic() - t0 >= 10.3
    s.close()


@check
def so_rcvtimeo():
    s = conn(9)
    s.sendall(b"5\n")
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", 0, 300000))
    t0 = time.monotonic()
    expect_errno(errno.EAGAIN, s.recv, 1)
    took = time.monotonic() - t0
    assert 0.25 <= took < 1.5, took
    s.close()


@check
def dup_dup2_close():
    s = conn()
    d = os.dup(s.fileno())
    s.close()
    s2 = socket.socket(fileno=d)
    s2.sendall(b"hello")
    assert recv_exact(s2, 5) == b"hello"
    r, w = os.pipe()
    target = s2.fileno()
    d3 = os.dup(target)
    os.dup2(r, target)  # the descriptor becomes the pipe; the socket lives on in d3
    assert stat.S_ISFIFO(os.fstat(target).st_mode)
    s3 = socket.socket(fileno=d3)
    s3.sendall(b"again")
    assert recv_exact(s3, 5) == b"again"
    s3.close()
    os.close(target)
    os.close(r)
    os.close(w)
    s2.detach()


@check
def fcntl_ioctl():
    import fcntl
    import termios

    s = conn()
    fl = fcntl.fcntl(s.fileno(), fcntl.F_GETFL)
    fcntl.fcntl(s.fileno(), fcntl.F_SETFL, fl | os.O_NONBLOCK)
    assert fcntl.fcntl(s.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK
    expect_errno(errno.EAGAIN, s.recv, 1)
    s.send(b"12345")
    time.sleep(0.2)
    n = struct.unpack("i", fcntl.ioctl(s.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]
    assert n == 5, n
    fcntl.ioctl(s.fileno(), termios.FIONBIO, struct.pack("i", 0))
    assert not fcntl.fcntl(s.fileno(), fcntl.F_GETFL) & os.O_NONBLOCK
    fcntl.fcntl(s.fileno(), fcntl.F_SETFD, fcntl.FD_CLOEXEC)
    assert fcntl.fcntl(s.fileno(), fcntl.F_GETFD) & fcntl.FD_CLOEXEC
    assert recv_exact(s, 5) == b"12345"
    s.close()


@check
def names():
    s = conn()
    own, port = s.getsockname()
    assert own == OWN and port > 0, (own, port)
    assert s.getpeername() == (PEER, 7)
    s.close()


@check
def sendmsg_recvmsg_iovecs():
    s = conn()
    assert s.sendmsg([b"ab", b"cd", b"ef"]) == 6
    time.sleep(0.1)
    a, b = bytearray(2), bytearray(10)
    n, _, _, _ = s.recvmsg_into([a, b])
    assert n == 6 and bytes(a) == b"ab" and bytes(b[:4]) == b"cdef", (n, a, b)
    s.close()


@check
def sendfile_and_splice():
    data = os.urandom(3 << 20)
    with tempfile.TemporaryFile() as f:
        f.write(data)
        f.flush()
        s = conn(10)
        sent = s.sendfile(f)  # os.sendfile underneath
        assert sent == len(data), sent
        s.shutdown(socket.SHUT_WR)
        assert recv_exact(s, 64).decode() == hashlib.sha256(data).hexdigest()
        s.close()
    small = os.urandom(200000)
    r, w = os.pipe()
    threading.Thread(target=lambda: (os.write(w, small), os.close(w))).start()
    s = conn(10)
    moved = 0
    while True:
        n = os.splice(r, s.fileno(), 65536)
        if n == 0:
            break
        moved += n
    assert moved == len(small)
    s.shutdown(socket.SHUT_WR)
    assert recv_exact(s, 64).decode() == hashlib.sha256(small).hexdigest()
    os.close(r)
    s.close()


@check
def socket_options():
    s = conn()
    sol, tcp = socket.SOL_SOCKET, socket.IPPROTO_TCP
    for level, name in [
        (sol, socket.SO_REUSEADDR),
        (sol, socket.SO_REUSEPORT),
        (sol, socket.SO_KEEPALIVE),
        (tcp, socket.TCP_NODELAY),
        (tcp, socket.TCP_CORK),
        (tcp, socket.TCP_QUICKACK),
    ]:
        s.setsockopt(level, name, 1)
        assert s.getsockopt(level, name) == 1, (level, name)
    s.setsockopt(tcp, socket.TCP_CORK, 0)
    s.setsockopt(tcp, socket.TCP_DEFER_ACCEPT, 5)
    assert s.getsockopt(tcp, socket.TCP_DEFER_ACCEPT) == 5
    for name, v in [(socket.TCP_KEEPIDLE, 60), (socket.TCP_KEEPINTVL, 5), (socket.TCP_KEEPCNT, 3)]:
        s.setsockopt(tcp, name, v)
        assert s.getsockopt(tcp, name) == v
    s.setsockopt(sol, socket.SO_LINGER, struct.pack("ii", 1, 7))
    assert struct.unpack("ii", s.getsockopt(sol, socket.SO_LINGER, 8)) == (1, 7)
    s.setsockopt(sol, socket.SO_RCVBUF, 65536)
    assert s.getsockopt(sol, socket.SO_RCVBUF) >= 65536
    s.setsockopt(tcp, socket.TCP_CONGESTION, b"reno")
    assert s.getsockopt(tcp, socket.TCP_CONGESTION, 16).rstrip(b"\0") == b"reno"
    s.setsockopt(tcp, socket.TCP_CONGESTION, b"cubic")
    assert s.getsockopt(tcp, socket.TCP_CONGESTION, 16).rstrip(b"\0") == b"cubic"
    expect_errno(errno.ENOENT, s.setsockopt, tcp, socket.TCP_CONGESTION, b"bogus")
    info = s.getsockopt(tcp, socket.TCP_INFO, 104)
    assert info[0] == 1, "tcpi_state: established"
    assert struct.unpack_from("I", info, 16)[0] > 0, "tcpi_snd_mss"
    assert info[5] == 7, "tcpi_options: timestamps, SACK, window scaling with Linux: %d" % info[5]
    # Unsupported options: Linux's errno for an unknown option.
    expect_errno(errno.ENOPROTOOPT, s.setsockopt, tcp, socket.TCP_FASTOPEN, 5)
    expect_errno(errno.ENOPROTOOPT, s.getsockopt, sol, socket.SO_PEERCRED, 12)
    s.sendall(b"still fine")
    assert recv_exact(s, 10) == b"still fine"
    # The RTT is sampled from acknowledgments of data: a few exchanges give one.
    rtt = 0
    for _ in range(50):
        rtt = struct.unpack_from("I", s.getsockopt(tcp, socket.TCP_INFO, 104), 68)[0]
        if rtt > 0:
            break
        s.sendall(b"x")
        assert recv_exact(s, 1) == b"x"
        time.sleep(0.01)
    assert rtt > 0, "tcpi_rtt after exchanges"
    s.close()


@check
def listen_accept_and_fork():
    l = socket.socket()
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("0.0.0.0", 5000))
    l.listen(8)
    s = conn()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            try:
                s.send(b"from the child")
                code = 10  # it must not work
            except OSError as e:
                code = 0 if e.errno == errno.EBADF else 11
            s.close()
            # New sockets in the child are the kernel's: a kernel client to the
            # parent's Sluice listener.
            k = socket.create_connection((OWN, 5000), timeout=5)
            k.sendall(b"hello from the kernel")
            k.close()
        except Exception:
            traceback.print_exc()
            code = 12
        os._exit(code)
    c, addr = l.accept()
    assert addr[0] == PEER, addr
    assert recv_exact(c, 21) == b"hello from the kernel"
    c.close()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    # The parent's inherited socket still works.
    s.sendall(b"parent")
    assert recv_exact(s, 6) == b"parent"
    s.close()
    l.close()


@check
def fork_exec_helpers():
    out = subprocess.run(["sh", "-c", "echo helper $((6*7))"], capture_output=True, text=True, timeout=10)
    assert out.stdout.strip() == "helper 42", out


@check
def threads():
    errors = []

    def one(i):
        try:
            data = os.urandom(256 << 10)
            s = conn()
            t = threading.Thread(target=s.sendall, args=(data,))
            t.start()
            back = recv_exact(s, len(data))
            t.join()
            assert back == data
            s.close()
        except Exception as e:
            errors.append((i, repr(e)))

    ts = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors, errors


@check
def udp():
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(3)
    u.sendto(b"ping", (PEER, 7))
    d, a = u.recvfrom(100)
    assert (d, a) == (b"ping", (PEER, 7)), (d, a)
    u.close()


@check
def dual_stack_inet6():
    # An AF_INET6 socket reaches IPv4 peers through IPv4-mapped addresses, as Linux's.
    mapped, own = "::ffff:" + PEER, "::ffff:" + OWN
    s = socket.socket(socket.AF_INET6)
    assert s.getsockopt(socket.SOL_SOCKET, socket.SO_DOMAIN) == socket.AF_INET6
    assert s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0
    s.settimeout(5)
    s.connect((mapped, 7))
    assert s.getpeername()[:2] == (mapped, 7), s.getpeername()
    assert s.getsockname()[0] == own, s.getsockname()
    s.sendall(b"six")
    assert recv_exact(s, 3) == b"six"
    s.close()
    # A listener on :: takes IPv4 clients (a kernel client from a forked child).
    l = socket.socket(socket.AF_INET6)
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(("::", 5006))
    l.listen(4)
    assert l.getsockname()[:2] == ("::", 5006), l.getsockname()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            k = socket.create_connection((OWN, 5006), timeout=5)
            k.sendall(b"v4 client")
            k.close()
        except Exception:
            traceback.print_exc()
            code = 12
        os._exit(code)
    c, addr = l.accept()
    assert addr[0] == mapped, addr
    assert recv_exact(c, 9) == b"v4 client"
    assert c.getsockname()[:2] == (own, 5006), c.getsockname()
    c.close()
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    l.close()
    # UDP too.
    u = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    u.settimeout(3)
    u.sendto(b"ping6", (mapped, 7))
    d, a = u.recvfrom(100)
    assert (d, a[:2]) == (b"ping6", (mapped, 7)), (d, a)
    u.close()
    # An IPv6-only socket binds :: (it will take IPv6 clients only) but not an IPv4-mapped
    # address; without an IPv6 address of its prefix (no --ip6 here) an IPv6 peer is
    # unreachable; V6ONLY is fixed once bound.
    v = socket.socket(socket.AF_INET6)
    v.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    expect_errno(errno.EINVAL, v.bind, (own, 5007))
    v.bind(("::", 5007))
    v.close()
    w = socket.socket(socket.AF_INET6)
    expect_errno(errno.ENETUNREACH, w.connect, ("2001:2::1", 7))
    w.bind(("::", 0))
    expect_errno(errno.EINVAL, w.setsockopt, socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    w.close()


@check
def loopback_and_exclusive():
    s = socket.socket()
    expect_errno(errno.ENETUNREACH, s.connect, ("127.0.0.1", 7))
    s.close()
    ep = select.epoll()
    t = conn()
    ep.register(t.fileno(), select.EPOLLIN | select.EPOLLEXCLUSIVE)
    t.sendall(b"e")
    assert ep.poll(2) == [(t.fileno(), select.EPOLLIN)]
    ep.close()
    t.close()


@check
def wrong_kind_fails_loudly():
    s = socket.socket()
    ep = select.epoll.fromfd(s.fileno())  # not an epoll descriptor
    t = socket.socket()
    expect_errno(errno.EINVAL, ep.register, t.fileno(), select.EPOLLIN)
    ep.detach() if hasattr(ep, "detach") else None
    expect_errno(errno.EBADF, os.fstat, 100000)
    t.close()


failed = 0
for f in CHECKS:
    try:
        f()
        print("ok", f.__name__, flush=True)
    except Exception:
        failed += 1
        print("FAILED", f.__name__, flush=True)
        traceback.print_exc()
print("ALL OK" if failed == 0 else "%d FAILED" % failed, flush=True)
sys.exit(1 if failed else 0)
