//! The load generator's client logic, sans-I/O: a closed loop of requests per connection
//! (`pipeline` outstanding at most), against the echo server (the response is the request
//! sent back, checked byte for byte) or an HTTP server (the response is parsed and its
//! body skipped). Completed requests record their latency; the summary math is here too.

use std::collections::VecDeque;
use std::sync::Arc;

use hdrhistogram::Histogram;
use nonmax::NonMaxU64;

use crate::http::{find_head_end, parse_response};
use crate::out::OutQueue;
use crate::session::{ns, Session, Tally};

/// Requests up to this size are copied into a connection's output queue instead of
/// shared (`ClientSession::produce`).
const COPY_REQUEST_UP_TO: usize = 1024;

/// The largest response head the client accepts.
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// What the server answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// The request comes back unchanged.
    Echo,
    /// An HTTP/1.1 response with a `Content-Length`.
    Http,
}

/// What every connection sends.
#[derive(Debug)]
pub struct LoadSpec {
    pub protocol: Protocol,
    pub request: Arc<[u8]>,
    /// Requests outstanding per connection (1: strictly closed loop).
    pub pipeline: usize,
    /// Requests per connection before it is closed (and a new one opened in its place);
    /// `None`: connections stay open.
    pub per_connection: Option<u64>,
}

/// The largest echo request: where a response is, a session counts in a `u32`.
pub const MAX_ECHO_REQUEST: usize = u32::MAX as usize;

impl LoadSpec {
    /// Echo requests of `size` bytes of the filler pattern (1 byte to `MAX_ECHO_REQUEST`).
    pub fn echo(size: usize, pipeline: usize) -> LoadSpec {
        LoadSpec {
            protocol: Protocol::Echo,
            request: Arc::from(crate::out::pattern_vec(size.clamp(1, MAX_ECHO_REQUEST))),
            pipeline: pipeline.max(1),
            per_connection: None,
        }
    }
    /// `GET path` with a `Host` header.
    pub fn http(path: &str, host: &str, pipeline: usize) -> LoadSpec {
        let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: sluice-loadgen\r\n\r\n");
        LoadSpec {
            protocol: Protocol::Http,
            request: Arc::from(req.into_bytes()),
            pipeline: pipeline.max(1),
            per_connection: None,
        }
    }
    /// Closes every connection after `n` requests (at least one): the driver opens a new
    /// one in its place, so that a run measures connection setup and teardown.
    pub fn with_per_connection(mut self, n: u64) -> LoadSpec {
        self.per_connection = Some(n.max(1));
        self
    }
}

/// One client connection's loop.
#[derive(Debug)]
pub struct ClientSession {
    spec: Arc<LoadSpec>,
    /// Send times of the outstanding requests, oldest first.
    inflight: SendTimes,
    /// HTTP: where the response being read is (taken at the first response: an echo
    /// client's session stays small, three cache lines with its connection in the driver).
    http: Option<Box<HttpRead>>,
    /// Requests sent on this connection.
    sent: u64,
    /// Responses received on this connection (good or bad).
    answered: u64,
    /// Echo: bytes of the current response received.
    pos: u32,
    /// No more requests on this connection.
    done: bool,
}

/// Where an HTTP client is in the response it reads.
#[derive(Debug, Default)]
struct HttpRead {
    /// A partial response head, where to resume scanning it, the body left.
    head: Vec<u8>,
    scan: usize,
    body_left: Option<u64>,
    last_ok: bool,
    close_after: bool,
}

impl ClientSession {
    pub fn new(spec: Arc<LoadSpec>) -> ClientSession {
        ClientSession {
            spec,
            inflight: SendTimes::default(),
            http: None,
            sent: 0,
            answered: 0,
            pos: 0,
            done: false,
        }
    }

    pub fn outstanding(&self) -> usize {
        self.inflight.len()
    }

    fn complete(&mut self, ok: bool, t: &mut Tally, now: u64) {
        let Some(sent) = self.inflight.pop_front() else {
            return self.fail(t);
        };
        if ok {
            t.requests += 1;
            t.record_latency(now.saturating_sub(sent));
        } else {
            t.errors += 1;
        }
        self.answered += 1;
        if self.spec.per_connection.is_some_and(|n| self.answered >= n) {
            self.done = true;
        }
    }

    /// A protocol error: counted, and the connection ends.
    fn fail(&mut self, t: &mut Tally) {
        t.errors += 1;
        self.inflight.clear();
        self.done = true;
    }

