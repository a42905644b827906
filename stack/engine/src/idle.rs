//! What a poll loop does when a round found no work: under load it keeps polling; when
//! idle it backs off to yielding and then to short sleeps, so that two stack processes and
//! a test harness can share this machine's two cores.

use std::time::Duration;

/// How a poll loop waits when idle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdleStrategy {
    /// Never wait: lowest latency, one core at 100 % (production, dedicated cores).
    BusyPoll,
    /// Spin `spin` idle rounds, then yield `yields` rounds, then sleep, doubling from
    /// 1 µs up to `max_sleep`. Any work resets it.
    Backoff {
        /// Idle rounds that spin (a CPU spin-loop hint) before yielding; 64 by default.
        spin: u32,
        /// Idle rounds after those that yield the thread before sleeping; 64 by default.
        yields: u32,
        /// The longest sleep; 500 µs by default, `backoff:MAX_SLEEP_US` sets it.
        max_sleep: Duration,
    },
}

impl Default for IdleStrategy {
    fn default() -> Self {
        IdleStrategy::Backoff {
            spin: 64,
            yields: 64,
            max_sleep: Duration::from_micros(500),
        }
    }
}

impl std::str::FromStr for IdleStrategy {
    type Err = String;
    /// `busy`, `backoff`, or `backoff:MAX_SLEEP_US`.
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "busy" => Ok(IdleStrategy::BusyPoll),
            "backoff" => Ok(IdleStrategy::default()),
            _ => {
                let us = s
                    .strip_prefix("backoff:")
                    .and_then(|v| v.parse::<u64>().ok())
                    .ok_or_else(|| {
                        format!("unknown idle strategy {s:?}: use busy, backoff or backoff:MAX_SLEEP_US")
                    })?;
                Ok(IdleStrategy::Backoff {
                    spin: 64,
                    yields: 64,
                    max_sleep: Duration::from_micros(us),
                })
            }
        }
    }
}

/// The state of one loop's idle strategy.
#[derive(Debug)]
pub struct Idle {
    strategy: IdleStrategy,
    rounds: u32,
    sleep: Duration,
}

/// What `Idle::wait` did, for counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Waited {
    /// Spun once (a CPU spin-loop hint), without a system call.
    Spun,
    /// Yielded the thread to the OS scheduler.
    Yielded,
    /// Slept. The duration is the back-off's step; the sleep itself was shorter when the
    /// cap given to `wait` was.
    Slept(Duration),
}

impl Idle {
    /// The idle state of a loop with `strategy`, as after a round that did work.
    pub fn new(strategy: IdleStrategy) -> Idle {
        Idle {
            strategy,
            rounds: 0,
            sleep: Duration::from_micros(1),
        }
    }

    /// A round did work: poll again at once.
    pub fn reset(&mut self) {
        self.rounds = 0;
        self.sleep = Duration::from_micros(1);
    }

    /// What to do after an idle round, without doing it (for tests and for callers that
    /// wait on something else).
    pub fn next(&mut self) -> Waited {
        self.rounds = self.rounds.saturating_add(1);
        match self.strategy {
            IdleStrategy::BusyPoll => Waited::Spun,
            IdleStrategy::Backoff {
                spin,
                yields,
                max_sleep,
            } => {
                if self.rounds <= spin {
                    Waited::Spun
                } else if self.rounds <= spin + yields {
                    Waited::Yielded
                } else {
                    let d = self.sleep.min(max_sleep);
                    self.sleep = (self.sleep * 2).min(max_sleep);
                    Waited::Slept(d)
                }
            }
        }
    }

    /// An idle round: spin, yield or sleep as the strategy says; `limit` caps a sleep
    /// (the next timer).
    pub fn wait(&mut self, limit: Option<Duration>) -> Waited {
        self.wait_until(|| limit)
    }

    /// `wait`, with the cap computed only when the round sleeps: spinning and yielding
    /// rounds (every idle round of `--idle busy`) never look for the next timer.
    pub fn wait_until(&mut self, limit: impl FnOnce() -> Option<Duration>) -> Waited {
        let w = self.next();
        match w {
            Waited::Spun => std::hint::spin_loop(),
            Waited::Yielded => std::thread::yield_now(),
            Waited::Slept(d) => std::thread::sleep(limit().map_or(d, |l| d.min(l))),
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_spins_then_yields_then_sleeps_up_to_the_cap() {
        let mut i = Idle::new(IdleStrategy::Backoff {
            spin: 2,
            yields: 1,
            max_sleep: Duration::from_micros(4),
        });
        let seq: Vec<_> = (0..7).map(|_| i.next()).collect();
        use Waited::*;
        let us = Duration::from_micros;
        assert_eq!(
            seq,
            [
                Spun,
                Spun,
                Yielded,
                Slept(us(1)),
                Slept(us(2)),
                Slept(us(4)),
                Slept(us(4))
            ]
        );
        i.reset();
        assert_eq!(i.next(), Spun);
    }

    #[test]
    fn parses() {
        assert_eq!("busy".parse::<IdleStrategy>(), Ok(IdleStrategy::BusyPoll));
        assert!(
            matches!("backoff:200".parse(), Ok(IdleStrategy::Backoff { max_sleep, .. }) if max_sleep == Duration::from_micros(200))
        );
        assert!("nap".parse::<IdleStrategy>().is_err());
    }
}
