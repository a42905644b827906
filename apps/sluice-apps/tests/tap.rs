//! The applications on Sluice over `net_tap`, inside a network namespace the test creates
//! (root, DPDK): the kernel in the namespace is the peer, at 198.18.0.1, Sluice at
//! 198.18.0.2. Every wait is bounded; the namespace is deleted even when a test fails.

use std::process::Command;
use std::time::Duration;

use sluice_testkit::{count, field, Netns, Output, Proc};

const ECHO: &str = env!("CARGO_BIN_EXE_sluice-echo");
const HTTP: &str = env!("CARGO_BIN_EXE_sluice-http");
const BULK: &str = env!("CARGO_BIN_EXE_sluice-bulk");
const LOADGEN: &str = env!("CARGO_BIN_EXE_sluice-loadgen");

fn root() -> bool {
    let ok = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if !ok {
        eprintln!("not root: skipped");
    }
    ok
}

/// Starts `bin args` on Sluice in a new namespace and brings up the kernel's side of sl0.
fn sluice(tag: &str, bin: &str, args: &[&str]) -> (Netns, Proc) {
    let ns = Netns::new(tag);
    let mut c = ns.cmd(bin);
    c.args(["--stack", "sluice", "--port", "tap:sl0", "--ip", "198.18.0.2/24"])
        .args(args);
    let mut p = Proc::spawn(c);
    assert!(
        ns.wait_link("sl0", Duration::from_secs(20)),
        "the tap interface did not appear"
    );
    assert!(!p.exited(), "{bin} exited early");
    ns.ip(&["addr", "add", "198.18.0.1/24", "dev", "sl0"]);
    ns.ip(&["link", "set", "sl0", "up"]);
    (ns, p)
}

