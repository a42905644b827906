//! A simulated pair over a bottleneck link, for behaviour and performance tests:
//! serialisation at a fixed rate, a drop-tail queue, one-way delay, seeded random loss,
//! targeted losses, an outage window, and optional blind injection. Virtual time jumps
//! to the next event. The client sends `bytes` to the server, which checks SHA-256.

#![allow(dead_code)]

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::time::Duration;

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};
use sluice_tcp::{Instant, SeqNumber, State, Tcb, TcpConfig, TcpRepr};

/// One direction of the link.
#[derive(Clone, Copy, Debug)]
pub struct LinkCfg {
    /// Bits per second; 0 means no rate limit.
    pub rate_bps: u64,
    /// One-way propagation delay.
    pub delay: Duration,
    /// Random loss probability.
    pub loss: f64,
    /// Drop-tail queue in bytes (ignored without a rate).
    pub queue_bytes: usize,
}

#[derive(Clone, Debug)]
pub struct SimCfg {
    pub seed: u64,
    pub bytes: usize,
    pub client: TcpConfig,
    pub server: TcpConfig,
    /// Client -> server.
    pub fwd: LinkCfg,
    /// Server -> client.
    pub rev: LinkCfg,
    /// Both directions are down in `[start, end)`.
    pub outage: Option<(Instant, Instant)>,
    /// Drop the first transmission of `count` consecutive data segments starting at this
    /// stream offset (client -> server).
    pub burst_loss: Option<(usize, usize)>,
    /// Stop after this much virtual time.
    pub limit: Duration,
}

impl SimCfg {
    pub fn new(seed: u64, bytes: usize, cfg: TcpConfig, link: LinkCfg) -> SimCfg {
        SimCfg {
            seed,
            bytes,
            client: cfg,
            server: cfg,
            fwd: link,
            rev: link,
            outage: None,
            burst_loss: None,
            limit: Duration::from_secs(600),
        }
    }
}

struct Packet {
    repr: TcpRepr<'static>,
    payload: Vec<u8>,
}

struct Dir {
    cfg: LinkCfg,
    busy_until: Instant,
}

pub struct Sim {
    pub cfg: SimCfg,
    pub now: Instant,
    pub client: Tcb,
    pub server: Tcb,
    rng: ChaCha8Rng,
    dirs: [Dir; 2],
    /// (arrival, tie-break, slot)
    queue: BinaryHeap<Reverse<(Instant, u64, usize)>>,
    slots: Vec<Option<(usize, Packet)>>,
    free_slots: Vec<usize>,
    counter: u64,
    data: Vec<u8>,
    written: usize,
    shut: bool,
    hash: Sha256,
    pub received: usize,
    pub eof: bool,
    burst_seen: HashSet<u32>,
    burst_start_seq: Option<SeqNumber>,
    /// When the first segment of the burst was dropped.
    pub burst_at: Option<Instant>,
    /// When the server had every byte of the burst region.
    pub burst_recovered_at: Option<Instant>,
    pub link_drops: u64,
    pub queue_drops: u64,
    /// (time, bytes received so far), at every delivery to the server application.
    pub progress: Vec<(Instant, usize)>,
    /// First segment delivered after the outage ended.
    pub first_after_outage: Option<Instant>,
    /// Injected segments delivered to each end, and the injector (called every step).
    pub injected: u64,
    buf: Vec<u8>,
}

