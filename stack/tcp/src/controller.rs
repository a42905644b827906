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

impl Congestion {
    fn inner(&self) -> &dyn CongestionControl {
        match self {
            Congestion::NewReno(c) => c,
            Congestion::Unlimited(c) => c,
            Congestion::Custom(c) => c.as_ref(),
            Congestion::Cubic(c) => c,
        }
    }
    fn inner_mut(&mut self) -> &mut dyn CongestionControl {
        match self {
            Congestion::NewReno(c) => c,
            Congestion::Unlimited(c) => c,
            Congestion::Custom(c) => c.as_mut(),
            Congestion::Cubic(c) => c,
        }
    }
}

impl CongestionControl for Congestion {
    fn cwnd(&self) -> usize {
        self.inner().cwnd()
    }
    fn ssthresh(&self) -> usize {
        self.inner().ssthresh()
    }
    fn in_recovery(&self) -> bool {
        self.inner().in_recovery()
    }
    fn on_ack(&mut self, info: &AckInfo) -> CcAction {
        self.inner_mut().on_ack(info)
    }
    fn on_dup_ack(&mut self, info: &AckInfo) -> CcAction {
        self.inner_mut().on_dup_ack(info)
    }
    fn on_rto(&mut self, flight_size: usize, snd_max: SeqNumber, mss: usize) {
        self.inner_mut().on_rto(flight_size, snd_max, mss)
    }
    fn on_mss(&mut self, mss: usize) {
        self.inner_mut().on_mss(mss)
    }
    fn supports_sack_recovery(&self) -> bool {
        self.inner().supports_sack_recovery()
    }
    fn on_loss(&mut self, now: Instant, flight_size: usize, mss: usize) {
        self.inner_mut().on_loss(now, flight_size, mss)
    }
    fn on_recovery_exit(&mut self, now: Instant, mss: usize) {
        self.inner_mut().on_recovery_exit(now, mss)
    }
    fn on_rtt(&mut self, srtt: Duration) {
        self.inner_mut().on_rtt(srtt)
    }
}
