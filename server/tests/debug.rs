//! Debug sessions through the room socket, against real Docker and the local images: the
//! server runs the language's debug adapter in a sandbox and shares it. The DAP traffic here
//! is what `mesh-proxy dap` sends for an editor (container paths, the participant's seqs).

mod support;

use mesh_protocol::{ClientMessage, ServerMessage};
use mesh_testkit::{TestServer, YClient};
use serde_json::{json, Value};
use support::{daps, ended, event, joined, request, top_frame};

const PYTHON: &str =
    "def double(n):\n    return n * 2\n\nx = 41\ny = double(x)\nprint('y is', y)\nraise SystemExit(y - 80)\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_participants_debug_one_python_program() {
    let server = TestServer::start_with(&["--run-images", "local"]).unwrap();
    let session = server.create_session("debug").await.unwrap();
    let ada = YClient::connect_mesh(&server.ws_url(&session, &session.created.writer_token), "ada")
        .await
        .unwrap();
    let bob = YClient::connect_mesh(&server.ws_url(&session, &session.created.writer_token), "bob")
        .await
        .unwrap();
    let rita = YClient::connect_mesh(&server.ws_url(&session, &session.created.reader_token), "rita")
        .await
        .unwrap();
    ada.wait_synced().await.unwrap();
    ada.insert("src/app.py", 0, PYTHON);
    bob.wait_for("the file", |c| {
        c.text("src/app.py").is_some_and(|t| t.ends_with("80)\n"))
    })
    .await
    .unwrap();

    // A reader may not start a session.
    rita.send_mesh(&ClientMessage::DebugStart {
        path: "src/app.py".into(),
        language: None,
    });
    rita.wait_mesh(
        "refusal",
        |m| matches!(m, ServerMessage::Error { message, .. } if message.contains("readers may join")),
    )
    .await
    .unwrap();

    ada.send_mesh(&ClientMessage::DebugStart {
        path: "src/app.py".into(),
        language: None,
    });
    let id = joined(&ada).await;
    event(&ada, "initialized", 1).await;
    // A second start joins the same session.
    bob.send_mesh(&ClientMessage::DebugStart {
        path: "src/app.py".into(),
        language: None,
    });
    assert_eq!(joined(&bob).await, id);

    // The entry file runs as /work/main.py; breakpoints go there.
    let src = json!({"path": "/work/main.py"});
    let bp = request(
        &ada,
        &id,
        1,
        "setBreakpoints",
        json!({"source": src, "breakpoints": [{"line": 5}]}),
    )
    .await;
    assert_eq!(bp["body"]["breakpoints"][0]["verified"], true, "{bp}");
    let outside = request(
        &bob,
        &id,
        1,
        "setBreakpoints",
        json!({"source": {"path": "/etc/passwd"}, "breakpoints": [{"line": 1}]}),
    )
    .await;
    assert_eq!(outside["body"]["breakpoints"][0]["verified"], false);
    assert_eq!(
        request(&ada, &id, 2, "configurationDone", Value::Null).await["success"],
        true
    );
    request(&bob, &id, 2, "configurationDone", json!({})).await;

    // Both stop at line 5.
    for c in [&ada, &bob] {
        let stop = event(c, "stopped", 1).await;
        assert_eq!(stop["body"]["reason"], "breakpoint");
    }
    let frame = top_frame(&ada, &id, 10).await;
    assert_eq!(
        (frame["line"].as_i64(), frame["source"]["path"].as_str()),
        (Some(5), Some("/work/main.py"))
    );
    let scopes = request(&ada, &id, 12, "scopes", json!({"frameId": frame["id"]})).await;
    let vars_ref = scopes["body"]["scopes"][0]["variablesReference"].clone();
    let vars = request(&ada, &id, 13, "variables", json!({"variablesReference": vars_ref})).await;
    let x = vars["body"]["variables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "x")
        .cloned();
    assert_eq!(x.map(|v| v["value"].clone()), Some(json!("41")), "{vars}");
    let eval = request(
        &ada,
        &id,
        14,
        "evaluate",
        json!({"expression": "x + 1", "frameId": frame["id"], "context": "repl"}),
    )
    .await;
    assert_eq!(eval["body"]["result"], "42");

    // A reader joins late: it sees the current stop, may inspect, may not continue.
    rita.send_mesh(&ClientMessage::DebugStart {
        path: String::new(),
        language: None,
    });
    joined(&rita).await;
    event(&rita, "initialized", 1).await;
    request(&rita, &id, 1, "configurationDone", json!({})).await;
    let stop = event(&rita, "stopped", 1).await;
    assert_eq!(stop["body"]["reason"], "breakpoint");
    assert_eq!(top_frame(&rita, &id, 2).await["line"], 5);
    let refused = request(&rita, &id, 4, "continue", json!({"threadId": stop["body"]["threadId"]})).await;
    assert_eq!(refused["success"], false);
    assert!(refused["message"].as_str().unwrap().contains("readers may inspect"));

    // Bob steps into double(); Ada sees the new place; then out again.
    let thread = stop["body"]["threadId"].clone();
    request(&bob, &id, 20, "stepIn", json!({"threadId": thread})).await;
    event(&ada, "stopped", 2).await;
    let frame = top_frame(&ada, &id, 30).await;
    assert_eq!(
        (frame["name"].as_str(), frame["line"].as_i64()),
        (Some("double"), Some(2))
    );
    request(&bob, &id, 21, "stepOut", json!({"threadId": thread})).await;
    event(&ada, "stopped", 3).await;
    request(&ada, &id, 32, "next", json!({"threadId": thread})).await;
    event(&bob, "stopped", 4).await;
    assert_eq!(top_frame(&bob, &id, 40).await["line"], 6);

    // Continue to the end: the program's output reached the room, and its exit code.
    request(&ada, &id, 50, "continue", json!({"threadId": thread})).await;
    let exited = event(&bob, "exited", 1).await;
    assert_eq!(exited["body"]["exitCode"], 2);
    for c in [&ada, &bob, &rita] {
        assert_eq!(ended(c).await, (Some(2), None));
    }
    let printed: String = rita
        .mesh_messages()
        .into_iter()
        .filter_map(|m| match m {
            ServerMessage::RunOutput { run_id, data, .. } if run_id == id => Some(data),
            _ => None,
        })
        .collect();
    assert!(printed.contains("y is 82"), "{printed:?}");

    // The session is over at once: a new start is a new session, not a join of the old one.
    let before = bob
        .mesh_messages()
        .iter()
        .filter(|m| matches!(m, ServerMessage::DebugJoined { .. }))
        .count();
    bob.send_mesh(&ClientMessage::DebugStart {
        path: "src/app.py".into(),
        language: None,
    });
    bob.wait_for("a second session", |c| {
        c.mesh_messages()
            .iter()
            .filter(|m| matches!(m, ServerMessage::DebugJoined { debug_id, .. } if *debug_id != id))
            .count()
            > 0
    })
    .await
    .unwrap();
    assert!(before >= 1);
}

