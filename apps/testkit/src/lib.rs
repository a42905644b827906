//! Helpers for Sluice's system tests, which run real processes (DPDK on `net_tap`, curl,
//! ping, python) inside network namespaces that the test creates.
//!
//! - `Netns` creates a namespace and deletes it on drop, so it is removed even when the
//!   test fails (a panic unwinds through the drop);
//! - `Proc` is a child process that is killed on drop, and waited for with a bound;
//! - every wait has a time limit: no test hangs.
//!
//! Addresses used by the tests are in 198.18.0.0/15 (the benchmarking range), inside the
//! namespaces, and nowhere else.

use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A network namespace, deleted on drop (with every process still running in it killed).
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates `sluice-<tag>-<pid>`, deleting a stale one of that name first.
    pub fn new(tag: &str) -> Netns {
        let name = format!("sluice-{tag}-{}", std::process::id());
        let _ = Command::new("ip")
            .args(["netns", "del", &name])
            .stderr(Stdio::null())
            .status();
        sh("ip", &["netns", "add", &name]);
        sh("ip", &["-n", &name, "link", "set", "lo", "up"]);
        Netns { name }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A command that runs inside the namespace.
    pub fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }

    /// Runs `ip -n NS <args>`, panicking with its output on failure.
    pub fn ip(&self, args: &[&str]) {
        let mut a = vec!["-n", self.name.as_str()];
        a.extend_from_slice(args);
        sh("ip", &a);
    }

    /// Waits until interface `dev` exists in the namespace.
    pub fn wait_link(&self, dev: &str, limit: Duration) -> bool {
        let t0 = Instant::now();
        while t0.elapsed() < limit {
            let ok = Command::new("ip")
                .args(["-n", &self.name, "link", "show", dev])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Runs a command in the namespace to completion within `limit`.
    pub fn run(&self, program: &str, args: &[&str], limit: Duration) -> Output {
        let mut c = self.cmd(program);
        c.args(args);
        Proc::spawn(c).wait(limit)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Kill what still runs in the namespace, then delete it.
        if let Ok(out) = Command::new("ip").args(["netns", "pids", &self.name]).output() {
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = Command::new("kill").args(["-9", pid]).status();
            }
        }
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}

/// Whether a namespace of that name exists.
pub fn netns_exists(name: &str) -> bool {
    Command::new("ip")
        .args(["netns", "list"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.split_whitespace().next() == Some(name))
        })
        .unwrap_or(false)
}

fn sh(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What a finished process printed.
#[derive(Debug)]
pub struct Output {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

impl Output {
    pub fn success(&self) -> bool {
        !self.timed_out && self.status.is_some_and(|s| s.success())
    }
}

/// A child process with piped output, killed on drop.
#[derive(Debug)]
pub struct Proc {
    child: Option<Child>,
}

impl Proc {
    pub fn spawn(mut cmd: Command) -> Proc {
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        Proc { child: Some(child) }
    }

    pub fn id(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    /// Whether it has exited.
    pub fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }

    /// Sends SIGTERM (a clean stop: the stack prints its counters).
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.id().to_string()])
            .status();
    }

    /// Waits at most `limit`, killing it past that, and collects its output.
    pub fn wait(mut self, limit: Duration) -> Output {
        let mut child = self.child.take().expect("not yet waited");
        let t0 = Instant::now();
        let mut timed_out = false;
        loop {
            if child.try_wait().ok().flatten().is_some() {
                break;
            }
            if t0.elapsed() > limit {
                let _ = child.kill();
                timed_out = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let status = child.wait().ok();
        let (mut stdout, mut stderr) = (String::new(), String::new());
        if let Some(mut s) = child.stdout.take() {
            let _ = s.read_to_string(&mut stdout);
        }
        if let Some(mut s) = child.stderr.take() {
            let _ = s.read_to_string(&mut stderr);
        }
        Output {
            status,
            stdout,
            stderr,
            timed_out,
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The value of `key=value` among the whitespace-separated words of `out` (last match).
pub fn field<'a>(out: &'a str, key: &str) -> Option<&'a str> {
    out.split_whitespace()
        .filter_map(|w| w.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
        .last()
}

/// `field` parsed as a number, 0 when absent.
pub fn count(out: &str, key: &str) -> u64 {
    field(out, key).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// `n` varied bytes (a xorshift64 stream from a fixed seed): test files whose every byte
/// matters to a digest.
pub fn xorshift_bytes(n: usize) -> Vec<u8> {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
