//! The kernel driver: one thread per core, nonblocking `std::net` sockets, and `poll(2)`
//! over the listener and the connections that want to read or write.

use std::io::{ErrorKind, IoSlice, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::drive::{Factory, Plan};
use crate::out::OutQueue;
use crate::session::{Conn, ConnFailure, Live, ReadOutcome, Session, Step, Tally, Transport};

const SCRATCH: usize = 64 * 1024;
const RETRY: Duration = Duration::from_millis(100);
/// Every connection is stepped at least this often (linger deadlines).
const SWEEP: Duration = Duration::from_millis(100);

fn failure(e: &std::io::Error) -> ConnFailure {
    match e.kind() {
        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::ConnectionAborted => {
            ConnFailure::Reset
        }
        ErrorKind::ConnectionRefused => ConnFailure::Refused,
        ErrorKind::TimedOut => ConnFailure::TimedOut,
        _ => ConnFailure::Other,
    }
}

/// A kernel socket with the bytes its session has not taken yet.
struct KernelConn<S> {
    s: TcpStream,
    pending: Vec<u8>,
    conn: Conn<S>,
    /// Step it on the next round whatever poll says (it did something last time).
    hot: bool,
}

struct KernelIo<'a> {
    s: &'a mut TcpStream,
    pending: &'a mut Vec<u8>,
    scratch: &'a mut [u8],
}

impl Transport for KernelIo<'_> {
    fn read(&mut self, f: &mut dyn FnMut(&[u8]) -> usize) -> Result<ReadOutcome, ConnFailure> {
        if !self.pending.is_empty() {
            let n = f(self.pending).min(self.pending.len());
            if n == 0 {
                return Ok(ReadOutcome::Stalled);
            }
            self.pending.drain(..n);
            return Ok(ReadOutcome::Data);
        }
        loop {
            return match self.s.read(self.scratch) {
                Ok(0) => Ok(ReadOutcome::Eof),
                Ok(k) => {
                    let n = f(&self.scratch[..k]).min(k);
                    self.pending.extend_from_slice(&self.scratch[n..k]);
                    Ok(ReadOutcome::Data)
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(ReadOutcome::WouldBlock),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => Err(failure(&e)),
            };
        }
    }
    fn write(&mut self, out: &OutQueue) -> Result<Option<usize>, ConnFailure> {
        let mut slices = [IoSlice::new(&[]); 64];
        let n = out.io_slices(&mut slices);
        loop {
            return match self.s.write_vectored(&slices[..n]) {
                Ok(k) => Ok(Some(k)),
                Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(None),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => Err(failure(&e)),
            };
        }
    }
    fn shutdown(&mut self) {
        let _ = self.s.shutdown(std::net::Shutdown::Write);
    }
}

/// Runs sessions on this thread until `stop`; returns what it counted.
#[allow(clippy::too_many_arguments)]
pub fn run<S: Session>(
    plan: Plan,
    listener: Option<&TcpListener>,
    want: usize,
    nodelay: bool,
    make: Factory<S>,
    stop: &AtomicBool,
    live: &Live,
    epoch: Instant,
) -> Tally {
    let mut t = Tally::new();
    let mut conns: Vec<KernelConn<S>> = Vec::new();
    let mut scratch = vec![0u8; SCRATCH];
    let mut fds: Vec<libc::pollfd> = Vec::new();
    let mut retry_at = Instant::now();
    let mut last_sweep = Instant::now();
    let mut reported_connect_error = false;
    let add = |conns: &mut Vec<KernelConn<S>>, s: TcpStream, t: &mut Tally| {
        if s.set_nonblocking(true).is_err() {
            t.conn_errors += 1;
            return;
        }
        let _ = s.set_nodelay(nodelay);
        conns.push(KernelConn {
            s,
            pending: Vec::new(),
            conn: Conn::new(make()),
            hot: true,
        });
        t.conns_opened += 1;
    };
    while !stop.load(Ordering::Relaxed) {
        // Open the client connections that are missing.
        if let Some(target) = plan.connect {
            while conns.len() < want && Instant::now() >= retry_at && !stop.load(Ordering::Relaxed) {
                match TcpStream::connect_timeout(&target, Duration::from_secs(1)) {
                    Ok(s) => add(&mut conns, s, &mut t),
                    Err(e) => {
                        if !reported_connect_error {
                            eprintln!("connect to {target}: {e}");
                            reported_connect_error = true;
                        }
                        t.conn_errors += 1;
                        retry_at = Instant::now() + RETRY;
                    }
                }
            }
        }
        // Wait for readiness: immediately if a connection is hot.
        fds.clear();
        if let Some(l) = listener {
            fds.push(libc::pollfd {
                fd: l.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let base = fds.len();
        let mut hot = false;
        for c in &conns {
            let mut ev = 0;
            if c.conn.wants_read() && c.pending.is_empty() {
                ev |= libc::POLLIN;
            }
            if c.conn.wants_write() {
                ev |= libc::POLLOUT;
            }
            hot |= c.hot;
            fds.push(libc::pollfd {
                fd: c.s.as_raw_fd(),
                events: ev,
                revents: 0,
            });
        }
        let timeout = if hot { 0 } else { 20 };
        // SAFETY: `fds` is a valid, initialised array of `fds.len()` pollfd structs that
        // outlives the call; poll writes only their `revents`.
        let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if r < 0 {
            fds.iter_mut().for_each(|f| f.revents = 0);
        }
        let sweep = last_sweep.elapsed() >= SWEEP;
        if sweep {
            last_sweep = Instant::now();
        }
        let now = epoch.elapsed().as_nanos() as u64;
        let mut did = false;
        // Step the connections that are ready (indices match `fds` until the first removal,
        // so removed ones are collected and dropped after the pass).
        let mut gone: Vec<(usize, Option<ConnFailure>)> = Vec::new();
        for (i, c) in conns.iter_mut().enumerate() {
            if !(c.hot || sweep || fds[base + i].revents != 0) {
                continue;
            }
            let mut io = KernelIo {
                s: &mut c.s,
                pending: &mut c.pending,
                scratch: &mut scratch,
            };
            match c.conn.step(&mut io, &mut t, now) {
                Step::Open { did: d, .. } => {
                    c.hot = d;
                    did |= d;
                }
                Step::Done => gone.push((i, None)),
                Step::Failed(f) => gone.push((i, Some(f))),
            }
        }
        for &(i, f) in gone.iter().rev() {
            let mut c = conns.swap_remove(i);
            c.conn.session.closed(&mut t, now, f.is_some());
            t.conns_closed += 1;
            if f.is_some() {
                t.conn_errors += 1;
                retry_at = Instant::now() + RETRY;
            }
            did = true;
        }
        // Accept what is waiting.
        if let Some(l) = listener {
            if fds[0].revents != 0 {
                loop {
                    match l.accept() {
                        Ok((s, _)) => {
                            add(&mut conns, s, &mut t);
                            did = true;
                        }
                        Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    }
                }
            }
        }
        if plan.stop_after_closed.is_some_and(|n| t.conns_closed >= n) {
            stop.store(true, Ordering::SeqCst);
        }
        if did || sweep {
            live.publish(&t);
        }
    }
    let now = epoch.elapsed().as_nanos() as u64;
    for mut c in conns.drain(..) {
        c.conn.session.closed(&mut t, now, true);
        t.conns_closed += 1;
    }
    live.publish(&t);
    t
}
