//! What crosses nodes beside the document: people, runs, debug sessions and chat. Two real
//! `mesh-server` processes on one real Postgres and one real Redis, with real Docker and the
//! local images. Everyone sees everyone, wherever they are connected. A session lives on the
//! node that started it; participants on the other node watch it, type into it, stop it and
//! step through it as if it were local, and their roles are checked as on their own node.

mod support;

use mesh_protocol::messages::RunStream;
use mesh_protocol::{ClientMessage, ErrorCode, ServerMessage};
use mesh_testkit::{Session, TestPostgres, TestRedis, TestServer, YClient};
use serde_json::{json, Value};
use support::{ended, event, joined, request, top_frame};

fn node(pg: &TestPostgres, redis: &TestRedis) -> TestServer {
    node_with(pg, redis, &[])
}

fn node_with(pg: &TestPostgres, redis: &TestRedis, extra: &[&str]) -> TestServer {
    let (store, bus) = (pg.url(), redis.url());
    let mut args = vec!["--store", &store, "--bus", &bus, "--run-images", "local"];
    args.extend_from_slice(extra);
    TestServer::start_with(&args).unwrap()
}

async fn connect(server: &TestServer, s: &Session, token: &str, name: &str) -> YClient {
    mesh_testkit::soak::connect(server, s, token, name).await.unwrap()
}

/// What a client has seen of a run's stdout.
fn stdout(c: &YClient, run: &str) -> String {
    c.run_output(run, RunStream::Stdout)
}

async fn started(c: &YClient) -> String {
    let m = c
        .wait_mesh("run_started", |m| matches!(m, ServerMessage::RunStarted { .. }))
        .await
        .unwrap();
    let ServerMessage::RunStarted { run_id, .. } = m else {
        unreachable!()
    };
    run_id
}

async fn exited(c: &YClient, run: &str) -> ServerMessage {
    c.wait_mesh(
        "run_exited",
        |m| matches!(m, ServerMessage::RunExited { run_id, .. } if run_id == run),
    )
    .await
    .unwrap()
}

fn refused(answer: &ServerMessage, code: ErrorCode, words: &str) -> bool {
    matches!(answer, ServerMessage::Error { code: c, message, .. } if *c == code && message.contains(words))
}

