//! The seeded randomized convergence test: three editors, each with its own real
//! `mesh-proxy`, type at random into one file — multibyte text, unique markers, typing at the
//! same spot, large pastes, deletes across lines — while the network drops and the server is
//! killed and restarted. Once quiet, every buffer and the room's text must be byte-equal,
//! and every marker an editor typed must be there exactly once unless an edit that saw it
//! deleted it: agreement alone would pass a bridge that loses text everywhere at once.
//!
//! Two scripted cases beside it: an editor that lags behind a replace-all of hundreds of
//! separate changes and deletes across them, and three editors typing across a server
//! restart.
//!
//! Each failure prints its seed; replay one with `MESH_SEED=<seed> cargo nextest run -p
//! mesh-proxy --test convergence`. `MESH_SEEDS=<n>` sets how many seeds each shard runs.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
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

/// A marker is `«`, four digits, who typed it, the same four digits, `»`: a complete one can
/// only be made of its own characters, so counting complete markers is exact.
const MARKER_LEN: usize = 11;

/// The markers typed in one run, and those an edit that saw them deleted or split.
#[derive(Default)]
struct Markers {
    next: AtomicU32,
    typed: Mutex<Vec<String>>,
    deleted: Mutex<HashSet<String>>,
}

impl Markers {
    fn new_marker(&self, who: char) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let m = format!("«{n:04}{who}{n:04}»");
        self.typed.lock().unwrap().push(m.clone());
        m
    }

    /// The complete markers of `text`: byte ranges and the marker.
    fn spans(text: &str) -> Vec<(usize, usize, String)> {
        let mut out = Vec::new();
        for (i, _) in text.match_indices('«') {
            let rest = &text[i..];
            if let Some(m) = rest
                .char_indices()
                .nth(MARKER_LEN - 1)
                .map(|(j, c)| (j + c.len_utf8(), c))
            {
                if m.1 == '»' && rest.chars().skip(1).take(4).all(|c| c.is_ascii_digit()) {
                    out.push((i, i + m.0, rest[..m.0].to_string()));
                }
            }
        }
        out
    }

    /// An edit replaced `start..end` of `seen`: the markers it deleted (or split, typing
    /// inside one) were seen and went.
    fn edited(&self, seen: &str, start: usize, end: usize) {
        for (ms, me, m) in Self::spans(seen) {
            // Overlapping the range, or (for an insertion) strictly around its spot.
            if start < me && ms < end {
                self.deleted.lock().unwrap().insert(m);
            }
        }
    }

    /// Every marker typed is in `text` once, unless deleted (then at most once).
    fn check(&self, what: &str, text: &str) {
        let deleted = self.deleted.lock().unwrap();
        for m in self.typed.lock().unwrap().iter() {
            let n = text.matches(m.as_str()).count();
            if deleted.contains(m) {
                assert!(n <= 1, "{what}: {m} appears {n} times\n{text}");
            } else {
                assert_eq!(n, 1, "{what}: {m}, typed and never deleted, appears {n} times\n{text}");
            }
        }
    }
}