    fn input_echo(&mut self, data: &[u8], t: &mut Tally, now: u64) {
        let mut i = 0;
        while i < data.len() {
            if self.inflight.is_empty() {
                return self.fail(t); // bytes nobody asked for
            }
            // (The spec's `Arc` borrowed, not cloned: a clone is two locked instructions.)
            let (req, pos) = (&self.spec.request, self.pos as usize);
            let k = (data.len() - i).min(req.len() - pos);
            if data[i..i + k] != req[pos..pos + k] {
                return self.fail(t);
            }
            i += k;
            // Below the request's length, a `u32` (`MAX_ECHO_REQUEST`).
            self.pos += k as u32;
            if self.pos as usize == req.len() {
                self.pos = 0;
                self.complete(true, t, now);
            }
        }
    }

    /// Returns how much of `data` was consumed.
    fn input_http(&mut self, data: &[u8], t: &mut Tally, now: u64) -> usize {
        let mut h = self.http.take().unwrap_or_default();
        let mut used = 0;
        while used < data.len() && !self.done {
            let rest = &data[used..];
            if let Some(left) = h.body_left {
                let k = left.min(rest.len() as u64);
                used += k as usize;
                h.body_left = Some(left - k);
                if left == k {
                    self.end_response(&mut h, t, now);
                }
                continue;
            }
            if self.inflight.is_empty() {
                self.fail(t);
                break;
            }
            let old = h.head.len();
            let take = rest.len().min(MAX_RESPONSE_HEAD + 1 - old.min(MAX_RESPONSE_HEAD));
            h.head.extend_from_slice(&rest[..take]);
            match find_head_end(&h.head, h.scan) {
                Some(end) => {
                    used += end.saturating_sub(old);
                    match parse_response(&h.head[..end]) {
                        Some(r) => {
                            h.last_ok = (200..400).contains(&r.status);
                            h.close_after = r.close;
                            h.body_left = Some(r.content_length);
                            if r.content_length == 0 {
                                self.end_response(&mut h, t, now);
                            }
                        }
                        None => self.fail(t),
                    }
                    h.head.clear();
                    h.scan = 0;
                }
                None => {
                    used += take;
                    if h.head.len() > MAX_RESPONSE_HEAD {
                        self.fail(t);
                    }
                    h.scan = h.head.len().saturating_sub(3);
                }
            }
        }
        self.http = Some(h);
        if self.done {
            data.len()
        } else {
            used
        }
    }

    fn end_response(&mut self, h: &mut HttpRead, t: &mut Tally, now: u64) {
        h.body_left = None;
        self.complete(h.last_ok, t, now);
        if h.close_after {
            self.done = true;
            if !self.inflight.is_empty() {
                // Requests sent behind a closing response get no answer.
                t.errors += self.inflight.len() as u64;
                self.inflight.clear();
            }
        }
    }
}

impl Session for ClientSession {
    fn input(&mut self, data: &[u8], _out: &mut OutQueue, t: &mut Tally, now: u64) -> usize {
        if self.done {
            return data.len();
        }
        match self.spec.protocol {
            Protocol::Echo => {
                self.input_echo(data, t, now);
                data.len()
            }
            Protocol::Http => self.input_http(data, t, now),
        }
    }
    fn produce(&mut self, out: &mut OutQueue, _t: &mut Tally, now: u64) {
        let limit = self.spec.per_connection.unwrap_or(u64::MAX);
        while !self.done && self.inflight.len() < self.spec.pipeline && self.sent < limit {
            // A small request is copied: cheaper than sharing it, whose count is two
            // locked instructions a request, each waiting for every store before it.
            if self.spec.request.len() <= COPY_REQUEST_UP_TO {
                out.push_bytes(&self.spec.request);
            } else {
                out.push_shared(self.spec.request.clone());
            }
            self.inflight.push_back(now);
            self.sent += 1;
        }
    }
    fn eof(&mut self, _out: &mut OutQueue, t: &mut Tally, _now: u64) {
        if !self.inflight.is_empty() {
            self.fail(t);
        }
        self.done = true;
    }
    fn finished(&self) -> bool {
        self.done && self.inflight.is_empty()
    }
    fn prefetch(&self) {
        self.inflight.prefetch();
    }
}

/// The send times of a connection's outstanding requests, oldest first. The oldest lies
/// in the session itself: with one request out at a time (no pipelining) the queue's
/// memory, a cache line of its own per request with thousands of connections, is never
/// touched.
#[derive(Debug, Default)]
struct SendTimes {
    oldest: Option<NonMaxU64>,
    /// The others (pipelining only): boxed, so that the session stays small (8 bytes
    /// instead of the deque's 32).
    #[allow(clippy::box_collection)]
    rest: Option<Box<VecDeque<u64>>>,
}

