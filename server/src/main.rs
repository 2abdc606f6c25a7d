//! The `mesh-server` binary.

use clap::Parser;
use mesh_server::app::Server;
use mesh_server::config::{Args, LogFormat, Settings};
use tracing_subscriber::EnvFilter;

fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_env("MESH_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return ctrl_c.await.unwrap_or(()),
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::resolve(Args::parse())?;
    init_logs(settings.log_format);
    tracing::info!(?settings, "starting");
    let server = Server::bind(settings).await?;
    // Tests and scripts wait for this line on stdout; logs go to stderr.
    println!("mesh-server listening on {}", server.url());
    server.run(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}
