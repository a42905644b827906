//! The rest of the ABI through packetdrill's interface: errno, socket options, poll and
//! epoll, UDP.

mod common;

use common::*;
use sluice_wire::{IpProtocol, TcpFlags, UdpPacket, UdpRepr};

const PP: u16 = 40000;
const PISN: u32 = 7_000;
const SP: u16 = 8080;

#[test]
fn errno_like_linux() {
    let pd = Pd::new(PLAIN);
    assert_eq!(
        pd.socket_raw(libc::AF_PACKET, libc::SOCK_STREAM, 0).unwrap_err(),
        libc::EAFNOSUPPORT
    );
    assert_eq!(
        pd.socket_raw(libc::AF_INET, libc::SOCK_STREAM, libc::IPPROTO_UDP)
            .unwrap_err(),
        libc::EPROTONOSUPPORT
    );
    assert_eq!(pd.close(99).unwrap_err(), libc::EBADF);
    assert_eq!(pd.read(-1, 1).unwrap_err(), libc::EBADF);
    let fd = pd.socket(libc::SOCK_STREAM).unwrap();
    assert_eq!(pd.read(fd, 1).unwrap_err(), libc::ENOTCONN);
    assert_eq!(pd.write(fd, b"x").unwrap_err(), libc::EPIPE);
    assert_eq!(pd.shutdown(fd, libc::SHUT_WR).unwrap_err(), libc::ENOTCONN);
    assert_eq!(pd.shutdown(fd, 7).unwrap_err(), libc::EINVAL);
    assert_eq!(pd.accept(fd).unwrap_err(), libc::EINVAL);
    assert_eq!(pd.fcntl(fd, 12345, 0).unwrap_err(), libc::EINVAL);
    assert_eq!(
        pd.bind(fd, sluice_wire::Ipv4Address::new(198, 18, 0, 9), 1)
            .unwrap_err(),
        libc::EADDRNOTAVAIL
    );
    assert_eq!(
        pd.poll1(fd, libc::POLLIN | libc::POLLOUT, 0),
        Ok(libc::POLLOUT | libc::POLLHUP)
    );
    assert_eq!(pd.poll1(77, libc::POLLIN, 0), Ok(libc::POLLNVAL));

    // Ports: a second bind conflicts; SO_REUSEADDR on both lifts that unless one listens.
    pd.bind(fd, LOCAL, SP).unwrap();
    assert_eq!(
        pd.bind(fd, LOCAL, SP + 1).unwrap_err(),
        libc::EINVAL,
        "already bound"
    );
    let fd2 = pd.socket(libc::SOCK_STREAM).unwrap();
    assert_eq!(pd.bind(fd2, LOCAL, SP).unwrap_err(), libc::EADDRINUSE);
    pd.setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)
        .unwrap();
    pd.setsockopt_int(fd2, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)
        .unwrap();
    pd.bind(fd2, sluice_wire::Ipv4Address::UNSPECIFIED, SP).unwrap();
    pd.listen(fd, 1).unwrap();
    assert_eq!(pd.listen(fd2, 1).unwrap_err(), libc::EADDRINUSE);
    assert_eq!(
        pd.read(fd, 1).unwrap_err(),
        libc::ENOTCONN,
        "a listener has no data"
    );

    // Descriptors are reused lowest first.
    pd.close(fd).unwrap();
    assert_eq!(pd.socket(libc::SOCK_STREAM), Ok(fd));

    // fcntl / ioctl(FIONBIO) toggle O_NONBLOCK.
    assert_eq!(pd.fcntl(fd2, libc::F_GETFL, 0), Ok(libc::O_RDWR as i64));
    let mut on = 1;
    pd.ioctl_int(fd2, libc::FIONBIO, &mut on).unwrap();
    assert_eq!(
        pd.fcntl(fd2, libc::F_GETFL, 0),
        Ok((libc::O_RDWR | libc::O_NONBLOCK) as i64)
    );
}

