//! `hostile`: what one hostile client costs two honest ones. Two writers in one room of a
//! real `mesh-server` take turns typing unique markers; the program prints their edit round
//! trip (p50, p99) with no attacker, then while one attacker runs each attack against the
//! same server, side by side. Every row also checks that every honest edit arrived exactly
//! once; an attack that crashed the server ends the program with an error.
//!
//! `cargo build --release -p mesh-server && MESH_SERVER_BIN=target/release/mesh-server
//! cargo run --release -p mesh-bench --bin hostile -- --markdown`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use mesh_testkit::attacks::{
    awareness_frame, deep_value_update, honest_edits, split_sequence, update_frame, YRS_CRASHERS,
};
use mesh_testkit::{Session, TestServer, YClient};
use tokio::io::AsyncWriteExt;

#[derive(Parser)]
#[command(about = "Honest edit round trips while one client attacks the server")]
struct Args {
    /// Honest edits per row.
    #[arg(long, default_value_t = 300)]
    edits: usize,
    /// Print the table as Markdown.
    #[arg(long)]
    markdown: bool,
}

/// The document limit the server runs with here, so the oversized-document attack reaches
/// it quickly.
const MAX_DOC_BYTES: &str = "8388608";

/// Half-sent HTTP requests the slow-headers attacker keeps open.
const HALF_OPEN: usize = 200;

#[derive(Clone, Copy, PartialEq)]
enum Attack {
    None,
    CorruptUpdates,
    DeepValues,
    AwarenessFlood,
    AwarenessForgery,
    OversizedDocument,
    GarbageFrames,
    HalfSentRequests,
    RoomCreationFlood,
}

impl Attack {
    const ALL: [Attack; 9] = [
        Attack::None,
        Attack::CorruptUpdates,
        Attack::DeepValues,
        Attack::AwarenessFlood,
        Attack::AwarenessForgery,
        Attack::OversizedDocument,
        Attack::GarbageFrames,
        Attack::HalfSentRequests,
        Attack::RoomCreationFlood,
    ];

    fn name(self) -> &'static str {
        match self {
            Attack::None => "no attacker",
            Attack::CorruptUpdates => "updates that crash yrs unchecked (writer)",
            Attack::DeepValues => "values nested 20,000 deep (reader)",
            Attack::AwarenessFlood => "awareness flood, 8 KiB states (reader)",
            Attack::AwarenessForgery => "another's cursor overwritten (reader)",
            Attack::OversizedDocument => "1 MiB pastes past the size limit (writer)",
            Attack::GarbageFrames => "garbage frames, reconnecting (reader)",
            Attack::HalfSentRequests => "200 half-sent HTTP requests held",
            Attack::RoomCreationFlood => "room creation flood",
        }
    }
}

/// What an attacker did, for the table.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
}

async fn connect(server: &TestServer, session: &Session, token: &str, name: &str) -> anyhow::Result<YClient> {
    let c = YClient::connect_mesh(&server.ws_url(session, token), name).await?;
    c.wait_synced().await?;
    Ok(c)
}

