//! The C program `tests/c/echo_epoll.c` (an epoll echo server), compiled with `cc`
//! against `include/sluice.h` and the cdylib, run on DPDK's `net_tap` through
//! `sluice_init_dpdk` inside a network namespace made for the test, and driven by kernel
//! TCP clients (Python) in that namespace: several connections each send random bytes
//! and must get every byte back, in order. Then SIGTERM stops the server, which must
//! exit 0. Addresses: 198.18.0.1 (kernel, `sl0`) and 198.18.0.2 (Sluice).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::lib_path;
use sluice_testkit::{Netns, Proc};

const CONNECTIONS: usize = 4;
const BYTES: usize = 200_000;

/// Kernel clients: `CONNECTIONS` at once, each sending `BYTES` random bytes while
/// reading the echo, then closing; retries connecting until the server is up.
const CLIENT: &str = r#"
import os, socket, sys, threading, time
host, port, conns, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
deadline = time.time() + 20
while True:
    try:
        s = socket.create_connection((host, port), timeout=2)
        s.close()
        break
    except OSError as e:
        if time.time() > deadline:
            print("server never answered:", e)
            sys.exit(1)
        time.sleep(0.2)
results = []
def one(i):
    data = os.urandom(size)
    try:
        s = socket.create_connection((host, port), timeout=20)
        def send():
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        t = threading.Thread(target=send)
        t.start()
        got = bytearray()
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += b
        t.join()
        s.close()
        results.append(bytes(got) == data)
        if bytes(got) != data:
            print("conn", i, "got", len(got), "bytes, first difference at",
                  next((k for k in range(min(len(got), size)) if got[k] != data[k]), min(len(got), size)))
    except Exception as e:
        print("conn", i, "failed:", repr(e))
        results.append(False)
ts = [threading.Thread(target=one, args=(i,)) for i in range(conns)]
for t in ts: t.start()
for t in ts: t.join()
print("ok=%d failed=%d" % (sum(results), len(results) - sum(results)))
sys.exit(0 if all(results) else 1)
"#;

fn compile(dir: &Path) -> PathBuf {
    let lib = lib_path();
    let libdir = lib.parent().unwrap();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = dir.join("echo_epoll");
    let out = Command::new("cc")
        .args(["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(manifest.join("include"))
        .arg(manifest.join("tests/c/echo_epoll.c"))
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

#[test]
fn c_echo_server_on_net_tap_with_kernel_clients() {
    let dir = std::env::temp_dir().join(format!("sluice-capi-echo-tap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = compile(&dir);
    let client = dir.join("client.py");
    std::fs::write(&client, CLIENT).unwrap();

    let ns = Netns::new("capiecho");
    let mut cmd = ns.cmd(exe.to_str().unwrap());
    cmd.args(["--port=tap:sl0 --ip=198.18.0.2/24", "45"]);
    let mut server = Proc::spawn(cmd);
    if !ns.wait_link("sl0", Duration::from_secs(20)) || server.exited() {
        let out = server.wait(Duration::from_secs(1));
        panic!(
            "the tap interface did not appear:\n{}\n{}",
            out.stdout, out.stderr
        );
    }
    ns.ip(&["addr", "add", "198.18.0.1/24", "dev", "sl0"]);
    ns.ip(&["link", "set", "sl0", "up"]);

    let peer = ns.run(
        "python3",
        &[
            client.to_str().unwrap(),
            "198.18.0.2",
            "7",
            &CONNECTIONS.to_string(),
            &BYTES.to_string(),
        ],
        Duration::from_secs(40),
    );
    server.terminate();
    let out = server.wait(Duration::from_secs(10));
    let report = format!(
        "kernel clients:\n{}\n{}\n--- C server:\n{}\n{}",
        peer.stdout, peer.stderr, out.stdout, out.stderr
    );
    assert!(peer.success(), "{report}");
    assert!(
        peer.stdout.contains(&format!("ok={CONNECTIONS} failed=0")),
        "{report}"
    );
    assert!(out.success(), "the C server did not exit 0: {report}");
    // The probe connection of the client counts too.
    let expect = format!(
        "connections={} bytes={} stopped",
        CONNECTIONS + 1,
        CONNECTIONS * BYTES
    );
    assert!(out.stdout.contains(&expect), "expected {expect:?}: {report}");
    drop(ns);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Errors say what is wrong: bad flags are EINVAL before EAL starts; a port EAL does not
/// know is ENODEV, with a hint on how to give it one.
#[test]
fn sluice_init_dpdk_reports_bad_flags_and_unknown_ports() {
    let dir = std::env::temp_dir().join(format!("sluice-capi-dpdk-err-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = compile(&dir);
    let run = |flags: &str| {
        let out = Command::new(&exe)
            .args([flags, "5"])
            .output()
            .expect("echo_epoll runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };

    let (code, err) = run("--port=tap:sl0 --ip=198.18.0.2");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("ADDRESS/PREFIX") && err.contains("Invalid argument"),
        "{err}"
    );

    let prefix = format!("--eal=--file-prefix=sluice-nodev-{}", std::process::id());
    let (code, err) = run(&format!(
        "--port=net_nosuch0 --eal=--no-huge --eal=-m --eal=128 --eal=--no-pci {prefix} --eal=-l --eal=0"
    ));
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("no DPDK port named \"net_nosuch0\"") && err.contains("No such device"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
