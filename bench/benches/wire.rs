//! `sluice-wire`: the Internet checksum, and parse and emit of every header.
//!
//! Parse benchmarks run on a frame built once outside the loop and verify checksums in
//! software (`ChecksumCaps::software()`), as on a NIC without offload; payloads are small
//! (stated per benchmark) so that the header work dominates. Emit benchmarks write into a
//! buffer of exactly `buffer_len()` bytes, filling checksums in software.

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sluice_wire::{
    checksum, ArpOp, ArpPacket, ArpRepr, ChecksumCaps, EtherType, EthernetAddress, EthernetFrame,
    EthernetRepr, Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Address, Ipv4Packet, Ipv4Repr, SeqNumber,
    TcpFlags, TcpOptions, TcpPacket, TcpRepr, UdpPacket, UdpRepr,
};

const SRC_IP: Ipv4Address = Ipv4Address::new(10, 0, 0, 2);
const DST_IP: Ipv4Address = Ipv4Address::new(10, 0, 0, 1);
const SRC_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 2]);
const DST_MAC: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 1]);

fn bench_checksum(c: &mut Criterion) {
    let mut g = c.benchmark_group("checksum");
    for len in [64usize, 1500, 9000] {
        let data: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_with_input(BenchmarkId::from_parameter(len), &data, |b, data| {
            b.iter(|| checksum::sum(black_box(data)))
        });
    }
    g.finish();
}

fn eth_repr() -> EthernetRepr {
    EthernetRepr {
        src_addr: SRC_MAC,
        dst_addr: DST_MAC,
        ethertype: EtherType::Ipv4,
    }
}

fn arp_repr() -> ArpRepr {
    ArpRepr {
        operation: ArpOp::Request,
        source_hardware_addr: SRC_MAC,
        source_protocol_addr: SRC_IP,
        target_hardware_addr: EthernetAddress::UNSPECIFIED,
        target_protocol_addr: DST_IP,
    }
}

fn ipv4_repr(payload_len: usize) -> Ipv4Repr {
    Ipv4Repr {
        src_addr: SRC_IP,
        dst_addr: DST_IP,
        protocol: IpProtocol::Tcp,
        payload_len,
        ttl: 64,
    }
}

/// An ACK with timestamps and one SACK block: the options of a Linux bulk-transfer ACK.
fn tcp_repr(payload: &[u8]) -> TcpRepr<'_> {
    let mut options = TcpOptions {
        timestamp: Some((0x1234_5678, 0x9abc_def0)),
        ..TcpOptions::default()
    };
    options.sack.push(SeqNumber(5000), SeqNumber(8000));
    TcpRepr {
        src_port: 49500,
        dst_port: 80,
        seq: SeqNumber(1_000_000),
        ack: Some(SeqNumber(2_000_000)),
        flags: TcpFlags::NONE.with(TcpFlags::PSH),
        window: 512,
        urgent: 0,
        options,
        payload,
    }
}

/// A SYN's options: MSS, window scale, SACK permitted, timestamps.
fn tcp_syn_repr() -> TcpRepr<'static> {
    TcpRepr {
        src_port: 49500,
        dst_port: 80,
        seq: SeqNumber(1_000_000),
        ack: None,
        flags: TcpFlags::NONE.with(TcpFlags::SYN),
        window: 65535,
        urgent: 0,
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            timestamp: Some((0x1234_5678, 0)),
            ..TcpOptions::default()
        },
        payload: &[],
    }
}

fn bench_ethernet(c: &mut Criterion) {
    let mut g = c.benchmark_group("wire/ethernet");
    let repr = eth_repr();
    let mut buf = vec![0u8; repr.buffer_len(46)];
    repr.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]));
    g.bench_function("parse", |b| {
        b.iter(|| {
            let frame = EthernetFrame::new_checked(black_box(&buf[..])).unwrap();
            EthernetRepr::parse(&frame).unwrap()
        })
    });
    let mut out = vec![0u8; repr.buffer_len(46)];
    g.bench_function("emit", |b| {
        b.iter(|| black_box(&repr).emit(&mut EthernetFrame::new_unchecked(black_box(&mut out[..]))))
    });
    g.finish();
}

fn bench_arp(c: &mut Criterion) {
    let mut g = c.benchmark_group("wire/arp");
    let repr = arp_repr();
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..]));
    g.bench_function("parse", |b| {
        b.iter(|| {
            let p = ArpPacket::new_checked(black_box(&buf[..])).unwrap();
            ArpRepr::parse(&p).unwrap()
        })
    });
    let mut out = vec![0u8; repr.buffer_len()];
    g.bench_function("emit", |b| {
        b.iter(|| black_box(&repr).emit(&mut ArpPacket::new_unchecked(black_box(&mut out[..]))))
    });
    g.finish();
}

