//! `debug_start`: time from "start debugging" to the first `stopped` at a breakpoint, through
//! a real `mesh-server` and real Docker, with a warm container and with a cold one. Each
//! sample starts the room's debug session for a program with a breakpoint (Python, C, Go,
//! Rust), does what an editor does (breakpoints, `configurationDone`) and stops the clock at
//! the `stopped` event; then it continues the program to its end. `python-launch` is Python
//! as it was debugged before the prestarted adapter: the registry's former `[debug]` table,
//! given to the server with `--languages`, side by side with today's.
//!
//! `cargo build --release -p mesh-server && MESH_SERVER_BIN=target/release/mesh-server
//! cargo run --release -p mesh-bench --bin debug_start -- --markdown`

use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use mesh_bench::percentile;
use mesh_protocol::{ClientMessage, ServerMessage};
use mesh_testkit::{TestServer, YClient};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(about = "Debug start latency: start debugging → first stop at a breakpoint")]
struct Args {
    /// Sessions per language and way.
    #[arg(long, default_value_t = 10)]
    iterations: usize,
    /// Languages to measure.
    #[arg(long, value_delimiter = ',', default_value = "python,python-launch,c,go,rust")]
    languages: Vec<String>,
    /// Print the table as Markdown.
    #[arg(long)]
    markdown: bool,
}

/// The program and the line of its breakpoint.
fn program(lang: &str) -> anyhow::Result<(&'static str, &'static str, u32)> {
    Ok(match lang {
        "python" | "python-launch" => ("main.py", "x = 41\ny = x + 1\nprint(y)\n", 2),
        "go" => (
            "main.go",
            "package main\n\nimport \"fmt\"\n\nfunc main() {\n\tx := 41\n\tfmt.Println(x + 1)\n}\n",
            7,
        ),
        "rust" => (
            "main.rs",
            "fn main() {\n    let x = 41;\n    println!(\"{}\", x + 1);\n}\n",
            3,
        ),
        "c" => (
            "main.c",
            "#include <stdio.h>\nint main(void) {\n    int x = 41;\n    printf(\"%d\\n\", x + 1);\n    return 0;\n}\n",
            4,
        ),
        other => anyhow::bail!("no program for {other:?}"),
    })
}

fn daps(c: &YClient) -> Vec<Value> {
    c.mesh_messages()
        .into_iter()
        .filter_map(|m| match m {
            ServerMessage::Dap { message, .. } => Some(message),
            _ => None,
        })
        .collect()
}

fn count(c: &YClient, pred: impl Fn(&ServerMessage) -> bool) -> usize {
    c.mesh_messages().iter().filter(|m| pred(m)).count()
}

/// One session: returns the time to the first stop.
async fn one(c: &YClient, lang: &str, seq: &mut i64) -> anyhow::Result<Duration> {
    let (path, _, line) = program(lang)?;
    let ended_before = count(c, |m| matches!(m, ServerMessage::DebugEnded { .. }));
    let joined_before = count(c, |m| matches!(m, ServerMessage::DebugJoined { .. }));
    let dap_before = daps(c).len();
    let t0 = Instant::now();
    c.send_mesh(&ClientMessage::DebugStart {
        path: path.into(),
        language: None,
    });
    c.wait_for("debug_joined", |c| {
        count(c, |m| matches!(m, ServerMessage::DebugJoined { .. })) > joined_before
    })
    .await?;
    let id = c
        .mesh_messages()
        .into_iter()
        .rev()
        .find_map(|m| match m {
            ServerMessage::DebugJoined { debug_id, .. } => Some(debug_id),
            _ => None,
        })
        .context("no session id")?;
    let new_event = |c: &YClient, name: &str| {
        daps(c)
            .into_iter()
            .skip(dap_before)
            .find(|m| m["type"] == "event" && m["event"] == name)
    };
    c.wait_for("initialized", |c| new_event(c, "initialized").is_some())
        .await?;
    let initialized = t0.elapsed();
    let mut send = |command: &str, arguments: Value| {
        *seq += 1;
        c.send_mesh(&ClientMessage::Dap {
            debug_id: id.clone(),
            message: json!({"type": "request", "seq": *seq, "command": command, "arguments": arguments}),
        });
    };
    send(
        "setBreakpoints",
        json!({"source": {"path": format!("/work/{path}")}, "breakpoints": [{"line": line}]}),
    );
    send("configurationDone", json!({}));
    c.wait_for("stopped", |c| new_event(c, "stopped").is_some()).await?;
    let first_stop = t0.elapsed();
    if std::env::var_os("MESH_BENCH_PHASES").is_some() {
        eprintln!(
            "{lang}: initialized after {:.0} ms, stopped {:.0} ms later",
            initialized.as_secs_f64() * 1000.0,
            (first_stop - initialized).as_secs_f64() * 1000.0
        );
    }
    let thread = new_event(c, "stopped").context("stopped")?["body"]["threadId"].clone();
    send("continue", json!({"threadId": thread}));
    c.wait_for("debug_ended", |c| {
        count(c, |m| matches!(m, ServerMessage::DebugEnded { .. })) > ended_before
    })
    .await?;
    Ok(first_stop)
}

