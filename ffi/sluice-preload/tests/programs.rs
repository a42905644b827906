//! Real, unmodified Linux programs on Sluice through `sluice-run`, each asserting what the
//! program itself prints: Python's http.server and a semantic suite written in Python,
//! curl, iperf3, redis (with redis-cli and redis-benchmark), nginx (with curl and wrk),
//! sockperf. Over `net_tap` in a namespace the test creates, against kernel peers; and
//! two `sluice-run`s over `virtio_user` <-> `net_vhost`.
//!
//! Needs root, DPDK and the programs (scripts/setup.sh installs them), and
//! `sluice-run` and `libsluice_preload.so` built in the same target directory (release):
//! `cargo build --release -p sluice-preload -p sluice-apps`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use sluice_testkit::{Netns, Output, Proc};

/// The stack's address on the tap link, and the kernel's.
const SLUICE_IP: &str = "198.18.0.2";
const KERNEL_IP: &str = "198.18.0.1";

/// `target/release` (or the CI's target directory): where this test binary's `deps/` is.
fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(Path::parent).unwrap().to_path_buf()
}

fn sluice_run() -> PathBuf {
    let p = bin_dir().join("sluice-run");
    assert!(
        p.is_file() && bin_dir().join("libsluice_preload.so").is_file(),
        "{} or libsluice_preload.so missing: cargo build --release -p sluice-preload -p sluice-apps",
        p.display()
    );
    p
}

fn need(program: &str) {
    let ok = Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "{program} is not installed: run scripts/setup.sh");
}

fn py(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(name)
        .display()
        .to_string()
}

