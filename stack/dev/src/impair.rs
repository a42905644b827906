//! Seeded impairments of a stream of frames (loss, duplication, reordering, corruption,
//! latency, rate, outage windows), shared by the in-memory link and by `Impaired`, a
//! wrapper that puts them on any real device (DPDK `net_tap`, virtio) for interop tests
//! against peers that are not ours.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{Device, DeviceCaps, Instant, PacketBuf};

/// Seeded impairments of one direction of a link. Probabilities are in [0, 1].
#[derive(Clone, Debug, Default)]
pub struct Impairments {
    /// One-way latency.
    pub latency: Duration,
    /// Serialization rate in bits per second (`None`: infinitely fast).
    pub rate_bps: Option<u64>,
    /// Frames the link holds in flight before it drops at the tail (0: unbounded).
    pub queue_limit: usize,
    pub loss: f64,
    pub duplicate: f64,
    /// Probability that a frame is held back by `reorder_delay` (arriving after later ones).
    pub reorder: f64,
    pub reorder_delay: Duration,
    /// Probability that one random byte of the frame is flipped.
    pub corrupt: f64,
    /// Windows `[start, end)` during which every frame is dropped.
    pub outages: Vec<(Instant, Instant)>,
    /// Windows `(start, length)` counted from the first frame this direction sees: for
    /// tests whose traffic starts at a time they do not know.
    pub outages_after_first: Vec<(Duration, Duration)>,
    /// IPv4 packets longer than this many bytes are cut into fragments of at most this
    /// size (as a tunnel or router before a smaller MTU would, DF or not), each then
    /// impaired on its own (0: never). Each packet cut gets an identification of its own
    /// from the link's counter: a packet sent with DF may carry any (RFC 6864; Sluice's
    /// is 0), and fragments of different packets must not share one.
    pub fragment: usize,
}

/// What the link did to the frames of one direction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub sent: u64,
    pub delivered: u64,
    pub lost: u64,
    pub outage_drops: u64,
    pub queue_drops: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub corrupted: u64,
    pub no_buffer: u64,
    /// Packets cut into fragments (`fragment=`).
    pub fragmented: u64,
}

struct InFlight<B> {
    at: Instant,
    order: u64,
    frame: B,
}

impl<B> PartialEq for InFlight<B> {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.order) == (o.at, o.order)
    }
}
impl<B> Eq for InFlight<B> {}
impl<B> PartialOrd for InFlight<B> {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl<B> Ord for InFlight<B> {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.order).cmp(&(o.at, o.order))
    }
}

/// One direction: frames go in with `push`, are impaired, and come out of `pop_due`
/// when their time has come.
pub(crate) struct Lane<B> {
    imp: Impairments,
    queue: BinaryHeap<Reverse<InFlight<B>>>,
    /// When the transmitter is free again (rate limiting).
    busy_until: Instant,
    /// Sequence of frames pushed (ties at one arrival time keep their order).
    order: u64,
    /// Sequence of frames put back at the front (counts down, below every `order`).
    front: u64,
    stats: LinkStats,
    /// The identification of the next packet cut into fragments.
    next_ident: u16,
}

impl<B: PacketBuf> Lane<B> {
    pub(crate) fn new(imp: Impairments) -> Self {
        Lane {
            imp,
            queue: BinaryHeap::new(),
            busy_until: Instant::ZERO,
            order: 1 << 40,
            front: 1 << 40,
            next_ident: 1,
            stats: LinkStats::default(),
        }
    }

    pub(crate) fn stats(&self) -> LinkStats {
        self.stats
    }

    pub(crate) fn set_impairments(&mut self, imp: Impairments) {
        self.imp = imp;
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.queue.len()
    }

