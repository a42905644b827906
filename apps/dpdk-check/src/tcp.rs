//! `tcp-sink` and `tcp-source`: TCP on the engine, checked end to end.
//!
//! The source opens connections, sends each a stream of pseudo-random bytes, half-closes,
//! and reads back 40 bytes: the SHA-256 of what the sink received and its length (u64, big
//! endian). It compares them with the digest of what it sent. The sink serves any number
//! of connections on every core. Kernel peers speak the same protocol
//! (`apps/dpdk-check/tests/peer.py`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use sha2::{Digest, Sha256};
use sluice_engine::{App, Config, Cx, Engine, Error, Frame, TcpListener, TcpStream};
use sluice_net::Endpoint;
use sluice_wire::Ipv4Address;

/// Counters shared by the cores and printed at the end.
#[derive(Default)]
pub struct Totals {
    pub done: AtomicU64,
    pub failed: AtomicU64,
    pub bytes: AtomicU64,
}

struct SinkConn {
    hash: Sha256,
    len: u64,
    reply: Option<([u8; 40], usize)>,
}

/// The sink: reads each connection to its end, answers digest + length, closes.
pub struct Sink {
    port: u16,
    listener: Option<TcpListener>,
    conns: HashMap<TcpStream, SinkConn>,
    totals: Arc<Totals>,
    expect: u64,
    /// When the expected connections had all been answered (`stop_once_closed`).
    all_done_at: Option<sluice_wire::Instant>,
    /// Read frames (zero-copy receive) instead of in place.
    zero_copy: bool,
}

impl Sink {
    pub fn new(port: u16, totals: Arc<Totals>, expect: u64, zero_copy: bool) -> Sink {
        Sink {
            port,
            listener: None,
            conns: HashMap::new(),
            totals,
            expect,
            all_done_at: None,
            zero_copy,
        }
    }
}

/// Called once every connection of this core is done: stops the engine when they have
/// also finished closing (none is left, TIME-WAIT included), or `limit` after the first
/// call (kept in `done_at`) at the latest.
fn stop_once_closed(cx: &Cx, done_at: &mut Option<sluice_wire::Instant>, limit: Duration) {
    let since = *done_at.get_or_insert(cx.now());
    if cx.iface().tcp_connections() == 0 || cx.now() - since > limit {
        cx.request_stop();
    }
}

/// Prints what a connection that did not finish was doing, for diagnosis.
fn dump(cx: &Cx, s: TcpStream, what: &str) {
    let peer = s.peer(cx);
    let iface = cx.iface();
    if let Some(t) = iface.tcp_status(s.0).map(|t| t.tcb()) {
        eprintln!(
            "{what}: unfinished {:?} state={:?} snd_una={} snd_nxt={} rcv_nxt={} send_queue={} recv_queue={} \
             rto={:?} cwnd={} window={} counters={:?}",
            peer,
            t.state(),
            t.snd_una().0,
            t.snd_nxt().0,
            t.rcv_nxt().0,
            t.send_queue(),
            t.recv_queue(),
            t.rto(),
            t.cwnd(),
            t.send_window(),
            t.counters()
        );
    }
}

