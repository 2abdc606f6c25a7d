//! Graceful drain on SIGTERM (`server/src/drain.rs`), with real servers on a real Postgres:
//! a draining node says so on `/readyz`, refuses new joins, goes on serving its open rooms
//! through the grace, then closes their sockets with 1012 so clients reconnect to another
//! node; every edit a client saw acknowledged is there on the other node.

use std::time::{Duration, Instant};

use mesh_testkit::soak::{connect, markers_in, type_marker};
use mesh_testkit::{TestPostgres, TestServer, YClient};

/// The drain grace the node under test gets: long enough to type through and to see
/// `/readyz` fail, short enough to keep the test quick.
const GRACE_SECS: u64 = 2;

/// How often the typist types a marker, as a quick person does.
const KEYSTROKE_GAP: Duration = Duration::from_millis(20);

/// A passing test never waits this long for the node to start draining.
const SETTLE: Duration = Duration::from_secs(15);

/// The file the typist types into.
const FILE: &str = "notes.md";

/// The typist's name in its markers.
const WHO: &str = "m";

#[tokio::test]
async fn a_draining_node_refuses_joins_serves_its_rooms_then_sends_clients_elsewhere_losing_nothing() {
    let pg = TestPostgres::start().unwrap();
    let url = pg.url();
    let grace = GRACE_SECS.to_string();
    let a = TestServer::start_with(&["--store", &url, "--drain-seconds", &grace]).unwrap();
    let b = TestServer::start_with(&["--store", &url]).unwrap();
    let session = a.create_session("drain").await.unwrap();
    let writer = &session.created.writer_token;
    let typist = connect(&a, &session, writer, "drain").await.unwrap();
    let observer = connect(&a, &session, writer, "drain").await.unwrap();

    let mut typed = 0usize;
    for _ in 0..20 {
        type_marker(&typist, FILE, WHO, &mut typed);
        tokio::time::sleep(KEYSTROKE_GAP).await;
    }

    // SIGTERM; `terminate` blocks until the process exits, so it runs beside the test.
    let readyz = format!("{}/readyz", a.url);
    let http = a.http().clone();
    let ws_url = a.ws_url(&session, &session.created.writer_token);
    let sigterm_at = Instant::now();
    let mut a = a;
    let stopped = tokio::task::spawn_blocking(move || {
        let code = a.terminate();
        (a, code)
    });

    // The node says it is draining, and the room goes on serving meanwhile.
    let draining_from = loop {
        assert!(sigterm_at.elapsed() < SETTLE, "/readyz never said draining");
        type_marker(&typist, FILE, WHO, &mut typed);
        let answer = http.get(&readyz).send().await.unwrap();
        if answer.status() == 503 {
            let body = answer.text().await.unwrap();
            assert!(body.contains("draining"), "{body}");
            break typed;
        }
        assert_eq!(answer.status(), 200);
        tokio::time::sleep(KEYSTROKE_GAP).await;
    };
    let refused = YClient::connect(&ws_url)
        .await
        .err()
        .expect("a draining node refuses joins");
    assert!(format!("{refused:#}").contains("503"), "{refused:#}");

    // Type until the node closes the socket; it must say "reconnect elsewhere" (1012).
    while typist.closed().is_none() {
        assert!(sigterm_at.elapsed() < SETTLE, "the draining node never closed the room");
        type_marker(&typist, FILE, WHO, &mut typed);
        tokio::time::sleep(KEYSTROKE_GAP).await;
    }
    let took = sigterm_at.elapsed();
    let (code, reason) = typist.closed().unwrap();
    assert_eq!(code, 1012, "{reason}");
    assert_eq!(observer.wait_closed().await.unwrap().0, 1012);
    assert!(
        took >= Duration::from_secs(GRACE_SECS),
        "rooms closed after {took:?}, before the {GRACE_SECS} s grace"
    );
    let (_a, exit) = stopped.await.unwrap();
    assert_eq!(exit.unwrap(), Some(0), "a drained node exits cleanly");

    // What the observer saw was acknowledged (durable before it was sent); some of it was
    // typed while the node was draining.
    let acked = markers_in(&observer.text(FILE).unwrap_or_default(), WHO, typed);
    assert!(acked.len() >= 20, "only {} markers acknowledged", acked.len());
    assert!(
        acked.iter().any(|&m| m >= draining_from),
        "nothing typed during the drain was served: {acked:?}"
    );

    // The client reconnects to the other node, which has every acknowledged edit, once
    // (`markers_in` fails on a marker that is there twice). The room's socket URL names the
    // server that created it: `connect` opens the same path on `b`.
    let moved = connect(&b, &session, writer, "moved").await.unwrap();
    let there = markers_in(&moved.text(FILE).unwrap(), WHO, typed);
    for m in &acked {
        assert!(
            there.contains(m),
            "acknowledged marker {m} is missing on the other node"
        );
    }
    println!(
        "typed {typed} markers, {} acknowledged, {} typed after /readyz said draining; rooms closed {took:?} after SIGTERM",
        acked.len(),
        typed - draining_from
    );
}
