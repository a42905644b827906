//! Readiness of descriptors, and `poll` / `epoll` over it.
//!
//! Readiness follows Linux's `tcp_poll`: a connection is readable with data, at end of
//! stream or after an error; writable when established with room in the send buffer (or
//! after its write side was shut down); POLLHUP once both directions are closed; an
//! unconnected socket reports POLLOUT | POLLHUP. Epoll is level-triggered; EPOLLET
//! reports only bits that were not set at the previous report of that descriptor (an
//! approximation of edge triggering), EPOLLONESHOT disables a registration after one
//! report until EPOLL_CTL_MOD.

use core::time::Duration;

use sluice_net::TcpState;

use crate::errno::*;
use crate::stack::{Epoll, File, Interest, Kind, Shared, Stack, TcpSt};

const IN: u32 = (libc::EPOLLIN | libc::EPOLLRDNORM) as u32;
const OUT: u32 = (libc::EPOLLOUT | libc::EPOLLWRNORM) as u32;
const ERR: u32 = libc::EPOLLERR as u32;
const HUP: u32 = libc::EPOLLHUP as u32;
const RDHUP: u32 = libc::EPOLLRDHUP as u32;
const ET: u32 = libc::EPOLLET as u32;
const ONESHOT: u32 = libc::EPOLLONESHOT as u32;

/// The events of descriptor `fd` (epoll bits; poll's have the same values on Linux).
pub fn readiness(st: &Stack, fd: i32) -> Res<u32> {
    let s = match st.file(fd)? {
        File::Sock(s) => s,
        File::Epoll(ep) => {
            let any = ep.interest.iter().any(|(&f, i)| {
                !i.disabled && readiness(st, f).is_ok_and(|r| r & (i.events | ERR | HUP) != 0)
            });
            return Ok(if any { IN } else { 0 });
        }
    };
    let iface = &st.iface;
    Ok(match s.kind {
        Kind::Tcp(TcpSt::Fresh { .. }) => OUT | HUP,
        Kind::Tcp(TcpSt::Listen { l, .. }) => {
            if iface.tcp_listener_pending(l) > 0 {
                IN
            } else {
                0
            }
        }
        Kind::Tcp(TcpSt::Conn(c)) => {
            let state = iface
                .tcp_status(c.h)
                .map_or(sluice_net::TcpState::Closed, |t| t.state());
            let mut m = 0;
            if iface.tcp_status(c.h).and_then(|t| t.error()).is_some() && !c.err_taken {
                m |= ERR;
            }
            let peer_fin = matches!(
                state,
                TcpState::CloseWait | TcpState::LastAck | TcpState::Closing | TcpState::TimeWait
            );
            match state {
                TcpState::Closed => m |= IN | OUT | HUP | RDHUP,
                TcpState::SynSent | TcpState::SynReceived | TcpState::Listen => {}
                _ => {
                    if c.shut_rd || peer_fin || iface.tcp_status(c.h).is_some_and(|t| t.can_recv()) {
                        m |= IN;
                    }
                    if peer_fin {
                        m |= RDHUP;
                    }
                    if c.shut_wr || iface.tcp_status(c.h).is_some_and(|t| t.can_send()) {
                        m |= OUT;
                    }
                    if peer_fin && c.shut_wr {
                        m |= HUP;
                    }
                }
            }
            m
        }
        Kind::Udp(u) => {
            let mut m = 0;
            match u.h {
                Some(h) => {
                    if iface.udp_status(h).is_some_and(|u| u.can_recv()) {
                        m |= IN;
                    }
                    if iface.udp_status(h).is_some_and(|u| u.can_send()) {
                        m |= OUT;
                    }
                }
                None => m |= OUT,
            }
            m
        }
    })
}

/// The socket of the interface behind descriptor `fd`, as the interface's ready list names
/// it (`Interface::ready_since`), if it has one yet (a fresh TCP socket has none).
pub fn ready_socket(st: &Stack, fd: i32) -> Option<sluice_net::ReadySocket> {
    use sluice_net::ReadySocket as R;
    match st.sock(fd).ok()?.kind {
        Kind::Tcp(TcpSt::Conn(c)) => Some(R::Tcp(c.h)),
        Kind::Tcp(TcpSt::Listen { l, .. }) => Some(R::Listener(l)),
        Kind::Tcp(TcpSt::Fresh { .. }) => None,
        Kind::Udp(u) => u.h.map(R::Udp),
    }
}

/// One entry of a `poll` call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollFd {
    pub fd: i32,
    pub events: i16,
    pub revents: i16,
}