impl App for Sink {
    fn finish(&mut self, cx: &Cx) {
        for &s in self.conns.keys() {
            dump(cx, s, "sink");
        }
    }
    fn start(&mut self, cx: &Cx) -> Result<(), sluice_engine::AppError> {
        let port = self.port;
        self.listener = Some(
            TcpListener::bind(cx, port, 1024).map_err(|e| format!("cannot listen on port {port}: {e}"))?,
        );
        Ok(())
    }
    fn poll(&mut self, cx: &Cx) -> bool {
        let mut did = false;
        if let Some(l) = self.listener {
            while let Ok(s) = l.accept(cx) {
                self.conns.insert(
                    s,
                    SinkConn {
                        hash: Sha256::new(),
                        len: 0,
                        reply: None,
                    },
                );
                did = true;
            }
        }
        let mut finished = Vec::new();
        for (s, c) in self.conns.iter_mut() {
            if c.reply.is_none() {
                loop {
                    let r = if self.zero_copy {
                        s.read_frame(cx, usize::MAX).map(|f| {
                            f.map(|f| {
                                c.hash.update(&f[..]);
                                f.len()
                            })
                        })
                    } else {
                        s.read_with(cx, |data| {
                            c.hash.update(data);
                            (data.len(), data.len())
                        })
                    };
                    match r {
                        Ok(Some(n)) => {
                            c.len += n as u64;
                            did = true;
                        }
                        Ok(None) => {
                            let mut reply = [0u8; 40];
                            reply[..32].copy_from_slice(&c.hash.clone().finalize());
                            reply[32..].copy_from_slice(&c.len.to_be_bytes());
                            c.reply = Some((reply, 0));
                            break;
                        }
                        Err(Error::WouldBlock) => break,
                        Err(_) => {
                            self.totals.failed.fetch_add(1, Ordering::Relaxed);
                            finished.push(*s);
                            break;
                        }
                    }
                }
            }
            if let Some((reply, sent)) = &mut c.reply {
                while *sent < 40 {
                    match s.write(cx, &reply[*sent..]) {
                        Ok(n) => {
                            *sent += n;
                            did = true;
                        }
                        Err(_) => break,
                    }
                }
                if *sent == 40 {
                    self.totals.done.fetch_add(1, Ordering::Relaxed);
                    self.totals.bytes.fetch_add(c.len, Ordering::Relaxed);
                    finished.push(*s);
                }
            }
        }
        for s in finished {
            self.conns.remove(&s);
            s.close(cx);
        }
        if self.expect > 0
            && self.totals.done.load(Ordering::Relaxed) + self.totals.failed.load(Ordering::Relaxed)
                >= self.expect
        {
            // The replies and FINs may still need retransmitting.
            stop_once_closed(cx, &mut self.all_done_at, Duration::from_secs(30));
        }
        did
    }
}

/// The bytes of connection `id`: a xorshift stream seeded by the id.
pub struct Pattern(u64);

