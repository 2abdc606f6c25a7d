//! The ghost end to end: a real `mesh-server`, a real `mesh-ghost` process joined by a read
//! link, a scripted OpenAI-compatible provider on loopback, and real Yjs clients as people.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use mesh_protocol::{ClientMessage, ServerMessage};
use mesh_testkit::provider::{Script, ScriptedProvider};
use mesh_testkit::{Session, TestServer, YClient};

/// The key the tests configure: it must never appear in chat, in the ghost's log, or to any
/// participant.
const KEY: &str = "sk-test-4f9a1c-never-shown";

struct Ghost {
    child: Child,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Ghost {
    fn start(server: &TestServer, session: &Session, provider: &ScriptedProvider, extra: &[&str]) -> Ghost {
        Ghost::start_with(server, session, &session.created.reader_token, provider, extra)
    }

    fn start_with(
        server: &TestServer,
        session: &Session,
        token: &str,
        provider: &ScriptedProvider,
        extra: &[&str],
    ) -> Ghost {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("ghost.log");
        let link = format!("{}/join/{}?token={}", server.url, session.id(), token);
        let child = Command::new(env!("CARGO_BIN_EXE_mesh-ghost"))
            .args([
                "--link",
                &link,
                "--provider-url",
                &provider.base_url,
                "--model",
                "scripted",
            ])
            .args(extra)
            .env("MESH_GHOST_API_KEY", KEY)
            .env("MESH_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        Ghost { child, log, _dir: dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Ghost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chats(c: &YClient) -> Vec<(String, String)> {
    c.mesh_messages()
        .into_iter()
        .filter_map(|m| match m {
            ServerMessage::Chat { entry } => Some((entry.author, entry.text)),
            _ => None,
        })
        .collect()
}

async fn wait_chat(c: &YClient, what: &str, pred: impl Fn(&str, &str) -> bool) -> (String, String) {
    c.wait_for(what, |c| chats(c).iter().any(|(a, t)| pred(a, t)))
        .await
        .unwrap_or_else(|e| panic!("{e}; chat so far: {:#?}", chats(c)));
    chats(c).into_iter().find(|(a, t)| pred(a, t)).unwrap()
}

async fn room_with(server: &TestServer) -> (Session, YClient) {
    let session = server.create_session("ghost").await.unwrap();
    let ada = YClient::connect_mesh(&server.ws_url(&session, &session.created.writer_token), "ada")
        .await
        .unwrap();
    ada.wait_synced().await.unwrap();
    (session, ada)
}

async fn ghost_joined(ada: &YClient) {
    ada.wait_mesh("the ghost joins", |m| {
        matches!(m, ServerMessage::ParticipantJoined { participant }
            if participant.name == "ghost (scripted)" && participant.client == "mesh-ghost")
    })
    .await
    .unwrap();
}

fn say(c: &YClient, text: &str) {
    c.send_mesh(&ClientMessage::Chat { text: text.into() });
}

fn no_key_anywhere(clients: &[&YClient], ghost: &Ghost) {
    for c in clients {
        for m in c.mesh_messages() {
            let json = serde_json::to_string(&m).unwrap();
            assert!(!json.contains(KEY), "the key reached a client: {json}");
        }
    }
    assert!(!ghost.log().contains(KEY), "the key is in the ghost's log");
}

#[tokio::test]
async fn a_request_in_chat_is_answered_in_chat_from_the_rooms_files() {
    let server = TestServer::start().unwrap();
    let provider = ScriptedProvider::start(vec![Script::Stream {
        pieces: ["`total` ", "is never ", "initialised ", "before the loop."]
            .map(String::from)
            .to_vec(),
        delay: Duration::from_millis(20),
    }])
    .await
    .unwrap();
    let (session, ada) = room_with(&server).await;
    ada.insert("main.py", 0, "for x in xs:\n    total += x\n");
    let ghost = Ghost::start(&server, &session, &provider, &["--max-tokens", "321"]);
    ghost_joined(&ada).await;

    say(&ada, "@ghost why does main.py fail?");
    wait_chat(&ada, "the request is announced", |a, t| {
        a == "ghost (scripted)" && t == "Request #1 from ada: working on it."
    })
    .await;
    wait_chat(&ada, "the answer", |a, t| {
        a == "ghost (scripted)" && t == "Request #1 from ada:\n`total` is never initialised before the loop."
    })
    .await;

    let got = provider.received();
    assert_eq!(got.len(), 1);
    let head = got[0].head.to_ascii_lowercase();
    assert!(head.starts_with("post /v1/chat/completions "), "{head}");
    assert!(head.contains(&format!("authorization: bearer {}", KEY.to_ascii_lowercase())));
    let body = &got[0].body;
    assert_eq!(body["model"], "scripted");
    assert_eq!(body["stream"], true);
    assert_eq!(body["max_tokens"], 321);
    let system = body["messages"][0]["content"].as_str().unwrap();
    assert!(
        system.contains("=== file main.py ===\nfor x in xs:\n    total += x\n"),
        "{system}"
    );
    assert!(
        system.contains("ada: @ghost why does main.py fail?")
            || body["messages"][1]["content"] == "ada asks: why does main.py fail?"
    );
    assert_eq!(body["messages"][1]["content"], "ada asks: why does main.py fail?");
    // Answering never touched the document.
    assert_eq!(ada.text("main.py").unwrap(), "for x in xs:\n    total += x\n");
    no_key_anywhere(&[&ada], &ghost);
}

#[tokio::test]
async fn a_failing_provider_says_what_failed_in_chat_and_leaves_the_document_untouched() {
    let server = TestServer::start().unwrap();
    let provider = ScriptedProvider::start(vec![
        Script::Status(
            500,
            format!("{{\"error\":{{\"message\":\"model exploded, key {KEY}\"}}}}"),
        ),
        Script::Raw("data: {this is not json\n\n".into()),
        Script::Raw(mesh_testkit::provider::sse_chunk("half an ans")),
        Script::Hang,
    ])
    .await
    .unwrap();
    let (session, ada) = room_with(&server).await;
    ada.insert("a.py", 0, "print('a')\n");
    let ghost = Ghost::start(&server, &session, &provider, &["--timeout-secs", "2"]);
    ghost_joined(&ada).await;

    let expect = [
        (1, "the provider answered HTTP 500"),
        (2, "not a chat-completion chunk"),
        (3, "ended before the answer was complete"),
        (4, "did not finish within 2s"),
    ];
    for (id, why) in expect {
        say(&ada, "@ghost what does a.py print?");
        let (_, text) = wait_chat(&ada, why, |a, t| {
            a == "ghost (scripted)" && t.starts_with(&format!("Request #{id} from ada failed: "))
        })
        .await;
        assert!(text.contains(why), "{text}");
    }
    // A provider that echoes the key does not get it into the room.
    let (_, first) = wait_chat(&ada, "#1", |_, t| t.starts_with("Request #1 from ada failed")).await;
    assert!(first.contains("model exploded, key [redacted]"), "{first}");
    assert_eq!(ada.text("a.py").unwrap(), "print('a')\n");
    no_key_anywhere(&[&ada], &ghost);
}

#[tokio::test]
async fn readers_get_answers_only_writers_cancel_and_a_cancelled_answer_never_arrives() {
    let server = TestServer::start().unwrap();
    let slow = Script::Stream {
        pieces: (0..20).map(|i| format!("part{i} ")).collect(),
        delay: Duration::from_millis(200),
    };
    // The second answer comes after the first would have ended had it not been cancelled,
    // so its arrival proves the first one never will.
    let fast = Script::Stream {
        pieces: vec!["second answer".into()],
        delay: Duration::from_secs(4),
    };
    let provider = ScriptedProvider::start(vec![slow, fast]).await.unwrap();
    let (session, ada) = room_with(&server).await;
    let rob = YClient::connect_mesh(&server.ws_url(&session, &session.created.reader_token), "rob")
        .await
        .unwrap();
    rob.wait_synced().await.unwrap();
    let ghost = Ghost::start(&server, &session, &provider, &[]);
    ghost_joined(&ada).await;

    say(&rob, "@ghost explain what this project does");
    wait_chat(&ada, "the reader's request starts", |_, t| {
        t == "Request #1 from rob: working on it."
    })
    .await;
    say(&ada, "@ghost another one");
    wait_chat(&ada, "one at a time", |_, t| {
        t.contains("ada: I am still working on request #1")
    })
    .await;
    say(&rob, "@ghost cancel");
    wait_chat(&rob, "a reader cannot cancel", |_, t| {
        t == "rob: only writers can cancel a request (you are a reader)."
    })
    .await;
    say(&ada, "@ghost cancel");
    wait_chat(&rob, "a writer cancels", |_, t| t == "Request #1 cancelled by ada.").await;

    say(&ada, "@ghost next question");
    wait_chat(&ada, "the next request is answered", |_, t| {
        t == "Request #2 from ada:\nsecond answer"
    })
    .await;
    assert!(
        !chats(&ada).iter().any(|(_, t)| t.starts_with("Request #1 from rob:\n")),
        "the cancelled answer arrived: {:#?}",
        chats(&ada)
    );
    no_key_anywhere(&[&ada, &rob], &ghost);
}

const CALC: &str = "def add(a, b):\n    return a - b\n\n\ndef main():\n    print(add(2, 3))\n";
const FIXED: &str =
    "def add(a, b):\n    # the ghost fixed this line\n    return a + b\n\n\ndef main():\n    print(add(2, 3))\n";
const FIX: &str = "Sure.\n<<<<<<< SEARCH calc.py\n    return a - b\n=======\n    # the ghost fixed this line\n    return a + b\n>>>>>>> REPLACE\n";
const MARKERS: [&str; 3] = ["<M1>", "<M2>", "<M3>"];

fn utf16_len(s: &str) -> u32 {
    s.encode_utf16().count() as u32
}

fn without_markers(text: &str) -> String {
    MARKERS.iter().fold(text.to_string(), |t, m| t.replace(m, ""))
}

fn ghost_cursor(c: &YClient) -> Option<serde_json::Value> {
    let aw = c.awareness.lock().unwrap();
    let found = aw.iter().find_map(|(_, state)| {
        let v: serde_json::Value = serde_json::from_str(state.data.as_deref()?).ok()?;
        (v["user"]["name"] == "ghost (scripted)" && v.get("cursor").is_some()).then(|| v["cursor"].clone())
    });
    found
}

#[tokio::test]
async fn write_mode_types_token_by_token_keeps_concurrent_typing_and_one_undo_removes_it() {
    let server = TestServer::start().unwrap();
    let pieces: Vec<String> = FIX
        .chars()
        .collect::<Vec<_>>()
        .chunks(3)
        .map(|c| c.iter().collect())
        .collect();
    let provider = ScriptedProvider::start(vec![Script::Stream {
        pieces,
        delay: Duration::from_millis(60),
    }])
    .await
    .unwrap();
    let (session, ada) = room_with(&server).await;
    ada.insert("calc.py", 0, CALC);
    let rob = YClient::connect_mesh(&server.ws_url(&session, &session.created.reader_token), "rob")
        .await
        .unwrap();
    rob.wait_synced().await.unwrap();
    let ghost = Ghost::start_with(&server, &session, &session.created.writer_token, &provider, &[]);
    ghost_joined(&ada).await;

    // A reader cannot make it write: refused before any provider call.
    say(&rob, "@ghost write delete everything");
    wait_chat(&rob, "the reader is refused", |_, t| {
        t.starts_with("rob: readers can ask for explanations only")
    })
    .await;
    assert!(provider.received().is_empty());

    say(&ada, "@ghost write fix add: it returns the wrong sum");
    let mut states: Vec<String> = Vec::new();
    ada.wait_for("the ghost is typing", |c| {
        let t = c.text("calc.py").unwrap();
        if states.last() != Some(&t) {
            states.push(t.clone());
        }
        t.contains("# the gh")
    })
    .await
    .unwrap();
    ada.wait_for("the ghost's cursor in calc.py", |c| {
        ghost_cursor(c).is_some_and(|cur| cur["path"] == "calc.py")
    })
    .await
    .unwrap();
    // Ada types while the ghost types: at the ghost's cursor, in the signature, at the end.
    let now = ada.text("calc.py").unwrap();
    let at_ghost = now.rfind("\n\ndef main").unwrap();
    ada.insert("calc.py", utf16_len(&now[..at_ghost]), MARKERS[0]);
    ada.insert("calc.py", utf16_len("def add("), MARKERS[1]);
    ada.insert("calc.py", ada.len("calc.py"), MARKERS[2]);
    ada.wait_for("the ghost is done", |c| {
        let t = c.text("calc.py").unwrap();
        if states.last() != Some(&t) {
            states.push(t);
        }
        chats(c).iter().any(|(_, t)| t.starts_with("Request #1 from ada: done"))
    })
    .await
    .unwrap();
    let done = ada.text("calc.py").unwrap();
    for m in MARKERS {
        assert_eq!(done.matches(m).count(), 1, "{m} lost or doubled: {done:?}");
    }
    assert_eq!(without_markers(&done), FIXED);
    // Ada typed at the ghost's cursor while it was still typing: her marker sits inside its change.
    let m1 = done.find(MARKERS[0]).unwrap();
    assert!(
        done.find("# the gh").unwrap() < m1 && m1 < done.find("a + b").unwrap(),
        "{done:?}"
    );
    // The change arrived as it was produced, not at the end.
    let partial = states
        .iter()
        .filter(|t| t.contains("# the") && !t.contains("a + b"))
        .count();
    assert!(partial >= 5, "only {partial} partial states seen: {states:#?}");
    // The ghost's cursor is gone once it stops typing.
    ada.wait_for("the cursor cleared", |c| ghost_cursor(c).is_none())
        .await
        .unwrap();

    say(&rob, "@ghost undo");
    wait_chat(&rob, "a reader cannot undo", |_, t| {
        t.starts_with("rob: only writers can undo")
    })
    .await;
    say(&ada, "@ghost undo");
    wait_chat(&ada, "undone", |_, t| {
        t == "Undid the change of request #1 (asked by ada), at ada's request."
    })
    .await;
    ada.wait_for("the whole change is gone", |c| {
        without_markers(&c.text("calc.py").unwrap()) == CALC
    })
    .await
    .unwrap();
    let after = ada.text("calc.py").unwrap();
    for m in MARKERS {
        assert_eq!(after.matches(m).count(), 1, "{m} lost by the undo: {after:?}");
    }
    rob.wait_for("rob sees the same", |c| {
        c.text("calc.py").as_deref() == Some(after.as_str())
    })
    .await
    .unwrap();
    no_key_anywhere(&[&ada, &rob], &ghost);
}

#[tokio::test]
async fn a_write_that_fails_midway_leaves_the_document_as_it_was() {
    let server = TestServer::start().unwrap();
    let half = &FIX[..FIX.find("return a +").unwrap()];
    let provider = ScriptedProvider::start(vec![
        Script::Raw(format!("{}data: {{oops\n\n", mesh_testkit::provider::sse_chunk(half))),
        Script::Stream {
            pieces: vec!["<<<<<<< SEARCH calc.py\n    return a * b\n=======\nx\n>>>>>>> REPLACE\n".into()],
            delay: Duration::ZERO,
        },
    ])
    .await
    .unwrap();
    let (session, ada) = room_with(&server).await;
    ada.insert("calc.py", 0, CALC);
    let _ghost = Ghost::start_with(&server, &session, &session.created.writer_token, &provider, &[]);
    ghost_joined(&ada).await;

    say(&ada, "@ghost write fix add");
    let (_, said) = wait_chat(&ada, "the failure", |_, t| {
        t.starts_with("Request #1 from ada failed: ")
    })
    .await;
    assert!(
        said.contains("not a chat-completion chunk") && said.ends_with("nothing was changed."),
        "{said}"
    );
    ada.wait_for("the partial change is removed", |c| {
        c.text("calc.py").as_deref() == Some(CALC)
    })
    .await
    .unwrap();

    say(&ada, "@ghost write fix add");
    let (_, said) = wait_chat(&ada, "a misquote", |_, t| t.starts_with("Request #2 from ada failed: ")).await;
    assert!(said.contains("the text to replace in calc.py is not there"), "{said}");
    assert_eq!(ada.text("calc.py").unwrap(), CALC);
}

#[tokio::test]
async fn a_suggestion_changes_nothing_until_a_writer_accepts_it() {
    let server = TestServer::start().unwrap();
    let fix = Script::Stream {
        pieces: FIX
            .chars()
            .collect::<Vec<_>>()
            .chunks(7)
            .map(|c| c.iter().collect())
            .collect(),
        delay: Duration::from_millis(5),
    };
    let provider = ScriptedProvider::start(vec![fix.clone(), fix]).await.unwrap();
    let (session, ada) = room_with(&server).await;
    ada.insert("calc.py", 0, CALC);
    let rob = YClient::connect_mesh(&server.ws_url(&session, &session.created.reader_token), "rob")
        .await
        .unwrap();
    rob.wait_synced().await.unwrap();
    let _ghost = Ghost::start_with(&server, &session, &session.created.writer_token, &provider, &[]);
    ghost_joined(&ada).await;

    say(&ada, "@ghost add returns the wrong sum");
    let (_, said) = wait_chat(&ada, "suggestion #1", |_, t| t.starts_with("Suggestion #1 for ada")).await;
    assert!(
        said.contains("@ghost accept 1") && said.contains("    return a + b\n>>>>>>> REPLACE"),
        "{said}"
    );
    // The ghost's updates and its chat travel on one socket in order: had it changed the
    // file, ada would have the change by now.
    assert_eq!(ada.text("calc.py").unwrap(), CALC);
    let system = provider.received()[0].body["messages"][0]["content"].clone();
    assert!(
        system.as_str().unwrap().contains("<<<<<<< SEARCH path/to/file"),
        "{system}"
    );

    say(&rob, "@ghost accept 1");
    wait_chat(&rob, "a reader cannot accept", |_, t| {
        t.starts_with("rob: only writers can accept")
    })
    .await;
    say(&ada, "@ghost reject 1");
    wait_chat(&ada, "rejected", |_, t| {
        t == "Rejected suggestion #1 (ada); nothing was changed."
    })
    .await;
    say(&ada, "@ghost accept 1");
    wait_chat(&ada, "gone", |_, t| t == "ada: there is no suggestion #1 waiting.").await;
    assert_eq!(ada.text("calc.py").unwrap(), CALC);

    say(&ada, "@ghost suggest a fix for add");
    wait_chat(&ada, "suggestion #2", |_, t| t.starts_with("Suggestion #2 for ada")).await;
    assert_eq!(ada.text("calc.py").unwrap(), CALC);
    say(&ada, "@ghost accept 2");
    wait_chat(&rob, "applied", |_, t| {
        t.starts_with("Applied suggestion #2, accepted by ada")
    })
    .await;
    rob.wait_for("rob sees the change", |c| c.text("calc.py").as_deref() == Some(FIXED))
        .await
        .unwrap();
    say(&ada, "@ghost undo");
    rob.wait_for("one undo removes it", |c| c.text("calc.py").as_deref() == Some(CALC))
        .await
        .unwrap();
}

fn latest_state(c: &YClient) -> Option<mesh_protocol::ghost::GhostState> {
    c.mesh_messages().into_iter().rev().find_map(|m| match m {
        ServerMessage::GhostState { state, .. } => Some(state),
        _ => None,
    })
}

#[tokio::test]
async fn typed_requests_carry_the_selection_publish_progress_and_suggestions_and_readers_are_refused() {
    use mesh_protocol::ghost::{GhostCommand, GhostMode, GhostRequestStatus, GhostSelection};
    use mesh_protocol::ErrorCode;

    let server = TestServer::start().unwrap();
    let fix = Script::Stream {
        pieces: FIX
            .chars()
            .collect::<Vec<_>>()
            .chunks(7)
            .map(|c| c.iter().collect())
            .collect(),
        delay: Duration::from_millis(40),
    };
    let provider = ScriptedProvider::start(vec![fix]).await.unwrap();
    let (session, ada) = room_with(&server).await;
    ada.insert("calc.py", 0, CALC);
    let rob = YClient::connect_mesh(&server.ws_url(&session, &session.created.reader_token), "rob")
        .await
        .unwrap();
    rob.wait_synced().await.unwrap();
    let _ghost = Ghost::start_with(&server, &session, &session.created.writer_token, &provider, &[]);
    ghost_joined(&ada).await;

    // A reader cannot ask for a change, nor accept one: the server refuses it.
    rob.send_mesh(&mesh_protocol::Request::new(
        5,
        ClientMessage::Ghost {
            command: GhostCommand::Ask {
                text: "fix add".into(),
                mode: Some(GhostMode::Write),
                selection: None,
            },
        },
    ));
    rob.wait_mesh("the reader's write is refused", |m| {
        matches!(
            m,
            ServerMessage::Error {
                code: ErrorCode::Forbidden,
                responding_to: Some(5),
                ..
            }
        )
    })
    .await
    .unwrap();

    ada.send_mesh(&ClientMessage::Ghost {
        command: GhostCommand::Ask {
            text: "add returns the wrong sum".into(),
            mode: None,
            selection: Some(GhostSelection {
                path: "calc.py".into(),
                start_line: 1,
                end_line: 2,
                text: "def add(a, b):\n    return a - b".into(),
            }),
        },
    });
    // Everyone sees who asked what, the mode filled in by the server.
    rob.wait_mesh("everyone sees the request", |m| {
        matches!(m, ServerMessage::Ghost { name, command: GhostCommand::Ask { mode: Some(GhostMode::Suggest), .. }, .. } if name == "ada")
    })
    .await
    .unwrap();
    // Progress while it streams (the script takes about a second), then the suggestion.
    rob.wait_for("progress", |c| {
        c.mesh_messages().iter().any(|m| matches!(m, ServerMessage::GhostState { state, .. }
            if state.requests.iter().any(|r| r.id == 1 && r.status == GhostRequestStatus::Working && r.received_chars > 0)))
    })
    .await
    .unwrap();
    rob.wait_for("the suggestion is published", |c| {
        latest_state(c).is_some_and(|s| !s.suggestions.is_empty())
    })
    .await
    .unwrap();
    let state = latest_state(&rob).unwrap();
    let s = &state.suggestions[0];
    assert_eq!(
        (s.id, s.asker.as_str(), s.files.clone()),
        (1, "ada", vec!["calc.py".to_string()])
    );
    assert_eq!(s.edits[0].search, "    return a - b\n");
    assert_eq!(
        s.edits[0].replace,
        "    # the ghost fixed this line\n    return a + b\n"
    );
    assert_eq!(state.requests[0].status, GhostRequestStatus::Done);
    let asked = provider.received()[0].body["messages"].to_string();
    assert!(asked.contains("about lines 1-2 of calc.py, selected:"), "{asked}");
    assert_eq!(ada.text("calc.py").unwrap(), CALC, "a suggestion changes nothing");

    rob.send_mesh(&mesh_protocol::Request::new(
        6,
        ClientMessage::Ghost {
            command: GhostCommand::Accept { suggestion: 1 },
        },
    ));
    rob.wait_mesh("the reader's accept is refused", |m| {
        matches!(
            m,
            ServerMessage::Error {
                code: ErrorCode::Forbidden,
                responding_to: Some(6),
                ..
            }
        )
    })
    .await
    .unwrap();
    ada.send_mesh(&ClientMessage::Ghost {
        command: GhostCommand::Accept { suggestion: 1 },
    });
    rob.wait_for("rob sees the change", |c| c.text("calc.py").as_deref() == Some(FIXED))
        .await
        .unwrap();
    rob.wait_for("the suggestion is gone from the state", |c| {
        latest_state(c).is_some_and(|s| s.suggestions.is_empty())
    })
    .await
    .unwrap();
    ada.send_mesh(&ClientMessage::Ghost {
        command: GhostCommand::Undo,
    });
    rob.wait_for("one undo removes it", |c| c.text("calc.py").as_deref() == Some(CALC))
        .await
        .unwrap();

    // A joiner gets the ghost's state from the server at once.
    let late = YClient::connect_mesh(&server.ws_url(&session, &session.created.reader_token), "late")
        .await
        .unwrap();
    late.wait_for("the held state", |c| latest_state(c).is_some())
        .await
        .unwrap();
    assert_eq!(latest_state(&late).unwrap().requests[0].id, 1);
}

/// The chat as the room's shared `chat` array keeps it (what a client that joined late sees).
fn chat_array(c: &YClient) -> Vec<String> {
    use yrs::types::ToJson;
    use yrs::{Array, ReadTxn, Transact};
    let txn = c.doc.transact();
    let Some(chat) = txn.get_array(mesh_protocol::doc::CHAT) else {
        return Vec::new();
    };
    chat.iter(&txn)
        .filter_map(|v| {
            let json = serde_json::to_value(v.to_json(&txn)).ok()?;
            Some(json["text"].as_str()?.to_string())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_mid_write_loses_and_duplicates_nothing_and_the_ghost_comes_back() {
    let mut server = TestServer::start().unwrap();
    // About three seconds of typing, so the restart lands in the middle of it.
    let slow_fix = Script::Stream {
        pieces: FIX
            .chars()
            .collect::<Vec<_>>()
            .chunks(3)
            .map(|c| c.iter().collect())
            .collect(),
        delay: Duration::from_millis(60),
    };
    let provider = ScriptedProvider::start(vec![slow_fix]).await.unwrap();
    let (session, ada) = room_with(&server).await;
    ada.insert("calc.py", 0, CALC);
    let ghost = Ghost::start_with(&server, &session, &session.created.writer_token, &provider, &[]);
    ghost_joined(&ada).await;

    say(&ada, "@ghost write fix add");
    // The ghost has started typing: the quoted line is gone from ada's copy.
    ada.wait_for("the ghost starts typing", |c| {
        c.text("calc.py").is_some_and(|t| !t.contains("return a - b"))
    })
    .await
    .unwrap();
    server.restart().unwrap();

    let bea = YClient::connect_mesh(&server.ws_url(&session, &session.created.writer_token), "bea")
        .await
        .unwrap();
    bea.wait_synced().await.unwrap();
    // Everything the ghost typed arrives once: before the restart, offline, and after.
    bea.wait_for("the whole change, once", |c| {
        c.text("calc.py").as_deref() == Some(FIXED)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: {:?}\nghost log:\n{}", bea.text("calc.py"), ghost.log()));
    // The ghost is back as a participant, with its awareness, and its state republished.
    bea.wait_for("the ghost is back", |c| {
        c.mesh_messages().iter().any(|m| match m {
            ServerMessage::Welcome { participants, .. } => participants.iter().any(|p| p.client == "mesh-ghost"),
            ServerMessage::ParticipantJoined { participant } => participant.client == "mesh-ghost",
            _ => false,
        })
    })
    .await
    .unwrap();
    bea.wait_for("its awareness", |c| {
        let aw = c.awareness.lock().unwrap();
        let back = aw
            .iter()
            .any(|(_, s)| s.data.as_deref().is_some_and(|d| d.contains("ghost (scripted)")));
        back
    })
    .await
    .unwrap();
    bea.wait_for("the request reported done", |c| {
        chat_array(c).iter().any(|t| t.starts_with("Request #1 from ada: done"))
    })
    .await
    .unwrap_or_else(|e| panic!("{e}: {:#?}", chat_array(&bea)));
    assert_eq!(
        chat_array(&bea)
            .iter()
            .filter(|t| t.starts_with("Request #1 from ada: done"))
            .count(),
        1,
        "said once"
    );
    bea.wait_for("the state republished", |c| {
        latest_state(c).is_some_and(|s| {
            s.requests
                .iter()
                .any(|r| r.id == 1 && r.status == mesh_protocol::ghost::GhostRequestStatus::Done)
        })
    })
    .await
    .unwrap();
    let log = ghost.log();
    assert!(
        log.contains("lost the room") && log.contains("back in the room"),
        "the ghost reconnected rather than finishing first: {log}"
    );
    // One undo still removes the whole change, across the reconnect.
    say(&bea, "@ghost undo");
    bea.wait_for("one undo removes it", |c| c.text("calc.py").as_deref() == Some(CALC))
        .await
        .unwrap();
}

const NEW_TEST: &str = "Adding a test.\n<<<<<<< SEARCH tests/test_calc.py\n=======\nfrom calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n>>>>>>> REPLACE\n";
const NEW_TEST_TEXT: &str = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n";

fn stream(text: &str) -> Script {
    Script::Stream {
        pieces: text
            .chars()
            .collect::<Vec<_>>()
            .chunks(5)
            .map(|c| c.iter().collect())
            .collect(),
        delay: Duration::from_millis(5),
    }
}

#[tokio::test]
async fn the_ghost_creates_files_in_suggest_and_write_mode_and_one_undo_removes_them() {
    let server = TestServer::start().unwrap();
    let provider = ScriptedProvider::start(vec![stream(NEW_TEST), stream(NEW_TEST)])
        .await
        .unwrap();
    let (session, ada) = room_with(&server).await;
    ada.insert("calc.py", 0, CALC);
    let _ghost = Ghost::start_with(&server, &session, &session.created.writer_token, &provider, &[]);
    ghost_joined(&ada).await;

    // Suggested: nothing exists until it is accepted.
    say(&ada, "@ghost add a test for add");
    ada.wait_for("the suggestion names the new file", |c| {
        latest_state(c).is_some_and(|s| {
            s.suggestions
                .iter()
                .any(|g| g.files == ["tests/test_calc.py"] && g.edits[0].search.is_empty())
        })
    })
    .await
    .unwrap();
    assert_eq!(ada.text("tests/test_calc.py"), None);
    let system = provider.received()[0].body["messages"][0]["content"].to_string();
    assert!(system.contains("to create a file"), "{system}");
    say(&ada, "@ghost accept 1");
    ada.wait_for("the file is created", |c| {
        c.text("tests/test_calc.py").as_deref() == Some(NEW_TEST_TEXT)
    })
    .await
    .unwrap();
    say(&ada, "@ghost undo");
    ada.wait_for("one undo removes the file", |c| c.text("tests/test_calc.py").is_none())
        .await
        .unwrap();

    // Written: the file appears as the model types it.
    say(&ada, "@ghost write add a test for add");
    ada.wait_for("the file is written", |c| {
        c.text("tests/test_calc.py").as_deref() == Some(NEW_TEST_TEXT)
    })
    .await
    .unwrap();
    wait_chat(&ada, "done", |_, t| t.starts_with("Request #2 from ada: done")).await;
    say(&ada, "@ghost undo");
    ada.wait_for("one undo removes it again", |c| c.text("tests/test_calc.py").is_none())
        .await
        .unwrap();
    assert_eq!(ada.text("calc.py").unwrap(), CALC);
}
