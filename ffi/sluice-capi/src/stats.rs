//! `sluice_stats`, `sluice_conn_info` and `sluice_conns`: the instance's counters and its
//! connections (as `netstat -s` and `ss -ti` show the kernel's), for C programs.

use core::ffi::c_int;

use sluice_net::{DropReason, TcpConnInfo, TcpState};

use crate::capi::{ret_int, with_global_pub};
use crate::errno::{EINVAL, ENOTCONN, ENOTSOCK};
use crate::stack::{File, Kind, TcpSt};

/// Drop reasons `SluiceStats::drops_by_reason` has room for.
const REASONS: usize = 32;

/// The counters of the instance (`sluice_stats`).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SluiceStats {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Frames dropped, for any reason (`drops_by_reason` per reason).
    pub drops: u64,
    pub tcp_segments_rx: u64,
    pub tcp_segments_tx: u64,
    pub tcp_retransmits: u64,
    pub tcp_rst_tx: u64,
    pub tcp_accepted: u64,
    pub tcp_connected: u64,
    pub tcp_syn_cookies_tx: u64,
    /// Connections in any state, and in ESTABLISHED and TIME-WAIT.
    pub connections: u64,
    pub established: u64,
    pub time_wait: u64,
    /// Drops per reason, in the order of `sluice_drop_reason_name`.
    pub drops_by_reason: [u64; 32],
}

/// One connection (`sluice_conn_info`, `sluice_conns`). Addresses and ports in host order.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct SluiceConnInfo {
    pub local_addr: u32,
    pub remote_addr: u32,
    pub local_port: u16,
    pub remote_port: u16,
    /// Linux's numbering (`TCP_ESTABLISHED` = 1 ... `TCP_CLOSING` = 11, as `tcpi_state`).
    pub state: u8,
    /// Smoothed RTT and its variation, microseconds (0 before a sample).
    pub srtt_us: u32,
    pub rttvar_us: u32,
    /// The retransmission timeout, milliseconds.
    pub rto_ms: u32,
    pub mss: u32,
    /// Congestion window and slow-start threshold, bytes.
    pub cwnd: u32,
    pub ssthresh: u32,
    /// Bytes sent and not acknowledged.
    pub in_flight: u32,
    pub retransmits: u64,
    /// Bytes queued to send, and received but unread.
    pub send_queue: u32,
    pub recv_queue: u32,
}

/// Linux's `TCP_*` state numbers (include/net/tcp_states.h).
pub(crate) fn linux_state(s: TcpState) -> u8 {
    match s {
        TcpState::Established => 1,
        TcpState::SynSent => 2,
        TcpState::SynReceived => 3,
        TcpState::FinWait1 => 4,
        TcpState::FinWait2 => 5,
        TcpState::TimeWait => 6,
        TcpState::Closed => 7,
        TcpState::CloseWait => 8,
        TcpState::LastAck => 9,
        TcpState::Listen => 10,
        TcpState::Closing => 11,
    }
}

fn clamp(v: usize) -> u32 {
    u32::try_from(v).unwrap_or(u32::MAX)
}

fn row(c: &TcpConnInfo) -> SluiceConnInfo {
    SluiceConnInfo {
        // IPv4 addresses only (0 for an IPv6 connection).
        local_addr: c.local.addr.as_v4().map_or(0, |a| a.to_u32()),
        remote_addr: c.remote.addr.as_v4().map_or(0, |a| a.to_u32()),
        local_port: c.local.port,
        remote_port: c.remote.port,
        state: linux_state(c.state),
        srtt_us: clamp(c.srtt_us as usize),
        rttvar_us: clamp(c.rttvar_us as usize),
        rto_ms: clamp(c.rto_ms as usize),
        mss: clamp(c.mss),
        cwnd: clamp(c.cwnd),
        ssthresh: clamp(c.ssthresh),
        in_flight: clamp(c.in_flight),
        retransmits: c.retransmits,
        send_queue: clamp(c.send_queue),
        recv_queue: clamp(c.recv_queue),
    }
}

