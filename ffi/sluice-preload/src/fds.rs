//! Which descriptors are Sluice sockets.
//!
//! A Sluice socket is given a kernel descriptor of its own, a placeholder (an unconnected
//! AF_UNIX socket), whose number is what the program sees. The kernel never hands that
//! number out again while the placeholder lives, so Sluice and kernel descriptors cannot
//! collide, `select`'s FD_SETSIZE holds, `fstat` says "socket", and a call that reaches
//! the kernel behind our back (a raw `syscall`) fails on an unconnected socket instead
//! of acting on some other file.
//!
//! `MAP[kernel fd]` holds the C API's descriptor + 1 (0: not ours); `REFS[C API fd]`
//! counts the kernel descriptors that share it (`dup`), and the socket is closed with
//! the last. Lookups are one atomic load, so kernel descriptors pay next to nothing.

use core::sync::atomic::{AtomicI32, AtomicU32, Ordering};

/// Kernel descriptors that can name a Sluice socket (a placeholder above this is
/// refused with EMFILE).
pub const MAX_KFD: usize = 1 << 20;
/// The C API's descriptors (`sluice_capi::stack::MAX_FDS`).
const MAX_CFD: usize = 65536;

static MAP: [AtomicI32; MAX_KFD] = [const { AtomicI32::new(0) }; MAX_KFD];
static REFS: [AtomicU32; MAX_CFD] = [const { AtomicU32::new(0) }; MAX_CFD];

/// The C API descriptor behind kernel descriptor `kfd`, if it is a Sluice socket.
#[inline]
pub fn lookup(kfd: i32) -> Option<i32> {
    let v = MAP.get(usize::try_from(kfd).ok()?)?.load(Ordering::Acquire);
    (v != 0).then_some(v - 1)
}

/// Records that `kfd` names C API socket `cfd` (one more reference to it). False if
/// either is out of range.
pub fn insert(kfd: i32, cfd: i32) -> bool {
    let (Ok(k), Ok(c)) = (usize::try_from(kfd), usize::try_from(cfd)) else {
        return false;
    };
    if k >= MAX_KFD || c >= MAX_CFD {
        return false;
    }
    REFS[c].fetch_add(1, Ordering::AcqRel);
    MAP[k].store(cfd + 1, Ordering::Release);
    true
}

/// Forgets `kfd`; returns its C API socket and whether that was the last reference.
pub fn remove(kfd: i32) -> Option<(i32, bool)> {
    let k = usize::try_from(kfd).ok()?;
    let v = MAP.get(k)?.swap(0, Ordering::AcqRel);
    if v == 0 {
        return None;
    }
    let c = v - 1;
    let last = REFS
        .get(c as usize)
        .is_some_and(|r| r.fetch_sub(1, Ordering::AcqRel) == 1);
    Some((c, last))
}
