//! Error numbers as Linux reports them, and the one place that writes `errno`.

/// A Linux `errno` value (`libc::EAGAIN`, ...).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

/// The result of a socket operation before it is turned into `-1` and `errno`.
pub type Res<T> = Result<T, Errno>;

pub(crate) const EAGAIN: Errno = Errno(libc::EAGAIN);
pub(crate) const EBADF: Errno = Errno(libc::EBADF);
pub(crate) const EINVAL: Errno = Errno(libc::EINVAL);
pub(crate) const EFAULT: Errno = Errno(libc::EFAULT);
pub(crate) const ENOTSOCK: Errno = Errno(libc::ENOTSOCK);
pub(crate) const ENOTCONN: Errno = Errno(libc::ENOTCONN);
pub(crate) const EISCONN: Errno = Errno(libc::EISCONN);
pub(crate) const EALREADY: Errno = Errno(libc::EALREADY);
pub(crate) const EINPROGRESS: Errno = Errno(libc::EINPROGRESS);
pub(crate) const EADDRINUSE: Errno = Errno(libc::EADDRINUSE);
pub(crate) const EADDRNOTAVAIL: Errno = Errno(libc::EADDRNOTAVAIL);
pub(crate) const EAFNOSUPPORT: Errno = Errno(libc::EAFNOSUPPORT);
pub(crate) const EPROTONOSUPPORT: Errno = Errno(libc::EPROTONOSUPPORT);
pub(crate) const EOPNOTSUPP: Errno = Errno(libc::EOPNOTSUPP);
pub(crate) const ENOPROTOOPT: Errno = Errno(libc::ENOPROTOOPT);
pub(crate) const EPIPE: Errno = Errno(libc::EPIPE);
pub(crate) const ECONNREFUSED: Errno = Errno(libc::ECONNREFUSED);
#[allow(dead_code)] // the tests' errno table
pub(crate) const ECONNRESET: Errno = Errno(libc::ECONNRESET);
pub(crate) const ECONNABORTED: Errno = Errno(libc::ECONNABORTED);
#[allow(dead_code)] // the tests' errno table
pub(crate) const ETIMEDOUT: Errno = Errno(libc::ETIMEDOUT);
pub(crate) const EHOSTUNREACH: Errno = Errno(libc::EHOSTUNREACH);
pub(crate) const ENETUNREACH: Errno = Errno(libc::ENETUNREACH);
pub(crate) const EMSGSIZE: Errno = Errno(libc::EMSGSIZE);
pub(crate) const ENOBUFS: Errno = Errno(libc::ENOBUFS);
pub(crate) const EDESTADDRREQ: Errno = Errno(libc::EDESTADDRREQ);
pub(crate) const EMFILE: Errno = Errno(libc::EMFILE);
pub(crate) const EEXIST: Errno = Errno(libc::EEXIST);
pub(crate) const ENOENT: Errno = Errno(libc::ENOENT);
pub(crate) const ENOSYS: Errno = Errno(libc::ENOSYS);
pub(crate) const ENXIO: Errno = Errno(libc::ENXIO);
pub(crate) const EIO: Errno = Errno(libc::EIO);

/// Sets the calling thread's `errno`.
pub(crate) fn set_errno(e: Errno) {
    // SAFETY: `__errno_location` returns the address of this thread's errno, valid for
    // the thread's lifetime and written by no other thread.
    unsafe { *libc::__errno_location() = e.0 };
}

/// The errno of a connection that failed: `ConnError::meaning`, the table the Rust API
/// uses too.
pub(crate) fn conn_errno(e: sluice_tcp::ConnError) -> Errno {
    Errno(e.errno())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every connection failure means the same thing through the C API (errno), the Rust
    /// API (`sluice_engine::Error`, converted to `std::io::Error`) and std's own reading
    /// of that errno.
    #[test]
    fn every_connection_error_agrees_across_the_apis() {
        for e in sluice_tcp::ConnError::ALL {
            let c = conn_errno(e).0;
            let rust = sluice_engine::Error::from(e);
            let io: std::io::Error = rust.into();
            assert_eq!(rust.errno(), c, "{e:?}");
            assert_eq!(io.kind(), e.io_kind(), "{e:?}");
            assert_eq!(
                std::io::Error::from_raw_os_error(c).kind(),
                io.kind(),
                "{e:?}: errno {c}"
            );
        }
        // Every error of the Rust API has the errno Linux uses for it, and a kind that std
        // gives that errno too (where std has one).
        use sluice_engine::Error as R;
        for (r, n) in [
            (R::WouldBlock, EAGAIN),
            (R::InvalidHandle, EBADF),
            (R::AddrInUse, EADDRINUSE),
            (R::NoRoute, ENETUNREACH),
            (R::NoPort, EADDRNOTAVAIL),
            (R::InvalidAddress, EINVAL),
            (R::Reset, ECONNRESET),
            (R::Refused, ECONNREFUSED),
            (R::TimedOut, ETIMEDOUT),
            (R::Unreachable, EHOSTUNREACH),
            (R::Aborted, ECONNABORTED),
            (R::InvalidState, ENOTCONN),
            (R::TooLarge, EMSGSIZE),
        ] {
            assert_eq!(r.errno(), n.0, "{r:?}");
            let kind = std::io::Error::from(r).kind();
            if kind != std::io::ErrorKind::Other {
                assert_eq!(std::io::Error::from_raw_os_error(n.0).kind(), kind, "{r:?}");
            }
        }
        // The named errno constants of this crate are the table's.
        use sluice_tcp::ConnError as C;
        for (e, n) in [
            (C::Reset, ECONNRESET),
            (C::Refused, ECONNREFUSED),
            (C::TimedOut, ETIMEDOUT),
            (C::Unreachable, EHOSTUNREACH),
            (C::Aborted, ECONNABORTED),
        ] {
            assert_eq!(conn_errno(e), n);
        }
    }
}
