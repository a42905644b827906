//! The echo service: every byte received is sent back, with reading paused while too much
//! is queued. When the peer finishes, the rest is sent and the connection shuts down.

use crate::out::OutQueue;
use crate::session::{Session, Tally, HIGH_WATER};

#[derive(Debug, Default)]
pub struct EchoSession {
    done: bool,
    /// Close after this long (ns) without input while nothing is queued.
    idle_timeout: Option<u64>,
}

impl EchoSession {
    pub fn new() -> EchoSession {
        EchoSession::default()
    }
    /// An echo session that times out after `idle_timeout` ns without input.
    pub fn with_idle_timeout(idle_timeout: Option<u64>) -> EchoSession {
        EchoSession {
            done: false,
            idle_timeout,
        }
    }
}

impl Session for EchoSession {
    fn input(&mut self, data: &[u8], out: &mut OutQueue, t: &mut Tally, _now: u64) -> usize {
        let room = HIGH_WATER.saturating_sub(out.len()) as usize;
        let n = data.len().min(room);
        out.push_bytes(&data[..n]);
        if n > 0 {
            t.requests += 1;
        }
        n
    }
    fn eof(&mut self, _out: &mut OutQueue, _t: &mut Tally, _now: u64) {
        self.done = true;
    }
    fn finished(&self) -> bool {
        self.done
    }
    fn deadline(&self, last_input: u64) -> Option<u64> {
        self.idle_timeout.map(|d| last_input.saturating_add(d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoes_in_order_with_backpressure_and_finishes_on_eof() {
        let (mut s, mut out, mut t) = (EchoSession::new(), OutQueue::new(), Tally::new());
        assert_eq!(s.input(b"hello ", &mut out, &mut t, 0), 6);
        assert_eq!(s.input(b"world", &mut out, &mut t, 0), 5);
        assert_eq!(out.to_vec(), b"hello world");
        let big = vec![7u8; HIGH_WATER as usize];
        let n = s.input(&big, &mut out, &mut t, 0);
        assert_eq!(
            n as u64,
            HIGH_WATER - 11,
            "takes only what fits under the high-water mark"
        );
        assert!(!s.wants_input(&out));
        assert_eq!(s.input(b"more", &mut out, &mut t, 0), 0);
        out.consume(out.len() as usize);
        assert!(s.wants_input(&out));
        assert!(!s.finished());
        s.eof(&mut out, &mut t, 0);
        assert!(s.finished());
    }
}