    pub(crate) fn next_at(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse(f)| f.at)
    }

    /// A frame too large for the link: counted as sent and lost.
    pub(crate) fn count_oversize(&mut self) {
        self.stats.sent += 1;
        self.stats.lost += 1;
    }

    /// Takes a frame sent at `now`, cut into fragments first if the impairments say so;
    /// `alloc` gives empty buffers (fragments, duplicates).
    pub(crate) fn push_frame(
        &mut self,
        now: Instant,
        frame: B,
        rng: &mut ChaCha8Rng,
        mut alloc: impl FnMut() -> Option<B>,
    ) {
        if self.imp.fragment > 0 {
            let ident = self.next_ident;
            match fragment(&frame, self.imp.fragment, ident, &mut alloc) {
                Fragmented::No => {}
                Fragmented::Yes(frags) => {
                    self.stats.fragmented += 1;
                    self.next_ident = self.next_ident.wrapping_add(1);
                    drop(frame);
                    for f in frags {
                        self.push(now, f, rng, &mut alloc);
                    }
                    return;
                }
                Fragmented::NoBuffer => {
                    self.stats.no_buffer += 1;
                    return;
                }
            }
        }
        self.push(now, frame, rng, alloc);
    }

    /// Takes a frame sent at `now`; `alloc` gives an empty buffer for a duplicate.
    pub(crate) fn push(
        &mut self,
        now: Instant,
        frame: B,
        rng: &mut ChaCha8Rng,
        alloc: impl FnOnce() -> Option<B>,
    ) {
        if !self.imp.outages_after_first.is_empty() {
            // The first frame: relative outage windows become absolute.
            for (start, len) in std::mem::take(&mut self.imp.outages_after_first) {
                self.imp.outages.push((now + start, now + start + len));
            }
        }
        let imp = &self.imp;
        self.stats.sent += 1;
        if imp.outages.iter().any(|&(s, e)| now >= s && now < e) {
            self.stats.outage_drops += 1;
            return;
        }
        if imp.loss > 0.0 && rng.gen_bool(imp.loss.min(1.0)) {
            self.stats.lost += 1;
            return;
        }
        if imp.queue_limit > 0 && self.queue.len() >= imp.queue_limit {
            self.stats.queue_drops += 1;
            return;
        }
        let mut depart = now;
        if let Some(bps) = imp.rate_bps {
            let start = self.busy_until.max(now);
            let bits = (frame.len() as u64 + 24) * 8; // preamble, FCS and gap
            depart = start + Duration::from_nanos(bits * 1_000_000_000 / bps.max(1));
            self.busy_until = depart;
        }
        let mut at = depart + imp.latency;
        if imp.reorder > 0.0 && rng.gen_bool(imp.reorder.min(1.0)) {
            at += imp.reorder_delay;
            self.stats.reordered += 1;
        }
        let mut frame = frame;
        // A frame that chains a payload by reference (zero-copy send) is corrupted and
        // copied in its first segment only: `data()` is that segment.
        let contiguous = frame.data().len();
        if imp.corrupt > 0.0 && contiguous > 0 && rng.gen_bool(imp.corrupt.min(1.0)) {
            let i = rng.gen_range(0..contiguous);
            let bit = 1u8 << rng.gen_range(0..8);
            frame.data_mut()[i] ^= bit;
            frame.forget_rx_checksum();
            self.stats.corrupted += 1;
        }
        // Chained frames are not duplicated (the copy would need the whole chain).
        if imp.duplicate > 0.0 && frame.len() == contiguous && rng.gen_bool(imp.duplicate.min(1.0)) {
            match alloc().filter(|c| c.len() == 0) {
                Some(mut copy) if frame.len() <= 4096 => {
                    let Some(room) = copy.append(frame.len()) else {
                        self.stats.no_buffer += 1;
                        return self.enqueue(at, frame);
                    };
                    room.copy_from_slice(frame.data());
                    self.order += 1;
                    let dup = InFlight {
                        at: at + Duration::from_micros(1),
                        order: self.order,
                        frame: copy,
                    };
                    self.queue.push(Reverse(dup));
                    self.stats.duplicated += 1;
                }
                _ => self.stats.no_buffer += 1,
            }
        }
        self.enqueue(at, frame);
    }

    fn enqueue(&mut self, at: Instant, frame: B) {
        self.order += 1;
        self.queue.push(Reverse(InFlight {
            at,
            order: self.order,
            frame,
        }));
    }

    /// Appends to `out` up to `max` frames due at `now`; returns how many.
    pub(crate) fn pop_due(&mut self, now: Instant, out: &mut Vec<B>, max: usize) -> usize {
        let mut n = 0;
        while n < max && self.queue.peek().is_some_and(|Reverse(f)| f.at <= now) {
            let Reverse(f) = self.queue.pop().expect("peeked");
            out.push(f.frame);
            self.stats.delivered += 1;
            n += 1;
        }
        n
    }
}

