//! `proxy_cost`: what a `mesh-proxy lsp` process itself costs: CPU time per keystroke (the
//! typist's proxy and a receiving editor's proxy) and resident memory with 1 and with 100
//! open files.
//!
//! CPU time is read from `/proc/PID/stat` (user + system, all threads) before and after the
//! typing; its resolution is one clock tick (10 ms), so enough keystrokes are typed to make
//! that small per keystroke. The idle cost (timers, pings) over as long a quiet spell is
//! measured first and shown beside it. Memory is `VmRSS` and `VmHWM` from `/proc/PID/status`
//! once the proxy shares a folder and the editor has the files open.
//!
//! Build the binaries first: `cargo build --release -p mesh-server -p mesh-proxy -p
//! mesh-bench`, then `MESH_SERVER_BIN=target/release/mesh-server
//! MESH_PROXY_BIN=target/release/mesh-proxy target/release/proxy_cost`.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use clap::Parser;
use mesh_bench::procstat;
use mesh_testkit::{LspClient, TestServer};
use serde_json::json;

#[derive(Parser)]
#[command(about = "CPU per keystroke and memory of mesh-proxy lsp")]
struct Args {
    /// Keystrokes typed for the CPU figure.
    #[arg(long, default_value_t = 1000)]
    keystrokes: usize,
    /// Keystrokes per second.
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    /// Bytes of each file for the memory figures.
    #[arg(long, default_value_t = 4096)]
    file_bytes: usize,
    /// Print the tables as Markdown.
    #[arg(long)]
    markdown: bool,
}

/// How long to wait for the last keystroke to reach the other editor.
const DRAIN: Duration = Duration::from_secs(10);

/// How long the proxy is left alone after the files open before its memory is read: long
/// enough for the room's sync, the disk mirror and the first awareness round to finish.
const SETTLE: Duration = Duration::from_secs(2);

fn table(markdown: bool, header: &[&str], rows: &[Vec<String>]) {
    if markdown {
        println!("| {} |", header.join(" | "));
        println!("|{}", " --- |".repeat(header.len()));
        for r in rows {
            println!("| {} |", r.join(" | "));
        }
    } else {
        println!("{}", header.iter().map(|h| format!("{h:>26}")).collect::<String>());
        for r in rows {
            println!("{}", r.iter().map(|c| format!("{c:>26}")).collect::<String>());
        }
    }
}

fn pid_of(c: &LspClient) -> anyhow::Result<u32> {
    c.pid().context("the proxy has exited")
}

/// CPU time of each pid, in ms.
fn cpu_ms(pids: &[u32]) -> anyhow::Result<Vec<f64>> {
    pids.iter()
        .map(|&p| Ok(procstat::cpu_time(Some(p))?.as_secs_f64() * 1000.0))
        .collect()
}

async fn cpu(args: &Args) -> anyhow::Result<Vec<Vec<String>>> {
    let server = TestServer::start()?;
    let tmp = tempfile::tempdir()?;
    let root_a = tmp.path().join("a");
    let root_b = tmp.path().join("b");
    std::fs::create_dir_all(&root_a)?;
    std::fs::create_dir_all(&root_b)?;
    std::fs::write(root_a.join("typing.txt"), "start\n")?;
    let a = LspClient::start(&root_a, "a", &server.url).await?;
    let link = a.request("mesh/share", json!({})).await?["link"]
        .as_str()
        .context("mesh/share gave no link")?
        .to_string();
    let ua = a.open("typing.txt").await?;
    let b = LspClient::start(&root_b, "b", &server.url).await?;
    b.request("mesh/join", json!({ "link": link })).await?;
    let ub = b.open_with("typing.txt", "start\n").await?;
    b.wait_for("the start text", |c| c.text(&ub).as_deref() == Some("start\n"))
        .await?;
    let pids = [pid_of(&a)?, pid_of(&b)?, server.pid()];
    let interval = Duration::from_secs_f64(1.0 / args.rate);
    let typing = interval * args.keystrokes as u32;

    // The idle cost over as long as the typing takes.
    let idle_from = cpu_ms(&pids)?;
    tokio::time::sleep(typing).await;
    let idle = cpu_ms(&pids)?
        .iter()
        .zip(&idle_from)
        .map(|(after, before)| after - before)
        .collect::<Vec<_>>();

    let from = cpu_ms(&pids)?;
    let started = Instant::now();
    let mut next = Instant::now();
    for k in 0..args.keystrokes {
        tokio::time::sleep_until(next.into()).await;
        next += interval;
        // One character, as a person types: a letter, a space now and then, a newline.
        let key = match k % 40 {
            39 => "\n",
            k if k % 6 == 5 => " ",
            k => ["a", "b", "c", "d", "e"][k % 5],
        };
        let end = a.text(&ua).map_or(0, |t| t.len());
        a.edit(&ua, end, end, key).await?;
    }
    let want = a.text(&ua).unwrap_or_default();
    let deadline = Instant::now() + DRAIN;
    while b.text(&ub).as_deref() != Some(want.as_str()) {
        ensure!(Instant::now() < deadline, "editor B never received every keystroke");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let elapsed = started.elapsed();
    let used = cpu_ms(&pids)?
        .iter()
        .zip(&from)
        .map(|(after, before)| after - before)
        .collect::<Vec<_>>();
    a.stop().await?;
    b.stop().await?;

    let names = ["typist's mesh-proxy lsp", "receiver's mesh-proxy lsp", "mesh-server"];
    let n = args.keystrokes as f64;
    Ok(names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            vec![
                name.to_string(),
                format!("{:.0}", used[i]),
                format!("{:.0}", idle[i]),
                format!("{:.1}", used[i] * 1000.0 / n),
                format!("{:.1}", (used[i] - idle[i]).max(0.0) * 1000.0 / n),
                format!("{:.1}", 100.0 * used[i] / (elapsed.as_secs_f64() * 1000.0)),
            ]
        })
        .collect())
}