const ECHO: &str = "import sys\nprint('ready', flush=True)\nfor line in sys.stdin:\n    print('got', line.strip(), flush=True)\nprint('bye', flush=True)\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_on_one_node_is_watched_fed_and_stopped_from_another() {
    let pg = TestPostgres::start().unwrap();
    let redis = TestRedis::start().unwrap();
    let (a, b) = (node(&pg, &redis), node(&pg, &redis));
    let s = a.create_session("runs across").await.unwrap();
    let ada = connect(&a, &s, &s.created.writer_token, "ada").await;
    let bob = connect(&b, &s, &s.created.writer_token, "bob").await;
    let rita = connect(&b, &s, &s.created.reader_token, "rita").await;
    ada.insert("echo.py", 0, ECHO);
    ada.insert("spin.py", 0, "print('spinning', flush=True)\nwhile True:\n    pass\n");
    bob.wait_for("the files", |c| {
        c.text("spin.py").is_some() && c.text("echo.py").is_some()
    })
    .await
    .unwrap();

    // Chat crosses nodes as it is sent.
    ada.send_mesh(&ClientMessage::Chat {
        text: "running it on A".into(),
    });
    rita.wait_mesh(
        "ada's chat",
        |m| matches!(m, ServerMessage::Chat { entry } if entry.text == "running it on A"),
    )
    .await
    .unwrap();

    // Ada starts the run on node A; everyone on node B sees it start and print.
    ada.send_mesh(&ClientMessage::Run {
        path: "echo.py".into(),
        language: None,
    });
    let run = started(&ada).await;
    assert_eq!(started(&bob).await, run);
    rita.wait_for("the program's first line", |c| stdout(c, &run) == "ready\n")
        .await
        .unwrap();

    // Bob, on node B, types into it; both nodes see the answer.
    bob.send_mesh(&ClientMessage::Input {
        run_id: run.clone(),
        data: "from B\n".into(),
        eof: false,
    });
    for c in [&ada, &rita] {
        c.wait_for("bob's line echoed", |c| stdout(c, &run).contains("got from B\n"))
            .await
            .unwrap();
    }

    // Roles hold across nodes: a reader may not type or stop, a writer who did not start
    // the run may not stop it. The refusals answer the request that caused them.
    let answer = rita
        .request(
            1,
            ClientMessage::Input {
                run_id: run.clone(),
                data: "x\n".into(),
                eof: false,
            },
        )
        .await
        .unwrap();
    assert!(
        refused(&answer, ErrorCode::Forbidden, "readers may not type"),
        "{answer:?}"
    );
    let answer = rita
        .request(2, ClientMessage::Stop { run_id: run.clone() })
        .await
        .unwrap();
    assert!(refused(&answer, ErrorCode::Forbidden, "only who started"), "{answer:?}");
    let answer = bob
        .request(3, ClientMessage::Stop { run_id: run.clone() })
        .await
        .unwrap();
    assert!(refused(&answer, ErrorCode::Forbidden, "only who started"), "{answer:?}");
    // A run no node holds is "not found", answered at once.
    let answer = bob
        .request(
            4,
            ClientMessage::Stop {
                run_id: "0000000000000000".into(),
            },
        )
        .await
        .unwrap();
    assert!(refused(&answer, ErrorCode::NotFound, "no run"), "{answer:?}");

    // Bob ends its input; the program finishes, and both nodes see how.
    bob.send_mesh(&ClientMessage::Input {
        run_id: run.clone(),
        data: "last\n".into(),
        eof: true,
    });
    for c in [&ada, &bob, &rita] {
        let end = exited(c, &run).await;
        assert!(
            matches!(
                end,
                ServerMessage::RunExited {
                    code: Some(0),
                    limit: None,
                    error: None,
                    ..
                }
            ),
            "{end:?}"
        );
        assert_eq!(stdout(c, &run), "ready\ngot from B\ngot last\nbye\n");
    }

    // The host, on node B, stops an endless run that Ada started on node A.
    let hal = connect(&b, &s, &s.created.host_token, "hal").await;
    ada.send_mesh(&ClientMessage::Run {
        path: "spin.py".into(),
        language: None,
    });
    let spin = hal
        .wait_mesh(
            "the second run",
            |m| matches!(m, ServerMessage::RunStarted { run_id, .. } if *run_id != run),
        )
        .await
        .unwrap();
    let ServerMessage::RunStarted { run_id: spin, .. } = spin else {
        unreachable!()
    };
    hal.wait_for("it spins", |c| stdout(c, &spin) == "spinning\n")
        .await
        .unwrap();
    hal.send_mesh(&ClientMessage::Stop { run_id: spin.clone() });
    for c in [&ada, &bob, &hal] {
        let end = exited(c, &spin).await;
        assert!(
            matches!(&end, ServerMessage::RunExited { error: Some(e), .. } if e == "stopped"),
            "stopped, not finished: {end:?}"
        );
    }
}

