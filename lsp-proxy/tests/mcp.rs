//! `mesh-proxy mcp` driven by a real MCP client (the `mcp` package from PyPI, through
//! tests/mcp/driver.py) against a real server, with a scripted editor over a real
//! `mesh-proxy lsp` in the same room watching: the agent's edits and cursor reach the
//! editor, a human typing in the same function at the same time keeps every character, runs
//! go through the room's sandbox, chat works both ways, and a reader link cannot edit.
//!
//! Needs the MCP client installed: `scripts/install-mcp-client` (scripts/test runs it).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use mesh_testkit::lsp::{position, proxy_bin};
use mesh_testkit::{LspClient, TestServer};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// How long one tool call may take (a run pulls no image, but starts a container).
const CALL_TIMEOUT: Duration = Duration::from_secs(90);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// The venv's python that has the `mcp` package: $MESH_MCP_PYTHON, or where
/// scripts/install-mcp-client puts it.
fn mcp_python() -> PathBuf {
    let p = std::env::var_os("MESH_MCP_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".tools/mcp-client/bin/python"));
    assert!(
        p.exists(),
        "{} is missing: run scripts/install-mcp-client (scripts/test does) to install the MCP client",
        p.display()
    );
    p
}

/// One `mesh-proxy mcp` process behind the reference MCP client.
struct Agent {
    _child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    tools: Vec<String>,
}

impl Agent {
    async fn start(state: &Path, dir: &Path, args: &[&str]) -> Agent {
        let mut child = Command::new(mcp_python())
            .arg(repo_root().join("tests/mcp/driver.py"))
            .args(["mcp", "--dir", dir.to_str().unwrap()])
            .args(args)
            .env("MESH_PROXY_BIN", proxy_bin())
            .env("XDG_STATE_HOME", state)
            .env("XDG_CONFIG_HOME", state)
            .env("MESH_LOG", std::env::var("MESH_LOG").unwrap_or_else(|_| "warn".into()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("start the MCP client driver");
        let stdin = child.stdin.take().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = tokio::time::timeout(CALL_TIMEOUT, lines.next_line())
            .await
            .expect("the MCP server answers the handshake in time")
            .unwrap()
            .expect("the driver printed its ready line (see its stderr above)");
        let ready: Value = serde_json::from_str(&ready).unwrap();
        assert_eq!(ready["server"], "mesh-proxy", "{ready}");
        let tools = ready["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect();
        Agent {
            _child: child,
            stdin,
            lines,
            tools,
        }
    }

    /// Calls a tool; (whether it is an error, its text).
    async fn call(&mut self, tool: &str, args: Value) -> (bool, String) {
        let line = format!("{}\n", json!({ "tool": tool, "args": args }));
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        let answer = tokio::time::timeout(CALL_TIMEOUT, self.lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("{tool} answered in time"))
            .unwrap()
            .unwrap_or_else(|| panic!("the driver ended during {tool}"));
        let v: Value = serde_json::from_str(&answer).unwrap();
        (v["error"].as_bool().unwrap(), v["text"].as_str().unwrap().to_string())
    }

    async fn ok(&mut self, tool: &str, args: Value) -> String {
        let (error, text) = self.call(tool, args).await;
        assert!(!error, "{tool} failed: {text}");
        text
    }
}

const CALC: &str = "def total(items):\n    # human: \n    return sum(items)\n\n\nprint(total([1, 2, 3]))\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_lists_reads_edits_and_runs_while_an_editor_watches() {
    let server = TestServer::start_with(&["--run-images", "local"]).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let (ada_dir, agent_dir, state) = (
        tmp.path().join("ada"),
        tmp.path().join("agent"),
        tmp.path().join("agent-state"),
    );
    std::fs::create_dir_all(&ada_dir).unwrap();
    std::fs::write(ada_dir.join("calc.py"), CALC).unwrap();
    std::fs::write(ada_dir.join("notes.md"), "# notes\n").unwrap();
    let ada = LspClient::start(&ada_dir, "ada", &server.url).await.unwrap();
    let shared = ada.request("mesh/share", json!({})).await.unwrap();
    let link = shared["link"].as_str().unwrap().to_string();
    let uri = ada.open("calc.py").await.unwrap();

    let mut agent = Agent::start(&state, &agent_dir, &[&link, "--name", "ghostwriter"]).await;
    for tool in [
        "list_files",
        "read_file",
        "search",
        "edit_file",
        "create_file",
        "run_file",
        "read_chat",
        "post_chat",
        "room_info",
    ] {
        assert!(
            agent.tools.iter().any(|t| t == tool),
            "{tool} missing from {:?}",
            agent.tools
        );
    }

    // The agent is a participant of its own, under its name, and the editor lists it.
    let info = agent.ok("room_info", json!({})).await;
    assert!(info.contains("your role: writer"), "{info}");
    ada.wait_for("the agent in the participants", |c| {
        c.notifications("mesh/participants").last().is_some_and(|p| {
            p["participants"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "ghostwriter" && p["client"] == "mesh-proxy mcp")
        })
    })
    .await
    .unwrap();

    assert_eq!(
        agent.ok("list_files", json!({})).await,
        "calc.py (6 lines)\nnotes.md (1 lines)\n"
    );
    assert_eq!(agent.ok("read_file", json!({ "path": "calc.py" })).await, CALC);
    assert_eq!(
        agent.ok("search", json!({ "query": "total\\(", "regex": true })).await,
        "calc.py:1: def total(items):\ncalc.py:6: print(total([1, 2, 3]))\n"
    );

    // Ada types markers into the function's comment while the agent edits the line below,
    // in turns that do not wait for each other: every character of both must survive.
    let edits = ["sum(items) * 2", "sum(items) * 2 + 0", "sum(items) * 2 + 0 + 0"];
    let mut previous = "sum(items)";
    for (i, new) in edits.iter().enumerate() {
        let text = ada.text(&uri).unwrap();
        let at = text.find("# human: ").unwrap() + "# human: ".len();
        ada.edit(&uri, at, at, &format!("<h{i}>")).await.unwrap();
        let done = agent
            .ok(
                "edit_file",
                json!({ "path": "calc.py", "old_text": format!("return {previous}"), "new_text": format!("return {new}") }),
            )
            .await;
        assert_eq!(done, "edited calc.py at line 3");
        previous = new;
    }
    let merged = "def total(items):\n    # human: <h2><h1><h0>\n    return sum(items) * 2 + 0 + 0\n\n\nprint(total([1, 2, 3]))\n";
    ada.wait_for("both people's text", |c| c.text(&uri).as_deref() == Some(merged))
        .await
        .unwrap();
    // The agent's replica agrees, once Ada's last keystroke has reached it too (the server
    // may send a busy connection its frames up to --write-spacing-ms later).
    let deadline = std::time::Instant::now() + mesh_testkit::EVENT_TIMEOUT;
    let mut seen = agent.ok("read_file", json!({ "path": "calc.py" })).await;
    while seen != merged && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        seen = agent.ok("read_file", json!({ "path": "calc.py" })).await;
    }
    assert_eq!(seen, merged);

    // One more edit, with nobody typing: the agent's cursor lands right after what it typed
    // (only ", 4" is inserted: the rest of the anchor is unchanged).
    agent
        .ok(
            "edit_file",
            json!({ "path": "calc.py", "old_text": "print(total([1, 2, 3]))", "new_text": "print(total([1, 2, 3, 4]))" }),
        )
        .await;
    let want = merged.replace("[1, 2, 3]", "[1, 2, 3, 4]");
    let want = want.as_str();
    ada.wait_for("the last edit", |c| c.text(&uri).as_deref() == Some(want))
        .await
        .unwrap();
    mesh_testkit::cli::eventually("the agent's folder follows", || {
        std::fs::read_to_string(agent_dir.join("calc.py")).ok().as_deref() == Some(want)
    })
    .await;
    let end_of_edit = want.find(", 4").unwrap() + ", 4".len();
    let (line, character) = position(want, end_of_edit);
    ada.wait_for("the agent's cursor", |c| {
        c.notifications("mesh/cursors").iter().any(|n| {
            n["uri"] == uri.as_str()
                && n["cursors"].as_array().is_some_and(|cs| {
                    cs.iter().any(|c| {
                        c["name"] == "ghostwriter"
                            && c["selections"][0]["head"] == json!({ "line": line, "character": character })
                    })
                })
        })
    })
    .await
    .unwrap();

    // Anchors that name no place, or several, change nothing and say why.
    let (error, text) = agent
        .call(
            "edit_file",
            json!({ "path": "calc.py", "old_text": "items", "new_text": "xs" }),
        )
        .await;
    assert!(error && text.contains("occurs 2 times"), "{text}");
    let (error, text) = agent
        .call(
            "edit_file",
            json!({ "path": "calc.py", "old_text": "return sum(items)\n", "new_text": "" }),
        )
        .await;
    assert!(error && text.contains("not found"), "{text}");
    let (error, text) = agent
        .call(
            "edit_file",
            json!({ "path": "nope.py", "old_text": "a", "new_text": "b" }),
        )
        .await;
    assert!(error && text.contains("not in the room"), "{text}");
    assert_eq!(ada.text(&uri).as_deref(), Some(want));

    // A new file reaches the editor's folder.
    assert_eq!(
        agent
            .ok(
                "create_file",
                json!({ "path": "lib/util.py", "text": "def twice(x):\n    return 2 * x\n" })
            )
            .await,
        "created lib/util.py"
    );
    mesh_testkit::cli::eventually("the new file in ada's folder", || {
        std::fs::read_to_string(ada_dir.join("lib/util.py")).ok().as_deref()
            == Some("def twice(x):\n    return 2 * x\n")
    })
    .await;
    let (error, text) = agent
        .call("create_file", json!({ "path": "../escape.py", "text": "x" }))
        .await;
    assert!(error && text.contains("cannot be a room file"), "{text}");

    // A run in the room's sandbox: the output and exit code of what the agent just wrote.
    let out = agent.ok("run_file", json!({ "path": "calc.py" })).await;
    assert!(out.starts_with("20\n"), "{out}");
    assert!(out.contains("[mesh: exit code 0;"), "{out}");
    std::fs::write(ada_dir.join("fail.py"), "import sys\nprint(input())\nsys.exit(4)\n").unwrap();
    // Ada's folder watcher takes a moment to bring the new file into the room.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let l = agent.ok("list_files", json!({})).await;
        if l.contains("fail.py") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "fail.py never reached the room: {l}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let out = agent
        .ok("run_file", json!({ "path": "fail.py", "stdin": "from stdin\n" }))
        .await;
    assert!(out.starts_with("from stdin\n"), "{out}");
    assert!(out.contains("[mesh: exit code 4;"), "{out}");

    // Chat both ways.
    assert_eq!(
        agent.ok("post_chat", json!({ "text": "doubled the total" })).await,
        "posted"
    );
    ada.wait_for("the agent's message", |c| {
        c.notifications("mesh/chatMessage")
            .iter()
            .any(|m| m["entry"]["author"] == "ghostwriter" && m["entry"]["text"] == "doubled the total")
    })
    .await
    .unwrap();
    ada.request("mesh/chat", json!({ "text": "thanks" })).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let chat = agent.ok("read_chat", json!({})).await;
        if chat.ends_with("ghostwriter: doubled the total\nada: thanks") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{chat}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (error, text) = agent.call("post_chat", json!({ "text": "x".repeat(5000) })).await;
    assert!(error && text.contains("at most 4096"), "{text}");

    // A reader link: reading works, edits and new files are refused, nothing changes.
    let read_link = shared["readLink"].as_str().unwrap().to_string();
    let (reader_dir, reader_state) = (tmp.path().join("reader"), tmp.path().join("reader-state"));
    let mut reader = Agent::start(&reader_state, &reader_dir, &[&read_link]).await;
    assert!(reader.ok("room_info", json!({})).await.contains("your role: reader"));
    assert_eq!(reader.ok("read_file", json!({ "path": "calc.py" })).await, want);
    let (error, text) = reader
        .call(
            "edit_file",
            json!({ "path": "calc.py", "old_text": "* 2", "new_text": "* 3" }),
        )
        .await;
    assert!(error && text.contains("read-only"), "{text}");
    let (error, text) = reader.call("create_file", json!({ "path": "x.py", "text": "x" })).await;
    assert!(error && text.contains("read-only"), "{text}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ada.text(&uri).as_deref(), Some(want));
    assert_eq!(agent.ok("read_file", json!({ "path": "calc.py" })).await, want);
}