#[test]
fn socket_options() {
    let pd = Pd::new(PLAIN);
    let l = pd.socket(libc::SOCK_STREAM).unwrap();
    let int = |fd, lv, n| pd.getsockopt_int(fd, lv, n).unwrap();
    assert_eq!(int(l, libc::SOL_SOCKET, libc::SO_TYPE), libc::SOCK_STREAM);
    assert_eq!(int(l, libc::IPPROTO_TCP, libc::TCP_NODELAY), 0);
    assert_eq!(int(l, libc::IPPROTO_TCP, libc::TCP_MAXSEG), 1460);
    assert_eq!(int(l, libc::SOL_SOCKET, libc::SO_RCVBUF), 65536);
    pd.setsockopt_int(l, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)
        .unwrap();
    pd.setsockopt_int(l, libc::IPPROTO_TCP, libc::TCP_MAXSEG, 1000)
        .unwrap();
    pd.setsockopt_int(l, libc::SOL_SOCKET, libc::SO_RCVBUF, 10000)
        .unwrap();
    pd.setsockopt_int(l, libc::SOL_SOCKET, libc::SO_SNDBUF, 10000)
        .unwrap();
    pd.setsockopt_int(l, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)
        .unwrap();
    assert_eq!(int(l, libc::IPPROTO_TCP, libc::TCP_NODELAY), 1);
    assert_eq!(int(l, libc::IPPROTO_TCP, libc::TCP_MAXSEG), 1000);
    assert_eq!(
        int(l, libc::SOL_SOCKET, libc::SO_RCVBUF),
        20000,
        "doubled, as Linux does"
    );
    assert_eq!(int(l, libc::SOL_SOCKET, libc::SO_SNDBUF), 20000);
    assert_eq!(int(l, libc::SOL_SOCKET, libc::SO_KEEPALIVE), 1);
    assert_eq!(
        pd.setsockopt_int(l, libc::IPPROTO_TCP, libc::TCP_MAXSEG, 10)
            .unwrap_err(),
        libc::EINVAL
    );
    assert_eq!(
        pd.setsockopt_int(l, libc::IPPROTO_TCP, 9999, 1).unwrap_err(),
        libc::ENOPROTOOPT
    );
    assert_eq!(
        pd.setsockopt_bytes(l, libc::SOL_SOCKET, libc::SO_KEEPALIVE, &[1])
            .unwrap_err(),
        libc::EINVAL
    );
    let mut linger = [0u8; 8];
    linger[..4].copy_from_slice(&1i32.to_ne_bytes());
    linger[4..].copy_from_slice(&5i32.to_ne_bytes());
    pd.setsockopt_bytes(l, libc::SOL_SOCKET, libc::SO_LINGER, &linger)
        .unwrap();
    assert_eq!(
        pd.getsockopt_bytes(l, libc::SOL_SOCKET, libc::SO_LINGER, 8)
            .unwrap(),
        linger
    );
    // A shorter buffer gets a truncated value.
    assert_eq!(
        pd.getsockopt_bytes(l, libc::SOL_SOCKET, libc::SO_LINGER, 4)
            .unwrap(),
        linger[..4]
    );

    // Accepted sockets inherit the listener's options.
    pd.bind(l, LOCAL, SP).unwrap();
    pd.listen(l, 1).unwrap();
    assert_eq!(int(l, libc::SOL_SOCKET, libc::SO_ACCEPTCONN), 1);
    pd.send_seg(&Seg::new(PP, SP, TcpFlags::SYN, PISN, None).mss(1300));
    let (sa, _) = pd.expect_tcp();
    pd.send_seg(&Seg::new(PP, SP, 0, PISN + 1, Some(sa.seq + 1)));
    let (fd, _, _) = pd.accept(l).unwrap();
    assert_eq!(int(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY), 1);
    assert_eq!(int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE), 1);
    assert_eq!(
        int(fd, libc::IPPROTO_TCP, libc::TCP_MAXSEG),
        1000,
        "the MSS in use: the peer offered 1300, the listener's TCP_MAXSEG caps it, as on Linux"
    );
    // Its SYN-ACK advertised the listener's TCP_MAXSEG.
    assert_eq!(sa.options.mss, Some(1000));
    assert_eq!(int(fd, libc::SOL_SOCKET, libc::SO_ACCEPTCONN), 0);
}