const PYTHON: &str =
    "def double(n):\n    return n * 2\n\nx = 41\ny = double(x)\nprint('y is', y)\nraise SystemExit(y - 80)\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_debug_session_on_one_node_is_stepped_from_another() {
    let pg = TestPostgres::start().unwrap();
    let redis = TestRedis::start().unwrap();
    let (a, b) = (node(&pg, &redis), node(&pg, &redis));
    let s = a.create_session("debug across").await.unwrap();
    let ada = connect(&a, &s, &s.created.writer_token, "ada").await;
    let bob = connect(&b, &s, &s.created.writer_token, "bob").await;
    let rita = connect(&b, &s, &s.created.reader_token, "rita").await;
    ada.insert("app.py", 0, PYTHON);
    bob.wait_for("the file", |c| c.text("app.py").is_some_and(|t| t.ends_with("80)\n")))
        .await
        .unwrap();

    // Ada starts the session on node A; Bob's start on node B joins it there.
    ada.send_mesh(&ClientMessage::DebugStart {
        path: "app.py".into(),
        language: None,
    });
    let id = joined(&ada).await;
    bob.wait_mesh(
        "the session's announcement",
        |m| matches!(m, ServerMessage::DebugStarted { debug_id, .. } if *debug_id == id),
    )
    .await
    .unwrap();
    bob.send_mesh(&ClientMessage::DebugStart {
        path: "app.py".into(),
        language: None,
    });
    assert_eq!(joined(&bob).await, id, "one session per room, across nodes");
    event(&ada, "initialized", 1).await;
    event(&bob, "initialized", 1).await;

    // Bob sets the breakpoint from node B; both stop there.
    let src = json!({"path": "/work/main.py"});
    let bp = request(
        &bob,
        &id,
        1,
        "setBreakpoints",
        json!({"source": src, "breakpoints": [{"line": 5}]}),
    )
    .await;
    assert_eq!(bp["body"]["breakpoints"][0]["verified"], true, "{bp}");
    request(&ada, &id, 2, "configurationDone", Value::Null).await;
    request(&bob, &id, 2, "configurationDone", json!({})).await;
    let stop = event(&bob, "stopped", 1).await;
    assert_eq!(stop["body"]["reason"], "breakpoint");
    event(&ada, "stopped", 1).await;
    let frame = top_frame(&bob, &id, 10).await;
    assert_eq!(frame["line"], 5, "{frame}");

    // A reader on node B may join and look, not step.
    rita.send_mesh(&ClientMessage::DebugStart {
        path: String::new(),
        language: None,
    });
    assert_eq!(joined(&rita).await, id);
    event(&rita, "initialized", 1).await;
    request(&rita, &id, 1, "configurationDone", json!({})).await;
    let thread = stop["body"]["threadId"].clone();
    let no = request(&rita, &id, 4, "continue", json!({"threadId": thread})).await;
    assert_eq!(no["success"], false, "{no}");

    // Bob steps into double() from node B; Ada, on node A, sees where it went.
    request(&bob, &id, 20, "stepIn", json!({"threadId": thread})).await;
    event(&ada, "stopped", 2).await;
    let frame = top_frame(&ada, &id, 30).await;
    assert_eq!(
        (frame["name"].as_str(), frame["line"].as_i64()),
        (Some("double"), Some(2))
    );

    // Bob continues to the end; both nodes see the exit and the program's output.
    request(&bob, &id, 21, "continue", json!({"threadId": thread})).await;
    for c in [&ada, &bob, &rita] {
        assert_eq!(ended(c).await, (Some(2), None));
    }
    assert!(stdout(&rita, &id).contains("y is 82"), "{:?}", stdout(&rita, &id));
}

fn names(list: &[mesh_protocol::messages::Participant]) -> Vec<String> {
    let mut names: Vec<String> = list.iter().map(|p| p.name.clone()).collect();
    names.sort();
    names
}

/// Asks for the participant list and returns the answer (`participants` names no request:
/// the answer is the first list after the ones already there).
async fn participants(c: &YClient) -> Vec<mesh_protocol::messages::Participant> {
    let lists = |c: &YClient| -> Vec<Vec<mesh_protocol::messages::Participant>> {
        c.mesh_messages()
            .into_iter()
            .filter_map(|m| match m {
                ServerMessage::Participants { participants } => Some(participants),
                _ => None,
            })
            .collect()
    };
    let before = lists(c).len();
    c.send_mesh(&ClientMessage::ListParticipants);
    c.wait_for("the participant list", |c| lists(c).len() > before)
        .await
        .unwrap();
    lists(c).swap_remove(before)
}

