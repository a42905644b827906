//! The congestion controller a connection runs: one of those Sluice ships (NewReno,
//! CUBIC, none), or an application's own, dispatched without allocation for the shipped
//! ones. Each controller lives in its own module under the `CongestionControl` trait
//! (`crate::congestion`); this one only chooses.

use core::time::Duration;

use sluice_wire::tcp::SeqNumber;
use sluice_wire::Instant;

use crate::congestion::{AckInfo, CcAction, CongestionControl, NewReno, Unlimited};
use crate::cubic::Cubic;

/// The controllers Sluice ships, dispatched without allocation. New algorithms become
/// variants here (or use `Custom`).
#[derive(Debug)]
pub enum Congestion {
    NewReno(NewReno),
    Unlimited(Unlimited),
    Custom(Box<dyn CongestionControl + Send>),
    Cubic(Cubic),
}

/// Makes `$call` on the controller a `Congestion` holds (as `$c`): a `match` whose arms call the
/// shipped controllers' methods directly (inlined where small: `cwnd`,
/// `supports_sack_recovery`), the trait object only for `Custom`. Going through a
/// `&dyn CongestionControl` for all of them made every call on the per-ACK path an
/// indirect one, and none could inline.
macro_rules! dispatch {
    ($self:ident, $c:ident => $call:expr) => {
        match $self {
            Congestion::NewReno($c) => $call,
            Congestion::Unlimited($c) => $call,
            Congestion::Cubic($c) => $call,
            Congestion::Custom($c) => $call,
        }
    };
}

impl CongestionControl for Congestion {
    fn cwnd(&self) -> usize {
        dispatch!(self, c => c.cwnd())
    }
    fn ssthresh(&self) -> usize {
        dispatch!(self, c => c.ssthresh())
    }
    fn in_recovery(&self) -> bool {
        dispatch!(self, c => c.in_recovery())
    }
    fn on_ack(&mut self, info: &AckInfo) -> CcAction {
        dispatch!(self, c => c.on_ack(info))
    }
    fn on_dup_ack(&mut self, info: &AckInfo) -> CcAction {
        dispatch!(self, c => c.on_dup_ack(info))
    }
    fn on_rto(&mut self, flight_size: usize, snd_max: SeqNumber, mss: usize) {
        dispatch!(self, c => c.on_rto(flight_size, snd_max, mss))
    }
    fn on_mss(&mut self, mss: usize) {
        dispatch!(self, c => c.on_mss(mss))
    }
    fn supports_sack_recovery(&self) -> bool {
        dispatch!(self, c => c.supports_sack_recovery())
    }
    fn on_loss(&mut self, now: Instant, flight_size: usize, mss: usize) {
        dispatch!(self, c => c.on_loss(now, flight_size, mss))
    }
    fn on_recovery_exit(&mut self, now: Instant, mss: usize) {
        dispatch!(self, c => c.on_recovery_exit(now, mss))
    }
    fn on_rtt(&mut self, srtt: Duration) {
        dispatch!(self, c => c.on_rtt(srtt))
    }
}