#[test]
fn receive_timeout_bounds_a_blocking_read() {
    let pd = Pd::new(PLAIN);
    let l = pd.socket(libc::SOCK_STREAM).unwrap();
    pd.bind(l, LOCAL, SP).unwrap();
    pd.listen(l, 1).unwrap();
    pd.send_seg(&Seg::new(PP, SP, TcpFlags::SYN, PISN, None));
    let (sa, _) = pd.expect_tcp();
    pd.send_seg(&Seg::new(PP, SP, 0, PISN + 1, Some(sa.seq + 1)));
    let (fd, _, _) = pd.accept(l).unwrap();
    // 20 ms of virtual time: another thread moves the clock, as packetdrill's main does.
    let mut tv = [0u8; 16];
    tv[8..].copy_from_slice(&20_000i64.to_ne_bytes());
    pd.setsockopt_bytes(fd, libc::SOL_SOCKET, libc::SO_RCVTIMEO, &tv)
        .unwrap();
    let pd = &pd;
    std::thread::scope(|s| {
        let t = s.spawn(move || pd.read(fd, 10));
        std::thread::sleep(std::time::Duration::from_millis(20));
        pd.usleep(30_000);
        assert_eq!(t.join().unwrap().unwrap_err(), libc::EAGAIN);
    });
}

#[test]
fn epoll_reports_readiness() {
    let pd = Pd::new(PLAIN);
    let ep = pd.epoll_create().unwrap();
    let l = pd.socket(libc::SOCK_STREAM | libc::SOCK_NONBLOCK).unwrap();
    pd.bind(l, LOCAL, SP).unwrap();
    pd.listen(l, 4).unwrap();
    let (add, del, modify) = (libc::EPOLL_CTL_ADD, libc::EPOLL_CTL_DEL, libc::EPOLL_CTL_MOD);
    let (pin, pout) = (libc::EPOLLIN as u32, libc::EPOLLOUT as u32);
    pd.epoll_ctl(ep, add, l, pin, 7).unwrap();
    assert_eq!(pd.epoll_ctl(ep, add, l, pin, 7).unwrap_err(), libc::EEXIST);
    assert_eq!(pd.epoll_ctl(ep, modify, 55, pin, 7).unwrap_err(), libc::EBADF);
    assert_eq!(pd.epoll_ctl(ep, del, ep, 0, 0).unwrap_err(), libc::EINVAL);
    assert_eq!(
        pd.epoll_ctl(l, add, ep, pin, 0).unwrap_err(),
        libc::EINVAL,
        "not an epoll fd"
    );
    assert_eq!(pd.epoll_wait(ep, 8, 0).unwrap(), vec![]);
    assert_eq!(pd.epoll_wait(ep, 0, 0).unwrap_err(), libc::EINVAL);

    pd.send_seg(&Seg::new(PP, SP, TcpFlags::SYN, PISN, None));
    let (sa, _) = pd.expect_tcp();
    pd.send_seg(&Seg::new(PP, SP, 0, PISN + 1, Some(sa.seq + 1)));
    assert_eq!(
        pd.epoll_wait(ep, 8, 0).unwrap(),
        vec![(pin, 7)],
        "masked by the events asked for"
    );
    let (fd, _, _) = pd.accept(l).unwrap();
    assert_eq!(pd.epoll_wait(ep, 8, 0).unwrap(), vec![]);
    let rdhup = libc::EPOLLRDHUP as u32;
    pd.epoll_ctl(ep, add, fd, pin | pout | rdhup, 9).unwrap();
    let out = pout;
    assert_eq!(pd.epoll_wait(ep, 8, 0).unwrap(), vec![(out, 9)]);
    pd.send_seg(&Seg::new(PP, SP, TcpFlags::PSH, PISN + 1, Some(sa.seq + 1)).data(b"abc"));
    let _ack = pd.expect_tcp();
    let inn = pin;
    assert_eq!(pd.epoll_wait(ep, 8, 0).unwrap(), vec![(inn | out, 9)]);
    // Edge-triggered and one-shot: reported once.
    pd.epoll_ctl(
        ep,
        modify,
        fd,
        pin | libc::EPOLLET as u32 | libc::EPOLLONESHOT as u32,
        10,
    )
    .unwrap();
    assert_eq!(pd.epoll_wait(ep, 8, 0).unwrap(), vec![(inn, 10)]);
    assert_eq!(pd.epoll_wait(ep, 8, 0).unwrap(), vec![]);
    pd.send_seg(&Seg::new(PP, SP, TcpFlags::FIN, PISN + 4, Some(sa.seq + 1)));
    let _ack = pd.expect_tcp();
    pd.epoll_ctl(ep, modify, fd, pin | rdhup, 11).unwrap();
    assert_eq!(pd.epoll_wait(ep, 8, 0).unwrap(), vec![(inn | rdhup, 11)]);
    // Closing a descriptor takes it out of the set.
    pd.close(fd).unwrap();
    let _fin = pd.expect_tcp();
    assert_eq!(pd.epoll_ctl(ep, del, fd, 0, 0).unwrap_err(), libc::EBADF);
    assert_eq!(pd.epoll_wait(ep, 8, 0).unwrap(), vec![]);
    // A timeout in virtual time: another thread moves the clock.
    let pd = &pd;
    std::thread::scope(|s| {
        let t = s.spawn(move || pd.epoll_wait(ep, 8, 50));
        std::thread::sleep(std::time::Duration::from_millis(20));
        pd.usleep(60_000);
        assert_eq!(t.join().unwrap().unwrap(), vec![]);
    });
}

