//! The ARP cache (RFC 826, RFC 1122 2.3.2): neighbours, their expiry, resolution retries,
//! and the bounded queue of packets that wait for a neighbour's address.
//!
//! No I/O here: the interface asks what to do (`lookup`, `enqueue`, `next_action`) and
//! sends the frames. Expired entries are removed when looked up, or evicted when the
//! cache is full; a used entry is re-confirmed with a unicast request shortly before it
//! expires, so a live neighbour never stalls traffic.

use core::hash::Hash;
use hashbrown::HashMap;

use sluice_wire::{EthernetAddress, Instant, Ipv4Address};

use crate::config::ArpConfig;
use crate::stats::{ArpStats, DropReason, Drops};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Configured; never expires or changes.
    Static(EthernetAddress),
    Resolved {
        mac: EthernetAddress,
        expires_at: Instant,
        /// When the last re-confirmation request went out.
        refreshed_at: Option<Instant>,
    },
    /// Requests are out; packets may wait in the pending queue.
    Resolving {
        requests_sent: u8,
        next_request: Instant,
    },
    /// Neighbour discovery only (RFC 4861 7.3.2): not known to be reachable, still used;
    /// the next packet sent to it starts `Delay`.
    Stale(EthernetAddress),
    /// A packet went to a stale neighbour: unless it is confirmed by `probe_at`, probes.
    Delay { mac: EthernetAddress, probe_at: Instant },
    /// Unicast solicitations to confirm the neighbour; it is forgotten after the last.
    Probe {
        mac: EthernetAddress,
        sent: u8,
        next: Instant,
    },
}

/// RFC 4861 10: how long a confirmed neighbour is reachable (REACHABLE_TIME), and how long
/// a stale one used again waits before probing (DELAY_FIRST_PROBE_TIME).
const REACHABLE_TIME: core::time::Duration = core::time::Duration::from_secs(30);
const DELAY_FIRST_PROBE: core::time::Duration = core::time::Duration::from_secs(5);

/// What `lookup` found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lookup {
    /// Send to this address.
    Hit(EthernetAddress),
    /// Send to this address, and also send it a unicast request to re-confirm it.
    Refresh(EthernetAddress),
    /// Unknown or being resolved: queue the packet with `enqueue`.
    Miss,
}

/// Something the cache's timers want done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action<A> {
    /// Broadcast (multicast, for IPv6) a request for this address.
    Request(A),
    /// Neighbour discovery: a unicast solicitation to confirm this neighbour (PROBE).
    Probe(A, EthernetAddress),
}

struct Waiting<A> {
    next_hop: A,
    packet: Vec<u8>,
}

/// Neighbours by IP address: IPv4's ARP cache, and IPv6's neighbour cache (`new_nd`: the
/// RFC 4861 7.3.2 states, INCOMPLETE as `Resolving`, REACHABLE as `Resolved`, then
/// `Stale`, `Delay` and `Probe`).
pub(crate) struct ArpCache<A = Ipv4Address> {
    cfg: ArpConfig,
    entries: HashMap<A, State>,
    /// Addresses in `Resolving`, so that timers do not scan the whole cache.
    resolving: Vec<A>,
    /// Neighbour discovery's unreachability detection (`new_nd`).
    nud: bool,
    /// Addresses in `Delay` or `Probe` (NUD), for the timers likewise.
    probing: Vec<A>,
    /// Packets waiting for resolution, oldest first.
    waiting: Vec<Waiting<A>>,
    /// Packet buffers of sent or dropped waiting packets, for reuse.
    spare: Vec<Vec<u8>>,
    /// The last plain hit of `lookup` (address, link address, until when the same lookup
    /// would hit again without changing anything): a run of packets to one next hop (all
    /// of them, behind a gateway or to one peer) skips the hash lookup. Forgotten by
    /// everything that changes an entry.
    hot: Option<(A, EthernetAddress, Instant)>,
}

