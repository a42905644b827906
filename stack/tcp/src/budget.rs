//! A memory budget for connection buffers, in the spirit of Linux's `tcp_mem`.
//!
//! Each ring of a connection (send and receive) grows on demand, doubling from 1 KiB up to
//! its logical capacity (`TcpConfig::send_buffer`/`recv_buffer`: the maxima, as
//! `tcp_wmem[2]`/`tcp_rmem[2]`). With a budget, every growth is charged to it first, and to
//! its parent (a core's budget has the process's total as parent):
//!
//! - below the pressure mark (3/4 of the limit) rings grow and keep their memory;
//! - at or above it, a ring that empties (all its data acknowledged, or all read) gives
//!   its memory back at once, so idle connections hold none;
//! - a growth beyond the limit is refused: the ring keeps what it has. A write then takes
//!   only what fits (`WouldBlock` when nothing does); received bytes that do not fit are
//!   dropped unacknowledged (the peer sends them again) and counted; and the interface
//!   refuses new connections while the budget is exhausted (`drops mem_budget`).
//!
//! Charges happen when a ring grows or shrinks, a handful of times in a connection's life,
//! never per packet. The counters are atomics so that one total can be shared by every
//! core; a core's own budget is touched by that core only.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// A budget of bytes for buffers; see the module documentation.
#[derive(Debug)]
pub struct MemBudget {
    used: AtomicUsize,
    peak: AtomicUsize,
    limit: usize,
    pressure: usize,
    refused: AtomicU64,
    parent: Option<Arc<MemBudget>>,
}

impl MemBudget {
    /// A budget of `limit` bytes, charged to `parent` too.
    pub fn new(limit: usize, parent: Option<Arc<MemBudget>>) -> Arc<MemBudget> {
        Arc::new(MemBudget {
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            limit,
            pressure: limit / 4 * 3,
            refused: AtomicU64::new(0),
            parent,
        })
    }

    /// Takes `n` bytes from this budget and its parents, or none of them (returns false,
    /// and counts the refusal where it happened).
    pub fn try_charge(&self, n: usize) -> bool {
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            if cur.saturating_add(n) > self.limit {
                self.refused.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            match self
                .used
                .compare_exchange_weak(cur, cur + n, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        if let Some(p) = &self.parent {
            if !p.try_charge(n) {
                self.used.fetch_sub(n, Ordering::Relaxed);
                return false;
            }
        }
        self.peak.fetch_max(cur + n, Ordering::Relaxed);
        true
    }

    /// Takes `n` bytes already in use, whatever the limit.
    pub fn force_charge(&self, n: usize) {
        let now = self.used.fetch_add(n, Ordering::Relaxed) + n;
        self.peak.fetch_max(now, Ordering::Relaxed);
        if let Some(p) = &self.parent {
            p.force_charge(n);
        }
    }

    /// Gives back `n` bytes taken by `try_charge` or `force_charge`.
    pub fn release(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::Relaxed);
        if let Some(p) = &self.parent {
            p.release(n);
        }
    }

    /// At or above the pressure mark here or in a parent: empty rings give their memory
    /// back.
    pub fn under_pressure(&self) -> bool {
        self.used.load(Ordering::Relaxed) >= self.pressure
            || self.parent.as_ref().is_some_and(|p| p.under_pressure())
    }

    /// Too little left here or in a parent for a new connection's first buffers (16 KiB).
    pub fn exhausted(&self) -> bool {
        self.used.load(Ordering::Relaxed) + 16 * 1024 > self.limit
            || self.parent.as_ref().is_some_and(|p| p.exhausted())
    }

    /// Bytes that may still be charged here and in every parent.
    pub fn available(&self) -> usize {
        let own = self.limit.saturating_sub(self.used.load(Ordering::Relaxed));
        self.parent.as_ref().map_or(own, |p| own.min(p.available()))
    }

    /// Bytes charged now.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// The most bytes charged at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Growths refused here (not counting those a parent refused).
    pub fn refusals(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    pub fn parent(&self) -> Option<&Arc<MemBudget>> {
        self.parent.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_go_to_every_level_or_none() {
        let total = MemBudget::new(100, None);
        let a = MemBudget::new(80, Some(total.clone()));
        let b = MemBudget::new(80, Some(total.clone()));
        assert!(a.try_charge(60));
        assert!(!a.try_charge(30), "a's own limit");
        assert_eq!(a.refusals(), 1);
        assert!(!b.try_charge(50), "the total's limit");
        assert_eq!((b.used(), total.used()), (0, 60), "nothing taken when refused");
        assert!(b.try_charge(40));
        assert!(
            total.under_pressure() && b.under_pressure(),
            "the parent's pressure counts"
        );
        a.release(60);
        b.release(40);
        assert_eq!((a.used(), b.used(), total.used()), (0, 0, 0));
        assert_eq!(total.peak(), 100);
    }
}
