//! Our own packetdrill scripts (`tests/pkt/*.pkt`), run by a small loader through
//! packetdrill's interface of the C API (`common::Pd`), in virtual time: every script runs
//! in `cargo test`, with no packetdrill binary.
//!
//! The loader understands the subset of packetdrill's language the scripts use:
//!
//! - `// flags: --sack=1 ...` (first lines): the instance's flags, added to `common::PLAIN`;
//! - `// modes: ipv6` (or `ipv4`, `mapped`): the packetdrill modes the script runs in
//!   (default all three: `ipv4`, `ipv4-mapped-ipv6`, and `ipv6` with `common::V6_FLAGS`);
//! - times: `+T` (after the previous line) or `T` (from the start), in seconds;
//! - calls: `socket(..., SOCK_STREAM, IPPROTO_TCP) = 3`, `bind(3, ..., ...) = 0` (port
//!   8080), `listen(3, N)`, `accept(3, ..., ...) = 4`, `connect(3, ..., ...)` (to the peer's
//!   8080), `read(4, ..., N)`, `write(4, ..., N)`, `shutdown(4, SHUT_WR)`, `close(4)`,
//!   `fcntl(3, F_SETFL, O_RDWR|O_NONBLOCK)`, `setsockopt(3, LEVEL, NAME, [N], 4)`,
//!   `getsockopt(3, LEVEL, NAME, [N or ERRNO], [4])`; the result `= N` or
//!   `= -1 ERRNO (text)`;
//! - packets from the peer, `< FLAGS START:END(LEN) [ack N] [win N] [<options>]`, and
//!   expected from the stack, `> ...` (only the fields written are compared; `.` is ACK;
//!   options: `mss N`, `wscale N`, `sackOK`, `sack A:B ...`, `nop`); sequence numbers are
//!   relative to the sender's initial sequence number, as in packetdrill;
//! - `< icmp unreachable port_unreachable` / `net_unreachable` / `host_unreachable`,
//!   `< icmp time_exceeded`, `< icmp packet_too_big mtu N`: an ICMP error quoting the
//!   stack's last segment (ICMPv6 in the `ipv6` mode), with the sequence number of
//!   `[START:END(LEN)]` when the line ends with it, as in packetdrill.

mod common;

use std::path::Path;

use common::*;
use sluice_wire::{SeqNumber, TcpFlags, TcpOptions};

/// The peer's port and initial sequence number; the stack's port when it listens.
const PEER_PORT: u16 = 40000;
const PEER_ISN: u32 = 1_000_000;
const STACK_PORT: u16 = 8080;

struct Run {
    pd: Pd,
    /// Virtual time of the script, µs.
    t: i64,
    /// The stack's initial sequence number and port, once its SYN or SYN-ACK was seen.
    iss: Option<u32>,
    port: u16,
    /// The peer's port.
    peer: u16,
    /// The last packet the stack sent (for ICMP quotes).
    last_out: Vec<u8>,
}

fn errno_named(name: &str) -> Option<i32> {
    Some(match name {
        "EAGAIN" => libc::EAGAIN,
        "EINPROGRESS" => libc::EINPROGRESS,
        "ECONNRESET" => libc::ECONNRESET,
        "ECONNREFUSED" => libc::ECONNREFUSED,
        "EHOSTUNREACH" => libc::EHOSTUNREACH,
        "ENETUNREACH" => libc::ENETUNREACH,
        "ETIMEDOUT" => libc::ETIMEDOUT,
        "EPIPE" => libc::EPIPE,
        "ENOTCONN" => libc::ENOTCONN,
        "EINVAL" => libc::EINVAL,
        "ENOPROTOOPT" => libc::ENOPROTOOPT,
        _ => return None,
    })
}