#[test]
fn udp_datagrams() {
    let pd = Pd::new(PLAIN);
    let fd = pd.socket(libc::SOCK_DGRAM | libc::SOCK_NONBLOCK).unwrap();
    pd.bind(fd, LOCAL, 5353).unwrap();
    assert_eq!(pd.read(fd, 10).unwrap_err(), libc::EAGAIN);
    pd.inject(&udp_packet(7000, 5353, b"ping"));
    assert_eq!(pd.poll1(fd, libc::POLLIN, 0), Ok(libc::POLLIN));
    assert_eq!(pd.recvfrom(fd, 64).unwrap(), (b"ping".to_vec(), REMOTE, 7000));
    assert_eq!(pd.sendto(fd, b"pong", REMOTE, 7000), Ok(4));
    let (p, _) = pd.sniff();
    let l4 = check_ipv4(&p, IpProtocol::Udp);
    let udp = UdpPacket::new_checked(l4).unwrap();
    let r =
        UdpRepr::parse(&udp, LOCAL, REMOTE, &sluice_wire::ChecksumCaps::software()).expect("valid checksum");
    assert_eq!((r.src_port, r.dst_port, r.payload), (5353, 7000, &b"pong"[..]));
    assert_eq!(pd.write(fd, b"x").unwrap_err(), libc::EDESTADDRREQ);
}