/// Runs `attack` until `stop` is set.
async fn attack(
    kind: Attack,
    server: Arc<TestServer>,
    session: Arc<Session>,
    victim: yrs::block::ClientID,
    stop: Arc<AtomicBool>,
    tally: Arc<Tally>,
) -> anyhow::Result<()> {
    let created = &session.created;
    let pause = || tokio::time::sleep(Duration::from_millis(1));
    match kind {
        Attack::None => {}
        Attack::CorruptUpdates => {
            let c = connect(&server, &session, &created.writer_token, "mallory").await?;
            let updates: Vec<Vec<u8>> = YRS_CRASHERS.iter().flat_map(|s| split_sequence(s)).collect();
            while !stop.load(Ordering::Relaxed) {
                for u in &updates {
                    c.send_raw(update_frame(u.clone()));
                    tally.sent.fetch_add(1, Ordering::Relaxed);
                }
                pause().await;
            }
        }
        Attack::DeepValues => {
            let c = connect(&server, &session, &created.reader_token, "eve").await?;
            let frame = update_frame(deep_value_update(20_000));
            while !stop.load(Ordering::Relaxed) {
                c.send_raw(frame.clone());
                tally.sent.fetch_add(1, Ordering::Relaxed);
                pause().await;
            }
        }
        Attack::AwarenessFlood => {
            let c = connect(&server, &session, &created.reader_token, "eve").await?;
            let pad = "x".repeat(8 * 1024);
            let mut clock = 0u32;
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..50 {
                    clock += 1;
                    let state = format!(r#"{{"user":{{"name":"eve"}},"pad":"{pad}{clock}"}}"#);
                    c.send_raw(awareness_frame(yrs::block::ClientID::new(4242), &state, clock));
                    tally.sent.fetch_add(1, Ordering::Relaxed);
                }
                pause().await;
            }
        }
        Attack::AwarenessForgery => {
            let c = connect(&server, &session, &created.reader_token, "eve").await?;
            let mut clock = 1_000_000u32;
            while !stop.load(Ordering::Relaxed) {
                clock += 1;
                c.send_raw(awareness_frame(victim, r#"{"user":{"name":"eve"}}"#, clock));
                c.send_raw(awareness_frame(victim, "null", clock + 1));
                tally.sent.fetch_add(2, Ordering::Relaxed);
                pause().await;
            }
        }
        Attack::OversizedDocument => {
            let c = connect(&server, &session, &created.writer_token, "mallory").await?;
            let chunk = "y".repeat(1024 * 1024);
            while !stop.load(Ordering::Relaxed) {
                c.insert("junk.txt", 0, &chunk);
                tally.sent.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Attack::GarbageFrames => {
            while !stop.load(Ordering::Relaxed) {
                let Ok(c) = YClient::connect(&server.ws_url(&session, &created.reader_token)).await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                for i in 0..40u8 {
                    c.send_raw(vec![0xff, i, 0xff, 0xfe, 0x00]);
                    tally.sent.fetch_add(1, Ordering::Relaxed);
                }
                let _ = tokio::time::timeout(Duration::from_secs(2), c.wait_closed()).await;
            }
        }
        Attack::HalfSentRequests => {
            let addr = format!("127.0.0.1:{}", server.port);
            let mut held = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                held.retain(|s: &tokio::net::TcpStream| s.peer_addr().is_ok());
                while held.len() < HALF_OPEN {
                    let mut s = tokio::net::TcpStream::connect(&addr).await?;
                    s.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Slow: ").await?;
                    held.push(s);
                    tally.sent.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Attack::RoomCreationFlood => {
            let url = format!("http://127.0.0.1:{}/api/sessions", server.port);
            while !stop.load(Ordering::Relaxed) {
                let _ = server
                    .http()
                    .post(&url)
                    .json(&serde_json::json!({"name": "flood"}))
                    .send()
                    .await;
                tally.sent.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(args.edits >= 10, "--edits must be at least 10");
    let server = Arc::new(TestServer::start_with(&["--max-doc-bytes", MAX_DOC_BYTES])?);
    let session = Arc::new(server.create_session("hostile").await?);
    let writer = &session.created.writer_token;
    let a = connect(&server, &session, writer, "ada").await?;
    let b = connect(&server, &session, writer, "bob").await?;
    a.set_awareness(serde_json::json!({"user": {"name": "ada"}}))?;
    let victim = a.awareness.lock().expect("awareness lock").client_id();
    a.insert("main.py", 0, "print('hi')\n");
    b.wait_for("the file", |c| c.text("main.py").is_some()).await?;
    // Warm up: the first edits pay for connection set-up.
    honest_edits(&a, &b, "main.py", 20).await?;

    let head = ["attack", "honest edits", "p50 ms", "p99 ms", "attacker sent"];
    if args.markdown {
        println!("| {} |", head.join(" | "));
        println!("|{}", "---|".repeat(head.len()));
    } else {
        println!(
            "{:<44} {:>12} {:>8} {:>8} {:>14}",
            head[0], head[1], head[2], head[3], head[4]
        );
    }
    for kind in Attack::ALL {
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Tally::default());
        let attacker = tokio::spawn(attack(
            kind,
            server.clone(),
            session.clone(),
            victim,
            stop.clone(),
            tally.clone(),
        ));
        // Let the attack get going before measuring.
        tokio::time::sleep(Duration::from_millis(300)).await;
        let rtts = honest_edits(&a, &b, "main.py", args.edits).await?;
        stop.store(true, Ordering::Relaxed);
        attacker.await??;
        let sent = tally.sent.load(Ordering::Relaxed);
        let (p50, p99) = (rtts.quantile(0.5), rtts.quantile(0.99));
        if args.markdown {
            println!("| {} | {} | {p50:.2} | {p99:.2} | {sent} |", kind.name(), args.edits);
        } else {
            println!(
                "{:<44} {:>12} {p50:>8.2} {p99:>8.2} {sent:>14}",
                kind.name(),
                args.edits
            );
        }
    }
    let live = server
        .http()
        .get(format!("http://127.0.0.1:{}/livez", server.port))
        .send()
        .await?;
    anyhow::ensure!(live.status().is_success(), "the server is not live after the attacks");
    println!("\nThe server stayed up; every honest edit arrived exactly once in both copies.");
    Ok(())
}