/// A device whose received and sent frames go through seeded impairments. Outage windows
/// are in the device's time (the `now` its caller passes).
pub struct Impaired<D: Device> {
    inner: D,
    rx: Lane<D::Buf>,
    tx: Lane<D::Buf>,
    rng: ChaCha8Rng,
    scratch: Vec<D::Buf>,
}

impl<D: Device> Impaired<D> {
    /// Impairs frames received from `inner` with `rx` and frames sent to it with `tx`.
    pub fn new(inner: D, rx: Impairments, tx: Impairments, seed: u64) -> Self {
        let burst = inner.caps().max_burst;
        Impaired {
            inner,
            rx: Lane::new(rx),
            tx: Lane::new(tx),
            rng: ChaCha8Rng::seed_from_u64(seed),
            scratch: Vec::with_capacity(burst),
        }
    }
    /// What the impairments did to received and to sent frames.
    pub fn stats(&self) -> (LinkStats, LinkStats) {
        (self.rx.stats(), self.tx.stats())
    }
    pub fn inner(&self) -> &D {
        &self.inner
    }
}

impl<D: Device> Impaired<D> {
    /// Sends what is due; what the queue refuses waits for the next call.
    fn flush_tx(&mut self, now: Instant) {
        if self.tx.next_at().is_none_or(|t| t > now) {
            return;
        }
        self.tx.pop_due(now, &mut self.scratch, usize::MAX);
        self.inner.tx_burst(now, &mut self.scratch);
        for f in self.scratch.drain(..).rev() {
            // Put back at the front, in order, with their original due time (now).
            self.tx.requeue(now, f);
        }
    }
}

impl<D: Device> Device for Impaired<D> {
    type Buf = D::Buf;

    fn caps(&self) -> DeviceCaps {
        self.inner.caps()
    }
    fn mac(&self) -> [u8; 6] {
        self.inner.mac()
    }
    fn rx_burst(&mut self, now: Instant, out: &mut Vec<D::Buf>, max: usize) -> usize {
        // Frames held back on the way out leave when due, whether or not there is new output.
        self.flush_tx(now);
        self.inner.rx_burst(now, &mut self.scratch, max);
        let Impaired {
            inner,
            rx,
            rng,
            scratch,
            ..
        } = self;
        for f in scratch.drain(..) {
            rx.push_frame(now, f, rng, || inner.alloc());
        }
        self.rx.pop_due(now, out, max)
    }
    fn alloc(&mut self) -> Option<D::Buf> {
        self.inner.alloc()
    }
    fn tx_burst(&mut self, now: Instant, bufs: &mut Vec<D::Buf>) -> usize {
        let n = bufs.len();
        let Impaired { inner, tx, rng, .. } = self;
        for f in bufs.drain(..) {
            tx.push_frame(now, f, rng, || inner.alloc());
        }
        self.flush_tx(now);
        n
    }
    fn poll_at(&self) -> Option<Instant> {
        [self.inner.poll_at(), self.rx.next_at(), self.tx.next_at()]
            .into_iter()
            .flatten()
            .min()
    }
}

/// What `fragment` made of a frame.
enum Fragmented<B> {
    /// Not an IPv4 packet longer than the limit (or not one at all): as it is.
    No,
    Yes(Vec<B>),
    /// The pool ran out: the packet is lost.
    NoBuffer,
}