/// IP_TOS and IP_TTL (RFC 1122 MUST-48): set on a socket, every packet it sends carries
/// them (the SYN of a connect, the SYN-ACK and the data of an accepted connection, which
/// inherits its listener's); the ECN bits stay TCP's; a TTL out of range is EINVAL.
#[test]
fn ip_tos_and_ttl_on_every_packet() {
    let pd = Pd::new(PLAIN);
    let int = |fd, lv, n| pd.getsockopt_int(fd, lv, n).unwrap();
    let l = pd.socket(libc::SOCK_STREAM).unwrap();
    assert_eq!(int(l, libc::IPPROTO_IP, libc::IP_TOS), 0);
    assert_eq!(int(l, libc::IPPROTO_IP, libc::IP_TTL), 64);
    pd.setsockopt_int(l, libc::IPPROTO_IP, libc::IP_TOS, 0x2b)
        .unwrap();
    assert_eq!(
        int(l, libc::IPPROTO_IP, libc::IP_TOS),
        0x28,
        "AF11; the ECN bits are TCP's"
    );
    pd.setsockopt_int(l, libc::IPPROTO_IP, libc::IP_TTL, 9).unwrap();
    assert_eq!(int(l, libc::IPPROTO_IP, libc::IP_TTL), 9);
    for bad in [0, 256] {
        assert_eq!(
            pd.setsockopt_int(l, libc::IPPROTO_IP, libc::IP_TTL, bad)
                .unwrap_err(),
            libc::EINVAL
        );
    }
    assert_eq!(
        pd.setsockopt_int(l, libc::IPPROTO_IP, 9999, 1).unwrap_err(),
        libc::ENOPROTOOPT
    );
    // The header bytes of the next packet: (DS field, TTL), with its checksum checked.
    let ds_ttl = |p: &[u8]| {
        assert!(sluice_wire::Ipv4Packet::new_checked(p).unwrap().verify_checksum());
        (p[1], p[8])
    };
    // The packet as the common checks expect it (DS field 0, TTL 64), for parse_tcp.
    let plain = |p: &[u8]| {
        let mut v = p.to_vec();
        let mut ip = sluice_wire::Ipv4Packet::new_unchecked(&mut v[..]);
        ip.set_dscp(0);
        ip.set_ecn(0);
        ip.set_ttl(64);
        ip.fill_checksum();
        v
    };
    pd.bind(l, LOCAL, SP).unwrap();
    pd.listen(l, 1).unwrap();
    pd.send_seg(&Seg::new(PP, SP, TcpFlags::SYN, PISN, None).mss(1460));
    let (p, _) = pd.sniff();
    assert_eq!(ds_ttl(&p), (0x28, 9), "the SYN-ACK");
    let sa = parse_tcp(&plain(&p));
    pd.send_seg(&Seg::new(PP, SP, 0, PISN + 1, Some(sa.seq + 1)));
    let (fd, _, _) = pd.accept(l).unwrap();
    assert_eq!(int(fd, libc::IPPROTO_IP, libc::IP_TOS), 0x28);
    assert_eq!(pd.write(fd, b"hello").unwrap(), 5);
    let (p, _) = pd.sniff();
    assert_eq!(ds_ttl(&p), (0x28, 9), "data of the accepted connection");
    // Changed on the live connection: the next packet has the new values; -1 is the default.
    pd.setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_TOS, 0xb8)
        .unwrap();
    pd.setsockopt_int(fd, libc::IPPROTO_IP, libc::IP_TTL, -1).unwrap();
    assert_eq!(pd.write(fd, b"again").unwrap(), 5);
    let (p, _) = pd.sniff();
    assert_eq!(ds_ttl(&p), (0xb8, 64), "EF, and the default TTL");
    // An active open: its SYN carries them.
    let c = pd.socket(libc::SOCK_STREAM).unwrap();
    pd.set_nonblock(c);
    pd.setsockopt_int(c, libc::IPPROTO_IP, libc::IP_TOS, 0x10)
        .unwrap();
    pd.setsockopt_int(c, libc::IPPROTO_IP, libc::IP_TTL, 3).unwrap();
    assert_eq!(pd.connect(c, REMOTE, 9000).unwrap_err(), libc::EINPROGRESS);
    let (p, _) = pd.sniff();
    assert!(parse_tcp(&plain(&p)).flags & TcpFlags::SYN != 0);
    assert_eq!(ds_ttl(&p), (0x10, 3), "the SYN");
}

