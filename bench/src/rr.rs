//! Request/response over many connections, both ends Sluice in one process over an
//! in-memory link (`MemLink`, no impairments): the workload callgrind counts the stack's
//! instructions per request/response with (`callgrind-driver rr-256`).
//!
//! A step is one 64-byte request on the next connection (round robin): the client writes
//! it, both interfaces poll, the server reads it and writes it back, both poll, the client
//! reads the reply. The counts are of both ends together, as one exchange costs the two
//! machines, with the interfaces' polls but no device work beyond the memory link's.

use std::time::Duration;

use sluice_dev::{Device, Impairments, MemDevice, MemLink};
use sluice_net::{Interface, InterfaceConfig, IsnKey, TcpHandle, TcpRecvError, TcpState};
use sluice_wire::{EthernetAddress, Instant, Ipv4Address, Ipv4Cidr};

const SERVER: Ipv4Address = Ipv4Address::new(198, 18, 0, 1);
const CLIENT: Ipv4Address = Ipv4Address::new(198, 18, 0, 2);
const PORT: u16 = 7;
/// The request and reply size.
pub const MESSAGE: usize = 64;

struct End {
    iface: Interface,
    dev: MemDevice,
}

/// A client and a server interface over a memory link, and the clock the steps advance.
struct Ends {
    client: End,
    server: End,
    now_ns: u64,
    _link: MemLink,
}

impl Ends {
    /// Both ends with TCP_NODELAY, and whatever else `configure` sets.
    fn new(configure: impl Fn(&mut InterfaceConfig)) -> Ends {
        let (dc, ds, link) = MemLink::pair(Impairments::default(), Impairments::default(), 1, 4096);
        let end = |dev: MemDevice, ip: Ipv4Address| {
            let mut cfg = InterfaceConfig::new(Ipv4Cidr::new(ip, 24), IsnKey::fixed([7; 16]));
            cfg.tcp.nodelay = true;
            configure(&mut cfg);
            End {
                iface: Interface::new(cfg, EthernetAddress(dev.mac())),
                dev,
            }
        };
        Ends {
            client: end(dc, CLIENT),
            server: end(ds, SERVER),
            now_ns: 1_000_000,
            _link: link,
        }
    }

    /// The clock, a microsecond later.
    fn tick(&mut self) -> Instant {
        self.now_ns += 1_000;
        Instant::from_nanos(self.now_ns)
    }

    fn poll_both(&mut self, rounds: usize) {
        for _ in 0..rounds {
            let now = self.tick();
            self.client.iface.poll(now, &mut self.client.dev);
            self.server.iface.poll(now, &mut self.server.dev);
        }
    }
}

/// `conns` connections between two interfaces, established and idle.
pub struct RrPair {
    e: Ends,
    /// (client side, server side) of each connection.
    conns: Vec<(TcpHandle, TcpHandle)>,
    next: usize,
    buf: [u8; MESSAGE],
}

impl RrPair {
    pub fn new(conns: usize) -> RrPair {
        let mut p = RrPair {
            e: Ends::new(|cfg| {
                cfg.max_connections = conns + 16;
                cfg.tcp.msl = Duration::from_secs(1);
            }),
            conns: Vec::with_capacity(conns),
            next: 0,
            buf: [0x5a; MESSAGE],
        };
        let l = p.e.server.iface.tcp_listen(PORT, conns + 16).expect("listen");
        let mut clients = Vec::with_capacity(conns);
        for i in 0..conns {
            clients.push(p.e.client.iface.tcp_connect(SERVER, PORT).expect("connect"));
            // The first waits for ARP alone; the others go in bursts.
            if i == 0 || clients.len() % 32 == 0 {
                p.e.poll_both(16);
            }
        }
        // Each client connection by its local port, to pair with the server's side.
        let by_port: std::collections::HashMap<u16, TcpHandle> = clients
            .iter()
            .map(|&c| (p.e.client.iface.tcp_status(c).expect("live").local_port(), c))
            .collect();
        let mut rounds = 0;
        while p.conns.len() < conns {
            p.e.poll_both(1);
            while let Some(s) = p.e.server.iface.tcp_accept(l) {
                let port = p.e.server.iface.tcp_status(s).expect("accepted").remote().port;
                p.conns.push((by_port[&port], s));
            }
            rounds += 1;
            assert!(
                rounds < 100_000,
                "{} of {conns} connections established",
                p.conns.len()
            );
        }
        assert_eq!(p.conns.len(), conns);
        // A first exchange on each: windows, RTT and the delayed-ACK state settle.
        for _ in 0..conns {
            p.step();
        }
        p
    }

    /// One request/response on the next connection.
    #[inline]
    pub fn step(&mut self) {
        self.exchange::<1>();
    }

    /// `BATCH` request/responses on the next connections, each side's work batched as in
    /// a loaded run's busy loops (a full burst per poll): the client writes the requests,
    /// both poll, the server reads and answers them all, both poll, the client reads the
    /// replies. The per-poll costs are shared by the burst, as they are under load.
    pub fn step_batch(&mut self) {
        self.exchange::<BATCH>();
    }

