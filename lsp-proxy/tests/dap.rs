//! `mesh-proxy dap` against a real server and real Docker: scripted DAP clients (editors)
//! drive real proxies into the room's shared debug session. Python (debugpy) and C
//! (lldb-vscode), two participants and a reader, and bad input.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use mesh_testkit::lsp::proxy_bin;
use mesh_testkit::TestServer;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

/// Starting a session builds and boots a container: generous on a shared machine.
const START_TIMEOUT: Duration = Duration::from_secs(120);

/// Any other answer or event.
const STEP_TIMEOUT: Duration = Duration::from_secs(45);

const PYTHON: &str = "import sys

def square(n):
    result = n * n
    return result

def main():
    total = 0
    for i in range(3):
        total += square(i)
    print('total', total)
    sys.exit(total)

main()
";

const C: &str = "#include <stdio.h>

int square(int n) {
    int result = n * n;
    return result;
}

int main(void) {
    int total = 0;
    for (int i = 0; i < 3; i++) {
        total += square(i);
    }
    printf(\"total %d\\n\", total);
    return total;
}
";

/// A shared project: the folder, the state dir that records it, and the processes that
/// keep it (and its readers' copy) in the room.
struct Project {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    state: PathBuf,
    /// The writer's and the reader's join links.
    write_link: String,
    read_link: String,
    _share: Child,
    _joins: Vec<Child>,
}

impl Project {
    /// Shares a folder holding `files` with the server.
    async fn share(server: &TestServer, files: &[(&str, &str)]) -> Project {
        let tmp = tempfile::tempdir().unwrap();
        let (dir, state) = (tmp.path().join("project"), tmp.path().join("state"));
        for (path, text) in files {
            let file = dir.join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, text).unwrap();
        }
        let mut share = Command::new(proxy_bin())
            .args(["share", dir.to_str().unwrap()])
            .env("MESH_SERVER", &server.url)
            .env("XDG_STATE_HOME", &state)
            .env("XDG_CONFIG_HOME", &state)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(share.stdout.take().unwrap()).lines();
        let (write_link, read_link) = tokio::time::timeout(STEP_TIMEOUT, async {
            let mut write_link = String::new();
            while let Some(l) = lines.next_line().await.unwrap() {
                if let Some(link) = l.strip_prefix("Join link (writer):") {
                    write_link = link.trim().to_string();
                }
                if let Some(link) = l.strip_prefix("Read-only link:") {
                    return (write_link, link.trim().to_string());
                }
            }
            panic!("share ended without its links");
        })
        .await
        .expect("share prints its links");
        tokio::spawn(drain(lines));
        Project {
            _tmp: tmp,
            dir,
            state,
            write_link,
            read_link,
            _share: share,
            _joins: Vec::new(),
        }
    }

    /// Joins the room with `link` into a folder of its own, as another participant would.
    async fn join(&mut self, link: &str, folder: &str) -> PathBuf {
        let dir = self.dir.with_file_name(folder);
        let mut join = Command::new(proxy_bin())
            .args(["join", link, dir.to_str().unwrap()])
            .env("XDG_STATE_HOME", &self.state)
            .env("XDG_CONFIG_HOME", &self.state)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(join.stdout.take().unwrap()).lines();
        tokio::time::timeout(STEP_TIMEOUT, async {
            while let Some(l) = lines.next_line().await.unwrap() {
                if l.starts_with("Joined room") {
                    return;
                }
            }
            panic!("join ended before it joined");
        })
        .await
        .expect("join joins");
        tokio::spawn(drain(lines));
        self._joins.push(join);
        dir
    }

    fn path(&self, rel: &str) -> String {
        self.dir.join(rel).to_string_lossy().into_owned()
    }
}

/// Reads the rest of a command's output, so that it never writes to a closed pipe.
async fn drain(mut lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>) {
    while let Ok(Some(_)) = lines.next_line().await {}
}

