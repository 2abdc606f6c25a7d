//! Seats and host control through real `mesh-proxy lsp` processes and a real server
//! (decision 011): a dropped connection comes back to the same seat and role, live role
//! changes reach the editor and its buffers, a kick ends the session and forgets the seat,
//! approval holds a joiner in the lobby until the host admits them; and `mesh-proxy host`
//! from the sharer's folder.

use std::path::Path;

use mesh_testkit::cli::{eventually, proxy_command, ProxyCli};
use mesh_testkit::{LspClient, TestServer};
use serde_json::{json, Value};

/// Ada shares a folder with `main.txt`; Bob joins with the writer link. Ada is the host.
async fn room(server: &TestServer) -> (tempfile::TempDir, LspClient, LspClient, String) {
    let tmp = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(&a_dir).unwrap();
    std::fs::create_dir_all(&b_dir).unwrap();
    std::fs::write(a_dir.join("main.txt"), "one\n").unwrap();
    let a = LspClient::start(&a_dir, "ada", &server.url).await.unwrap();
    let link = a.request("mesh/share", json!({})).await.unwrap()["link"]
        .as_str()
        .unwrap()
        .to_string();
    let b = LspClient::start(&b_dir, "bob", &server.url).await.unwrap();
    b.request("mesh/join", json!({ "link": link })).await.unwrap();
    (tmp, a, b, link)
}

/// The last `mesh/status` the proxy sent.
fn status(c: &LspClient) -> Value {
    c.notifications("mesh/status").last().cloned().unwrap_or(Value::Null)
}

/// The host `a` turns approval on, and its status says so.
async fn approval_on(a: &LspClient) {
    a.request("mesh/setApproval", json!({ "on": true })).await.unwrap();
    a.wait_for("approval on", |c| status(c)["approval"] == true)
        .await
        .unwrap();
}

/// A third editor, `cy`, in its own folder under `tmp`, not in the room yet.
async fn newcomer(server: &TestServer, tmp: &tempfile::TempDir) -> LspClient {
    let c_dir = tmp.path().join("c");
    std::fs::create_dir_all(&c_dir).unwrap();
    LspClient::start(&c_dir, "cy", &server.url).await.unwrap()
}

