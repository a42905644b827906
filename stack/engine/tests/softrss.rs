//! Sluice's software Toeplitz against DPDK's own `rte_softrss` (which needs no EAL).

use proptest::prelude::*;
use sluice_engine::Toeplitz;
use sluice_wire::Ipv4Address;

fn dpdk_softrss(key: &[u8; 40], src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> u32 {
    // rte_ipv4_tuple: addresses in host order, then the ports as one word (dport low).
    let mut tuple = [
        u32::from_be_bytes(src),
        u32::from_be_bytes(dst),
        ((sport as u32) << 16) | dport as u32,
    ];
    // SAFETY: rte_softrss reads `input_len` words of the tuple and 40 bytes of key.
    unsafe { dpdk_sys::sluice_softrss(tuple.as_mut_ptr(), 3, key.as_ptr()) }
}

proptest! {
    #[test]
    fn matches_rte_softrss(key in prop::array::uniform32(any::<u8>()), tail in prop::array::uniform8(any::<u8>()),
                           src in any::<[u8; 4]>(), dst in any::<[u8; 4]>(), sport in any::<u16>(), dport in any::<u16>()) {
        let mut k = [0u8; 40];
        k[..32].copy_from_slice(&key);
        k[32..].copy_from_slice(&tail);
        let ours = Toeplitz::new(&k).hash_v4(Ipv4Address(src), Ipv4Address(dst), sport, dport);
        prop_assert_eq!(ours, dpdk_softrss(&k, src, dst, sport, dport));
    }
}
