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
