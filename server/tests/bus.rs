//! Three real `mesh-server` processes on one real Postgres and one real Redis
//! (`--store postgres://... --bus redis://...`): people spread over the nodes edit one room
//! together, every acknowledged keystroke survives a `kill -9` of a node and a Redis restart,
//! and a person's cursor on one node is seen on another and goes when their node dies.

use std::time::Duration;

use mesh_testkit::soak::{connect, markers_in, type_markers, ws_on};
use mesh_testkit::{TestPostgres, TestRedis, TestServer, YClient};

/// How long a test waits for the nodes to settle (a resync, a reconnection, an awareness
/// timeout of 30 s); a passing test never waits this long.
const SETTLE: Duration = Duration::from_secs(60);

fn node(pg: &TestPostgres, redis: &TestRedis) -> TestServer {
    let (store, bus) = (pg.url(), redis.url());
    TestServer::start_with(&["--store", &store, "--bus", &bus]).unwrap()
}

async fn readyz(server: &TestServer) -> (u16, String) {
    match server.http().get(format!("{}/readyz", server.url)).send().await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

async fn metric(server: &TestServer, name: &str) -> f64 {
    let text = server.metrics().await.unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn three_nodes_converge_with_every_keystroke_kept() {
    let pg = TestPostgres::start().unwrap();
    let redis = TestRedis::start().unwrap();
    let nodes: Vec<TestServer> = (0..3).map(|_| node(&pg, &redis)).collect();
    for n in &nodes {
        let (status, body) = readyz(n).await;
        assert_eq!(status, 200, "{body}");
    }
    let s = nodes[0].create_session("three").await.unwrap();
    let w = &s.created.writer_token;
    let writers = [
        connect(&nodes[0], &s, w, "ana").await.unwrap(),
        connect(&nodes[1], &s, w, "ben").await.unwrap(),
        connect(&nodes[2], &s, w, "cy").await.unwrap(),
    ];
    let r = &s.created.reader_token;
    let observers = [
        connect(&nodes[0], &s, r, "oa").await.unwrap(),
        connect(&nodes[1], &s, r, "ob").await.unwrap(),
        connect(&nodes[2], &s, r, "oc").await.unwrap(),
    ];
    // One person creates the file (two creating it at once would be a map conflict, one
    // text winning), everyone sees it, then all type at once.
    writers[0].insert("shared.txt", 0, "start\n");
    for c in observers.iter().chain(writers.iter()) {
        c.wait_for("the file", |c| c.text("shared.txt").is_some())
            .await
            .unwrap();
    }
    const N: usize = 300;
    let who = ["a", "b", "c"];
    tokio::join!(
        type_markers(&writers[0], "shared.txt", who[0], N),
        type_markers(&writers[1], "shared.txt", who[1], N),
        type_markers(&writers[2], "shared.txt", who[2], N),
    );
    let all = |c: &YClient| {
        let text = c.text("shared.txt").unwrap_or_default();
        who.iter().all(|w| markers_in(&text, w, N).len() == N)
    };
    for (k, c) in observers.iter().chain(writers.iter()).enumerate() {
        if let Err(e) = c.wait_for("every marker of every node", all).await {
            let text = c.text("shared.txt").unwrap_or_default();
            let counts: Vec<usize> = who.iter().map(|w| markers_in(&text, w, N).len()).collect();
            let mut m = String::new();
            for (j, c) in observers.iter().chain(writers.iter()).enumerate() {
                let text = c.text("shared.txt").unwrap_or_default();
                let counts: Vec<usize> = who.iter().map(|w| markers_in(&text, w, N).len()).collect();
                m.push_str(&format!("client {j}: {counts:?}\n"));
            }
            for (j, n) in nodes.iter().enumerate() {
                let fresh = connect(n, &s, &s.created.reader_token, "fresh").await.unwrap();
                let text = fresh.text("shared.txt").unwrap_or_default();
                let counts: Vec<usize> = who.iter().map(|w| markers_in(&text, w, N).len()).collect();
                m.push_str(&format!("fresh on node {j}: {counts:?}\n"));
            }
            for n in &nodes {
                for line in n.metrics().await.unwrap_or_default().lines() {
                    if line.starts_with("mesh_bus") && !line.contains("bucket") {
                        m.push_str(line);
                        m.push('\n');
                    }
                }
                m.push_str("--\n");
            }
            panic!("client {k}: {e}; markers of a, b, c: {counts:?}\n{m}");
        }
    }
    let texts: Vec<String> = observers
        .iter()
        .chain(writers.iter())
        .map(|c| c.text("shared.txt").unwrap())
        .collect();
    assert!(texts.windows(2).all(|p| p[0] == p[1]), "every replica is byte-equal");
    // The bus, not a reload, carried it: every node published and received.
    for n in &nodes {
        assert!(metric(n, "mesh_bus_published_total").await > 0.0);
        assert!(metric(n, "mesh_bus_received_total").await > 0.0);
    }
    // The store holds all of it for a node that loads the room afresh.
    let late = connect(&nodes[2], &s, r, "late").await.unwrap();
    let text = late.text("shared.txt").unwrap();
    assert_eq!(text, texts[0]);
}

#[tokio::test]
async fn a_node_killed_mid_burst_loses_no_acknowledged_edit() {
    let pg = TestPostgres::start().unwrap();
    let redis = TestRedis::start().unwrap();
    let mut a = node(&pg, &redis);
    let b = node(&pg, &redis);
    let c = node(&pg, &redis);
    let s = a.create_session("crash").await.unwrap();
    let typist = connect(&a, &s, &s.created.writer_token, "tess").await.unwrap();
    let watcher = connect(&b, &s, &s.created.reader_token, "otto").await.unwrap();
    const N: usize = 1500;
    type_markers(&typist, "burst.txt", "m", N).await;
    watcher
        .wait_for("some of the burst, through the bus", |c| {
            c.text("burst.txt").is_some_and(|t| t.len() > 300)
        })
        .await
        .unwrap();
    a.kill9();
    // What reached B was durable first (appended, then published).
    let seen = markers_in(&watcher.text("burst.txt").unwrap(), "m", N);
    assert!(!seen.is_empty());
    // The typist reconnects to another node and goes on typing there.
    let again = connect(&c, &s, &s.created.writer_token, "tess").await.unwrap();
    let stored = markers_in(&again.text("burst.txt").unwrap(), "m", N);
    let lost: Vec<_> = seen.difference(&stored).collect();
    assert!(lost.is_empty(), "acknowledged markers lost: {lost:?}");
    let at = again.len("burst.txt");
    again.insert("burst.txt", at, "<after>");
    watcher
        .wait_for("the edit made on C after A died", |c| {
            c.text("burst.txt").is_some_and(|t| t.contains("<after>"))
        })
        .await
        .unwrap();
    println!(
        "{} of {N} markers acknowledged at the kill; all kept ({} stored)",
        seen.len(),
        stored.len()
    );
}

#[tokio::test]
async fn the_room_carries_on_through_a_redis_restart_and_catches_up() {
    let pg = TestPostgres::start().unwrap();
    let mut redis = TestRedis::start().unwrap();
    let a = node(&pg, &redis);
    let b = node(&pg, &redis);
    let s = a.create_session("outage").await.unwrap();
    let typist = connect(&a, &s, &s.created.writer_token, "tess").await.unwrap();
    let near = connect(&a, &s, &s.created.reader_token, "near").await.unwrap();
    let far = connect(&b, &s, &s.created.reader_token, "far").await.unwrap();
    type_markers(&typist, "notes.md", "x", 50).await;
    far.wait_for("the first words", |c| {
        markers_in(&c.text("notes.md").unwrap_or_default(), "x", 50).len() == 50
    })
    .await
    .unwrap();

    redis.stop().unwrap();
    let (status, body) = readyz(&a).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("bus") && !body.contains(redis.password()), "{body}");
    // Edits go on: they are durable in the store and reach the people on the same node.
    type_markers(&typist, "during.md", "y", 50).await;
    near.wait_for("edits made while Redis is down", |c| {
        markers_in(&c.text("during.md").unwrap_or_default(), "y", 50).len() == 50
    })
    .await
    .unwrap();

    redis.start_again().unwrap();
    // B's reader comes back and resyncs from the store: nothing published while Redis was
    // down is missing, and the bus carries new edits again.
    far.wait_for("what was typed during the outage", |c| {
        markers_in(&c.text("during.md").unwrap_or_default(), "y", 50).len() == 50
    })
    .await
    .unwrap();
    type_markers(&typist, "after.md", "z", 20).await;
    far.wait_for("edits after the outage", |c| {
        markers_in(&c.text("after.md").unwrap_or_default(), "z", 20).len() == 20
    })
    .await
    .unwrap();
    assert!(metric(&b, "mesh_bus_resyncs_total").await >= 1.0);
    let deadline = tokio::time::Instant::now() + SETTLE;
    while readyz(&a).await.0 != 200 {
        assert!(tokio::time::Instant::now() < deadline, "readyz never came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn remote_names(c: &YClient) -> Vec<String> {
    let aw = c.awareness.lock().unwrap();
    let own = aw.client_id();
    aw.iter()
        .filter(|(id, _)| *id != own)
        .filter_map(|(_, state)| {
            let json: serde_json::Value = serde_json::from_str(state.data.as_deref()?).ok()?;
            Some(json["user"]["name"].as_str()?.to_string())
        })
        .collect()
}

#[tokio::test]
async fn a_cursor_on_one_node_is_seen_on_another_and_goes_when_its_node_dies() {
    let pg = TestPostgres::start().unwrap();
    let redis = TestRedis::start().unwrap();
    let mut a = node(&pg, &redis);
    let b = node(&pg, &redis);
    let s = a.create_session("cursors").await.unwrap();
    let ana = connect(&a, &s, &s.created.writer_token, "ana").await.unwrap();
    let ben = connect(&b, &s, &s.created.writer_token, "ben").await.unwrap();
    ana.set_awareness(serde_json::json!({"user": {"name": "ana", "color": "#e6194b"}}))
        .unwrap();
    ben.wait_for("ana's cursor, from node A", |c| {
        remote_names(c).contains(&"ana".to_string())
    })
    .await
    .unwrap();
    ben.set_awareness(serde_json::json!({"user": {"name": "ben", "color": "#3cb44b"}}))
        .unwrap();
    ana.wait_for("ben's cursor, from node B", |c| {
        remote_names(c).contains(&"ben".to_string())
    })
    .await
    .unwrap();
    a.kill9();
    // Nobody on A can say goodbye: B lets ana's state time out.
    let started = std::time::Instant::now();
    let deadline = tokio::time::Instant::now() + SETTLE;
    while remote_names(&ben).contains(&"ana".to_string()) {
        assert!(tokio::time::Instant::now() < deadline, "ana's cursor never went");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!("ana's cursor went {:?} after her node died", started.elapsed());
}

#[tokio::test]
async fn a_role_change_and_a_kick_on_one_node_apply_at_once_on_another() {
    use mesh_protocol::messages::Role;
    use mesh_protocol::ServerMessage;
    let pg = TestPostgres::start().unwrap();
    let redis = TestRedis::start().unwrap();
    let a = node(&pg, &redis);
    let b = node(&pg, &redis);
    let s = a.create_session("roles").await.unwrap();
    let host = YClient::connect_mesh(&ws_on(&a, &s, &s.created.host_token), "hana")
        .await
        .unwrap();
    let h = host.welcome().await.unwrap();
    host.wait_synced().await.unwrap();
    let walt = YClient::connect_mesh(&ws_on(&b, &s, &s.created.writer_token), "walt")
        .await
        .unwrap();
    let w = walt.welcome().await.unwrap();
    walt.wait_synced().await.unwrap();
    let vic = YClient::connect_mesh(&ws_on(&b, &s, &s.created.writer_token), "vic")
        .await
        .unwrap();
    let v = vic.welcome().await.unwrap();
    vic.wait_synced().await.unwrap();
    walt.insert("a.txt", 0, "<before>");
    host.wait_for("walt's edit", |c| {
        c.text("a.txt").is_some_and(|t| t.contains("<before>"))
    })
    .await
    .unwrap();

    // The host, on node A, makes walt (on node B) a reader.
    let id = s.id();
    let (status, body) = a
        .api(
            reqwest::Method::PUT,
            &format!("/api/sessions/{id}/seats/{}/role", w.seat),
            Some(&h.seat_token),
            Some(serde_json::json!({"role": "reader"})),
        )
        .await
        .unwrap();
    assert_eq!(status, 204, "{body}");
    walt.wait_mesh(
        "the role change, from node A",
        |m| matches!(m, ServerMessage::RoleChanged { seat, role: Role::Reader, .. } if *seat == w.seat),
    )
    .await
    .unwrap();
    // Node B refuses walt's edits now.
    walt.insert("a.txt", 0, "<after>");
    walt.wait_mesh("the refusal of a reader's edit", |m| {
        matches!(
            m,
            ServerMessage::Error {
                code: mesh_protocol::ErrorCode::Forbidden,
                ..
            }
        )
    })
    .await
    .unwrap();

    // The host kicks vic: node B closes vic's connection.
    let (status, body) = a
        .api(
            reqwest::Method::POST,
            &format!("/api/sessions/{id}/seats/{}/kick", v.seat),
            Some(&h.seat_token),
            None,
        )
        .await
        .unwrap();
    assert_eq!(status, 204, "{body}");
    let (code, reason) = vic.wait_closed().await.unwrap();
    assert!(reason.contains("removed"), "{code} {reason}");
    assert!(
        !host.text("a.txt").unwrap().contains("<after>"),
        "a reader's edit never reaches the other node"
    );
}