/// The seat the proxy keeps for its folder.
fn kept_seat(root: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(root.join(".mesh/seat.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// Whether any `mesh/presence` notification says `needle`.
fn told(c: &LspClient, needle: &str) -> bool {
    c.notifications("mesh/presence")
        .iter()
        .any(|n| n["message"].as_str().is_some_and(|m| m.contains(needle)))
}

#[tokio::test]
async fn a_dropped_connection_comes_back_to_the_same_seat_and_role() {
    let mut server = TestServer::start().unwrap();
    let (_tmp, a, b, _link) = room(&server).await;
    b.wait_for("bob's seat", |c| status(c)["seat"].is_string())
        .await
        .unwrap();
    let seat = status(&b)["seat"].as_str().unwrap().to_string();
    // The folder keeps the seat once the join is accepted (at the first sync, which may come
    // a moment after the welcome that shows the seat).
    eventually("the seat kept in .mesh/seat.json", || kept_seat(&b.root).is_some()).await;
    let kept = kept_seat(&b.root).unwrap();
    assert_eq!(kept["id"], seat.as_str());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(b.root.join(".mesh/seat.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "the seat token is private");
    }

    // The host makes Bob a reader: his editor hears it within a round trip.
    a.request("mesh/setRole", json!({ "seat": seat, "role": "reader" }))
        .await
        .unwrap();
    b.wait_for("bob to be a reader", |c| status(c)["role"] == "reader")
        .await
        .unwrap();
    assert!(
        told(&b, "you are now a reader"),
        "{:?}",
        b.notifications("mesh/presence")
    );
    a.wait_for("ada to see bob as a reader", |c| told(c, "bob is now a reader"))
        .await
        .unwrap();

    // The connection drops (the server restarts); the proxy comes back with its seat token,
    // to the same seat and the same role (the writer link would have made it a writer).
    server.restart().unwrap();
    b.wait_for("bob back in the room", |c| {
        let s = status(c);
        s["state"] == "connected" && s["role"].is_string()
    })
    .await
    .unwrap();
    let back = status(&b);
    assert_eq!(
        (back["seat"].as_str(), back["role"].as_str()),
        (Some(seat.as_str()), Some("reader"))
    );
}

#[tokio::test]
async fn a_reader_s_edits_are_refused_and_the_buffer_follows_the_room_until_write_comes_back() {
    let server = TestServer::start().unwrap();
    let (_tmp, a, b, _link) = room(&server).await;
    let ua = a.open("main.txt").await.unwrap();
    let ub = b.open("main.txt").await.unwrap();
    b.wait_for("bob's seat", |c| status(c)["seat"].is_string())
        .await
        .unwrap();
    let seat = status(&b)["seat"].as_str().unwrap().to_string();

    a.request("mesh/setRole", json!({ "seat": seat, "role": "reader" }))
        .await
        .unwrap();
    b.wait_for("bob to be a reader", |c| status(c)["role"] == "reader")
        .await
        .unwrap();
    // Ada's edit still reaches Bob's buffer (the replica was built again from the room).
    a.edit(&ua, 0, 0, "ada\n").await.unwrap();
    b.wait_for("ada's edit in bob's buffer", |c| {
        c.text(&ub).as_deref() == Some("ada\none\n")
    })
    .await
    .unwrap();
    // Bob types: not shared, and his buffer goes back to the room's text.
    b.edit(&ub, 0, 0, "bob as reader\n").await.unwrap();
    b.wait_for("bob's buffer back to the room's text", |c| {
        c.text(&ub).as_deref() == Some("ada\none\n")
    })
    .await
    .unwrap();
    assert_eq!(
        a.text(&ua).as_deref(),
        Some("ada\none\n"),
        "nothing of the reader's reached the room"
    );

    // Write comes back: Bob's next edit is shared.
    a.request("mesh/setRole", json!({ "seat": seat, "role": "writer" }))
        .await
        .unwrap();
    b.wait_for("bob to be a writer", |c| status(c)["role"] == "writer")
        .await
        .unwrap();
    assert!(told(&b, "editing works again"));
    b.edit(&ub, 0, 0, "bob again\n").await.unwrap();
    a.wait_for("bob's edit in ada's buffer", |c| {
        c.text(&ua).as_deref() == Some("bob again\nada\none\n")
    })
    .await
    .unwrap();
    assert!(
        !a.text(&ua).unwrap().contains("as reader"),
        "the refused edit never comes back"
    );
}

#[tokio::test]
async fn a_kick_ends_the_session_with_its_message_and_forgets_the_seat() {
    let server = TestServer::start().unwrap();
    let (_tmp, a, b, _link) = room(&server).await;
    b.wait_for("bob's seat", |c| status(c)["seat"].is_string())
        .await
        .unwrap();
    let seat = status(&b)["seat"].as_str().unwrap().to_string();
    // Bob is no host: his host requests are refused, saying why.
    let err = b
        .request("mesh/kick", json!({ "seat": seat }))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("only the room's host"), "{err}");

    a.request("mesh/kick", json!({ "seat": seat })).await.unwrap();
    b.wait_for("bob's session to end", |c| !c.notifications("mesh/ended").is_empty())
        .await
        .unwrap();
    let ended = b.notifications("mesh/ended")[0].clone();
    assert_eq!(ended["reason"], "kicked");
    assert!(
        ended["message"]
            .as_str()
            .unwrap()
            .contains("removed from the room by ada"),
        "{ended}"
    );
    b.wait_for("bob idle", |c| status(c)["state"] == "idle").await.unwrap();
    assert!(kept_seat(&b.root).is_none(), "the seat token is forgotten");
    a.wait_for("ada to see bob go", |c| {
        status(c)["participants"].as_array().is_some_and(|p| p.len() == 1)
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_kicked_headless_join_forgets_its_seat_and_session_before_it_exits() {
    let server = TestServer::start().unwrap();
    let (tmp, a, _b, link) = room(&server).await;
    let dir = tmp.path().join("c");
    std::fs::create_dir_all(&dir).unwrap();
    let state = tmp.path().join(".state-cy");
    let mut join = ProxyCli::start(&server.url, &state, &["join", &link, dir.to_str().unwrap()]);
    join.line_starting("Joined").await;
    eventually("cy's seat kept", || kept_seat(&dir).is_some()).await;
    let seat = kept_seat(&dir).unwrap()["id"].as_str().unwrap().to_string();
    a.request("mesh/kick", json!({ "seat": seat })).await.unwrap();
    // `mesh/ended` ends the process at once: the folder has left the room by then.
    assert_eq!(join.exited().await, Some(3), "the exit code of an ended session");
    assert!(kept_seat(&dir).is_none(), "the seat token is forgotten");
    let sessions = std::fs::read_to_string(state.join("mesh/sessions.json")).unwrap_or_default();
    assert!(
        !sessions.contains(dir.to_str().unwrap()),
        "the folder's session is forgotten: {sessions}"
    );
}

#[tokio::test]
async fn with_approval_on_a_joiner_waits_in_the_lobby_until_the_host_admits_them() {
    let server = TestServer::start().unwrap();
    let (tmp, a, _b, link) = room(&server).await;
    approval_on(&a).await;

    let c = newcomer(&server, &tmp).await;
    let join = c.request("mesh/join", json!({ "link": link }));
    let host = async {
        c.wait_for("cy in the lobby", |c| status(c)["state"] == "lobby")
            .await
            .unwrap();
        assert!(status(&c)["lobby"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(
            !c.root.join("main.txt").exists(),
            "nothing of the room reaches the lobby"
        );
        a.wait_for("cy's join request", |c| !c.notifications("mesh/joinRequest").is_empty())
            .await
            .unwrap();
        let req = a.notifications("mesh/joinRequest")[0].clone();
        assert_eq!((req["name"].as_str(), req["client"].is_string()), (Some("cy"), true));
        let waiting = a.request("mesh/hostParticipants", json!({})).await.unwrap();
        assert_eq!(waiting["waiting"][0]["seat"], req["seat"]);
        a.request("mesh/admit", json!({ "seat": req["seat"] })).await.unwrap();
    };
    let (joined, ()) = tokio::join!(join, host);
    let joined = joined.expect("the join completes once admitted");
    assert_eq!(joined["files"], 1);
    assert_eq!(std::fs::read_to_string(c.root.join("main.txt")).unwrap(), "one\n");
    c.wait_for("cy connected", |c| status(c)["state"] == "connected")
        .await
        .unwrap();
    a.wait_for("the request closed", |c| {
        !c.notifications("mesh/joinRequestClosed").is_empty()
    })
    .await
    .unwrap();
}

/// `mesh-proxy host ARGS` in `dir` with the state under `state`; (exit code, stdout, stderr).
async fn host_cli(server: &TestServer, state: &Path, dir: &Path, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["host"];
    all.extend_from_slice(args);
    let out = proxy_command(&server.url, state, &all)
        .current_dir(dir)
        .output()
        .await
        .expect("mesh-proxy runs");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code().unwrap_or(-1), text(&out.stdout), text(&out.stderr))
}

#[tokio::test]
async fn mesh_proxy_host_manages_the_room_from_the_shared_folder() {
    let server = TestServer::start().unwrap();
    let (tmp, a, b, _link) = room(&server).await;
    b.wait_for("bob's seat", |c| status(c)["seat"].is_string())
        .await
        .unwrap();
    // The LSP test client keeps its state beside the folder.
    let (a_state, b_state) = (tmp.path().join(".state-ada"), tmp.path().join(".state-bob"));

    let (code, out, err) = host_cli(&server, &a_state, &a.root, &["participants"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("bob (writer, unverified"), "{out}");
    assert!(out.contains("Approval: off"), "{out}");

    let (code, out, err) = host_cli(&server, &a_state, &a.root, &["role", "bob", "reader"]).await;
    assert_eq!((code, out.trim()), (0, "bob is now reader"), "{err}");
    b.wait_for("bob to be a reader", |c| status(c)["role"] == "reader")
        .await
        .unwrap();

    let (code, out, _) = host_cli(&server, &a_state, &a.root, &["approval", "on"]).await;
    assert_eq!(code, 0);
    assert!(out.starts_with("approval on"), "{out}");

    let (code, out, err) = host_cli(
        &server,
        &a_state,
        &a.root,
        &["link", "create", "--role", "reader", "--max-uses", "2"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let id = out.split_whitespace().nth(2).unwrap().to_string();
    assert!(out.contains("/join/"), "{out}");
    let (_, out, _) = host_cli(&server, &a_state, &a.root, &["links"]).await;
    assert!(out.contains(&id) && out.contains("0/2 uses"), "{out}");
    let (code, _, err) = host_cli(&server, &a_state, &a.root, &["link", "revoke", &id]).await;
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = host_cli(&server, &a_state, &a.root, &["links"]).await;
    assert!(
        out.lines().any(|l| l.starts_with(&id) && l.contains("revoked")),
        "{out}"
    );

    // Mistakes say what to do.
    let (code, _, err) = host_cli(&server, &a_state, &a.root, &["kick", "nobody"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("host participants"), "{err}");
    let (code, _, err) = host_cli(&server, &b_state, &b.root, &["kick", "ada"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("only the room's host"), "{err}");
    let outside = tmp.path().join("elsewhere");
    std::fs::create_dir_all(&outside).unwrap();
    let (code, _, err) = host_cli(&server, &a_state, &outside, &["participants"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("not in a room"), "{err}");

    let (code, out, err) = host_cli(&server, &a_state, &a.root, &["kick", "bob", "--revoke-link"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("removed bob from the room\nrevoked link "), "{out}");
    // The link bob came in by (the share's writer link) lets nobody in any more.
    let (_, links, _) = host_cli(&server, &a_state, &a.root, &["links"]).await;
    let revoked = out
        .lines()
        .nth(1)
        .unwrap()
        .split_whitespace()
        .nth(2)
        .unwrap()
        .trim_end_matches(',');
    assert!(
        links.lines().any(|l| l.starts_with(revoked) && l.contains("revoked")),
        "{revoked} in {links}"
    );
    b.wait_for("bob's session to end", |c| !c.notifications("mesh/ended").is_empty())
        .await
        .unwrap();

    let (code, out, _) = host_cli(&server, &a_state, &a.root, &["audit"]).await;
    assert_eq!(code, 0);
    for kind in [
        "role_changed",
        "approval_changed",
        "link_created",
        "link_revoked",
        "kicked",
    ] {
        assert!(out.contains(kind), "the audit trail names {kind}: {out}");
    }
}

#[tokio::test]
async fn a_refused_joiner_hears_why_and_a_revoked_link_ends_the_sessions_it_let_in() {
    let server = TestServer::start().unwrap();
    let (tmp, a, b, link) = room(&server).await;
    approval_on(&a).await;

    // Refused from the lobby: the join fails with the server's words, no seat is kept.
    let c = newcomer(&server, &tmp).await;
    let join = c.request("mesh/join", json!({ "link": link }));
    let host = async {
        a.wait_for("cy's join request", |c| !c.notifications("mesh/joinRequest").is_empty())
            .await
            .unwrap();
        let seat = a.notifications("mesh/joinRequest")[0]["seat"].clone();
        a.request("mesh/refuse", json!({ "seat": seat })).await.unwrap();
    };
    let (joined, ()) = tokio::join!(join, host);
    let err = joined.expect_err("a refused join fails").to_string();
    assert!(!err.is_empty());
    c.wait_for("cy's session to end", |c| !c.notifications("mesh/ended").is_empty())
        .await
        .unwrap();
    assert_eq!(c.notifications("mesh/ended")[0]["reason"], "refused");
    assert!(kept_seat(&c.root).is_none());
    assert!(
        !c.root.join("main.txt").exists(),
        "nothing of the room reached a refused joiner"
    );

    // The writer link Bob came through is revoked: his session ends, his seat is forgotten.
    let links = a.request("mesh/links", json!({})).await.unwrap();
    let writer = links["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["role"] == "writer" && link.ends_with(l["url"].as_str().unwrap().rsplit("token=").next().unwrap()))
        .cloned()
        .expect("the writer link is listed");
    a.request("mesh/revokeLink", json!({ "id": writer["id"] }))
        .await
        .unwrap();
    b.wait_for("bob's session to end", |c| !c.notifications("mesh/ended").is_empty())
        .await
        .unwrap();
    assert_eq!(b.notifications("mesh/ended")[0]["reason"], "revoked");
    assert!(kept_seat(&b.root).is_none());
}
