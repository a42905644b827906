//! Sluice on `net_tap` inside a network namespace that the test creates: the kernel there
//! resolves Sluice's address with ARP and pings it. The namespace is deleted afterwards,
//! even when the test fails.

use std::time::Duration;

use sluice_testkit::{count, netns_exists, Netns, Proc};

const BIN: &str = env!("CARGO_BIN_EXE_sluice-responder");

#[test]
fn kernel_pings_sluice_over_net_tap() {
    let name;
    {
        let ns = Netns::new("ping");
        name = ns.name().to_owned();
        let mut cmd = ns.cmd(BIN);
        cmd.args(["--iface", "sl0", "--ip", "198.18.0.2/24", "--seconds", "60"]);
        let mut responder = Proc::spawn(cmd);
        assert!(
            ns.wait_link("sl0", Duration::from_secs(20)),
            "the tap interface did not appear"
        );
        assert!(!responder.exited(), "the responder exited early");
        ns.ip(&["addr", "add", "198.18.0.1/24", "dev", "sl0"]);
        ns.ip(&["link", "set", "sl0", "up"]);

        let ping = ns.run(
            "ping",
            &["-c", "5", "-i", "0.2", "-W", "2", "198.18.0.2"],
            Duration::from_secs(30),
        );
        let neigh = ns.run(
            "ip",
            &["neigh", "show", "198.18.0.2", "dev", "sl0"],
            Duration::from_secs(5),
        );
        responder.terminate();
        let out = responder.wait(Duration::from_secs(10));

        assert!(
            ping.success(),
            "ping failed:\n{}\n{}\n--- responder:\n{}\n{}",
            ping.stdout,
            ping.stderr,
            out.stdout,
            out.stderr
        );
        assert!(ping.stdout.contains("5 received"), "{}", ping.stdout);
        assert!(ping.stdout.contains(" 0% packet loss"), "{}", ping.stdout);
        // The kernel learned Sluice's MAC through ARP.
        assert!(
            neigh.stdout.contains("lladdr"),
            "no neighbour entry: {}",
            neigh.stdout
        );
        assert!(
            out.success(),
            "the responder did not stop cleanly on SIGTERM:\n{}\n{}",
            out.stdout,
            out.stderr
        );
        assert!(count(&out.stdout, "arp_replies_tx") >= 1, "{}", out.stdout);
        assert!(count(&out.stdout, "icmp_echo_replies_tx") >= 5, "{}", out.stdout);
        assert_eq!(
            count(&out.stdout, "icmp_echo_rx"),
            count(&out.stdout, "icmp_echo_replies_tx"),
            "{}",
            out.stdout
        );
    }
    assert!(!netns_exists(&name), "the namespace was removed");
}

#[test]
fn namespace_is_removed_even_when_the_test_fails() {
    let name = std::sync::Mutex::new(String::new());
    let r = std::panic::catch_unwind(|| {
        let ns = Netns::new("fail");
        *name.lock().unwrap() = ns.name().to_owned();
        assert!(netns_exists(ns.name()));
        panic!("a failing test");
    });
    assert!(r.is_err());
    let name = name.into_inner().unwrap();
    assert!(
        !name.is_empty() && !netns_exists(&name),
        "namespace {name} left behind"
    );
}
