//! Resets for segments that reach no connection.

use sluice_wire::tcp::{SeqNumber, TcpFlags, TcpRepr};

/// The reply to a segment that matched no TCB, or reached a CLOSED one
/// (RFC 9293 3.10.7.1). `None` for an incoming RST (never answer a RST).
///
/// If the segment has an ACK: `<SEQ=SEG.ACK><CTL=RST>`; otherwise
/// `<SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>`. Ports are swapped.
pub fn rst_for(seg: &TcpRepr) -> Option<TcpRepr<'static>> {
    if seg.flags.rst() {
        return None;
    }
    let (seq, ack) = match seg.ack {
        Some(a) => (a, None),
        None => (SeqNumber(0), Some(seg.seq + seg.segment_len())),
    };
    Some(TcpRepr {
        src_port: seg.dst_port,
        dst_port: seg.src_port,
        seq,
        ack,
        flags: TcpFlags(TcpFlags::RST),
        window: 0,
        urgent: 0,
        options: Default::default(),
        payload: &[],
    })
}
