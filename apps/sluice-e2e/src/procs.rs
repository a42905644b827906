//! Child processes of the harness: output to files (readable while they run), bounded
//! waits, SIGTERM then SIGKILL, killed on drop, and killed by the kernel if the harness
//! itself dies (`PR_SET_PDEATHSIG`).

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// What a finished process printed.
#[derive(Debug, Clone)]
pub struct Output {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub timed_out: bool,
}

/// A running child, killed on drop.
#[derive(Debug)]
pub struct Proc {
    child: Option<Child>,
    out: PathBuf,
    err: PathBuf,
}

fn read(p: &Path) -> String {
    std::fs::read(p)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Sends `sig` to `pid`.
pub fn signal(pid: u32, sig: i32) {
    if pid > 0 {
        // SAFETY: kill(2) with a pid of our own child and a valid signal number; no memory
        // is involved.
        unsafe {
            libc::kill(pid as libc::pid_t, sig);
        }
    }
}

impl Proc {
    /// Starts `cmd` with stdout and stderr in `dir/<name>.{out,err}`.
    pub fn spawn(name: &str, mut cmd: Command, dir: &Path) -> Result<Proc, String> {
        let out = dir.join(format!("{name}.out"));
        let err = dir.join(format!("{name}.err"));
        let fo = File::create(&out).map_err(|e| format!("{}: {e}", out.display()))?;
        let fe = File::create(&err).map_err(|e| format!("{}: {e}", err.display()))?;
        cmd.stdin(Stdio::null()).stdout(fo).stderr(fe);
        // SAFETY: the closure runs in the child between fork and exec and only calls
        // prctl(2), which is async-signal-safe.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
                Ok(())
            });
        }
        let child = cmd.spawn().map_err(|e| format!("spawn {name} ({cmd:?}): {e}"))?;
        Ok(Proc {
            child: Some(child),
            out,
            err,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, |c| c.id())
    }

    pub fn stdout(&self) -> String {
        read(&self.out)
    }

    pub fn stderr(&self) -> String {
        read(&self.err)
    }

    pub fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }

    /// Polls `cond` until it holds (true), the process exits or `limit` passes (false).
    pub fn wait_until(&mut self, limit: Duration, mut cond: impl FnMut(&Proc) -> bool) -> bool {
        let t0 = Instant::now();
        loop {
            if cond(self) {
                return true;
            }
            if self.exited() || t0.elapsed() > limit {
                return cond(self);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `limit` for it to exit by itself; then SIGTERM, 10 s, SIGKILL.
    pub fn finish(mut self, limit: Duration) -> Output {
        let mut child = self.child.take().expect("not yet finished");
        let t0 = Instant::now();
        let mut timed_out = false;
        let mut termed: Option<Instant> = None;
        loop {
            if child.try_wait().ok().flatten().is_some() {
                break;
            }
            match termed {
                None if t0.elapsed() > limit => {
                    timed_out = true;
                    signal(child.id(), libc::SIGTERM);
                    termed = Some(Instant::now());
                }
                Some(t) if t.elapsed() > Duration::from_secs(10) => {
                    let _ = child.kill();
                    break;
                }
                _ => {}
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let status = child.wait().ok();
        Output {
            status,
            stdout: read(&self.out),
            stderr: read(&self.err),
            timed_out,
        }
    }

    /// SIGTERM now (a clean stop: the programs print their counters), then as `finish`.
    pub fn stop(self) -> Output {
        signal(self.pid(), libc::SIGTERM);
        self.finish(Duration::from_secs(10))
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

/// Runs a command to completion within `limit` (killed past it); stdout and stderr.
pub fn run(cmd: &mut Command, limit: Duration) -> Result<(String, String), String> {
    let dir = std::env::temp_dir();
    let name = format!("sluice-e2e-run-{}-{}", std::process::id(), unique());
    let mut c = Command::new(cmd.get_program());
    c.args(cmd.get_args());
    let p = Proc::spawn(&name, c, &dir)?;
    let o = p.finish(limit);
    let _ = std::fs::remove_file(dir.join(format!("{name}.out")));
    let _ = std::fs::remove_file(dir.join(format!("{name}.err")));
    if o.status.is_some_and(|s| s.success()) && !o.timed_out {
        Ok((o.stdout, o.stderr))
    } else {
        Err(format!(
            "{:?} failed ({:?}{}): {}{}",
            cmd,
            o.status,
            if o.timed_out { ", timed out" } else { "" },
            o.stdout,
            o.stderr
        ))
    }
}

/// A number unique in this process.
pub fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// VmRSS of a process, bytes.
pub fn rss(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    kib_field(&s, "VmRSS:")
}

/// A `Key:   N kB` line of /proc/meminfo or /proc/PID/status, in bytes.
pub fn kib_field(s: &str, key: &str) -> Option<u64> {
    s.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .map(|k| k * 1024)
}

/// /proc/meminfo's Slab, bytes.
pub fn slab() -> Option<u64> {
    kib_field(&std::fs::read_to_string("/proc/meminfo").ok()?, "Slab:")
}

/// Raises RLIMIT_NOFILE to `n` (or as far as allowed).
pub fn raise_nofile(n: u64) {
    let lim = libc::rlimit {
        rlim_cur: n as libc::rlim_t,
        rlim_max: n as libc::rlim_t,
    };
    // SAFETY: setrlimit(2) reads a valid rlimit struct that lives across the call.
    let ok = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } == 0;
    if !ok {
        let mut cur = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit(2) with a valid, writable rlimit struct.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut cur) == 0 {
                cur.rlim_cur = cur.rlim_max;
                libc::setrlimit(libc::RLIMIT_NOFILE, &cur);
            }
        }
    }
}

/// The hard limit of open files of this process.
pub fn nofile_hard() -> u64 {
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) writes into a valid rlimit struct.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut cur) } == 0 {
        cur.rlim_max
    } else {
        1024
    }
}

/// CPU time a process has used so far (all its threads, user + system), in seconds.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the command name (which may hold spaces) in parentheses.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    Some(ticks as f64 / if hz > 0 { hz as f64 } else { 100.0 })
}

/// Samples two processes' CPU time until `cp` exits or `limit` passes: the CPUs each used
/// (CPU seconds per wall second) between the first and the last sample.
pub fn cpu_use_until_exit(sp: &mut Proc, cp: &mut Proc, limit: Duration) -> Option<(f64, f64)> {
    let (s, c) = (sp.pid(), cp.pid());
    let t0 = Instant::now();
    let first = (cpu_seconds(s)?, cpu_seconds(c)?, Instant::now());
    let mut last = first;
    while !cp.exited() && t0.elapsed() < limit {
        if let (Some(a), Some(b)) = (cpu_seconds(s), cpu_seconds(c)) {
            last = (a, b, Instant::now());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let wall = last.2.duration_since(first.2).as_secs_f64();
    (wall > 0.2).then(|| ((last.0 - first.0) / wall, (last.1 - first.1) / wall))
}