/// UDP through an AF_INET6 socket over IPv6 (packetdrill's ipv6 mode): a datagram in, the
/// sender read back as the IPv6 peer, the answer out as an IPv6 datagram with a valid
/// checksum. Each socket keeps to its family: an AF_INET socket on the same port never
/// receives the IPv6 datagrams.
#[test]
fn udp_over_ipv6_keeps_to_the_sockets_family() {
    let mut pd = Pd::new(&format!("{PLAIN} {V6_FLAGS}"));
    assert!(pd.v6);
    let s6 = pd.socket(libc::SOCK_DGRAM).unwrap();
    assert_eq!(pd.bind(s6, LOCAL, 5000), Ok(0));
    pd.inject(&udp_packet_v6(4000, 5000, b"six"));
    assert_eq!(pd.recvfrom(s6, 64), Ok((b"six".to_vec(), REMOTE, 4000)));
    assert_eq!(pd.sendto(s6, b"back", REMOTE, 4000), Ok(4));
    let (p, _) = pd.sniff();
    let ip = sluice_wire::Ipv6Packet::new_checked(&p[..]).expect("an IPv6 packet");
    assert_eq!((ip.src_addr(), ip.dst_addr()), (LOCAL6, REMOTE6));
    assert_eq!(ip.next_header(), sluice_wire::IpProtocol::Udp);
    let u = sluice_wire::UdpPacket::new_checked(&p[40..]).unwrap();
    assert!(u.verify_checksum(LOCAL6, REMOTE6));
    assert_eq!(
        (u.src_port(), u.dst_port(), u.payload()),
        (5000, 4000, &b"back"[..])
    );
    assert_eq!(pd.close(s6), Ok(0));
    // An AF_INET socket: the IPv6 datagram is not its, the IPv4 one is.
    pd.v6 = false;
    let s4 = pd.socket(libc::SOCK_DGRAM).unwrap();
    assert_eq!(pd.bind(s4, LOCAL, 5000), Ok(0));
    pd.set_nonblock(s4);
    pd.inject(&udp_packet_v6(4000, 5000, b"not yours"));
    pd.inject(&udp_packet(4000, 5000, b"yours"));
    assert_eq!(pd.recvfrom(s4, 64), Ok((b"yours".to_vec(), REMOTE, 4000)));
    assert_eq!(pd.recvfrom(s4, 64), Err(libc::EAGAIN));
}

/// An AF_INET listener and an IPV6_V6ONLY one share a port, as on Linux (nginx's `listen
/// 80; listen [::]:80;`): each client reaches the listener of its family, and a dual-stack
/// listener cannot join them.
#[test]
fn an_ipv4_and_an_ipv6_only_listener_share_a_port() {
    let mut pd = Pd::new(&format!("{PLAIN} {V6_FLAGS}"));
    pd.v6 = false;
    let s4 = pd.socket(libc::SOCK_STREAM | libc::SOCK_NONBLOCK).unwrap();
    assert_eq!(pd.bind(s4, LOCAL, 8080), Ok(0));
    assert_eq!(pd.listen(s4, 8), Ok(0));
    pd.v6 = true;
    let s6 = pd.socket(libc::SOCK_STREAM | libc::SOCK_NONBLOCK).unwrap();
    assert_eq!(
        pd.setsockopt_int(s6, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1),
        Ok(0)
    );
    assert_eq!(pd.bind(s6, LOCAL, 8080), Ok(0));
    assert_eq!(pd.listen(s6, 8), Ok(0));
    let both = pd.socket(libc::SOCK_STREAM).unwrap();
    assert_eq!(pd.bind(both, LOCAL, 8080), Err(libc::EADDRINUSE));
    for (v6, fd, other) in [(true, s6, s4), (false, s4, s6)] {
        pd.v6 = v6;
        let port = if v6 { 40006 } else { 40004 };
        pd.send_seg(&Seg::new(port, 8080, TcpFlags::SYN, 1000, None).mss(1460));
        let (synack, _) = pd.expect_tcp();
        assert_eq!(synack.flags, TcpFlags::SYN, "{synack:?}");
        pd.send_seg(&Seg::new(port, 8080, 0, 1001, Some(synack.seq.wrapping_add(1))));
        let (nfd, peer, pport) = pd.accept(fd).expect("accepted by the listener of its family");
        assert_eq!((peer, pport), (REMOTE, port));
        assert!(nfd > fd);
        assert_eq!(
            pd.accept(other).map(|a| a.0),
            Err(libc::EAGAIN),
            "not the other one"
        );
    }
}
