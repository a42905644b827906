use std::ffi::CString;
use std::ptr::NonNull;

use crate::error::{rte_errno, strerror};
use sluice_dev::{FrameMut, PacketBuf};

use crate::eal::Eal;
use crate::error::DpdkError;
use crate::mbuf::Mbuf;
use crate::Result;

/// Bytes of data in a large transmit buffer (`Mempool::large_for`): 8 KiB, within what
/// one transmit descriptor takes on Intel NICs (16 KiB - 1) and any virtio port.
pub const LARGE_DATA_ROOM: u16 = 8192;

/// A pool of packet mbufs (`rte_pktmbuf_pool_create`). Cheap to clone (shares the pool).
///
/// Pools live until the EAL is cleaned up: an mbuf may outlive every handle to its pool
/// (it is freed back through its own `pool` pointer), so a pool is never freed early.
#[derive(Clone, Copy, Debug)]
pub struct Mempool {
    ptr: NonNull<dpdk_sys::rte_mempool>,
    size: u32,
}

// SAFETY: an rte_mempool is safe to use from several threads at once (its ring is
// multi-producer/multi-consumer and each lcore has its own cache); the handle is a pointer
// to a pool that lives until EAL cleanup.
unsafe impl Send for Mempool {}
// SAFETY: as above; every operation through `&Mempool` is one of DPDK's thread-safe calls.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// A pool of `n` mbufs with a per-lcore cache of `cache` and `data_room` bytes each
    /// (headroom included; `RTE_MBUF_DEFAULT_BUF_SIZE` fits a 1500-byte MTU).
    pub fn new(_eal: &Eal, name: &str, n: u32, cache: u32, data_room: u16) -> Result<Mempool> {
        let cname = CString::new(name).map_err(|_| DpdkError::BadArgument(name.into()))?;
        // SAFETY: EAL is initialised (we hold &Eal); the name is a valid C string.
        let p = unsafe {
            dpdk_sys::rte_pktmbuf_pool_create(
                cname.as_ptr(),
                n,
                cache,
                0,
                data_room,
                dpdk_sys::rte_socket_id() as i32,
            )
        };
        match NonNull::new(p) {
            Some(ptr) => Ok(Mempool { ptr, size: n }),
            None => {
                let errno = rte_errno();
                Err(DpdkError::Mempool {
                    name: name.into(),
                    n,
                    errno,
                    msg: strerror(errno),
                })
            }
        }
    }

    /// Gives this pool a companion of large buffers (`LARGE_DATA_ROOM` bytes) for the
    /// payload of large transmitted segments (`PacketBuf::append_chained`): a 64 KiB TSO
    /// segment then takes 8 buffers instead of 32, and its copy, its chaining and the
    /// NIC's descriptors shrink with them. Returns false when the table is full (the pool
    /// then uses its own buffers only).
    pub fn set_large(&self, large: Mempool) -> bool {
        crate::mbuf::set_large_companion(self.ptr.as_ptr(), large.ptr.as_ptr())
    }

    pub fn as_ptr(&self) -> *mut dpdk_sys::rte_mempool {
        self.ptr.as_ptr()
    }

    /// Mbufs in the pool and its caches (not handed out).
    pub fn available(&self) -> u32 {
        // SAFETY: the pool is valid for the process's life.
        unsafe { dpdk_sys::sluice_mempool_avail_count(self.ptr.as_ptr()) }
    }

    /// Mbufs handed out and not yet returned.
    pub fn in_use(&self) -> u32 {
        self.size - self.available()
    }

    pub fn size(&self) -> u32 {
        self.size
    }

    /// One mbuf, or `None` when the pool is exhausted.
    pub fn alloc(&self) -> Option<Mbuf> {
        // SAFETY: the pool is valid for the process's life.
        let p = unsafe { dpdk_sys::sluice_pktmbuf_alloc(self.ptr.as_ptr()) };
        // SAFETY: a freshly allocated mbuf that we own.
        NonNull::new(p).map(|p| unsafe { Mbuf::from_raw(p) })
    }

    /// Zero-copy send: an mbuf's whole data room (after the headroom) as a buffer for the
    /// application to fill, or `None` when the pool is exhausted. Frozen and queued on a
    /// connection, it is sent by reference (`PacketBuf::attach_frame`).
    pub fn alloc_frame(&self) -> Option<FrameMut> {
        let mut m = self.alloc()?;
        let room = m.tailroom();
        m.append(room)?;
        let frame = m.into_frame().ok()?;
        // SAFETY: a fresh mbuf has one reference, ours; its data room is writable.
        Some(unsafe { FrameMut::from_unique(frame) })
    }
}