    /// `N` request/responses on the next `N` connections (round robin), each way in one
    /// poll of each side.
    #[inline]
    fn exchange<const N: usize>(&mut self) {
        let n = self.conns.len();
        let pairs: [(TcpHandle, TcpHandle); N] = core::array::from_fn(|i| self.conns[(self.next + i) % n]);
        self.next = (self.next + N) % n;
        let e = &mut self.e;
        let now = e.tick();
        one_way(&mut e.client, &mut e.server, pairs, &mut self.buf, now);
        let now = e.tick();
        one_way(
            &mut e.server,
            &mut e.client,
            pairs.map(|(c, s)| (s, c)),
            &mut self.buf,
            now,
        );
    }
}

/// Exchanges per `RrPair::step_batch`: a burst (the engine's default burst size).
pub const BATCH: usize = 32;

/// `buf` on each pair (connection `a` of `from`, its other end `b` at `to`): all written,
/// sent by one poll of `from`, received by one poll of `to`, all read.
#[inline]
fn one_way<const N: usize>(
    from: &mut End,
    to: &mut End,
    pairs: [(TcpHandle, TcpHandle); N],
    buf: &mut [u8; MESSAGE],
    now: Instant,
) {
    for (a, _) in pairs {
        let sent = from.iface.tcp(a).and_then(|mut k| k.send(&buf[..]).ok());
        assert_eq!(sent, Some(MESSAGE), "message not queued");
    }
    from.iface.poll(now, &mut from.dev);
    to.iface.poll(now, &mut to.dev);
    for (_, b) in pairs {
        let got = to.iface.tcp(b).and_then(|mut k| k.recv(&mut buf[..]).ok());
        assert_eq!(got, Some(MESSAGE), "message not received in one round");
    }
}

/// Short connections, both ends Sluice over a memory link: the workload callgrind counts
/// the instructions of one whole connection with (`callgrind-driver conn`), as the e2e
/// new-connections row runs them. A step opens a connection and, as the e2e's programs do,
/// each side acts in its turn after each of its polls: the client writes its 64-byte
/// request once connected, the server accepts, reads it and writes it back, the client
/// reads the reply and closes, the server reads the end and closes. It polls until the
/// server has removed the connection (the client's side stays in TIME-WAIT for 2 MSL of
/// 1 ms of the step's clock, so a few hundred are there at once, and their timers fire as
/// in a real run).
pub struct ConnCycle {
    e: Ends,
    listener: sluice_net::ListenerHandle,
    buf: [u8; MESSAGE],
    /// Connections completed.
    pub done: u64,
}

impl ConnCycle {
    pub fn new() -> ConnCycle {
        let mut e = Ends::new(|cfg| cfg.tcp.msl = Duration::from_millis(1));
        let listener = e.server.iface.tcp_listen(PORT, 64).expect("listen");
        let mut w = ConnCycle {
            e,
            listener,
            buf: [0x5a; MESSAGE],
            done: 0,
        };
        // Past ARP, the first connections' growths and the first TIME-WAIT expiries.
        for _ in 0..1_000 {
            w.step();
        }
        w
    }

    /// One connection, from connect to the server's removal of it.
    pub fn step(&mut self) {
        let e = &mut self.e;
        let buf = &mut self.buf;
        let c = e.client.iface.tcp_connect(SERVER, PORT).expect("connect");
        let (mut s, mut asked, mut answered, mut closed) = (None, false, false, false);
        for round in 0.. {
            assert!(round < 32, "the connection did not end");
            let now = e.tick();
            // The client's poll, then its turn.
            e.client.iface.poll(now, &mut e.client.dev);
            if let Some(mut k) = e.client.iface.tcp(c) {
                if !asked && k.status().state() == TcpState::Established {
                    assert_eq!(k.send(&buf[..]), Ok(MESSAGE), "request not queued");
                    asked = true;
                } else if asked && !closed && k.recv(&mut buf[..]) == Ok(MESSAGE) {
                    assert!(k.close());
                    closed = true;
                }
            }
            // The server's poll, then its turn.
            e.server.iface.poll(now, &mut e.server.dev);
            if s.is_none() {
                s = e.server.iface.tcp_accept(self.listener);
            }
            let Some(sh) = s else {
                continue;
            };
            let Some(mut k) = e.server.iface.tcp(sh) else {
                break; // closed and removed: done
            };
            if !answered {
                if k.recv(&mut buf[..]) == Ok(MESSAGE) {
                    assert_eq!(k.send(&buf[..]), Ok(MESSAGE), "reply not queued");
                    answered = true;
                }
            } else if k.recv(&mut buf[..]) == Err(TcpRecvError::Finished) {
                assert!(k.close());
            }
        }
        self.done += 1;
    }
}

impl Default for ConnCycle {
    fn default() -> Self {
        ConnCycle::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The workloads callgrind counts stay what they say: every request and reply arrives
    /// whole in its round (asserted inside), one exchange or a burst of them at a time.
    #[test]
    fn each_step_completes_its_exchanges_on_every_connection() {
        let mut w = RrPair::new(BATCH * 2 + 3);
        for _ in 0..10 {
            w.step();
            w.step_batch();
        }
        let mut c = ConnCycle::new();
        c.step();
        assert_eq!(c.done, 1_001);
    }
}