impl<A: Copy + Eq + Hash + Ord> ArpCache<A> {
    pub(crate) fn new(cfg: ArpConfig, statics: &[(A, EthernetAddress)]) -> ArpCache<A> {
        let mut entries = HashMap::with_capacity(cfg.cache_size.max(statics.len()));
        for &(ip, mac) in statics {
            entries.insert(ip, State::Static(mac));
        }
        ArpCache {
            cfg,
            entries,
            resolving: Vec::new(),
            nud: false,
            probing: Vec::new(),
            waiting: Vec::new(),
            spare: Vec::new(),
            hot: None,
        }
    }

    /// IPv6's neighbour cache, with RFC 4861's unreachability detection: a neighbour is
    /// reachable for `REACHABLE_TIME` after a confirmation (a solicited advertisement),
    /// then stale; sending to a stale one waits `DELAY_FIRST_PROBE` and then probes it
    /// with unicast solicitations, forgetting it after `max_requests`.
    pub(crate) fn new_nd(cfg: ArpConfig, statics: &[(A, EthernetAddress)]) -> ArpCache<A> {
        ArpCache {
            nud: true,
            ..ArpCache::new(cfg, statics)
        }
    }

    /// Whether `ip`'s link address is known (resolution not pending or never started).
    pub(crate) fn known(&self, ip: A) -> bool {
        matches!(self.entries.get(&ip), Some(s) if !matches!(s, State::Resolving { .. }))
    }

    /// The address to send to `ip`, if known and fresh. Removes an expired entry (ARP); a
    /// neighbour no longer known reachable is used and goes to `Delay` (NUD).
    pub(crate) fn lookup(&mut self, now: Instant, ip: A, stats: &mut ArpStats) -> Lookup {
        if let Some((hot, mac, until)) = self.hot {
            if hot == ip && now < until {
                return Lookup::Hit(mac);
            }
        }
        self.hot = None;
        let Some(state) = self.entries.get_mut(&ip) else {
            return Lookup::Miss;
        };
        match state {
            State::Static(mac) => {
                self.hot = Some((ip, *mac, Instant::from_nanos(u64::MAX)));
                Lookup::Hit(*mac)
            }
            State::Resolving { .. } => Lookup::Miss,
            State::Delay { mac, .. } | State::Probe { mac, .. } => Lookup::Hit(*mac),
            State::Stale(mac) => {
                let mac = *mac;
                *state = State::Delay {
                    mac,
                    probe_at: now + DELAY_FIRST_PROBE,
                };
                self.probing.push(ip);
                Lookup::Hit(mac)
            }
            State::Resolved { mac, expires_at, .. } if self.nud => {
                let mac = *mac;
                if now >= *expires_at {
                    // REACHABLE ran out (STALE), and a packet goes now: DELAY.
                    *state = State::Delay {
                        mac,
                        probe_at: now + DELAY_FIRST_PROBE,
                    };
                    self.probing.push(ip);
                } else {
                    self.hot = Some((ip, mac, *expires_at));
                }
                Lookup::Hit(mac)
            }
            State::Resolved {
                mac,
                expires_at,
                refreshed_at,
            } => {
                if now >= *expires_at {
                    self.entries.remove(&ip);
                    stats.expired += 1;
                    return Lookup::Miss;
                }
                let mac = *mac;
                let refresh_at = *expires_at - self.cfg.refresh_before;
                if now < refresh_at {
                    // A plain hit until then (the entry expires later still).
                    self.hot = Some((ip, mac, refresh_at));
                    Lookup::Hit(mac)
                } else if matches!(*refreshed_at, Some(t) if now < t + self.cfg.request_interval) {
                    Lookup::Hit(mac)
                } else {
                    *refreshed_at = Some(now);
                    Lookup::Refresh(mac)
                }
            }
        }
    }

    /// The address known for `ip` without changing anything: `None` when unknown, being
    /// resolved, or expired.
    pub(crate) fn peek(&self, now: Instant, ip: A) -> Option<EthernetAddress> {
        match self.entries.get(&ip)? {
            State::Static(mac) => Some(*mac),
            State::Resolved { mac, expires_at, .. } if now < *expires_at || self.nud => Some(*mac),
            State::Stale(mac) | State::Delay { mac, .. } | State::Probe { mac, .. } => Some(*mac),
            _ => None,
        }
    }