fn bench_ipv4(c: &mut Criterion) {
    let mut g = c.benchmark_group("wire/ipv4");
    let caps = ChecksumCaps::software();
    let repr = ipv4_repr(32);
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), &caps);
    // Header checksum verified on parse, filled on emit.
    g.bench_function("parse", |b| {
        b.iter(|| {
            let p = Ipv4Packet::new_checked(black_box(&buf[..])).unwrap();
            Ipv4Repr::parse(&p, black_box(&caps)).unwrap()
        })
    });
    let mut out = vec![0u8; repr.buffer_len()];
    g.bench_function("emit", |b| {
        b.iter(|| {
            black_box(&repr).emit(
                &mut Ipv4Packet::new_unchecked(black_box(&mut out[..])),
                black_box(&caps),
            )
        })
    });
    g.finish();
}

fn bench_icmpv4(c: &mut Criterion) {
    let mut g = c.benchmark_group("wire/icmpv4_echo");
    let caps = ChecksumCaps::software();
    // `ping`'s default: 56 bytes of data.
    let data = [0x5au8; 56];
    let repr = Icmpv4Repr::EchoRequest {
        ident: 0x1234,
        seq_no: 7,
        data: &data,
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]), &caps);
    g.bench_function("parse", |b| {
        b.iter(|| {
            let p = Icmpv4Packet::new_checked(black_box(&buf[..])).unwrap();
            Icmpv4Repr::parse(&p, black_box(&caps)).unwrap()
        })
    });
    let mut out = vec![0u8; repr.buffer_len()];
    g.bench_function("emit", |b| {
        b.iter(|| {
            black_box(&repr).emit(
                &mut Icmpv4Packet::new_unchecked(black_box(&mut out[..])),
                black_box(&caps),
            )
        })
    });
    g.finish();
}

fn bench_udp(c: &mut Criterion) {
    let mut g = c.benchmark_group("wire/udp");
    let caps = ChecksumCaps::software();
    // A DNS-query-sized payload.
    let payload = [0x42u8; 32];
    let repr = UdpRepr {
        src_port: 49500,
        dst_port: 53,
        payload: &payload,
    };
    let mut buf = vec![0u8; repr.buffer_len()];
    repr.emit(&mut UdpPacket::new_unchecked(&mut buf[..]), SRC_IP, DST_IP, &caps);
    g.bench_function("parse", |b| {
        b.iter(|| {
            let p = UdpPacket::new_checked(black_box(&buf[..])).unwrap();
            UdpRepr::parse(&p, SRC_IP, DST_IP, black_box(&caps)).unwrap()
        })
    });
    let mut out = vec![0u8; repr.buffer_len()];
    g.bench_function("emit", |b| {
        b.iter(|| {
            black_box(&repr).emit(
                &mut UdpPacket::new_unchecked(black_box(&mut out[..])),
                SRC_IP,
                DST_IP,
                black_box(&caps),
            )
        })
    });
    g.finish();
}

fn bench_tcp(c: &mut Criterion) {
    let mut g = c.benchmark_group("wire/tcp");
    let sw = ChecksumCaps::software();
    let off = ChecksumCaps::ignored();
    let reprs = [("ack_ts_sack", tcp_repr(&[])), ("syn_opts", tcp_syn_repr())];
    for (name, repr) in reprs {
        let mut buf = vec![0u8; repr.buffer_len()];
        repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..]), SRC_IP, DST_IP, &sw);
        for (cname, caps) in [("", &sw), ("_nocsum", &off)] {
            g.bench_function(format!("parse_{name}{cname}"), |b| {
                b.iter(|| {
                    let p = TcpPacket::new_checked(black_box(&buf[..])).unwrap();
                    TcpRepr::parse(&p, SRC_IP, DST_IP, black_box(caps)).unwrap()
                })
            });
            let mut out = vec![0u8; repr.buffer_len()];
            g.bench_function(format!("emit_{name}{cname}"), |b| {
                b.iter(|| {
                    black_box(&repr).emit(
                        &mut TcpPacket::new_unchecked(black_box(&mut out[..])),
                        SRC_IP,
                        DST_IP,
                        black_box(caps),
                    )
                })
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::criterion();
    targets = bench_checksum, bench_ethernet, bench_arp, bench_ipv4, bench_icmpv4, bench_udp, bench_tcp
}
criterion_main!(benches);
