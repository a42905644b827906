//! Scripted TCP exchanges through packetdrill's interface (see `common`): every segment
//! the stack sends is checked field by field.

mod common;

use common::*;
use sluice_wire::{TcpFlags, TcpOptions};

const SYN: u8 = TcpFlags::SYN;
const FIN: u8 = TcpFlags::FIN;
const RST: u8 = TcpFlags::RST;
const PSH: u8 = TcpFlags::PSH;
const NONE: u8 = 0;

/// The peer's port and initial sequence number.
const PP: u16 = 40000;
const PISN: u32 = 1_000_000;
/// The stack's listening port.
const SP: u16 = 8080;

fn mss_only(mss: u16) -> TcpOptions {
    TcpOptions {
        mss: Some(mss),
        ..TcpOptions::default()
    }
}

/// An established passive connection: (listener, connection, the stack's ISN).
fn passive(pd: &Pd) -> (i64, i64, u32) {
    let l = pd.socket(libc::SOCK_STREAM).unwrap();
    assert_eq!(l, 3, "descriptors start at 3");
    pd.bind(l, LOCAL, SP).unwrap();
    pd.listen(l, 16).unwrap();
    pd.set_nonblock(l);
    assert_eq!(pd.accept(l).unwrap_err(), libc::EAGAIN);

    pd.send_seg(&Seg::new(PP, SP, SYN, PISN, None).mss(1460));
    let (synack, _) = pd.expect_tcp();
    let iss = synack.seq;
    assert_eq!(
        synack,
        Seg {
            src_port: SP,
            dst_port: PP,
            seq: iss,
            ack: Some(PISN + 1),
            flags: SYN,
            window: 65535,
            urgent: 0,
            options: mss_only(1460),
            payload: vec![],
        }
    );
    assert_eq!(pd.accept(l).unwrap_err(), libc::EAGAIN, "not established yet");
    pd.send_seg(&Seg::new(PP, SP, NONE, PISN + 1, Some(iss + 1)));
    let (fd, addr, port) = pd.accept(l).unwrap();
    assert_eq!((fd, addr, port), (4, REMOTE, PP));
    assert_eq!(pd.accept(l).unwrap_err(), libc::EAGAIN);
    (l, fd, iss)
}

/// An established active connection: (connection, the stack's ISN, its port).
fn active(pd: &Pd) -> (i64, u32, u16) {
    let fd = pd.socket(libc::SOCK_STREAM | libc::SOCK_NONBLOCK).unwrap();
    assert_eq!(pd.connect(fd, REMOTE, 80).unwrap_err(), libc::EINPROGRESS);
    let (syn, _) = pd.expect_tcp();
    let (iss, port) = (syn.seq, syn.src_port);
    assert!(port >= 49152, "an ephemeral port: {port}");
    assert_eq!(
        syn,
        Seg {
            src_port: port,
            dst_port: 80,
            seq: iss,
            ack: None,
            flags: SYN,
            window: 65535,
            urgent: 0,
            options: mss_only(1460),
            payload: vec![],
        }
    );
    assert_eq!(pd.connect(fd, REMOTE, 80).unwrap_err(), libc::EALREADY);
    assert_eq!(
        pd.poll1(fd, libc::POLLOUT, 0),
        Ok(0),
        "not writable while connecting"
    );
    assert_eq!(pd.write(fd, b"x").unwrap_err(), libc::EAGAIN);

    pd.send_seg(&Seg::new(80, port, SYN, PISN, Some(iss + 1)).mss(1200));
    let (ack, _) = pd.expect_tcp();
    assert_eq!(ack, Seg::new(port, 80, NONE, iss + 1, Some(PISN + 1)).win(65535));
    assert_eq!(pd.poll1(fd, libc::POLLOUT | libc::POLLIN, 0), Ok(libc::POLLOUT));
    assert_eq!(pd.getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ERROR), Ok(0));
    assert_eq!(pd.connect(fd, REMOTE, 80), Ok(0), "the outcome, once");
    assert_eq!(pd.connect(fd, REMOTE, 80).unwrap_err(), libc::EISCONN);
    assert_eq!(
        pd.getsockopt_int(fd, libc::IPPROTO_TCP, libc::TCP_MAXSEG),
        Ok(1200),
        "the peer's MSS"
    );
    (fd, iss, port)
}

