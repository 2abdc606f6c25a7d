//! `catchup`: how fast editors catch up after the server restarts under them, through real
//! `mesh-proxy lsp` processes and a real `mesh-server`.
//!
//! Three editors (each a scripted LSP client driving its own proxy) share a room; each types
//! at a steady rate at the end of its own file, and every editor has all three files open.
//! Mid-typing the server is stopped (`kill -9`, or SIGTERM for a graceful stop: the server
//! drains for its grace, serving its rooms, then closes their sockets and exits), stays down
//! for a while, and starts again on the same port and data directory. Typing never stops.
//!
//! "The reconnect settles" at the first moment every proxy has told its editor (`mesh/status`)
//! that it is `connected` with all the room's editors present: every socket is back, every
//! proxy has been welcomed and has seen the others' welcomes. Measured:
//! - the reconnect: from the server listening again to that moment;
//! - live latency: for keystrokes typed after it, the typist's `didChange` to each other
//!   editor's `workspace/applyEdit` carrying it (p50/p99/max);
//! - the backlog: for keystrokes typed while the server was down, how long after the
//!   reconnect settled each other editor received them (negative: before it settled);
//! - preservation: every editor's final text of every file is exactly the file's start text
//!   followed by every keystroke its typist typed, in order (before, during and after the
//!   restart), not merely the same text everywhere.
//!
//! Build the binaries first: `cargo build --release -p mesh-server -p mesh-proxy -p
//! mesh-bench`, then `MESH_SERVER_BIN=target/release/mesh-server
//! MESH_PROXY_BIN=target/release/mesh-proxy target/release/catchup`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context};
use clap::{Parser, ValueEnum};
use mesh_bench::percentile;
use mesh_testkit::{LspClient, TestServer};
use serde_json::json;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Stop {
    /// `kill -9`: the server has no chance to close anything.
    Kill9,
    /// SIGTERM: the server closes its sockets and stores what it holds.
    Term,
}

#[derive(Parser)]
#[command(about = "Editors' catch-up after a server restart, through mesh-proxy and mesh-server")]
struct Args {
    /// Ways of stopping the server, each measured in turn.
    #[arg(long, value_delimiter = ',', default_value = "kill9,term")]
    stop: Vec<Stop>,
    /// Editors in the room, each typing into its own file.
    #[arg(long, default_value_t = 3)]
    editors: usize,
    /// Keystrokes per second, per editor.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Seconds of typing before the server stops.
    #[arg(long, default_value_t = 3.0)]
    before: f64,
    /// Seconds the server stays down (after its exit).
    #[arg(long, default_value_t = 2.0)]
    down: f64,
    /// Seconds of typing after the server starts again.
    #[arg(long, default_value_t = 8.0)]
    after: f64,
    /// Print the table as Markdown.
    #[arg(long)]
    markdown: bool,
}

/// How long to wait for the last keystroke to reach everyone once typing ends.
const DRAIN: Duration = Duration::from_secs(20);

/// The server's default drain grace (`--drain-seconds`), which a SIGTERM waits out.
const DRAIN_GRACE_SECONDS: f64 = 3.0;

/// What every file holds before anyone types.
const START_TEXT: &str = "start\n";

/// One editor's keystrokes: the token each inserted and when its `didChange` was written.
type Typed = Vec<(String, Instant)>;

struct Row {
    stop: Stop,
    /// Server listening again → the reconnect settled, ms.
    reconnect_ms: f64,
    /// Server stopped → the reconnect settled, ms.
    outage_ms: f64,
    live: Vec<f64>,
    backlog: Vec<f64>,
    typed: usize,
    missing: usize,
}

fn file_of(i: usize) -> String {
    format!("typed-by-e{i}.txt")
}

/// The first `mesh/status` (after `since`, if given) that says `connected` with `editors`
/// people present.
fn settled_at(c: &LspClient, since: Option<Instant>, editors: usize) -> Option<Instant> {
    c.notifications_at("mesh/status").into_iter().find_map(|(at, s)| {
        let people = s["participants"].as_array().map_or(0, Vec::len);
        let after = since.is_none_or(|since| at > since);
        (after && s["state"] == "connected" && people == editors).then_some(at)
    })
}