/// Cuts the IPv4 packet in Ethernet frame `frame` into fragments of at most `max_ip`
/// bytes of IP packet (RFC 791 section 3.2: payload in multiples of 8 bytes, MF on all
/// but the last, offsets in 8-byte units, the header copied with its checksum redone).
fn fragment<B: PacketBuf>(
    frame: &B,
    max_ip: usize,
    ident: u16,
    alloc: &mut impl FnMut() -> Option<B>,
) -> Fragmented<B> {
    const ETH: usize = 14;
    let d = frame.data();
    if d.len() < ETH + 20 || d[12..14] != [0x08, 0x00] || d[ETH] >> 4 != 4 {
        return Fragmented::No;
    }
    let hl = usize::from(d[ETH] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([d[ETH + 2], d[ETH + 3]]));
    if hl < 20 || total < hl || ETH + total > d.len() || total <= max_ip || max_ip < hl + 8 {
        return Fragmented::No;
    }
    let flags_off = u16::from_be_bytes([d[ETH + 6], d[ETH + 7]]);
    let base = usize::from(flags_off & 0x1fff) * 8;
    let more_after = flags_off & 0x2000 != 0;
    // A fragment cut again keeps its datagram's identification.
    let ident = if flags_off & 0x3fff != 0 {
        u16::from_be_bytes([d[ETH + 4], d[ETH + 5]])
    } else {
        ident
    };
    let chunk = (max_ip - hl) / 8 * 8;
    let payload = &d[ETH + hl..ETH + total];
    let mut out = Vec::new();
    let mut at = 0;
    while at < payload.len() {
        let n = chunk.min(payload.len() - at);
        let last = at + n == payload.len();
        let Some(mut b) = alloc() else {
            return Fragmented::NoBuffer;
        };
        let Some(dst) = b.append(ETH + hl + n) else {
            return Fragmented::NoBuffer;
        };
        dst[..ETH + hl].copy_from_slice(&d[..ETH + hl]);
        dst[ETH + hl..].copy_from_slice(&payload[at..at + n]);
        let ip = &mut dst[ETH..];
        ip[2..4].copy_from_slice(&((hl + n) as u16).to_be_bytes());
        ip[4..6].copy_from_slice(&ident.to_be_bytes());
        let mf = if last && !more_after { 0 } else { 0x2000 };
        // DF is cleared: this is a fragment now.
        let off = (((base + at) / 8) as u16 & 0x1fff) | mf;
        ip[6..8].copy_from_slice(&off.to_be_bytes());
        ip[10] = 0;
        ip[11] = 0;
        let sum = !sluice_wire::checksum::sum(&ip[..hl]);
        ip[10..12].copy_from_slice(&sum.to_be_bytes());
        out.push(b);
        at += n;
    }
    Fragmented::Yes(out)
}

