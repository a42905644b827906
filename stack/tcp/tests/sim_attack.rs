//! Under attack: blind RST, SYN and data injected into an established transfer (RFC 5961,
//! PAWS) never reset or corrupt it; a SYN flood far beyond the backlog still lets
//! legitimate clients in through SYN cookies.

mod netsim;

use std::collections::HashMap;
use std::time::Duration;

use netsim::{bulk_config, LinkCfg, Sim, SimCfg};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};
use sluice_tcp::Instant;
use sluice_tcp::{
    ListenOutcome, ListenReply, Listener, SeqNumber, State, Tcb, TcpConfig, TcpFlags, TcpOptions, TcpRepr,
};

/// A blind segment for end `to` (0 = client, 1 = server). `near` is that end's RCV.NXT
/// and `snd` its SND.NXT, used for the in-window variants that exercise RFC 5961.
fn attack(rng: &mut ChaCha8Rng, to: usize, near: SeqNumber, snd: SeqNumber) -> (TcpRepr<'static>, usize) {
    let (src_port, dst_port) = if to == 1 { (40000, 80) } else { (80, 40000) };
    let in_window = near + rng.gen_range(1..60_000usize);
    let random = SeqNumber(rng.gen());
    let ts = rng.gen_bool(0.5).then(|| (rng.gen::<u32>(), rng.gen::<u32>()));
    let options = TcpOptions {
        timestamp: ts,
        ..TcpOptions::default()
    };
    let base = TcpRepr {
        src_port,
        dst_port,
        seq: random,
        ack: None,
        flags: TcpFlags::NONE,
        window: rng.gen(),
        urgent: 0,
        options,
        payload: &[],
    };
    let kind = rng.gen_range(0..6);
    let r = match kind {
        0 => TcpRepr {
            flags: TcpFlags(TcpFlags::RST),
            ..base
        },
        1 => TcpRepr {
            flags: TcpFlags(TcpFlags::RST),
            seq: in_window,
            ..base
        },
        2 => TcpRepr {
            flags: TcpFlags(TcpFlags::SYN),
            ..base
        },
        3 => TcpRepr {
            flags: TcpFlags(TcpFlags::SYN),
            seq: in_window,
            ..base
        },
        // Data at a random place with a random ACK.
        4 => TcpRepr {
            ack: Some(SeqNumber(rng.gen())),
            ..base
        },
        // Data in the window whose ACK is ahead of SND.NXT (RFC 5961 5.2).
        _ => TcpRepr {
            seq: in_window,
            ack: Some(snd + rng.gen_range(1..1 << 30usize)),
            ..base
        },
    };
    (r, kind)
}

#[test]
fn blind_injection_never_resets_or_corrupts() {
    for seed in 1..4u64 {
        let link = LinkCfg {
            rate_bps: 50_000_000,
            delay: Duration::from_millis(10),
            loss: 0.005,
            queue_bytes: 200_000,
        };
        let cfg = TcpConfig {
            challenge_ack_limit: 20,
            ..bulk_config(256 << 10)
        };
        let mut sim = Sim::new(SimCfg::new(seed, 4 << 20, cfg, link));
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xa77ac);
        let payload: Vec<u8> = (0..512).map(|_| rng.gen()).collect();
        let mut next = Instant::from_millis(100);
        let mut kinds = [0u64; 6];
        sim.run_with(None, |s| {
            while s.now >= next && s.client.is_established() && s.server.is_established() {
                next += Duration::from_micros(200);
                for to in 0..2 {
                    let tcb = if to == 0 { &s.client } else { &s.server };
                    let (mut r, kind) = attack(&mut rng, to, tcb.rcv_nxt(), tcb.snd_nxt());
                    if kind >= 4 {
                        let n = rng.gen_range(1..payload.len());
                        r.payload = &payload[..n];
                    }
                    kinds[kind] += 1;
                    let r = TcpRepr {
                        payload: r.payload,
                        ..r
                    };
                    s.inject(to, &r);
                }
            }
        })
        .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        sim.check_integrity()
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(sim.client.error(), None);
        assert_eq!(sim.server.error(), None);
        let (c, sv) = (sim.client.counters(), sim.server.counters());
        println!(
            "seed {seed}: {} injected {kinds:?}; challenge ACKs {}+{} (suppressed {}+{}), bad ACKs {}+{}, \
             PAWS {}+{}, no TS {}+{}, out of window {}+{}",
            sim.injected,
            c.challenge_acks,
            sv.challenge_acks,
            c.challenge_acks_suppressed,
            sv.challenge_acks_suppressed,
            c.bad_acks,
            sv.bad_acks,
            c.paws_drops,
            sv.paws_drops,
            c.no_timestamp_drops,
            sv.no_timestamp_drops,
            c.out_of_window,
            sv.out_of_window
        );
        assert!(sim.injected > 10_000);
        assert!(c.challenge_acks + sv.challenge_acks > 0);
        assert!(
            c.challenge_acks_suppressed + sv.challenge_acks_suppressed > 0,
            "rate limit engaged"
        );
    }
}

