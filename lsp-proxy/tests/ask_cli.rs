//! `mesh-proxy ask` against a real server, a real `mesh-ghost` and a scripted
//! OpenAI-compatible provider on loopback: the selection reaches the model, progress goes to
//! stderr, the answer to stdout, and the exit code says how the request ended.

use std::process::Stdio;
use std::time::Duration;

use mesh_testkit::lsp::{ghost_bin, proxy_bin};
use mesh_testkit::provider::{Script, ScriptedProvider};
use mesh_testkit::TestServer;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const CALC: &str = "def add(a, b):\n    return a - b\n\n\nprint(add(2, 3))\n";

struct Room {
    _tmp: tempfile::TempDir,
    dir: std::path::PathBuf,
    state: std::path::PathBuf,
    _share: Child,
    _ghost: Child,
}

/// Shares a folder with calc.py and starts a ghost on its writer link.
async fn room(server: &TestServer, provider: &ScriptedProvider) -> Room {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, state) = (tmp.path().join("project"), tmp.path().join("state"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("calc.py"), CALC).unwrap();
    let mut share = Command::new(proxy_bin())
        .args(["share", dir.to_str().unwrap()])
        .env("MESH_SERVER", &server.url)
        .env("XDG_STATE_HOME", &state)
        .env("XDG_CONFIG_HOME", &state)
        .env("MESH_NAME", "ada")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(share.stdout.take().unwrap()).lines();
    let link = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(l) = lines.next_line().await.unwrap() {
            if let Some(link) = l.strip_prefix("Join link (writer): ") {
                return link.trim().to_string();
            }
        }
        panic!("share ended without a link")
    })
    .await
    .unwrap();
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let ghost = Command::new(ghost_bin())
        .args([
            "--link",
            &link,
            "--provider-url",
            &provider.base_url,
            "--model",
            "scripted",
        ])
        .env("MESH_GHOST_API_KEY", "sk-ask-cli-test")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    Room {
        _tmp: tmp,
        dir,
        state,
        _share: share,
        _ghost: ghost,
    }
}

async fn ask(room: &Room, args: &[&str]) -> (i32, String, String) {
    // The ghost joins a moment after it starts: `ask` says so when it is not there yet, so
    // try again until it is (the message names the case).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let out = tokio::time::timeout(
            Duration::from_secs(60),
            Command::new(proxy_bin())
                .arg("ask")
                .args(args)
                .current_dir(&room.dir)
                .env("XDG_STATE_HOME", &room.state)
                .env("XDG_CONFIG_HOME", &room.state)
                .stdin(Stdio::null())
                .kill_on_drop(true)
                .output(),
        )
        .await
        .expect("ask ends")
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        if stderr.contains("there is no ghost in this room") && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        return (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr,
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_sends_the_selection_prints_progress_and_the_answer_and_exits_by_outcome() {
    let server = TestServer::start().unwrap();
    let answer = "`add` subtracts: it should return a + b.";
    let provider = ScriptedProvider::start(vec![
        Script::Stream {
            pieces: answer.chars().map(String::from).collect(),
            delay: Duration::from_millis(40),
        },
        Script::Status(500, "the model is overloaded".into()),
    ])
    .await
    .unwrap();
    let room = room(&server, &provider).await;

    let (code, stdout, stderr) = ask(
        &room,
        &[
            "--explain",
            "--file",
            "calc.py",
            "--lines",
            "1-2",
            "why",
            "is",
            "add",
            "wrong?",
        ],
    )
    .await;
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains(answer), "{stdout}");
    assert!(stderr.contains("asked the ghost (explain)"), "{stderr}");
    assert!(stderr.contains("request #1: working"), "{stderr}");
    assert!(stderr.contains("characters of the answer so far"), "{stderr}");
    let sent = provider.received()[0].body["messages"].to_string();
    assert!(
        sent.contains("about lines 1-2 of calc.py, selected:") && sent.contains("why is add wrong?"),
        "{sent}"
    );

    let (code, stdout, stderr) = ask(&room, &["--explain", "what now?"]).await;
    assert_eq!(code, 1, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        stdout.starts_with("Request #2 from ") && stdout.contains(" failed: the provider answered HTTP 500"),
        "{stdout}"
    );
    assert_eq!(std::fs::read_to_string(room.dir.join("calc.py")).unwrap(), CALC);
}

