//! The per-core engine of Sluice: RSS steering with a software Toeplitz hash, the timer
//! wheel that drives protocol timers, and the idle strategy of the poll loop.

pub mod idle;
pub mod toeplitz;
pub mod wheel;

pub use idle::{Idle, IdleStrategy};
pub use toeplitz::{RssSteering, Toeplitz};
pub use wheel::TimerWheel;
