//! A complete echo server on Sluice: every core serves port 7, and sends back what it reads.
//!
//! Run it inside a network namespace (it creates the tap interface `sl0` there):
//!
//! ```sh
//! ip netns add demo && ip netns exec demo cargo run --release -p sluice-engine --example echo
//! # in another shell:
//! ip -n demo addr add 198.18.0.1/24 dev sl0 && ip -n demo link set sl0 up
//! ip netns exec demo socat - TCP:198.18.0.2:7
//! ```

use std::collections::HashMap;

use clap::Parser;
use sluice_engine::{App, Config, ConfigArgs, Cx, Engine, Error, TcpListener, TcpStream};

/// The application: one per core, called every round of the core's loop.
struct Echo {
    listener: Option<TcpListener>,
    /// Each connection, with the bytes read but not yet taken by `write`.
    conns: HashMap<TcpStream, Vec<u8>>,
}

impl App for Echo {
    fn start(&mut self, cx: &Cx) -> Result<(), sluice_engine::AppError> {
        // A failure here stops the engine, and Engine::run returns it.
        self.listener = Some(TcpListener::bind(cx, 7, 128)?);
        Ok(())
    }

    fn poll(&mut self, cx: &Cx) -> bool {
        let mut did = false;
        if let Some(l) = self.listener {
            while let Ok(s) = l.accept(cx) {
                self.conns.insert(s, Vec::new());
                did = true;
            }
        }
        let mut done = Vec::new();
        for (&s, pending) in &mut self.conns {
            // First what an earlier write did not take: `write` takes what fits.
            if !pending.is_empty() {
                match s.write(cx, pending) {
                    Ok(n) => {
                        pending.drain(..n);
                        did = true;
                    }
                    Err(Error::WouldBlock) => {}
                    Err(_) => {
                        done.push(s);
                        continue;
                    }
                }
            }
            // Read more only once everything read so far is queued (backpressure: a peer
            // that does not read its echo stops being read).
            if !pending.is_empty() {
                continue;
            }
            let mut buf = [0u8; 2048];
            match s.read(cx, &mut buf) {
                Ok(0) => done.push(s), // the peer finished
                Ok(n) => {
                    let taken = match s.write(cx, &buf[..n]) {
                        Ok(k) => k,
                        Err(Error::WouldBlock) => 0,
                        Err(_) => {
                            done.push(s);
                            continue;
                        }
                    };
                    pending.extend_from_slice(&buf[taken..n]);
                    did = true;
                }
                Err(Error::WouldBlock) => {}
                Err(_) => done.push(s),
            }
        }
        for s in done {
            self.conns.remove(&s);
            s.close(cx);
        }
        did
    }
}

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    config: ConfigArgs,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let config = Config::from_args(&args.config)?;
    Engine::run(
        "echo",
        &config,
        |_core| Echo {
            listener: None,
            conns: HashMap::new(),
        },
        |handle| {
            println!(
                "echo: serving port 7 on {} core(s); Ctrl-C to stop",
                handle.cores()
            );
            let stop = handle.stop_flag();
            ctrlc::set_handler(move || stop.store(true, std::sync::atomic::Ordering::SeqCst)).ok();
        },
    )?;
    Ok(())
}