/// Fills `*out` with the instance's counters. 0, or -1 and errno (EINVAL: `out` is NULL;
/// ENXIO: no instance).
///
/// # Safety
/// `out` is NULL or points to a writable `struct sluice_stats`.
#[no_mangle]
pub unsafe extern "C" fn sluice_stats(out: *mut SluiceStats) -> c_int {
    with_global_pub(
        |sh| {
            ret_int(|| {
                if out.is_null() {
                    return Err(EINVAL);
                }
                let s = sh.with(|st| {
                    let n = st.iface.stats();
                    let states = st.iface.tcp_state_counts();
                    let mut by = [0u64; REASONS];
                    for (r, v) in n.drops.iter() {
                        if let Some(slot) = by.get_mut(r.index()) {
                            *slot = v;
                        }
                    }
                    SluiceStats {
                        rx_packets: n.rx_packets,
                        rx_bytes: n.rx_bytes,
                        tx_packets: n.tx_packets,
                        tx_bytes: n.tx_bytes,
                        drops: n.drops.total(),
                        tcp_segments_rx: n.tcp.segments_rx,
                        tcp_segments_tx: n.tcp.segments_tx,
                        tcp_retransmits: n.tcp.retransmits,
                        tcp_rst_tx: n.tcp.rst_tx,
                        tcp_accepted: n.tcp.accepted,
                        tcp_connected: n.tcp.connected,
                        tcp_syn_cookies_tx: n.tcp.syn_cookies_tx,
                        connections: st.iface.tcp_connections() as u64,
                        established: states[TcpState::Established.index()] as u64,
                        time_wait: states[TcpState::TimeWait.index()] as u64,
                        drops_by_reason: by,
                    }
                });
                // SAFETY: checked non-NULL; the caller's promise for the rest.
                unsafe { out.write(s) };
                Ok(0)
            })
        },
        -1,
    )
}

/// The name of drop reason `i` (the index into `drops_by_reason`), e.g. "checksum"; NULL
/// past the last one. The string is static.
#[no_mangle]
pub extern "C" fn sluice_drop_reason_name(i: c_int) -> *const core::ffi::c_char {
    // The stack's own names (`DropReason::as_str`), as C strings made once.
    static NAMES: std::sync::OnceLock<Vec<std::ffi::CString>> = std::sync::OnceLock::new();
    let names = NAMES.get_or_init(|| {
        DropReason::ALL
            .iter()
            .map(|r| std::ffi::CString::new(r.as_str()).expect("names have no NUL"))
            .collect()
    });
    usize::try_from(i)
        .ok()
        .and_then(|i| names.get(i))
        .map_or(core::ptr::null(), |s| s.as_ptr())
}

/// Fills `*out` with connection `fd`'s state and counters (as `TCP_INFO`). 0, or -1 and
/// errno: EBADF (not a descriptor), ENOTSOCK (not a TCP socket), ENOTCONN (not
/// connected), EINVAL (`out` is NULL).
///
/// # Safety
/// `out` is NULL or points to a writable `struct sluice_conn_info`.
#[no_mangle]
pub unsafe extern "C" fn sluice_conn_info(fd: c_int, out: *mut SluiceConnInfo) -> c_int {
    with_global_pub(
        |sh| {
            ret_int(|| {
                if out.is_null() {
                    return Err(EINVAL);
                }
                let info = sh.with(|st| {
                    let h = match st.file(fd)? {
                        File::Sock(s) => match s.kind {
                            Kind::Tcp(TcpSt::Conn(c)) => c.h,
                            Kind::Tcp(_) => return Err(ENOTCONN),
                            Kind::Udp(_) => return Err(ENOTSOCK),
                        },
                        File::Epoll(_) => return Err(ENOTSOCK),
                    };
                    st.iface
                        .tcp_status(h)
                        .map(|t| t.info())
                        .map(|c| row(&c))
                        .ok_or(ENOTCONN)
                })?;
                // SAFETY: checked non-NULL; the caller's promise for the rest.
                unsafe { out.write(info) };
                Ok(0)
            })
        },
        -1,
    )
}

/// Fills `out[0..max]` with the connections of the instance from the `skip`-th on (the
/// application's and those not yet accepted or closing); returns how many there are in
/// all (call again with a larger `skip` for the rest), or -1 and errno (EINVAL).
///
/// # Safety
/// `out` points to `max` writable `struct sluice_conn_info` (may be NULL when `max` is 0).
#[no_mangle]
pub unsafe extern "C" fn sluice_conns(out: *mut SluiceConnInfo, max: c_int, skip: c_int) -> c_int {
    with_global_pub(
        |sh| {
            ret_int(|| {
                let (Ok(max), Ok(skip)) = (usize::try_from(max), usize::try_from(skip)) else {
                    return Err(EINVAL);
                };
                if out.is_null() && max > 0 {
                    return Err(EINVAL);
                }
                let mut rows = Vec::new();
                let total = sh.with(|st| st.iface.tcp_conn_infos(skip, max, &mut rows));
                for (i, c) in rows.iter().enumerate() {
                    // SAFETY: i < max, within the caller's array.
                    unsafe { out.add(i).write(row(c)) };
                }
                Ok(c_int::try_from(total).unwrap_or(c_int::MAX))
            })
        },
        -1,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_reason_names_follow_the_stack() {
        for r in DropReason::ALL {
            let p = sluice_drop_reason_name(r.index() as c_int);
            assert!(!p.is_null());
            // SAFETY: a static C string.
            let s = unsafe { core::ffi::CStr::from_ptr(p) };
            assert_eq!(s.to_str().unwrap(), r.as_str());
        }
        assert!(sluice_drop_reason_name(DropReason::COUNT as c_int).is_null());
        assert!(sluice_drop_reason_name(-1).is_null());
        assert!(DropReason::COUNT <= REASONS);
    }
}
