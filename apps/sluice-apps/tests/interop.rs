//! Interop with peers that are not ours, over `net_tap` in a namespace the test creates
//! (root and DPDK; `scripts/test.sh` runs them): socat, Python's asyncio, wrk and curl as
//! clients of Sluice; Python's http.server and socat as servers for Sluice's clients; and
//! downloads through impairments injected at Sluice's device layer, checked by SHA-256.

use std::time::Duration;

use sluice_testkit::{count, field, Netns, Output, Proc};

const ECHO: &str = env!("CARGO_BIN_EXE_sluice-echo");
const HTTP: &str = env!("CARGO_BIN_EXE_sluice-http");
const LOADGEN: &str = env!("CARGO_BIN_EXE_sluice-loadgen");

fn root() -> bool {
    let ok = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if !ok {
        eprintln!("not root: skipped");
    }
    ok
}

fn bring_up(ns: &Netns, p: &mut Proc) {
    assert!(
        ns.wait_link("sl0", Duration::from_secs(20)),
        "the tap interface did not appear"
    );
    assert!(!p.exited(), "Sluice exited early");
    ns.ip(&["addr", "add", "198.18.0.1/24", "dev", "sl0"]);
    ns.ip(&["link", "set", "sl0", "up"]);
}

/// A Sluice program on tap in a new namespace, Sluice at 198.18.0.2, the kernel at .1.
fn sluice(tag: &str, bin: &str, args: &[&str]) -> (Netns, Proc) {
    let ns = Netns::new(tag);
    let mut c = ns.cmd(bin);
    c.args(["--stack", "sluice", "--port", "tap:sl0", "--ip", "198.18.0.2/24"])
        .args(args);
    let mut p = Proc::spawn(c);
    bring_up(&ns, &mut p);
    (ns, p)
}

fn wait_port(ns: &Netns, port: u16) {
    let probe = format!(
        "import socket,time\nfor i in range(100):\n  try:\n    socket.create_connection(('198.18.0.2',{port}),0.5).close(); break\n  except OSError: time.sleep(0.1)\n"
    );
    ns.run("python3", &["-c", &probe], Duration::from_secs(20));
}

fn stop(p: Proc) -> Output {
    p.terminate();
    let out = p.wait(Duration::from_secs(15));
    assert!(
        out.success(),
        "did not stop cleanly:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    out
}

fn sh(ns: &Netns, script: &str, limit: Duration) -> Output {
    ns.run("bash", &["-c", script], limit)
}

#[test]
fn socat_through_sluice_echo() {
    if !root() {
        return;
    }
    let (ns, p) = sluice("io-socat", ECHO, &["--listen", "7", "--seconds", "60"]);
    wait_port(&ns, 7);
    let out = sh(
        &ns,
        "f=$(mktemp); head -c 3000000 /dev/urandom > $f; \
         a=$(sha256sum < $f | cut -c1-64); \
         b=$(socat -t 10 -T 20 - TCP:198.18.0.2:7 < $f | sha256sum | cut -c1-64); rm -f $f; \
         echo sent=$a received=$b",
        Duration::from_secs(60),
    );
    stop(p);
    let (a, b) = (field(&out.stdout, "sent"), field(&out.stdout, "received"));
    assert!(a.is_some() && a == b, "{}\n{}", out.stdout, out.stderr);
}

#[test]
fn python_asyncio_clients_of_sluice_echo() {
    if !root() {
        return;
    }
    let (ns, p) = sluice("io-async", ECHO, &["--listen", "7", "--seconds", "60"]);
    wait_port(&ns, 7);
    let script = r#"
import asyncio, hashlib, os
async def one(i):
    r, w = await asyncio.open_connection('198.18.0.2', 7)
    data = os.urandom(100_000)
    w.write(data)
    await w.drain()
    got = await r.readexactly(len(data))
    w.close()
    await w.wait_closed()
    return got == data
async def main():
    res = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(50))), 60)
    print(f"ok={sum(res)} of={len(res)}")
asyncio.run(main())
"#;
    let out = ns.run("python3", &["-c", script], Duration::from_secs(90));
    let s = stop(p);
    assert!(
        out.stdout.contains("ok=50 of=50"),
        "{}\n{}\n--- sluice:\n{}",
        out.stdout,
        out.stderr,
        s.stdout
    );
}

#[test]
fn wrk_against_sluice_http() {
    if !root() {
        return;
    }
    let (ns, p) = sluice(
        "io-wrk",
        HTTP,
        &["--listen", "80", "--body-size", "64", "--seconds", "60"],
    );
    wait_port(&ns, 80);
    let out = ns.run(
        "wrk",
        &["-t1", "-c16", "-d3s", "--timeout", "5s", "http://198.18.0.2/"],
        Duration::from_secs(30),
    );
    let s = stop(p);
    assert!(out.success(), "{}\n{}", out.stdout, out.stderr);
    let reqs: u64 = out
        .stdout
        .lines()
        .find(|l| l.contains("requests in"))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    assert!(reqs > 1000, "{}", out.stdout);
    assert!(
        !out.stdout.contains("Non-2xx") && !out.stdout.contains("Socket errors"),
        "{}",
        out.stdout
    );
    assert!(
        count(&s.stdout, "requests") >= reqs,
        "the server counted them: {}",
        s.stdout
    );
}

