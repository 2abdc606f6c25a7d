//! A stock Yjs client — the npm packages `yjs` and `y-websocket`, run by node — shares a room
//! with a Rust client: edits and awareness travel both ways through a real server.

use std::path::PathBuf;
use std::process::Stdio;

use mesh_testkit::{TestServer, YClient};
use tokio::io::AsyncReadExt;

fn js_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/js")
}

#[tokio::test]
async fn stock_yjs_client_interoperates_both_ways() {
    let dir = js_dir();
    assert!(
        dir.join("node_modules/y-websocket").exists(),
        "the JavaScript peers are not installed: run `npm ci` in tests/js (scripts/test does)"
    );
    let server = TestServer::start().unwrap();
    let session = server.create_session("interop").await.unwrap();
    let token = &session.created.writer_token;
    let rust = YClient::connect_mesh(&server.ws_url(&session, token), "rust")
        .await
        .unwrap();
    rust.wait_synced().await.unwrap();
    rust.insert("shared.txt", 0, "from rust");

    let ws_base = format!("ws://127.0.0.1:{}/ws", server.port);
    let mut node = tokio::process::Command::new("node")
        .arg(dir.join("yjs-peer.mjs"))
        .args([&ws_base, &session.id(), token])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node must be installed");

    rust.wait_for("the yjs edit", |c| {
        c.text("shared.txt").is_some_and(|t| t.ends_with(" from yjs 🎉"))
    })
    .await
    .unwrap();
    rust.wait_for("the yjs awareness state", |c| {
        c.awareness
            .lock()
            .unwrap()
            .iter()
            .any(|(_, state)| state.data.as_deref().is_some_and(|d| d.contains("\"node\"")))
    })
    .await
    .unwrap();
    // The stock client never said hello; its awareness name shows in the participant list.
    rust.wait_mesh("the node participant's name", |m| {
        matches!(m, mesh_protocol::ServerMessage::ParticipantJoined { participant } if participant.name == "node" && participant.client == "yjs")
    })
    .await
    .unwrap();
    let len = rust.len("shared.txt");
    rust.insert("shared.txt", len, " rust again");

    let mut out = String::new();
    node.stdout.take().unwrap().read_to_string(&mut out).await.unwrap();
    let status = node.wait().await.unwrap();
    assert!(status.success(), "yjs peer failed: {out}");
    let reply: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(reply["text"], "from rust from yjs 🎉 rust again");
    assert_eq!(
        rust.text("shared.txt").as_deref(),
        Some("from rust from yjs 🎉 rust again")
    );
}