fn poll_once(st: &Stack, fds: &mut [PollFd]) -> usize {
    let mut n = 0;
    for p in fds.iter_mut() {
        p.revents = if p.fd < 0 {
            0
        } else {
            match readiness(st, p.fd) {
                Ok(r) => (r & (p.events as u16 as u32 | ERR | HUP)) as i16,
                Err(_) => libc::POLLNVAL,
            }
        };
        if p.revents != 0 {
            n += 1;
        }
    }
    n
}

/// Converts a poll/epoll timeout in milliseconds (-1: none) to the waiting parameters.
fn timeout(ms: i32) -> (bool, Option<Duration>) {
    match ms {
        0 => (true, None),
        t if t < 0 => (false, None),
        t => (false, Some(Duration::from_millis(t as u64))),
    }
}

impl Shared {
    /// `poll`: how many entries have events; waits up to `timeout_ms` (-1: until the
    /// instance's block limit) for one.
    pub fn poll(&self, fds: &mut [PollFd], timeout_ms: i32) -> Res<usize> {
        let (nb, t) = timeout(timeout_ms);
        let r = self.attempt(
            |_| Ok((nb, t)),
            |st| {
                let n = poll_once(st, fds);
                Ok((n > 0).then_some(n))
            },
        )?;
        Ok(r.unwrap_or(0))
    }

    /// `epoll_create1`.
    pub fn epoll_create(&self, flags: i32) -> Res<i32> {
        if flags & !libc::EPOLL_CLOEXEC != 0 {
            return Err(EINVAL);
        }
        self.with(|st| st.alloc_fd(File::Epoll(Epoll::default())))
    }

    /// `epoll_ctl`; `event` is (events, data), needed for ADD and MOD.
    pub fn epoll_ctl(&self, epfd: i32, op: i32, fd: i32, event: Option<(u32, u64)>) -> Res<()> {
        self.with(|st| {
            st.file(fd)?;
            if !matches!(st.file(epfd)?, File::Epoll(_)) || fd == epfd {
                return Err(EINVAL);
            }
            if matches!(st.file(fd)?, File::Epoll(_)) {
                return Err(EINVAL); // nested epoll sets are not supported
            }
            let Ok(File::Epoll(ep)) = st.file_mut(epfd) else {
                return Err(EINVAL);
            };
            match op {
                libc::EPOLL_CTL_ADD | libc::EPOLL_CTL_MOD => {
                    let (events, data) = event.ok_or(EFAULT)?;
                    let exists = ep.interest.contains_key(&fd);
                    if op == libc::EPOLL_CTL_ADD && exists {
                        return Err(EEXIST);
                    }
                    if op == libc::EPOLL_CTL_MOD && !exists {
                        return Err(ENOENT);
                    }
                    ep.interest.insert(
                        fd,
                        Interest {
                            events,
                            data,
                            last: 0,
                            disabled: false,
                        },
                    );
                }
                libc::EPOLL_CTL_DEL => {
                    ep.interest.remove(&fd).ok_or(ENOENT)?;
                }
                _ => return Err(EINVAL),
            }
            st.touch();
            Ok(())
        })
    }

    /// `epoll_wait`: fills `out` with (events, data) of ready registrations.
    pub fn epoll_wait(&self, epfd: i32, out: &mut [(u32, u64)], timeout_ms: i32) -> Res<usize> {
        if out.is_empty() {
            return Err(EINVAL);
        }
        let (nb, t) = timeout(timeout_ms);
        let r = self.attempt(
            |_| Ok((nb, t)),
            |st| {
                let File::Epoll(ep) = st.file(epfd)? else {
                    return Err(EINVAL);
                };
                let ready: Vec<(i32, u32)> = ep
                    .interest
                    .iter()
                    .filter(|(_, i)| !i.disabled)
                    .map(|(&fd, i)| (fd, readiness(st, fd).unwrap_or(0) & (i.events | ERR | HUP)))
                    .collect();
                let Ok(File::Epoll(ep)) = st.file_mut(epfd) else {
                    return Err(EINVAL);
                };
                let mut n = 0;
                for (fd, m) in ready {
                    if n == out.len() {
                        break;
                    }
                    let Some(i) = ep.interest.get_mut(&fd) else {
                        continue;
                    };
                    let report = if i.events & ET != 0 { m & !i.last } else { m };
                    i.last = m;
                    if report == 0 {
                        continue;
                    }
                    out[n] = (if i.events & ET != 0 { m } else { report }, i.data);
                    if i.events & ONESHOT != 0 {
                        i.disabled = true;
                    }
                    n += 1;
                }
                Ok((n > 0).then_some(n))
            },
        )?;
        Ok(r.unwrap_or(0))
    }
}