/// The user of `e` replaces bytes `start..end` with `text`; the markers the edit deleted or
/// split (in the text the user saw) are recorded as deleted.
async fn type_at(e: &LspClient, uri: &str, markers: &Markers, start: usize, end: usize, text: &str) {
    let (seen, s, en) = e.edit_seen(uri, start, end, text).await.unwrap();
    markers.edited(&seen, s, en);
}

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
    let markers = Markers::default();
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
        let who = ['a', 'b', 'c'][i];
        match roll {
            0..=44 => {
                let at = char_boundary(&text, &mut rng);
                let piece = if rng.random_bool(0.5) {
                    markers.new_marker(who)
                } else {
                    PIECES[rng.random_range(0..PIECES.len())].to_string()
                };
                type_at(e, uri, &markers, at, at, &piece).await;
            }
            45..=59 => {
                // Everyone loves the start and the end: typing at the same spot.
                let at = if rng.random_bool(0.5) { 0 } else { text.len() };
                let marker = markers.new_marker(who);
                type_at(e, uri, &markers, at, at, &marker).await;
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
                type_at(e, uri, &markers, a, b, "").await;
            }
            80..=82 => {
                let at = char_boundary(&text, &mut rng);
                type_at(e, uri, &markers, at, at, &paste(&mut rng)).await;
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
    let y = YClient::connect(&room_socket(&link, server.port)).await.unwrap();
    let want = editors[0].text(&uris[0]).unwrap();
    // The buffers may still be settling the last echo; the room must reach the same text.
    y.wait_for("room text", |c| c.text("f.txt").as_deref() == Some(want.as_str()))
        .await
        .unwrap_or_else(|e| panic!("seed {seed}: {e}: room {:?} editors {want:?}", y.text("f.txt")));
    y.close();
    // Preservation, not only agreement.
    markers.check(&format!("seed {seed}"), &want);
    for e in editors {
        e.stop().await.unwrap();
    }
}

/// The room socket's URL for a join link, on the server's own port.
fn room_socket(link: &str, port: u16) -> String {
    let room = link.split("/join/").nth(1).unwrap().split('?').next().unwrap();
    let token = link.split("token=").nth(1).unwrap();
    format!("ws://127.0.0.1:{port}/ws/{room}?token={token}")
}

/// Lines in the replace-all case: more than a batch to the editor holds (256 edits).
const REPLACED_LINES: usize = 300;

/// A peer replaces every `old` of a file, one separate change each, in one transaction (as
/// an editor's replace-all does), while the editor lags behind with the room's batch
/// unanswered; the user, who still sees `old` everywhere, deletes a third of the lines. The
/// user's deletion must not take the peer's text with it: every replacement the peer made is
/// in the final text exactly once, and the lines the user deleted are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lagging_editor_deleting_across_a_replace_all_keeps_the_peer_s_text() {
    let server = TestServer::start().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let text: String = (0..REPLACED_LINES).map(|i| format!("w{i} = old;\n")).collect();
    std::fs::write(tmp.path().join("f.txt"), &text).unwrap();
    let a = LspClient::start(tmp.path(), "ada", &server.url).await.unwrap();
    let link = a.request("mesh/share", json!({})).await.unwrap()["link"]
        .as_str()
        .unwrap()
        .to_string();
    let uri = a.open("f.txt").await.unwrap();
    // The session handles events in order: once this is answered, the file is attached.
    a.request("mesh/status", json!({})).await.unwrap();
    let peer = YClient::connect(&room_socket(&link, server.port)).await.unwrap();
    peer.wait_for("the file", |c| c.text("f.txt").as_deref() == Some(text.as_str()))
        .await
        .unwrap();

    a.lag(true).await;
    let replacements: Vec<String> = (0..REPLACED_LINES).map(|i| format!("«{i:04}P{i:04}»")).collect();
    {
        let file = peer.file("f.txt");
        let mut txn = yrs::Transact::transact_mut(&peer.doc);
        // Last first, so that each offset still holds; UTF-16 offsets are bytes here (ASCII).
        for (i, (at, _)) in text
            .match_indices("old")
            .collect::<Vec<_>>()
            .into_iter()
            .enumerate()
            .rev()
        {
            yrs::Text::remove_range(&file, &mut txn, at as u32, 3);
            yrs::Text::insert(&file, &mut txn, at as u32, &replacements[i]);
        }
    }
    a.wait_for("the room's batch", |c| !c.held_edits().is_empty())
        .await
        .unwrap();
    // The user deletes lines 100 to 199 of what they see.
    let start = text.find("w100 =").unwrap();
    let end = text.find("w200 =").unwrap();
    a.edit(&uri, start, end, "").await.unwrap();
    a.lag(false).await;

    a.wait_for("the editor to catch up", |c| {
        c.text(&uri) == peer.text("f.txt") && c.applied_edits() > 0
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: editor {:?} room {:?}", a.text(&uri), peer.text("f.txt")));
    let fin = a.text(&uri).unwrap();
    for r in &replacements {
        assert_eq!(fin.matches(r.as_str()).count(), 1, "{r} of the peer\n{fin}");
    }
    for i in 0..REPLACED_LINES {
        let present = fin.contains(&format!("w{i} ="));
        assert_eq!(present, !(100..200).contains(&i), "line w{i}\n{fin}");
    }
    peer.close();
    a.stop().await.unwrap();
}

/// Three editors type markers (and delete now and then) while the server restarts under
/// them: once quiet, all agree, and every marker typed is there exactly once unless an edit
/// that saw it deleted it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_editors_typing_across_a_server_restart_keep_every_marker() {
    let mut server = Some(TestServer::start().unwrap());
    let port = server.as_ref().unwrap().port;
    let url = server.as_ref().unwrap().url.clone();
    let mut rng = StdRng::seed_from_u64(7);
    let markers = Markers::default();
    let tmp = tempfile::tempdir().unwrap();
    let dirs: Vec<_> = ["a", "b", "c"].iter().map(|n| tmp.path().join(n)).collect();
    for d in &dirs {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(dirs[0].join("f.txt"), "start\n").unwrap();
    let a = LspClient::start(&dirs[0], "ada", &url).await.unwrap();
    let link = a.request("mesh/share", json!({})).await.unwrap()["link"]
        .as_str()
        .unwrap()
        .to_string();
    let b = LspClient::start(&dirs[1], "bob", &url).await.unwrap();
    b.request("mesh/join", json!({ "link": link })).await.unwrap();
    let c = LspClient::start(&dirs[2], "cyd", &url).await.unwrap();
    c.request("mesh/join", json!({ "link": link })).await.unwrap();
    let editors = [a, b, c];
    let mut uris = Vec::new();
    for e in &editors {
        uris.push(e.open("f.txt").await.unwrap());
    }
    let mut restart = None;
    for step in 0..150 {
        if step == 50 {
            // The restart runs beside the typing: edits go on while the server is away.
            let mut s = server.take().expect("one restart");
            restart = Some(tokio::task::spawn_blocking(move || {
                s.restart().unwrap();
                s
            }));
        }
        let i = rng.random_range(0..3);
        let (e, uri) = (&editors[i], &uris[i]);
        let text = e.text(uri).unwrap();
        if rng.random_bool(0.15) {
            let s = char_boundary(&text, &mut rng);
            let end = text[s..].char_indices().nth(12).map_or(text.len(), |(j, _)| s + j);
            type_at(e, uri, &markers, s, end, "").await;
        } else {
            let at = char_boundary(&text, &mut rng);
            let m = markers.new_marker(['a', 'b', 'c'][i]);
            type_at(e, uri, &markers, at, at, &m).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..8))).await;
    }
    let _server = restart.expect("restarted").await.unwrap();
    let same = |_: &LspClient| {
        let t: Vec<_> = editors.iter().zip(&uris).map(|(e, u)| e.text(u).unwrap()).collect();
        t[0] == t[1] && t[1] == t[2]
    };
    editors[0].wait_for("convergence", same).await.unwrap_or_else(|e| {
        let t: Vec<_> = editors.iter().zip(&uris).map(|(e, u)| e.text(u).unwrap()).collect();
        panic!(
            "{e}\n--- ada ---\n{}\n--- bob ---\n{}\n--- cyd ---\n{}",
            t[0], t[1], t[2]
        )
    });
    let want = editors[0].text(&uris[0]).unwrap();
    let y = YClient::connect(&room_socket(&link, port)).await.unwrap();
    y.wait_for("room text", |c| c.text("f.txt").as_deref() == Some(want.as_str()))
        .await
        .unwrap_or_else(|e| panic!("{e}: room {:?} editors {want:?}", y.text("f.txt")));
    y.close();
    markers.check("across a restart", &want);
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