fn constant(name: &str) -> Option<i64> {
    Some(match name {
        "SOL_SOCKET" => libc::SOL_SOCKET.into(),
        "IPPROTO_TCP" => libc::IPPROTO_TCP.into(),
        "IPPROTO_IP" => libc::IPPROTO_IP.into(),
        "SO_ERROR" => libc::SO_ERROR.into(),
        "SO_REUSEADDR" => libc::SO_REUSEADDR.into(),
        "SO_KEEPALIVE" => libc::SO_KEEPALIVE.into(),
        "TCP_NODELAY" => libc::TCP_NODELAY.into(),
        "TCP_KEEPIDLE" => libc::TCP_KEEPIDLE.into(),
        "TCP_KEEPINTVL" => libc::TCP_KEEPINTVL.into(),
        "TCP_KEEPCNT" => libc::TCP_KEEPCNT.into(),
        "TCP_USER_TIMEOUT" => libc::TCP_USER_TIMEOUT.into(),
        "TCP_SYNCNT" => libc::TCP_SYNCNT.into(),
        "IP_TOS" => libc::IP_TOS.into(),
        "IP_TTL" => libc::IP_TTL.into(),
        "SHUT_RD" => libc::SHUT_RD.into(),
        "SHUT_WR" => libc::SHUT_WR.into(),
        "SHUT_RDWR" => libc::SHUT_RDWR.into(),
        _ => return name.parse().ok().or_else(|| errno_named(name).map(i64::from)),
    })
}

