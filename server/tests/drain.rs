//! Graceful drain on SIGTERM (`server/src/drain.rs`), with real servers on a real Postgres:
//! a draining node says so on `/readyz`, refuses new joins, goes on serving its open rooms
//! through the grace, then closes their sockets with 1012 so clients reconnect to another
//! node; every edit a client saw acknowledged is there on the other node.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use mesh_testkit::{TestPostgres, TestServer, YClient};

/// The drain grace the node under test gets: long enough to type through and to see
/// `/readyz` fail, short enough to keep the test quick.
const GRACE_SECS: u64 = 2;

/// How often the typist types a marker, as a quick person does.
const KEYSTROKE_GAP: Duration = Duration::from_millis(20);

/// A passing test never waits this long for the node to start draining.
const SETTLE: Duration = Duration::from_secs(15);

/// A writer on `server`, which created `session`.
async fn connect(server: &TestServer, session: &mesh_testkit::Session) -> YClient {
    let c = YClient::connect_mesh(&server.ws_url(session, &session.created.writer_token), "drain")
        .await
        .unwrap();
    c.wait_synced().await.unwrap();
    c
}

/// Types the next unique marker at the end of the file (multibyte, as people type).
fn type_marker(c: &YClient, typed: &mut usize) {
    let at = c.len("notes.md");
    c.insert("notes.md", at, &format!("<m{typed}é👋>"));
    *typed += 1;
}

/// The markers in `text`, as `m{n}` (the digits only; the multibyte tail must be whole).
fn markers_in(text: &str) -> Vec<String> {
    text.split('<')
        .filter_map(|s| s.split_once('>').map(|(m, _)| m))
        .filter_map(|m| m.strip_suffix("é👋"))
        .filter(|m| m.starts_with('m'))
        .map(String::from)
        .collect()
}

#[tokio::test]
async fn a_draining_node_refuses_joins_serves_its_rooms_then_sends_clients_elsewhere_losing_nothing() {
    let pg = TestPostgres::start().unwrap();
    let url = pg.url();
    let grace = GRACE_SECS.to_string();
    let a = TestServer::start_with(&["--store", &url, "--drain-seconds", &grace]).unwrap();
    let b = TestServer::start_with(&["--store", &url]).unwrap();
    let session = a.create_session("drain").await.unwrap();
    let typist = connect(&a, &session).await;
    let observer = connect(&a, &session).await;

    let mut typed = 0usize;
    for _ in 0..20 {
        type_marker(&typist, &mut typed);
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
        type_marker(&typist, &mut typed);
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
        type_marker(&typist, &mut typed);
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
    let acked = markers_in(&observer.text("notes.md").unwrap_or_default());
    assert!(acked.len() >= 20, "only {} markers acknowledged", acked.len());
    assert!(
        acked.iter().any(|m| m[1..].parse::<usize>().unwrap() >= draining_from),
        "nothing typed during the drain was served: {acked:?}"
    );

    // The client reconnects to the other node, which has every acknowledged edit, once.
    // (The room's socket URL names the server that created it: the same path on `b`.)
    let on_b = format!(
        "ws://127.0.0.1:{}/ws/{}?token={}",
        b.port,
        session.id(),
        session.created.writer_token
    );
    let moved = YClient::connect_mesh(&on_b, "moved").await.unwrap();
    moved.wait_synced().await.unwrap();
    let there = markers_in(&moved.text("notes.md").unwrap());
    let counted: HashSet<&String> = there.iter().collect();
    assert_eq!(counted.len(), there.len(), "a marker was duplicated: {there:?}");
    for m in &acked {
        assert!(counted.contains(m), "acknowledged {m} is missing on the other node");
    }
    println!(
        "typed {typed} markers, {} acknowledged, {} typed after /readyz said draining; rooms closed {took:?} after SIGTERM",
        acked.len(),
        typed - draining_from
    );
}