/// A segment in flight between a legitimate client and the server.
struct Pkt {
    at: Instant,
    to_server: bool,
    client: usize,
    repr: TcpRepr<'static>,
    payload: Vec<u8>,
}

#[test]
fn syn_flood_legitimate_clients_connect_through_cookies() {
    const CLIENTS: usize = 20;
    const BYTES: usize = 64 << 10;
    let delay = Duration::from_millis(5);
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let cfg = TcpConfig {
        recv_buffer: 64 << 10,
        send_buffer: 64 << 10,
        msl: Duration::from_millis(200),
        ..TcpConfig::default()
    };
    let mut listener: Listener<(u64, u16)> = Listener::new(cfg, 80, 16);
    let mut secret = [0u8; 16];
    rng.fill_bytes(&mut secret);
    listener.enable_syn_cookies(secret);
    // Legitimate clients come from FLOW_LEGIT; the flood from random addresses.
    const FLOW_LEGIT: u64 = 0x0a00_0001_0a00_0002;
    let mut clients: Vec<Tcb> = Vec::new();
    let mut data: Vec<Vec<u8>> = Vec::new();
    let mut written = [0usize; CLIENTS];
    let mut servers: HashMap<u16, (Tcb, Sha256, usize)> = HashMap::new();
    let mut flood_half_open: HashMap<(u64, u16), Tcb> = HashMap::new();
    let mut wire: Vec<Pkt> = Vec::new();
    let mut now = Instant::ZERO;
    let mut flood_syns = 0u64;
    for i in 0..CLIENTS {
        let mut d = vec![0u8; BYTES];
        rng.fill_bytes(&mut d);
        data.push(d);
        clients.push(Tcb::connect(cfg, 20000 + i as u16, 80, SeqNumber(rng.gen())));
    }
    let end = Instant::from_secs(60);
    while now < end {
        // The flood: 200 SYNs per millisecond from random sources (never completed).
        for _ in 0..200 {
            let flow: u64 = rng.gen();
            let port: u16 = rng.gen_range(1024..65535);
            let syn = TcpRepr {
                src_port: port,
                dst_port: 80,
                seq: SeqNumber(rng.gen()),
                ack: None,
                flags: TcpFlags(TcpFlags::SYN),
                window: 65535,
                urgent: 0,
                options: TcpOptions {
                    mss: Some(1460),
                    timestamp: Some((rng.gen(), 0)),
                    ..TcpOptions::default()
                },
                payload: &[],
            };
            flood_syns += 1;
            if let ListenReply::Outcome(ListenOutcome::Accepted(t)) =
                listener.on_segment_from(now, &syn, flow, SeqNumber(rng.gen()), (flow, port))
            {
                flood_half_open.insert((flow, port), t);
            }
        }
        // Legitimate clients start one every 500 ms, after the backlog is full.
        for (i, c) in clients.iter_mut().enumerate() {
            let started = now >= Instant::from_millis(100 + 500 * i as u64);
            if !started {
                continue;
            }
            if c.is_established() && written[i] < BYTES {
                written[i] += c.send(&data[i][written[i]..]).unwrap_or(0);
                if written[i] == BYTES {
                    c.shutdown();
                }
            }
            if matches!(c.poll_at(), Some(t) if t <= now) {
                c.handle_timeout(now);
            }
            while let Some(r) = c.poll_transmit(now) {
                wire.push(Pkt {
                    at: now + delay,
                    to_server: true,
                    client: i,
                    repr: TcpRepr { payload: &[], ..r },
                    payload: r.payload.to_vec(),
                });
            }
        }
        // Server side: connections, then the listener.
        for (port, (t, hash, got)) in servers.iter_mut() {
            let mut buf = [0u8; 16384];
            loop {
                match t.recv(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        hash.update(&buf[..n]);
                        *got += n;
                    }
                    Err(_) => {
                        if t.may_send() {
                            t.shutdown();
                        }
                        break;
                    }
                }
            }
            if matches!(t.poll_at(), Some(d) if d <= now) {
                t.handle_timeout(now);
            }
            let i = (*port - 20000) as usize;
            while let Some(r) = t.poll_transmit(now) {
                wire.push(Pkt {
                    at: now + delay,
                    to_server: false,
                    client: i,
                    repr: TcpRepr { payload: &[], ..r },
                    payload: r.payload.to_vec(),
                });
            }
        }
        // Deliver.
        let (due, rest): (Vec<Pkt>, Vec<Pkt>) = wire.into_iter().partition(|p| p.at <= now);
        wire = rest;
        for p in due {
            let r = TcpRepr {
                payload: &p.payload,
                ..p.repr
            };
            if !p.to_server {
                let _ = clients[p.client].on_segment(now, &r);
                continue;
            }
            if let Some((t, _, _)) = servers.get_mut(&r.src_port) {
                let _ = t.on_segment(now, &r);
                continue;
            }
            match listener.on_segment_from(
                now,
                &r,
                FLOW_LEGIT,
                SeqNumber(rng.gen()),
                (FLOW_LEGIT, r.src_port),
            ) {
                ListenReply::SynCookie(sa) => wire.push(Pkt {
                    at: now + delay,
                    to_server: false,
                    client: p.client,
                    repr: sa,
                    payload: Vec::new(),
                }),
                ListenReply::Outcome(ListenOutcome::Accepted(t)) => {
                    assert_eq!(
                        t.state(),
                        State::Established,
                        "a legitimate client got in by cookie"
                    );
                    servers.insert(r.src_port, (t, Sha256::new(), 0));
                    assert_eq!(listener.accept(), Some((FLOW_LEGIT, r.src_port)));
                }
                ListenReply::Outcome(other) => panic!("legitimate segment refused: {other:?}"),
            }
        }
        if servers.len() == CLIENTS && servers.values().all(|(_, _, got)| *got == BYTES) {
            break;
        }
        now += Duration::from_millis(1);
    }
    let c = listener.counters();
    println!(
        "{flood_syns} flood SYNs, backlog {} half-open; cookies sent {}, accepted {}, rejected {}",
        listener.half_open(),
        c.syn_cookies_sent,
        c.syn_cookies_accepted,
        c.syn_cookies_rejected
    );
    assert!(flood_syns > 100_000);
    assert_eq!(listener.half_open(), 16, "the backlog stays bounded");
    assert_eq!(flood_half_open.len(), 16);
    assert_eq!(servers.len(), CLIENTS, "every legitimate client connected");
    assert_eq!(c.syn_cookies_accepted as usize, CLIENTS);
    for (port, (_, hash, got)) in servers {
        let i = (port - 20000) as usize;
        assert_eq!(got, BYTES);
        assert_eq!(
            hash.finalize(),
            Sha256::digest(&data[i]),
            "client {i}'s data intact"
        );
    }
}