/// A scripted editor's debugger: a `mesh-proxy dap` child spoken to over stdio.
struct Editor {
    child: Child,
    stdin: ChildStdin,
    incoming: mpsc::UnboundedReceiver<Value>,
    /// Messages received and not yet looked at.
    seen: Vec<Value>,
    seq: i64,
    name: &'static str,
}

impl Editor {
    /// Starts `mesh-proxy dap --folder DIR` and initialises it.
    async fn start(folder: &Path, state: &Path, name: &'static str) -> Editor {
        let mut child = Command::new(proxy_bin())
            .args(["dap", "--folder", folder.to_str().unwrap()])
            .env("XDG_STATE_HOME", state)
            .env("XDG_CONFIG_HOME", state)
            .env("MESH_NAME", name)
            .env("MESH_LOG", std::env::var("MESH_LOG").unwrap_or_else(|_| "warn".into()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let (tx, incoming) = mpsc::unbounded_channel();
        tokio::spawn(read_messages(BufReader::new(child.stdout.take().unwrap()), tx));
        let mut editor = Editor {
            child,
            stdin,
            incoming,
            seen: Vec::new(),
            seq: 0,
            name,
        };
        let caps = editor
            .ok("initialize", json!({"adapterID": "mesh", "linesStartAt1": true}))
            .await;
        assert_eq!(caps["supportsConfigurationDoneRequest"], true, "{caps}");
        editor
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.stdin.write_all(bytes).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// Sends a request (with `arguments` as given: `Value::Null` sends `null`).
    async fn send(&mut self, command: &str, arguments: Value) -> i64 {
        self.seq += 1;
        let msg = json!({"seq": self.seq, "type": "request", "command": command, "arguments": arguments});
        self.send_raw(&frame(&msg)).await;
        self.seq
    }

    /// Sends a request and waits for its response.
    async fn request(&mut self, command: &str, arguments: Value) -> Value {
        let seq = self.send(command, arguments).await;
        self.response(seq, STEP_TIMEOUT).await
    }

    /// Sends a request and returns the body of its successful response.
    async fn ok(&mut self, command: &str, arguments: Value) -> Value {
        let resp = self.request(command, arguments).await;
        assert_eq!(resp["success"], true, "{}: {command} failed: {resp}", self.name);
        resp["body"].clone()
    }

    async fn response(&mut self, seq: i64, timeout: Duration) -> Value {
        self.wait(&format!("the response to request {seq}"), timeout, |m| {
            m["type"] == "response" && m["request_seq"] == seq
        })
        .await
    }

    /// `configurationDone` of an editor that attaches to a session already going: the hub
    /// replays the current stop after it, unless the editor saw that stop live.
    async fn attached_configuration_done(&mut self) {
        self.ok("configurationDone", json!({})).await;
    }

    /// Waits for the next event `name`.
    async fn event(&mut self, name: &str) -> Value {
        self.wait(&format!("a {name} event"), STEP_TIMEOUT, |m| {
            m["type"] == "event" && m["event"] == name
        })
        .await
    }

    /// The first message (received or to come) that `pred` accepts, removed from the rest.
    async fn wait(&mut self, what: &str, timeout: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(i) = self.seen.iter().position(&pred) {
                return self.seen.remove(i);
            }
            match tokio::time::timeout_at(deadline, self.incoming.recv()).await {
                Ok(Some(msg)) => self.seen.push(msg),
                Ok(None) => panic!(
                    "{}: the proxy ended while waiting for {what}; got {:#?}",
                    self.name, self.seen
                ),
                Err(_) => panic!("{}: no {what} within {timeout:?}; got {:#?}", self.name, self.seen),
            }
        }
    }

    /// `launch` (or `attach`) and the `initialized` event that follows.
    async fn start_session(&mut self, command: &str, arguments: Value) {
        let seq = self.send(command, arguments).await;
        let resp = self.response(seq, START_TIMEOUT).await;
        assert_eq!(resp["success"], true, "{}: {command} failed: {resp}", self.name);
        self.event("initialized").await;
    }

    async fn set_breakpoints(&mut self, path: &str, lines: &[u32]) -> Value {
        let bps: Vec<Value> = lines.iter().map(|l| json!({"line": l})).collect();
        self.ok("setBreakpoints", json!({"source": {"path": path}, "breakpoints": bps}))
            .await
    }

    /// The top frame of thread `thread`: (function name, line, local path).
    async fn top_frame(&mut self, thread: &Value) -> (String, u64, String, Value) {
        let body = self
            .ok("stackTrace", json!({"threadId": thread, "startFrame": 0, "levels": 20}))
            .await;
        let f = &body["stackFrames"][0];
        (
            f["name"].as_str().unwrap_or_default().to_string(),
            f["line"].as_u64().unwrap_or(0),
            f["source"]["path"].as_str().unwrap_or_default().to_string(),
            f["id"].clone(),
        )
    }

    /// The local variables of a frame, name → value.
    async fn locals(&mut self, frame: &Value) -> Vec<(String, String)> {
        let scopes = self.ok("scopes", json!({"frameId": frame})).await;
        let reference = scopes["scopes"][0]["variablesReference"].clone();
        let vars = self.ok("variables", json!({"variablesReference": reference})).await;
        vars["variables"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                (
                    v["name"].as_str().unwrap().to_string(),
                    v["value"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// Steps with `command` and waits for the stop that follows.
    async fn step(&mut self, command: &str, thread: &Value) {
        // The adapter may report the new stop before it answers the step: only the stops
        // seen before the step are old.
        self.seen.retain(|m| m["event"] != "stopped");
        self.ok(command, json!({"threadId": thread})).await;
        self.event("stopped").await;
    }

    /// Disconnects; the proxy answers and exits cleanly.
    async fn disconnect(mut self, arguments: Value) {
        let resp = self.request("disconnect", arguments).await;
        assert_eq!(resp["success"], true, "{}: disconnect: {resp}", self.name);
        let status = tokio::time::timeout(STEP_TIMEOUT, self.child.wait())
            .await
            .expect("the proxy exits after disconnect")
            .unwrap();
        assert!(status.success(), "{}: the proxy exited with {status}", self.name);
    }
}

/// One DAP frame.
fn frame(msg: &Value) -> Vec<u8> {
    let body = msg.to_string();
    format!("Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

/// Reads Content-Length framed messages until the proxy closes stdout.
async fn read_messages(mut reader: BufReader<tokio::process::ChildStdout>, tx: mpsc::UnboundedSender<Value>) {
    loop {
        let mut len = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    len = value.trim().parse::<usize>().ok();
                }
            }
        }
        let mut body = vec![0u8; len.expect("the proxy sent a header without Content-Length")];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let msg: Value = serde_json::from_slice(&body).expect("the proxy sent invalid JSON");
        if tx.send(msg).is_err() {
            return;
        }
    }
}

fn start_server() -> TestServer {
    TestServer::start_with(&["--run-images", "local"]).unwrap()
}

/// Waits for the program's end: `exited` with `code`, then `terminated`.
async fn expect_exit(editor: &mut Editor, code: i64) {
    let exited = editor.event("exited").await;
    assert_eq!(exited["body"]["exitCode"], code, "{exited}");
    editor.event("terminated").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_stops_steps_inspects_and_exits() {
    let server = start_server();
    let project = Project::share(&server, &[("src/app.py", PYTHON)]).await;
    let app = project.path("src/app.py");
    let mut ada = Editor::start(&project.dir, &project.state, "ada").await;
    ada.start_session("launch", json!({"program": app})).await;
    let bps = ada.set_breakpoints(&app, &[10]).await;
    assert_eq!(bps["breakpoints"][0]["verified"], true, "{bps}");
    ada.ok("configurationDone", json!({})).await;

    let stopped = ada.event("stopped").await;
    let thread = stopped["body"]["threadId"].clone();
    let (name, line, path, frame) = ada.top_frame(&thread).await;
    assert_eq!((name.as_str(), line, path.as_str()), ("main", 10, app.as_str()));
    // The program is /work/main.py in the container; debugpy's module for it is this
    // folder's file, like its frames.
    let module = ada
        .wait("the program's module", STEP_TIMEOUT, |m| {
            m["event"] == "module" && m["body"]["module"]["name"] == "__main__"
        })
        .await;
    assert_eq!(module["body"]["module"]["path"], app.as_str(), "{module}");
    let locals = ada.locals(&frame).await;
    assert!(locals.contains(&("total".into(), "0".into())), "{locals:?}");
    assert!(locals.contains(&("i".into(), "0".into())), "{locals:?}");

    ada.step("next", &thread).await;
    assert_eq!(ada.top_frame(&thread).await.1, 9, "next goes back to the loop");
    ada.step("next", &thread).await;
    assert_eq!(ada.top_frame(&thread).await.1, 10);
    ada.step("stepIn", &thread).await;
    let (name, line, path, frame) = ada.top_frame(&thread).await;
    assert_eq!((name.as_str(), line, path.as_str()), ("square", 4, app.as_str()));
    let value = ada
        .ok(
            "evaluate",
            json!({"expression": "n * 10", "frameId": frame, "context": "repl"}),
        )
        .await;
    assert_eq!(value["result"], "10", "{value}");
    ada.step("stepOut", &thread).await;
    assert_eq!(ada.top_frame(&thread).await.0, "main");

    ada.set_breakpoints(&app, &[]).await;
    ada.ok("continue", json!({"threadId": thread})).await;
    expect_exit(&mut ada, 5).await;
    ada.disconnect(json!({})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_stops_steps_inspects_and_exits() {
    let server = start_server();
    let project = Project::share(&server, &[("prog.c", C)]).await;
    let prog = project.path("prog.c");
    let mut ada = Editor::start(&project.dir, &project.state, "ada").await;
    ada.start_session("launch", json!({"program": prog})).await;
    let bps = ada.set_breakpoints(&prog, &[11]).await;
    assert_eq!(bps["breakpoints"][0]["verified"], true, "{bps}");
    ada.ok("configurationDone", json!({})).await;

    let stopped = ada.event("stopped").await;
    let thread = stopped["body"]["threadId"].clone();
    let (name, line, path, frame) = ada.top_frame(&thread).await;
    assert!(name.starts_with("main"), "{name}");
    assert_eq!((line, path.as_str()), (11, prog.as_str()));
    let locals = ada.locals(&frame).await;
    assert!(locals.contains(&("total".into(), "0".into())), "{locals:?}");
    assert!(locals.contains(&("i".into(), "0".into())), "{locals:?}");

    ada.step("stepIn", &thread).await;
    let (name, line, path, frame) = ada.top_frame(&thread).await;
    assert!(name.starts_with("square"), "{name}");
    assert_eq!((line, path.as_str()), (4, prog.as_str()));
    let value = ada
        .ok(
            "evaluate",
            json!({"expression": "n + 100", "frameId": frame, "context": "repl"}),
        )
        .await;
    assert_eq!(value["result"], "100", "{value}");
    ada.step("stepOut", &thread).await;
    assert!(ada.top_frame(&thread).await.0.starts_with("main"));
    ada.step("next", &thread).await;
    let line = ada.top_frame(&thread).await.1;
    assert!((10..=11).contains(&line), "next stays in the loop: line {line}");

    ada.set_breakpoints(&prog, &[]).await;
    ada.ok("continue", json!({"threadId": thread})).await;
    expect_exit(&mut ada, 5).await;
    ada.disconnect(json!({})).await;
}

/// A Go program (Delve in the container): goroutines are threads, and frames land in this
/// editor's folder.
const GO: &str = "package main\n\nimport \"fmt\"\n\nfunc square(n int) int {\n\treturn n * n\n}\n\nfunc main() {\n\ttotal := 0\n\tfor i := 0; i < 3; i++ {\n\t\ttotal += square(i)\n\t}\n\tfmt.Println(total)\n}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_paths_and_names_land_in_the_editors_folder() {
    let server = start_server();
    let project = Project::share(&server, &[("cmd/sum.go", GO)]).await;
    let prog = project.path("cmd/sum.go");
    let mut ada = Editor::start(&project.dir, &project.state, "ada").await;
    ada.start_session("launch", json!({"program": prog})).await;
    let bps = ada.set_breakpoints(&prog, &[12]).await;
    assert_eq!(bps["breakpoints"][0]["verified"], true, "{bps}");
    ada.ok("configurationDone", json!({})).await;
    let stopped = ada.event("stopped").await;
    let thread = stopped["body"]["threadId"].clone();
    let threads = ada.ok("threads", json!({})).await;
    assert!(
        threads["threads"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"].as_str().unwrap_or("").contains("main.main")),
        "goroutines are threads: {threads}"
    );
    let (name, line, path, _) = ada.top_frame(&thread).await;
    assert_eq!((name.as_str(), line, path.as_str()), ("main.main", 12, prog.as_str()));
    ada.step("stepIn", &thread).await;
    let (name, line, path, _) = ada.top_frame(&thread).await;
    assert_eq!((name.as_str(), line, path.as_str()), ("main.square", 5, prog.as_str()));
    ada.set_breakpoints(&prog, &[]).await;
    ada.ok("continue", json!({"threadId": thread})).await;
    expect_exit(&mut ada, 0).await;
    ada.disconnect(json!({})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_editors_share_one_session_and_a_reader_joins_late() {
    let server = start_server();
    let mut project = Project::share(&server, &[("src/app.py", PYTHON)]).await;
    let app = project.path("src/app.py");
    // Bob (a writer) and Rita (a reader) have their own copies of the folder.
    let (write_link, read_link) = (project.write_link.clone(), project.read_link.clone());
    let bob_dir = project.join(&write_link, "bob").await;
    let rita_dir = project.join(&read_link, "rita").await;
    let local = |dir: &Path| dir.join("src/app.py").to_string_lossy().into_owned();

    let mut ada = Editor::start(&project.dir, &project.state, "ada").await;
    ada.start_session("launch", json!({"program": app})).await;
    // Bob attaches before the program starts: he sees the same stop as Ada.
    let mut bob = Editor::start(&bob_dir, &project.state, "bob").await;
    bob.start_session("attach", json!({})).await;
    ada.set_breakpoints(&app, &[10]).await;
    ada.ok("configurationDone", json!({})).await;
    bob.attached_configuration_done().await;
    let (a, b) = (ada.event("stopped").await, bob.event("stopped").await);
    assert_eq!(a["body"], b["body"]);
    let thread = a["body"]["threadId"].clone();
    let (_, line, path, _) = bob.top_frame(&thread).await;
    assert_eq!((line, path), (10, local(&bob_dir)));

    // Bob steps; Ada sees where the program is now.
    bob.step("next", &thread).await;
    ada.event("stopped").await;
    let (_, line, path, _) = ada.top_frame(&thread).await;
    assert_eq!((line, path.as_str()), (9, app.as_str()));

    // Rita attaches while it is stopped: she is shown the stop, may look, may not steer.
    let mut rita = Editor::start(&rita_dir, &project.state, "rita").await;
    rita.start_session("attach", json!({})).await;
    rita.attached_configuration_done().await;
    rita.event("stopped").await;
    let (_, line, path, frame) = rita.top_frame(&thread).await;
    assert_eq!((line, path), (9, local(&rita_dir)));
    let locals = rita.locals(&frame).await;
    assert!(locals.contains(&("total".into(), "0".into())), "{locals:?}");
    let refused = rita.request("continue", json!({"threadId": thread})).await;
    assert_eq!(refused["success"], false, "{refused}");
    let message = refused["message"].as_str().unwrap_or_default();
    assert!(message.contains("readers may inspect"), "{refused}");
    rita.disconnect(json!({})).await;

    // Bob leaves without ending it; Ada runs the program to its end.
    bob.disconnect(json!({})).await;
    ada.set_breakpoints(&app, &[]).await;
    ada.ok("continue", json!({"threadId": thread})).await;
    expect_exit(&mut ada, 5).await;
    ada.disconnect(json!({})).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_answered_and_the_session_goes_on() {
    let server = start_server();
    let project = Project::share(&server, &[("main.py", "print('hi')\n")]).await;
    let main = project.path("main.py");
    let mut ada = Editor::start(&project.dir, &project.state, "ada").await;

    // Broken frames: each is named in the debug console, and the proxy stays in step.
    ada.send_raw(b"Content-Length: abc\r\n\r\n").await;
    assert!(ada.event("output").await["body"]["output"]
        .as_str()
        .unwrap()
        .contains("invalid Content-Length"));
    ada.send_raw(b"Content-Length: 5\r\n\r\n{nope").await;
    assert!(ada.event("output").await["body"]["output"]
        .as_str()
        .unwrap()
        .contains("not valid JSON"));
    ada.send_raw(frame(&json!({"seq": 9000})).as_slice()).await;
    let refused = ada.response(9000, STEP_TIMEOUT).await;
    assert!(
        refused["message"].as_str().unwrap().contains("expected a request"),
        "{refused}"
    );
    let early = ada.request("threads", Value::Null).await;
    assert!(early["message"].as_str().unwrap().contains("launch"), "{early}");
    let outside = ada.request("launch", json!({"program": "/etc/hostname"})).await;
    assert!(
        outside["message"]
            .as_str()
            .unwrap()
            .contains("not in the shared folder"),
        "{outside}"
    );
    ada.event("terminated").await;
    ada.disconnect(json!({})).await;

    // Attaching when no session is going: the server's refusal is the answer.
    let mut ada = Editor::start(&project.dir, &project.state, "ada").await;
    let refused = ada.request("attach", json!({})).await;
    assert_eq!(refused["success"], false, "{refused}");
    eprintln!("attach without a session: {}", refused["message"]);
    ada.event("terminated").await;
    ada.disconnect(json!({})).await;

    let mut ada = Editor::start(&project.dir, &project.state, "ada").await;
    ada.start_session("launch", json!({"program": main})).await;
    let elsewhere = tempfile::tempdir().unwrap();
    let other = elsewhere.path().join("other.py");
    std::fs::write(&other, "print('elsewhere')\n").unwrap();
    let bps = ada.set_breakpoints(other.to_str().unwrap(), &[1]).await;
    assert_eq!(bps["breakpoints"][0]["verified"], false, "{bps}");
    assert!(
        bps["breakpoints"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not in the shared folder"),
        "{bps}"
    );
    let threads = ada.ok("threads", Value::Null).await;
    assert!(threads["threads"].is_array(), "{threads}");
    let big = ada.request("evaluate", json!({"expression": "x".repeat(70_000)})).await;
    assert!(
        big["message"].as_str().unwrap().contains("at most 65536 bytes"),
        "{big}"
    );
    ada.ok("configurationDone", json!({})).await;
    expect_exit(&mut ada, 0).await;
    ada.disconnect(json!({})).await;
}

#[tokio::test]
async fn a_folder_outside_any_room_says_so_at_launch() {
    let tmp = tempfile::tempdir().unwrap();
    let mut ada = Editor::start(tmp.path(), &tmp.path().join("state"), "ada").await;
    let resp = ada.request("launch", json!({"program": "main.py"})).await;
    assert!(resp["message"].as_str().unwrap().contains("is not in a room"), "{resp}");
    ada.event("terminated").await;
    ada.disconnect(json!({})).await;
}