/// What an injector may send: to the client (0) or the server (1).
pub type Injection = (usize, TcpRepr<'static>, Vec<u8>);

impl Sim {
    pub fn new(cfg: SimCfg) -> Sim {
        let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let mut data = vec![0u8; cfg.bytes];
        rng.fill_bytes(&mut data);
        let client = Tcb::connect(cfg.client, 40000, 80, SeqNumber(rng.gen()));
        let server = Tcb::listen(cfg.server, 80, SeqNumber(rng.gen()));
        Sim {
            dirs: [
                Dir {
                    cfg: cfg.fwd,
                    busy_until: Instant::ZERO,
                },
                Dir {
                    cfg: cfg.rev,
                    busy_until: Instant::ZERO,
                },
            ],
            cfg,
            now: Instant::ZERO,
            client,
            server,
            rng,
            queue: BinaryHeap::new(),
            slots: Vec::new(),
            free_slots: Vec::new(),
            counter: 0,
            data,
            written: 0,
            shut: false,
            hash: Sha256::new(),
            received: 0,
            eof: false,
            burst_seen: HashSet::new(),
            burst_start_seq: None,
            burst_at: None,
            burst_recovered_at: None,
            link_drops: 0,
            queue_drops: 0,
            progress: Vec::new(),
            first_after_outage: None,
            injected: 0,
            buf: vec![0; 256 * 1024],
        }
    }

    /// Sends `r` from end `from` (0 = client) to the other end.
    fn transmit(&mut self, from: usize, r: &TcpRepr) {
        let now = self.now;
        if let Some((a, b)) = self.cfg.outage {
            if now >= a && now < b {
                self.link_drops += 1;
                return;
            }
        }
        if from == 0 && !r.payload.is_empty() {
            if let Some((offset, count)) = self.cfg.burst_loss {
                let iss = self.client.iss();
                let start = iss + 1 + offset;
                let end = start + count * self.client.mss();
                self.burst_start_seq = Some(start);
                if r.seq >= start && r.seq < end && self.burst_seen.insert(r.seq.0) {
                    self.burst_at.get_or_insert(now);
                    self.link_drops += 1;
                    return;
                }
            }
        }
        let dir = &mut self.dirs[from];
        if dir.cfg.loss > 0.0 && self.rng.gen_bool(dir.cfg.loss) {
            self.link_drops += 1;
            return;
        }
        let size = r.buffer_len() + 20;
        let start = now.max(dir.busy_until);
        if dir.cfg.rate_bps > 0 {
            let backlog = (start - now).as_nanos() as u64 * dir.cfg.rate_bps / 8 / 1_000_000_000;
            if backlog as usize + size > dir.cfg.queue_bytes {
                self.queue_drops += 1;
                return;
            }
            let tx = Duration::from_nanos(size as u64 * 8 * 1_000_000_000 / dir.cfg.rate_bps);
            dir.busy_until = start + tx;
        } else {
            dir.busy_until = start;
        }
        let at = dir.busy_until + dir.cfg.delay;
        self.enqueue(at, 1 - from, r);
    }

    fn enqueue(&mut self, at: Instant, to: usize, r: &TcpRepr) {
        let p = Packet {
            repr: TcpRepr { payload: &[], ..*r },
            payload: r.payload.to_vec(),
        };
        let slot = match self.free_slots.pop() {
            Some(i) => {
                self.slots[i] = Some((to, p));
                i
            }
            None => {
                self.slots.push(Some((to, p)));
                self.slots.len() - 1
            }
        };
        self.counter += 1;
        self.queue.push(Reverse((at, self.counter, slot)));
    }

    /// Delivers `r` to end `to` now, bypassing the link (an attacker on the path).
    pub fn inject(&mut self, to: usize, r: &TcpRepr) {
        self.injected += 1;
        let tcb = if to == 0 {
            &mut self.client
        } else {
            &mut self.server
        };
        let _ = tcb.on_segment(self.now, r);
    }

    fn app(&mut self) {
        if self.client.may_send() && self.written < self.data.len() {
            if let Ok(n) = self.client.send(&self.data[self.written..]) {
                self.written += n;
            }
        }
        if self.written == self.data.len()
            && !self.shut
            && self.client.is_established()
            && self.client.may_send()
        {
            self.client.shutdown();
            self.shut = true;
        }
        loop {
            match self.server.recv(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => {
                    self.hash.update(&self.buf[..n]);
                    self.received += n;
                    self.progress.push((self.now, self.received));
                }
                Err(_) => {
                    self.eof = true;
                    break;
                }
            }
        }
        if self.eof && self.server.may_send() {
            self.server.shutdown();
        }
        if let (Some(start), None) = (self.burst_start_seq, self.burst_recovered_at) {
            if let Some((_, count)) = self.cfg.burst_loss {
                let end = start + count * self.client.mss();
                if self.server.rcv_nxt() >= end && self.burst_at.is_some() {
                    self.burst_recovered_at = Some(self.now);
                }
            }
        }
    }

    /// One step: deliver what is due, run timers, the applications and output. Returns
    /// false when both ends are done.
    pub fn step(&mut self) -> bool {
        while let Some(Reverse((t, _, slot))) = self.queue.peek().copied() {
            if t > self.now {
                break;
            }
            self.queue.pop();
            let (to, p) = self.slots[slot].take().unwrap();
            self.free_slots.push(slot);
            if let Some((_, b)) = self.cfg.outage {
                if self.now >= b && self.first_after_outage.is_none() && !p.payload.is_empty() {
                    self.first_after_outage = Some(self.now);
                }
            }
            let r = TcpRepr {
                payload: &p.payload,
                ..p.repr
            };
            let tcb = if to == 0 {
                &mut self.client
            } else {
                &mut self.server
            };
            if tcb.state() != State::Closed {
                let out = tcb.on_segment(self.now, &r);
                // The interface skips asking a connection that says it has nothing to send.
                if !out.transmit {
                    assert!(
                        tcb.poll_transmit(self.now).is_none(),
                        "poll_transmit had a segment after SegmentOutcome::transmit said none"
                    );
                }
            }
        }
        for i in 0..2 {
            let tcb = if i == 0 {
                &mut self.client
            } else {
                &mut self.server
            };
            if matches!(tcb.poll_at(), Some(t) if t <= self.now) {
                tcb.handle_timeout(self.now);
            }
        }
        self.app();
        for i in 0..2 {
            loop {
                let tcb = if i == 0 {
                    &mut self.client
                } else {
                    &mut self.server
                };
                let Some(r) = tcb.poll_transmit(self.now) else {
                    break;
                };
                let p = Packet {
                    repr: TcpRepr { payload: &[], ..r },
                    payload: r.payload.to_vec(),
                };
                let r = TcpRepr {
                    payload: &p.payload,
                    ..p.repr
                };
                self.transmit(i, &r);
            }
        }
        !(self.client.is_closed() && self.server.is_closed() && self.eof)
    }

    /// The next event time.
    pub fn next_event(&self) -> Option<Instant> {
        [
            self.client.poll_at(),
            self.server.poll_at(),
            self.queue.peek().map(|Reverse((t, _, _))| *t),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Runs until done (or `until`), calling `each` after every step.
    pub fn run_with(&mut self, until: Option<Instant>, mut each: impl FnMut(&mut Sim)) -> Result<(), String> {
        let limit = Instant::ZERO + self.cfg.limit;
        loop {
            if !self.step() {
                return Ok(());
            }
            each(self);
            if matches!(until, Some(u) if self.now >= u) {
                return Ok(());
            }
            match self.next_event() {
                Some(t) if t <= limit => self.now = t.max(self.now),
                _ => {
                    return Err(format!(
                    "stalled at {:?}: client {} {:?} server {} {:?}, received {} of {}, client counters {:?}",
                    self.now,
                    self.client.state(),
                    self.client.error(),
                    self.server.state(),
                    self.server.error(),
                    self.received,
                    self.cfg.bytes,
                    self.client.counters()
                ))
                }
            }
        }
    }

    pub fn run(&mut self) -> Result<(), String> {
        self.run_with(None, |_| {})
    }

    /// Every byte arrived, in order, intact.
    pub fn check_integrity(&self) -> Result<(), String> {
        if self.received != self.cfg.bytes || !self.eof {
            return Err(format!(
                "received {} of {} (eof {})",
                self.received, self.cfg.bytes, self.eof
            ));
        }
        if self.hash.clone().finalize() != Sha256::digest(&self.data) {
            return Err("SHA-256 mismatch: the byte stream was corrupted".into());
        }
        Ok(())
    }

    /// Goodput in bit/s between the times `a` and `b` (from the progress trace).
    pub fn goodput(&self, a: Instant, b: Instant) -> f64 {
        let at = |t: Instant| {
            self.progress
                .iter()
                .take_while(|(pt, _)| *pt <= t)
                .last()
                .map_or(0, |(_, n)| *n)
        };
        let bytes = at(b).saturating_sub(at(a));
        bytes as f64 * 8.0 / (b - a).as_secs_f64()
    }

    /// When the server application had received `n` bytes.
    pub fn time_to(&self, n: usize) -> Option<Instant> {
        self.progress.iter().find(|(_, got)| *got >= n).map(|(t, _)| *t)
    }
}

/// A configuration for bulk transfers: large buffers, window scaling, MSS 1460.
pub fn bulk_config(buf: usize) -> TcpConfig {
    TcpConfig {
        recv_buffer: buf,
        send_buffer: buf,
        max_ooo_bytes: buf,
        msl: Duration::from_millis(100),
        rto_min: Duration::from_millis(200),
        ..TcpConfig::default()
    }
}

pub fn secs(t: Instant) -> f64 {
    t.total_nanos() as f64 / 1e9
}