    /// Records that `ip` is at `mac` (from an ARP request or reply). Updates an existing
    /// dynamic entry (RFC 826's merge); creates one only if `create`. Returns whether the
    /// entry is now resolved to `mac` (then waiting packets can go: `pop_waiting`).
    pub(crate) fn learn(
        &mut self,
        now: Instant,
        ip: A,
        mac: EthernetAddress,
        create: bool,
        stats: &mut ArpStats,
        drops: &mut Drops,
    ) -> bool {
        self.hot = None; // entries may change
        let resolved = State::Resolved {
            mac,
            expires_at: now + self.cfg.entry_ttl,
            refreshed_at: None,
        };
        if !self.entries.contains_key(&ip) {
            if !create || !self.make_room(drops) {
                return false;
            }
            self.entries.insert(ip, resolved);
            stats.learned += 1;
            return true;
        }
        match self.entries.get_mut(&ip) {
            Some(State::Static(m)) => *m == mac,
            Some(state) => {
                if matches!(state, State::Resolving { .. }) {
                    self.resolving.retain(|&a| a != ip);
                }
                *state = resolved;
                stats.learned += 1;
                true
            }
            None => false,
        }
    }

    /// Neighbour discovery's `learn` (RFC 4861 7.2.5, 7.2.3): a solicited advertisement
    /// (`confirmed`) makes the neighbour REACHABLE; other news of it (an unsolicited
    /// advertisement, a solicitation or a router advertisement with its address) makes a
    /// new entry or a changed address STALE and leaves a known one as it is. An
    /// advertisement without the override flag (`override_` false) does not change a known
    /// address: it only makes a REACHABLE neighbour STALE. Creates an entry only if
    /// `create`. Returns whether the neighbour's address is now known (then waiting
    /// packets can go).
    pub(crate) fn learn_nd(
        &mut self,
        now: Instant,
        ip: A,
        (mac, confirmed, override_, create): (EthernetAddress, bool, bool, bool),
        stats: &mut ArpStats,
        drops: &mut Drops,
    ) -> bool {
        self.hot = None; // entries may change
        let reachable = State::Resolved {
            mac,
            expires_at: now + REACHABLE_TIME,
            refreshed_at: None,
        };
        let new = if confirmed { reachable } else { State::Stale(mac) };
        if !self.entries.contains_key(&ip) {
            if !create || !self.make_room(drops) {
                return false;
            }
            self.entries.insert(ip, new);
            stats.learned += 1;
            return true;
        }
        let Some(state) = self.entries.get_mut(&ip) else {
            return false;
        };
        let known = match *state {
            State::Static(m) => return m == mac,
            State::Resolving { .. } => None,
            State::Resolved { mac, .. }
            | State::Stale(mac)
            | State::Delay { mac, .. }
            | State::Probe { mac, .. } => Some(mac),
        };
        if known.is_some_and(|k| k != mac) && !override_ {
            if let State::Resolved { mac: old, .. } = *state {
                *state = State::Stale(old);
            }
            return true;
        }
        if matches!(state, State::Resolving { .. }) {
            self.resolving.retain(|&a| a != ip);
        }
        if confirmed || known != Some(mac) {
            *state = new;
            stats.learned += 1;
        }
        true
    }

    /// `enqueue` of the IP packet in device buffer `buf`: the queue keeps a copy; a packet
    /// whose payload is chained by reference (zero-copy send) is gathered first (a rare
    /// path).
    pub(crate) fn enqueue_buf<B: sluice_dev::PacketBuf>(
        &mut self,
        now: Instant,
        next_hop: A,
        buf: &B,
        drops: &mut Drops,
    ) -> Result<bool, DropReason> {
        if buf.len() == buf.data().len() {
            self.enqueue(now, next_hop, buf.data(), drops)
        } else {
            self.enqueue(now, next_hop, &buf.gather(), drops)
        }
    }