impl<B: PacketBuf> Lane<B> {
    /// Puts back a frame that was due but could not be sent, ahead of later ones.
    fn requeue(&mut self, now: Instant, frame: B) {
        self.stats.delivered -= 1;
        // Put back last-first, each below the one before: they leave in their old order.
        self.front -= 1;
        self.queue.push(Reverse(InFlight {
            at: now,
            order: self.front,
            frame,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemLink;

    /// A frame whose payload is chained by reference: `data()` is its first segment only.
    struct Chained(Vec<u8>);

    impl PacketBuf for Chained {
        fn data(&self) -> &[u8] {
            &self.0
        }
        fn data_mut(&mut self) -> &mut [u8] {
            &mut self.0
        }
        fn prepend(&mut self, _n: usize) -> Option<&mut [u8]> {
            None
        }
        fn append(&mut self, _n: usize) -> Option<&mut [u8]> {
            None
        }
        fn adj(&mut self, _n: usize) -> bool {
            false
        }
        fn trim(&mut self, _n: usize) -> bool {
            false
        }
        fn len(&self) -> usize {
            self.0.len() + 1000
        }
    }

    #[test]
    fn chained_frames_are_corrupted_in_their_first_segment_and_not_duplicated() {
        let mut lane = Lane::new(Impairments {
            corrupt: 1.0,
            duplicate: 1.0,
            ..Default::default()
        });
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for _ in 0..50 {
            lane.push(Instant::ZERO, Chained(vec![0; 54]), &mut rng, || {
                Some(Chained(Vec::new()))
            });
        }
        let mut out = Vec::new();
        assert_eq!(
            lane.pop_due(Instant::from_secs(1), &mut out, 1000),
            50,
            "no duplicates"
        );
        assert!(out.iter().all(|c| c.0.iter().filter(|&&b| b != 0).count() == 1));
    }

    /// `fragment=N` cuts an IPv4 packet as RFC 791 says: payload in multiples of 8 bytes,
    /// offsets in 8-byte units, MF on all but the last, one identification, valid header
    /// checksums; the pieces put end to end are the packet's payload.
    #[test]
    fn fragment_cuts_an_ipv4_packet_by_the_rules() {
        let imp: Impairments = "fragment=576".parse().unwrap();
        assert_eq!(imp.fragment, 576);
        assert!("fragment=10".parse::<Impairments>().is_err());
        let pool = crate::MemPool::new(64);
        let payload: Vec<u8> = (0..1480u32).map(|i| (i * 13) as u8).collect();
        let mut f = pool.alloc().unwrap();
        let d = f.append(14 + 20 + payload.len()).unwrap();
        d[12..14].copy_from_slice(&[0x08, 0x00]);
        d[14] = 0x45;
        d[16..18].copy_from_slice(&1500u16.to_be_bytes());
        d[20] = 0x40; // DF
        d[22] = 64;
        d[23] = 6;
        d[34..].copy_from_slice(&payload);
        let Fragmented::Yes(frags) = fragment(&f, 576, 77, &mut || pool.alloc()) else {
            panic!("not cut")
        };
        assert_eq!(frags.len(), 3);
        let mut joined = Vec::new();
        for (i, fr) in frags.iter().enumerate() {
            let ip = sluice_wire::Ipv4Packet::new_checked(&fr.data()[14..]).unwrap();
            assert!(ip.verify_checksum());
            assert!(usize::from(ip.total_len()) <= 576);
            assert_eq!(ip.ident(), 77);
            assert_eq!(usize::from(ip.frag_offset()), joined.len());
            assert_eq!(ip.more_frags(), i < 2);
            assert!(!ip.dont_frag());
            if i < 2 {
                assert_eq!(ip.payload().len() % 8, 0);
            }
            joined.extend_from_slice(ip.payload());
        }
        assert_eq!(joined, payload);
        // Small enough, or not IPv4: as it is.
        assert!(matches!(
            fragment(&f, 1500, 1, &mut || pool.alloc()),
            Fragmented::No
        ));
    }

    #[test]
    fn impaired_device_drops_and_delays_in_both_directions() {
        // A clean link, impaired on one side's device.
        let (a, mut b, _link) = MemLink::pair(Impairments::default(), Impairments::default(), 1, 4096);
        let rx = Impairments {
            loss: 0.5,
            ..Default::default()
        };
        let tx = Impairments {
            latency: Duration::from_millis(5),
            ..Default::default()
        };
        let mut a = Impaired::new(a, rx, tx, 9);
        let mut out = Vec::new();
        for i in 0..200u64 {
            let mut f = b.alloc().unwrap();
            f.append(60).unwrap().fill(i as u8);
            b.tx_burst(Instant::from_micros(i), &mut vec![f]);
        }
        let got = a.rx_burst(Instant::from_millis(1), &mut out, 1000);
        let (rs, _) = a.stats();
        assert_eq!(rs.sent, 200);
        assert_eq!(got as u64, 200 - rs.lost);
        assert!(rs.lost > 60 && rs.lost < 140, "{rs:?}");
        out.clear();
        let mut f = a.alloc().unwrap();
        f.append(60).unwrap();
        a.tx_burst(Instant::from_millis(10), &mut vec![f]);
        assert_eq!(
            a.poll_at(),
            Some(Instant::from_millis(15)),
            "held back by the latency"
        );
        assert_eq!(
            b.rx_burst(Instant::from_millis(20), &mut out, 10),
            0,
            "not sent before it is due"
        );
        a.rx_burst(Instant::from_millis(15), &mut Vec::new(), 0);
        assert_eq!(b.rx_burst(Instant::from_millis(20), &mut out, 10), 1);
    }
}

/// Parses `loss=0.05,dup=0.01,reorder=0.1:5ms,corrupt=0.001,latency=1ms,rate=1000000000,
/// queue=1000,outage=10s+20s` (any subset, in any order). Durations take `ns`, `us`, `ms`
/// or `s`; an outage is `START+LENGTH` in the device's time, or counted from the first
/// frame with `outage-after-first=START+LENGTH`; both may repeat.
impl std::str::FromStr for Impairments {
    type Err = String;
    fn from_str(spec: &str) -> Result<Self, String> {
        let mut imp = Impairments::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected KEY=VALUE"))?;
            let prob = |v: &str| {
                v.parse::<f64>()
                    .ok()
                    .filter(|p| (0.0..=1.0).contains(p))
                    .ok_or_else(|| format!("{k}={v}: expected a probability in [0, 1]"))
            };
            match k {
                "loss" => imp.loss = prob(v)?,
                "dup" | "duplicate" => imp.duplicate = prob(v)?,
                "corrupt" => imp.corrupt = prob(v)?,
                "reorder" => {
                    let (p, d) = v.split_once(':').unwrap_or((v, "5ms"));
                    imp.reorder = prob(p)?;
                    imp.reorder_delay = parse_duration(d)?;
                }
                "latency" => imp.latency = parse_duration(v)?,
                "rate" => {
                    imp.rate_bps = Some(
                        v.parse()
                            .map_err(|_| format!("rate={v}: expected bits per second"))?,
                    )
                }
                "fragment" => {
                    imp.fragment = v.parse().ok().filter(|n| *n >= 28).ok_or_else(|| {
                        format!("fragment={v}: expected the largest IP packet, in bytes (28 or more)")
                    })?
                }
                "queue" => {
                    imp.queue_limit = v
                        .parse()
                        .map_err(|_| format!("queue={v}: expected a frame count"))?
                }
                "outage" | "outage-after-first" => {
                    let (s, l) = v
                        .split_once('+')
                        .ok_or_else(|| format!("{k}={v}: expected START+LENGTH, e.g. 10s+20s"))?;
                    let (start, len) = (parse_duration(s)?, parse_duration(l)?);
                    if k == "outage" {
                        imp.outages
                            .push((Instant::ZERO + start, Instant::ZERO + start + len));
                    } else {
                        imp.outages_after_first.push((start, len));
                    }
                }
                _ => {
                    return Err(format!(
                        "{k}: unknown impairment (loss, dup, reorder, corrupt, latency, rate, queue, outage, \
                         outage-after-first)"
                    ))
                }
            }
        }
        Ok(imp)
    }
}

/// `250ms`, `20s`, `100us`, `5ns`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: f64 = n
        .parse()
        .map_err(|_| format!("{s:?}: expected a duration like 250ms"))?;
    let ns = match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" | "" => 1e9,
        _ => return Err(format!("{s:?}: unit must be ns, us, ms or s")),
    };
    Ok(Duration::from_nanos((n * ns) as u64))
}

#[cfg(test)]
mod parse_tests {
    use super::*;