/// An editor's `mesh/ghostAsk` (what `:'<,'>Mesh ask` and VS Code's "Ask Ghost About
/// Selection" send) reaches the ghost with the file's room path and lines, and the answer
/// comes back to the editor as chat.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_editors_ask_carries_the_selection_and_the_answer_arrives_as_chat() {
    use mesh_testkit::lsp::LspClient;
    use serde_json::json;

    let server = TestServer::start().unwrap();
    let provider = ScriptedProvider::start(vec![Script::Stream {
        pieces: vec!["It sub".into(), "tracts.".into()],
        delay: Duration::from_millis(20),
    }])
    .await
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ada");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("calc.py"), CALC).unwrap();
    let ada = LspClient::start(&dir, "ada", &server.url).await.unwrap();
    let shared = ada.request("mesh/share", json!({})).await.unwrap();
    let link = shared["link"].as_str().unwrap().to_string();
    let uri = ada.open("calc.py").await.unwrap();
    let _ghost = Command::new(ghost_bin())
        .args([
            "--link",
            &link,
            "--provider-url",
            &provider.base_url,
            "--model",
            "scripted",
        ])
        .env("MESH_GHOST_API_KEY", "sk-editor-ask-test")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    ada.wait_for("the ghost joins", |c| {
        c.notifications("mesh/participants").iter().any(|n| {
            n["participants"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["client"] == "mesh-ghost"))
        })
    })
    .await
    .unwrap();

    let refused = ada
        .request(
            "mesh/ghostAsk",
            json!({ "text": "why?", "startLine": 3, "endLine": 2, "uri": uri }),
        )
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("1-based and in order"), "{refused}");

    ada.request(
        "mesh/ghostAsk",
        json!({ "text": "what does add do?", "mode": "explain", "uri": uri, "startLine": 1, "endLine": 2,
                "selection": "def add(a, b):\n    return a - b" }),
    )
    .await
    .unwrap();
    ada.wait_for("the answer as chat", |c| {
        c.notifications("mesh/chatMessage").iter().any(|m| {
            m["entry"]["text"]
                .as_str()
                .is_some_and(|t| t.ends_with(":\nIt subtracts."))
        })
    })
    .await
    .unwrap();
    let sent = provider.received()[0].body["messages"].to_string();
    assert!(sent.contains("about lines 1-2 of calc.py, selected:"), "{sent}");
}