    /// Queues an IP packet (no Ethernet header) for `next_hop`, which `lookup` missed.
    /// Returns whether a first request must go out now; `Err(ArpQueueFull)` when the
    /// neighbour's or the total queue is full (the caller counts the drop).
    pub(crate) fn enqueue(
        &mut self,
        now: Instant,
        next_hop: A,
        packet: &[u8],
        drops: &mut Drops,
    ) -> Result<bool, DropReason> {
        self.hot = None; // entries may change
        let queued = self.waiting.iter().filter(|w| w.next_hop == next_hop).count();
        if queued >= self.cfg.pending_per_neighbor || self.waiting.len() >= self.cfg.pending_total {
            return Err(DropReason::ArpQueueFull);
        }
        let mut request_now = false;
        match self.entries.get(&next_hop) {
            Some(State::Resolving { .. }) => {}
            // Known addresses are not missed by `lookup`.
            Some(State::Static(_) | State::Stale(_) | State::Delay { .. } | State::Probe { .. }) => {
                return Err(DropReason::ArpQueueFull)
            }
            Some(State::Resolved { .. }) | None => {
                // Unknown, or expired and removed by lookup but not yet evicted.
                if !self.entries.contains_key(&next_hop) && !self.make_room(drops) {
                    return Err(DropReason::ArpQueueFull);
                }
                self.entries.insert(
                    next_hop,
                    State::Resolving {
                        requests_sent: 1,
                        next_request: now + self.cfg.request_interval,
                    },
                );
                self.resolving.push(next_hop);
                request_now = true;
            }
        }
        let mut buf = self.spare.pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(packet);
        self.waiting.push(Waiting {
            next_hop,
            packet: buf,
        });
        Ok(request_now)
    }

    /// The oldest packet waiting for `next_hop`. Give its buffer back with `recycle`.
    pub(crate) fn pop_waiting(&mut self, next_hop: A) -> Option<Vec<u8>> {
        let i = self.waiting.iter().position(|w| w.next_hop == next_hop)?;
        Some(self.waiting.remove(i).packet)
    }

    pub(crate) fn recycle(&mut self, buf: Vec<u8>) {
        if self.spare.len() < self.cfg.pending_total {
            self.spare.push(buf);
        }
    }

    /// The next thing the resolution timers want done at `now`, if any; call until
    /// `None`. Gives up on neighbours that did not answer `max_requests` requests,
    /// dropping (and counting) their waiting packets.
    pub(crate) fn next_action(
        &mut self,
        now: Instant,
        stats: &mut ArpStats,
        drops: &mut Drops,
    ) -> Option<Action<A>> {
        if self.resolving.is_empty() && self.probing.is_empty() {
            return None;
        }
        self.hot = None; // entries may change
        let mut i = 0;
        while i < self.resolving.len() {
            let ip = self.resolving[i];
            let Some(State::Resolving {
                requests_sent,
                next_request,
            }) = self.entries.get_mut(&ip)
            else {
                self.resolving.swap_remove(i);
                continue;
            };
            if now < *next_request {
                i += 1;
                continue;
            }
            if *requests_sent >= self.cfg.max_requests {
                self.entries.remove(&ip);
                self.resolving.swap_remove(i);
                stats.failed += 1;
                self.drop_waiting(ip, DropReason::ArpUnresolved, drops);
                continue;
            }
            *requests_sent += 1;
            *next_request = now + self.cfg.request_interval;
            return Some(Action::Request(ip));
        }
        let mut i = 0;
        while i < self.probing.len() {
            let ip = self.probing[i];
            let interval = self.cfg.request_interval;
            match self.entries.get_mut(&ip) {
                Some(State::Delay { mac, probe_at }) if now >= *probe_at => {
                    let mac = *mac;
                    self.entries.insert(
                        ip,
                        State::Probe {
                            mac,
                            sent: 1,
                            next: now + interval,
                        },
                    );
                    return Some(Action::Probe(ip, mac));
                }
                Some(State::Probe { sent, next, .. }) if *sent >= self.cfg.max_requests && now >= *next => {
                    // Unreachable: forgotten; the next packet resolves it anew.
                    self.entries.remove(&ip);
                    self.probing.swap_remove(i);
                    stats.failed += 1;
                }
                Some(State::Probe { mac, sent, next }) if now >= *next => {
                    *sent += 1;
                    *next = now + interval;
                    return Some(Action::Probe(ip, *mac));
                }
                Some(State::Delay { .. } | State::Probe { .. }) => i += 1,
                // Confirmed (or forgotten) since.
                _ => {
                    self.probing.swap_remove(i);
                }
            }
        }
        None
    }