/// A file of about `bytes` bytes of code-like text.
fn source(i: usize, bytes: usize) -> String {
    let mut s = String::with_capacity(bytes + 64);
    let mut j = 0;
    while s.len() < bytes {
        s.push_str(&format!(
            "fn item_{i}_{j}(x: u32) -> u32 {{ x.wrapping_mul({j}) + {i} }}\n"
        ));
        j += 1;
    }
    s
}

/// Memory of a proxy sharing a folder of `files` files with `open` of them open; `None`
/// files: a proxy that is in no room.
async fn memory(
    server: &TestServer,
    dir: &Path,
    files: Option<usize>,
    open: usize,
    bytes: usize,
) -> anyhow::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let c = LspClient::start(dir, "m", &server.url).await?;
    let label = match files {
        None => "in no room".to_string(),
        Some(files) => {
            for i in 0..files {
                std::fs::write(dir.join(format!("f{i:03}.rs")), source(i, bytes))?;
            }
            c.request("mesh/share", json!({})).await?;
            for i in 0..open {
                c.open(&format!("f{i:03}.rs")).await?;
            }
            // A round trip after the opens: the proxy has read them all.
            c.request("mesh/status", json!({})).await?;
            format!("{files} file{} shared, {open} open", if files == 1 { "" } else { "s" })
        }
    };
    tokio::time::sleep(SETTLE).await;
    let m = procstat::memory(pid_of(&c)?)?;
    c.stop().await?;
    Ok(vec![
        label,
        format!("{:.1}", m.rss_kib as f64 / 1024.0),
        format!("{:.1}", m.peak_kib as f64 / 1024.0),
    ])
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(
        args.rate > 0.0 && args.keystrokes > 0,
        "--rate and --keystrokes must be above 0"
    );
    eprintln!("[proxy_cost] CPU per keystroke...");
    let cpu_rows = cpu(&args).await?;
    eprintln!("[proxy_cost] memory...");
    let server = TestServer::start()?;
    let tmp = tempfile::tempdir()?;
    let mut mem_rows = Vec::new();
    for (k, (files, open)) in [(None, 0), (Some(1), 1), (Some(100), 1), (Some(100), 100)]
        .into_iter()
        .enumerate()
    {
        mem_rows.push(memory(&server, &tmp.path().join(format!("w{k}")), files, open, args.file_bytes).await?);
    }
    println!(
        "\nCPU time while editor A types {} keystrokes at {}/s (idle: the same span with nobody typing)",
        args.keystrokes, args.rate
    );
    table(
        args.markdown,
        &[
            "process",
            "CPU ms typing",
            "CPU ms idle",
            "µs / keystroke",
            "µs / keystroke less idle",
            "% of a core",
        ],
        &cpu_rows,
    );
    println!(
        "\nResident memory of mesh-proxy lsp, files of {} bytes",
        args.file_bytes
    );
    table(args.markdown, &["proxy", "RSS MiB", "peak MiB"], &mem_rows);
    Ok(())
}
