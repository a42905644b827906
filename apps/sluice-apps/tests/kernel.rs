//! The applications over the kernel's sockets on loopback: the same session logic as on
//! Sluice, driven by `--stack kernel`. Every wait is bounded.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use sluice_testkit::{count, field, Output, Proc};

const ECHO: &str = env!("CARGO_BIN_EXE_sluice-echo");
const HTTP: &str = env!("CARGO_BIN_EXE_sluice-http");
const BULK: &str = env!("CARGO_BIN_EXE_sluice-bulk");
const LOADGEN: &str = env!("CARGO_BIN_EXE_sluice-loadgen");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts a kernel-stack server on a free loopback port and waits until it accepts.
fn server(bin: &str, extra: &[&str]) -> (Proc, u16) {
    let port = free_port();
    let mut c = Command::new(bin);
    c.args([
        "--stack",
        "kernel",
        "--bind",
        "127.0.0.1",
        "--listen",
        &port.to_string(),
        "--seconds",
        "60",
    ]);
    c.args(extra);
    let mut p = Proc::spawn(c);
    let t0 = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(!p.exited(), "{bin} exited early");
        assert!(t0.elapsed() < Duration::from_secs(10), "{bin} did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    (p, port)
}

fn stop(p: Proc) -> Output {
    p.terminate();
    let out = p.wait(Duration::from_secs(10));
    assert!(
        out.success(),
        "did not stop cleanly on SIGTERM:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    out
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

#[test]
fn echo_round_trip() {
    let (p, port) = server(ECHO, &[]);
    let mut s = connect(port);
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let writer = {
        let mut w = s.try_clone().unwrap();
        let d = data.clone();
        std::thread::spawn(move || {
            w.write_all(&d).unwrap();
            w.shutdown(std::net::Shutdown::Write).unwrap();
        })
    };
    let mut back = Vec::new();
    s.read_to_end(&mut back).unwrap();
    writer.join().unwrap();
    assert_eq!(back.len(), data.len());
    assert!(back == data, "echoed bytes differ");
    let out = stop(p);
    assert!(
        out.stdout.contains("sluice-echo summary (stack kernel)"),
        "{}",
        out.stdout
    );
    assert_eq!(count(&out.stdout, "bytes_in"), 300_000, "{}", out.stdout);
    assert_eq!(count(&out.stdout, "bytes_out"), 300_000);
    assert_eq!(
        count(&out.stdout, "conns_opened"),
        count(&out.stdout, "conns_closed")
    );
}

fn http_exchange(port: u16, req: &[u8]) -> String {
    let mut s = connect(port);
    s.write_all(req).unwrap();
    let mut v = Vec::new();
    let _ = s.read_to_end(&mut v);
    String::from_utf8_lossy(&v).into_owned()
}

#[test]
fn http_raw_pipelining_and_errors() {
    let (p, port) = server(HTTP, &["--body-size", "5"]);
    let out = http_exchange(
        port,
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /bytes/3 HTTP/1.1\r\nHost: a\r\n\r\nPUT / HTTP/1.1\r\nHost: a\r\n\r\n\
GET /missing HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    let codes: Vec<&str> = out
        .match_indices("HTTP/1.1 ")
        .map(|(i, _)| &out[i + 9..i + 12])
        .collect();
    assert_eq!(codes, ["200", "200", "405", "404", "200"], "{out}");
    assert!(out.contains("\r\n\r\nabcde") && out.contains("\r\n\r\nabc"));
    let bad = http_exchange(port, b"BROKEN\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n");
    assert!(
        bad.starts_with("HTTP/1.1 400 ") && bad.matches("HTTP/1.1").count() == 1,
        "{bad}"
    );
    let big = format!("GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n", "x".repeat(50_000));
    assert!(http_exchange(port, big.as_bytes()).starts_with("HTTP/1.1 431 "));
    let out = stop(p);
    assert_eq!(count(&out.stdout, "requests"), 7, "{}", out.stdout);
    assert_eq!(count(&out.stdout, "errors"), 4, "{}", out.stdout);
}

fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn http_with_curl() {
    if !have("curl") {
        eprintln!("curl not found: skipped");
        return;
    }
    let dir = std::env::temp_dir().join(format!("sluice-apps-curl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("index.txt"), "file body\n").unwrap();
    let (p, port) = server(HTTP, &["--body-size", "1000", "--root", dir.to_str().unwrap()]);
    let base = format!("http://127.0.0.1:{port}");
    let curl = |args: &[&str]| {
        let mut c = Command::new("curl");
        c.args(["-s", "--max-time", "10"]).args(args);
        Proc::spawn(c).wait(Duration::from_secs(15))
    };
    let o = curl(&[
        "-w",
        "%{http_code} %{size_download}",
        "-o",
        "/dev/null",
        &format!("{base}/"),
    ]);
    assert_eq!(o.stdout, "200 1000", "{o:?}");
    let o = curl(&[&format!("{base}/index.txt")]);
    assert_eq!(o.stdout, "file body\n");
    let o = curl(&[
        "-w",
        "%{http_code}",
        "-o",
        "/dev/null",
        &format!("{base}/nothing"),
    ]);
    assert_eq!(o.stdout, "404");
    let o = curl(&[
        "-w",
        "%{http_code}",
        "-o",
        "/dev/null",
        "-X",
        "POST",
        &format!("{base}/"),
    ]);
    assert_eq!(o.stdout, "405");
    let o = curl(&[
        "-w",
        "%{http_code}",
        "-o",
        "/dev/null",
        "--path-as-is",
        &format!("{base}/../../etc/passwd"),
    ]);
    assert_eq!(o.stdout, "404");
    let o = curl(&["-I", &format!("{base}/bytes/123")]);
    assert!(o.stdout.contains("Content-Length: 123"), "{o:?}");
    // Two URLs on one command line: curl reuses the keep-alive connection.
    let o = curl(&[
        "-v",
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        &format!("{base}/bytes/10"),
        &format!("{base}/bytes/20"),
    ]);
    assert!(
        o.stderr.contains("Re-using existing connection") || o.stderr.contains("Reusing existing"),
        "{}",
        o.stderr
    );
    let out = stop(p);
    // Seven curl connections (the last two URLs share one) and the readiness probe.
    assert_eq!(count(&out.stdout, "conns_opened"), 8, "{}", out.stdout);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn bulk_send_to_recv_digests_match() {
    let port = free_port();
    let mut c = Command::new(BULK);
    c.args([
        "recv",
        "--stack",
        "kernel",
        "--bind",
        "127.0.0.1",
        "--listen",
        &port.to_string(),
    ]);
    c.args(["--bytes", "50000000", "--seed", "7", "--seconds", "60"]);
    let recv = Proc::spawn(c);
    // The sender retries its connect until the receiver listens.
    std::thread::sleep(Duration::from_millis(200));
    let mut c = Command::new(BULK);
    c.args([
        "send",
        "--stack",
        "kernel",
        "--connect",
        &format!("127.0.0.1:{port}"),
    ]);
    c.args(["--bytes", "50000000", "--seed", "7", "--seconds", "60"]);
    let send = Proc::spawn(c).wait(Duration::from_secs(90));
    let recv = recv.wait(Duration::from_secs(90));
    assert!(send.success(), "{}\n{}", send.stdout, send.stderr);
    assert!(recv.success(), "{}\n{}", recv.stdout, recv.stderr);
    let sent = field(&send.stdout, "sha256").unwrap();
    assert_eq!(field(&recv.stdout, "sha256"), Some(sent), "{}", recv.stdout);
    assert_eq!(field(&recv.stdout, "expected"), Some(sent));
    assert_eq!(field(&recv.stdout, "ok"), Some("true"));
    assert_eq!(count(&recv.stdout, "bytes"), 50_000_000);
    assert!(recv.stdout.contains("Gbit/s"));
}

#[test]
fn bulk_wrong_seed_fails() {
    let port = free_port();
    let mut c = Command::new(BULK);
    c.args([
        "send",
        "--stack",
        "kernel",
        "--bind",
        "127.0.0.1",
        "--listen",
        &port.to_string(),
    ]);
    c.args(["--bytes", "1000000", "--seed", "1", "--seconds", "30"]);
    let send = Proc::spawn(c);
    std::thread::sleep(Duration::from_millis(200));
    let mut c = Command::new(BULK);
    c.args([
        "recv",
        "--stack",
        "kernel",
        "--connect",
        &format!("127.0.0.1:{port}"),
    ]);
    c.args(["--bytes", "1000000", "--seed", "2", "--seconds", "30"]);
    let recv = Proc::spawn(c).wait(Duration::from_secs(40));
    let _ = send.wait(Duration::from_secs(40));
    assert!(!recv.success() && !recv.timed_out, "{}", recv.stdout);
    assert_eq!(field(&recv.stdout, "ok"), Some("false"), "{}", recv.stdout);
    assert!(recv.stdout.contains("first mismatch at"));
}

#[test]
fn loadgen_against_echo_and_http() {
    let (echo, port) = server(ECHO, &[]);
    let mut c = Command::new(LOADGEN);
    c.args(["--stack", "kernel", "--connect", &format!("127.0.0.1:{port}")]);
    c.args([
        "--connections",
        "4",
        "--request-size",
        "100",
        "--duration",
        "1.5",
        "--cores",
        "2",
        "--progress",
    ]);
    let lg = Proc::spawn(c).wait(Duration::from_secs(30));
    assert!(lg.success(), "{}\n{}", lg.stdout, lg.stderr);
    assert!(count(&lg.stdout, "requests") > 100, "{}", lg.stdout);
    assert_eq!(count(&lg.stdout, "errors"), 0, "{}", lg.stdout);
    assert_eq!(count(&lg.stdout, "conn_errors"), 0);
    assert!(count(&lg.stdout, "p50_ns") > 0 && count(&lg.stdout, "p999_ns") >= count(&lg.stdout, "p50_ns"));
    assert!(lg.stdout.contains("req/s"), "progress lines: {}", lg.stdout);
    assert!(lg.stdout.contains("p99.9"));
    let out = stop(echo);
    assert!(count(&out.stdout, "bytes_in") >= count(&lg.stdout, "requests") * 100);

    let (http, port) = server(HTTP, &["--body-size", "200"]);
    let mut c = Command::new(LOADGEN);
    c.args([
        "--stack",
        "kernel",
        "--connect",
        &format!("127.0.0.1:{port}"),
        "--http",
        "/",
    ]);
    c.args(["--connections", "3", "--pipeline", "4", "--duration", "1"]);
    let lg = Proc::spawn(c).wait(Duration::from_secs(30));
    assert!(lg.success(), "{}\n{}", lg.stdout, lg.stderr);
    assert!(count(&lg.stdout, "requests") > 100, "{}", lg.stdout);
    assert_eq!(count(&lg.stdout, "errors"), 0, "{}", lg.stdout);
    // Error responses are counted as errors.
    let mut c = Command::new(LOADGEN);
    c.args([
        "--stack",
        "kernel",
        "--connect",
        &format!("127.0.0.1:{port}"),
        "--http",
        "/nope",
    ]);
    c.args(["--connections", "1", "--duration", "0.5"]);
    let lg = Proc::spawn(c).wait(Duration::from_secs(30));
    assert!(lg.success());
    assert!(
        count(&lg.stdout, "errors") > 0 && count(&lg.stdout, "requests") == 0,
        "{}",
        lg.stdout
    );
    stop(http);
}

#[test]
fn help_works_for_every_binary() {
    for bin in [ECHO, HTTP, BULK, LOADGEN] {
        let o = Command::new(bin).arg("--help").output().unwrap();
        let s = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && s.contains("--stack") && s.contains("--progress"),
            "{bin}: {s}"
        );
    }
}