#[test]
fn passive_open() {
    let pd = Pd::new(PLAIN);
    let (l, fd, _) = passive(&pd);
    assert_eq!(pd.poll1(l, libc::POLLIN, 0), Ok(0));
    assert_eq!(pd.poll1(fd, libc::POLLIN | libc::POLLOUT, 0), Ok(libc::POLLOUT));
    pd.set_nonblock(fd);
    assert_eq!(pd.read(fd, 10).unwrap_err(), libc::EAGAIN);
}

#[test]
fn active_open() {
    let pd = Pd::new(PLAIN);
    active(&pd);
}

#[test]
fn syn_ack_options_by_default() {
    // Default flags: timestamps, SACK and window scaling are offered back.
    let pd = Pd::new("--local_ip=198.18.0.1 --remote_ip=198.18.0.2");
    let l = pd.socket(libc::SOCK_STREAM).unwrap();
    pd.bind(l, LOCAL, SP).unwrap();
    pd.listen(l, 1).unwrap();
    let mut syn = Seg::new(PP, SP, SYN, PISN, None).mss(1460);
    syn.options.sack_permitted = true;
    syn.options.window_scale = Some(7);
    syn.options.timestamp = Some((5000, 0));
    pd.send_seg(&syn);
    let (sa, _) = pd.expect_tcp();
    let (tsval, tsecr) = sa.options.timestamp.expect("timestamps echoed");
    assert_eq!(tsecr, 5000);
    assert_eq!(
        sa,
        Seg {
            src_port: SP,
            dst_port: PP,
            seq: sa.seq,
            ack: Some(PISN + 1),
            flags: SYN,
            window: 65535,
            urgent: 0,
            options: TcpOptions {
                mss: Some(1460),
                window_scale: Some(1),
                sack_permitted: true,
                timestamp: Some((tsval, 5000)),
                ..TcpOptions::default()
            },
            payload: vec![],
        }
    );
}

#[test]
fn data_both_ways() {
    let pd = Pd::new(PLAIN);
    let (_, fd, iss) = passive(&pd);
    pd.set_nonblock(fd);
    pd.send_seg(&Seg::new(PP, SP, PSH, PISN + 1, Some(iss + 1)).data(b"hello"));
    let (ack, _) = pd.expect_tcp();
    assert_eq!(ack, Seg::new(SP, PP, NONE, iss + 1, Some(PISN + 6)).win(65530));
    assert_eq!(
        pd.poll1(fd, libc::POLLIN | libc::POLLOUT, 0),
        Ok(libc::POLLIN | libc::POLLOUT)
    );
    let mut n = 0;
    pd.ioctl_int(fd, libc::FIONREAD, &mut n).unwrap();
    assert_eq!(n, 5);
    assert_eq!(pd.recv(fd, 64, libc::MSG_PEEK).unwrap(), b"hello");
    assert_eq!(pd.read(fd, 64).unwrap(), b"hello");
    assert_eq!(pd.read(fd, 64).unwrap_err(), libc::EAGAIN);

    assert_eq!(pd.write(fd, b"world"), Ok(5));
    // Reading 5 bytes does not reopen the window (receiver SWS avoidance, RFC 9293 3.8.6.2.2).
    let (data, _) = pd.expect_tcp();
    assert_eq!(
        data,
        Seg::new(SP, PP, PSH, iss + 1, Some(PISN + 6))
            .win(65530)
            .data(b"world")
    );
    pd.send_seg(&Seg::new(PP, SP, NONE, PISN + 6, Some(iss + 6)));
    assert_eq!(pd.writev(fd, &[b"ab", b"", b"cd"]), Ok(4));
    let (data, _) = pd.expect_tcp();
    assert_eq!(
        data,
        Seg::new(SP, PP, PSH, iss + 6, Some(PISN + 6))
            .win(65530)
            .data(b"abcd")
    );
}