#[tokio::test]
async fn everyone_sees_everyone_wherever_they_are_connected() {
    let pg = TestPostgres::start().unwrap();
    let redis = TestRedis::start().unwrap();
    let (a, b) = (node(&pg, &redis), node(&pg, &redis));
    let s = a.create_session("people across").await.unwrap();
    let ada = connect(&a, &s, &s.created.writer_token, "ada").await;
    let bob = connect(&b, &s, &s.created.writer_token, "bob").await;

    // Bob, on node B, hears of Ada on node A (node A answers a node new to the room at once,
    // not at its next renewal); Ada hears that Bob came.
    let bob_id = bob.welcome().await.unwrap().conn_id;
    let heard = std::time::Instant::now();
    bob.wait_mesh(
        "ada, on the other node",
        |m| matches!(m, ServerMessage::ParticipantJoined { participant } if participant.name == "ada"),
    )
    .await
    .unwrap();
    assert!(
        heard.elapsed() < std::time::Duration::from_secs(5),
        "not a renewal's wait: {:?}",
        heard.elapsed()
    );
    ada.wait_mesh(
        "bob's arrival",
        |m| matches!(m, ServerMessage::ParticipantJoined { participant } if participant.conn_id == bob_id),
    )
    .await
    .unwrap();
    let seen_by_ada = participants(&ada).await;
    assert_eq!(names(&seen_by_ada), ["ada", "bob"]);
    // One person, one id, on every node; two people, two ids.
    let ids = |list: &[mesh_protocol::messages::Participant]| {
        let mut ids: Vec<u64> = list.iter().map(|p| p.conn_id).collect();
        ids.sort();
        ids
    };
    assert_eq!(ids(&seen_by_ada), ids(&participants(&bob).await));
    assert_ne!(seen_by_ada[0].conn_id, seen_by_ada[1].conn_id);
    assert!(
        seen_by_ada.iter().all(|p| p.conn_id < 1 << 53),
        "ids JavaScript reads exactly"
    );

    // Cy joins on node B, then Bob leaves: Ada hears both at once.
    let cy = connect(&b, &s, &s.created.reader_token, "cy").await;
    ada.wait_mesh(
        "cy's arrival",
        |m| matches!(m, ServerMessage::ParticipantJoined { participant } if participant.name == "cy"),
    )
    .await
    .unwrap();
    bob.close();
    ada.wait_mesh(
        "bob's leaving",
        |m| matches!(m, ServerMessage::ParticipantLeft { conn_id } if *conn_id == bob_id),
    )
    .await
    .unwrap();
    assert_eq!(names(&participants(&ada).await), ["ada", "cy"]);
    assert_eq!(names(&participants(&cy).await), ["ada", "cy"]);

    // Node B is killed with Cy on it: Ada's list drops Cy once node B's people time out
    // (30 s without a renewal), as it drops their cursors.
    let mut b = b;
    b.kill9();
    let cy_id = participants(&ada)
        .await
        .iter()
        .find(|p| p.name == "cy")
        .unwrap()
        .conn_id;
    let killed = std::time::Instant::now();
    while participants(&ada).await.iter().any(|p| p.conn_id == cy_id) {
        assert!(
            killed.elapsed() < std::time::Duration::from_secs(60),
            "cy is still listed a minute after her node died"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert!(
        ada.mesh_messages()
            .iter()
            .any(|m| matches!(m, ServerMessage::ParticipantLeft { conn_id } if *conn_id == cy_id)),
        "ada was told cy left"
    );
}

/// Where in a client's messages something first happened.
fn first(c: &YClient, what: impl Fn(&ServerMessage) -> bool) -> Option<usize> {
    c.mesh_messages().iter().position(what)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_cap_holds_across_nodes() {
    let pg = TestPostgres::start().unwrap();
    let redis = TestRedis::start().unwrap();
    let cap = ["--cluster-max-sandboxes", "1"];
    let (a, b) = (node_with(&pg, &redis, &cap), node_with(&pg, &redis, &cap));
    let s = a.create_session("one sandbox").await.unwrap();
    let ada = connect(&a, &s, &s.created.writer_token, "ada").await;
    let bob = connect(&b, &s, &s.created.writer_token, "bob").await;
    let rita = connect(&b, &s, &s.created.reader_token, "rita").await;
    ada.insert(
        "slow.py",
        0,
        "import time\nprint('A up', flush=True)\ntime.sleep(2)\nprint('A done', flush=True)\n",
    );
    ada.insert("quick.py", 0, "print('B ran', flush=True)\n");
    bob.wait_for("the files", |c| {
        c.text("quick.py").is_some() && c.text("slow.py").is_some()
    })
    .await
    .unwrap();

    // Ada's run on node A takes the cluster's one sandbox; Bob's on node B, admitted by
    // node B's own caps, waits for it and runs once Ada's is gone.
    ada.send_mesh(&ClientMessage::Run {
        path: "slow.py".into(),
        language: None,
    });
    let slow = started(&ada).await;
    rita.wait_for("ada's run is up", |c| stdout(c, &slow) == "A up\n")
        .await
        .unwrap();
    bob.send_mesh(&ClientMessage::Run {
        path: "quick.py".into(),
        language: None,
    });
    let quick = bob
        .wait_mesh(
            "bob's run",
            |m| matches!(m, ServerMessage::RunStarted { run_id, .. } if *run_id != slow),
        )
        .await
        .unwrap();
    let ServerMessage::RunStarted { run_id: quick, .. } = quick else {
        unreachable!()
    };
    let end = exited(&rita, &quick).await;
    assert!(matches!(end, ServerMessage::RunExited { code: Some(0), .. }), "{end:?}");
    assert_eq!(stdout(&rita, &quick), "B ran\n");
    let slow_end = first(
        &rita,
        |m| matches!(m, ServerMessage::RunExited { run_id, .. } if *run_id == slow),
    );
    let quick_out = first(
        &rita,
        |m| matches!(m, ServerMessage::RunOutput { run_id, .. } if *run_id == quick),
    );
    assert!(
        slow_end.is_some() && slow_end < quick_out,
        "bob's program printed before ada's ended: {slow_end:?} vs {quick_out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_whose_node_dies_ends_for_the_other_nodes() {
    let pg = TestPostgres::start().unwrap();
    let redis = TestRedis::start().unwrap();
    let (mut a, b) = (node(&pg, &redis), node(&pg, &redis));
    let s = a.create_session("node dies").await.unwrap();
    let ada = connect(&a, &s, &s.created.writer_token, "ada").await;
    let bob = connect(&b, &s, &s.created.writer_token, "bob").await;
    ada.insert("spin.py", 0, "print('spinning', flush=True)\nwhile True:\n    pass\n");
    bob.wait_for("the file", |c| c.text("spin.py").is_some()).await.unwrap();
    ada.send_mesh(&ClientMessage::Run {
        path: "spin.py".into(),
        language: None,
    });
    let run = started(&bob).await;
    bob.wait_for("it spins", |c| stdout(c, &run) == "spinning\n")
        .await
        .unwrap();

    // Node A is killed with the run on it. Bob is not left watching a run nobody holds:
    // once node A has been silent for the awareness timeout, his node ends it for him.
    a.kill9();
    let killed = std::time::Instant::now();
    let end = loop {
        let end = bob
            .mesh_messages()
            .into_iter()
            .find(|m| matches!(m, ServerMessage::RunExited { run_id, .. } if *run_id == run));
        if let Some(end) = end {
            break end;
        }
        assert!(
            killed.elapsed() < std::time::Duration::from_secs(60),
            "bob still watches the run a minute after its node died"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    assert!(
        matches!(&end, ServerMessage::RunExited { error: Some(e), .. } if e.contains("stopped answering")),
        "{end:?}"
    );
    // A request about it is "not found" now, answered by Bob's own node.
    let answer = bob
        .request(1, ClientMessage::Stop { run_id: run.clone() })
        .await
        .unwrap();
    assert!(refused(&answer, ErrorCode::NotFound, "no run"), "{answer:?}");
    eprintln!("the run ended for bob {:?} after its node was killed", killed.elapsed());
}