const C: &str = "#include <stdio.h>\n\nint square(int n) {\n    return n * n;\n}\n\nint main(void) {\n    int a = 7;\n    int b = square(a);\n    printf(\"%d\\n\", b);\n    return b - 40;\n}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_c_program_under_lldb() {
    debug_native("main.c").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cpp_program_under_lldb() {
    // The same program is valid C++; it is built with g++ and run as /work/main.cpp.
    debug_native("main.cpp").await;
}

/// Breakpoint, variables, evaluate, stepping and exit code of the C program as `file`.
async fn debug_native(file: &str) {
    let server = TestServer::start_with(&["--run-images", "local"]).unwrap();
    let session = server.create_session("debug-native").await.unwrap();
    let ada = YClient::connect_mesh(&server.ws_url(&session, &session.created.writer_token), "ada")
        .await
        .unwrap();
    ada.wait_synced().await.unwrap();
    ada.insert(file, 0, C);
    ada.send_mesh(&ClientMessage::DebugStart {
        path: file.into(),
        language: None,
    });
    let id = joined(&ada).await;
    event(&ada, "initialized", 1).await;
    let container_path = format!("/work/{file}");
    let bp = request(
        &ada,
        &id,
        1,
        "setBreakpoints",
        json!({"source": {"path": container_path}, "breakpoints": [{"line": 9}]}),
    )
    .await;
    assert_eq!(bp["success"], true, "{bp}");
    request(&ada, &id, 2, "configurationDone", json!({})).await;
    let stop = event(&ada, "stopped", 1).await;
    let thread = stop["body"]["threadId"].clone();
    let frame = top_frame(&ada, &id, 3).await;
    assert_eq!(
        (frame["line"].as_i64(), frame["source"]["path"].as_str()),
        (Some(9), Some(container_path.as_str())),
        "{frame}"
    );
    let scopes = request(&ada, &id, 5, "scopes", json!({"frameId": frame["id"]})).await;
    let vars = request(
        &ada,
        &id,
        6,
        "variables",
        json!({"variablesReference": scopes["body"]["scopes"][0]["variablesReference"]}),
    )
    .await;
    let a = vars["body"]["variables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "a")
        .cloned();
    assert_eq!(a.map(|v| v["value"].clone()), Some(json!("7")), "{vars}");
    let eval = request(
        &ada,
        &id,
        7,
        "evaluate",
        json!({"expression": "a * 6", "frameId": frame["id"], "context": "repl"}),
    )
    .await;
    assert_eq!(eval["body"]["result"], "42", "{eval}");
    request(&ada, &id, 8, "stepIn", json!({"threadId": thread})).await;
    event(&ada, "stopped", 2).await;
    assert_eq!(
        top_frame(&ada, &id, 9).await["name"]
            .as_str()
            .map(|n| n.contains("square")),
        Some(true)
    );
    request(&ada, &id, 11, "stepOut", json!({"threadId": thread})).await;
    event(&ada, "stopped", 3).await;
    request(&ada, &id, 12, "next", json!({"threadId": thread})).await;
    event(&ada, "stopped", 4).await;
    request(&ada, &id, 13, "continue", json!({"threadId": thread})).await;
    assert_eq!(ended(&ada).await.0, Some(9));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_debug_requests_are_refused_and_the_room_goes_on() {
    let server = TestServer::start_with(&["--run-images", "local"]).unwrap();
    let session = server.create_session("debug-bad").await.unwrap();
    let ada = YClient::connect_mesh(&server.ws_url(&session, &session.created.writer_token), "ada")
        .await
        .unwrap();
    ada.wait_synced().await.unwrap();
    ada.insert("notes.txt", 0, "hi");
    ada.insert("run.sh", 0, "echo hi\n");
    ada.insert("broken.c", 0, "int main(void) { return nope; }\n");
    for (path, want) in [
        ("missing.py", "no file"),
        ("notes.txt", "no language"),
        ("run.sh", "cannot be debugged"),
    ] {
        ada.send_mesh(&ClientMessage::DebugStart {
            path: path.into(),
            language: None,
        });
        ada.wait_mesh(
            want,
            |m| matches!(m, ServerMessage::Error { message, .. } if message.contains(want)),
        )
        .await
        .unwrap();
    }
    ada.send_mesh(&ClientMessage::Dap {
        debug_id: "0123".into(),
        message: json!({"type": "request", "seq": 1, "command": "threads"}),
    });
    ada.wait_mesh(
        "no session",
        |m| matches!(m, ServerMessage::Error { message, .. } if message.contains("no debug session")),
    )
    .await
    .unwrap();
    // An adapter that dies mid-session (the program kills every process it can) ends the
    // session with a clear reason, for everyone.
    ada.insert("killer.py", 0, "import os, signal\nos.kill(-1, signal.SIGKILL)\n");
    ada.send_mesh(&ClientMessage::DebugStart {
        path: "killer.py".into(),
        language: None,
    });
    let id = joined(&ada).await;
    event(&ada, "initialized", 1).await;
    // Its answer may never come: the program kills the adapter as it starts.
    ada.send_mesh(&ClientMessage::Dap {
        debug_id: id,
        message: json!({"type": "request", "seq": 1, "command": "configurationDone"}),
    });
    let (_, error) = ended(&ada).await;
    assert!(
        error.as_deref().is_some_and(|e| e.contains("stopped unexpectedly")),
        "{error:?}"
    );
    // A compile error ends the session with a clear reason, and a new one can start.
    ada.send_mesh(&ClientMessage::DebugStart {
        path: "broken.c".into(),
        language: None,
    });
    ada.wait_mesh(
        "a compile error",
        |m| matches!(m, ServerMessage::DebugEnded { error: Some(e), .. } if e.contains("did not compile")),
    )
    .await
    .unwrap();
    // The room goes on: an edit made now reaches someone who joins afterwards, through the
    // server (not just ada's own copy).
    ada.insert("notes.txt", 2, "!");
    let bob = YClient::connect_mesh(&server.ws_url(&session, &session.created.writer_token), "bob")
        .await
        .unwrap();
    bob.wait_synced().await.unwrap();
    bob.wait_for("ada's edit after the failed sessions", |c| {
        c.text("notes.txt").as_deref() == Some("hi!")
    })
    .await
    .unwrap();
}

const LOOP: &str = "import time\ntotal = 0\nfor i in range(10):\n    total += i\nprint('total', total)\nwhile True:\n    time.sleep(0.01)\n";

/// The value of `expression` in the top frame of the stop.
async fn value_of(c: &YClient, id: &str, seq: i64, expression: &str) -> Value {
    let frame = top_frame(c, id, seq).await;
    let eval = request(
        c,
        id,
        seq + 2,
        "evaluate",
        json!({"expression": expression, "frameId": frame["id"], "context": "watch"}),
    )
    .await;
    eval["body"]["result"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditions_logpoints_pause_and_restart_are_shared() {
    let server = TestServer::start_with(&["--run-images", "local"]).unwrap();
    let session = server.create_session("debug-rich").await.unwrap();
    let url = server.ws_url(&session, &session.created.writer_token);
    let ada = YClient::connect_mesh(&url, "ada").await.unwrap();
    let bob = YClient::connect_mesh(&url, "bob").await.unwrap();
    ada.wait_synced().await.unwrap();
    ada.insert("loop.py", 0, LOOP);
    bob.wait_for("the file", |c| {
        c.text("loop.py").is_some_and(|t| t.ends_with("0.01)\n"))
    })
    .await
    .unwrap();
    ada.send_mesh(&ClientMessage::DebugStart {
        path: "loop.py".into(),
        language: None,
    });
    let id = joined(&ada).await;
    bob.send_mesh(&ClientMessage::DebugStart {
        path: "loop.py".into(),
        language: None,
    });
    assert_eq!(joined(&bob).await, id);
    for c in [&ada, &bob] {
        event(c, "initialized", 1).await;
    }
    let src = json!({"path": "/work/main.py"});
    // Ada stops when i is 3 and logs the total; Bob stops when i is 6.
    let mine = request(
        &ada,
        &id,
        1,
        "setBreakpoints",
        json!({"source": src, "breakpoints": [{"line": 4, "condition": "i == 3"}, {"line": 5, "logMessage": "logged total={total}"}]}),
    )
    .await;
    assert_eq!(mine["body"]["breakpoints"].as_array().map(Vec::len), Some(2), "{mine}");
    let his = request(
        &bob,
        &id,
        1,
        "setBreakpoints",
        json!({"source": src, "breakpoints": [{"line": 4, "condition": "i == 6"}]}),
    )
    .await;
    assert!(
        his["body"]["breakpoints"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("any of them")),
        "{his}"
    );
    request(&bob, &id, 2, "configurationDone", json!({})).await;
    request(&ada, &id, 2, "configurationDone", json!({})).await;

    let stop = event(&bob, "stopped", 1).await;
    let thread = stop["body"]["threadId"].clone();
    assert_eq!(value_of(&bob, &id, 10, "i").await, "3");
    request(&ada, &id, 20, "continue", json!({"threadId": thread})).await;
    event(&bob, "stopped", 2).await;
    assert_eq!(
        value_of(&ada, &id, 21, "i").await,
        "6",
        "Bob's condition stops Ada's program too"
    );
    request(&bob, &id, 30, "continue", json!({"threadId": thread})).await;
    // The logpoint logged for everyone; the program runs on in its endless loop.
    bob.wait_for("the logpoint", |c| {
        daps(c).iter().any(|m| {
            m["event"] == "output"
                && m["body"]["output"]
                    .as_str()
                    .is_some_and(|o| o.contains("logged total=45"))
        })
    })
    .await
    .unwrap();
    // Bob pauses it: both see where it is.
    request(&bob, &id, 31, "pause", json!({"threadId": thread})).await;
    let paused = event(&ada, "stopped", 3).await;
    assert_eq!(paused["body"]["reason"], "pause", "{paused}");

    // Ada restarts it: a fresh program, everyone's breakpoints in place, stopped at i == 3.
    let restarted = request(&ada, &id, 40, "restart", json!({})).await;
    assert_eq!(restarted["success"], true, "{restarted}");
    let stop = event(&bob, "stopped", 4).await;
    assert_eq!(stop["body"]["reason"], "breakpoint", "{stop}");
    assert_eq!(value_of(&bob, &id, 41, "i").await, "3");
    request(&ada, &id, 50, "disconnect", json!({"terminateDebuggee": true})).await;
    for c in [&ada, &bob] {
        let (_, error) = ended(c).await;
        assert_eq!(error, None);
    }
}

/// Raises and catches an exception on line 6, then calls `square`.
const RAISES: &str = r#"def square(n):
    return n * n


try:
    raise ValueError("caught")
except ValueError:
    pass
print(square(3))
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exception_filters_and_function_breakpoints_are_everyones() {
    let server = TestServer::start_with(&["--run-images", "local"]).unwrap();
    let session = server.create_session("debug-filters").await.unwrap();
    let url = server.ws_url(&session, &session.created.writer_token);
    let ada = YClient::connect_mesh(&url, "ada").await.unwrap();
    let bob = YClient::connect_mesh(&url, "bob").await.unwrap();
    ada.wait_synced().await.unwrap();
    ada.insert("raises.py", 0, RAISES);
    bob.wait_for("the file", |c| {
        c.text("raises.py").is_some_and(|t| t.ends_with("(3))\n"))
    })
    .await
    .unwrap();
    ada.send_mesh(&ClientMessage::DebugStart {
        path: "raises.py".into(),
        language: None,
    });
    let id = joined(&ada).await;
    bob.send_mesh(&ClientMessage::DebugStart {
        path: "raises.py".into(),
        language: None,
    });
    assert_eq!(joined(&bob).await, id);
    for c in [&ada, &bob] {
        event(c, "initialized", 1).await;
    }
    // Ada stops on raised exceptions and in `square`; Bob's editor then sends its own empty
    // sets, as every editor does while it configures: Ada's stay in place.
    let set = request(&ada, &id, 1, "setExceptionBreakpoints", json!({"filters": ["raised"]})).await;
    assert_eq!(set["success"], true, "{set}");
    let set = request(
        &ada,
        &id,
        2,
        "setFunctionBreakpoints",
        json!({"breakpoints": [{"name": "square"}]}),
    )
    .await;
    assert_eq!(set["body"]["breakpoints"][0]["verified"], true, "{set}");
    request(&bob, &id, 1, "setExceptionBreakpoints", json!({"filters": []})).await;
    request(&bob, &id, 2, "setFunctionBreakpoints", json!({"breakpoints": []})).await;
    request(&bob, &id, 3, "configurationDone", json!({})).await;
    request(&ada, &id, 3, "configurationDone", json!({})).await;

    let stop = event(&bob, "stopped", 1).await;
    assert_eq!(stop["body"]["reason"], "exception", "{stop}");
    assert_eq!(top_frame(&bob, &id, 4).await["line"], 6);
    request(&bob, &id, 6, "continue", json!({"threadId": stop["body"]["threadId"]})).await;
    let stop = event(&bob, "stopped", 2).await;
    assert_eq!(stop["body"]["reason"], "function breakpoint", "{stop}");
    let frame = top_frame(&bob, &id, 7).await;
    assert_eq!(frame["name"], "square", "{frame}");
    request(&bob, &id, 9, "continue", json!({"threadId": stop["body"]["threadId"]})).await;
    assert_eq!(ended(&bob).await, (Some(0), None));
}
