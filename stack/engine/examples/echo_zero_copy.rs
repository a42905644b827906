//! The async echo server with zero-copy: each received payload goes back as it came, the
//! received mbuf itself chained after the reply's headers (on ports that chain mbufs), so
//! the payload is never copied. Prints how many bytes went each way at exit.

use clap::Parser;
use sluice_engine::rt::{self, AsyncApp, TcpListener};
use sluice_engine::{Config, ConfigArgs, Engine};

async fn serve() {
    let listener = TcpListener::bind(7, 128).expect("port 7 is free");
    while let Ok(stream) = listener.accept().await {
        rt::spawn(async move {
            // A frame is the received bytes; writing it queues them by reference.
            while let Ok(Some(frame)) = stream.read_frame(usize::MAX).await {
                if stream.write_frame(frame).await.is_err() {
                    break;
                }
            }
            stream.close();
        });
    }
}

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    config: ConfigArgs,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::from_args(&Args::parse().config)?;
    let stats = Engine::run(
        "echo-zero-copy",
        &config,
        |_core| AsyncApp::new(serve),
        |handle| {
            let stop = handle.stop_flag();
            ctrlc::set_handler(move || stop.store(true, std::sync::atomic::Ordering::SeqCst)).ok();
        },
    )?;
    for (core, s) in stats.iter().enumerate() {
        let t = &s.net.tcp;
        println!(
            "core={core} rx_zero_copy_bytes={} tx_zero_copy_bytes={} tx_copied_bytes={}",
            t.rx_zero_copy_bytes, t.tx_zero_copy_bytes, t.tx_copied_bytes
        );
    }
    Ok(())
}