async fn type_steadily(
    c: Arc<LspClient>,
    uri: String,
    who: usize,
    count: usize,
    interval: Duration,
) -> anyhow::Result<Typed> {
    let mut typed = Vec::with_capacity(count);
    let mut next = Instant::now();
    for k in 0..count {
        tokio::time::sleep_until(next.into()).await;
        next += interval;
        let token = format!("<e{who}k{k:05}>");
        let end = c.text(&uri).map_or(0, |t| t.len());
        let at = Instant::now();
        c.edit(&uri, end, end, &token).await?;
        typed.push((token, at));
    }
    Ok(typed)
}

async fn measure(stop: Stop, args: &Args) -> anyhow::Result<Row> {
    let n = args.editors.max(2);
    let server = TestServer::start()?;
    let tmp = tempfile::tempdir()?;
    let root0 = tmp.path().join("e0");
    std::fs::create_dir_all(&root0)?;
    for i in 0..n {
        std::fs::write(root0.join(file_of(i)), START_TEXT)?;
    }
    let host = LspClient::start(&root0, "e0", &server.url).await?;
    let link = host.request("mesh/share", json!({})).await?["link"]
        .as_str()
        .context("mesh/share gave no link")?
        .to_string();
    let mut editors = vec![host];
    for i in 1..n {
        let root = tmp.path().join(format!("e{i}"));
        std::fs::create_dir_all(&root)?;
        let c = LspClient::start(&root, &format!("e{i}"), &server.url).await?;
        c.request("mesh/join", json!({ "link": link })).await?;
        editors.push(c);
    }
    // uris[e][f]: editor e's document of file f.
    let mut uris = Vec::new();
    for c in &editors {
        let mut mine = Vec::new();
        for f in 0..n {
            mine.push(c.open_with(&file_of(f), START_TEXT).await?);
        }
        uris.push(mine);
    }
    for (c, mine) in editors.iter().zip(&uris) {
        for u in mine {
            c.wait_for("the start text", |c| c.text(u).as_deref() == Some(START_TEXT))
                .await?;
        }
        c.wait_for("everyone present", |c| settled_at(c, None, n).is_some())
            .await?;
    }

    let interval = Duration::from_secs_f64(1.0 / args.rate);
    // A graceful stop serves on through the drain grace before the outage starts.
    let grace = if stop == Stop::Term { DRAIN_GRACE_SECONDS } else { 0.0 };
    let count = (args.rate * (args.before + grace + args.down + args.after)).round() as usize;
    let editors: Vec<Arc<LspClient>> = editors.into_iter().map(Arc::new).collect();
    let typists: Vec<_> = editors
        .iter()
        .enumerate()
        .map(|(i, c)| tokio::spawn(type_steadily(c.clone(), uris[i][i].clone(), i, count, interval)))
        .collect();

    tokio::time::sleep(Duration::from_secs_f64(args.before)).await;
    let down = Duration::from_secs_f64(args.down);
    // Stopping and starting a process block: off the runtime's workers, so typing goes on.
    let (server, stopped_at, listening_at) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let mut server = server;
        match stop {
            Stop::Kill9 => server.kill9(),
            // The server drains first (3 s by default), serving its rooms, then closes their
            // sockets with 1012 and exits: the outage starts when it is gone.
            Stop::Term => {
                server.terminate()?;
            }
        }
        let stopped_at = Instant::now();
        std::thread::sleep(down);
        server.restart()?;
        Ok((server, stopped_at, Instant::now()))
    })
    .await??;

    let mut typed: Vec<Typed> = Vec::new();
    for t in typists {
        typed.push(t.await??);
    }
    let want: Vec<String> = typed
        .iter()
        .map(|t| START_TEXT.to_string() + &t.iter().map(|(tok, _)| tok.as_str()).collect::<String>())
        .collect();
    let deadline = Instant::now() + DRAIN;
    for (c, mine) in editors.iter().zip(&uris) {
        for (f, u) in mine.iter().enumerate() {
            while c.text(u).as_deref() != Some(want[f].as_str()) && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    let mut settled = None;
    for c in &editors {
        let at = settled_at(c, Some(stopped_at), n).context("an editor never reported the room back")?;
        settled = Some(settled.map_or(at, |s: Instant| s.max(at)));
    }
    let settled = settled.expect("two editors at least");

    let ms = |d: f64| d * 1000.0;
    let signed = |later: Instant, earlier: Instant| match later.checked_duration_since(earlier) {
        Some(d) => ms(d.as_secs_f64()),
        None => -ms(earlier.duration_since(later).as_secs_f64()),
    };
    let (mut live, mut backlog, mut missing) = (Vec::new(), Vec::new(), 0);
    for (e, c) in editors.iter().enumerate() {
        let log = c.applied_log();
        for (f, keys) in typed.iter().enumerate() {
            // Preservation: the editor holds exactly what the typist typed, in order.
            let text = c.text(&uris[e][f]).unwrap_or_default();
            if text != want[f] {
                let absent = keys.iter().filter(|(tok, _)| !text.contains(tok.as_str())).count();
                // Every keystroke there but the text differs (order, duplicates): the file
                // still counts once, so the run cannot pass.
                missing += absent.max(1);
            }
            if f == e {
                continue;
            }
            for (tok, at) in keys {
                let Some((arrived, _)) = log.iter().find(|(_, inserted)| inserted.contains(tok.as_str())) else {
                    continue;
                };
                if *at >= settled {
                    live.push(signed(*arrived, *at));
                } else if *at >= stopped_at {
                    backlog.push(signed(*arrived, settled));
                }
            }
        }
    }
    for c in editors {
        let c = Arc::try_unwrap(c).map_err(|_| anyhow::anyhow!("a typist still holds an editor"))?;
        c.stop().await?;
    }
    drop(server);
    Ok(Row {
        stop,
        reconnect_ms: signed(settled, listening_at),
        outage_ms: signed(settled, stopped_at),
        live,
        backlog,
        typed: typed.iter().map(Vec::len).sum(),
        missing,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ensure!(args.rate > 0.0, "--rate must be above 0");
    let mut rows = Vec::new();
    for &stop in &args.stop {
        eprintln!("[catchup] {stop:?}...");
        rows.push(measure(stop, &args).await?);
    }
    println!(
        "\nCatch-up after a server restart: {} editors typing {}/s each, server down {} s",
        args.editors, args.rate, args.down
    );
    let header = [
        "stop",
        "reconnect ms",
        "outage ms",
        "live n",
        "live p50 ms",
        "live p99 ms",
        "live max ms",
        "backlog n",
        "backlog p50 ms",
        "backlog p99 ms",
        "backlog max ms",
        "typed",
        "missing",
    ];
    if args.markdown {
        println!("| {} |", header.join(" | "));
        println!("|{}", " --- |".repeat(header.len()));
    } else {
        println!("{}", header.map(|h| format!("{h:>14}")).join(""));
    }
    let mut failed = false;
    for r in rows {
        let cells = [
            format!("{:?}", r.stop).to_lowercase(),
            format!("{:.0}", r.reconnect_ms),
            format!("{:.0}", r.outage_ms),
            r.live.len().to_string(),
            format!("{:.2}", percentile(&r.live, 0.5)),
            format!("{:.2}", percentile(&r.live, 0.99)),
            format!("{:.2}", percentile(&r.live, 1.0)),
            r.backlog.len().to_string(),
            format!("{:.1}", percentile(&r.backlog, 0.5)),
            format!("{:.1}", percentile(&r.backlog, 0.99)),
            format!("{:.1}", percentile(&r.backlog, 1.0)),
            r.typed.to_string(),
            r.missing.to_string(),
        ];
        failed |= r.missing > 0;
        if args.markdown {
            println!("| {} |", cells.join(" | "));
        } else {
            println!("{}", cells.map(|c| format!("{c:>14}")).join(""));
        }
    }
    ensure!(!failed, "keystrokes went missing: see the table");
    Ok(())
}
