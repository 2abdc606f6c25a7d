//! A proxy finds a server back from a long outage promptly: while nothing listens at the
//! server's address, the proxy retries on a short period instead of its grown backoff
//! (`lsp-proxy/src/room.rs`), so an edit typed right after the restart reaches the other
//! editor in well under a second, not after the seconds the backoff had reached.

use std::time::{Duration, Instant};

use mesh_testkit::{LspClient, TestServer};
use serde_json::json;

/// How long the server stays away: long enough for the old exponential backoff (100 ms,
/// doubling, ±25% jitter, capped at 5 s) to be waiting 3.75 s or more between attempts, and
/// to have made its sixth attempt (7.9 s at the latest) before the server comes back.
const AWAY: Duration = Duration::from_secs(8);

/// How long after the server listens again the edit may take to reach the other editor:
/// three times the longest retry period while refused (312 ms) plus the round trip. A retry
/// driven by the old backoff had its next attempt 0.5-6 s after the restart, past this in
/// about 99 runs of 100.
const FOUND_WITHIN: Duration = Duration::from_millis(1200);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_typed_right_after_a_long_outage_reaches_the_peer_without_waiting_out_a_backoff() {
    let mut server = TestServer::start().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (da, db) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(&da).unwrap();
    std::fs::create_dir_all(&db).unwrap();
    std::fs::write(da.join("f.txt"), "start\n").unwrap();
    let a = LspClient::start(&da, "ada", &server.url).await.unwrap();
    let link = a.request("mesh/share", json!({})).await.unwrap()["link"]
        .as_str()
        .unwrap()
        .to_string();
    let b = LspClient::start(&db, "bob", &server.url).await.unwrap();
    b.request("mesh/join", json!({ "link": link })).await.unwrap();
    let ua = a.open_with("f.txt", "start\n").await.unwrap();
    let ub = b.open_with("f.txt", "start\n").await.unwrap();
    a.edit(&ua, 6, 6, "before\n").await.unwrap();
    b.wait_for("the edit before the outage", |c| {
        c.text(&ub).as_deref() == Some("start\nbefore\n")
    })
    .await
    .unwrap();

    // The server dies and stays away; both proxies keep knocking.
    let restarted = tokio::task::spawn_blocking(move || {
        server.kill9();
        std::thread::sleep(AWAY);
        server.restart().unwrap();
        (server, Instant::now())
    });
    let (_server, listening) = restarted.await.unwrap();
    a.edit(&ua, 13, 13, "after\n").await.unwrap();
    b.wait_for("the edit after the restart", |c| {
        c.text(&ub).as_deref() == Some("start\nbefore\nafter\n")
    })
    .await
    .unwrap();
    let took = listening.elapsed();
    assert!(
        took <= FOUND_WITHIN,
        "the edit typed after the restart took {took:?} to reach the other editor: the proxies \
         waited on a backoff timer while the server was already back"
    );
    a.stop().await.unwrap();
    b.stop().await.unwrap();
}
