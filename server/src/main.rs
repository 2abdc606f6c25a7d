//! The `mesh-server` binary.

use clap::Parser;
use mesh_server::app::Server;
use mesh_server::config::{Args, LogFormat, Settings};
use tracing_subscriber::EnvFilter;

fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_env("MESH_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    // tokio-postgres logs each statement's parameters at debug level, which would put room
    // text and session digests in the log: it stays at info unless MESH_LOG names it.
    let asked = std::env::var("MESH_LOG").is_ok_and(|v| v.contains("tokio_postgres"));
    let filter = if asked {
        filter
    } else {
        filter.add_directive("tokio_postgres=info".parse().expect("a valid directive"))
    };
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

/// Raises the open-file limit to what `connections` sockets need (a socket is a file; the
/// usual soft limit of 1024 would refuse connections long before mesh's own cap), up to
/// the hard limit the system allows; says so when that is lower.
fn open_files_for(connections: usize) {
    /// Files besides the sockets: the database and its WAL, logs, run containers' pipes.
    const OTHER_FILES: u64 = 256;
    let wanted = connections as u64 + OTHER_FILES;
    match rlimit::increase_nofile_limit(wanted) {
        Ok(got) if got < wanted => tracing::warn!(
            wanted,
            got,
            "the open-file limit allows fewer connections than max_connections; raise the hard limit (ulimit -Hn, LimitNOFILE=)"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot raise the open-file limit"),
    }
}

fn main() -> anyhow::Result<()> {
    let settings = Settings::resolve(Args::parse())?;
    init_logs(settings.log_format);
    tracing::info!(?settings, "starting");
    open_files_for(settings.edge.max_connections);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.workers)
        .enable_all()
        .build()?
        .block_on(serve(settings))
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let server = Server::bind(settings).await?;
    // Tests and scripts wait for this line on stdout; logs go to stderr.
    println!("mesh-server listening on {}", server.url());
    server.run(shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}
