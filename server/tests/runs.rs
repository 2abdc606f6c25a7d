//! Runs through the room socket, against real Docker and the locally built images
//! (`scripts/install-docker`, `scripts/build-images python c`).

use mesh_protocol::messages::RunStream;
use mesh_protocol::{ClientMessage, ErrorCode, Request, ServerMessage};
use mesh_testkit::{TestServer, YClient};

fn output(c: &YClient, run: &str) -> (String, String) {
    let (mut out, mut err) = (String::new(), String::new());
    for m in c.mesh_messages() {
        if let ServerMessage::RunOutput { run_id, stream, data } = m {
            if run_id == run {
                match stream {
                    RunStream::Stdout => out.push_str(&data),
                    _ => err.push_str(&data),
                }
            }
        }
    }
    (out, err)
}

fn exited(c: &YClient, run: &str) -> Option<ServerMessage> {
    c.mesh_messages()
        .into_iter()
        .find(|m| matches!(m, ServerMessage::RunExited { run_id, .. } if run_id == run))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everyone_in_the_room_sees_one_run() {
    let server = TestServer::start_with(&["--run-images", "local"]).unwrap();
    let session = server.create_session("runs").await.unwrap();
    let url = server.ws_url(&session, &session.created.writer_token);
    let ada = YClient::connect_mesh(&url, "ada").await.unwrap();
    let bob = YClient::connect_mesh(&url, "bob").await.unwrap();
    ada.wait_synced().await.unwrap();
    bob.wait_mesh("welcome", |m| matches!(m, ServerMessage::Welcome { .. }))
        .await
        .unwrap();
    ada.insert(
        "src/hello.py",
        0,
        "import sys\nname = input()\nprint('hello', name)\nprint('to stderr', file=sys.stderr)\nsys.exit(3)\n",
    );
    bob.wait_for("the file", |c| {
        c.text("src/hello.py").is_some_and(|t| t.ends_with("sys.exit(3)\n"))
    })
    .await
    .unwrap();

    ada.send_mesh(&ClientMessage::Run {
        path: "src/hello.py".into(),
        language: None,
    });
    let started = bob
        .wait_mesh("run started", |m| matches!(m, ServerMessage::RunStarted { .. }))
        .await
        .unwrap();
    let ServerMessage::RunStarted { run_id, language, .. } = started else {
        unreachable!()
    };
    assert_eq!(language, "python");
    ada.send_mesh(&ClientMessage::Input {
        run_id: run_id.clone(),
        data: "mesh\n".into(),
        eof: true,
    });
    for c in [&ada, &bob] {
        c.wait_for("the exit", |c| exited(c, &run_id).is_some()).await.unwrap();
        let (out, err) = output(c, &run_id);
        assert_eq!(out, "hello mesh\n");
        assert_eq!(err, "to stderr\n");
        assert!(
            matches!(exited(c, &run_id), Some(ServerMessage::RunExited { code: Some(3), ref stage, limit: None, error: None, .. }) if stage == "run")
        );
    }
}

/// Every answer names the request it answers: an error its `responding_to`, a run's start
/// the asker's copy only. A client never guesses which of its requests an error is about.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_name_the_request_they_answer() {
    let server = TestServer::start_with(&["--run-images", "local"]).unwrap();
    let session = server.create_session("request-ids").await.unwrap();
    let url = server.ws_url(&session, &session.created.writer_token);
    let ada = YClient::connect_mesh(&url, "ada").await.unwrap();
    let bob = YClient::connect_mesh(&url, "bob").await.unwrap();
    ada.wait_synced().await.unwrap();
    bob.wait_synced().await.unwrap();
    ada.insert("hi.py", 0, "print('hi')\n");
    bob.wait_for("the file", |c| c.text("hi.py").is_some()).await.unwrap();
    let refused =
        |id: u64| move |m: &ServerMessage| matches!(m, ServerMessage::Error { responding_to: Some(r), .. } if *r == id);
    // Three refusals in flight at once, each named.
    ada.send_mesh(&Request::new(
        11,
        ClientMessage::Run {
            path: "nope.py".into(),
            language: None,
        },
    ));
    ada.send_mesh(&Request::new(12, ClientMessage::Stop { run_id: "0000".into() }));
    ada.send_mesh(&Request::new(
        13,
        ClientMessage::Dap {
            debug_id: "0000".into(),
            message: serde_json::json!({"type": "request", "seq": 1, "command": "threads"}),
        },
    ));
    ada.send_mesh(&Request::new(14, ClientMessage::Chat { text: "x".repeat(5000) }));
    for (id, about) in [(11, "no file"), (12, "no run"), (13, "no debug session"), (14, "chat")] {
        let m = ada.wait_mesh(about, refused(id)).await.unwrap();
        let ServerMessage::Error { message, .. } = m else {
            unreachable!()
        };
        assert!(message.contains(about), "request {id}: {message}");
    }
    // A message without an id gets an answer without one.
    ada.send_mesh(&ClientMessage::Stop { run_id: "1111".into() });
    ada.wait_mesh(
        "unnamed refusal",
        |m| matches!(m, ServerMessage::Error { responding_to: None, message, .. } if message.contains("1111")),
    )
    .await
    .unwrap();
    // A run's start goes to everyone; only the asker's copy names its request.
    ada.send_mesh(&Request::new(
        15,
        ClientMessage::Run {
            path: "hi.py".into(),
            language: None,
        },
    ));
    let mine = ada
        .wait_mesh("ada's start", |m| matches!(m, ServerMessage::RunStarted { .. }))
        .await
        .unwrap();
    assert!(
        matches!(
            mine,
            ServerMessage::RunStarted {
                responding_to: Some(15),
                ..
            }
        ),
        "{mine:?}"
    );
    let theirs = bob
        .wait_mesh("bob's start", |m| matches!(m, ServerMessage::RunStarted { .. }))
        .await
        .unwrap();
    assert!(
        matches!(
            theirs,
            ServerMessage::RunStarted {
                responding_to: None,
                ..
            }
        ),
        "{theirs:?}"
    );
    let starts = |c: &YClient| {
        c.mesh_messages()
            .iter()
            .filter(|m| matches!(m, ServerMessage::RunStarted { .. }))
            .count()
    };
    assert_eq!((starts(&ada), starts(&bob)), (1, 1), "one start each");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compile_errors_limits_and_refusals() {
    let server = TestServer::start_with(&["--run-images", "local"]).unwrap();
    let session = server.create_session("runs").await.unwrap();
    let ada = YClient::connect_mesh(&server.ws_url(&session, &session.created.writer_token), "ada")
        .await
        .unwrap();
    let reader = YClient::connect_mesh(&server.ws_url(&session, &session.created.reader_token), "rita")
        .await
        .unwrap();
    ada.wait_synced().await.unwrap();
    ada.insert("main.c", 0, "int main(void) { return missing; }\n");
    ada.insert("notes.xyz", 0, "?");
    ada.insert("loop.py", 0, "while True: pass\n");
    reader.wait_for("files", |c| c.text("loop.py").is_some()).await.unwrap();

    // A compile error is reported as one.
    ada.send_mesh(&ClientMessage::Run {
        path: "main.c".into(),
        language: None,
    });
    let started = ada
        .wait_mesh(
            "c run",
            |m| matches!(m, ServerMessage::RunStarted { language, .. } if language == "c"),
        )
        .await
        .unwrap();
    let ServerMessage::RunStarted { run_id, .. } = started else {
        unreachable!()
    };
    ada.wait_for("c exit", |c| exited(c, &run_id).is_some()).await.unwrap();
    let Some(ServerMessage::RunExited { stage, code, .. }) = exited(&ada, &run_id) else {
        unreachable!()
    };
    assert_eq!(stage, "compile");
    assert_ne!(code, Some(0));
    assert!(
        output(&ada, &run_id).1.contains("missing"),
        "the compiler's message reaches the room"
    );

    // Refusals name the problem and start nothing.
    reader.send_mesh(&ClientMessage::Run {
        path: "loop.py".into(),
        language: None,
    });
    reader
        .wait_mesh("reader refused", |m| {
            matches!(
                m,
                ServerMessage::Error {
                    code: ErrorCode::Forbidden,
                    ..
                }
            )
        })
        .await
        .unwrap();
    ada.send_mesh(&ClientMessage::Run {
        path: "notes.xyz".into(),
        language: None,
    });
    ada.wait_mesh("no language", |m| matches!(m, ServerMessage::Error { code: ErrorCode::BadRequest, message, .. } if message.contains("no language"))).await.unwrap();
    ada.send_mesh(&ClientMessage::Run {
        path: "nope.py".into(),
        language: None,
    });
    ada.wait_mesh("no file", |m| {
        matches!(
            m,
            ServerMessage::Error {
                code: ErrorCode::NotFound,
                ..
            }
        )
    })
    .await
    .unwrap();

    // One run per participant at a time: a second waits (its place shown), a third is
    // refused naming the limit; the endless one is stopped by its starter.
    ada.send_mesh(&ClientMessage::Run {
        path: "loop.py".into(),
        language: None,
    });
    let started = ada
        .wait_mesh(
            "loop run",
            |m| matches!(m, ServerMessage::RunStarted { path, .. } if path == "loop.py"),
        )
        .await
        .unwrap();
    let ServerMessage::RunStarted { run_id, .. } = started else {
        unreachable!()
    };
    ada.send_mesh(&ClientMessage::Run {
        path: "loop.py".into(),
        language: None,
    });
    let queued = ada
        .wait_mesh("second run queued", |m| matches!(m, ServerMessage::RunQueued { .. }))
        .await
        .unwrap();
    let ServerMessage::RunQueued {
        run_id: second,
        position,
        limit,
        ..
    } = queued
    else {
        unreachable!()
    };
    assert_eq!((position, limit.as_str()), (1, "max_runs_per_person"));
    ada.send_mesh(&ClientMessage::Run {
        path: "loop.py".into(),
        language: None,
    });
    ada.wait_mesh("third run refused", |m| {
        matches!(
            m,
            ServerMessage::Error {
                code: ErrorCode::RateLimited,
                message, ..
            } if message.contains("max_runs_per_person = 1")
        )
    })
    .await
    .unwrap();
    ada.send_mesh(&ClientMessage::Stop { run_id: second.clone() });
    ada.wait_for("the queued one withdrawn", |c| exited(c, &second).is_some())
        .await
        .unwrap();
    reader.send_mesh(&ClientMessage::Stop { run_id: run_id.clone() });
    reader
        .wait_mesh(
            "reader may not stop",
            |m| matches!(m, ServerMessage::Error { code: ErrorCode::Forbidden, message, .. } if message.contains("stop")),
        )
        .await
        .unwrap();
    ada.send_mesh(&ClientMessage::Stop { run_id: run_id.clone() });
    reader.wait_for("stopped", |c| matches!(exited(c, &run_id), Some(ServerMessage::RunExited { error: Some(ref e), .. }) if e == "stopped")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_over_rest_are_kept_in_the_history() {
    let server = TestServer::start_with(&["--run-images", "local"]).unwrap();
    let session = server.create_session("rest runs").await.unwrap();
    let ada = YClient::connect_mesh(&server.ws_url(&session, &session.created.writer_token), "ada")
        .await
        .unwrap();
    ada.wait_synced().await.unwrap();
    ada.insert("echo.py", 0, "import sys\nprint('mesh', sys.stdin.read())\n");
    // The edit travels asynchronously (the file is created, then filled): wait until the
    // server has the whole file before running it.
    let info_url = format!("{}/api/sessions/{}", server.url, session.id());
    loop {
        let info: serde_json::Value = server
            .http()
            .get(&info_url)
            .bearer_auth(&session.created.reader_token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if info["files"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f["path"] == "echo.py" && f["len_utf16"] == 43))
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let base = format!("{}/api/sessions/{}/runs", server.url, session.id());
    let http = server.http();
    let started = loop {
        let resp = http
            .post(&base)
            .bearer_auth(&session.created.writer_token)
            .json(&serde_json::json!({ "path": "echo.py", "stdin": "typed" }))
            .send()
            .await
            .unwrap();
        if resp.status() == 202 {
            break resp.json::<serde_json::Value>().await.unwrap();
        }
        assert_eq!(resp.status(), 404, "{}", resp.text().await.unwrap());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let run_id = started["run_id"].as_str().unwrap().to_string();
    // Connected participants watch it live.
    ada.wait_for("the exit", |c| exited(c, &run_id).is_some())
        .await
        .unwrap();
    // And the history has it, output included.
    let mut record = serde_json::Value::Null;
    for _ in 0..100 {
        let resp = http
            .get(format!("{base}/{run_id}"))
            .bearer_auth(&session.created.reader_token)
            .send()
            .await
            .unwrap();
        if resp.status() == 200 {
            record = resp.json().await.unwrap();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(record["stdout"], "mesh typed\n", "{record}");
    assert_eq!(output(&ada, &run_id).0, "mesh typed\n", "the room saw the output live");
    // Stdin over the limit is refused before anything starts.
    let resp = http
        .post(&base)
        .bearer_auth(&session.created.writer_token)
        .json(&serde_json::json!({ "path": "echo.py", "stdin": "x".repeat(mesh_protocol::rest::MAX_REST_STDIN_BYTES + 1) }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413, "{}", resp.text().await.unwrap());
    assert_eq!(record["code"], 0);
    assert_eq!(record["language"], "python");
    let list: serde_json::Value = http
        .get(&base)
        .bearer_auth(&session.created.reader_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.as_array().map(Vec::len), Some(1));
    // Readers may read the history but not run.
    let resp = http
        .post(&base)
        .bearer_auth(&session.created.reader_token)
        .json(&serde_json::json!({ "path": "echo.py" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    // Unknown languages and missing files say so.
    let resp = http
        .post(&base)
        .bearer_auth(&session.created.writer_token)
        .json(&serde_json::json!({ "path": "echo.py", "language": "cobol" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("unknown language"));
}

/// The attack suite at the server level: four participants start a fork bomb, a memory
/// bomb, an output flood and a SIGTERM-ignoring sleeper at once, while two others keep
/// editing. Each attack ends with its limit; every edit still arrives (each within the
/// event timeout), and the edit latency during the attacks is printed for the record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attacks_are_contained_while_the_room_keeps_editing() {
    let server = TestServer::start_with(&["--run-images", "local"]).unwrap();
    let session = server.create_session("attacks").await.unwrap();
    let url = server.ws_url(&session, &session.created.writer_token);
    let ada = YClient::connect_mesh(&url, "ada").await.unwrap();
    let bob = YClient::connect_mesh(&url, "bob").await.unwrap();
    ada.wait_synced().await.unwrap();
    let attacks = [
        (
            "fork.py",
            "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
            "pids",
        ),
        (
            "memory.py",
            "x = []\nwhile True:\n    x.append(' ' * 10**6)\n",
            "memory",
        ),
        ("flood.py", "while True:\n    print('x' * 1000)\n", "output"),
        (
            "sleep.py",
            "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(3600)\n",
            "time",
        ),
    ];
    let mut attackers = Vec::new();
    for (i, (path, source, _)) in attacks.iter().enumerate() {
        ada.insert(path, 0, source);
        let c = YClient::connect_mesh(&url, &format!("mallory{i}")).await.unwrap();
        c.wait_for("the attack file", |c| c.text(path).is_some()).await.unwrap();
        attackers.push(c);
    }
    ada.insert("notes.txt", 0, "");
    bob.wait_for("notes", |c| c.text("notes.txt").is_some()).await.unwrap();

    let typing = |n: usize| {
        let (ada, bob) = (&ada, &bob);
        async move {
            let mut samples = Vec::new();
            for i in 0..n {
                let t0 = std::time::Instant::now();
                let len = ada.text("notes.txt").unwrap().len() as u32;
                ada.insert("notes.txt", len, "k");
                bob.wait_for("an edit", |c| c.text("notes.txt").is_some_and(|t| t.len() > i))
                    .await
                    .unwrap();
                samples.push(t0.elapsed().as_secs_f64() * 1000.0);
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            samples.sort_by(f64::total_cmp);
            samples
        }
    };
    let quiet = typing(40).await;
    for ((path, _, _), c) in attacks.iter().zip(&attackers) {
        c.send_mesh(&ClientMessage::Run {
            path: (*path).into(),
            language: None,
        });
    }
    let mut run_ids = Vec::new();
    for ((path, _, _), c) in attacks.iter().zip(&attackers) {
        let ServerMessage::RunStarted { run_id, .. } = c
            .wait_mesh(
                "attack started",
                |m| matches!(m, ServerMessage::RunStarted { path: p, .. } if p == path),
            )
            .await
            .unwrap()
        else {
            unreachable!()
        };
        run_ids.push(run_id);
    }
    let attacked = typing(120).await;
    for ((path, _, limit), run_id) in attacks.iter().zip(&run_ids) {
        bob.wait_for("the attack's end", |c| exited(c, run_id).is_some())
            .await
            .unwrap();
        let Some(ServerMessage::RunExited { limit: got, error, .. }) = exited(&bob, run_id) else {
            unreachable!()
        };
        assert_eq!(error, None, "{path}");
        assert_eq!(got.as_deref(), Some(*limit), "{path} ended with the wrong limit");
    }
    assert_eq!(ada.text("notes.txt"), bob.text("notes.txt"));
    let pct = |s: &[f64], q: f64| s[((q * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
    eprintln!(
        "edit round trip, ms: quiet p50 {:.2} p99 {:.2}; under attack p50 {:.2} p99 {:.2}",
        pct(&quiet, 0.5),
        pct(&quiet, 0.99),
        pct(&attacked, 0.5),
        pct(&attacked, 0.99)
    );
}

/// Containers of the language `id` that Docker reports running.
fn running_sandboxes(id: &str) -> Vec<String> {
    let out = std::process::Command::new("docker")
        .args(["ps", "--quiet", "--filter"])
        .arg(format!("label=org.mesh.language={id}"))
        .output()
        .expect("docker ps");
    assert!(
        out.status.success(),
        "docker ps: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// A server killed with `kill -9` leaves no supervisor behind. Its endless program does not
/// run on: the sandbox's own watchdog ends it once the job's wall clock and the slack are
/// over, and a warm container waiting for a job ends when its stdin closes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_leaves_no_program_running() {
    const LANG: &str = "orphan-check";
    let dir = tempfile::tempdir().unwrap();
    let registry = dir.path().join("languages.toml");
    std::fs::write(
        &registry,
        format!(
            r#"version = 1
[defaults.limits]
wall_seconds = 2
memory_mib = 128
pids = 32
output_bytes = 100000
cpus = 0.5
[languages.{LANG}]
name = "Python, briefly"
extensions = ["py"]
image = "python:3.11-slim"
local_image = "mesh-run/python:bookworm"
main_file = "main.py"
run = ["python3", "-u", "main.py"]
"#
        ),
    )
    .unwrap();
    assert!(
        running_sandboxes(LANG).is_empty(),
        "a sandbox of an earlier run is still running"
    );
    let mut server = TestServer::start_with(&[
        "--run-images",
        "local",
        "--languages",
        registry.to_str().unwrap(),
        "--run-pool",
        "1",
    ])
    .unwrap();
    let session = server.create_session("orphans").await.unwrap();
    let ada = YClient::connect_mesh(&server.ws_url(&session, &session.created.writer_token), "ada")
        .await
        .unwrap();
    ada.wait_synced().await.unwrap();
    ada.insert("spin.py", 0, "print('spinning')\nwhile True:\n    pass\n");
    ada.send_mesh(&ClientMessage::Run {
        path: "spin.py".into(),
        language: None,
    });
    let started = ada
        .wait_mesh("run started", |m| matches!(m, ServerMessage::RunStarted { .. }))
        .await
        .unwrap();
    let ServerMessage::RunStarted { run_id, .. } = started else {
        unreachable!()
    };
    ada.wait_for("the program's first line", |c| output(c, &run_id).0 == "spinning\n")
        .await
        .unwrap();
    assert!(!running_sandboxes(LANG).is_empty(), "the program's sandbox runs");

    server.kill9();
    let killed = std::time::Instant::now();
    // Wall clock (2 s) + the watchdog's slack (15 s), rounded up, and time for Docker.
    let bound = std::time::Duration::from_secs(40);
    loop {
        let left = running_sandboxes(LANG);
        if left.is_empty() {
            break;
        }
        assert!(
            killed.elapsed() < bound,
            "{} sandbox(es) still running {bound:?} after their server was killed: {left:?}",
            left.len()
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    eprintln!("the last sandbox stopped {:?} after the kill", killed.elapsed());
}