    #[test]
    fn parses_a_full_spec() {
        let i: Impairments = "loss=0.05, dup=0.01,reorder=0.1:2ms,corrupt=0.001,latency=1ms,outage=10s+20s"
            .parse()
            .unwrap();
        assert_eq!(
            (i.loss, i.duplicate, i.reorder, i.corrupt),
            (0.05, 0.01, 0.1, 0.001)
        );
        assert_eq!(i.reorder_delay, Duration::from_millis(2));
        assert_eq!(i.latency, Duration::from_millis(1));
        assert_eq!(i.outages, vec![(Instant::from_secs(10), Instant::from_secs(30))]);
        assert!("loss=2".parse::<Impairments>().is_err());
        assert!("jitter=1ms".parse::<Impairments>().is_err());
        assert!("outage=10s".parse::<Impairments>().is_err());
        let i: Impairments = "outage-after-first=1s+2s".parse().unwrap();
        assert_eq!(
            i.outages_after_first,
            vec![(Duration::from_secs(1), Duration::from_secs(2))]
        );
    }
}

#[cfg(test)]
mod outage_tests {
    use super::*;
    use crate::MemLink;

    #[test]
    fn an_outage_counted_from_the_first_frame() {
        let imp: Impairments = "outage-after-first=1s+2s".parse().unwrap();
        let (mut a, mut b, link) = MemLink::pair(imp, Impairments::default(), 1, 64);
        // Traffic starts at 10 s: frames at 10.5 s and 12.9 s fall in the outage.
        for ms in [10_000u64, 10_500, 12_900, 13_000, 14_000] {
            let mut f = a.alloc().unwrap();
            f.append(60).unwrap();
            a.tx_burst(Instant::from_millis(ms), &mut vec![f]);
        }
        let mut rx = Vec::new();
        assert_eq!(b.rx_burst(Instant::from_secs(60), &mut rx, 10), 4);
        assert_eq!(
            link.stats(0).outage_drops,
            1,
            "only 11 s..13 s is out: 10.5 s is before it"
        );
    }
}
