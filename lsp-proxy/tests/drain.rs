//! Real proxies through a server's graceful drain (`server/src/drain.rs`): the room keeps
//! serving them through the drain grace, they are told 1012 ("service restart") when it
//! ends, and they reconnect to the server's replacement by themselves, promptly, with
//! nothing lost on either side.

use std::time::{Duration, Instant};

use mesh_testkit::cli::{eventually, read, ProxyCli};
use mesh_testkit::TestServer;

/// The drain grace of the server under test.
const GRACE: &str = "1";

/// How long the server stays away between its exit and its replacement's start.
const AWAY: Duration = Duration::from_millis(500);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxies_ride_a_drain_and_reconnect_to_the_replacement() {
    let server = TestServer::start_with(&["--drain-seconds", GRACE]).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(&a).unwrap();
    std::fs::write(a.join("before.txt"), "before the drain\n").unwrap();
    let mut share = ProxyCli::start(
        &server.url,
        &tmp.path().join("state-a"),
        &["share", a.to_str().unwrap()],
    );
    let link = share.line_starting("Join link").await;
    let link = link.rsplit(' ').next().unwrap().to_string();
    let mut join = ProxyCli::start(
        &server.url,
        &tmp.path().join("state-b"),
        &["join", &link, b.to_str().unwrap()],
    );
    join.line_starting("Joined").await;
    assert_eq!(read(b.join("before.txt")).as_deref(), Some("before the drain\n"));

    // SIGTERM: the room goes on serving both proxies through the grace.
    let readyz = format!("{}/readyz", server.url);
    let mut server = server;
    let stopping = tokio::task::spawn_blocking(move || {
        let code = server.terminate();
        (server, code)
    });
    let http = reqwest::Client::new();
    let mut draining = false;
    for _ in 0..200 {
        if let Ok(r) = http.get(&readyz).send().await {
            if r.status() == 503 {
                draining = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(draining, "/readyz never said draining");
    std::fs::write(a.join("during.txt"), "typed while the server drains\n").unwrap();
    eventually("a file written during the drain reaches the other proxy", || {
        read(b.join("during.txt")).as_deref() == Some("typed while the server drains\n")
    })
    .await;

    // The server closes the room with 1012 and exits; a file written while it is away...
    let (mut server, code) = stopping.await.unwrap();
    assert_eq!(code.unwrap(), Some(0));
    std::fs::write(a.join("away.txt"), "written while no server runs\n").unwrap();
    tokio::time::sleep(AWAY).await;
    // ...reaches the other side once the replacement is up: both proxies came back by
    // themselves.
    server.restart().unwrap();
    let back = Instant::now();
    eventually("the file written while away, through the replacement", || {
        read(b.join("away.txt")).as_deref() == Some("written while no server runs\n")
    })
    .await;
    let reconnected = back.elapsed();
    std::fs::write(b.join("after.txt"), "and back the other way\n").unwrap();
    eventually("a file from the joiner after the restart", || {
        read(a.join("after.txt")).as_deref() == Some("and back the other way\n")
    })
    .await;
    for (name, proxy) in [("share", &share), ("join", &join)] {
        let said = proxy.stderr();
        assert!(said.contains("1012"), "{name} was not told 1012: {said}");
    }
    println!("both proxies reconnected and synced {reconnected:?} after the replacement started");
    share.stop().await;
    join.stop().await;
}