#[test]
fn out_of_order_data_is_reassembled() {
    let pd = Pd::new(PLAIN);
    let (_, fd, iss) = passive(&pd);
    pd.set_nonblock(fd);
    // The second segment first: a duplicate ACK for what is missing.
    pd.send_seg(&Seg::new(PP, SP, PSH, PISN + 6, Some(iss + 1)).data(b"world"));
    let (dup, _) = pd.expect_tcp();
    assert_eq!(dup, Seg::new(SP, PP, NONE, iss + 1, Some(PISN + 1)).win(65535));
    assert_eq!(pd.read(fd, 64).unwrap_err(), libc::EAGAIN, "nothing in order yet");
    pd.send_seg(&Seg::new(PP, SP, NONE, PISN + 1, Some(iss + 1)).data(b"hello"));
    let (ack, _) = pd.expect_tcp();
    assert_eq!(ack, Seg::new(SP, PP, NONE, iss + 1, Some(PISN + 11)).win(65525));
    assert_eq!(
        pd.readv(fd, &[3, 20]).unwrap(),
        vec![b"hel".to_vec(), b"loworld".to_vec()]
    );
}

#[test]
fn syn_is_retransmitted_after_the_initial_rto() {
    let pd = Pd::new(PLAIN);
    let fd = pd.socket(libc::SOCK_STREAM | libc::SOCK_NONBLOCK).unwrap();
    assert_eq!(pd.connect(fd, REMOTE, 80).unwrap_err(), libc::EINPROGRESS);
    let (syn, t0) = pd.expect_tcp();
    pd.usleep(500_000);
    let (again, t1) = pd.expect_tcp();
    assert_eq!(again, syn, "the same SYN");
    assert_eq!(t1 - t0, 1_000_000, "after the initial RTO of 1 s");
    // Backed off: the next one 2 s later, reached by usleep alone.
    pd.usleep(2_000_000);
    let (third, t2) = pd.expect_tcp();
    assert_eq!((third, t2 - t1), (syn, 2_000_000));
}

#[test]
fn data_is_retransmitted_on_timeout() {
    let pd = Pd::new(PLAIN);
    let (fd, iss, port) = active(&pd);
    assert_eq!(pd.write(fd, b"data"), Ok(4));
    let (seg, t0) = pd.expect_tcp();
    let want = Seg::new(port, 80, PSH, iss + 1, Some(PISN + 1))
        .win(65535)
        .data(b"data");
    assert_eq!(seg, want);
    pd.usleep(100_000);
    let (re, t1) = pd.expect_tcp();
    assert_eq!(re, want, "retransmitted as it was");
    // The RTT measured in the handshake was 0: the RTO is its floor, 200 ms.
    assert!((200_000..200_100).contains(&(t1 - t0)), "RTO {} us", t1 - t0);
    let (re2, t2) = pd.expect_tcp();
    assert_eq!(re2, want);
    assert!(
        (400_000..400_100).contains(&(t2 - t1)),
        "backed off to {} us",
        t2 - t1
    );
    pd.send_seg(&Seg::new(80, port, NONE, PISN + 1, Some(iss + 5)));
    assert_eq!(pd.write(fd, b"more"), Ok(4));
    let (next, _) = pd.expect_tcp();
    assert_eq!(
        next,
        Seg::new(port, 80, PSH, iss + 5, Some(PISN + 1))
            .win(65535)
            .data(b"more")
    );
}

