//! The echo server again, written with the async front end: one task per connection, on
//! the core that owns it.

use clap::Parser;
use sluice_engine::rt::{self, AsyncApp, TcpListener};
use sluice_engine::{Config, ConfigArgs, Engine};

async fn serve() {
    let listener = TcpListener::bind(7, 128).expect("port 7 is free");
    while let Ok(stream) = listener.accept().await {
        rt::spawn(async move {
            let mut buf = [0u8; 2048];
            while let Ok(n) = stream.read(&mut buf).await {
                if n == 0 || stream.write_all(&buf[..n]).await.is_err() {
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
    Engine::run(
        "echo-async",
        &config,
        |_core| AsyncApp::new(serve),
        |handle| {
            let stop = handle.stop_flag();
            ctrlc::set_handler(move || stop.store(true, std::sync::atomic::Ordering::SeqCst)).ok();
        },
    )?;
    Ok(())
}
