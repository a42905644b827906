//! The guide's examples (examples/echo.rs, echo_async.rs, echo_zero_copy.rs) run as written: over
//! `net_tap` in a network namespace, the kernel's socat talks to them.

use std::path::PathBuf;
use std::time::Duration;

use sluice_testkit::{Netns, Proc};

fn example(name: &str) -> PathBuf {
    // target/<profile>/deps/examples-HASH -> target/<profile>/examples/NAME
    let exe = std::env::current_exe().expect("test path");
    exe.parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .join("examples")
        .join(name)
}

/// Runs example `name` as an echo server for a kernel client; returns the server's output.
fn echo_round_trip(name: &str) -> String {
    let bin = example(name);
    assert!(bin.exists(), "{} was not built", bin.display());
    let ns = Netns::new(&format!("ex{}", name.len()));
    let mut cmd = ns.cmd(bin.to_str().expect("utf-8 path"));
    cmd.args(["--port", "tap:sl0", "--ip", "198.18.0.2/24"]);
    let mut server = Proc::spawn(cmd);
    assert!(ns.wait_link("sl0", Duration::from_secs(20)), "no tap interface");
    ns.ip(&["addr", "add", "198.18.0.1/24", "dev", "sl0"]);
    ns.ip(&["link", "set", "sl0", "up"]);
    let payload = "hello sluice\n".repeat(2000);
    let script = format!(
        "import socket\ns=socket.create_connection(('198.18.0.2',7),timeout=10)\ndata={payload:?}.encode()\n\
         s.sendall(data)\ngot=b''\nwhile len(got)<len(data):\n    c=s.recv(65536)\n    assert c\n    got+=c\n\
         assert got==data\ns.close()\nprint('echo-ok', len(got))\n"
    );
    let out = ns.run("python3", &["-c", &script], Duration::from_secs(30));
    assert!(!server.exited(), "the example exited");
    server.terminate();
    let s = server.wait(Duration::from_secs(10));
    assert!(
        out.success() && out.stdout.contains("echo-ok 26000"),
        "{}\n{}\n--- server:\n{}\n{}",
        out.stdout,
        out.stderr,
        s.stdout,
        s.stderr
    );
    s.stdout
}

#[test]
fn echo_example_serves_the_kernel() {
    echo_round_trip("echo");
}

#[test]
fn async_echo_example_serves_the_kernel() {
    echo_round_trip("echo_async");
}

/// The zero-copy echo sends the received mbufs back by reference (net_tap chains mbufs).
#[test]
fn zero_copy_echo_example_serves_the_kernel() {
    let out = echo_round_trip("echo_zero_copy");
    let by_ref = sluice_testkit::count(&out, "tx_zero_copy_bytes");
    let kept = sluice_testkit::count(&out, "rx_zero_copy_bytes");
    assert!(by_ref > 0 && kept > 0, "nothing went by reference:\n{out}");
}