#[test]
fn peer_closes_first() {
    let pd = Pd::new(PLAIN);
    let (_, fd, iss) = passive(&pd);
    pd.set_nonblock(fd);
    pd.send_seg(&Seg::new(PP, SP, FIN, PISN + 1, Some(iss + 1)));
    // Sluice counts the FIN's sequence number against the advertised window.
    let (ack, _) = pd.expect_tcp();
    assert_eq!(ack, Seg::new(SP, PP, NONE, iss + 1, Some(PISN + 2)).win(65534));
    let ev = pd
        .poll1(fd, libc::POLLIN | libc::POLLOUT | libc::POLLRDHUP, 0)
        .unwrap();
    assert_eq!(ev, libc::POLLIN | libc::POLLOUT | libc::POLLRDHUP);
    assert_eq!(pd.read(fd, 10).unwrap(), b"", "end of stream");
    // CLOSE-WAIT: we may still send.
    assert_eq!(pd.write(fd, b"bye"), Ok(3));
    let (d, _) = pd.expect_tcp();
    assert_eq!(
        d,
        Seg::new(SP, PP, PSH, iss + 1, Some(PISN + 2))
            .win(65534)
            .data(b"bye")
    );
    pd.send_seg(&Seg::new(PP, SP, NONE, PISN + 2, Some(iss + 4)));
    pd.close(fd).unwrap();
    let (fin, _) = pd.expect_tcp();
    assert_eq!(fin, Seg::new(SP, PP, FIN, iss + 4, Some(PISN + 2)).win(65534));
    pd.send_seg(&Seg::new(PP, SP, NONE, PISN + 2, Some(iss + 5)));
    // LAST-ACK -> CLOSED: the 4-tuple is free; a stray segment is answered with a RST.
    pd.send_seg(&Seg::new(PP, SP, NONE, PISN + 2, Some(iss + 5)).data(b"?"));
    let (rst, _) = pd.expect_tcp();
    assert_eq!(rst, Seg::new(SP, PP, RST, iss + 5, None).win(0));
    assert_eq!(pd.read(fd, 1).unwrap_err(), libc::EBADF);
}

#[test]
fn we_close_first() {
    let pd = Pd::new(PLAIN);
    let (fd, iss, port) = active(&pd);
    pd.shutdown(fd, libc::SHUT_WR).unwrap();
    let (fin, _) = pd.expect_tcp();
    assert_eq!(fin, Seg::new(port, 80, FIN, iss + 1, Some(PISN + 1)).win(65535));
    assert_eq!(pd.write(fd, b"x").unwrap_err(), libc::EPIPE);
    pd.send_seg(&Seg::new(80, port, NONE, PISN + 1, Some(iss + 2)));
    pd.send_seg(&Seg::new(80, port, PSH, PISN + 1, Some(iss + 2)).data(b"last"));
    let (ack, _) = pd.expect_tcp();
    assert_eq!(ack, Seg::new(port, 80, NONE, iss + 2, Some(PISN + 5)).win(65531));
    pd.send_seg(&Seg::new(80, port, FIN, PISN + 5, Some(iss + 2)));
    let (ack, _) = pd.expect_tcp();
    assert_eq!(ack, Seg::new(port, 80, NONE, iss + 2, Some(PISN + 6)).win(65530));
    let ev = pd.poll1(fd, libc::POLLIN | libc::POLLOUT, 0).unwrap();
    assert_eq!(ev, libc::POLLIN | libc::POLLOUT | libc::POLLHUP);
    assert_eq!(pd.read(fd, 10).unwrap(), b"last");
    assert_eq!(pd.read(fd, 10).unwrap(), b"");
    pd.close(fd).unwrap();
}

#[test]
fn reset_by_peer() {
    let pd = Pd::new(PLAIN);
    let (_, fd, iss) = passive(&pd);
    pd.send_seg(&Seg::new(PP, SP, RST, PISN + 1, None).win(0));
    let ev = pd.poll1(fd, libc::POLLIN | libc::POLLOUT, 0).unwrap();
    assert_eq!(ev, libc::POLLIN | libc::POLLOUT | libc::POLLERR | libc::POLLHUP);
    assert_eq!(pd.read(fd, 10).unwrap_err(), libc::ECONNRESET, "reported once");
    assert_eq!(pd.read(fd, 10).unwrap(), b"");
    assert_eq!(pd.write(fd, b"x").unwrap_err(), libc::EPIPE);
    assert_eq!(pd.getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ERROR), Ok(0));
    let _ = iss;
    pd.close(fd).unwrap();
}

