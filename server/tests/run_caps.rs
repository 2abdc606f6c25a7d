//! Caps on runs, with their queue, against a real server and real Docker with the locally
//! built images (`scripts/install-docker`, `scripts/build-images python`): a run over a cap
//! waits and its requester sees its place move; it starts when a run ends; stopping it takes
//! it out of the queue; past the queue's bound a request is refused naming the limit; and a
//! REST caller's token counts as one person.

use std::time::Instant;

use mesh_protocol::messages::RunStream;
use mesh_protocol::{ClientMessage, ErrorCode, ServerMessage};
use mesh_testkit::{TestServer, YClient};
use serde_json::{json, Value};

/// A program that runs until its stdin is closed, so a test decides when it ends.
const WAITS_FOR_INPUT: &str = "import sys\nprint('waiting', flush=True)\nprint('got', sys.stdin.read().strip())\n";

fn run(path: &str) -> ClientMessage {
    ClientMessage::Run {
        path: path.into(),
        language: None,
    }
}

/// The places a client was told for `run_id`, in order.
fn places(c: &YClient, id: &str) -> Vec<(u32, String)> {
    c.mesh_messages()
        .into_iter()
        .filter_map(|m| match m {
            ServerMessage::RunQueued {
                run_id,
                position,
                limit,
                ..
            } if run_id == id => Some((position, limit)),
            _ => None,
        })
        .collect()
}

fn started(c: &YClient, id: &str) -> bool {
    c.mesh_messages()
        .iter()
        .any(|m| matches!(m, ServerMessage::RunStarted { run_id, .. } if run_id == id))
}

fn exited(c: &YClient, id: &str) -> Option<ServerMessage> {
    c.mesh_messages()
        .into_iter()
        .find(|m| matches!(m, ServerMessage::RunExited { run_id, .. } if run_id == id))
}

/// What a client has seen of a run's stdout.
fn stdout(c: &YClient, run: &str) -> String {
    c.run_output(run, RunStream::Stdout)
}

/// The id of the run `by` asked for, from its `run_queued` or `run_started`.
async fn run_of(c: &YClient, by: u64) -> String {
    let m = c
        .wait_mesh("the run's first word", |m| {
            matches!(m, ServerMessage::RunQueued { by: b, .. } | ServerMessage::RunStarted { by: b, .. } if *b == by)
        })
        .await
        .unwrap();
    match m {
        ServerMessage::RunQueued { run_id, .. } | ServerMessage::RunStarted { run_id, .. } => run_id,
        _ => unreachable!(),
    }
}