/// Python's `[debug]` table before the prestarted adapter: debugpy's adapter started per
/// session, which launches the program.
const PYTHON_LAUNCH: &str = r#"[languages.python.debug]
adapter = ["python3", "-m", "debugpy.adapter"]
launch = { program = "/work/main.py", cwd = "/work", console = "internalConsole", justMyCode = true, redirectOutput = true, python = ["/tmp/mesh-stdin-python3"] }
"#;

/// The built-in registry with Python's `[debug]` table replaced by [`PYTHON_LAUNCH`].
fn launch_registry() -> anyhow::Result<tempfile::NamedTempFile> {
    let text = mesh_runner::registry::BUILTIN_REGISTRY;
    let start = text
        .find("[languages.python.debug]")
        .context("the registry has no Python debug table")?;
    let end = start
        + text[start..]
            .find("\n[languages.javascript]")
            .context("no table after Python's")?;
    let mut file = tempfile::NamedTempFile::new()?;
    std::io::Write::write_all(
        &mut file,
        format!("{}{PYTHON_LAUNCH}{}", &text[..start], &text[end..]).as_bytes(),
    )?;
    mesh_runner::Registry::load(file.path())?;
    Ok(file)
}

async fn measure(pool: &str, lang: &str, iterations: usize) -> anyhow::Result<Vec<f64>> {
    let registry = (lang == "python-launch").then(launch_registry).transpose()?;
    let mut args = vec!["--run-images", "local", "--run-pool", pool];
    if let Some(file) = &registry {
        args.extend(["--languages", file.path().to_str().context("a temporary path")?]);
    }
    let server = TestServer::start_with(&args)?;
    let session = server.create_session("bench").await?;
    let c = YClient::connect_mesh(&server.ws_url(&session, &session.created.writer_token), "bench").await?;
    c.wait_synced().await?;
    let (path, text, _) = program(lang)?;
    c.insert(path, 0, text);
    let mut seq = 0;
    // The first session warms caches (and, with a pool, starts warming the debug containers).
    one(&c, lang, &mut seq).await?;
    let mut samples = Vec::new();
    for _ in 0..iterations {
        // Sessions seconds apart, as people start them: the pool has refilled.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        samples.push(one(&c, lang, &mut seq).await?.as_secs_f64() * 1000.0);
    }
    Ok(samples)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut rows = Vec::new();
    for lang in &args.languages {
        for (way, pool) in [("warm container", "1"), ("cold container", "0")] {
            let s = measure(pool, lang, args.iterations).await?;
            rows.push(format!(
                "{lang} | {way} | {:.0} | {:.0} | {:.0}",
                percentile(&s, 0.5),
                percentile(&s, 0.99),
                percentile(&s, 1.0)
            ));
        }
    }
    let head = "language | way | first stop p50 ms | p99 ms | max ms";
    if args.markdown {
        println!("| {head} |\n|---|---|---|---|---|");
        for r in &rows {
            println!("| {r} |");
        }
    } else {
        println!("{}", head.replace(" | ", "\t"));
        for r in &rows {
            println!("{}", r.replace(" | ", "\t"));
        }
    }
    println!(
        "\n{} sessions per language and way, after one untimed session.",
        args.iterations
    );
    Ok(())
}