/// A valid reset in LAST-ACK (our FIN unacknowledged) is an error, ECONNRESET, as Linux and
/// FreeBSD report it: an application that shut down writing can tell it from a clean close.
#[test]
fn reset_in_last_ack_is_reported() {
    let pd = Pd::new(PLAIN);
    let (_, fd, iss) = passive(&pd);
    pd.set_nonblock(fd);
    pd.send_seg(&Seg::new(PP, SP, FIN, PISN + 1, Some(iss + 1)));
    let _ack = pd.expect_tcp();
    assert_eq!(pd.read(fd, 10).unwrap(), b"", "end of stream");
    pd.shutdown(fd, libc::SHUT_WR).unwrap();
    let (fin, _) = pd.expect_tcp();
    assert_eq!(fin, Seg::new(SP, PP, FIN, iss + 1, Some(PISN + 2)).win(65534));
    // LAST-ACK; the peer resets instead of acknowledging the FIN (SEG.SEQ = RCV.NXT).
    pd.send_seg(&Seg::new(PP, SP, RST, PISN + 2, None).win(0));
    assert_eq!(
        pd.getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ERROR),
        Ok(libc::ECONNRESET)
    );
    pd.close(fd).unwrap();
}

/// RFC 1122 4.2.3.6 knobs: TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, read back and obeyed
/// (first probe after the idle time, the next after the interval, the connection given
/// up with ETIMEDOUT after the count).
#[test]
fn keepalive_idle_interval_and_count() {
    let pd = Pd::new(PLAIN);
    let (_, fd, iss) = passive(&pd);
    let tcp = libc::IPPROTO_TCP;
    assert_eq!(
        pd.getsockopt_int(fd, tcp, libc::TCP_KEEPIDLE),
        Ok(7200),
        "Linux's default"
    );
    assert_eq!(
        pd.setsockopt_int(fd, tcp, libc::TCP_KEEPIDLE, 0).unwrap_err(),
        libc::EINVAL
    );
    assert_eq!(
        pd.setsockopt_int(fd, tcp, libc::TCP_KEEPCNT, 128).unwrap_err(),
        libc::EINVAL
    );
    pd.setsockopt_int(fd, tcp, libc::TCP_KEEPIDLE, 2).unwrap();
    pd.setsockopt_int(fd, tcp, libc::TCP_KEEPINTVL, 1).unwrap();
    pd.setsockopt_int(fd, tcp, libc::TCP_KEEPCNT, 2).unwrap();
    assert_eq!(pd.getsockopt_int(fd, tcp, libc::TCP_KEEPIDLE), Ok(2));
    assert_eq!(pd.getsockopt_int(fd, tcp, libc::TCP_KEEPINTVL), Ok(1));
    assert_eq!(pd.getsockopt_int(fd, tcp, libc::TCP_KEEPCNT), Ok(2));
    let t0 = pd.now_us();
    pd.setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)
        .unwrap();
    // Probes: <SEQ=SND.NXT-1>, no data.
    let (p1, t1) = pd.expect_tcp();
    assert_eq!(p1, Seg::new(SP, PP, NONE, iss, Some(PISN + 1)).win(65535));
    assert!(
        (1_900_000..2_200_000).contains(&(t1 - t0)),
        "first probe after {} us",
        t1 - t0
    );
    let (_, t2) = pd.expect_tcp();
    assert!(
        (900_000..1_200_000).contains(&(t2 - t1)),
        "second probe {} us later",
        t2 - t1
    );
    // Unanswered: given up.
    let (rst, _) = pd.expect_tcp();
    assert!(rst.flags & RST != 0, "{rst:?}");
    assert_eq!(
        pd.getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ERROR),
        Ok(libc::ETIMEDOUT)
    );
    pd.close(fd).unwrap();
}

