//! One core's run-to-completion loop: rx burst and protocol processing (`Interface::poll`),
//! then the application's round, then transmission of what it queued, then the idle
//! strategy. Generic over the device, so tests run it over the in-memory link.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;

use sluice_dev::Device;
use sluice_net::Interface;
use sluice_wire::Instant;

use crate::api::Cx;
use crate::idle::Idle;
use crate::toeplitz::RssSteering;

/// Why an application could not start on a core (a port already in use...): the engine
/// stops and `Engine::run` returns it.
pub type AppError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An application running on every core: it is called each round with the core's context.
/// `Engine::run` makes one per core, on that core's thread, so it need not be `Send`.
pub trait App {
    /// Called once on the core before the first round (bind listeners here). An error
    /// stops the engine, and `Engine::run` returns it.
    fn start(&mut self, _cx: &Cx) -> Result<(), AppError> {
        Ok(())
    }
    /// One round: accept, read, write. Returns whether it did anything (so the loop does
    /// not go idle).
    fn poll(&mut self, cx: &Cx) -> bool;
    /// Called once when the engine stops.
    fn finish(&mut self, _cx: &Cx) {}
}

impl App for Box<dyn App> {
    fn start(&mut self, cx: &Cx) -> Result<(), AppError> {
        (**self).start(cx)
    }
    fn poll(&mut self, cx: &Cx) -> bool {
        (**self).poll(cx)
    }
    fn finish(&mut self, cx: &Cx) {
        (**self).finish(cx)
    }
}

/// Loop counters of one core.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LoopStats {
    /// Rounds run: rx burst and protocol processing, the application's `poll`, transmit.
    pub rounds: u64,
    /// Rounds that did something: received, sent, or the application reported work.
    pub busy_rounds: u64,
    /// Idle rounds that slept (spinning and yielding ones are not counted).
    pub idle_sleeps: u64,
    /// Time spent in the busy rounds, in nanoseconds (from one round's start to the next's,
    /// read off the clock the loop reads anyway): with `Core::run`'s total, how loaded the
    /// core is. A busy-polling core always runs; this is the part that was work.
    pub busy_ns: u64,
    /// Time from the first round's start to the last round's, in nanoseconds.
    pub run_ns: u64,
}

/// One core: its interface, its device queue, and its application.
pub struct Core<D: Device, A: App> {
    /// The interface: the protocol state of this core's connections, shared with the
    /// `Cx` of each round.
    pub iface: Rc<RefCell<Interface>>,
    /// The device queue this core polls.
    pub dev: D,
    /// The application.
    pub app: A,
    /// This core's index, `0..cores`.
    pub core: u16,
    /// How many cores the engine runs.
    pub cores: u16,
    /// How flows map to cores (local ports of active opens, software steering).
    pub steering: RssSteering,
    /// What the loop does after a round without work.
    pub idle: Idle,
    /// The loop's counters.
    pub stats: LoopStats,
    started: bool,
    /// The application's start failed: the engine stops and reports it.
    pub start_error: Option<AppError>,
    /// The last round's start and whether it was busy (`LoopStats::busy_ns`).
    last_round: Option<(Instant, bool)>,
}

