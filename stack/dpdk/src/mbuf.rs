use std::ptr::NonNull;

use sluice_dev::PacketBuf;

/// An owned packet mbuf: dropping it frees it (or drops one reference), cloning adds a
/// reference to the same data (`rte_mbuf_refcnt_update`), as the retransmission queue needs.
/// Writing through a shared mbuf is a logic error, caught by a debug assertion.
pub struct Mbuf(NonNull<dpdk_sys::rte_mbuf>);

// SAFETY: an mbuf may be freed from any thread (DPDK mempools are multi-producer); the
// owner moves it whole, and shared clones are only read.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes ownership of a raw mbuf.
    ///
    /// # Safety
    /// `ptr` is a valid mbuf that the caller owns (one reference), with a single segment.
    pub unsafe fn from_raw(ptr: NonNull<dpdk_sys::rte_mbuf>) -> Mbuf {
        Mbuf(ptr)
    }

    /// Gives up ownership; the caller must free the mbuf.
    pub fn into_raw(self) -> NonNull<dpdk_sys::rte_mbuf> {
        let p = self.0;
        std::mem::forget(self);
        p
    }

    pub fn as_ptr(&self) -> *mut dpdk_sys::rte_mbuf {
        self.0.as_ptr()
    }

    fn raw(&self) -> &dpdk_sys::rte_mbuf {
        // SAFETY: we own a reference to a valid mbuf.
        unsafe { self.0.as_ref() }
    }

    pub fn refcnt(&self) -> u16 {
        // SAFETY: valid mbuf.
        unsafe { dpdk_sys::sluice_mbuf_refcnt_read(self.0.as_ptr()) }
    }

    pub fn headroom(&self) -> usize {
        self.raw().data_off as usize
    }

    pub fn tailroom(&self) -> usize {
        let m = self.raw();
        m.buf_len as usize - m.data_off as usize - m.data_len as usize
    }

    /// Offload flags of a received mbuf.
    pub fn ol_flags(&self) -> u64 {
        self.raw().ol_flags
    }
}

impl Clone for Mbuf {
    fn clone(&self) -> Mbuf {
        // SAFETY: valid mbuf; one more reference, released by the clone's Drop.
        unsafe { dpdk_sys::sluice_mbuf_refcnt_update(self.0.as_ptr(), 1) };
        Mbuf(self.0)
    }
}

impl Drop for Mbuf {
    fn drop(&mut self) {
        // SAFETY: we own one reference; rte_pktmbuf_free drops it and frees at zero.
        unsafe { dpdk_sys::sluice_pktmbuf_free(self.0.as_ptr()) }
    }
}

impl std::fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Mbuf({} bytes, refcnt {})", self.raw().data_len, self.refcnt())
    }
}

impl PacketBuf for Mbuf {
    fn data(&self) -> &[u8] {
        let m = self.raw();
        // SAFETY: buf_addr + data_off .. + data_len lies inside the mbuf's buffer, which
        // lives while we hold a reference.
        unsafe {
            std::slice::from_raw_parts(
                (m.buf_addr as *const u8).add(m.data_off as usize),
                m.data_len as usize,
            )
        }
    }
    fn data_mut(&mut self) -> &mut [u8] {
        debug_assert_eq!(self.refcnt(), 1, "writing through a shared mbuf");
        let m = self.raw();
        let (p, len) = (m.buf_addr as *mut u8, m.data_len as usize);
        let off = m.data_off as usize;
        // SAFETY: as in `data`; &mut self gives exclusive access to our (unshared) buffer.
        unsafe { std::slice::from_raw_parts_mut(p.add(off), len) }
    }
    fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        let n16 = u16::try_from(n).ok()?;
        // SAFETY: valid mbuf; prepend returns NULL when the headroom is too small.
        let p = unsafe { dpdk_sys::sluice_pktmbuf_prepend(self.0.as_ptr(), n16) };
        // SAFETY: on success p points at n writable bytes inside our buffer.
        (!p.is_null()).then(|| unsafe { std::slice::from_raw_parts_mut(p as *mut u8, n) })
    }
    fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        let n16 = u16::try_from(n).ok()?;
        // SAFETY: valid single-segment mbuf; append returns NULL when the tailroom is too small.
        let p = unsafe { dpdk_sys::sluice_pktmbuf_append(self.0.as_ptr(), n16) };
        // SAFETY: on success p points at n writable bytes inside our buffer.
        (!p.is_null()).then(|| unsafe { std::slice::from_raw_parts_mut(p as *mut u8, n) })
    }
    fn adj(&mut self, n: usize) -> bool {
        let Ok(n16) = u16::try_from(n) else { return false };
        // SAFETY: valid mbuf; adj returns NULL (and changes nothing) when too short.
        !unsafe { dpdk_sys::sluice_pktmbuf_adj(self.0.as_ptr(), n16) }.is_null()
    }
    fn trim(&mut self, n: usize) -> bool {
        let Ok(n16) = u16::try_from(n) else { return false };
        // SAFETY: valid mbuf; trim returns -1 (and changes nothing) when too short.
        unsafe { dpdk_sys::sluice_pktmbuf_trim(self.0.as_ptr(), n16) == 0 }
    }
    fn rss_hash(&self) -> Option<u32> {
        let m = self.raw();
        // SAFETY: reading the hash union's rss member, valid when the flag says so.
        // SAFETY: an extern static defined in the shim.
        let flag = unsafe { dpdk_sys::SLUICE_MBUF_F_RX_RSS_HASH };
        (m.ol_flags & flag != 0).then(|| unsafe { m.__bindgen_anon_2.hash.rss })
    }
}