/// RFC 1122 4.2.3.5: the give-up time R2 per socket (TCP_USER_TIMEOUT, ms) and the SYN
/// retransmission count (TCP_SYNCNT), read back and obeyed.
#[test]
fn user_timeout_and_syn_count() {
    let pd = Pd::new(PLAIN);
    let tcp = libc::IPPROTO_TCP;
    // TCP_SYNCNT 1: the SYN, one retransmission, then ETIMEDOUT.
    let fd = pd.socket(libc::SOCK_STREAM | libc::SOCK_NONBLOCK).unwrap();
    assert_eq!(
        pd.setsockopt_int(fd, tcp, libc::TCP_SYNCNT, 0).unwrap_err(),
        libc::EINVAL
    );
    pd.setsockopt_int(fd, tcp, libc::TCP_SYNCNT, 1).unwrap();
    assert_eq!(pd.getsockopt_int(fd, tcp, libc::TCP_SYNCNT), Ok(1));
    assert_eq!(pd.connect(fd, REMOTE, 81).unwrap_err(), libc::EINPROGRESS);
    let (syn, t0) = pd.expect_tcp();
    assert!(syn.flags & SYN != 0);
    let (again, t1) = pd.expect_tcp();
    assert_eq!(
        (again.flags & SYN != 0, again.seq),
        (true, syn.seq),
        "retransmitted SYN"
    );
    assert!(t1 > t0);
    let mut err = Ok(0);
    for _ in 0..50 {
        pd.usleep(100_000);
        err = pd.getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ERROR);
        if err != Ok(0) {
            break;
        }
    }
    assert_eq!(err, Ok(libc::ETIMEDOUT), "gave up after one retransmission");
    let _ = pd.close(fd);

    // TCP_USER_TIMEOUT 1500 ms: unacknowledged data is given up at the first RTO past it,
    // long before the 15 retransmissions.
    let (_, fd, _) = passive(&pd);
    assert_eq!(pd.getsockopt_int(fd, tcp, libc::TCP_USER_TIMEOUT), Ok(0));
    pd.setsockopt_int(fd, tcp, libc::TCP_USER_TIMEOUT, 1500).unwrap();
    assert_eq!(pd.getsockopt_int(fd, tcp, libc::TCP_USER_TIMEOUT), Ok(1500));
    assert_eq!(pd.write(fd, b"lost"), Ok(4));
    let (_, t0) = pd.expect_tcp();
    let mut err = Ok(0);
    let mut waited = 0;
    while waited < 10_000 {
        pd.usleep(100_000);
        waited += 100;
        err = pd.getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ERROR);
        if err != Ok(0) {
            break;
        }
    }
    assert_eq!(err, Ok(libc::ETIMEDOUT));
    let elapsed = pd.now_us() - t0;
    assert!(
        (1_500_000..5_000_000).contains(&elapsed),
        "given up after {elapsed} us"
    );
    let _ = pd.close(fd);
}

#[test]
fn connection_refused() {
    let pd = Pd::new(PLAIN);
    let fd = pd.socket(libc::SOCK_STREAM | libc::SOCK_NONBLOCK).unwrap();
    assert_eq!(pd.connect(fd, REMOTE, 81).unwrap_err(), libc::EINPROGRESS);
    let (syn, _) = pd.expect_tcp();
    pd.send_seg(&Seg::new(81, syn.src_port, RST, 0, Some(syn.seq + 1)).win(0));
    let ev = pd.poll1(fd, libc::POLLOUT, 0).unwrap();
    assert_eq!(ev, libc::POLLOUT | libc::POLLERR | libc::POLLHUP);
    assert_eq!(
        pd.getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ERROR),
        Ok(libc::ECONNREFUSED)
    );
    assert_eq!(
        pd.getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ERROR),
        Ok(0),
        "cleared"
    );

    // A blocking connect reports it directly.
    let fd2 = pd.socket(libc::SOCK_STREAM).unwrap();
    std::thread::scope(|s| {
        let t = s.spawn(|| pd.connect(fd2, REMOTE, 82));
        let (syn, _) = pd.expect_tcp();
        assert_eq!(syn.dst_port, 82);
        pd.send_seg(&Seg::new(82, syn.src_port, RST, 0, Some(syn.seq + 1)).win(0));
        assert_eq!(t.join().unwrap().unwrap_err(), libc::ECONNREFUSED);
    });
}

