//! Runs from editors, end to end: a real server running programs in real Docker (the images
//! `scripts/build-images python` builds), real `mesh-proxy lsp` processes driven by scripted
//! editors. Everyone in the room watches every run through `mesh/run*` notifications; anyone
//! who may write types into it; bad requests come back as LSP errors that say what is wrong.
//! Like the server's own run tests, these need Docker and fail without it.

use std::time::Duration;

use mesh_testkit::lsp::uri_of;
use mesh_testkit::{LspClient, TestServer};
use serde_json::{json, Value};

/// A first run may wait for Docker to start its container; later ones are quicker.
const RUN_TIMEOUT: Duration = Duration::from_secs(90);

/// Reads a line, greets it on stdout, complains on stderr, exits with 3.
const ASK_PY: &str = "import sys\nprint('ready', flush=True)\nname = sys.stdin.readline().strip()\nprint('hello', name)\nprint('to stderr', file=sys.stderr)\nsys.exit(3)\n";

/// Waits for its input until stopped (or its time limit).
const WAIT_PY: &str = "import sys\nprint('waiting', flush=True)\nsys.stdin.read()\n";

/// Ada shares a folder holding `files`; Bob joins it with the writer link. Returns the
/// reader link too.
async fn room_of_two(server: &TestServer, files: &[(&str, &str)]) -> (tempfile::TempDir, LspClient, LspClient, String) {
    let tmp = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (tmp.path().join("a"), tmp.path().join("b"));
    std::fs::create_dir_all(&a_dir).unwrap();
    std::fs::create_dir_all(&b_dir).unwrap();
    for (path, text) in files {
        std::fs::write(a_dir.join(path), text).unwrap();
    }
    let ada = LspClient::start(&a_dir, "ada", &server.url).await.unwrap();
    let shared = ada.request("mesh/share", json!({})).await.unwrap();
    let bob = LspClient::start(&b_dir, "bob", &server.url).await.unwrap();
    bob.request("mesh/join", json!({ "link": shared["link"] }))
        .await
        .unwrap();
    for c in [&ada, &bob] {
        c.wait_for("both in the room", |c| {
            c.notifications("mesh/participants")
                .last()
                .is_some_and(|p| p["participants"].as_array().is_some_and(|l| l.len() == 2))
        })
        .await
        .unwrap();
    }
    let read_link = shared["readLink"].as_str().unwrap().to_string();
    (tmp, ada, bob, read_link)
}

/// Waits up to [`RUN_TIMEOUT`] for `cond`.
async fn wait_long(c: &LspClient, what: &str, mut cond: impl FnMut(&LspClient) -> bool) {
    let deadline = tokio::time::Instant::now() + RUN_TIMEOUT;
    while c.wait_for(what, &mut cond).await.is_err() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}: timed out waiting for {what}",
            c.name
        );
    }
}

/// The notification of `method` for a run, if it came.
fn of_run(c: &LspClient, method: &str, run_id: &str) -> Option<Value> {
    c.notifications(method).into_iter().find(|n| n["runId"] == run_id)
}

