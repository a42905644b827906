use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicPtr, Ordering};

use sluice_buf::FrameVtable;
use sluice_dev::{Frame, PacketBuf, RxChecksum, TxChecksum, Verdict, L4};

/// Pools and their large companions, registered by `Mempool::set_large`. A fixed table,
/// filled as ports start (a pool lives as long as the process) and read per segment.
const MAX_LARGE: usize = 128;
static LARGE: [(AtomicPtr<dpdk_sys::rte_mempool>, AtomicPtr<dpdk_sys::rte_mempool>); MAX_LARGE] =
    [const { (AtomicPtr::new(ptr::null_mut()), AtomicPtr::new(ptr::null_mut())) }; MAX_LARGE];

/// Registers `big` as the large companion of `pool`; false when the table is full.
pub(crate) fn set_large_companion(pool: *mut dpdk_sys::rte_mempool, big: *mut dpdk_sys::rte_mempool) -> bool {
    for (p, b) in &LARGE {
        if p.compare_exchange(ptr::null_mut(), pool, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            b.store(big, Ordering::Release);
            return true;
        }
    }
    false
}

/// The large companion of the pool at `pool`, or null.
fn large_companion(pool: *mut dpdk_sys::rte_mempool) -> *mut dpdk_sys::rte_mempool {
    for (p, big) in &LARGE {
        let q = p.load(Ordering::Acquire);
        if q == pool {
            return big.load(Ordering::Acquire);
        }
        if q.is_null() {
            break;
        }
    }
    ptr::null_mut()
}

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

    /// Buffers in the chain, this one included.
    pub fn segments(&self) -> u16 {
        self.raw().nb_segs
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
        // SAFETY: valid mbuf; one more reference to every segment (rte_pktmbuf_free drops
        // one of each), released by the clone's Drop.
        unsafe { dpdk_sys::sluice_pktmbuf_refcnt_update_chain(self.0.as_ptr(), 1) };
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
    #[inline]
    fn prefetch(&self) {
        // The rte_mbuf's two lines: length, data offset and flags; next, pool and offloads.
        sluice_buf::prefetch(self.as_ptr() as *const u8, 128);
    }
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
    fn rx_checksum(&self) -> RxChecksum {
        // SAFETY: extern statics defined in the shim from DPDK's macros.
        let (ip_mask, ip_bad, ip_good, l4_mask, l4_bad, l4_good, l4_none) = unsafe {
            (
                dpdk_sys::SLUICE_MBUF_F_RX_IP_CKSUM_MASK,
                dpdk_sys::SLUICE_MBUF_F_RX_IP_CKSUM_BAD,
                dpdk_sys::SLUICE_MBUF_F_RX_IP_CKSUM_GOOD,
                dpdk_sys::SLUICE_MBUF_F_RX_L4_CKSUM_MASK,
                dpdk_sys::SLUICE_MBUF_F_RX_L4_CKSUM_BAD,
                dpdk_sys::SLUICE_MBUF_F_RX_L4_CKSUM_GOOD,
                dpdk_sys::SLUICE_MBUF_F_RX_L4_CKSUM_NONE,
            )
        };
        let f = self.raw().ol_flags;
        let verdict = |mask, good, bad| match f & mask {
            x if x == good => Verdict::Good,
            x if x == bad => Verdict::Bad,
            _ => Verdict::Unknown,
        };
        // L4 "NONE": the checksum field is not the final sum (a virtio peer left it to the
        // device: NEEDS_CSUM) but the data's integrity is known; as good as GOOD.
        let l4 = match f & l4_mask {
            x if x == l4_none => Verdict::Good,
            _ => verdict(l4_mask, l4_good, l4_bad),
        };
        RxChecksum {
            ip: verdict(ip_mask, ip_good, ip_bad),
            l4,
        }
    }
    fn forget_rx_checksum(&mut self) {
        // SAFETY: extern statics defined in the shim from DPDK's macros.
        let mask =
            unsafe { dpdk_sys::SLUICE_MBUF_F_RX_IP_CKSUM_MASK | dpdk_sys::SLUICE_MBUF_F_RX_L4_CKSUM_MASK };
        // SAFETY: we own the mbuf; only the receive checksum bits change (UNKNOWN is 0).
        unsafe { self.0.as_mut().ol_flags &= !mask };
    }
    fn request_tx_checksum(&mut self, o: TxChecksum) {
        // SAFETY: extern statics defined in the shim from DPDK's macros.
        let (v4, v6, ip, tcp, udp) = unsafe {
            (
                dpdk_sys::SLUICE_MBUF_F_TX_IPV4,
                dpdk_sys::SLUICE_MBUF_F_TX_IPV6,
                dpdk_sys::SLUICE_MBUF_F_TX_IP_CKSUM,
                dpdk_sys::SLUICE_MBUF_F_TX_TCP_CKSUM,
                dpdk_sys::SLUICE_MBUF_F_TX_UDP_CKSUM,
            )
        };
        let l4 = match o.l4 {
            L4::Tcp => tcp,
            L4::Udp => udp,
            L4::Other => 0,
        };
        // SAFETY: we own the mbuf (not yet handed to the driver); tx_offload packs
        // l2_len in bits 0-6 and l3_len in bits 7-15 (rte_mbuf_core.h).
        unsafe {
            let m = self.0.as_mut();
            let family = if o.ipv6 { v6 } else { v4 };
            m.ol_flags |= family | if o.ip && !o.ipv6 { ip } else { 0 } | l4;
            // Keep l4_len and tso_segsz (bits 16-39) that `request_tso` may have set.
            let rest = m.__bindgen_anon_3.tx_offload & !0xffff;
            m.__bindgen_anon_3.tx_offload =
                rest | (o.l2_len as u64 & 0x7f) | ((o.l3_len as u64 & 0x1ff) << 7);
        }
    }
    fn append_chained(&mut self, data: &[u8]) -> bool {
        let Ok(len) = u32::try_from(data.len()) else {
            return false;
        };
        let large = large_companion(self.raw().pool);
        // SAFETY: our head mbuf; `large` is a live pool or null; the shim copies `len`
        // bytes from `data` into new segments.
        unsafe {
            dpdk_sys::sluice_pktmbuf_append_copy(self.0.as_ptr(), large, data.as_ptr().cast(), len) == 0
        }
    }
    fn request_tso(&mut self, mss: u16, l4_len: u8) {
        // SAFETY: extern statics defined in the shim from DPDK's macros.
        let (seg, tcp) = unsafe {
            (
                dpdk_sys::SLUICE_MBUF_F_TX_TCP_SEG,
                dpdk_sys::SLUICE_MBUF_F_TX_TCP_CKSUM,
            )
        };
        // SAFETY: we own the mbuf; tx_offload packs l4_len in bits 16-23 and tso_segsz
        // in bits 24-39 (rte_mbuf_core.h).
        unsafe {
            let m = self.0.as_mut();
            m.ol_flags |= seg | tcp;
            let low = m.__bindgen_anon_3.tx_offload & 0xffff;
            m.__bindgen_anon_3.tx_offload = low | (u64::from(l4_len) << 16) | (u64::from(mss) << 24);
        }
    }
    fn is_tso(&self) -> bool {
        // SAFETY: an extern static defined in the shim.
        self.raw().ol_flags & unsafe { dpdk_sys::SLUICE_MBUF_F_TX_TCP_SEG } != 0
    }
    fn rss_hash(&self) -> Option<u32> {
        let m = self.raw();
        // SAFETY: reading the hash union's rss member, valid when the flag says so.
        // SAFETY: an extern static defined in the shim.
        let flag = unsafe { dpdk_sys::SLUICE_MBUF_F_RX_RSS_HASH };
        (m.ol_flags & flag != 0).then(|| unsafe { m.__bindgen_anon_2.hash.rss })
    }

    /// The packet's length over all its segments.
    #[inline]
    fn len(&self) -> usize {
        // A plain field, read in place (through the shim it was a call per frame: 2-5% of
        // the profiles, `Egress::flush` counting the bytes of a full transmit queue).
        self.raw().pkt_len as usize
    }

    /// Every segment's bytes, in order.
    fn gather(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        let mut seg = self.0.as_ptr();
        while !seg.is_null() {
            // SAFETY: `seg` is a segment of our chain, alive while we hold the head; its data
            // lies at buf_addr + data_off for data_len bytes.
            unsafe {
                let m = &*seg;
                out.extend_from_slice(std::slice::from_raw_parts(
                    (m.buf_addr as *const u8).add(m.data_off as usize),
                    m.data_len as usize,
                ));
                seg = m.next;
            }
        }
        out
    }

    /// Chains an indirect mbuf that refers to the frame's mbuf, when the frame is one.
    fn attach_frame(&mut self, frame: &Frame, range: core::ops::Range<usize>) -> bool {
        let Some(m) = frame_mbuf(frame) else {
            return false;
        };
        let data = &frame[range];
        let Ok(len) = u16::try_from(data.len()) else {
            return false;
        };
        // SAFETY: `self` is our head mbuf; `m` is alive (the frame holds a reference) and
        // `data` lies inside its buffer; the indirect mbuf takes its own reference.
        unsafe {
            dpdk_sys::sluice_pktmbuf_chain_ref(self.0.as_ptr(), m.as_ptr(), data.as_ptr().cast(), len) == 0
        }
    }

    const FRAMES: bool = true;

    /// Zero-copy receive: the frame is the mbuf itself (its reference count does the
    /// sharing). Chained mbufs are not shared.
    fn into_frame(self) -> Result<Frame, Mbuf> {
        if self.raw().nb_segs != 1 {
            return Err(self);
        }
        let m = self.raw();
        // The pointer comes from the mbuf's own buffer address (not from a shared slice):
        // `Mempool::alloc_frame` writes through it while the frame is unique.
        // SAFETY: data_off is within the mbuf's buffer.
        let ptr = unsafe { (m.buf_addr as *mut u8).add(m.data_off as usize) };
        let len = m.data_len as usize;
        let token = self.into_raw().as_ptr().cast::<()>();
        // SAFETY: the mbuf's data stays put while a reference lives, and frames only read
        // it; MBUF_FRAME adds and drops mbuf references.
        Ok(unsafe {
            Frame::from_raw_parts(
                NonNull::new(ptr).unwrap_or(NonNull::dangling()),
                len,
                token,
                &MBUF_FRAME,
            )
        })
    }
}

unsafe fn mbuf_frame_clone(token: *mut ()) -> *mut () {
    // SAFETY: `token` is a valid mbuf we hold a reference to.
    unsafe { dpdk_sys::sluice_mbuf_refcnt_update(token.cast(), 1) };
    token
}

unsafe fn mbuf_frame_drop(token: *mut ()) {
    // SAFETY: we own one reference of the single-segment mbuf `token`.
    unsafe { dpdk_sys::sluice_pktmbuf_free(token.cast()) }
}

static MBUF_FRAME: FrameVtable = FrameVtable {
    clone: mbuf_frame_clone,
    drop: mbuf_frame_drop,
};

/// The mbuf behind a frame made by `Mbuf::into_frame`, if it is one.
pub fn frame_mbuf(frame: &Frame) -> Option<NonNull<dpdk_sys::rte_mbuf>> {
    if core::ptr::eq(frame.vtable(), &MBUF_FRAME) {
        NonNull::new(frame.token().cast())
    } else {
        None
    }
}