#[test]
fn linger_zero_close_sends_rst() {
    let pd = Pd::new(PLAIN);
    let (_, fd, iss) = passive(&pd);
    let mut linger = [0u8; 8];
    linger[..4].copy_from_slice(&1i32.to_ne_bytes());
    pd.setsockopt_bytes(fd, libc::SOL_SOCKET, libc::SO_LINGER, &linger)
        .unwrap();
    pd.close(fd).unwrap();
    let (rst, _) = pd.expect_tcp();
    assert_eq!(rst.flags, RST);
    assert_eq!((rst.src_port, rst.dst_port, rst.seq), (SP, PP, iss + 1));
    assert!(rst.payload.is_empty() && rst.options == TcpOptions::default());
}

#[test]
fn segment_to_a_closed_port_is_reset() {
    let pd = Pd::new(PLAIN);
    pd.send_seg(&Seg::new(PP, 9999, SYN, PISN, None).mss(1460));
    let (rst, _) = pd.expect_tcp();
    assert_eq!(rst, Seg::new(9999, PP, RST, 0, Some(PISN + 1)).win(0));
}

#[test]
fn blocking_calls_from_a_second_thread() {
    // As packetdrill runs system calls: a syscall thread that blocks, a main thread that
    // injects and sniffs packets.
    let pd = Pd::new(PLAIN);
    let l = pd.socket(libc::SOCK_STREAM).unwrap();
    pd.bind(l, LOCAL, SP).unwrap();
    pd.listen(l, 4).unwrap();
    let pd = &pd;
    std::thread::scope(|s| {
        let t = s.spawn(move || pd.accept(l));
        std::thread::sleep(std::time::Duration::from_millis(20));
        pd.send_seg(&Seg::new(PP, SP, SYN, PISN, None).mss(1460));
        let (sa, _) = pd.expect_tcp();
        pd.send_seg(&Seg::new(PP, SP, NONE, PISN + 1, Some(sa.seq + 1)));
        let (fd, _, _) = t.join().unwrap().unwrap();
        let r = s.spawn(move || pd_read_all(pd, fd));
        std::thread::sleep(std::time::Duration::from_millis(20));
        pd.send_seg(&Seg::new(PP, SP, PSH, PISN + 1, Some(sa.seq + 1)).data(b"ping"));
        let (ack, _) = pd.expect_tcp();
        assert_eq!(ack.ack, Some(PISN + 5));
        assert_eq!(r.join().unwrap(), b"ping");
    });
}

fn pd_read_all(pd: &Pd, fd: i64) -> Vec<u8> {
    pd.read(fd, 100).unwrap()
}

#[test]
fn delayed_ack_fires_at_its_deadline() {
    let pd = Pd::new("--local_ip=198.18.0.1 --remote_ip=198.18.0.2 --timestamps=0 --sack=0 --wscale=0");
    let (_, fd, iss) = passive(&pd);
    let t0 = pd.now_us();
    pd.send_seg(&Seg::new(PP, SP, PSH, PISN + 1, Some(iss + 1)).data(b"x"));
    let (ack, t1) = pd.expect_tcp();
    assert_eq!(ack, Seg::new(SP, PP, NONE, iss + 1, Some(PISN + 2)).win(65534));
    assert!((40_000..40_100).contains(&(t1 - t0)), "delayed by {} us", t1 - t0);
    let _ = fd;
}