/// A fresh directory of this test (`tag`) holding `sub/blob`, `n` varied bytes; the
/// directory and the bytes.
fn blob_dir(tag: &str, sub: &str, n: usize) -> (PathBuf, Vec<u8>) {
    let dir = std::env::temp_dir().join(format!("sluice-run-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(dir.join(sub)).unwrap();
    let blob = sluice_testkit::xorshift_bytes(n);
    std::fs::write(dir.join(sub).join("blob"), &blob).unwrap();
    (dir, blob)
}

fn sha256_hex(b: &[u8]) -> String {
    Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect()
}

/// A namespace whose `sl0` is the tap of a program run under `sluice-run` (Sluice at
/// 198.18.0.2), the kernel at 198.18.0.1.
struct TapRun {
    ns: Netns,
    prog: Option<Proc>,
}

impl TapRun {
    /// Starts `args` under `sluice-run` (flags `run_flags` first) in a new namespace,
    /// and the kernel's side of the link once the tap exists.
    fn start(tag: &str, run_flags: &[&str], args: &[&str], cwd: Option<&Path>) -> TapRun {
        TapRun::start_in(Netns::new(tag), run_flags, args, cwd)
    }

    /// As `start`, in a namespace prepared by the caller (a kernel server already
    /// listening on the wildcard address, say).
    fn start_in(ns: Netns, run_flags: &[&str], args: &[&str], cwd: Option<&Path>) -> TapRun {
        let mut cmd = ns.cmd(sluice_run().to_str().unwrap());
        cmd.args(["--port", "tap:sl0", "--ip", &format!("{SLUICE_IP}/24")]);
        cmd.args(run_flags).arg("--").args(args);
        if let Some(d) = cwd {
            cmd.current_dir(d);
        }
        let mut prog = Proc::spawn(cmd);
        if !ns.wait_link("sl0", Duration::from_secs(30)) || prog.exited() {
            let out = prog.wait(Duration::from_secs(2));
            panic!(
                "{args:?} under sluice-run did not bring its tap up:\n{}\n{}",
                out.stdout, out.stderr
            );
        }
        ns.ip(&["addr", "add", &format!("{KERNEL_IP}/24"), "dev", "sl0"]);
        ns.ip(&["link", "set", "sl0", "up"]);
        TapRun { ns, prog: Some(prog) }
    }

    /// Runs a kernel program in the namespace, within `limit`.
    fn kernel(&self, program: &str, args: &[&str], limit: Duration) -> Output {
        self.ns.run(program, args, limit)
    }

    /// Waits until `port` on Sluice's address accepts a kernel connection.
    fn wait_port(&self, port: u16) {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(20) {
            let probe = self.ns.run(
                "python3",
                &[
                    "-c",
                    &format!(
                        "import socket; socket.create_connection(('{SLUICE_IP}', {port}), timeout=1).close()"
                    ),
                ],
                Duration::from_secs(3),
            );
            if probe.success() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("nothing listens on {SLUICE_IP}:{port}");
    }

    /// Stops the program (SIGTERM, then SIGKILL after `limit`) and returns its output.
    fn stop(&mut self, limit: Duration) -> Output {
        let p = self.prog.take().unwrap();
        p.terminate();
        p.wait(limit)
    }
}

fn report(what: &str, o: &Output) -> String {
    format!(
        "--- {what} (status {:?}, timed out {}):\n{}\n{}",
        o.status, o.timed_out, o.stdout, o.stderr
    )
}

#[test]
fn semantics_seen_from_python() {
    need("python3");
    let ns_prog = TapRun::start(
        "run-sem",
        &["--quiet"],
        &[
            "python3",
            "-c",
            // Waits for the kernel peer (started once the tap is up), then runs the suite.
            &format!(
                "import socket, time, sys\n\
                 for _ in range(100):\n    \
                     try:\n        socket.create_connection(('{KERNEL_IP}', 7), timeout=1).close(); break\n    \
                     except OSError: time.sleep(0.2)\n\
                 sys.argv = ['semantics.py', '{KERNEL_IP}', '{SLUICE_IP}']\n\
                 exec(open('{}').read())",
                py("semantics.py")
            ),
        ],
        None,
    );
    let mut peer_cmd = ns_prog.ns.cmd("python3");
    peer_cmd.args([&py("peer.py"), KERNEL_IP]);
    let peer = Proc::spawn(peer_cmd);
    let mut t = ns_prog;
    let out = t.prog.take().unwrap().wait(Duration::from_secs(180));
    let peer_out = peer.wait(Duration::from_millis(100));
    let r = format!(
        "{}\n{}",
        report("semantics.py under sluice-run", &out),
        report("peer.py", &peer_out)
    );
    assert!(out.success(), "{r}");
    assert!(out.stdout.contains("ALL OK"), "{r}");
    // Every check ran.
    for name in [
        "mixed_epoll",
        "edge_and_level_triggered",
        "signals_interrupt_waits",
        "listen_accept_and_fork",
        "sendfile_and_splice",
        "dual_stack_inet6",
        "sa_restart_restarts_blocking_calls",
    ] {
        assert!(out.stdout.contains(&format!("ok {name}")), "{name}: {r}");
    }
}

#[test]
fn python_http_server_serves_curl() {
    need("curl");
    let (dir, blob) = blob_dir("www", "", 3 << 20);
    let mut t = TapRun::start(
        "run-pyhttp",
        &["--ip6", "2001:2::2/64"],
        // A dual-stack socket on `::` (IPv4 clients as IPv4-mapped addresses, IPv6 ones
        // with their own), as Python picks by itself on a host with IPv6.
        &["python3", "-m", "http.server", "--bind", "::", "8080"],
        Some(&dir),
    );
    t.ns.ip(&["-6", "addr", "add", "2001:2::1/64", "dev", "sl0", "nodad"]);
    t.wait_port(8080);
    // The same file over IPv6, from the kernel's IPv6 address.
    let got6 = dir.join("got6");
    let c6 = t.kernel(
        "curl",
        &[
            "-sS",
            "-g",
            "-o",
            got6.to_str().unwrap(),
            "-w",
            "%{http_code}",
            "http://[2001:2::2]:8080/blob",
        ],
        Duration::from_secs(30),
    );
    assert!(c6.success() && c6.stdout == "200", "{}", report("curl -6", &c6));
    assert_eq!(sha256_hex(&std::fs::read(&got6).unwrap()), sha256_hex(&blob));
    let got = dir.join("got");
    let c = t.kernel(
        "curl",
        &[
            "-sS",
            "-o",
            got.to_str().unwrap(),
            "-w",
            "%{http_code}",
            &format!("http://{SLUICE_IP}:8080/blob"),
        ],
        Duration::from_secs(30),
    );
    let srv = t.stop(Duration::from_secs(5));
    let r = format!("{}\n{}", report("curl", &c), report("http.server", &srv));
    assert!(c.success() && c.stdout == "200", "{r}");
    assert_eq!(
        sha256_hex(&std::fs::read(&got).unwrap()),
        sha256_hex(&blob),
        "{r}"
    );
    assert!(
        srv.stderr
            .contains("AF_INET sockets of this process are Sluice's"),
        "{r}"
    );
    assert!(srv.stderr.contains("\"GET /blob HTTP/1.1\" 200"), "{r}");
    assert!(
        srv.stdout.contains("Serving HTTP on :: port 8080"),
        "dual-stack: {r}"
    );
    assert!(
        srv.stderr.contains(&format!("::ffff:{KERNEL_IP}")),
        "the client, IPv4-mapped: {r}"
    );
    assert!(
        srv.stderr.contains("2001:2::1 - -"),
        "the IPv6 client with its own address: {r}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn curl_under_sluice_run_fetches_from_the_kernel() {
    need("curl");
    let (dir, blob) = blob_dir("curl", "", 2 << 20);
    let got = dir.join("got");
    // curl waits (retries) until the kernel's server is up.
    let mut t = TapRun::start(
        "run-curl",
        &["--quiet"],
        &[
            "curl",
            "-sS",
            "--retry",
            "20",
            "--retry-connrefused",
            "--retry-delay",
            "1",
            "-o",
            got.to_str().unwrap(),
            "-w",
            "%{http_code} %{remote_ip} %{local_ip}",
            &format!("http://{KERNEL_IP}:8081/blob"),
        ],
        None,
    );
    let mut srv_cmd = t.ns.cmd("python3");
    srv_cmd.args([
        "-m",
        "http.server",
        "8081",
        "--bind",
        KERNEL_IP,
        "--directory",
        dir.to_str().unwrap(),
    ]);
    let srv = Proc::spawn(srv_cmd);
    let c = t.prog.take().unwrap().wait(Duration::from_secs(60));
    let s = srv.wait(Duration::from_millis(100));
    let r = format!(
        "{}\n{}",
        report("curl under sluice-run", &c),
        report("kernel http.server", &s)
    );
    assert!(c.success(), "{r}");
    assert_eq!(c.stdout, format!("200 {KERNEL_IP} {SLUICE_IP}"), "{r}");
    assert_eq!(
        sha256_hex(&std::fs::read(&got).unwrap()),
        sha256_hex(&blob),
        "{r}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Checks what iperf3's client printed (`-J`): it succeeded, and its receiver got at
/// least `min_bytes` at more than `min_bps`.
fn assert_iperf(client: &Output, server: &Output, what: &str, min_bytes: u64, min_bps: f64) {
    let r = format!(
        "{}\n{}",
        report(&format!("iperf3 -c {what}"), client),
        report(&format!("iperf3 -s {what}"), server)
    );
    assert!(client.success(), "{r}");
    let v: serde_json::Value =
        serde_json::from_str(&client.stdout).unwrap_or_else(|e| panic!("iperf3 JSON: {e}\n{r}"));
    let got = &v["end"]["sum_received"];
    let (bytes, bps) = (
        got["bytes"].as_u64().unwrap_or(0),
        got["bits_per_second"].as_f64().unwrap_or(0.0),
    );
    assert!(
        bytes >= min_bytes && bps > min_bps,
        "received {bytes} bytes at {bps} bit/s: {r}"
    );
}

#[test]
fn iperf3_server_and_client_under_sluice_run() {
    need("iperf3");
    // Sluice serves, the kernel sends. (Not -1: the readiness probe is a test to iperf3,
    // a failed one, after which it serves the next.)
    // iperf3 listens on `::`, a dual-stack socket.
    let mut t = TapRun::start("run-iperf-s", &["--quiet"], &["iperf3", "-s", "-B", "::"], None);
    t.wait_port(5201);
    let c = t.kernel(
        "iperf3",
        &["-4", "-c", SLUICE_IP, "-t", "2", "-J"],
        Duration::from_secs(30),
    );
    let s = t.stop(Duration::from_secs(5));
    assert_iperf(&c, &s, "(kernel) to iperf3 -s (under sluice-run)", 10 << 20, 1e8);
    assert!(s.stdout.contains("receiver"), "{}", s.stdout);
    drop(t);

    // Sluice sends, the kernel serves: the kernel's server listens (on the wildcard
    // address) before the program starts.
    let ns = Netns::new("run-iperf-c");
    let mut srv_cmd = ns.cmd("iperf3");
    srv_cmd.args(["-s", "-1", "-4"]);
    let srv = Proc::spawn(srv_cmd);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(20) {
        let ss = ns.run("ss", &["-ltnH", "sport = :5201"], Duration::from_secs(5));
        if ss.stdout.contains("5201") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut t = TapRun::start_in(
        ns,
        &["--quiet"],
        &["iperf3", "-4", "-c", KERNEL_IP, "-t", "2", "-J"],
        None,
    );
    let c = t.prog.take().unwrap().wait(Duration::from_secs(40));
    let s = srv.wait(Duration::from_secs(5));
    assert_iperf(&c, &s, "(under sluice-run) to iperf3 -s (kernel)", 10 << 20, 1e8);
}

#[test]
fn redis_with_redis_cli_and_redis_benchmark() {
    need("redis-server");
    need("redis-benchmark");
    let mut t = TapRun::start(
        "run-redis",
        &["--quiet"],
        &[
            "redis-server",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
            "--protected-mode",
            "no",
            "--bind",
            "0.0.0.0",
        ],
        Some(&std::env::temp_dir()),
    );
    t.wait_port(6379);
    let value = sha256_hex(b"sluice");
    let set = t.kernel(
        "redis-cli",
        &["-h", SLUICE_IP, "set", "k", &value],
        Duration::from_secs(10),
    );
    let get = t.kernel(
        "redis-cli",
        &["-h", SLUICE_IP, "get", "k"],
        Duration::from_secs(10),
    );
    let setbig = t.kernel(
        "sh",
        &[
            "-c",
            &format!("head -c 200000 /dev/zero | tr '\\0' x | redis-cli -x -h {SLUICE_IP} set big"),
        ],
        Duration::from_secs(10),
    );
    let strlen = t.kernel(
        "redis-cli",
        &["-h", SLUICE_IP, "strlen", "big"],
        Duration::from_secs(10),
    );
    let bench = t.kernel(
        "redis-benchmark",
        &["-h", SLUICE_IP, "-c", "20", "-n", "20000", "-t", "set,get", "-q"],
        Duration::from_secs(60),
    );
    let srv = t.stop(Duration::from_secs(5));
    let r = format!(
        "{}\n{}\n{}",
        report("redis-cli get", &get),
        report("redis-benchmark", &bench),
        report("redis-server", &srv)
    );
    assert_eq!(set.stdout.trim(), "OK", "{r}");
    assert_eq!(get.stdout.trim(), value, "{r}");
    assert_eq!(setbig.stdout.trim(), "OK", "{r}");
    assert_eq!(strlen.stdout.trim(), "200000", "{r}");
    assert!(bench.success(), "{r}");
    let out = bench.stdout.replace('\r', "\n");
    for t in ["SET:", "GET:"] {
        assert!(
            out.lines()
                .any(|l| l.starts_with(t) && l.contains("requests per second")),
            "{t}: {r}"
        );
    }
}

#[test]
fn nginx_serves_a_file_checked_by_sha256_and_wrk() {
    need("nginx");
    need("wrk");
    let (dir, blob) = blob_dir("nginx", "www", 1 << 20);
    std::fs::write(dir.join("www/small"), b"hello from nginx on sluice\n").unwrap();
    let d = dir.display();
    let conf = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\nerror_log stderr warn;\npid {d}/nginx.pid;\n\
         events {{ worker_connections 1024; }}\n\
         http {{ access_log off; sendfile on; keepalive_requests 100000;\n\
           client_body_temp_path {d}/body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fcgi;\n\
           uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;\n\
           server {{ listen 8080; root {d}/www; }} }}\n"
    );
    std::fs::write(dir.join("nginx.conf"), conf).unwrap();
    let mut t = TapRun::start(
        "run-nginx",
        &["--quiet"],
        &["nginx", "-c", &format!("{d}/nginx.conf"), "-p", &d.to_string()],
        None,
    );
    t.wait_port(8080);
    let got = dir.join("got");
    let c = t.kernel(
        "curl",
        &[
            "-sS",
            "-o",
            got.to_str().unwrap(),
            "-w",
            "%{http_code}",
            &format!("http://{SLUICE_IP}:8080/blob"),
        ],
        Duration::from_secs(30),
    );
    let w = t.kernel(
        "wrk",
        &["-t1", "-c20", "-d2", &format!("http://{SLUICE_IP}:8080/small")],
        Duration::from_secs(30),
    );
    let srv = t.stop(Duration::from_secs(5));
    let r = format!(
        "{}\n{}\n{}",
        report("curl", &c),
        report("wrk", &w),
        report("nginx", &srv)
    );
    assert!(c.success() && c.stdout == "200", "{r}");
    assert_eq!(
        sha256_hex(&std::fs::read(&got).unwrap()),
        sha256_hex(&blob),
        "{r}"
    );
    assert!(w.success(), "{r}");
    let rps: f64 = w
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    assert!(rps > 100.0, "Requests/sec {rps}: {r}");
    assert!(
        !w.stdout.contains("Socket errors") && !w.stdout.contains("Non-2xx"),
        "{r}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// sockperf's "Summary: Latency is X usec".
fn sockperf_latency(out: &str) -> Option<f64> {
    out.lines()
        .find_map(|l| l.split("Summary: Latency is ").nth(1))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn sockperf_ping_pong_tcp_and_udp() {
    need("sockperf");
    for (tag, proto) in [("run-sp-tcp", Some("--tcp")), ("run-sp-udp", None)] {
        let mut args = vec!["sockperf", "server", "-i", "0.0.0.0", "-p", "11111"];
        args.extend(proto);
        let mut t = TapRun::start(tag, &["--quiet"], &args, None);
        if proto.is_some() {
            t.wait_port(11111);
        } else {
            std::thread::sleep(Duration::from_secs(1));
        }
        let mut cargs = vec!["ping-pong", "-i", SLUICE_IP, "-p", "11111", "-t", "2"];
        cargs.extend(proto);
        let c = t.kernel("sockperf", &cargs, Duration::from_secs(30));
        let s = t.stop(Duration::from_secs(5));
        let out = format!("{}{}", c.stdout, c.stderr);
        let r = format!(
            "{}\n{}",
            report("sockperf ping-pong", &c),
            report("sockperf server under sluice-run", &s)
        );
        assert!(c.success(), "{r}");
        let lat = sockperf_latency(&out).unwrap_or_else(|| panic!("no latency: {r}"));
        assert!(lat > 0.0, "{r}");
        assert!(out.contains("# dropped messages = 0"), "{r}");
    }
}

/// Two `sluice-run`s over virtio_user <-> net_vhost: iperf3 client and server, and a
/// redis-cli to a redis-server.
#[test]
fn two_sluice_runs_over_virtio() {
    need("iperf3");
    let sock = std::env::temp_dir().join(format!("sluice-run-vhost-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&sock);
    let run = |port: String, ip: &str, args: &[&str]| {
        let mut c = Command::new(sluice_run());
        c.args(["--quiet", "--port", &port, "--ip", ip]);
        c.arg("--").args(args);
        Proc::spawn(c)
    };
    let srv = run(
        format!("vhost:{}", sock.display()),
        "198.18.0.1/24",
        &["iperf3", "-s", "-1", "-4"],
    );
    let t0 = Instant::now();
    while !sock.exists() && t0.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(100));
    }
    let cli = run(
        format!("virtio:{}", sock.display()),
        "198.18.0.2/24",
        &["sh", "-c", "sleep 3; exec iperf3 -4 -c 198.18.0.1 -t 2 -J"],
    );
    let c = cli.wait(Duration::from_secs(60));
    let s = srv.wait(Duration::from_secs(10));
    let _ = std::fs::remove_file(&sock);
    assert_iperf(&c, &s, "(virtio) to iperf3 -s (vhost)", 100 << 20, 1e9);
}

#[test]
fn mistakes_are_explained() {
    let bad = Command::new(sluice_run())
        .args(["--ip", "nonsense", "--", "true"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && err.contains("--ip"), "{err}");
    let missing = Command::new(sluice_run())
        .args(["--", "no-such-program-xyz"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("command not found"));
    let none = Command::new(sluice_run()).output().unwrap();
    assert!(!none.status.success());
    // A program that makes no AF_INET socket never starts DPDK (a wrapper, a helper).
    let quiet = Command::new(sluice_run())
        .args(["--port", "tap:sluice-unused", "--", "sh", "-c", "echo fine"])
        .output()
        .unwrap();
    assert!(quiet.status.success());
    assert_eq!(String::from_utf8_lossy(&quiet.stdout), "fine\n");
}
