//! `mesh-proxy share` and `mesh-proxy join` on real folders: the round trip, a 1 MB file,
//! files created, changed, renamed and deleted on either side, and local work that joining
//! must not overwrite.

use std::path::Path;

use mesh_testkit::cli::{eventually, proxy_command, read, ProxyCli};
use mesh_testkit::lsp::proxy_bin;
use mesh_testkit::TestServer;
use tokio::process::Command;

async fn cli(server: &TestServer, state: &Path, args: &[&str]) -> ProxyCli {
    ProxyCli::start(&server.url, state, args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_and_join_folders_round_trip() {
    let server = TestServer::start().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("c"));
    std::fs::create_dir_all(a.join("src/deep")).unwrap();
    std::fs::write(a.join(".gitignore"), "build/\n").unwrap();
    std::fs::write(a.join("src/main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(a.join("src/deep/mod.rs"), "// 漢字 🎉\n").unwrap();
    let big: String = (0..23_000)
        .map(|i| format!("line {i:05} of a large file, padded to fifty b\n"))
        .collect();
    assert!(big.len() >= 1_000_000);
    std::fs::write(a.join("big.txt"), &big).unwrap();
    std::fs::create_dir_all(a.join("build")).unwrap();
    std::fs::write(a.join("build/out.o"), "ignored").unwrap();
    std::fs::write(a.join("logo.png"), [0x89u8, b'P', b'N', b'G', 0, 0, 1]).unwrap();

    let mut share = cli(&server, &tmp.path().join("state-a"), &["share", a.to_str().unwrap()]).await;
    let link = share.line_starting("Join link").await;
    let link = link.rsplit(' ').next().unwrap().to_string();
    let mut join = cli(
        &server,
        &tmp.path().join("state-b"),
        &["join", &link, b.to_str().unwrap()],
    )
    .await;
    let joined = join.line_starting("Joined").await;
    assert!(joined.contains("(4 files)"), "{joined}");

    assert_eq!(read(b.join("src/main.rs")).as_deref(), Some("fn main() {}\n"));
    assert_eq!(read(b.join("src/deep/mod.rs")).as_deref(), Some("// 漢字 🎉\n"));
    assert_eq!(
        read(b.join("big.txt")).as_deref(),
        Some(big.as_str()),
        "the 1 MB file arrives intact"
    );
    assert!(!b.join("build/out.o").exists(), ".gitignore is honoured");
    assert!(!b.join("logo.png").exists(), "binaries are skipped");

    // Created on one side, appears on the other.
    std::fs::write(a.join("src/new.rs"), "pub fn new() {}\n").unwrap();
    eventually("a created file", || {
        read(b.join("src/new.rs")).as_deref() == Some("pub fn new() {}\n")
    })
    .await;
    // Changed on the other side, travels back.
    std::fs::write(b.join("src/main.rs"), "fn main() { println!(\"hi\"); }\n").unwrap();
    eventually("a changed file", || {
        read(a.join("src/main.rs")).as_deref() == Some("fn main() { println!(\"hi\"); }\n")
    })
    .await;
    // A change in the middle of the large file stays a small edit and arrives.
    let big2 = big.replacen("line 10000 of", "LINE 10000 OF", 1);
    std::fs::write(a.join("big.txt"), &big2).unwrap();
    eventually("the large file's edit", || {
        read(b.join("big.txt")).as_deref() == Some(big2.as_str())
    })
    .await;
    // Renamed.
    std::fs::rename(a.join("src/new.rs"), a.join("src/renamed.rs")).unwrap();
    eventually("a renamed file", || {
        read(b.join("src/renamed.rs")).is_some() && !b.join("src/new.rs").exists()
    })
    .await;
    // Deleted.
    std::fs::remove_file(b.join("src/deep/mod.rs")).unwrap();
    eventually("a deleted file", || !a.join("src/deep/mod.rs").exists()).await;

    // Joining into a folder with different local work keeps that work and says so.
    std::fs::create_dir_all(c.join("src")).unwrap();
    std::fs::write(c.join("src/main.rs"), "my local work\n").unwrap();
    let mut join_c = cli(
        &server,
        &tmp.path().join("state-c"),
        &["join", &link, c.to_str().unwrap()],
    )
    .await;
    let kept = join_c.line_starting("  kept your local version").await;
    assert!(kept.contains("src/main.rs"), "{kept}");
    assert_eq!(read(c.join("src/main.rs")).as_deref(), Some("my local work\n"));
    assert_eq!(read(c.join("src/renamed.rs")).as_deref(), Some("pub fn new() {}\n"));

    // `status` knows the folder's room.
    let out = Command::new(proxy_bin())
        .args(["status", "--json", b.to_str().unwrap()])
        .env("XDG_STATE_HOME", tmp.path().join("state-b"))
        .env("XDG_CONFIG_HOME", tmp.path().join("state-b"))
        .output()
        .await
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["state"], "reachable", "{status}");
    assert_eq!(status["info"]["participants"].as_array().map(Vec::len), Some(3));
    for p in [share, join, join_c] {
        p.stop().await;
    }
}

#[tokio::test]
async fn share_sends_the_creation_token_a_server_asks_for() {
    let server = TestServer::start_with(&["--create-token", "class-of-2025"]).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("project");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.py"), "print('hi')\n").unwrap();
    let state = tmp.path().join("state");

    // Without the token the server refuses, and the error says which setting it wants.
    let out = proxy_command(&server.url, &state, &["share", dir.to_str().unwrap()])
        .env_remove("MESH_CREATE_TOKEN")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("create_token") && stderr.contains("401"), "{stderr}");

    // With the flag, and with the environment variable, it shares.
    let mut by_flag = cli(
        &server,
        &state,
        &["share", "--create-token", "class-of-2025", dir.to_str().unwrap()],
    )
    .await;
    assert!(by_flag.line_starting("Join link").await.contains("/join/"));
    by_flag.stop().await;
    let mut env_cmd = proxy_command(
        &server.url,
        &tmp.path().join("state-env"),
        &["share", dir.to_str().unwrap()],
    );
    env_cmd.env("MESH_CREATE_TOKEN", "class-of-2025");
    let mut by_env = ProxyCli::spawn(env_cmd);
    assert!(by_env.line_starting("Join link").await.contains("/join/"));
    by_env.stop().await;
}

/// A room whose first sync is larger than a client's frame limit (16 MiB) is joined: the
/// server's sync step 2 arrives as one message, which the proxy accepts up to its own limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_over_sixteen_mib_is_joined() {
    let server = TestServer::start().unwrap();
    let session = server.create_session("large").await.unwrap();
    let writer = mesh_testkit::YClient::connect_mesh(&server.ws_url(&session, &session.created.writer_token), "w")
        .await
        .unwrap();
    writer.wait_synced().await.unwrap();
    // Five files of 4 MiB each, sent as separate updates (each under the frame limit).
    let chunk: String = "0123456789abcdef".repeat(256 * 1024);
    for i in 0..5 {
        writer.insert(&format!("data/part{i}.txt"), 0, &chunk);
    }
    // The room handles a connection's messages in order: the pong says the updates are in.
    writer.send_mesh(&mesh_protocol::ClientMessage::Ping { nonce: 7 });
    writer
        .wait_mesh("the pong", |m| {
            matches!(m, mesh_protocol::ServerMessage::Pong { nonce: 7 })
        })
        .await
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("large");
    let mut join = cli(
        &server,
        &tmp.path().join("state"),
        &["join", &session.created.join_link, dir.to_str().unwrap()],
    )
    .await;
    let joined = join.line_starting("Joined").await;
    assert!(joined.contains("(5 files)"), "{joined}");
    for i in 0..5 {
        let text = read(dir.join(format!("data/part{i}.txt"))).unwrap_or_default();
        assert_eq!(text.len(), chunk.len(), "part {i} arrived whole");
    }
}
