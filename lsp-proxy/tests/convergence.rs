//! The seeded randomized convergence test: three editors, each with its own real
//! `mesh-proxy`, type at random into one file — multibyte text, typing at the same spot,
//! large pastes, deletes across lines — while the network drops and the server is killed
//! and restarted. Once quiet, every buffer and the room's text must be byte-equal.
//!
//! Each failure prints its seed; replay one with `MESH_SEED=<seed> cargo nextest run -p
//! mesh-proxy --test convergence`. `MESH_SEEDS=<n>` sets how many seeds each shard runs.

use std::time::Duration;

use mesh_testkit::{LspClient, NetGate, TestServer, YClient};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

/// Seeds per shard by default; four shards make the 200 seeds CI runs.
const SEEDS_PER_SHARD: u64 = 50;

/// Random actions per seed.
const STEPS: usize = 40;

const PIECES: &[&str] = &["a", "é", "漢字", "🎉", "\n", "hello world ", "x", "ß", "👩‍💻"];

fn char_boundary(text: &str, rng: &mut StdRng) -> usize {
    let bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).chain([text.len()]).collect();
    bounds[rng.random_range(0..bounds.len())]
}

fn paste(rng: &mut StdRng) -> String {
    let lines = rng.random_range(20..80);
    (0..lines)
        .map(|i| format!("line {i} of a paste {} 漢\n", rng.random::<u32>()))
        .collect()
}

async fn run_seed(seed: u64, server: &mut TestServer, gate: &NetGate) {
    let mut rng = StdRng::seed_from_u64(seed);
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<_> = ["a", "b", "c"].iter().map(|n| tmp.path().join(n)).collect();
    for d in &dirs {
        std::fs::create_dir_all(d).unwrap();
    }
    let initial: String = (0..rng.random_range(1..6))
        .map(|i| format!("line {i} 🎉 é\n"))
        .collect();
    std::fs::write(dirs[0].join("f.txt"), &initial).unwrap();

    let a = LspClient::start(&dirs[0], "ada", &gate.url).await.unwrap();
    let link = a.request("mesh/share", json!({})).await.unwrap()["link"]
        .as_str()
        .unwrap()
        .to_string();
    let b = LspClient::start(&dirs[1], "bob", &gate.url).await.unwrap();
    b.request("mesh/join", json!({ "link": link })).await.unwrap();
    let c = LspClient::start(&dirs[2], "cyd", &gate.url).await.unwrap();
    c.request("mesh/join", json!({ "link": link })).await.unwrap();
    let editors = [a, b, c];
    let mut uris = Vec::new();
    for e in &editors {
        uris.push(e.open("f.txt").await.unwrap());
    }

    let mut blocked = false;
    let mut restarted = false;
    for _ in 0..STEPS {
        let i = rng.random_range(0..3);
        let (e, uri) = (&editors[i], &uris[i]);
        let text = e.text(uri).unwrap();
        let roll = rng.random_range(0..100);
        match roll {
            0..=44 => {
                let at = char_boundary(&text, &mut rng);
                e.edit(uri, at, at, PIECES[rng.random_range(0..PIECES.len())])
                    .await
                    .unwrap();
            }
            45..=59 => {
                // Everyone loves the start and the end: typing at the same spot.
                let at = if rng.random_bool(0.5) { 0 } else { text.len() };
                e.edit(uri, at, at, PIECES[rng.random_range(0..PIECES.len())])
                    .await
                    .unwrap();
            }
            60..=79 => {
                let a = char_boundary(&text, &mut rng);
                let b = char_boundary(&text, &mut rng);
                let (a, b) = (a.min(b), a.max(b));
                let b = text[a..]
                    .char_indices()
                    .map(|(j, _)| a + j)
                    .find(|&j| j >= a + 40)
                    .unwrap_or(b)
                    .min(b);
                e.edit(uri, a, b, "").await.unwrap();
            }
            80..=82 => {
                let at = char_boundary(&text, &mut rng);
                e.edit(uri, at, at, &paste(&mut rng)).await.unwrap();
            }
            83..=87 => gate.cut(),
            88..=90 => {
                blocked = !blocked;
                gate.block(blocked);
                if blocked {
                    gate.cut();
                }
            }
            91 if !restarted => {
                restarted = true;
                server.restart().unwrap();
            }
            _ => tokio::time::sleep(Duration::from_millis(rng.random_range(1..15))).await,
        }
        if rng.random_bool(0.3) {
            tokio::task::yield_now().await;
        }
    }
    gate.block(false);

    // Quiet: everyone converges on one text, and it is the room's.
    let texts = |_: &LspClient| {
        let t: Vec<_> = editors.iter().zip(&uris).map(|(e, u)| e.text(u).unwrap()).collect();
        t[0] == t[1] && t[1] == t[2]
    };
    if let Err(e) = editors[0].wait_for("convergence", texts).await {
        let t: Vec<_> = editors.iter().zip(&uris).map(|(e, u)| e.text(u).unwrap()).collect();
        panic!(
            "seed {seed}: {e}\n--- ada ---\n{}\n--- bob ---\n{}\n--- cyd ---\n{}",
            t[0], t[1], t[2]
        );
    }
    let room = link.split("/join/").nth(1).unwrap().split('?').next().unwrap();
    let token = link.split("token=").nth(1).unwrap();
    let y = YClient::connect(&format!("ws://127.0.0.1:{}/ws/{room}?token={token}", server.port))
        .await
        .unwrap();
    let want = editors[0].text(&uris[0]).unwrap();
    // The buffers may still be settling the last echo; the room must reach the same text.
    y.wait_for("room text", |c| c.text("f.txt").as_deref() == Some(want.as_str()))
        .await
        .unwrap_or_else(|e| panic!("seed {seed}: {e}: room {:?} editors {want:?}", y.text("f.txt")));
    y.close();
    for e in editors {
        e.stop().await.unwrap();
    }
}

async fn shard(n: u64) {
    let seeds: Vec<u64> = match std::env::var("MESH_SEED").ok().and_then(|s| s.parse().ok()) {
        Some(seed) if n == 0 => vec![seed],
        Some(_) => return,
        None => {
            let per = std::env::var("MESH_SEEDS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(SEEDS_PER_SHARD);
            let base: u64 = std::env::var("MESH_SEED_BASE")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            (base + n * per..base + (n + 1) * per).collect()
        }
    };
    let mut server = TestServer::start().unwrap();
    let gate = NetGate::start(server.port).await.unwrap();
    for seed in seeds {
        println!("seed {seed}");
        run_seed(seed, &mut server, &gate).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converge_shard_0() {
    shard(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converge_shard_1() {
    shard(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converge_shard_2() {
    shard(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn converge_shard_3() {
    shard(3).await;
}