/// A run's output as (stream, data) pairs, in the order they arrived.
fn output(c: &LspClient, run_id: &str) -> Vec<(String, String)> {
    c.notifications("mesh/runOutput")
        .into_iter()
        .filter(|n| n["runId"] == run_id)
        .map(|n| {
            (
                n["stream"].as_str().unwrap().to_string(),
                n["data"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// One stream of a run's output, joined.
fn stream(c: &LspClient, run_id: &str, which: &str) -> String {
    output(c, run_id)
        .into_iter()
        .filter(|(s, _)| s == which)
        .map(|(_, d)| d)
        .collect()
}

/// The error message of a request that must fail.
async fn refused(c: &LspClient, method: &str, params: Value) -> String {
    match c.request(method, params.clone()).await {
        Ok(result) => panic!("{method} {params} was accepted: {result}"),
        Err(e) => e.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everyone_watches_a_run_and_anyone_who_writes_may_type_into_it() {
    let server = TestServer::start_with(&["--run-images", "local"]).unwrap();
    let (_tmp, ada, bob, _) = room_of_two(&server, &[("ask.py", ASK_PY)]).await;
    let uri = ada.open("ask.py").await.unwrap();

    let started = ada.request("mesh/run", json!({ "uri": uri })).await.unwrap();
    let run_id = started["runId"].as_str().expect("mesh/run answers a runId").to_string();
    for c in [&ada, &bob] {
        c.wait_for("mesh/runStarted", |c| of_run(c, "mesh/runStarted", &run_id).is_some())
            .await
            .unwrap();
        let n = of_run(c, "mesh/runStarted", &run_id).unwrap();
        assert_eq!(
            (n["path"].as_str(), n["language"].as_str()),
            (Some("ask.py"), Some("python"))
        );
        assert_eq!(
            (n["byName"].as_str(), n["you"].as_bool()),
            (Some("ada"), Some(c.name == "ada")),
            "{n}"
        );
        assert_eq!(n["uri"].as_str(), Some(uri_of(&c.root.join("ask.py")).as_str()));
    }

    // Bob types into Ada's run once the program is reading.
    wait_long(&bob, "the program's first line", |c| {
        stream(c, &run_id, "stdout") == "ready\n"
    })
    .await;
    bob.request(
        "mesh/runInput",
        json!({ "runId": run_id, "data": "bob\n", "eof": true }),
    )
    .await
    .unwrap();

    for c in [&ada, &bob] {
        wait_long(c, "mesh/runExited", |c| of_run(c, "mesh/runExited", &run_id).is_some()).await;
        let exited = of_run(c, "mesh/runExited", &run_id).unwrap();
        assert_eq!(exited["code"], 3, "{exited}");
        assert_eq!(exited["stage"], "run");
        assert!(exited["limit"].is_null() && exited["error"].is_null(), "{exited}");
        assert!(exited["durationMs"].as_u64().is_some(), "{exited}");
        assert_eq!(stream(c, &run_id, "stdout"), "ready\nhello bob\n");
        assert_eq!(stream(c, &run_id, "stderr"), "to stderr\n");
    }
    assert_eq!(
        output(&ada, &run_id),
        output(&bob, &run_id),
        "both saw the same output in the same order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_run_requests_get_errors_that_say_what_is_wrong() {
    let server = TestServer::start_with(&["--run-images", "local"]).unwrap();
    let (tmp, ada, bob, read_link) = room_of_two(&server, &[("wait.py", WAIT_PY), ("notes.txt", "hi\n")]).await;

    // Refused by the proxy before anything travels.
    let outside = uri_of(&tmp.path().join("elsewhere.py"));
    let e = refused(&ada, "mesh/run", json!({ "uri": outside })).await;
    assert!(e.contains("not in the shared folder"), "{e}");
    let e = refused(&ada, "mesh/run", json!({ "path": "missing.py" })).await;
    assert!(e.contains("no file \"missing.py\" in this room"), "{e}");
    let e = refused(&ada, "mesh/run", json!({})).await;
    assert!(e.contains("`uri` or a `path`"), "{e}");
    let e = refused(&ada, "mesh/runStop", json!({ "runId": "nope" })).await;
    assert!(e.contains("no run nope is going"), "{e}");

    // Refused by the server, passed on as the request's error.
    let e = refused(&ada, "mesh/run", json!({ "path": "wait.py", "language": "cobol" })).await;
    assert!(
        e.contains("the server refused the run: unknown language \"cobol\""),
        "{e}"
    );
    let e = refused(&ada, "mesh/run", json!({ "path": "notes.txt" })).await;
    assert!(e.contains("no language runs \"notes.txt\""), "{e}");

    // A reader watches runs but may not start one.
    let c_dir = tmp.path().join("c");
    std::fs::create_dir_all(&c_dir).unwrap();
    let cy = LspClient::start(&c_dir, "cy", &server.url).await.unwrap();
    cy.request("mesh/join", json!({ "link": read_link })).await.unwrap();
    cy.wait_for("the reader's role", |c| {
        c.notifications("mesh/status")
            .last()
            .is_some_and(|s| s["role"] == "reader")
    })
    .await
    .unwrap();
    let e = refused(&cy, "mesh/run", json!({ "path": "wait.py" })).await;
    assert!(e.contains("readers may watch runs but not start them"), "{e}");

    // A run that waits: too much input at once is refused, only who started it may stop it.
    let run_id = ada.request("mesh/run", json!({ "path": "wait.py" })).await.unwrap()["runId"]
        .as_str()
        .unwrap()
        .to_string();
    for c in [&bob, &cy] {
        c.wait_for("mesh/runStarted", |c| of_run(c, "mesh/runStarted", &run_id).is_some())
            .await
            .unwrap();
    }
    let e = refused(&cy, "mesh/runInput", json!({ "runId": run_id, "data": "x" })).await;
    assert!(e.contains("readers may not type into a run"), "{e}");
    let too_much = "x".repeat(64 * 1024 + 1);
    let e = refused(&ada, "mesh/runInput", json!({ "runId": run_id, "data": too_much })).await;
    assert!(e.contains("send at most 64 KiB per mesh/runInput"), "{e}");
    let e = refused(&bob, "mesh/runStop", json!({ "runId": run_id })).await;
    assert!(e.contains("only who started a run (or the host) may stop it"), "{e}");
    // A second run of Ada's waits for her first (one per person): mesh/run answers with
    // its place, every editor hears mesh/runQueued with the text to show, and runStop takes
    // it out of the queue. A third is refused, naming the limit.
    let second = ada.request("mesh/run", json!({ "path": "wait.py" })).await.unwrap();
    assert_eq!(second["queued"], 1, "{second}");
    let second = second["runId"].as_str().unwrap().to_string();
    for c in [&ada, &bob] {
        c.wait_for("mesh/runQueued", |c| of_run(c, "mesh/runQueued", &second).is_some())
            .await
            .unwrap();
    }
    let q = of_run(&bob, "mesh/runQueued", &second).unwrap();
    assert_eq!(
        (&q["position"], &q["limit"], &q["you"]),
        (&json!(1), &json!("max_runs_per_person"), &json!(false))
    );
    let text = q["message"].as_str().unwrap();
    assert!(text.starts_with("queued: 1st in line"), "{text}");
    let e = refused(&ada, "mesh/run", json!({ "path": "wait.py" })).await;
    assert!(e.contains("max_runs_per_person = 1"), "{e}");
    ada.request("mesh/runStop", json!({ "runId": second })).await.unwrap();
    ada.wait_for("the queued run withdrawn", |c| {
        of_run(c, "mesh/runExited", &second).is_some()
    })
    .await
    .unwrap();
    assert!(of_run(&ada, "mesh/runStarted", &second).is_none());

    wait_long(&cy, "the program's first line", |c| {
        stream(c, &run_id, "stdout") == "waiting\n"
    })
    .await;
    ada.request("mesh/runStop", json!({ "runId": run_id })).await.unwrap();
    for c in [&ada, &bob, &cy] {
        wait_long(c, "mesh/runExited", |c| of_run(c, "mesh/runExited", &run_id).is_some()).await;
        let exited = of_run(c, "mesh/runExited", &run_id).unwrap();
        assert_eq!(exited["error"], "stopped", "{exited}");
    }
}