/// The ghost's state as an editor sees it (`mesh/ghostState`) with a reader's and a writer's
/// decisions (`mesh/ghost`): a suggestion arrives with its edits and the file's URI and
/// changes nothing; a reader cannot accept it; a writer's accept applies it and one undo
/// removes it; a rejected suggestion leaves the file as it was; the state goes when the
/// ghost leaves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editors_see_the_ghosts_suggestions_and_only_writers_decide_about_them() {
    use mesh_testkit::lsp::LspClient;
    use serde_json::{json, Value};

    const FIX: &str = "Sure.\n<<<<<<< SEARCH calc.py\n    return a - b\n=======\n    return a + b\n>>>>>>> REPLACE\n";
    let server = TestServer::start().unwrap();
    let provider = ScriptedProvider::start(vec![
        Script::Stream {
            pieces: FIX.split_inclusive('\n').map(String::from).collect(),
            delay: Duration::from_millis(10),
        },
        Script::Stream {
            pieces: vec![FIX.replace("a + b", "b + a")],
            delay: Duration::from_millis(10),
        },
    ])
    .await
    .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (ada_dir, rob_dir) = (tmp.path().join("ada"), tmp.path().join("rob"));
    std::fs::create_dir_all(&ada_dir).unwrap();
    std::fs::create_dir_all(&rob_dir).unwrap();
    std::fs::write(ada_dir.join("calc.py"), CALC).unwrap();
    let ada = LspClient::start(&ada_dir, "ada", &server.url).await.unwrap();
    let shared = ada.request("mesh/share", json!({})).await.unwrap();
    let link = shared["link"].as_str().unwrap().to_string();
    let read_link = shared["readLink"].as_str().unwrap().to_string();
    let uri = ada.open("calc.py").await.unwrap();
    let rob = LspClient::start(&rob_dir, "rob", &server.url).await.unwrap();
    rob.request("mesh/join", json!({ "link": read_link })).await.unwrap();
    let mut ghost = Command::new(ghost_bin())
        .args([
            "--link",
            &link,
            "--provider-url",
            &provider.base_url,
            "--model",
            "scripted",
        ])
        .env("MESH_GHOST_API_KEY", "sk-editor-suggest-test")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    ada.wait_for("the ghost joins", |c| {
        c.notifications("mesh/participants").iter().any(|n| {
            n["participants"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["client"] == "mesh-ghost"))
        })
    })
    .await
    .unwrap();

    // The newest `mesh/ghostState`'s suggestions of the one ghost.
    fn suggestions(c: &LspClient) -> Vec<Value> {
        c.notifications("mesh/ghostState")
            .last()
            .and_then(|n| n["ghosts"].as_array().and_then(|g| g.first()).cloned())
            .and_then(|g| g["suggestions"].as_array().cloned())
            .unwrap_or_default()
    }

    ada.request(
        "mesh/ghostAsk",
        json!({ "text": "fix add", "uri": uri, "startLine": 1, "endLine": 2 }),
    )
    .await
    .unwrap();
    if let Err(e) = ada
        .wait_for("suggestion #1", |c| suggestions(c).iter().any(|s| s["id"] == 1))
        .await
    {
        panic!(
            "{e}: states {:?}, chat {:?}",
            ada.notifications("mesh/ghostState"),
            ada.notifications("mesh/chatMessage")
        );
    }
    let last = ada.notifications("mesh/ghostState").last().cloned().unwrap();
    let ghost_view = &last["ghosts"][0];
    assert!(ghost_view["name"].as_str().unwrap().starts_with("ghost"), "{last}");
    assert_eq!(ghost_view["requests"][0]["status"], "done", "{last}");
    assert_eq!(ghost_view["requests"][0]["asker"], "ada", "{last}");
    assert_eq!(
        ghost_view["suggestions"][0]["edits"],
        json!([{ "path": "calc.py", "uri": uri, "search": "    return a - b\n", "replace": "    return a + b\n" }]),
        "{last}"
    );
    assert_eq!(
        ghost_view["suggestions"][0]["files"],
        json!([{ "path": "calc.py", "uri": uri }])
    );
    rob.wait_for("the reader sees the suggestion too", |c| {
        suggestions(c).iter().any(|s| s["id"] == 1)
    })
    .await
    .unwrap();
    assert_eq!(ada.text(&uri).as_deref(), Some(CALC), "a suggestion changes nothing");

    let refused = rob
        .request("mesh/ghost", json!({ "kind": "accept", "suggestion": 1 }))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("only writers"), "{refused}");
    let refused = ada
        .request("mesh/ghost", json!({ "kind": "accept", "suggestion": 7 }))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("no ghost has suggestion #7"), "{refused}");
    assert_eq!(ada.text(&uri).as_deref(), Some(CALC));

    ada.request("mesh/ghost", json!({ "kind": "accept", "suggestion": 1 }))
        .await
        .unwrap();
    let fixed = CALC.replace("a - b", "a + b");
    ada.wait_for("the accepted change in the buffer", |c| {
        c.text(&uri).as_deref() == Some(fixed.as_str())
    })
    .await
    .unwrap();
    ada.wait_for("no suggestion pending", |c| suggestions(c).is_empty())
        .await
        .unwrap();
    ada.request("mesh/ghost", json!({ "kind": "undo" })).await.unwrap();
    ada.wait_for("one undo removes it", |c| c.text(&uri).as_deref() == Some(CALC))
        .await
        .unwrap();

    ada.request("mesh/ghostAsk", json!({ "text": "fix add again", "mode": "suggest" }))
        .await
        .unwrap();
    ada.wait_for("suggestion #2", |c| suggestions(c).iter().any(|s| s["id"] == 2))
        .await
        .unwrap();
    ada.request("mesh/ghost", json!({ "kind": "reject", "suggestion": 2 }))
        .await
        .unwrap();
    ada.wait_for("the rejected suggestion goes", |c| suggestions(c).is_empty())
        .await
        .unwrap();
    assert_eq!(
        ada.text(&uri).as_deref(),
        Some(CALC),
        "a rejected suggestion changes nothing"
    );

    ghost.kill().await.unwrap();
    rob.wait_for("the state goes with the ghost", |c| {
        c.notifications("mesh/ghostState")
            .last()
            .is_some_and(|n| n["ghosts"] == json!([]))
    })
    .await
    .unwrap();
}
