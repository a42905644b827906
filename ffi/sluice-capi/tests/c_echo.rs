//! The C program `tests/c/echo.c`, compiled with `cc` against `include/sluice.h` and the
//! cdylib, run as a process whose stack exchanges IPv4 packets with this test over Unix
//! datagram sockets. The test plays the TCP client packet by packet (in real time).

mod common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use sluice_wire::{TcpFlags, TcpOptions};

const PP: u16 = 40000;
const PISN: u32 = 123_456;

fn compile(dir: &Path) -> PathBuf {
    let lib = lib_path();
    let libdir = lib.parent().unwrap();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = dir.join("echo");
    let out = Command::new("cc")
        .args(["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(manifest.join("include"))
        .arg(manifest.join("tests/c/echo.c"))
        .arg("-o")
        .arg(&exe)
        .arg("-L")
        .arg(libdir)
        .arg("-lsluice_capi")
        .arg(format!("-Wl,-rpath,{}", libdir.display()))
        .output()
        .expect("cc runs");
    assert!(
        out.status.success(),
        "cc failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// The next TCP segment from the stack, or None after `limit`.
fn recv(peer: &UnixDatagram, limit: Duration) -> Option<Seg> {
    let end = Instant::now() + limit;
    let mut buf = [0u8; 2048];
    while Instant::now() < end {
        if let Ok(n) = peer.recv(&mut buf) {
            return Some(parse_tcp(&buf[..n]));
        }
    }
    None
}

#[test]
fn c_echo_server() {
    let dir = std::env::temp_dir().join(format!("sluice-capi-echo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = compile(&dir);
    let (stack_path, peer_path) = (dir.join("stack.sock"), dir.join("peer.sock"));
    let _ = std::fs::remove_file(&peer_path);
    let peer = UnixDatagram::bind(&peer_path).unwrap();
    peer.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let child = Command::new(&exe)
        .arg(&stack_path)
        .arg(&peer_path)
        .arg(PLAIN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("echo starts");
    let send = |seg: &Seg| {
        let _ = peer.send_to(&tcp_packet(seg), &stack_path);
    };

    // SYN until the listener is up (before that: RST, or no socket yet).
    let mut synack = None;
    for _ in 0..200 {
        send(&Seg::new(PP, 7, TcpFlags::SYN, PISN, None).mss(1460));
        match recv(&peer, Duration::from_millis(50)) {
            Some(s) if s.flags == TcpFlags::SYN => {
                synack = Some(s);
                break;
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let sa = synack.expect("a SYN-ACK from the C program's stack");
    let iss = sa.seq;
    let mss = TcpOptions {
        mss: Some(1460),
        ..TcpOptions::default()
    };
    assert_eq!(
        (sa.src_port, sa.dst_port, sa.ack, sa.window, sa.options),
        (7, PP, Some(PISN + 1), 65535, mss)
    );
    send(&Seg::new(PP, 7, 0, PISN + 1, Some(iss + 1)));

    let msg = b"hello, sluice, from a C program";
    let n = msg.len() as u32;
    send(&Seg::new(PP, 7, TcpFlags::PSH, PISN + 1, Some(iss + 1)).data(msg));
    let mut echoed = Vec::new();
    let end = Instant::now() + Duration::from_secs(10);
    while echoed.len() < msg.len() && Instant::now() < end {
        let Some(s) = recv(&peer, Duration::from_millis(100)) else {
            continue;
        };
        assert_eq!((s.src_port, s.dst_port), (7, PP));
        assert!(s.ack.is_some_and(|a| a <= PISN + 1 + n));
        let off = s.seq.wrapping_sub(iss + 1) as usize;
        if off == echoed.len() && !s.payload.is_empty() {
            echoed.extend_from_slice(&s.payload);
            send(&Seg::new(
                PP,
                7,
                0,
                PISN + 1 + n,
                Some(iss + 1 + echoed.len() as u32),
            ));
        }
    }
    assert_eq!(echoed, msg);

    // Close: our FIN, then the server's once it read the end.
    send(&Seg::new(PP, 7, TcpFlags::FIN, PISN + 1 + n, Some(iss + 1 + n)));
    let mut fin = None;
    let end = Instant::now() + Duration::from_secs(10);
    while fin.is_none() && Instant::now() < end {
        if let Some(s) = recv(&peer, Duration::from_millis(100)) {
            if s.flags & TcpFlags::FIN != 0 {
                fin = Some(s);
            }
        }
    }
    let fin = fin.expect("the server's FIN");
    assert_eq!((fin.seq, fin.ack), (iss + 1 + n, Some(PISN + 2 + n)));
    send(&Seg::new(PP, 7, 0, PISN + 2 + n, Some(iss + 2 + n)));

    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "echo failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("accepted 198.18.0.2:40000"), "{stdout}");
    assert!(stdout.contains(&format!("echoed {n} bytes")), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}
