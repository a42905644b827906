//! The per-core engine of Sluice and its socket-like API.
//!
//! - `Engine::run` starts EAL and a port with one queue pair per core, and runs an `App`
//!   on every core in a run-to-completion loop (`Core`): rx burst, protocol processing,
//!   the application's round, tx burst, then the idle strategy.
//! - Flows are owned by one core: hardware RSS (symmetric key, table read back from the
//!   port) where the port has it, software steering through lock-free queues where not.
//!   Active opens pick a local port whose replies hash to the opening core.
//! - The API (`TcpListener`, `TcpStream`, `UdpSocket`, `Poller`) works on the core's
//!   `Cx`; `rt` is an async/await front end on the same core.
//! - `Config` is loadable from TOML and command-line flags.

#![warn(missing_docs)]

pub mod api;
pub mod config;
pub mod core;
mod handle;
pub mod idle;
pub mod pcap;
pub mod rt;
pub mod runner;
pub mod steer;
pub mod telemetry;
pub mod toeplitz;

pub use api::{Cx, Error, Event, Poller, Source, TcpListener, TcpStream, UdpSocket};
pub use config::{Config, ConfigArgs, ConfigError, PortSpec};
pub use core::{App, AppError, Core, LoopStats};
pub use idle::{Idle, IdleStrategy};
pub use runner::{Command, CoreStats, Engine, EngineError, EngineHandle};
pub use sluice_dev::{Frame, FrameMut};
pub use sluice_net::TimerWheel;
pub use toeplitz::{RssSteering, Toeplitz, SYMMETRIC_KEY};