/// Splits `s` at commas outside brackets.
fn args(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth) = (Vec::new(), String::new(), 0);
    for ch in s.chars() {
        match ch {
            '[' | '(' | '{' => depth += 1,
            ']' | ')' | '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// `[N]` or `N`: the number or constant inside.
fn value(s: &str) -> i64 {
    let v = s.trim().trim_start_matches('[').trim_end_matches(']');
    constant(v).unwrap_or_else(|| panic!("unknown value {s:?}"))
}

/// A segment as a script writes it: flags, relative sequence range, ack, window, options.
#[derive(Debug, Default)]
struct PktLine {
    flags: u8,
    ack_flag: bool,
    start: u32,
    len: u32,
    ack: Option<u32>,
    win: Option<u16>,
    options: Option<Vec<String>>,
}

fn parse_pkt(s: &str) -> PktLine {
    let mut p = PktLine::default();
    let (main, opts) = match s.find('<') {
        Some(i) => (&s[..i], Some(s[i + 1..].trim_end().trim_end_matches('>'))),
        None => (s, None),
    };
    let mut words = main.split_whitespace();
    for c in words.next().expect("flags").chars() {
        match c {
            'S' => p.flags |= TcpFlags::SYN,
            'F' => p.flags |= TcpFlags::FIN,
            'R' => p.flags |= TcpFlags::RST,
            'P' => p.flags |= TcpFlags::PSH,
            '.' => p.ack_flag = true,
            other => panic!("flag {other:?}"),
        }
    }
    let range = words.next().expect("START:END(LEN)");
    let (se, len) = range.split_once('(').expect("(LEN)");
    let (start, _end) = se.split_once(':').expect("START:END");
    p.start = start.parse().expect("start");
    p.len = len.trim_end_matches(')').parse().expect("len");
    while let Some(w) = words.next() {
        let v = words.next().unwrap_or_else(|| panic!("{w} needs a value"));
        match w {
            "ack" => p.ack = Some(v.parse().expect("ack")),
            "win" => p.win = Some(v.parse().expect("win")),
            _ => panic!("unknown field {w}"),
        }
    }
    p.options = opts.map(|o| o.split(',').map(|x| x.trim().to_string()).collect());
    p
}

/// The options a script wrote, with SACK blocks made absolute by `base`.
fn options(list: &[String], base: u32) -> TcpOptions {
    let mut o = TcpOptions::default();
    for item in list {
        let mut w = item.split_whitespace();
        match w.next() {
            Some("mss") => o.mss = Some(w.next().unwrap().parse().unwrap()),
            Some("wscale") => o.window_scale = Some(w.next().unwrap().parse().unwrap()),
            Some("sackOK") => o.sack_permitted = true,
            Some("nop") | None => {}
            Some("sack") => {
                for b in w {
                    let (l, r) = b.split_once(':').unwrap();
                    let (l, r): (u32, u32) = (l.parse().unwrap(), r.parse().unwrap());
                    o.sack
                        .push(SeqNumber(base.wrapping_add(l)), SeqNumber(base.wrapping_add(r)));
                }
            }
            Some(other) => panic!("option {other:?}"),
        }
    }
    o
}

impl Run {
    fn sleep_to(&mut self, at: i64) {
        if at > self.t {
            self.pd.usleep((at - self.t) as u32);
            self.t = at;
        }
    }

    fn inbound(&mut self, line: &str) {
        if let Some(icmp) = line.strip_prefix("icmp ") {
            return self.icmp(icmp);
        }
        let p = parse_pkt(line);
        let iss = self.iss.unwrap_or(0);
        let mut seg = Seg::new(
            self.peer,
            self.port,
            p.flags,
            PEER_ISN.wrapping_add(p.start),
            p.ack.map(|a| iss.wrapping_add(a)),
        );
        assert_eq!(
            p.ack_flag,
            seg.ack.is_some(),
            "`.` and `ack N` go together: {line}"
        );
        seg.window = p.win.unwrap_or(65535);
        seg.payload = (0..p.len).map(|i| (i % 251) as u8).collect();
        if let Some(o) = &p.options {
            seg.options = options(o, iss);
        }
        self.pd.send_seg(&seg);
    }

    fn outbound(&mut self, line: &str) {
        let p = parse_pkt(line);
        let (raw, _) = self.pd.sniff();
        assert!(!raw.is_empty(), "expected `> {line}`, the stack sent nothing");
        let seg = self.pd.parse(&raw);
        self.last_out = raw;
        if p.flags & TcpFlags::SYN != 0 {
            self.iss = Some(seg.seq.wrapping_sub(p.start));
            if seg.ack.is_none() {
                // Our SYN: the peer answers from the port it was sent to.
                self.port = seg.src_port;
                self.peer = seg.dst_port;
            }
        }
        let iss = self.iss.expect("the stack's SYN or SYN-ACK comes first");
        let what = format!("`> {line}`, got {seg:?}");
        assert_eq!(seg.flags, p.flags, "flags: {what}");
        assert_eq!(seg.ack.is_some(), p.ack_flag, "ACK flag: {what}");
        assert_eq!(seg.seq.wrapping_sub(iss), p.start, "sequence: {what}");
        assert_eq!(seg.payload.len() as u32, p.len, "length: {what}");
        if let Some(a) = p.ack {
            assert_eq!(seg.ack.map(|x| x.wrapping_sub(PEER_ISN)), Some(a), "ack: {what}");
        }
        if let Some(w) = p.win {
            assert_eq!(seg.window, w, "window: {what}");
        }
        if let Some(o) = &p.options {
            assert_eq!(seg.options, options(o, PEER_ISN), "options: {what}");
        }
    }

    /// An ICMP error from the peer quoting the stack's last packet: over IPv6 the ICMPv6
    /// message of the same meaning.
    fn icmp(&mut self, what: &str) {
        // packetdrill's `[START:END(LEN)]` at the end names the quoted segment's sequence
        // number (relative to the stack's ISS); without it, the last packet's stands.
        let (what, quoted_seq) = match what.split_once('[') {
            Some((w, q)) => {
                let start: u32 = q
                    .split(':')
                    .next()
                    .unwrap()
                    .trim()
                    .parse()
                    .expect("[START:END(LEN)]");
                (w.trim(), Some(start))
            }
            None => (what, None),
        };
        let words = what.split_whitespace().collect::<Vec<_>>();
        // (ICMPv4 type, code), (ICMPv6 type, code), the MTU field.
        let ((ty, code), v6, mtu) = match words[..] {
            ["unreachable", "net_unreachable"] => ((3u8, 0u8), (1u8, 0u8), 0u32),
            ["unreachable", "host_unreachable"] => ((3, 1), (1, 3), 0),
            ["unreachable", "port_unreachable"] => ((3, 3), (1, 4), 0),
            ["time_exceeded"] => ((11, 0), (3, 0), 0),
            // Fragmentation needed / Packet Too Big, with the next hop's MTU.
            ["packet_too_big", "mtu", m] => ((3, 4), (2, 0), m.parse().expect("an MTU")),
            _ => panic!("icmp {what:?}"),
        };
        assert!(
            !self.last_out.is_empty(),
            "an ICMP error quotes the stack's last packet"
        );
        if let Some(start) = quoted_seq {
            let iss = self.iss.expect("the stack's SYN or SYN-ACK comes first");
            let at = if self.pd.v6 { 40 + 4 } else { 20 + 4 };
            self.last_out[at..at + 4].copy_from_slice(&iss.wrapping_add(start).to_be_bytes());
        }
        if self.pd.v6 {
            let quote = self.last_out.clone();
            let mut msg = vec![v6.0, v6.1, 0, 0];
            msg.extend_from_slice(&mtu.to_be_bytes());
            msg.extend_from_slice(&quote[..quote.len().min(1232)]);
            let sum = sluice_wire::checksum::combine(&[
                sluice_wire::icmpv6::pseudo_header_v6(REMOTE6, LOCAL6, 58, msg.len() as u32),
                sluice_wire::checksum::sum(&msg),
            ]);
            msg[2..4].copy_from_slice(&(!sum).to_be_bytes());
            let packet = ipv6_packet(sluice_wire::IpProtocol::Unknown(58), msg.len(), |b| {
                b.copy_from_slice(&msg)
            });
            return self.pd.inject(&packet);
        }
        let quote = &self.last_out[..self.last_out.len().min(28)];
        let mut icmp = vec![ty, code, 0, 0, 0, 0, (mtu >> 8) as u8, mtu as u8];
        icmp.extend_from_slice(quote);
        let c = !sluice_wire::checksum::sum(&icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        let mut ip = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 1, 0, 0];
        ip.extend_from_slice(&REMOTE.0);
        ip.extend_from_slice(&LOCAL.0);
        let total = (20 + icmp.len()) as u16;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        let c = !sluice_wire::checksum::sum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        ip.extend_from_slice(&icmp);
        self.pd.inject(&ip);
    }

    fn call(&mut self, line: &str) {
        let (call, expect) = line.rsplit_once('=').expect("CALL = RESULT");
        let (name, rest) = call.trim().split_once('(').expect("name(");
        let a = args(rest.trim().trim_end_matches(')'));
        let fd = || value(&a[0]);
        let got: Result<i64, i32> = match name {
            "socket" => self.pd.socket(libc::SOCK_STREAM),
            "bind" => self.pd.bind(fd(), LOCAL, STACK_PORT),
            "listen" => self.pd.listen(fd(), value(&a[1]) as i32),
            "accept" => self.pd.accept(fd()).map(|(n, _, _)| n),
            "connect" => self.pd.connect(fd(), REMOTE, STACK_PORT),
            "read" => self.pd.read(fd(), value(&a[2]) as usize).map(|v| v.len() as i64),
            "write" => self.pd.write(fd(), &vec![b'x'; value(&a[2]) as usize]),
            "shutdown" => self.pd.shutdown(fd(), value(&a[1]) as i32),
            "close" => self.pd.close(fd()),
            "fcntl" => {
                assert_eq!(a[1], "F_SETFL", "fcntl: F_SETFL only");
                let nb = if a[2].contains("O_NONBLOCK") {
                    libc::O_NONBLOCK
                } else {
                    0
                };
                self.pd.fcntl(fd(), libc::F_SETFL, libc::c_long::from(nb))
            }
            "setsockopt" => self.pd.setsockopt_int(
                fd(),
                value(&a[1]) as i32,
                value(&a[2]) as i32,
                value(&a[3]) as i32,
            ),
            "getsockopt" => {
                let v = self
                    .pd
                    .getsockopt_int(fd(), value(&a[1]) as i32, value(&a[2]) as i32);
                if let Ok(v) = v {
                    assert_eq!(i64::from(v), value(&a[3]), "{line}: the option's value");
                }
                v.map(|_| 0)
            }
            other => panic!("unsupported call {other}"),
        };
        let mut e = expect.split_whitespace();
        let want: i64 = e.next().expect("result").parse().expect("a number");
        if want < 0 {
            let name = e.next().expect("-1 needs an errno");
            let code = errno_named(name).unwrap_or_else(|| panic!("errno {name}"));
            assert_eq!(got, Err(code), "{line}: got {got:?}");
        } else {
            assert_eq!(got, Ok(want), "{line}");
        }
    }
}

/// packetdrill's three modes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Ipv4,
    /// AF_INET6 sockets, IPv4-mapped addresses, the same IPv4 packets.
    Mapped,
    /// AF_INET6 sockets, IPv6 addresses and packets (`common::V6_FLAGS`).
    Ipv6,
}

/// Runs one script in one of packetdrill's modes.
fn run_script(path: &Path, mode: Mode) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut flags = PLAIN.to_string();
    if mode == Mode::Ipv6 {
        flags.push(' ');
        flags.push_str(V6_FLAGS);
    }
    for l in text.lines() {
        if let Some(f) = l.trim().strip_prefix("// flags:") {
            flags.push(' ');
            flags.push_str(f.trim());
        }
    }
    let mut pd = Pd::new(&flags);
    pd.mapped = mode == Mode::Mapped;
    assert_eq!(pd.v6, mode == Mode::Ipv6);
    let t = pd.now_us();
    let mut r = Run {
        pd,
        t,
        iss: None,
        port: STACK_PORT,
        peer: PEER_PORT,
        last_out: Vec::new(),
    };
    let start = r.t;
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split("//").next().unwrap().trim();
        if line.is_empty() {
            continue;
        }
        let (time, rest) = line.split_once(char::is_whitespace).expect("TIME EVENT");
        let at = match time.strip_prefix('+') {
            Some(d) => r.t + (d.parse::<f64>().expect("time") * 1e6) as i64,
            None => start + (time.parse::<f64>().expect("time") * 1e6) as i64,
        };
        r.sleep_to(at);
        let rest = rest.trim();
        eprintln!("{}:{}: {rest}", path.display(), n + 1);
        if let Some(p) = rest.strip_prefix('<') {
            r.inbound(p.trim());
        } else if let Some(p) = rest.strip_prefix('>') {
            r.outbound(p.trim());
        } else {
            r.call(rest);
        }
    }
}

#[test]
fn every_script_passes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pkt");
    let mut scripts: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pkt"))
        .collect();
    scripts.sort();
    assert!(scripts.len() >= 5, "scripts in {}", dir.display());
    for s in scripts {
        // `// modes: ipv6` (or ipv4, mapped) limits a script to those modes.
        let text = std::fs::read_to_string(&s).unwrap();
        let only = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("// modes:"))
            .map(|m| m.split_whitespace().map(str::to_string).collect::<Vec<_>>());
        for mode in [Mode::Ipv4, Mode::Mapped, Mode::Ipv6] {
            let name = format!("{mode:?}").to_lowercase();
            if only.as_ref().is_some_and(|m| !m.contains(&name)) {
                continue;
            }
            eprintln!("== {} in {mode:?} mode", s.display());
            run_script(&s, mode);
        }
    }
}
