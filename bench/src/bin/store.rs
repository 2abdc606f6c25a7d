//! `store`: what steady typing costs the store on disk. One typist per room types three
//! characters per update at a steady rate into a real `mesh-server`; every interval the
//! program prints the data directory's size, the WAL's size, and the bytes written per
//! update (as the store counts its WAL frames, and as the kernel counts the process's
//! writes). A flat data directory once rooms have compacted, a WAL that stays under its
//! limit, and a small, steady cost per update are what this shows.
//!
//! The 10-minute soak of `docs/benchmarks.md` (100 rooms, 1,000 updates/s in all):
//! `cargo build --release -p mesh-server && MESH_SERVER_BIN=target/release/mesh-server
//! cargo run --release -p mesh-bench --bin store -- --rooms 100 --rate 10 --duration 600`.

use std::time::Duration;

use clap::Parser;
use mesh_testkit::soak::{type_across_rooms, Sample, TypingLoad};
use mesh_testkit::TestServer;

#[derive(Parser)]
#[command(about = "Store growth and bytes written per update under steady typing")]
struct Args {
    /// Rooms, one typist in each.
    #[arg(long, default_value_t = 100)]
    rooms: usize,
    /// Updates per second per typist.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Seconds of typing.
    #[arg(long, default_value_t = 120.0)]
    duration: f64,
    /// Seconds between two rows of the table.
    #[arg(long, default_value_t = 10.0)]
    every: f64,
    /// Print the table as Markdown.
    #[arg(long)]
    markdown: bool,
}

/// Longest run: keeps a soak bounded in time.
const MAX_DURATION_SECS: f64 = 3600.0;

const MIB: f64 = 1024.0 * 1024.0;

fn row(s: &Sample, prev: &Sample, markdown: bool) -> String {
    let cells = [
        format!("{:>6.0}", s.at.as_secs_f64()),
        format!("{:>9}", s.updates),
        format!("{:>11}", s.compactions),
        format!("{:>13.2}", s.data_dir_bytes as f64 / MIB),
        format!("{:>8.2}", s.wal_bytes as f64 / MIB),
        format!("{:>20.0}", s.wal_bytes_per_update_since(prev)),
        format!("{:>24.0}", s.process_bytes_per_update_since(prev)),
    ];
    if markdown {
        format!("| {} |", cells.join(" | "))
    } else {
        cells.join("  ")
    }
}

fn header(markdown: bool) -> String {
    let head = [
        "     s",
        "  updates",
        "compactions",
        "data dir MiB",
        " WAL MiB",
        "WAL bytes per update",
        "process bytes per update",
    ];
    if markdown {
        let rule: Vec<String> = head.iter().map(|h| "-".repeat(h.len())).collect();
        format!("| {} |\n| {} |", head.join(" | "), rule.join(" | "))
    } else {
        head.join("  ")
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.duration > 0.0 && args.duration <= MAX_DURATION_SECS,
        "--duration must be in (0, {MAX_DURATION_SECS}] seconds"
    );
    anyhow::ensure!(args.every > 0.0, "--every must be positive");
    // Every room is created from this one address: lift the per-address creation burst.
    let server = TestServer::start_with(&["--create-burst", "10000"])?;
    let load = TypingLoad {
        rooms: args.rooms,
        rate: args.rate,
        duration: Duration::from_secs_f64(args.duration),
        sample_every: Duration::from_secs_f64(args.every),
    };
    eprintln!(
        "{} rooms x {} updates/s for {} s ({} updates/s in all) ...",
        args.rooms,
        args.rate,
        args.duration,
        args.rooms as f64 * args.rate
    );
    println!("{}", header(args.markdown));
    let mut prev: Option<Sample> = None;
    let samples = type_across_rooms(&server, &load, |s| {
        if let Some(p) = &prev {
            println!("{}", row(s, p, args.markdown));
        }
        prev = Some(s.clone());
    })
    .await?;
    let (first, last) = (&samples[0], &samples[samples.len() - 1]);
    println!(
        "\nWhole run: {} updates, {:.0} WAL bytes and {:.0} process bytes per update.",
        last.updates - first.updates,
        last.wal_bytes_per_update_since(first),
        last.process_bytes_per_update_since(first)
    );
    // A graceful stop compacts every room and truncates the WAL: what is left is the data.
    let mut server = server;
    server.terminate()?;
    let dir = server.data_dir();
    println!(
        "After a graceful stop: data dir {:.2} MiB, WAL {:.2} MiB.",
        mesh_testkit::soak::dir_bytes(dir)? as f64 / MIB,
        std::fs::metadata(dir.join("mesh.db-wal")).map_or(0, |m| m.len()) as f64 / MIB
    );
    Ok(())
}
