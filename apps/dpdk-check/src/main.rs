//! `sluice-dpdk-check`: exercises Sluice's DPDK layer on this machine.
//!
//! - `info`: initialise the EAL, list the ports and what they can do;
//! - `vhost-echo`: serve a `net_vhost` port, sending every frame back with the MACs swapped;
//! - `virtio-send`: on a `virtio_user` port, send numbered frames with a seeded payload,
//!   receive the echoes, and compare SHA-256 of what went out and what came back.
//!
//! The test suite runs the last two as two processes joined by a vhost-user socket.

use std::process::ExitCode;
use std::time::{Duration, Instant as StdInstant};

use clap::{Parser, Subcommand};
use sha2::{Digest, Sha256};
use sluice_dev::{Device, Instant, PacketBuf};
use sluice_dpdk::{EalBuilder, Mbuf, Port, PortConfig};
use sluice_engine::{Config, ConfigArgs};

mod tcp;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The EtherType of our test frames (IEEE 802 local experimental).
const ETHERTYPE_TEST: [u8; 2] = [0x88, 0xb5];
/// The EtherType of the frame that tells the echo side to stop.
const ETHERTYPE_STOP: [u8; 2] = [0x88, 0xb6];

#[derive(Parser)]
#[command(version, about = "Check DPDK through Sluice's DPDK layer")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Initialise the EAL and print the ports it found.
    Info {
        /// Extra EAL arguments, e.g. --eal=--no-huge (repeatable).
        #[arg(long = "eal", allow_hyphen_values = true)]
        eal: Vec<String>,
        /// A virtual device to create, e.g. net_null0.
        #[arg(long)]
        vdev: Vec<String>,
        /// Also configure and start this port (by name) and print its RSS key and table.
        #[arg(long)]
        port: Option<String>,
        /// Queue pairs when configuring --port.
        #[arg(long, default_value_t = 1)]
        queues: u16,
    },
    /// Echo frames on a net_vhost port until a stop frame or the time limit.
    VhostEcho {
        /// Extra EAL arguments, e.g. --eal=--no-huge (repeatable).
        #[arg(long = "eal", allow_hyphen_values = true)]
        eal: Vec<String>,
        #[arg(long)]
        sock: String,
        #[arg(long, default_value_t = 1)]
        queues: u16,
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// Send frames on a virtio_user port and verify the echoes.
    VirtioSend {
        /// Extra EAL arguments, e.g. --eal=--no-huge (repeatable).
        #[arg(long = "eal", allow_hyphen_values = true)]
        eal: Vec<String>,
        #[arg(long)]
        sock: String,
        #[arg(long, default_value_t = 1)]
        queues: u16,
        #[arg(long, default_value_t = 10_000)]
        frames: u32,
        /// Frame size in bytes (60..=1514).
        #[arg(long, default_value_t = 1000)]
        size: usize,
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// TCP on the engine: serve connections, answering each with the SHA-256 and length
    /// of what it received.
    TcpSink {
        #[command(flatten)]
        config: ConfigArgs,
        /// The TCP port to listen on.
        #[arg(long, default_value_t = 9000)]
        listen: u16,
        /// Stop after this many connections (0: run until stopped).
        #[arg(long, default_value_t = 0)]
        expect: u64,
        #[arg(long, default_value_t = 120)]
        seconds: u64,
        /// Read with `read_frame` (the received mbufs themselves) instead of in place.
        #[arg(long)]
        zero_copy: bool,
    },
    /// TCP on the engine: open connections, send each a pseudo-random stream, and check the
    /// digest the peer sends back.
    TcpSource {
        #[command(flatten)]
        config: ConfigArgs,
        /// The sink, IP:PORT.
        #[arg(long)]
        remote: String,
        #[arg(long, default_value_t = 1)]
        connections: u64,
        /// Bytes per connection.
        #[arg(long, default_value_t = 1 << 20)]
        bytes: u64,
        /// Connections open at once per core.
        #[arg(long, default_value_t = 64)]
        parallel: usize,
        #[arg(long, default_value_t = 120)]
        seconds: u64,
        /// Fill mbufs from `alloc_frame` and queue them with `write_frame` (sent by
        /// reference) instead of writing into the send buffer.
        #[arg(long)]
        zero_copy: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Info {
            eal,
            vdev,
            port,
            queues,
        } => info(&eal, &vdev, port.as_deref(), queues),
        Cmd::VhostEcho {
            eal,
            sock,
            queues,
            seconds,
        } => vhost_echo(&eal, &sock, queues, seconds),
        Cmd::VirtioSend {
            eal,
            sock,
            queues,
            frames,
            size,
            seconds,
        } => virtio_send(&eal, &sock, queues, frames, size, seconds),
        Cmd::TcpSink {
            config,
            listen,
            expect,
            seconds,
            zero_copy,
        } => tcp_cmd(&config, None, listen, expect, seconds, zero_copy),
        Cmd::TcpSource {
            config,
            remote,
            connections,
            bytes,
            parallel,
            seconds,
            zero_copy,
        } => match tcp::parse_endpoint(&remote) {
            Ok(ep) => tcp_cmd(
                &config,
                Some((ep, connections, bytes, parallel)),
                0,
                0,
                seconds,
                zero_copy,
            ),
            Err(e) => Err(e.into()),
        },
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

type Res = Result<(), Box<dyn std::error::Error>>;

fn tcp_cmd(
    args: &ConfigArgs,
    source: Option<(sluice_net::Endpoint, u64, u64, usize)>,
    port: u16,
    expect: u64,
    seconds: u64,
    zero_copy: bool,
) -> Res {
    let config = Config::from_args(args)?;
    if tcp::run(&config, source, port, expect, seconds, zero_copy)? {
        Ok(())
    } else {
        Err("some connections failed or did not finish".into())
    }
}

fn info(eal_args: &[String], vdevs: &[String], port: Option<&str>, queues: u16) -> Res {
    let mut b = EalBuilder::new("sluice-dpdk-check").args(eal_args.iter().cloned());
    for v in vdevs {
        b = b.vdev(v);
    }
    let eal = b.init()?;
    println!("dpdk={}", eal.version());
    println!("tsc_hz={}", eal.tsc_hz());
    let n = Port::count(&eal);
    println!("ports={n}");
    for id in 0..n {
        let i = Port::info(&eal, id)?;
        println!(
            "port={id} driver={} max_rx_queues={} max_tx_queues={} reta_size={} key_size={} rss_offloads={:#x}",
            i.driver, i.max_rx_queues, i.max_tx_queues, i.reta_size, i.hash_key_size, i.flow_type_rss_offloads
        );
    }
    if let Some(name) = port {
        let id = Port::id_by_name(&eal, name)?;
        let cfg = PortConfig {
            queues,
            mbufs_per_queue: 2047,
            ..Default::default()
        };
        let p = Port::configure(&eal, id, &cfg)?;
        let mac = p.mac();
        println!(
            "configured={name} id={id} queues={} mtu={} mac={:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            p.queues(),
            p.mtu(),
            mac[0],
            mac[1],
            mac[2],
            mac[3],
            mac[4],
            mac[5]
        );
        match p.rss_key() {
            Some(k) => println!(
                "rss_key={}",
                k.iter().map(|b| format!("{b:02x}")).collect::<String>()
            ),
            None => println!("rss_key=none"),
        }
        println!("reta_len={}", p.reta().map_or(0, |r| r.len()));
    }
    Ok(())
}

/// Waits up to `limit` for the port's link to come up (vhost-user needs its peer).
fn wait_link(p: &Port, limit: Duration) -> bool {
    let t0 = StdInstant::now();
    while t0.elapsed() < limit {
        if p.link_up() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// EAL with one virtual device, and that device's port configured with `queues` queue
/// pairs. The port comes first in the tuple so that it is dropped before the EAL.
fn open_vdev(
    program: &str,
    eal_args: &[String],
    vdev: &str,
    queues: u16,
) -> Result<(Port, sluice_dpdk::Eal), Box<dyn std::error::Error>> {
    let eal = EalBuilder::new(program)
        .args(eal_args.iter().cloned())
        .vdev(vdev)
        .init()?;
    let name = vdev.split(',').next().unwrap_or(vdev);
    let id = Port::id_by_name(&eal, name)?;
    let cfg = PortConfig {
        queues,
        mbufs_per_queue: 4095,
        ..Default::default()
    };
    let port = Port::configure(&eal, id, &cfg)?;
    Ok((port, eal))
}

fn vhost_echo(eal_args: &[String], sock: &str, queues: u16, seconds: u64) -> Res {
    let vdev = format!("net_vhost0,iface={sock},queues={queues}");
    let (port, _eal) = open_vdev("sluice-vhost-echo", eal_args, &vdev, queues)?;
    println!("vhost-echo: listening on {sock}");
    let mut qs: Vec<_> = (0..queues).map(|q| port.queue(q)).collect();
    let deadline = StdInstant::now() + Duration::from_secs(seconds);
    let (mut rx, mut tx): (Vec<Mbuf>, Vec<Mbuf>) = (Vec::with_capacity(64), Vec::with_capacity(64));
    let mut echoed = 0u64;
    let mut idle = 0u32;
    'outer: while StdInstant::now() < deadline {
        let mut got = 0;
        for q in qs.iter_mut() {
            let n = q.rx_burst(Instant::ZERO, &mut rx, 32);
            got += n;
            for mut m in rx.drain(..) {
                let d = m.data_mut();
                if d.len() < 14 {
                    continue;
                }
                if d[12..14] == ETHERTYPE_STOP {
                    break 'outer;
                }
                let mut src = [0u8; 6];
                src.copy_from_slice(&d[6..12]);
                d.copy_within(0..6, 6);
                d[0..6].copy_from_slice(&src);
                tx.push(m);
            }
            while !tx.is_empty() {
                let sent = q.tx_burst(Instant::ZERO, &mut tx);
                echoed += sent as u64;
                if sent == 0 {
                    std::thread::yield_now();
                }
            }
        }
        if got == 0 {
            idle += 1;
            if idle > 64 {
                std::thread::sleep(Duration::from_micros(100));
            }
        } else {
            idle = 0;
        }
    }
    drop(qs);
    println!("vhost-echo: echoed={echoed}");
    let s = port.stats();
    println!(
        "vhost-echo: ipackets={} opackets={} imissed={}",
        s.ipackets, s.opackets, s.imissed
    );
    Ok(())
}

/// The payload of frame `seq`: the pattern stream seeded by the frame number.
fn fill_payload(seq: u32, out: &mut [u8]) {
    tcp::Pattern::new(seq as u64).fill(out);
}

fn virtio_send(eal_args: &[String], sock: &str, queues: u16, frames: u32, size: usize, seconds: u64) -> Res {
    let size = size.clamp(60, 1514);
    let vdev = format!("virtio_user0,path={sock},queues={queues}");
    let (port, _eal) = open_vdev("sluice-virtio-send", eal_args, &vdev, queues)?;
    if !wait_link(&port, Duration::from_secs(10)) {
        return Err("virtio_user link did not come up in 10 s: is the vhost side running?".into());
    }
    let mac = port.mac();
    let mut q = port.queue(0);
    let pool = q.pool();
    let deadline = StdInstant::now() + Duration::from_secs(seconds);
    let (mut sent_hash, mut recv_hash) = (Sha256::new(), Sha256::new());
    let mut received = vec![false; frames as usize];
    let (mut next, mut got, mut dup) = (0u32, 0u32, 0u32);
    let (mut rx, mut tx): (Vec<Mbuf>, Vec<Mbuf>) = (Vec::with_capacity(64), Vec::with_capacity(64));
    let mut recv_payloads: Vec<Option<[u8; 32]>> = vec![None; frames as usize];
    let t0 = StdInstant::now();
    const WINDOW: u32 = 256;
    while got < frames && StdInstant::now() < deadline {
        // Keep at most WINDOW frames in flight, so that no ring overflows.
        while next < frames && next - got < WINDOW && tx.len() < 32 {
            let Some(mut m) = q.alloc() else { break };
            let d = m.append(size).ok_or("mbuf too small")?;
            d[0..6].copy_from_slice(&[0xff; 6]);
            d[6..12].copy_from_slice(&mac);
            d[12..14].copy_from_slice(&ETHERTYPE_TEST);
            d[14..18].copy_from_slice(&next.to_be_bytes());
            fill_payload(next, &mut d[18..]);
            sent_hash.update(&d[14..]);
            tx.push(m);
            next += 1;
        }
        q.tx_burst(Instant::ZERO, &mut tx);
        q.rx_burst(Instant::ZERO, &mut rx, 32);
        for m in rx.drain(..) {
            let d = m.data();
            if d.len() != size || d[12..14] != ETHERTYPE_TEST || d[0..6] != mac {
                continue;
            }
            let seq = u32::from_be_bytes([d[14], d[15], d[16], d[17]]);
            if seq >= frames || received[seq as usize] {
                dup += 1;
                continue;
            }
            received[seq as usize] = true;
            recv_payloads[seq as usize] = Some(Sha256::digest(&d[14..]).into());
            got += 1;
        }
        if tx.is_empty() && next - got >= WINDOW {
            std::thread::yield_now();
        }
    }
    let elapsed = t0.elapsed();
    // Digest of the received frames in sequence order, comparable with the sent one.
    let mut expected = Sha256::new();
    let mut frame = vec![0u8; size - 14];
    for seq in 0..frames {
        frame[0..4].copy_from_slice(&seq.to_be_bytes());
        fill_payload(seq, &mut frame[4..]);
        expected.update(&frame);
        if let Some(h) = recv_payloads[seq as usize] {
            if h != <[u8; 32]>::from(Sha256::digest(&frame)) {
                return Err(format!("frame {seq} came back altered").into());
            }
            recv_hash.update(&frame);
        }
    }
    let (s, r, e) = (sent_hash.finalize(), recv_hash.finalize(), expected.finalize());
    // Tell the echo side to stop.
    if let Some(mut m) = q.alloc() {
        let d = m.append(60).ok_or("mbuf too small")?;
        d.fill(0);
        d[0..6].copy_from_slice(&[0xff; 6]);
        d[6..12].copy_from_slice(&mac);
        d[12..14].copy_from_slice(&ETHERTYPE_STOP);
        let mut v = vec![m];
        q.tx_burst(Instant::ZERO, &mut v);
    }
    std::thread::sleep(Duration::from_millis(50));
    drop(rx);
    drop(tx);
    let st = port.stats();
    // Closing the port returns the mbufs its rings hold; what is left in use leaked.
    drop(q);
    drop(port);
    let in_use = pool.in_use();
    println!(
        "virtio-send: frames={frames} size={size} sent={next} received={got} duplicates={dup} elapsed_ms={} mpps={:.3}",
        elapsed.as_millis(),
        got as f64 / elapsed.as_secs_f64() / 1e6
    );
    println!("virtio-send: sha256_sent={s:x}");
    println!("virtio-send: sha256_received={r:x}");
    println!(
        "virtio-send: port ipackets={} opackets={} mbufs_in_use={in_use}",
        st.ipackets, st.opackets
    );
    if s != e {
        return Err("internal: digest of sent frames differs from the regenerated one".into());
    }
    if got != frames {
        return Err(format!("only {got} of {frames} frames came back within {seconds} s").into());
    }
    if s != r {
        return Err("SHA-256 of received frames differs from sent".into());
    }
    Ok(())
}