impl Pattern {
    pub fn new(id: u64) -> Pattern {
        Pattern(id.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
    }
}

struct SourceConn {
    id: u64,
    pattern: Pattern,
    hash: Sha256,
    sent: u64,
    shut: bool,
    reply: Vec<u8>,
    /// The part of a frame the send buffer had no room for (zero-copy send).
    rest: Option<Frame>,
}

/// The source: `total` connections over all cores, at most `parallel` at once per core.
pub struct Source {
    remote: Endpoint,
    total: u64,
    bytes: u64,
    parallel: usize,
    next: u64,
    conns: HashMap<TcpStream, SourceConn>,
    totals: Arc<Totals>,
    started: StdInstant,
    timeout: Duration,
    /// Fill mbufs and queue them by reference (zero-copy send).
    zero_copy: bool,
    /// When every connection had finished (`stop_once_closed`).
    all_done_at: Option<sluice_wire::Instant>,
}

impl Source {
    pub fn new(
        remote: Endpoint,
        total: u64,
        bytes: u64,
        parallel: usize,
        totals: Arc<Totals>,
        timeout: Duration,
        zero_copy: bool,
    ) -> Source {
        Source {
            zero_copy,
            remote,
            total,
            bytes,
            parallel,
            next: 0,
            conns: HashMap::new(),
            totals,
            started: StdInstant::now(),
            timeout,
            all_done_at: None,
        }
    }
}

impl App for Source {
    fn finish(&mut self, cx: &Cx) {
        for &s in self.conns.keys() {
            dump(cx, s, "source");
        }
    }
    fn start(&mut self, cx: &Cx) -> Result<(), sluice_engine::AppError> {
        // Core c opens connections c, c + cores, c + 2 * cores, ...
        self.next = cx.core() as u64;
        Ok(())
    }
    fn poll(&mut self, cx: &Cx) -> bool {
        let mut did = false;
        while self.conns.len() < self.parallel && self.next < self.total {
            match TcpStream::connect(cx, self.remote.addr, self.remote.port) {
                Ok(s) => {
                    let id = self.next;
                    self.conns.insert(
                        s,
                        SourceConn {
                            id,
                            pattern: Pattern::new(id),
                            hash: Sha256::new(),
                            sent: 0,
                            shut: false,
                            reply: Vec::new(),
                            rest: None,
                        },
                    );
                    self.next += cx.cores() as u64;
                    did = true;
                }
                Err(_) => break,
            }
        }
        let mut finished = Vec::new();
        let bytes = self.bytes;
        for (s, c) in self.conns.iter_mut() {
            if let Some(e) = s.error(cx) {
                eprintln!("source: connection {} failed: {e}", c.id);
                self.totals.failed.fetch_add(1, Ordering::Relaxed);
                finished.push(*s);
                continue;
            }
            if self.zero_copy {
                did |= send_frames(cx, *s, c, bytes);
            }
            while !self.zero_copy && c.sent < bytes {
                let left = (bytes - c.sent) as usize;
                let (pattern, hash) = (&mut c.pattern, &mut c.hash);
                match s.write_with(cx, |room| {
                    let n = room.len().min(left);
                    pattern.fill(&mut room[..n]);
                    hash.update(&room[..n]);
                    n
                }) {
                    Ok(n) => {
                        c.sent += n as u64;
                        did = true;
                    }
                    Err(_) => break,
                }
            }
            // Half-close once everything is queued and the connection is open (a shutdown
            // in SYN-SENT would delete the connection, RFC 9293 3.10.4).
            if c.sent == bytes && c.rest.is_none() && !c.shut && s.is_established(cx) {
                s.shutdown(cx);
                c.shut = true;
            }
            let mut buf = [0u8; 40];
            loop {
                match s.read(cx, &mut buf[..40 - c.reply.len().min(40)]) {
                    Ok(0) => {
                        let want = c.hash.clone().finalize();
                        let ok = c.reply.len() == 40
                            && c.reply[..32] == want[..]
                            && c.reply[32..] == bytes.to_be_bytes();
                        if ok {
                            self.totals.done.fetch_add(1, Ordering::Relaxed);
                            self.totals.bytes.fetch_add(bytes, Ordering::Relaxed);
                        } else {
                            eprintln!(
                                "source: connection {} digest mismatch ({} reply bytes)",
                                c.id,
                                c.reply.len()
                            );
                            self.totals.failed.fetch_add(1, Ordering::Relaxed);
                        }
                        finished.push(*s);
                        did = true;
                        break;
                    }
                    Ok(n) => {
                        c.reply.extend_from_slice(&buf[..n]);
                        did = true;
                        if c.reply.len() >= 40 {
                            // Wait for the end of stream to confirm.
                            continue;
                        }
                    }
                    Err(Error::WouldBlock) => break,
                    Err(e) => {
                        eprintln!("source: connection {} read error: {e}", c.id);
                        self.totals.failed.fetch_add(1, Ordering::Relaxed);
                        finished.push(*s);
                        break;
                    }
                }
            }
        }
        for s in finished {
            self.conns.remove(&s);
            s.close(cx);
        }
        let t = &self.totals;
        if self.started.elapsed() > self.timeout {
            cx.request_stop();
        } else if t.done.load(Ordering::Relaxed) + t.failed.load(Ordering::Relaxed) >= self.total {
            // A connection in TIME-WAIT acknowledges the sink's FIN again when our last
            // ACK was lost. Stopping at once left the sink in LAST-ACK, retransmitting its
            // FIN to no one until its own 30 s limit.
            stop_once_closed(cx, &mut self.all_done_at, Duration::from_secs(10));
        }
        did
    }
}

/// Zero-copy send: fills frames from the core's mbuf pool, one MSS each, and queues them
/// by reference until the send buffer is full. Returns whether anything was queued.
fn send_frames(cx: &Cx, s: TcpStream, c: &mut SourceConn, bytes: u64) -> bool {
    let Some(mss) = s.mss(cx) else {
        return false;
    };
    let mut did = false;
    loop {
        let frame = match c.rest.take() {
            Some(f) => f,
            None if c.sent < bytes => {
                let Some(mut m) = cx.alloc_frame() else {
                    return did; // pool exhausted for now
                };
                let n = m.remaining().min(mss).min((bytes - c.sent) as usize);
                c.pattern.fill(&mut m.spare_mut()[..n]);
                m.commit(n);
                c.hash.update(m.filled());
                c.sent += n as u64;
                m.freeze()
            }
            None => return did,
        };
        match s.write_frame(cx, frame) {
            Ok(None) => did = true,
            Ok(Some(rest)) => {
                c.rest = Some(rest);
                return did;
            }
            Err(_) => return did,
        }
    }
}

/// Runs the sink or the source on the engine and prints a summary; returns whether all
/// connections succeeded.
pub fn run(
    config: &Config,
    source: Option<(Endpoint, u64, u64, usize)>,
    port: u16,
    expect: u64,
    seconds: u64,
    zero_copy: bool,
) -> Result<bool, Box<dyn std::error::Error>> {
    let totals = Arc::new(Totals::default());
    let t0 = StdInstant::now();
    let tl = totals.clone();
    let limit = Duration::from_secs(seconds);
    let stats = Engine::run(
        "sluice-dpdk-check",
        config,
        |_core| -> Box<dyn App> {
            match source {
                Some((remote, n, bytes, parallel)) => Box::new(Source::new(
                    remote,
                    n,
                    bytes,
                    parallel,
                    tl.clone(),
                    limit,
                    zero_copy,
                )),
                None => Box::new(Sink::new(port, tl.clone(), expect, zero_copy)),
            }
        },
        |h| {
            println!(
                "tcp: engine up on {} cores, driver {}, mac {}",
                h.cores(),
                h.driver,
                h.mac
            );
            println!(
                "tcp: offloads rx_checksum={} tx_l4_checksum={} tx_ip_checksum={}",
                h.checksum_offload.0, h.checksum_offload.1, h.ip_checksum_offload
            );
            let flag = h.stop_flag();
            let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
            // Another thread reaches each core through its command channel: ask every core
            // for its address and core number, answered from the core itself.
            for core in 0..h.cores() {
                let (tx, rx) = crossbeam_channel::bounded(1);
                let sent = h.run_on(core, move |cx| {
                    // The CPUs the core's own thread may run on.
                    let cpus = sluice_dpdk::allowed_cpus();
                    let _ = tx.send((cx.core(), cx.iface().address(), cpus));
                });
                match rx.recv_timeout(Duration::from_secs(5)) {
                    Ok((c, addr, cpus)) if sent => {
                        let cpus: Vec<String> = cpus.iter().map(u32::to_string).collect();
                        println!(
                            "tcp: command core={core} answered_by={c} address={addr} cpus={}",
                            cpus.join(",")
                        )
                    }
                    _ => eprintln!("tcp: core {core} did not answer a command"),
                }
            }
            while !h.stopping() {
                if t0.elapsed() > limit {
                    eprintln!("tcp: time limit of {seconds} s reached");
                    h.stop();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        },
    )?;
    let (done, failed, bytes) = (
        totals.done.load(Ordering::SeqCst),
        totals.failed.load(Ordering::SeqCst),
        totals.bytes.load(Ordering::SeqCst),
    );
    let secs = t0.elapsed().as_secs_f64();
    println!("tcp: done={done} failed={failed} bytes={bytes} seconds={secs:.2}");
    for (c, s) in stats.iter().enumerate() {
        println!(
            "tcp: core={c} rx_packets={} tx_packets={} retransmits={} drops={} steered_out={} steered_in={} connections={}",
            s.net.rx_packets,
            s.net.tx_packets,
            s.net.tcp.retransmits,
            s.net.drops.total(),
            s.steer.steered_out,
            s.steer.steered_in,
            s.connections
        );
        let reasons: Vec<String> = s
            .net
            .drops
            .iter()
            .filter(|&(_, n)| n > 0)
            .map(|(r, n)| format!("{r:?}:{n}"))
            .collect();
        if !reasons.is_empty() {
            println!("tcp: core={c} drop_reasons {}", reasons.join(" "));
        }
        let tcp = &s.net.tcp;
        println!(
            "tcp: core={c} rx_zero_copy_bytes={} tx_zero_copy_bytes={} tx_copied_bytes={} gso_segments_tx={} tso_frames_tx={} tso_fallbacks={} retransmits={} mbufs_in_use_after_stop={}",
            tcp.rx_zero_copy_bytes, tcp.tx_zero_copy_bytes, tcp.tx_copied_bytes, tcp.gso_segments_tx,
            tcp.tso_frames_tx, tcp.tso_fallbacks, tcp.retransmits, s.mbufs_in_use
        );
        let (r, t) = (s.impair_rx, s.impair_tx);
        if r.sent + t.sent > 0 {
            println!(
                "tcp: core={c} impaired_lost={} impaired_outage_drops={} impaired_reordered={} impaired_duplicated={}",
                r.lost + t.lost,
                r.outage_drops + t.outage_drops,
                r.reordered + t.reordered,
                r.duplicated + t.duplicated
            );
        }
    }
    let want = source.map_or(expect, |s| s.1);
    Ok(failed == 0 && (want == 0 || done >= want))
}

pub fn parse_endpoint(s: &str) -> Result<Endpoint, String> {
    let (a, p) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("{s:?}: expected IP:PORT"))?;
    let ip: std::net::Ipv4Addr = a.parse().map_err(|e| format!("{a:?}: {e}"))?;
    let port: u16 = p.parse().map_err(|e| format!("{p:?}: {e}"))?;
    Ok(Endpoint::new(Ipv4Address(ip.octets()), port))
}
