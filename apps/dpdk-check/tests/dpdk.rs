//! DPDK on this machine, through Sluice's DPDK layer, in separate processes (EAL can be
//! initialised once per process): EAL init and ports, a clear error for an unknown port,
//! and frames across a virtio_user <-> net_vhost pair joined by a vhost-user socket.
//!
//! Needs root and hugepages (`scripts/setup.sh`); `scripts/test.sh` runs it.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_sluice-dpdk-check");

/// Waits for `child` at most `limit`, killing it past that; returns its output.
fn wait_bounded(mut child: Child, limit: Duration) -> (Output, bool) {
    let t0 = Instant::now();
    let mut timed_out = false;
    loop {
        if child.try_wait().expect("try_wait").is_some() {
            break;
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            timed_out = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = child.wait().expect("wait");
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    child.stdout.take().map(|mut s| s.read_to_end(&mut stdout));
    child.stderr.take().map(|mut s| s.read_to_end(&mut stderr));
    (
        Output {
            status,
            stdout,
            stderr,
        },
        timed_out,
    )
}

fn run(args: &[&str], limit: Duration) -> (String, String, bool) {
    let child = Command::new(BIN)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let (out, timed_out) = wait_bounded(child, limit);
    assert!(!timed_out, "{args:?} did not finish within {limit:?}");
    (
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
        out.status.success(),
    )
}

fn field<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.split_whitespace()
        .find_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
}

#[test]
fn eal_init_finds_a_vdev_and_configures_it() {
    let (out, err, ok) = run(
        &[
            "info",
            "--eal=--no-huge",
            "--eal=--no-pci",
            "--eal=--file-prefix=sluice-info",
            "--eal=-l",
            "--eal=0",
            "--vdev=net_null0",
            "--port=net_null0",
        ],
        Duration::from_secs(60),
    );
    assert!(ok, "info failed:\n{out}\n{err}");
    assert_eq!(field(&out, "ports"), Some("1"), "{out}");
    assert!(out.contains("driver=net_null"), "{out}");
    assert!(
        field(&out, "tsc_hz")
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            > 1_000_000,
        "{out}"
    );
    assert!(out.contains("configured=net_null0"), "{out}");
}

#[test]
fn an_unknown_port_is_a_clear_error() {
    let (out, err, ok) = run(
        &[
            "info",
            "--eal=--no-huge",
            "--eal=--no-pci",
            "--eal=--file-prefix=sluice-noport",
            "--eal=-l",
            "--eal=0",
            "--port=net_nosuch0",
        ],
        Duration::from_secs(60),
    );
    assert!(!ok, "an unknown port must fail:\n{out}");
    assert!(err.contains("no DPDK port named \"net_nosuch0\""), "{err}");
    assert!(err.contains("--vdev"), "the error says how to fix it: {err}");
}

#[test]
fn bad_eal_arguments_are_a_clear_error() {
    let (_, err, ok) = run(
        &["info", "--eal=--no-huge", "--eal=--no-such-eal-flag"],
        Duration::from_secs(60),
    );
    assert!(!ok);
    assert!(err.contains("rte_eal_init failed"), "{err}");
}

/// Frames across a virtio_user <-> net_vhost pair: every frame comes back intact
/// (SHA-256 of the sent and received streams), and no mbuf leaks.
fn virtio_pair(queues: u16, frames: u32, size: usize) {
    let sock = format!("/tmp/sluice-check-{}-{queues}.sock", std::process::id());
    let _ = std::fs::remove_file(&sock);
    let q = queues.to_string();
    let vhost = Command::new(BIN)
        .args(["vhost-echo", "--sock", &sock, "--queues", &q, "--seconds", "60"])
        .args([
            "--eal=--in-memory",
            "--eal=--single-file-segments",
            "--eal=--no-pci",
            "--eal=-l",
            "--eal=0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn vhost-echo");
    let t0 = Instant::now();
    while !Path::new(&sock).exists() && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let frames_s = frames.to_string();
    let size_s = size.to_string();
    let (out, err, ok) = run(
        &[
            "virtio-send",
            "--sock",
            &sock,
            "--queues",
            &q,
            "--frames",
            &frames_s,
            "--size",
            &size_s,
            "--seconds",
            "40",
            "--eal=--in-memory",
            "--eal=--single-file-segments",
            "--eal=--no-pci",
            "--eal=-l",
            "--eal=1",
        ],
        Duration::from_secs(90),
    );
    let (vout, vto) = wait_bounded(vhost, Duration::from_secs(20));
    let _ = std::fs::remove_file(&sock);
    let vstdout = String::from_utf8_lossy(&vout.stdout);
    let vstderr = String::from_utf8_lossy(&vout.stderr);
    assert!(
        ok,
        "virtio-send failed:\n{out}\n{err}\n--- vhost side:\n{vstdout}\n{vstderr}"
    );
    assert!(
        !vto && vout.status.success(),
        "vhost-echo did not stop cleanly:\n{vstdout}\n{vstderr}"
    );
    assert_eq!(field(&out, "received"), Some(frames_s.as_str()), "{out}");
    let sent = field(&out, "sha256_sent").expect("sent digest");
    assert_eq!(field(&out, "sha256_received"), Some(sent), "{out}");
    assert_eq!(
        field(&out, "mbufs_in_use"),
        Some("0"),
        "every mbuf returned to its pool: {out}"
    );
    let echoed: u32 = field(&vstdout, "echoed")
        .and_then(|v| v.parse().ok())
        .expect("echo count");
    assert!(
        echoed >= frames,
        "the vhost side echoed {echoed} of {frames}: {vstdout}"
    );
}

#[test]
fn virtio_vhost_pair_carries_frames_intact() {
    virtio_pair(1, 20_000, 1000);
}

#[test]
fn virtio_vhost_pair_small_and_full_size_frames() {
    virtio_pair(1, 5_000, 60);
    virtio_pair(1, 5_000, 1514);
}
