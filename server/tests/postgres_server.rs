//! A real `mesh-server` on `--store postgres://...` against a real Postgres started by the
//! test: rooms survive restarts and `kill -9`, the server rides out a Postgres restart, and
//! two servers appending to one room through one database lose nothing.

use std::time::Duration;

use mesh_protocol::messages::Role;
use mesh_testkit::soak::{connect, markers_in, type_markers, ws_on};
use mesh_testkit::{TestPostgres, TestServer, YClient};
use reqwest::Method;
use serde_json::{json, Value};

/// How long a test waits for Postgres-dependent state to settle (a restart, a readiness
/// probe); a passing test never waits this long.
const SETTLE: Duration = Duration::from_secs(30);

fn server_on(pg: &TestPostgres, extra: &[&str]) -> TestServer {
    let url = pg.url();
    let mut args = vec!["--store", url.as_str()];
    args.extend_from_slice(extra);
    TestServer::start_with(&args).unwrap()
}

async fn readyz(server: &TestServer) -> (u16, String) {
    match server.http().get(format!("{}/readyz", server.url)).send().await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

async fn wait_ready(server: &TestServer) {
    let deadline = tokio::time::Instant::now() + SETTLE;
    while readyz(server).await.0 != 200 {
        assert!(tokio::time::Instant::now() < deadline, "readyz never answered 200");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn text_runs_links_and_seats_survive_a_restart() {
    let pg = TestPostgres::start().unwrap();
    let mut server = server_on(&pg, &["--run-images", "local"]);
    assert_eq!(readyz(&server).await.0, 200);
    let s = server.create_session("kept").await.unwrap();
    let id = s.id();
    let host = connect(&server, &s, &s.created.host_token, "hana").await.unwrap();
    let walt = YClient::connect_mesh(&server.ws_url(&s, &s.created.writer_token), "walt")
        .await
        .unwrap();
    let w = walt.welcome().await.unwrap();
    walt.wait_synced().await.unwrap();
    let program = "print('kept across restarts')\n";
    walt.insert("main.py", 0, program);
    host.wait_for("the program", |c| c.text("main.py").as_deref() == Some(program))
        .await
        .unwrap();

    // A run, kept in the history.
    let runs = format!("/api/sessions/{id}/runs");
    let (status, started) = server
        .api(
            Method::POST,
            &runs,
            Some(&s.created.writer_token),
            Some(json!({"path": "main.py"})),
        )
        .await
        .unwrap();
    assert_eq!(status, 202, "{started}");
    let run_id = started["run_id"].as_str().unwrap().to_string();
    let mut history = Value::Null;
    for _ in 0..600 {
        let (_, list) = server
            .api(Method::GET, &runs, Some(&s.created.reader_token), None)
            .await
            .unwrap();
        if list
            .as_array()
            .is_some_and(|l| l.iter().any(|r| r["run_id"] == run_id.as_str() && r["code"] == 0))
        {
            history = list;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(history.is_array(), "the run never reached the history");

    // Links: one kept, one revoked; a seat demoted by the host.
    let links = format!("/api/sessions/{id}/links");
    let (status, kept) = server
        .api(
            Method::POST,
            &links,
            Some(&s.created.host_token),
            Some(json!({"role": "reader"})),
        )
        .await
        .unwrap();
    assert_eq!(status, 201, "{kept}");
    let (_, revoked) = server
        .api(
            Method::POST,
            &links,
            Some(&s.created.host_token),
            Some(json!({"role": "writer"})),
        )
        .await
        .unwrap();
    let lid = revoked["id"].as_str().unwrap();
    let (status, _) = server
        .api(
            Method::DELETE,
            &format!("{links}/{lid}"),
            Some(&s.created.host_token),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 204);
    let (status, body) = server
        .api(
            Method::PUT,
            &format!("/api/sessions/{id}/seats/{}/role", w.seat),
            Some(&s.created.host_token),
            Some(json!({"role": "reader"})),
        )
        .await
        .unwrap();
    assert!(status < 300, "{status} {body}");
    let (_, links_before) = server
        .api(Method::GET, &links, Some(&s.created.host_token), None)
        .await
        .unwrap();

    server.restart().unwrap();
    // The REST client's kept-alive connection died with the old process: the first request
    // may fail on it.
    wait_ready(&server).await;

    // Read before anyone joins again (a join through a link counts a use).
    let (_, links_after) = server
        .api(Method::GET, &links, Some(&s.created.host_token), None)
        .await
        .unwrap();
    assert_eq!(links_after, links_before, "links (and the revocation) are kept");
    let fresh = connect(&server, &s, &s.created.reader_token, "rita").await.unwrap();
    assert_eq!(fresh.text("main.py").as_deref(), Some(program));
    let (_, after) = server
        .api(Method::GET, &runs, Some(&s.created.reader_token), None)
        .await
        .unwrap();
    let run = after
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["run_id"] == run_id.as_str())
        .expect("the run is in the history after the restart")
        .clone();
    assert!(
        run["stdout"].as_str().unwrap().contains("kept across restarts"),
        "{run}"
    );
    // The seat kept the role the host gave it.
    let again = YClient::connect_mesh(&server.ws_url(&s, &w.seat_token), "walt")
        .await
        .unwrap();
    let w2 = again.welcome().await.unwrap();
    assert_eq!((w2.seat.as_str(), w2.role), (w.seat.as_str(), Role::Reader));
}

#[tokio::test]
async fn kill9_during_a_typing_burst_keeps_every_acknowledged_marker() {
    let pg = TestPostgres::start().unwrap();
    let mut server = server_on(&pg, &[]);
    let s = server.create_session("crash").await.unwrap();
    let typist = connect(&server, &s, &s.created.writer_token, "tess").await.unwrap();
    let observer = connect(&server, &s, &s.created.reader_token, "otto").await.unwrap();
    const N: usize = 1500;
    type_markers(&typist, "burst.txt", "m", N).await;
    // Kill while the burst is still arriving (some of it was relayed).
    observer
        .wait_for("some of the burst", |c| {
            c.text("burst.txt").is_some_and(|t| t.len() > 200)
        })
        .await
        .unwrap();
    server.kill9();
    // What the observer received was relayed, so it was committed first.
    let seen = markers_in(&observer.text("burst.txt").unwrap(), "m", N);
    server.restart().unwrap();
    let fresh = connect(&server, &s, &s.created.reader_token, "fred").await.unwrap();
    let stored = markers_in(&fresh.text("burst.txt").unwrap(), "m", N);
    let lost: Vec<_> = seen.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged markers lost: {lost:?}");
    println!(
        "{} of {N} markers acknowledged at the kill; all kept ({} stored)",
        seen.len(),
        stored.len()
    );
}

#[tokio::test]
async fn the_server_rides_out_a_postgres_restart() {
    let mut pg = TestPostgres::start().unwrap();
    let server = server_on(&pg, &[]);
    let s = server.create_session("outage").await.unwrap();
    let typist = connect(&server, &s, &s.created.writer_token, "tess").await.unwrap();
    let observer = connect(&server, &s, &s.created.reader_token, "otto").await.unwrap();
    type_markers(&typist, "notes.md", "a", 50).await;
    observer
        .wait_for("the first words", |c| {
            markers_in(&c.text("notes.md").unwrap_or_default(), "a", 50).len() == 50
        })
        .await
        .unwrap();

    pg.stop().unwrap();
    // An edit now cannot be stored: the room refuses it (closes with "storage failed;
    // reconnect") and relays nothing.
    typist.insert("notes.md", 0, "<during>");
    let (code, reason) = typist.wait_closed().await.unwrap();
    assert_eq!(code, 4503, "{reason}");
    assert!(reason.contains("storage"), "{reason}");
    assert!(
        !observer.text("notes.md").unwrap().contains("<during>"),
        "nothing unstored is relayed"
    );
    let (status, body) = readyz(&server).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("Postgres") && !body.contains(pg.password()), "{body}");

    pg.start_again().unwrap();
    wait_ready(&server).await;
    // The same server carries on: everything acknowledged is there, and new edits work.
    let back = connect(&server, &s, &s.created.writer_token, "tess").await.unwrap();
    let text = back.text("notes.md").unwrap();
    assert_eq!(markers_in(&text, "a", 50).len(), 50, "{text}");
    assert!(!text.contains("<during>"), "the refused edit was not kept: {text}");
    back.insert("notes.md", back.len("notes.md"), "<after>");
    let watcher = connect(&server, &s, &s.created.reader_token, "wes").await.unwrap();
    watcher
        .wait_for("the edit after the outage", |c| {
            c.text("notes.md").is_some_and(|t| t.contains("<after>"))
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn two_servers_append_to_one_room_and_lose_nothing() {
    let pg = TestPostgres::start().unwrap();
    let mut a = server_on(&pg, &[]);
    let mut b = server_on(&pg, &[]);
    let s = a.create_session("shared").await.unwrap();
    // Both servers sign tokens with the secret kept in Postgres: A's token opens the room on B.
    let ta = connect(&a, &s, &s.created.writer_token, "ana").await.unwrap();
    let tb = connect(&b, &s, &s.created.writer_token, "ben").await.unwrap();
    let oa = connect(&a, &s, &s.created.reader_token, "oa").await.unwrap();
    let ob = connect(&b, &s, &s.created.reader_token, "ob").await.unwrap();
    const N: usize = 400;
    // Each types into a file of its own, at once; without a bus the servers do not relay
    // to each other, but they number their appends in one room's log.
    tokio::join!(type_markers(&ta, "a.txt", "a", N), type_markers(&tb, "b.txt", "b", N));
    oa.wait_for("all of A", |c| {
        markers_in(&c.text("a.txt").unwrap_or_default(), "a", N).len() == N
    })
    .await
    .unwrap();
    ob.wait_for("all of B", |c| {
        markers_in(&c.text("b.txt").unwrap_or_default(), "b", N).len() == N
    })
    .await
    .unwrap();
    a.kill9();
    b.kill9();
    // The log's numbers are unique (the key) and dense: no append skipped or reused one.
    let row = pg
        .sql(&format!(
            "SELECT count(*), count(DISTINCT seq), max(seq), (SELECT last_seq FROM room_seq WHERE room_id = '{0}')
             FROM room_updates WHERE room_id = '{0}'",
            s.id()
        ))
        .unwrap();
    let cols: Vec<u64> = row.trim().split('|').map(|c| c.parse().unwrap()).collect();
    assert_eq!(
        (cols[0], cols[1], cols[2], cols[3]),
        (cols[0], cols[0], cols[0], cols[0]),
        "{row}"
    );
    assert!(cols[0] as usize >= 2, "{row}");

    // Both rooms' typing is there for a server that loads the room; then each server
    // compacts at a graceful stop with only its own edits in memory, and still nothing is
    // lost.
    a.restart().unwrap();
    b.restart().unwrap();
    let check = |server: &TestServer| {
        let url = ws_on(server, &s, &s.created.reader_token);
        async move {
            let c = YClient::connect_mesh(&url, "check").await.unwrap();
            c.wait_synced().await.unwrap();
            let (ta, tb) = (c.text("a.txt").unwrap_or_default(), c.text("b.txt").unwrap_or_default());
            assert_eq!(markers_in(&ta, "a", N).len(), N, "A's markers");
            assert_eq!(markers_in(&tb, "b", N).len(), N, "B's markers");
        }
    };
    check(&a).await;
    check(&b).await;
    // B types more; A, which never sees it, stops gracefully and compacts past it.
    let more = connect(&b, &s, &s.created.writer_token, "ben").await.unwrap();
    more.insert("b.txt", 0, "<late>");
    let watch = YClient::connect_mesh(&ws_on(&b, &s, &s.created.reader_token), "w")
        .await
        .unwrap();
    watch
        .wait_for("the late edit", |c| {
            c.text("b.txt").is_some_and(|t| t.contains("<late>"))
        })
        .await
        .unwrap();
    // A appends after B's edit, so A's last number is past B's row when it compacts.
    let on_a = connect(&a, &s, &s.created.writer_token, "ana").await.unwrap();
    on_a.insert("a.txt", 0, "<a-late>");
    let watch_a = connect(&a, &s, &s.created.reader_token, "wa").await.unwrap();
    watch_a
        .wait_for("A's late edit", |c| {
            c.text("a.txt").is_some_and(|t| t.contains("<a-late>"))
        })
        .await
        .unwrap();
    assert!(
        !watch_a.text("b.txt").unwrap().contains("<late>"),
        "A never saw B's late edit"
    );
    assert_eq!(a.terminate().unwrap(), Some(0));
    // B crashes: it never compacts, so only A's compaction decides what stays.
    b.kill9();
    a.restart().unwrap();
    let c = connect(&a, &s, &s.created.reader_token, "final").await.unwrap();
    let tb = c.text("b.txt").unwrap();
    assert!(
        tb.contains("<late>"),
        "B's edit after A loaded the room survived A's compaction"
    );
    assert!(c.text("a.txt").unwrap().contains("<a-late>"));
    assert_eq!(markers_in(&tb, "b", N).len(), N);
    assert_eq!(markers_in(&c.text("a.txt").unwrap(), "a", N).len(), N);
}
