//! The editor bridge end to end: a real server, real `mesh-proxy lsp` processes driven by
//! scripted editors, and a stock Yjs client as a third participant.

use mesh_testkit::{LspClient, TestServer, YClient};
use serde_json::json;

async fn joined_pair(server: &TestServer, files: &[(&str, &str)]) -> (tempfile::TempDir, LspClient, LspClient, String) {
    let tmp = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(&a_dir).unwrap();
    std::fs::create_dir_all(&b_dir).unwrap();
    for (p, t) in files {
        let path = a_dir.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, t).unwrap();
    }
    let a = LspClient::start(&a_dir, "ada", &server.url).await.unwrap();
    let shared = a.request("mesh/share", json!({})).await.unwrap();
    let link = shared["link"].as_str().unwrap().to_string();
    let b = LspClient::start(&b_dir, "bob", &server.url).await.unwrap();
    let joined = b.request("mesh/join", json!({ "link": link })).await.unwrap();
    assert_eq!(joined["files"], files.len());
    (tmp, a, b, link)
}

#[tokio::test]
async fn share_join_and_type_both_ways() {
    let server = TestServer::start().unwrap();
    let (_tmp, a, b, link) = joined_pair(&server, &[("src/main.py", "print('hi')\n"), ("README.md", "# demo\n")]).await;
    // Join wrote the room's files into B's folder.
    assert_eq!(
        std::fs::read_to_string(b.root.join("src/main.py")).unwrap(),
        "print('hi')\n"
    );

    let ua = a.open("src/main.py").await.unwrap();
    let ub = b.open("src/main.py").await.unwrap();
    a.edit(&ua, 0, 0, "# héllo 🎉\n").await.unwrap();
    b.wait_for("ada's edit", |c| c.text(&ub).unwrap() == "# héllo 🎉\nprint('hi')\n")
        .await
        .unwrap();
    let end = b.text(&ub).unwrap().len();
    b.edit(&ub, end, end, "print('bob')\n").await.unwrap();
    a.wait_for("bob's edit", |c| c.text(&ua).unwrap().ends_with("print('bob')\n"))
        .await
        .unwrap();

    // A stock Yjs client sees the same text.
    let target_room = link
        .split("/join/")
        .nth(1)
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let token = link.split("token=").nth(1).unwrap().to_string();
    let y = YClient::connect(&format!(
        "ws://127.0.0.1:{}/ws/{target_room}?token={token}",
        server.port
    ))
    .await
    .unwrap();
    let want = a.text(&ua).unwrap();
    y.wait_for("same text", |c| c.text("src/main.py").as_deref() == Some(want.as_str()))
        .await
        .unwrap();

    // And its edits reach both editors.
    let len = y.len("src/main.py");
    y.insert("src/main.py", len, "# from yjs\n");
    for (c, u) in [(&a, &ua), (&b, &ub)] {
        c.wait_for("the yjs edit", |c| c.text(u).unwrap().ends_with("# from yjs\n"))
            .await
            .unwrap();
    }
    assert_eq!(a.text(&ua), b.text(&ub));
}