#[test]
fn sluice_loadgen_against_python_http_server_and_socat_echo() {
    if !root() {
        return;
    }
    let ns = Netns::new("io-srv");
    // Python's http.server, speaking HTTP/1.1 (keep-alive) rather than its default 1.0.
    let server = "import http.server, functools\n\
                  class H(http.server.SimpleHTTPRequestHandler):\n    protocol_version = 'HTTP/1.1'\n    \
                  def log_message(self, *a): pass\n\
                  http.server.ThreadingHTTPServer(('0.0.0.0', 8080), \
                  functools.partial(H, directory='/usr/share/doc/dpkg')).serve_forever()\n";
    let mut c = ns.cmd("python3");
    c.args(["-c", server]);
    let http = Proc::spawn(c);
    let mut c = ns.cmd("socat");
    c.args(["TCP-LISTEN:7007,reuseaddr,fork", "EXEC:cat"]);
    let echo = Proc::spawn(c);
    let mut c = ns.cmd(LOADGEN);
    c.args([
        "--stack",
        "sluice",
        "--port",
        "tap:sl0",
        "--ip",
        "198.18.0.2/24",
        "--connect",
        "198.18.0.1:8080",
    ])
    .args(["--http", "/copyright", "--connections", "4", "--duration", "3"]);
    let mut lg = Proc::spawn(c);
    bring_up(&ns, &mut lg);
    let lg = lg.wait(Duration::from_secs(40));
    assert!(lg.success(), "{}\n{}", lg.stdout, lg.stderr);
    assert!(count(&lg.stdout, "requests") > 10, "{}", lg.stdout);
    assert_eq!(count(&lg.stdout, "errors"), 0, "{}", lg.stdout);
    drop(http);

    // The same namespace, a new Sluice process: the echo client against socat.
    let mut c = ns.cmd(LOADGEN);
    c.args([
        "--stack",
        "sluice",
        "--port",
        "tap:sl1",
        "--ip",
        "198.18.1.2/24",
        "--connect",
        "198.18.1.1:7007",
    ])
    .args(["--connections", "4", "--request-size", "300", "--duration", "3"]);
    let mut lg = Proc::spawn(c);
    assert!(ns.wait_link("sl1", Duration::from_secs(20)), "no sl1");
    assert!(!lg.exited());
    ns.ip(&["addr", "add", "198.18.1.1/24", "dev", "sl1"]);
    ns.ip(&["link", "set", "sl1", "up"]);
    let lg = lg.wait(Duration::from_secs(40));
    drop(echo);
    assert!(lg.success(), "{}\n{}", lg.stdout, lg.stderr);
    assert!(count(&lg.stdout, "requests") > 100, "{}", lg.stdout);
    assert_eq!(count(&lg.stdout, "errors"), 0, "{}", lg.stdout);
}

/// curl downloads files through loss, reordering and an outage injected in Sluice's
/// device layer; every byte arrives intact.
#[test]
fn curl_downloads_through_impairments() {
    if !root() {
        return;
    }
    let dir = std::env::temp_dir().join(format!("sluice-io-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let blob = sluice_testkit::xorshift_bytes(4_000_000);
    std::fs::write(dir.join("blob.bin"), &blob).unwrap();
    let root_dir = dir.to_str().unwrap().to_owned();
    let (ns, p) = sluice(
        "io-imp",
        HTTP,
        &[
            "--listen",
            "80",
            "--root",
            &root_dir,
            "--seconds",
            "480",
            "--impair-rx",
            "loss=0.02,reorder=0.05:3ms,dup=0.01",
            "--impair-tx",
            "loss=0.02,reorder=0.05:3ms,dup=0.01,outage-after-first=1s+2s",
        ],
    );
    wait_port(&ns, 80);
    let out = sh(
        &ns,
        &format!(
            "for i in 1 2 3; do curl -s --max-time 150 http://198.18.0.2/blob.bin | sha256sum | cut -c1-64; done; \
             sha256sum < {root_dir}/blob.bin | cut -c1-64"
        ),
        Duration::from_secs(470),
    );
    let s = stop(p);
    let _ = std::fs::remove_dir_all(&dir);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines.len(),
        4,
        "{}\n{}\n--- server:\n{}",
        out.stdout,
        out.stderr,
        s.stdout
    );
    assert!(
        lines.iter().all(|l| *l == lines[3]),
        "a download differs:\n{}",
        out.stdout
    );
}
