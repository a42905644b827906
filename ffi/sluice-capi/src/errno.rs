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
pub(crate) const ECONNRESET: Errno = Errno(libc::ECONNRESET);
pub(crate) const ECONNABORTED: Errno = Errno(libc::ECONNABORTED);
pub(crate) const ETIMEDOUT: Errno = Errno(libc::ETIMEDOUT);
pub(crate) const EHOSTUNREACH: Errno = Errno(libc::EHOSTUNREACH);
pub(crate) const ENETUNREACH: Errno = Errno(libc::ENETUNREACH);
pub(crate) const EMSGSIZE: Errno = Errno(libc::EMSGSIZE);
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

/// The errno of a connection that failed.
pub(crate) fn conn_errno(e: sluice_tcp::ConnError) -> Errno {
    use sluice_tcp::ConnError as C;
    match e {
        C::Reset => ECONNRESET,
        C::Refused => ECONNREFUSED,
        C::TimedOut => ETIMEDOUT,
        C::Unreachable => EHOSTUNREACH,
        C::Aborted => ECONNABORTED,
    }
}