fn stop(p: Proc) -> Output {
    p.terminate();
    let out = p.wait(Duration::from_secs(15));
    assert!(
        out.success(),
        "did not stop cleanly on SIGTERM:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    out
}

/// Waits until the server at 198.18.0.2:port answers a TCP connect from the namespace.
fn wait_port(ns: &Netns, port: u16) {
    let probe = format!(
        "import socket,time\nfor i in range(100):\n  try:\n    socket.create_connection(('198.18.0.2',{port}),0.5).close(); break\n  except OSError: time.sleep(0.1)\n"
    );
    ns.run("python3", &["-c", &probe], Duration::from_secs(20));
}

#[test]
fn http_on_sluice_with_curl_and_kernel_loadgen() {
    if !root() {
        return;
    }
    let (ns, p) = sluice(
        "apps-http",
        HTTP,
        &["--listen", "80", "--body-size", "1000", "--seconds", "60"],
    );
    wait_port(&ns, 80);
    let curl = |url: &str| {
        ns.run(
            "curl",
            &[
                "-s",
                "--max-time",
                "10",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{size_download}",
                url,
            ],
            Duration::from_secs(15),
        )
    };
    assert_eq!(curl("http://198.18.0.2/").stdout, "200 1000");
    assert_eq!(curl("http://198.18.0.2/bytes/3000000").stdout, "200 3000000");
    assert_eq!(curl("http://198.18.0.2/nothing").stdout, "404 10");
    let lg = ns.run(
        LOADGEN,
        &[
            "--stack",
            "kernel",
            "--connect",
            "198.18.0.2:80",
            "--http",
            "/",
            "--connections",
            "4",
            "--duration",
            "1.5",
        ],
        Duration::from_secs(30),
    );
    assert!(lg.success(), "{}\n{}", lg.stdout, lg.stderr);
    assert!(count(&lg.stdout, "requests") > 100, "{}", lg.stdout);
    assert_eq!(count(&lg.stdout, "errors"), 0, "{}", lg.stdout);
    let out = stop(p);
    assert!(out.stdout.contains("sluice engine, per core"), "{}", out.stdout);
    assert!(
        count(&out.stdout, "requests") >= count(&lg.stdout, "requests"),
        "{}",
        out.stdout
    );
    assert!(count(&out.stdout, "rx_packets") > 0);
}

#[test]
fn echo_on_sluice_with_kernel_loadgen() {
    if !root() {
        return;
    }
    let (ns, p) = sluice("apps-echo", ECHO, &["--listen", "7", "--seconds", "60"]);
    wait_port(&ns, 7);
    let lg = ns.run(
        LOADGEN,
        &[
            "--stack",
            "kernel",
            "--connect",
            "198.18.0.2:7",
            "--request-size",
            "1000",
            "--connections",
            "4",
            "--duration",
            "1.5",
        ],
        Duration::from_secs(30),
    );
    assert!(lg.success(), "{}\n{}", lg.stdout, lg.stderr);
    assert!(count(&lg.stdout, "requests") > 100, "{}", lg.stdout);
    assert_eq!(count(&lg.stdout, "errors"), 0, "{}", lg.stdout);
    let out = stop(p);
    assert!(
        count(&out.stdout, "bytes_in") >= count(&lg.stdout, "requests") * 1000,
        "{}",
        out.stdout
    );
}

/// sluice-loadgen on Sluice (`sluice_args`) against the kernel's echo server (bound with
/// `bind`) in a new namespace, whose side of sl0 gets `kernel_addr`; the loadgen's output.
fn loadgen_against_kernel_echo(tag: &str, bind: &str, sluice_args: &[&str], kernel_addr: &[&str]) -> Output {
    let ns = Netns::new(tag);
    // The kernel's echo server in the namespace, on the kernel's side of sl0.
    let mut c = ns.cmd(ECHO);
    c.args([
        "--stack",
        "kernel",
        "--listen",
        "7007",
        "--bind",
        bind,
        "--seconds",
        "60",
    ]);
    let echo = Proc::spawn(c);
    let mut c = ns.cmd(LOADGEN);
    c.args(["--stack", "sluice", "--port", "tap:sl0", "--ip", "198.18.0.2/24"]);
    c.args(sluice_args);
    c.args(["--connections", "4", "--request-size", "200", "--duration", "4"]);
    let lg = Proc::spawn(c);
    assert!(
        ns.wait_link("sl0", Duration::from_secs(20)),
        "the tap interface did not appear"
    );
    ns.ip(kernel_addr);
    ns.ip(&["link", "set", "sl0", "up"]);
    let lg = lg.wait(Duration::from_secs(40));
    assert!(lg.success(), "{}\n{}", lg.stdout, lg.stderr);
    assert!(count(&lg.stdout, "requests") > 100, "{}", lg.stdout);
    assert_eq!(count(&lg.stdout, "errors"), 0, "{}", lg.stdout);
    stop(echo);
    lg
}

#[test]
fn loadgen_on_sluice_against_kernel_echo() {
    if !root() {
        return;
    }
    let lg = loadgen_against_kernel_echo(
        "apps-lg",
        "0.0.0.0",
        &["--connect", "198.18.0.1:7007"],
        &["addr", "add", "198.18.0.1/24", "dev", "sl0"],
    );
    // It stopped when its 4 s were up: net_tap's per-packet signals must not stretch the
    // supervising thread's sleeps (they once made a 20 ms sleep last a minute).
    let secs: f64 = field(&lg.stdout, "seconds")
        .and_then(|s| s.parse().ok())
        .unwrap_or(99.0);
    assert!(secs < 8.0, "ran {secs} s for a 4 s run:\n{}", lg.stdout);
    assert!(lg.stdout.contains("p99.9"));
}

fn bulk_pair(tag: &str, sluice_mode: &str, kernel_mode: &str) {
    let (ns, p) = sluice(
        tag,
        BULK,
        &[
            sluice_mode,
            "--listen",
            "9000",
            "--bytes",
            "20000000",
            "--seed",
            "3",
            "--seconds",
            "60",
        ],
    );
    let k = ns.run(
        BULK,
        &[
            kernel_mode,
            "--stack",
            "kernel",
            "--connect",
            "198.18.0.2:9000",
            "--bytes",
            "20000000",
            "--seed",
            "3",
            "--seconds",
            "60",
        ],
        Duration::from_secs(70),
    );
    let s = p.wait(Duration::from_secs(30));
    assert!(k.success(), "kernel side:\n{}\n{}", k.stdout, k.stderr);
    assert!(s.success(), "sluice side:\n{}\n{}", s.stdout, s.stderr);
    assert_eq!(
        field(&k.stdout, "sha256"),
        field(&s.stdout, "sha256"),
        "{}\n{}",
        k.stdout,
        s.stdout
    );
    let recv = if sluice_mode == "recv" {
        &s.stdout
    } else {
        &k.stdout
    };
    assert_eq!(field(recv, "ok"), Some("true"), "{recv}");
    assert_eq!(count(recv, "bytes"), 20_000_000);
}

#[test]
fn bulk_kernel_to_sluice() {
    if root() {
        bulk_pair("apps-bulk-in", "recv", "send");
    }
}

#[test]
fn bulk_sluice_to_kernel() {
    if root() {
        bulk_pair("apps-bulk-out", "send", "recv");
    }
}

/// An application that cannot start (here: a listener on port 0) fails the whole run:
/// the program exits non-zero and says why, without a Debug dump.
#[test]
fn a_listener_that_cannot_bind_fails_the_run() {
    if !root() {
        return;
    }
    let out = echo_to_the_end("bindfail", &["--listen", "0"]);
    assert!(!out.timed_out, "did not exit by itself");
    assert!(!out.success(), "exited 0:\n{}\n{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains("sluice-echo: core 0: cannot listen on port 0"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("App {"), "Debug output: {}", out.stderr);
}

/// A clean exit leaves nothing in /var/run/dpdk: the runtime directory of the default
/// file prefix (`sluice-PID`, several MB with --no-huge) is removed.
#[test]
fn a_clean_exit_removes_its_runtime_directory() {
    if !root() {
        return;
    }
    // EAL names its runtime directory at its info level (below the default notice).
    let out = echo_to_the_end(
        "rundir",
        &["--listen", "7", "--seconds", "1", "--eal=--log-level=7"],
    );
    assert!(out.success(), "{}\n{}", out.stdout, out.stderr);
    let dir = out
        .stderr
        .split_whitespace()
        .find(|w| w.starts_with("/var/run/dpdk/sluice-"))
        .map(|w| w.trim_end_matches("/mp_socket").to_string())
        .expect("EAL names its runtime directory");
    assert!(!std::path::Path::new(&dir).exists(), "{dir} left behind");
}

/// Runs sluice-echo on Sluice over tap:sl0 in a new namespace with `args` until it exits
/// by itself (bounded).
fn echo_to_the_end(tag: &str, args: &[&str]) -> Output {
    let ns = Netns::new(tag);
    let mut c = ns.cmd(ECHO);
    c.args(["--stack", "sluice", "--port", "tap:sl0", "--ip", "198.18.0.2/24"])
        .args(args);
    Proc::spawn(c).wait(Duration::from_secs(30))
}

/// `sluice-http`'s defences against greedy clients, from the kernel's side: a slowloris
/// head and an idle keep-alive connection are closed at their timeouts, a client that
/// never reads its 4 MiB download is reset at the send timeout, and a fresh client still
/// gets that file intact (SHA-256), streamed from disk.
#[test]
fn http_timeouts_and_a_streamed_file() {
    if !root() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("sluice-http-timeouts-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // 4 MiB of varied bytes, and its digest as Python computes it.
    let data = sluice_testkit::xorshift_bytes(4 << 20);
    std::fs::write(dir.join("big.bin"), &data).unwrap();
    let root = dir.to_str().unwrap();
    let (ns, p) = sluice(
        "apps-http-to",
        HTTP,
        &[
            "--listen",
            "80",
            "--root",
            root,
            "--header-timeout",
            "1",
            "--keepalive-timeout",
            "1",
            "--send-timeout",
            "2",
            "--recv-buffer",
            "65536",
            "--send-buffer",
            "65536",
            "--seconds",
            "60",
        ],
    );
    wait_port(&ns, 80);
    let script = format!(
        r#"
import hashlib, socket, time
def closed_after(s, limit):
    t0 = time.time()
    s.settimeout(limit)
    try:
        while s.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return time.time() - t0
# A slowloris head: closed about 1 s after its first byte.
s = socket.create_connection(('198.18.0.2', 80))
s.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n')
print('slowloris', round(closed_after(s, 8), 2))
# One request, then idle: closed about 1 s after it.
s = socket.create_connection(('198.18.0.2', 80))
s.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
time.sleep(0.2)
print('idle', round(closed_after(s, 8), 2))
# A client that never reads its 4 MiB download: reset about 2 s after it stalls.
s = socket.create_connection(('198.18.0.2', 80))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.sendall(b'GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n')
time.sleep(5)
got = 0
reset = False
s.settimeout(5)
try:
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        got += len(b)
except (ConnectionResetError, socket.timeout):
    reset = True
print('stalled_reset', reset, got < {len})
# A fresh client gets the file intact.
s = socket.create_connection(('198.18.0.2', 80))
s.sendall(b'GET /big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
buf = b''
s.settimeout(20)
while True:
    b = s.recv(1 << 20)
    if not b:
        break
    buf += b
body = buf.split(b'\r\n\r\n', 1)[1]
print('download', len(body), hashlib.sha256(body).hexdigest())
"#,
        len = data.len()
    );
    let out = ns.run("python3", &["-c", &script], Duration::from_secs(60));
    let text = out.stdout.clone();
    let secs = |key: &str| -> f64 {
        field(&text.replace(' ', "="), key)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{key} in {text}\n{}", out.stderr))
    };
    let slow = secs("slowloris");
    assert!(
        (0.5..4.0).contains(&slow),
        "slowloris closed after {slow} s:\n{text}"
    );
    let idle = secs("idle");
    assert!((0.5..4.0).contains(&idle), "idle closed after {idle} s:\n{text}");
    assert!(text.contains("stalled_reset True True"), "{text}\n{}", out.stderr);
    use sha2::Digest;
    let want = format!("download {} {:x}", data.len(), sha2::Sha256::digest(&data));
    assert!(text.contains(&want), "{text}\n{}", out.stderr);
    let out = stop(p);
    assert!(count(&out.stdout, "timeouts") >= 3, "{}", out.stdout);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `sluice-stat` reads a running server through DPDK telemetry: its counters, its
/// connections (two Python clients, established, to port 7), its configuration; and the
/// progress lines carry retransmissions.
#[test]
fn sluice_stat_sees_a_running_server() {
    if !root() {
        return;
    }
    const STAT: &str = env!("CARGO_BIN_EXE_sluice-stat");
    let (ns, p) = sluice(
        "apps-stat",
        ECHO,
        &["--listen", "7", "--seconds", "60", "--progress"],
    );
    wait_port(&ns, 7);
    let clients = ns.cmd("python3");
    let mut clients = clients;
    clients.args([
        "-c",
        "import socket,time\ncs=[socket.create_connection(('198.18.0.2',7)) for _ in range(2)]\nfor c in cs:\n  c.sendall(b'ping'); c.recv(4)\ntime.sleep(8)\n",
    ]);
    let clients = Proc::spawn(clients);
    std::thread::sleep(Duration::from_secs(2));
    let pid = p.id().to_string();
    let run = |args: &[&str]| {
        let mut c = Command::new(STAT);
        c.args(["--pid", &pid]).args(args);
        Proc::spawn(c).wait(Duration::from_secs(20))
    };
    let counters = run(&[]);
    assert!(counters.success(), "{}\n{}", counters.stdout, counters.stderr);
    let line = |key: &str| {
        counters
            .stdout
            .lines()
            .find_map(|l| {
                l.split_whitespace()
                    .collect::<Vec<_>>()
                    .get(..2)
                    .filter(|w| w[0] == key)
                    .map(|w| w[1].to_string())
            })
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert!(line("rx_packets") > 0, "{}", counters.stdout);
    assert_eq!(line("conns_established"), 2, "{}", counters.stdout);
    // The two clients, and wait_port's probe.
    assert_eq!(line("tcp_accepted"), 3, "{}", counters.stdout);
    let conns = run(&["--conns"]);
    assert!(conns.success(), "{}", conns.stderr);
    let rows: Vec<&str> = conns
        .stdout
        .lines()
        .filter(|l| l.contains("established"))
        .collect();
    assert_eq!(rows.len(), 2, "{}", conns.stdout);
    assert!(rows
        .iter()
        .all(|r| r.contains("198.18.0.2:7") && r.contains("198.18.0.1:")));
    assert!(conns.stdout.contains("2 connection(s)"), "{}", conns.stdout);
    let config = run(&["--config"]);
    assert!(config.stdout.contains("net_tap"), "{}", config.stdout);
    // Under load (a kernel loadgen, 4 connections): the counters grow between two reads,
    // and the connection count follows.
    let mut lg = ns.cmd(LOADGEN);
    lg.args([
        "--stack",
        "kernel",
        "--connect",
        "198.18.0.2:7",
        "--connections",
        "4",
        "--duration",
        "4",
    ]);
    let lg = Proc::spawn(lg);
    std::thread::sleep(Duration::from_millis(1500));
    let rx = |out: &Output, key: &str| {
        out.stdout
            .lines()
            .find_map(|l| {
                let w: Vec<&str> = l.split_whitespace().collect();
                (w.first() == Some(&key)).then(|| w.get(1).and_then(|v| v.parse::<u64>().ok()))?
            })
            .unwrap_or(0)
    };
    let a = run(&[]);
    std::thread::sleep(Duration::from_millis(700));
    let b = run(&[]);
    assert!(
        rx(&b, "rx_packets") > rx(&a, "rx_packets") + 100,
        "{}\n{}",
        a.stdout,
        b.stdout
    );
    assert_eq!(
        rx(&b, "conns_established"),
        6,
        "two clients and the loadgen's four: {}",
        b.stdout
    );
    let _ = lg.wait(Duration::from_secs(20));
    let watch = run(&["--watch", "1"]);
    assert!(watch.stdout.contains("rx pkt/s"), "{}", watch.stdout);
    // A process that is not there is a clear error.
    let mut c = Command::new(STAT);
    c.args(["--pid", "999999999"]);
    let none = Proc::spawn(c).wait(Duration::from_secs(10));
    assert!(
        !none.success() && none.stderr.contains("sluice-999999999"),
        "{}",
        none.stderr
    );
    let _ = clients.wait(Duration::from_secs(20));
    let out = stop(p);
    assert!(
        out.stdout.contains("retransmits"),
        "progress lines: {}",
        out.stdout
    );
}

/// A second process on the same tap name is refused with the reason (net_tap would
/// attach to the first one's interface and take half its traffic).
#[test]
fn a_second_process_on_the_same_tap_is_refused() {
    if !root() {
        return;
    }
    let (ns, p) = sluice("apps-tap2", ECHO, &["--listen", "7", "--seconds", "30"]);
    wait_port(&ns, 7);
    let second = ns.run(
        ECHO,
        &[
            "--stack",
            "sluice",
            "--port",
            "tap:sl0",
            "--ip",
            "198.18.0.3/24",
            "--listen",
            "7",
            "--seconds",
            "5",
        ],
        Duration::from_secs(20),
    );
    assert!(!second.success(), "{}\n{}", second.stdout, second.stderr);
    assert!(
        second.stderr.contains("exists already")
            && second.stderr.contains("tap:OTHER")
            && second.stderr.contains(&format!("process {} holds it", p.id())),
        "{}",
        second.stderr
    );
    // The first one still serves.
    wait_port(&ns, 7);
    stop(p);
}

/// `--pcap FILE` writes what the server receives and sends in pcapng; tcpdump reads it
/// back and finds the handshake (SYN, SYN-ACK, ACK) and the echoed bytes.
#[test]
fn pcap_capture_is_read_back_by_tcpdump() {
    if !root() {
        return;
    }
    let file = std::env::temp_dir().join(format!("sluice-cap-{}.pcapng", std::process::id()));
    let path = file.to_str().unwrap().to_string();
    let (ns, p) = sluice(
        "apps-pcap",
        ECHO,
        &["--listen", "7", "--seconds", "30", "--pcap", &path],
    );
    wait_port(&ns, 7);
    let out = ns.run(
        "python3",
        &[
            "-c",
            "import socket\ns=socket.create_connection(('198.18.0.2',7))\ns.sendall(b'capture-me')\nprint(s.recv(64))\ns.close()",
        ],
        Duration::from_secs(20),
    );
    assert!(
        out.stdout.contains("capture-me"),
        "{}\n{}",
        out.stdout,
        out.stderr
    );
    stop(p);
    let td = Proc::spawn({
        let mut c = Command::new("tcpdump");
        c.args(["-nn", "-A", "-r", &path, "tcp port 7"]);
        c
    })
    .wait(Duration::from_secs(20));
    assert!(td.success(), "tcpdump: {}\n{}", td.stdout, td.stderr);
    let lines: Vec<&str> = td.stdout.lines().collect();
    let syn = lines.iter().position(|l| l.contains("> 198.18.0.2.7: Flags [S]"));
    let synack = lines
        .iter()
        .position(|l| l.contains("198.18.0.2.7 > ") && l.contains("Flags [S.]"));
    assert!(syn.is_some() && synack.is_some() && syn < synack, "{}", td.stdout);
    assert!(
        td.stdout.matches("capture-me").count() >= 2,
        "request and echo: {}",
        td.stdout
    );
    let _ = std::fs::remove_file(&file);
}

/// Memory comes back: 300 clients ask `sluice-http` for an 8 MB file and never read, which
/// holds send buffers and file chunks; once they reset, the server's RSS returns within
/// 40 MiB of where it started (the freed buffers go back to the OS, not only to the
/// allocator). RSS is read before, at the peak and after.
#[test]
fn memory_held_by_greedy_clients_comes_back() {
    if !root() {
        return;
    }
    let (before, peak, after, _) = greedy_clients("apps-rss", &[]);
    assert!(peak > before + 50, "the clients held memory: {before} -> {peak}");
    assert!(
        after <= before + 40,
        "RSS came back: {before} -> {peak} -> {after}"
    );
}

/// With a 16 MiB budget, 300 clients that never read hold at most that much of the
/// server's connection buffers (the file's chunks the app holds come on top), growths
/// past it are refused, and the memory comes back when they go.
#[test]
fn a_memory_budget_caps_what_greedy_clients_hold() {
    if !root() {
        return;
    }
    let (before, peak, after, summary) = greedy_clients("apps-budget", &["--mem-budget-mb", "16"]);
    let line = summary
        .lines()
        .find(|l| l.contains("core 0 memory"))
        .unwrap_or_else(|| panic!("no memory line:\n{summary}"));
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    // "core 0 memory  U KiB of connection buffers, at most P KiB, R growths refused"
    let (used, most, refused) = (nums[1], nums[2], nums[3]);
    eprintln!("{line}");
    assert!(most <= 16 * 1024, "at most the budget: {line}");
    assert!(most > 8 * 1024, "the clients filled it: {line}");
    assert!(refused > 0, "growths were refused: {line}");
    assert_eq!(used, 0, "nothing held at the end: {line}");
    assert!(
        summary.contains("late refused"),
        "a new client is refused while it is exhausted"
    );
    assert!(
        peak <= before + 16 + 40,
        "RSS bounded by the budget: {before} -> {peak}"
    );
    assert!(
        after <= before + 40,
        "RSS came back: {before} -> {peak} -> {after}"
    );
}

/// `sluice-http` with `args` serves an 8 MiB file to 300 clients that never read (4 KiB
/// receive buffers), which then reset; a fresh client then gets the file intact. Returns
/// the server's RSS in MiB before, at the peak and after, and its printed summary.
fn greedy_clients(tag: &str, args: &[&str]) -> (u64, u64, u64, String) {
    let dir = std::env::temp_dir().join(format!("sluice-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file: Vec<u8> = (0..8u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    std::fs::write(dir.join("big.bin"), &file).unwrap();
    let root = dir.to_str().unwrap().to_string();
    let mut all = vec!["--listen", "80", "--root", &root, "--seconds", "60"];
    all.extend_from_slice(args);
    let (ns, p) = sluice(tag, HTTP, &all);
    wait_port(&ns, 80);
    let script = format!(
        r#"
import socket, time, hashlib
def rss():
    for l in open('/proc/{pid}/status'):
        if l.startswith('VmRSS'): return int(l.split()[1]) // 1024
print('before', rss(), flush=True)
cs = []
for i in range(300):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(('198.18.0.2', 80)); cs.append(s)
for s in cs:
    s.sendall(b'GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n')
time.sleep(3)
print('peak', rss(), flush=True)
try:
    socket.create_connection(('198.18.0.2', 80), timeout=2).close()
    print('late connected', flush=True)
except OSError:
    print('late refused', flush=True)
for s in cs:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b'\x01\x00\x00\x00\x00\x00\x00\x00'); s.close()
time.sleep(4)
print('after', rss(), flush=True)
s = socket.create_connection(('198.18.0.2', 80), timeout=30)
s.sendall(b'GET /big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
data = b''
while True:
    b = s.recv(1 << 20)
    if not b: break
    data += b
body = data.split(b'\r\n\r\n', 1)[1]
print('fresh', hashlib.sha256(body).hexdigest(), flush=True)
"#,
        pid = p.id()
    );
    let out = ns.run("python3", &["-c", &script], Duration::from_secs(90));
    let mib = |k: &str| -> u64 {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(k).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("{k}: {}\n{}", out.stdout, out.stderr))
    };
    let (before, peak, after) = (mib("before"), mib("peak"), mib("after"));
    eprintln!("RSS MiB: before {before}, peak {peak}, after {after}");
    use sha2::Digest;
    let want = format!("{:x}", sha2::Sha256::digest(&file));
    let fresh = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("fresh "))
        .unwrap_or("");
    assert_eq!(
        fresh, want,
        "a fresh client gets the file intact:\n{}\n{}",
        out.stdout, out.stderr
    );
    let late = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("late "))
        .unwrap_or("")
        .to_string();
    let summary = stop(p);
    let _ = std::fs::remove_dir_all(&dir);
    (before, peak, after, format!("late {late}\n{}", summary.stdout))
}

/// A hostile network against `sluice-http` over the tap (`tests/py/hostile.py`, raw
/// sockets from the kernel's side): out-of-window ACK floods get a trickle of answers,
/// blind RST/SYN/data floods leave a live download intact, a spoofed "fragmentation
/// needed" quoting a sequence number never sent changes nothing, a SYN flood from spoofed
/// sources and SYN+FINs are absorbed, 3,000 malformed packets are counted drops, a
/// thousand server-closed connections stay under the TIME-WAIT cap; then a fresh client
/// gets the file intact and the server stops cleanly.
#[test]
fn a_hostile_network_against_sluice_http() {
    if !root() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("sluice-hostile-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file: Vec<u8> = (0..4u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    std::fs::write(dir.join("big.bin"), &file).unwrap();
    std::fs::write(dir.join("small.txt"), b"hello\n").unwrap();
    let root = dir.to_str().unwrap().to_string();
    let (ns, p) = sluice(
        "apps-hostile",
        HTTP,
        &[
            "--listen",
            "80",
            "--root",
            &root,
            "--seconds",
            "240",
            "--max-time-wait",
            "200",
        ],
    );
    wait_port(&ns, 80);
    use sha2::Digest;
    let want = format!("{:x}", sha2::Sha256::digest(&file));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/hostile.py");
    let out = ns.run("python3", &[script, &want], Duration::from_secs(180));
    eprintln!("{}\n{}", out.stdout, out.stderr);
    let value = |k: &str| -> u64 {
        out.stdout
            .lines()
            .find_map(|l| l.strip_prefix(k).and_then(|v| v.trim().parse::<f64>().ok()))
            .unwrap_or_else(|| panic!("{k}: {}\n{}", out.stdout, out.stderr)) as u64
    };
    let answered = value("ooo_acks_answered ");
    assert!(
        (1..=3).contains(&answered),
        "1,000 out-of-window ACKs get a trickle back: {answered}"
    );
    assert_eq!(
        value("live_sha256_ok "),
        1,
        "the live connection's download is intact"
    );
    assert!(
        value("live_max_segment ") > 1000,
        "a forged PMTU message changed nothing"
    );
    assert_eq!(value("syn_fin_answered "), 0, "SYN+FIN gets no SYN-ACK");
    assert_eq!(value("churn_ok "), 1000, "every short connection served");
    assert_eq!(
        value("fresh_sha256_ok "),
        1,
        "a fresh client gets the file intact"
    );
    let summary = stop(p);
    let line = |k: &str| {
        summary
            .stdout
            .lines()
            .find(|l| l.contains(k))
            .unwrap_or_else(|| panic!("{k}: {}", summary.stdout))
            .to_string()
    };
    let drops = line("core 0 drops");
    eprintln!("{drops}\n{}", line("core 0 tcp"));
    for reason in ["checksum", "syn_fin"] {
        assert!(drops.contains(reason), "{reason} drops counted: {drops}");
    }
    let tcp = line("core 0 tcp");
    let recycled: u64 = tcp
        .split(", ")
        .find_map(|w| {
            w.strip_suffix(" TIME-WAIT recycled")
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or_else(|| panic!("{tcp}"));
    assert!(recycled >= 700, "TIME-WAIT held at its cap of 200: {tcp}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Twenty HTTP requests over one IPv6 connection, each answer read whole.
const PY6_CLIENT: &str = r"
import socket
s = socket.create_connection(('2001:2::2', 80), timeout=5)
assert s.family == socket.AF_INET6, s.family
print('peer', s.getpeername()[0])
for i in range(20):
    s.sendall(b'GET /bytes/1000 HTTP/1.1\r\nHost: x\r\n\r\n')
    buf = b''
    while b'\r\n\r\n' not in buf:
        buf += s.recv(65536)
    head, body = buf.split(b'\r\n\r\n', 1)
    while len(body) < 1000:
        body += s.recv(65536)
    assert head.startswith(b'HTTP/1.1 200'), head
print('answers', i + 1)
";

/// IPv6 against the kernel: `ping -6` and curl over IPv6 to the address given with
/// `--ip6` (the kernel learns Sluice's MAC by neighbour discovery, Sluice the kernel's from
/// its solicitation), one dual-stack listener serving an IPv4 and an IPv6 client at once
/// with the same bytes (SHA-256), and a Python client's request/response over IPv6.
#[test]
fn ipv6_against_the_kernel_ping_curl_and_a_dual_stack_listener() {
    if !root() {
        return;
    }
    let (ns, p) = sluice(
        "apps-ip6",
        HTTP,
        &["--listen", "80", "--seconds", "60", "--ip6", "2001:2::2/64"],
    );
    ns.ip(&["-6", "addr", "add", "2001:2::1/64", "dev", "sl0", "nodad"]);
    wait_port(&ns, 80);
    let ping = ns.run(
        "ping",
        &["-6", "-c", "3", "-W", "2", "2001:2::2"],
        Duration::from_secs(20),
    );
    assert!(
        ping.stdout.contains("3 received"),
        "{}\n{}",
        ping.stdout,
        ping.stderr
    );
    let neigh = ns.run(
        "ip",
        &["-6", "neigh", "show", "2001:2::2"],
        Duration::from_secs(5),
    );
    assert!(
        neigh.stdout.contains("lladdr"),
        "learned by NDP: {}",
        neigh.stdout
    );
    // The same 3 MB over both families at once, from one listener.
    let dir = std::env::temp_dir().join(format!("sluice-ip6-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (f4, f6) = (dir.join("v4"), dir.join("v6"));
    let script = format!(
        "curl -s --max-time 20 -o {} http://198.18.0.2/bytes/3000000 & \
         curl -6 -g -s --max-time 20 -o {} 'http://[2001:2::2]/bytes/3000000' & wait; \
         sha256sum {} {}",
        f4.display(),
        f6.display(),
        f4.display(),
        f6.display()
    );
    let both = ns.run("sh", &["-c", &script], Duration::from_secs(40));
    let sums: Vec<&str> = both
        .stdout
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(sums.len(), 2, "{}\n{}", both.stdout, both.stderr);
    assert_eq!(sums[0], sums[1], "the IPv4 and IPv6 downloads differ");
    for f in [&f4, &f6] {
        assert_eq!(
            std::fs::metadata(f).map(|m| m.len()).ok(),
            Some(3_000_000),
            "{f:?}"
        );
    }
    // A Python client over IPv6: its connection's names are IPv6, the answer complete.
    let py = ns.run("python3", &["-c", PY6_CLIENT], Duration::from_secs(20));
    assert!(
        py.stdout.contains("peer 2001:2::2"),
        "{}\n{}",
        py.stdout,
        py.stderr
    );
    assert!(py.stdout.contains("answers 20"), "{}\n{}", py.stdout, py.stderr);
    let out = stop(p);
    let line = |k: &str| {
        out.stdout
            .lines()
            .find(|l| l.contains(k))
            .unwrap_or_else(|| panic!("{k}: {}", out.stdout))
            .to_string()
    };
    let nd = line("core 0 neighbours");
    let learned: u64 = nd
        .split("NDP ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(learned >= 1, "Sluice learned the kernel by NDP: {nd}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Sluice opening IPv6 connections: sluice-loadgen over IPv6 to the kernel's echo server
/// (bound to `::`), the kernel's address found by Sluice's own neighbour solicitation.
#[test]
fn loadgen_on_sluice_against_kernel_echo_over_ipv6() {
    if !root() {
        return;
    }
    let lg = loadgen_against_kernel_echo(
        "apps-lg6",
        "::",
        &["--ip6", "2001:2::2/64", "--connect", "[2001:2::1]:7007"],
        &["-6", "addr", "add", "2001:2::1/64", "dev", "sl0", "nodad"],
    );
    let nd = lg
        .stdout
        .lines()
        .find(|l| l.contains("core 0 neighbours"))
        .unwrap_or("")
        .to_string();
    assert!(
        !nd.contains("NDP 0 learned") && !nd.contains(" 0 solicitations"),
        "{nd}"
    );
}
