//! `keystrokes`: how long a keystroke takes from one editor to the others, through real
//! `mesh-proxy lsp` processes and a real `mesh-server`.
//!
//! Editor A types at a steady rate; every other editor in the room records when the
//! proxy's `workspace/applyEdit` carrying that keystroke arrives. The latency is from the
//! moment A's `didChange` was written to the moment B received the `applyEdit`. Runs for
//! each room size given (default 2, 10 and 50 editors) and prints a table.
//!
//! Build the binaries first: `cargo build --release -p mesh-server -p mesh-proxy`, then
//! `MESH_SERVER_BIN=target/release/mesh-server MESH_PROXY_BIN=target/release/mesh-proxy
//! cargo run --release -p mesh-bench --bin keystrokes`.

use std::time::{Duration, Instant};

use clap::Parser;
use mesh_testkit::{LspClient, TestServer};
use serde_json::json;

#[derive(Parser)]
#[command(about = "Keystroke latency between editors through mesh-proxy and mesh-server")]
struct Args {
    /// Room sizes (editors per room) to measure.
    #[arg(long, value_delimiter = ',', default_value = "2,10,50")]
    editors: Vec<usize>,
    /// Keystrokes typed by editor A per room size.
    #[arg(long, default_value_t = 200)]
    keystrokes: usize,
    /// Keystrokes per second.
    #[arg(long, default_value_t = 20.0)]
    rate: f64,
    /// Print the table as Markdown.
    #[arg(long)]
    markdown: bool,
}

/// How long to wait for the last keystroke to reach everyone.
const DRAIN: Duration = Duration::from_secs(10);

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

struct Row {
    editors: usize,
    samples: usize,
    lost: usize,
    p50: f64,
    p99: f64,
    max: f64,
}

async fn measure(n: usize, args: &Args) -> anyhow::Result<Row> {
    let server = TestServer::start()?;
    let tmp = tempfile::tempdir()?;
    let root_a = tmp.path().join("e0");
    std::fs::create_dir_all(&root_a)?;
    std::fs::write(root_a.join("typing.txt"), "start\n")?;
    let a = LspClient::start(&root_a, "e0", &server.url).await?;
    let link = a.request("mesh/share", json!({})).await?["link"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let ua = a.open("typing.txt").await?;
    let mut others = Vec::new();
    for i in 1..n {
        let root = tmp.path().join(format!("e{i}"));
        std::fs::create_dir_all(&root)?;
        let c = LspClient::start(&root, &format!("e{i}"), &server.url).await?;
        c.request("mesh/join", json!({ "link": link })).await?;
        let u = c.open("typing.txt").await?;
        others.push((c, u));
    }
    for (c, u) in &others {
        c.wait_for("initial text", |c| c.text(u).as_deref() == Some("start\n"))
            .await?;
    }
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let mut sent: Vec<(String, Instant)> = Vec::with_capacity(args.keystrokes);
    let mut next = Instant::now();
    for k in 0..args.keystrokes {
        tokio::time::sleep_until(next.into()).await;
        next += interval;
        let token = format!("<{k:04}>");
        let end = a.text(&ua).map(|t| t.len()).unwrap_or(0);
        let at = Instant::now();
        a.edit(&ua, end, end, &token).await?;
        sent.push((token, at));
    }
    let want = a.text(&ua).unwrap_or_default();
    let deadline = Instant::now() + DRAIN;
    for (c, u) in &others {
        while c.text(u).as_deref() != Some(want.as_str()) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let mut lat = Vec::new();
    let mut lost = 0;
    for (c, _) in &others {
        let log = c.applied_log();
        for (token, at) in &sent {
            match log.iter().find(|(_, text)| text.contains(token.as_str())) {
                Some((arrived, _)) => lat.push(arrived.duration_since(*at).as_secs_f64() * 1000.0),
                None => lost += 1,
            }
        }
    }
    lat.sort_by(|x, y| x.total_cmp(y));
    for (c, _) in others {
        c.stop().await?;
    }
    a.stop().await?;
    Ok(Row {
        editors: n,
        samples: lat.len(),
        lost,
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
        max: lat.last().copied().unwrap_or(f64::NAN),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut rows = Vec::new();
    for &n in &args.editors {
        eprintln!("[keystrokes] {n} editors...");
        rows.push(measure(n.max(2), &args).await?);
    }
    println!(
        "\nKeystroke latency, editor A didChange -> editor B applyEdit ({} keystrokes at {}/s)",
        args.keystrokes, args.rate
    );
    let header = ["editors", "samples", "lost", "p50 ms", "p99 ms", "max ms"];
    if args.markdown {
        println!("| {} |", header.join(" | "));
        println!("|{}", " --- |".repeat(header.len()));
    } else {
        println!(
            "{:>8} {:>8} {:>6} {:>8} {:>8} {:>8}",
            header[0], header[1], header[2], header[3], header[4], header[5]
        );
    }
    for r in rows {
        if args.markdown {
            println!(
                "| {} | {} | {} | {:.2} | {:.2} | {:.2} |",
                r.editors, r.samples, r.lost, r.p50, r.p99, r.max
            );
        } else {
            println!(
                "{:>8} {:>8} {:>6} {:>8.2} {:>8.2} {:>8.2}",
                r.editors, r.samples, r.lost, r.p50, r.p99, r.max
            );
        }
    }
    Ok(())
}
