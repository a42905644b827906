//! The drivers: the same sessions over Sluice (an engine `App` per core) and over the
//! kernel's sockets (a thread per core with nonblocking sockets and `poll(2)`).

use std::net::SocketAddr;
use std::sync::Arc;

pub mod kernel;
pub mod sluice;

/// Makes a session for a new connection (accepted or opened).
pub type Factory<S> = Arc<dyn Fn() -> S + Send + Sync>;

/// What a driver does with connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// Listen on this port.
    pub listen: Option<u16>,
    pub backlog: usize,
    /// Keep connections open to this server (how many per core is the driver's `want`).
    pub connect: Option<SocketAddr>,
    /// Stop everything once this many connections (of this core) have closed.
    pub stop_after_closed: Option<u64>,
    /// Sluice: send by filling mbufs and queueing them by reference (`write_frame`), one
    /// copy from the application's bytes, instead of through the send buffer (two).
    pub zero_copy_send: bool,
    /// Reset a connection whose queued output nobody takes for this long (ns); nginx's
    /// `send_timeout`. Sluice's driver only.
    pub send_timeout: Option<u64>,
    /// The most connections the listener of each core holds at once; SYNs beyond are
    /// dropped. Sluice's driver only.
    pub max_connections: Option<usize>,
}

impl Default for Plan {
    fn default() -> Self {
        Plan {
            listen: None,
            backlog: 4096,
            connect: None,
            stop_after_closed: None,
            zero_copy_send: false,
            send_timeout: None,
            max_connections: None,
        }
    }
}