#[tokio::test]
async fn remote_cursors_arrive_with_names() {
    let server = TestServer::start().unwrap();
    let (_tmp, a, b, _) = joined_pair(&server, &[("a.txt", "one\ntwo 漢字 three\n")]).await;
    let ua = a.open("a.txt").await.unwrap();
    let ub = b.open("a.txt").await.unwrap();
    b.wait_for("participants", |c| {
        c.notifications("mesh/participants")
            .last()
            .is_some_and(|p| p["participants"].as_array().unwrap().len() == 2)
    })
    .await
    .unwrap();
    // Ada puts her caret after "漢字" (UTF-16 column 6 of line 1).
    a.notify_server("mesh/cursor", json!({ "uri": ua, "selections": [{ "anchor": { "line": 1, "character": 6 }, "head": { "line": 1, "character": 6 } }] }))
        .await
        .unwrap();
    b.wait_for("ada's cursor", |c| {
        c.notifications("mesh/cursors").iter().any(|n| {
            n["uri"] == ub.as_str()
                && n["cursors"].as_array().is_some_and(|cs| {
                    cs.iter().any(|c| {
                        c["name"] == "ada" && c["selections"][0]["head"] == json!({ "line": 1, "character": 6 })
                    })
                })
        })
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_drifted_buffer_is_detected_and_repaired() {
    let server = TestServer::start().unwrap();
    let (_tmp, a, b, _) = joined_pair(&server, &[("x.txt", "shared text\n")]).await;
    let ua = a.open("x.txt").await.unwrap();
    let ub = b.open("x.txt").await.unwrap();
    // Something changes B's buffer behind the proxy's back.
    b.corrupt(&ub, "shared text\nGARBAGE that nobody reported\n");
    // The quiet-period hash check notices and restores the room's text, and says so.
    b.wait_for("repair", |c| c.text(&ub).as_deref() == Some("shared text\n"))
        .await
        .unwrap();
    b.wait_for("a message", |c| {
        c.notifications("mesh/notify")
            .iter()
            .any(|n| n["message"].as_str().unwrap_or("").contains("resynced"))
    })
    .await
    .unwrap();
    // Editing goes on normally afterwards.
    a.edit(&ua, 0, 0, ">").await.unwrap();
    b.wait_for("edit after repair", |c| {
        c.text(&ub).as_deref() == Some(">shared text\n")
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn bad_input_gets_clear_errors_and_breaks_nothing() {
    let server = TestServer::start().unwrap();
    let (_tmp, a, b, _) = joined_pair(&server, &[("x.txt", "line one\nline two\n")]).await;
    let ua = a.open("x.txt").await.unwrap();
    let ub = b.open("x.txt").await.unwrap();

    // A change to a document that was never opened, and positions far out of range.
    a.notify_server(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": "file:///nowhere/ghost.txt", "version": 2 }, "contentChanges": [{ "text": "boo" }] }),
    )
    .await
    .unwrap();
    a.notify_server("mesh/cursor", json!({ "uri": ua, "selections": [{ "anchor": { "line": 999, "character": 999 }, "head": { "line": 0, "character": 99999 } }] }))
        .await
        .unwrap();
    // Malformed requests get JSON-RPC errors that say what is wrong.
    let err = a
        .request("mesh/join", json!({ "link": "not a link" }))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a mesh link"), "{err}");
    let err = a
        .request("mesh/join", json!({ "wrong": 1 }))
        .await
        .unwrap_err()
        .to_string();
    assert!(!err.is_empty());
    // A joiner's folder is in someone else's room: sharing it is refused, saying why; the
    // sharer asking again gets its room's links back.
    let err = b.request("mesh/share", json!({})).await.unwrap_err().to_string();
    assert!(err.contains("already, joined with a link: leave it first"), "{err}");
    let again = a.request("mesh/share", json!({})).await.unwrap();
    let first = a.request("mesh/status", json!({})).await.unwrap();
    assert_eq!(again["link"], first["link"], "{again} {first}");

    // A huge paste is refused with a message, and the buffer returns to the shared text.
    let huge = "x".repeat(5 * 1024 * 1024);
    a.edit(&ua, 0, 0, &huge).await.unwrap();
    a.wait_for("refusal", |c| {
        c.notifications("mesh/notify")
            .iter()
            .any(|n| n["message"].as_str().unwrap_or("").contains("too large"))
    })
    .await
    .unwrap();
    a.wait_for("reset", |c| c.text(&ua).as_deref() == Some("line one\nline two\n"))
        .await
        .unwrap();

    // An insert at an out-of-range position lands at the end of the line, like LSP says.
    a.notify_server(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": ua, "version": 100 },
                "contentChanges": [{ "range": { "start": { "line": 0, "character": 500 }, "end": { "line": 0, "character": 500 } }, "text": "!" }] }),
    )
    .await
    .unwrap();
    b.wait_for("clamped edit", |c| {
        c.text(&ub).as_deref() == Some("line one!\nline two\n")
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn malformed_lsp_frames_do_not_kill_the_proxy() {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(mesh_testkit::lsp::proxy_bin())
        .args(["lsp", "--stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let garbage = "Content-Length: 12\r\n\r\n{not json!!}";
    stdin.write_all(garbage.as_bytes()).unwrap();
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities":{}}}"#;
    write!(stdin, "Content-Length: {}\r\n\r\n{}", body.len(), body).unwrap();
    stdin.flush().unwrap();
    // It drops the garbage (and logs it) and still initialises.
    let mut out = child.stdout.take().unwrap();
    let mut buf = vec![0u8; 4096];
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !seen.contains("\"capabilities\"") && std::time::Instant::now() < deadline {
        use std::io::Read;
        let n = out.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.contains("\"capabilities\""), "{seen}");
    let _ = child.kill();
    let _ = child.wait();
}
