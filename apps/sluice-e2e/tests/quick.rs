//! Runs the harness in `--quick` mode (1 s per measurement, few connections, 1000 idle
//! connections, no profile) and checks that the report has every row, with numbers.
//! Needs root (namespaces), free hugepages and dpdk-testpmd; skipped otherwise.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use sluice_testkit::Proc;

const E2E: &str = env!("CARGO_BIN_EXE_sluice-e2e");

fn skip(why: &str) -> bool {
    eprintln!("skipped: {why}");
    true
}

fn cannot_run() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"));
    if !root {
        return skip("not root");
    }
    let free = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("HugePages_Free:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
        .unwrap_or(0);
    if free < 128 {
        return skip("fewer than 128 free hugepages (run scripts/setup.sh)");
    }
    if Command::new("dpdk-testpmd").arg("--version").output().is_err() {
        return skip("no dpdk-testpmd");
    }
    false
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

fn is_number(cell: &str) -> bool {
    let c = cell.trim().trim_end_matches('x').replace(' ', "");
    !c.is_empty() && c.parse::<f64>().is_ok()
}

#[test]
fn quick_run_reports_every_row() {
    if cannot_run() {
        return;
    }
    // The applications, release build (a no-op when scripts/bench-e2e.sh built them).
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let st = Command::new(cargo)
        .args(["build", "--release", "-q", "-p", "sluice-apps", "--bins"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("cargo build");
    assert!(st.success(), "cargo build --release -p sluice-apps failed");
    let dir = std::env::temp_dir().join(format!("sluice-e2e-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let report = dir.join("benchmarks-e2e.md");
    let mut c = Command::new(E2E);
    c.arg("run")
        .arg("--quick")
        .arg("--bin-dir")
        .arg(target_dir().join("release"))
        .arg("--out")
        .arg(&report)
        .arg("--img-dir")
        .arg(dir.join("img"))
        .arg("--work-dir")
        .arg(dir.join("logs"));
    let out = Proc::spawn(c).wait(Duration::from_secs(240));
    let md = std::fs::read_to_string(&report).unwrap_or_default();
    assert!(
        out.success(),
        "sluice-e2e run --quick failed:\n{}\n{}\n{md}",
        out.stdout,
        out.stderr
    );
    // The main table: every row with numbers for both stacks and their ratio.
    let results: Vec<&str> = md
        .split("## Results")
        .nth(1)
        .and_then(|s| s.split("\n\n").nth(1))
        .expect("a Results table")
        .lines()
        .skip(2)
        .collect();
    assert_eq!(results.len(), 19, "{md}");
    for want in [
        "1 connection",
        "16 connections",
        "1000 connections",
        "iperf3",
        "CPUs per Gbit/s",
        "SHA-256 checked",
        "p50 latency",
        "p99 latency",
        "Bulk",
        "New connections",
        "Memory per idle connection",
        "iperf3, one stream (sluice-run",
        "sockperf ping-pong",
        "redis-benchmark SET",
        "redis-benchmark GET",
    ] {
        assert!(results.iter().any(|r| r.contains(want)), "no row {want:?}:\n{md}");
    }
    for row in &results {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        for (i, what) in [(3, "Sluice"), (4, "kernel"), (5, "ratio")] {
            assert!(is_number(cells[i]), "{what} of {row:?} is not a number:\n{md}");
        }
    }
    let bulk = results.iter().find(|r| r.contains("Bulk")).unwrap();
    assert!(
        bulk.contains(" of "),
        "the bulk row has its Sluice/link ratio: {bulk}"
    );
    // Sluice over IPv6 beside IPv4: both measured, and their ratio.
    for row in [
        "| 64 B request/response, 1 connection | req/s |",
        "| Bulk, one connection | Gbit/s |",
    ] {
        let line = md.lines().find(|l| l.starts_with(row)).expect(row);
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        assert!(
            is_number(cells[3]) && is_number(cells[4]) && is_number(cells[5]),
            "{line}"
        );
    }
    // The link limit and the memory tables.
    for row in ["| 64 B |", "| 1514 B |"] {
        let line = md.lines().find(|l| l.starts_with(row)).expect(row);
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        assert!(is_number(cells[2]) && is_number(cells[3]), "{line}");
    }
    for row in [
        "| Sluice: server RSS delta |",
        "| Sluice: stack state, computed",
        "| Kernel: slab delta per socket |",
    ] {
        let line = md.lines().find(|l| l.starts_with(row)).expect(row);
        let v = line.rsplit('|').nth(1).unwrap();
        assert!(is_number(v), "{line}");
    }
    assert!(!md.contains("not measured") && !md.contains("**failed**"), "{md}");
    assert!(md.contains("## Targets"));
    for img in [
        "e2e-rates.svg",
        "e2e-latency.svg",
        "e2e-bulk.svg",
        "e2e-ratios.svg",
    ] {
        let p = dir.join("img").join(img);
        let svg = std::fs::read_to_string(&p).unwrap_or_default();
        assert!(svg.starts_with("<svg"), "{} is not an SVG", p.display());
        assert!(md.contains(&format!("img/{img}")), "the report links {img}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