async fn conn_id(c: &YClient) -> u64 {
    match c
        .wait_mesh("welcome", |m| matches!(m, ServerMessage::Welcome { .. }))
        .await
        .unwrap()
    {
        ServerMessage::Welcome { conn_id, .. } => conn_id,
        _ => unreachable!(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_server_cap_runs_wait_in_line_see_their_place_and_start_when_a_run_ends() {
    let server = TestServer::start_with(&["--run-images", "local", "--max-runs", "1", "--run-queue", "2"]).unwrap();
    let session = server.create_session("caps").await.unwrap();
    let url = server.ws_url(&session, &session.created.writer_token);
    let mut people = Vec::new();
    for name in ["ada", "bob", "cy", "dee"] {
        people.push(YClient::connect_mesh(&url, name).await.unwrap());
    }
    let [ada, bob, cy, dee] = &people[..] else {
        unreachable!()
    };
    ada.wait_synced().await.unwrap();
    ada.insert("wait.py", 0, WAITS_FOR_INPUT);
    ada.insert("hello.py", 0, "print('hello from the queue')\n");
    for c in [bob, cy, dee] {
        c.wait_for("the files", |c| c.text("hello.py").is_some()).await.unwrap();
    }
    let ids = [
        conn_id(ada).await,
        conn_id(bob).await,
        conn_id(cy).await,
        conn_id(dee).await,
    ];

    // Ada's run takes the server's only slot.
    ada.send_mesh(&run("wait.py"));
    let first = run_of(ada, ids[0]).await;
    ada.wait_for("ada's run going", |c| stdout(c, &first) == "waiting\n")
        .await
        .unwrap();

    // Bob and Cy wait, first and second in line; everyone in the room sees it.
    bob.send_mesh(&run("hello.py"));
    let second = run_of(bob, ids[1]).await;
    cy.send_mesh(&run("hello.py"));
    let third = run_of(cy, ids[2]).await;
    assert_eq!(places(bob, &second), [(1, "max_runs".to_string())]);
    cy.wait_for("cy's place", |c| !places(c, &third).is_empty())
        .await
        .unwrap();
    assert_eq!(places(cy, &third), [(2, "max_runs".to_string())]);
    ada.wait_for("the queue seen by others", |c| !places(c, &third).is_empty())
        .await
        .unwrap();

    // The queue holds two: Dee is refused, and the error names the limit.
    dee.send_mesh(&run("hello.py"));
    let refused = dee
        .wait_mesh("dee refused", |m| {
            matches!(
                m,
                ServerMessage::Error {
                    code: ErrorCode::RateLimited,
                    ..
                }
            )
        })
        .await
        .unwrap();
    let ServerMessage::Error { message, .. } = refused else {
        unreachable!()
    };
    assert!(message.contains("run_queue = 2"), "{message}");
    assert!(!started(bob, &second), "nothing starts while the slot is taken");

    // Ada's run ends: Bob's starts, and Cy moves up to first.
    let ended_at = Instant::now();
    ada.send_mesh(&ClientMessage::Input {
        run_id: first.clone(),
        data: "done\n".into(),
        eof: true,
    });
    bob.wait_for("bob's run started", |c| started(c, &second))
        .await
        .unwrap();
    let start_after = ended_at.elapsed();
    cy.wait_for("cy moved up", |c| places(c, &third).len() == 2)
        .await
        .unwrap();
    assert_eq!(places(cy, &third)[1], (1, "max_runs".to_string()));
    bob.wait_for("bob's output", |c| exited(c, &second).is_some())
        .await
        .unwrap();
    assert_eq!(stdout(bob, &second), "hello from the queue\n");
    assert_eq!(stdout(bob, &first), "waiting\ngot done\n");
    println!(
        "queued run started {} ms after the input that ended the first was sent",
        start_after.as_millis()
    );

    // Stopping a queued run takes it out of the queue (here: Cy's, which may already have
    // started as Bob's ended; then it is stopped as a run).
    cy.send_mesh(&ClientMessage::Stop { run_id: third.clone() });
    cy.wait_for("cy's run ended", |c| exited(c, &third).is_some())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_run_that_is_stopped_leaves_the_queue_and_never_runs() {
    let server = TestServer::start_with(&["--run-images", "local", "--max-runs", "1"]).unwrap();
    let session = server.create_session("caps").await.unwrap();
    let url = server.ws_url(&session, &session.created.writer_token);
    let ada = YClient::connect_mesh(&url, "ada").await.unwrap();
    let bob = YClient::connect_mesh(&url, "bob").await.unwrap();
    ada.wait_synced().await.unwrap();
    ada.insert("wait.py", 0, WAITS_FOR_INPUT);
    bob.wait_for("the file", |c| c.text("wait.py").is_some()).await.unwrap();
    let (a, b) = (conn_id(&ada).await, conn_id(&bob).await);
    ada.send_mesh(&run("wait.py"));
    let first = run_of(&ada, a).await;
    bob.send_mesh(&run("wait.py"));
    let second = run_of(&bob, b).await;
    assert_eq!(places(&bob, &second), [(1, "max_runs".to_string())]);

    // Ada may not stop Bob's queued run; Bob may.
    ada.send_mesh(&ClientMessage::Stop { run_id: second.clone() });
    ada.wait_mesh("ada may not stop it", |m| {
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
    bob.send_mesh(&ClientMessage::Stop { run_id: second.clone() });
    bob.wait_for("withdrawn", |c| exited(c, &second).is_some())
        .await
        .unwrap();
    assert!(matches!(exited(&bob, &second), Some(ServerMessage::RunExited { error: Some(e), .. }) if e == "stopped"));

    // The slot passes to nobody: when Ada's run ends, a new request starts at once.
    ada.send_mesh(&ClientMessage::Input {
        run_id: first.clone(),
        data: String::new(),
        eof: true,
    });
    ada.wait_for("ada's run ended", |c| exited(c, &first).is_some())
        .await
        .unwrap();
    assert!(!started(&bob, &second), "a withdrawn run never starts");
    ada.send_mesh(&run("wait.py"));
    ada.wait_mesh(
        "a new run starts at once",
        |m| matches!(m, ServerMessage::RunStarted { run_id, by, .. } if *by == a && *run_id != first),
    )
    .await
    .unwrap();
}

async fn post_run(server: &TestServer, room: &str, token: &str) -> (u16, Value) {
    let resp = server
        .http()
        .post(format!("{}/api/sessions/{room}/runs", server.url))
        .bearer_auth(token)
        .json(&json!({ "path": "wait.py" }))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_runs_count_per_token_one_runs_one_waits_the_rest_are_refused() {
    let server = TestServer::start_with(&["--run-images", "local"]).unwrap();
    let session = server.create_session("rest caps").await.unwrap();
    let token = session.created.writer_token.clone();
    let watcher = YClient::connect_mesh(&server.ws_url(&session, &token), "watcher")
        .await
        .unwrap();
    watcher.wait_synced().await.unwrap();
    watcher.insert("wait.py", 0, WAITS_FOR_INPUT);
    // Once another client has the file, the server has it: REST can run it.
    let other = YClient::connect_mesh(&server.ws_url(&session, &token), "other")
        .await
        .unwrap();
    other
        .wait_for("the file", |c| c.text("wait.py").is_some())
        .await
        .unwrap();
    let room = session.id();

    // Six calls at once with one token.
    let calls: Vec<_> = (0..6).map(|_| post_run(&server, &room, &token)).collect();
    let answers = futures_util::future::join_all(calls).await;
    let began: Vec<&Value> = answers
        .iter()
        .filter(|(s, b)| *s == 202 && b.get("queued").is_none())
        .map(|(_, b)| b)
        .collect();
    let queued: Vec<&Value> = answers
        .iter()
        .filter(|(s, b)| *s == 202 && b.get("queued").is_some())
        .map(|(_, b)| b)
        .collect();
    let refused: Vec<&Value> = answers.iter().filter(|(s, _)| *s == 429).map(|(_, b)| b).collect();
    assert_eq!((began.len(), queued.len(), refused.len()), (1, 1, 4), "{answers:?}");
    assert_eq!(
        queued[0]["queued"],
        json!({ "position": 1, "limit": "max_runs_per_person" })
    );
    for r in &refused {
        assert_eq!(r["code"], "rate_limited");
        let m = r["message"].as_str().unwrap();
        assert!(m.contains("max_runs_per_person = 1"), "{m}");
    }

    // A socket participant with the same token is another person: not held back.
    let first = began[0]["run_id"].as_str().unwrap().to_string();
    let second = queued[0]["run_id"].as_str().unwrap().to_string();
    watcher
        .wait_for("the queued REST run seen", |c| !places(c, &second).is_empty())
        .await
        .unwrap();
    watcher.send_mesh(&run("wait.py"));
    let me = conn_id(&watcher).await;
    let mine = run_of(&watcher, me).await;
    watcher
        .wait_for("the watcher's run started", |c| started(c, &mine))
        .await
        .unwrap();

    // The first REST run ends (a participant types its input): the queued one starts.
    watcher.send_mesh(&ClientMessage::Input {
        run_id: first.clone(),
        data: String::new(),
        eof: true,
    });
    watcher
        .wait_for("the queued REST run started", |c| started(c, &second))
        .await
        .unwrap();
    for id in [&second, &mine] {
        watcher.send_mesh(&ClientMessage::Input {
            run_id: id.clone(),
            data: String::new(),
            eof: true,
        });
        watcher
            .wait_for("the run ended", |c| exited(c, id).is_some())
            .await
            .unwrap();
    }
}

const PYTHON: &str = "x = 41\nprint('x is', x)\n";

fn debug_start() -> ClientMessage {
    ClientMessage::DebugStart {
        path: "app.py".into(),
        language: None,
    }
}

async fn debug_room(server: &TestServer, names: &[&str]) -> Vec<YClient> {
    let session = server.create_session("debug caps").await.unwrap();
    let url = server.ws_url(&session, &session.created.writer_token);
    let mut out = Vec::new();
    for name in names {
        out.push(YClient::connect_mesh(&url, name).await.unwrap());
    }
    out[0].wait_synced().await.unwrap();
    out[0].insert("app.py", 0, PYTHON);
    for c in &out[1..] {
        c.wait_for("the file", |c| c.text("app.py").is_some()).await.unwrap();
    }
    out
}

fn debug_joined(c: &YClient) -> Option<String> {
    c.mesh_messages().into_iter().find_map(|m| match m {
        ServerMessage::DebugJoined { debug_id, .. } => Some(debug_id),
        _ => None,
    })
}

fn debug_ended(c: &YClient) -> Option<Option<String>> {
    c.mesh_messages().into_iter().find_map(|m| match m {
        ServerMessage::DebugEnded { error, .. } => Some(error),
        _ => None,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_debug_cap_a_session_waits_others_join_it_and_it_starts_when_one_ends() {
    let server = TestServer::start_with(&["--run-images", "local", "--max-debug-sessions", "1"]).unwrap();
    let first = debug_room(&server, &["ada"]).await;
    let second = debug_room(&server, &["bob", "cy"]).await;
    let (ada, bob, cy) = (&first[0], &second[0], &second[1]);

    ada.send_mesh(&debug_start());
    ada.wait_for("ada attached", |c| debug_joined(c).is_some())
        .await
        .unwrap();
    let ada_session = debug_joined(ada).unwrap();

    // Bob's room waits for the only debug slot; Cy asking too joins the queued session.
    bob.send_mesh(&debug_start());
    let queued = bob
        .wait_mesh("bob's session queued", |m| {
            matches!(m, ServerMessage::RunQueued { debug: true, .. })
        })
        .await
        .unwrap();
    let ServerMessage::RunQueued {
        run_id: waiting,
        position,
        limit,
        ..
    } = queued
    else {
        unreachable!()
    };
    assert_eq!((position, limit.as_str()), (1, "max_debug_sessions"));
    cy.send_mesh(&debug_start());
    assert!(debug_joined(bob).is_none(), "nothing starts while the slot is taken");

    // Ada ends her session (the starter's terminate ends it for everyone): Bob's starts,
    // and both Bob and Cy are attached to it.
    ada.send_mesh(&ClientMessage::Dap {
        debug_id: ada_session.clone(),
        message: json!({"type": "request", "seq": 1, "command": "terminate", "arguments": {}}),
    });
    ada.wait_for("ada's session ended", |c| debug_ended(c).is_some())
        .await
        .unwrap();
    for c in [bob, cy] {
        c.wait_for("attached to the started session", |c| debug_joined(c).is_some())
            .await
            .unwrap();
        assert_eq!(
            debug_joined(c).unwrap(),
            waiting,
            "the queued session is the one that starts"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debug_session_nobody_is_attached_to_ends_and_frees_its_slot() {
    let server = TestServer::start_with(&[
        "--run-images",
        "local",
        "--max-debug-sessions",
        "1",
        "--debug-idle-seconds",
        "1",
    ])
    .unwrap();
    let people = debug_room(&server, &["ada", "bob"]).await;
    let (ada, bob) = (&people[0], &people[1]);
    ada.send_mesh(&debug_start());
    ada.wait_for("ada attached", |c| debug_joined(c).is_some())
        .await
        .unwrap();

    // Ada leaves the room; Bob, in the room but not in the session, sees it end.
    let left_at = Instant::now();
    ada.close();
    bob.wait_for("the idle session ended", |c| debug_ended(c).is_some())
        .await
        .unwrap();
    let error = debug_ended(bob).unwrap().unwrap_or_default();
    assert!(error.contains("debug_idle_seconds"), "{error}");
    println!(
        "the idle session ended {} ms after its last participant left",
        left_at.elapsed().as_millis()
    );

    // Its slot is free again: Bob's session starts at once, not queued.
    bob.send_mesh(&debug_start());
    bob.wait_for("bob attached", |c| debug_joined(c).is_some())
        .await
        .unwrap();
    assert!(!bob
        .mesh_messages()
        .iter()
        .any(|m| matches!(m, ServerMessage::RunQueued { .. })));
}