    /// When a probing neighbour's next step is due.
    fn probe_next(&self, ip: A) -> Instant {
        match self.entries.get(&ip) {
            Some(State::Delay { probe_at, .. }) => *probe_at,
            Some(State::Probe { next, .. }) => *next,
            _ => Instant::ZERO,
        }
    }

    /// When the timers next need `next_action`.
    pub(crate) fn poll_at(&self) -> Option<Instant> {
        let resolving = self.resolving.iter().filter_map(|ip| match self.entries.get(ip) {
            Some(State::Resolving { next_request, .. }) => Some(*next_request),
            _ => None,
        });
        let probing = self.probing.iter().map(|&ip| self.probe_next(ip));
        resolving.chain(probing).min()
    }

    #[cfg(test)]
    pub(crate) fn waiting_len(&self) -> usize {
        self.waiting.len()
    }

    fn drop_waiting(&mut self, ip: A, reason: DropReason, drops: &mut Drops) {
        let mut i = 0;
        while i < self.waiting.len() {
            if self.waiting[i].next_hop == ip {
                let w = self.waiting.remove(i);
                drops.add(reason);
                self.recycle(w.packet);
            } else {
                i += 1;
            }
        }
    }

    /// Makes room for one more entry if the cache is full: evicts the dynamic entry that
    /// expires first, else the oldest resolution (dropping its packets). False when only
    /// static entries remain.
    fn make_room(&mut self, drops: &mut Drops) -> bool {
        self.hot = None; // entries may change
        if self.entries.len() < self.cfg.cache_size.max(1) {
            return true;
        }
        let victim = self
            .entries
            .iter()
            .filter_map(|(ip, s)| match s {
                State::Resolved { expires_at, .. } => Some((*expires_at, *ip)),
                // Not known to be reachable: first to go.
                State::Stale(_) | State::Delay { .. } | State::Probe { .. } => Some((Instant::ZERO, *ip)),
                _ => None,
            })
            .min()
            .map(|(_, ip)| ip)
            .or_else(|| self.resolving.first().copied());
        let Some(ip) = victim else {
            return false;
        };
        self.entries.remove(&ip);
        if let Some(i) = self.resolving.iter().position(|&a| a == ip) {
            self.resolving.remove(i);
            self.drop_waiting(ip, DropReason::ArpUnresolved, drops);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    const A: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);
    const B: Ipv4Address = Ipv4Address::new(10, 0, 0, 3);
    const MAC_A: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);
    const MAC_B: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 3]);

    fn cache(cfg: ArpConfig) -> (ArpCache, ArpStats, Drops) {
        (ArpCache::new(cfg, &[]), ArpStats::default(), Drops::default())
    }

    #[test]
    fn learn_then_expire() {
        let (mut c, mut s, mut d) = cache(ArpConfig::default());
        let t0 = Instant::from_secs(10);
        assert_eq!(c.lookup(t0, A, &mut s), Lookup::Miss);
        assert!(
            !c.learn(t0, A, MAC_A, false, &mut s, &mut d),
            "no merge without an entry"
        );
        assert_eq!(c.lookup(t0, A, &mut s), Lookup::Miss);
        assert!(c.learn(t0, A, MAC_A, true, &mut s, &mut d));
        assert_eq!(
            c.lookup(t0 + Duration::from_secs(1), A, &mut s),
            Lookup::Hit(MAC_A)
        );
        // Within the refresh window: one unicast re-confirmation per request interval.
        let t = t0 + Duration::from_secs(56);
        assert_eq!(c.lookup(t, A, &mut s), Lookup::Refresh(MAC_A));
        assert_eq!(c.lookup(t, A, &mut s), Lookup::Hit(MAC_A));
        assert_eq!(
            c.lookup(t + Duration::from_secs(1), A, &mut s),
            Lookup::Refresh(MAC_A)
        );
        // A reply refreshes it.
        assert!(c.learn(t, A, MAC_B, false, &mut s, &mut d));
        assert_eq!(
            c.lookup(t + Duration::from_secs(59), A, &mut s),
            Lookup::Refresh(MAC_B)
        );
        assert_eq!(c.lookup(t + Duration::from_secs(60), A, &mut s), Lookup::Miss);
        assert_eq!(s.expired, 1);
        assert_eq!(c.peek(t, A), None);
    }

    /// The remembered last hit answers only while the full lookup would answer the same:
    /// a changed address, a due refresh, an expiry, another neighbour all go through it.
    #[test]
    fn the_remembered_hit_never_outlives_what_it_stands_for() {
        let (mut c, mut s, mut d) = cache(ArpConfig::default());
        let t0 = Instant::from_secs(10);
        assert!(c.learn(t0, A, MAC_A, true, &mut s, &mut d));
        assert!(c.learn(t0, B, MAC_B, true, &mut s, &mut d));
        for i in 0..3 {
            assert_eq!(
                c.lookup(t0 + Duration::from_secs(i), A, &mut s),
                Lookup::Hit(MAC_A)
            );
        }
        assert_eq!(c.lookup(t0, B, &mut s), Lookup::Hit(MAC_B), "another neighbour");
        assert_eq!(c.lookup(t0, A, &mut s), Lookup::Hit(MAC_A));
        // The neighbour moved (an ARP reply from its new card): the next packet follows.
        assert!(c.learn(t0 + Duration::from_secs(3), A, MAC_B, false, &mut s, &mut d));
        assert_eq!(
            c.lookup(t0 + Duration::from_secs(4), A, &mut s),
            Lookup::Hit(MAC_B)
        );
        // Hits up to the refresh window, then the refresh is asked for.
        let fresh = t0 + Duration::from_secs(3);
        assert_eq!(
            c.lookup(fresh + Duration::from_secs(54), A, &mut s),
            Lookup::Hit(MAC_B)
        );
        assert_eq!(
            c.lookup(fresh + Duration::from_secs(55), A, &mut s),
            Lookup::Refresh(MAC_B)
        );
        // No reply: it expires, cached hit or not.
        assert_eq!(c.lookup(fresh + Duration::from_secs(60), A, &mut s), Lookup::Miss);
        // Neighbour discovery: a reachable neighbour's hits end when REACHABLE does (DELAY).
        let mut nd = ArpCache::new_nd(ArpConfig::default(), &[]);
        assert!(nd.learn(t0, A, MAC_A, true, &mut s, &mut d));
        assert_eq!(nd.lookup(t0, A, &mut s), Lookup::Hit(MAC_A));
        assert!(nd.probing.is_empty());
        assert_eq!(
            nd.lookup(t0 + Duration::from_secs(3_600), A, &mut s),
            Lookup::Hit(MAC_A)
        );
        assert_eq!(nd.probing, [A], "stale on use: DELAY, then probes");
    }

    #[test]
    fn statics_never_change() {
        let mut c = ArpCache::new(ArpConfig::default(), &[(A, MAC_A)]);
        let (mut s, mut d) = (ArpStats::default(), Drops::default());
        assert!(!c.learn(Instant::ZERO, A, MAC_B, true, &mut s, &mut d));
        assert_eq!(
            c.lookup(Instant::from_secs(100_000), A, &mut s),
            Lookup::Hit(MAC_A)
        );
        assert_eq!(c.peek(Instant::from_secs(100_000), A), Some(MAC_A));
    }

    #[test]
    fn pending_queue_is_bounded_and_flushed_in_order() {
        let cfg = ArpConfig {
            pending_per_neighbor: 2,
            pending_total: 3,
            ..Default::default()
        };
        let (mut c, mut s, mut d) = cache(cfg);
        let t = Instant::from_secs(1);
        assert_eq!(c.enqueue(t, A, b"one", &mut d), Ok(true));
        assert_eq!(c.enqueue(t, A, b"two", &mut d), Ok(false));
        assert_eq!(c.enqueue(t, A, b"three", &mut d), Err(DropReason::ArpQueueFull));
        assert_eq!(c.enqueue(t, B, b"b1", &mut d), Ok(true));
        assert_eq!(
            c.enqueue(t, B, b"b2", &mut d),
            Err(DropReason::ArpQueueFull),
            "total bound"
        );
        assert!(c.learn(t, A, MAC_A, false, &mut s, &mut d));
        assert_eq!(c.pop_waiting(A).as_deref(), Some(&b"one"[..]));
        assert_eq!(c.pop_waiting(A).as_deref(), Some(&b"two"[..]));
        assert_eq!(c.pop_waiting(A), None);
        assert_eq!(c.waiting_len(), 1);
    }

    #[test]
    fn retries_then_gives_up() {
        let (mut c, mut s, mut d) = cache(ArpConfig::default());
        let t = Instant::from_secs(1);
        assert_eq!(c.enqueue(t, A, b"x", &mut d), Ok(true));
        assert_eq!(c.next_action(t, &mut s, &mut d), None);
        assert_eq!(c.poll_at(), Some(t + Duration::from_secs(1)));
        let t = t + Duration::from_secs(1);
        assert_eq!(c.next_action(t, &mut s, &mut d), Some(Action::Request(A)));
        assert_eq!(c.next_action(t, &mut s, &mut d), None);
        let t = t + Duration::from_secs(1);
        assert_eq!(c.next_action(t, &mut s, &mut d), Some(Action::Request(A)));
        let t = t + Duration::from_secs(1);
        assert_eq!(c.next_action(t, &mut s, &mut d), None, "gave up after 3 requests");
        assert_eq!(d[DropReason::ArpUnresolved], 1);
        assert_eq!(s.failed, 1);
        assert_eq!(c.waiting_len(), 0);
        assert_eq!(c.poll_at(), None);
        // A new packet starts a new resolution.
        assert_eq!(c.enqueue(t, A, b"y", &mut d), Ok(true));
    }

    #[test]
    fn full_cache_evicts_oldest_dynamic() {
        let cfg = ArpConfig {
            cache_size: 2,
            ..Default::default()
        };
        let mut c = ArpCache::new(cfg, &[(Ipv4Address::new(10, 0, 0, 1), MAC_A)]);
        let (mut s, mut d) = (ArpStats::default(), Drops::default());
        assert!(c.learn(Instant::from_secs(1), A, MAC_A, true, &mut s, &mut d));
        assert!(c.learn(Instant::from_secs(2), B, MAC_B, true, &mut s, &mut d));
        assert_eq!(c.peek(Instant::from_secs(2), A), None, "A evicted");
        assert_eq!(c.peek(Instant::from_secs(2), B), Some(MAC_B));
        assert_eq!(
            c.peek(Instant::from_secs(2), Ipv4Address::new(10, 0, 0, 1)),
            Some(MAC_A)
        );
    }

    /// RFC 4861's unreachability detection: REACHABLE for 30 s after a solicited
    /// advertisement, then STALE; the first packet to a stale neighbour goes (DELAY) and
    /// 5 s later, unconfirmed, it is probed with unicast solicitations (PROBE) every
    /// second, forgotten after the third; a confirmation on the way makes it REACHABLE
    /// again. News that is not a confirmation leaves a known address as it is, and makes a
    /// changed one STALE.
    #[test]
    fn neighbour_unreachability_detection_states() {
        let mut c: ArpCache<Ipv4Address> = ArpCache::new_nd(ArpConfig::default(), &[]);
        let (mut s, mut d) = (ArpStats::default(), Drops::default());
        let t0 = Instant::from_secs(1);
        // INCOMPLETE, then a solicited advertisement: REACHABLE.
        assert_eq!(c.enqueue(t0, A, b"x", &mut d), Ok(true));
        assert!(c.learn_nd(t0, A, (MAC_A, true, true, false), &mut s, &mut d));
        assert_eq!(c.pop_waiting(A).as_deref(), Some(&b"x"[..]));
        assert_eq!(
            c.lookup(t0 + Duration::from_secs(29), A, &mut s),
            Lookup::Hit(MAC_A)
        );
        assert_eq!(c.next_action(t0 + Duration::from_secs(29), &mut s, &mut d), None);
        // 30 s on: used, not confirmed: DELAY, then PROBE after 5 s.
        let t1 = t0 + Duration::from_secs(31);
        assert_eq!(c.lookup(t1, A, &mut s), Lookup::Hit(MAC_A));
        assert_eq!(c.poll_at(), Some(t1 + DELAY_FIRST_PROBE));
        assert_eq!(c.next_action(t1 + Duration::from_secs(4), &mut s, &mut d), None);
        let t2 = t1 + DELAY_FIRST_PROBE;
        assert_eq!(c.next_action(t2, &mut s, &mut d), Some(Action::Probe(A, MAC_A)));
        assert_eq!(c.next_action(t2, &mut s, &mut d), None, "one probe a second");
        assert_eq!(
            c.lookup(t2, A, &mut s),
            Lookup::Hit(MAC_A),
            "still used while probed"
        );
        // Confirmed by the answer: REACHABLE, no more probes.
        assert!(c.learn_nd(t2, A, (MAC_A, true, true, false), &mut s, &mut d));
        assert_eq!(c.next_action(t2 + Duration::from_secs(2), &mut s, &mut d), None);
        assert_eq!(c.poll_at(), None);
        // Stale again, probed three times without answer: forgotten.
        let t3 = t2 + Duration::from_secs(31);
        assert_eq!(c.lookup(t3, A, &mut s), Lookup::Hit(MAC_A));
        let mut t = t3 + DELAY_FIRST_PROBE;
        for _ in 0..3 {
            assert_eq!(c.next_action(t, &mut s, &mut d), Some(Action::Probe(A, MAC_A)));
            t = t + Duration::from_secs(1);
        }
        assert_eq!(c.next_action(t, &mut s, &mut d), None);
        assert_eq!(s.failed, 1);
        assert_eq!(c.lookup(t, A, &mut s), Lookup::Miss, "unreachable: resolved anew");
        // An unsolicited word about a new neighbour: STALE (used, then probed).
        assert!(c.learn_nd(t, B, (MAC_B, false, true, true), &mut s, &mut d));
        assert_eq!(c.lookup(t, B, &mut s), Lookup::Hit(MAC_B));
        assert_eq!(c.poll_at(), Some(t + DELAY_FIRST_PROBE));
        // ... and about a known one with the same address: nothing changes; with another
        // address: that one, STALE.
        assert!(c.learn_nd(t, B, (MAC_B, false, true, false), &mut s, &mut d));
        assert_eq!(c.poll_at(), Some(t + DELAY_FIRST_PROBE), "still in DELAY");
        assert!(c.learn_nd(t, B, (MAC_A, false, true, false), &mut s, &mut d));
        assert_eq!(c.peek(t, B), Some(MAC_A));
        // Without the override flag another address changes nothing but REACHABLE to STALE.
        assert!(c.learn_nd(t, B, (MAC_B, true, true, false), &mut s, &mut d));
        assert!(c.learn_nd(t, B, (MAC_A, true, false, false), &mut s, &mut d));
        assert_eq!(c.peek(t, B), Some(MAC_B), "kept");
        assert_eq!(c.lookup(t, B, &mut s), Lookup::Hit(MAC_B));
        assert_eq!(
            c.poll_at(),
            Some(t + DELAY_FIRST_PROBE),
            "stale: used, then probed"
        );
        // Unknown and not to be created: ignored.
        assert!(!c.learn_nd(
            t,
            Ipv4Address::new(10, 0, 0, 9),
            (MAC_A, false, true, false),
            &mut s,
            &mut d
        ));
    }
}