impl SendTimes {
    fn len(&self) -> usize {
        usize::from(self.oldest.is_some()) + self.rest.as_ref().map_or(0, |r| r.len())
    }
    fn is_empty(&self) -> bool {
        self.oldest.is_none()
    }
    fn push_back(&mut self, t: u64) {
        if self.oldest.is_none() {
            self.oldest = Some(ns(t));
        } else {
            self.rest.get_or_insert_default().push_back(t);
        }
    }
    fn pop_front(&mut self) -> Option<u64> {
        let t = self.oldest.take()?;
        self.oldest = self.rest.as_mut().and_then(|r| r.pop_front()).map(ns);
        Some(t.get())
    }
    fn clear(&mut self) {
        self.oldest = None;
        if let Some(r) = &mut self.rest {
            r.clear();
        }
    }
    /// Starts fetching the queue's memory, if there is more than the oldest.
    fn prefetch(&self) {
        if let Some(r) = self.rest.as_ref().filter(|r| !r.is_empty()) {
            sluice_buf::prefetch(r.as_slices().0.as_ptr().cast(), 1);
        }
    }
}

/// Latency percentiles of a run, in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LatencySummary {
    pub count: u64,
    pub mean: f64,
    pub min: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl LatencySummary {
    pub fn of(h: &Histogram<u64>) -> LatencySummary {
        if h.is_empty() {
            return LatencySummary {
                count: 0,
                mean: 0.0,
                min: 0,
                p50: 0,
                p90: 0,
                p99: 0,
                p999: 0,
                max: 0,
            };
        }
        LatencySummary {
            count: h.len(),
            mean: h.mean(),
            min: h.min(),
            p50: h.value_at_quantile(0.50),
            p90: h.value_at_quantile(0.90),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// Events per second.
pub fn rate(count: u64, seconds: f64) -> f64 {
    if seconds <= 0.0 {
        0.0
    } else {
        count as f64 / seconds
    }
}

/// How many of `total` connections core `core` of `cores` opens.
pub fn share(total: usize, core: usize, cores: usize) -> usize {
    let cores = cores.max(1);
    total / cores + usize::from(core < total % cores)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Send times come back in order, across the inline oldest and the queue; one at a
    /// time never allocates the queue.
    #[test]
    fn send_times_are_first_in_first_out() {
        let mut q = SendTimes::default();
        for t in 0..100 {
            q.push_back(t);
            assert_eq!(q.len(), 1);
            assert_eq!(q.pop_front(), Some(t));
            assert!(q.is_empty());
        }
        assert!(q.rest.is_none(), "one at a time stays inline");
        for t in 0..5 {
            q.push_back(t);
        }
        assert_eq!(q.len(), 5);
        assert_eq!(q.pop_front(), Some(0));
        q.push_back(5);
        let order: Vec<u64> = std::iter::from_fn(|| q.pop_front()).collect();
        assert_eq!(order, [1, 2, 3, 4, 5]);
        assert_eq!(q.pop_front(), None);
        q.push_back(7);
        q.push_back(8);
        q.clear();
        assert!(q.is_empty() && q.len() == 0);
    }

    fn feed(s: &mut ClientSession, data: &[u8], split: usize, t: &mut Tally, now: u64) {
        let mut out = OutQueue::new();
        for c in data.chunks(split.max(1)) {
            let mut c = c;
            while !c.is_empty() {
                let n = s.input(c, &mut out, t, now);
                assert!(n > 0, "the client always makes progress on input");
                c = &c[n..];
            }
        }
    }

    #[test]
    fn echo_closed_loop_records_latency() {
        let spec = Arc::new(LoadSpec::echo(10, 1));
        let (mut s, mut out, mut t) = (ClientSession::new(spec.clone()), OutQueue::new(), Tally::new());
        s.produce(&mut out, &mut t, 1_000);
        assert_eq!(out.to_vec(), spec.request.to_vec());
        s.produce(&mut out, &mut t, 1_000);
        assert_eq!(out.len(), 10, "one outstanding request at a time");
        let echo = out.to_vec();
        feed(&mut s, &echo, 3, &mut t, 6_000);
        assert_eq!((t.requests, t.errors, s.outstanding()), (1, 0, 0));
        assert_eq!(t.latency.max(), t.latency.highest_equivalent(5_000));
    }

    #[test]
    fn echo_mismatch_and_unsolicited_bytes_are_errors() {
        let spec = Arc::new(LoadSpec::echo(4, 2));
        let (mut s, mut out, mut t) = (ClientSession::new(spec.clone()), OutQueue::new(), Tally::new());
        s.produce(&mut out, &mut t, 0);
        assert_eq!(out.len(), 8, "pipeline of two");
        feed(&mut s, b"abcX", 4, &mut t, 1);
        assert_eq!(t.errors, 1);
        assert!(s.finished());
        let mut s = ClientSession::new(spec);
        feed(&mut s, b"a", 1, &mut t, 1);
        assert_eq!(t.errors, 2);
    }

    #[test]
    fn http_responses_in_any_split() {
        let spec = Arc::new(LoadSpec::http("/", "h", 2));
        for split in [1, 2, 5, 17, 1000] {
            let (mut s, mut out, mut t) = (ClientSession::new(spec.clone()), OutQueue::new(), Tally::new());
            s.produce(&mut out, &mut t, 0);
            let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
            feed(&mut s, resp, split, &mut t, 10);
            assert_eq!(
                (t.requests, t.errors, s.outstanding()),
                (1, 1, 0),
                "split {split}"
            );
            assert!(!s.finished());
            s.produce(&mut out, &mut t, 20);
            feed(
                &mut s,
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx",
                split,
                &mut t,
                30,
            );
            assert!(s.finished(), "Connection: close ends the connection");
            assert_eq!(
                (t.requests, t.errors),
                (2, 2),
                "the request behind the close is an error"
            );
        }
    }

    #[test]
    fn http_garbage_and_early_eof_are_errors() {
        let spec = Arc::new(LoadSpec::http("/", "h", 1));
        let (mut s, mut out, mut t) = (ClientSession::new(spec.clone()), OutQueue::new(), Tally::new());
        s.produce(&mut out, &mut t, 0);
        feed(&mut s, b"SMTP hello\r\n\r\n", 4, &mut t, 1);
        assert_eq!(t.errors, 1);
        assert!(s.finished());
        let mut s = ClientSession::new(spec);
        s.produce(&mut out, &mut t, 0);
        s.eof(&mut out, &mut t, 1);
        assert_eq!(t.errors, 2);
        assert!(s.finished());
    }

    #[test]
    fn per_connection_limit_finishes_the_connection() {
        let spec = Arc::new(LoadSpec::echo(8, 4).with_per_connection(1));
        let (mut s, mut out, mut t) = (ClientSession::new(spec.clone()), OutQueue::new(), Tally::new());
        s.produce(&mut out, &mut t, 0);
        assert_eq!(out.len(), 8, "one request only, whatever the pipeline");
        assert!(!s.finished());
        let echo = out.to_vec();
        feed(&mut s, &echo, 3, &mut t, 10);
        assert_eq!((t.requests, t.errors), (1, 0));
        assert!(s.finished(), "done after its one request");
        let mut more = OutQueue::new();
        s.produce(&mut more, &mut t, 20);
        assert!(more.is_empty());
        let spec = Arc::new(LoadSpec::echo(4, 1).with_per_connection(3));
        let (mut s, mut t) = (ClientSession::new(spec), Tally::new());
        for i in 0..3 {
            let mut out = OutQueue::new();
            s.produce(&mut out, &mut t, i);
            assert_eq!(out.len(), 4);
            let echo = out.to_vec();
            feed(&mut s, &echo, 4, &mut t, i);
        }
        assert!(s.finished());
        assert_eq!(t.requests, 3);
    }

    #[test]
    fn summary_math() {
        let mut t = Tally::new();
        for v in 1..=1000u64 {
            t.record_latency(v * 1000);
        }
        let s = LatencySummary::of(&t.latency);
        assert_eq!(s.count, 1000);
        let near = |a: u64, b: u64| (a as f64 - b as f64).abs() <= b as f64 * 0.001 + 1.0;
        assert!(near(s.p50, 500_000), "{s:?}");
        assert!(near(s.p90, 900_000), "{s:?}");
        assert!(near(s.p99, 990_000), "{s:?}");
        assert!(near(s.p999, 999_000), "{s:?}");
        assert!(near(s.max, 1_000_000) && near(s.min, 1000));
        assert!((s.mean - 500_500.0).abs() < 1000.0);
        let mut u = Tally::new();
        u.requests = 3;
        u.record_latency(5);
        t.merge(&u);
        assert_eq!((t.latency.len(), t.requests), (1001, 3));
        assert_eq!(LatencySummary::of(&Tally::new().latency).count, 0);
        assert_eq!(rate(500, 2.0), 250.0);
        assert_eq!(rate(1, 0.0), 0.0);
        let shares: Vec<usize> = (0..3).map(|c| share(10, c, 3)).collect();
        assert_eq!(shares, [4, 3, 3]);
        assert_eq!((0..4).map(|c| share(2, c, 4)).sum::<usize>(), 2);
    }
}