impl<D: Device, A: App> Core<D, A>
where
    D::Buf: 'static,
{
    /// A core running `app` over `iface` and `dev`; the application's `start` runs at
    /// the beginning of the first `round`.
    pub fn new(
        iface: Interface,
        dev: D,
        app: A,
        core: u16,
        cores: u16,
        steering: RssSteering,
        idle: Idle,
    ) -> Self {
        Core {
            iface: Rc::new(RefCell::new(iface)),
            dev,
            app,
            core,
            cores,
            steering,
            idle,
            stats: LoopStats::default(),
            started: false,
            start_error: None,
            last_round: None,
        }
    }

    /// One round at time `now`; returns whether anything happened.
    pub fn round(&mut self, now: Instant, stop: &AtomicBool) -> bool {
        let Core {
            iface,
            dev,
            app,
            core,
            cores,
            steering,
            ..
        } = self;
        if !self.started {
            self.started = true;
            if let Err(e) = app.start(&Cx::new(iface, now, *core, *cores, steering, stop)) {
                self.start_error = Some(e);
                stop.store(true, std::sync::atomic::Ordering::SeqCst);
                return false;
            }
        }
        if let Some((then, busy)) = self.last_round {
            let ns = (now - then).as_nanos() as u64;
            self.stats.run_ns += ns;
            if busy {
                self.stats.busy_ns += ns;
            }
        }
        let mut did = iface.borrow_mut().poll(now, dev);
        did |= app.poll(&Cx::new(iface, now, *core, *cores, steering, stop));
        // Send what the application queued in this same round.
        did |= iface.borrow_mut().transmit(now, dev);
        self.stats.rounds += 1;
        if did {
            self.stats.busy_rounds += 1;
        }
        self.last_round = Some((now, did));
        did
    }

    /// The last round did work after all (a command ran between rounds): its time counts
    /// as busy (`LoopStats::busy_ns`).
    pub fn mark_busy(&mut self) {
        if let Some((_, busy)) = &mut self.last_round {
            *busy = true;
        }
    }

    /// An idle round: spin, yield or sleep as the idle strategy says, a sleep capped by the
    /// next timer, which is looked for only when the round sleeps.
    pub fn idle_wait(&mut self, now: Instant) {
        let Core { iface, dev, idle, .. } = &mut *self;
        let limit = || next_deadline(iface, dev).map(|t| t - now);
        if let crate::idle::Waited::Slept(_) = idle.wait_until(limit) {
            self.stats.idle_sleeps += 1;
        }
    }

    /// The round after which the loop may wait: the earliest timer, or a device delivery.
    pub fn poll_at(&self) -> Option<Instant> {
        next_deadline(&self.iface, &self.dev)
    }

    /// Runs rounds with `clock` until `stop` is set, idling between empty rounds.
    pub fn run(&mut self, clock: impl Fn() -> Instant, stop: &AtomicBool) {
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let now = clock();
            if self.round(now, stop) {
                self.idle.reset();
            } else {
                self.idle_wait(now);
            }
        }
        let now = clock();
        let Core {
            iface,
            app,
            core,
            cores,
            steering,
            ..
        } = self;
        app.finish(&Cx::new(iface, now, *core, *cores, steering, stop));
        // Let the last segments (FINs, ACKs) out.
        self.iface.borrow_mut().poll(now, &mut self.dev);
    }

    /// Calls the application's `finish` at `now`, for loops that drive `round` themselves
    /// (`run` does it already). Poll the interface a little longer afterwards, so that the
    /// last FINs and ACKs leave.
    pub fn finish(&mut self, now: Instant, stop: &AtomicBool) {
        let Core {
            iface,
            app,
            core,
            cores,
            steering,
            ..
        } = self;
        app.finish(&Cx::new(iface, now, *core, *cores, steering, stop));
    }
}

/// The earliest of the interface's timers and the device's next delivery.
fn next_deadline<D: Device>(iface: &RefCell<Interface>, dev: &D) -> Option<Instant> {
    [iface.borrow().poll_at(), dev.poll_at()]
        .into_iter()
        .flatten()
        .min()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sluice_dev::{Impairments, MemLink};
    use sluice_net::{InterfaceConfig, IsnKey};
    use sluice_wire::{EthernetAddress, Ipv4Address, Ipv4Cidr};

    use super::*;
    use crate::idle::IdleStrategy;
    use crate::toeplitz::SYMMETRIC_KEY;

    /// Busy in the rounds its script says.
    struct Scripted(Vec<bool>);

    impl App for Scripted {
        fn poll(&mut self, _cx: &Cx) -> bool {
            self.0.remove(0)
        }
    }

    #[test]
    fn busy_time_is_the_span_of_the_busy_rounds() {
        let (dev, _peer, _link) = MemLink::pair(Impairments::default(), Impairments::default(), 1, 64);
        let cfg = InterfaceConfig::new(
            Ipv4Cidr::new(Ipv4Address([198, 18, 0, 1]), 24),
            IsnKey::fixed([1; 16]),
        );
        let iface = Interface::new(cfg, EthernetAddress(dev.mac()));
        let app = Scripted(vec![false, true, true, false, false]);
        let steering = RssSteering::round_robin(&SYMMETRIC_KEY, 128, 1);
        let mut core = Core::new(iface, dev, app, 0, 1, steering, Idle::new(IdleStrategy::BusyPoll));
        let stop = AtomicBool::new(false);
        // Rounds start at 0, 10, 30, 60 and 100 µs: the second and third (10 to 60) were busy.
        for (at, busy) in [(0, false), (10, true), (30, true), (60, false), (100, false)] {
            let now = Instant::from_millis(5) + Duration::from_micros(at);
            assert_eq!(core.round(now, &stop), busy);
        }
        assert_eq!(core.stats.rounds, 5);
        assert_eq!(core.stats.busy_rounds, 2);
        assert_eq!(core.stats.run_ns, 100_000);
        assert_eq!(core.stats.busy_ns, 50_000);
    }
}
