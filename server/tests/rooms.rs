//! Rooms over real sockets: a real `mesh-server` process and real Yjs clients.

use mesh_protocol::codec::encode_yjs;
use mesh_protocol::messages::Role;
use mesh_protocol::{ClientMessage, ErrorCode, ServerMessage, MAX_FRAME_BYTES, MESH_MESSAGE_TAG};
use mesh_testkit::{TestServer, YClient};
use rand::{Rng, SeedableRng};
use yrs::sync::Message;
use yrs::types::ToJson;
use yrs::updates::encoder::Encode;
use yrs::{Array, ReadTxn, StateVector, Transact};

async fn writer(server: &TestServer, session: &mesh_testkit::Session) -> YClient {
    let c = YClient::connect(&server.ws_url(session, &session.created.writer_token))
        .await
        .unwrap();
    c.wait_synced().await.unwrap();
    c
}

#[tokio::test]
async fn clients_converge_on_concurrent_edits() {
    let server = TestServer::start().unwrap();
    let session = server.create_session("converge").await.unwrap();
    let mut clients = Vec::new();
    for _ in 0..4 {
        clients.push(writer(&server, &session).await);
    }
    clients[0].insert("main.rs", 0, "fn main() {}\n");
    clients[1]
        .wait_for("file", |c| c.text("main.rs").is_some())
        .await
        .unwrap();
    for c in &clients {
        c.wait_for("file", |c| c.text("main.rs").is_some()).await.unwrap();
    }
    let seed: u64 = rand::random();
    println!("seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let pieces = ["a", "é", "漢", "🎉", "\n", "xyz"];
    for _round in 0..60 {
        for c in &clients {
            let len = c.len("main.rs");
            let at = rng.random_range(0..=len);
            // Keep inserts on character boundaries: count in chars, convert to UTF-16.
            let text = c.text("main.rs").unwrap();
            let at_utf16 = utf16_boundary(&text, at);
            if rng.random_bool(0.2) && len > 2 {
                let start = utf16_boundary(&text, rng.random_range(0..len));
                let end = utf16_boundary(&text, (start + 2).min(len));
                if end > start {
                    c.remove("main.rs", start, end - start);
                }
            } else {
                c.insert("main.rs", at_utf16, pieces[rng.random_range(0..pieces.len())]);
            }
        }
        tokio::task::yield_now().await;
    }
    let target = |clients: &[YClient]| {
        let texts: Vec<_> = clients.iter().map(|c| c.text("main.rs")).collect();
        texts.windows(2).all(|w| w[0] == w[1])
    };
    for c in &clients {
        c.wait_for("convergence", |_| target(&clients))
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    }
    // A late joiner gets exactly the same text from the server.
    let late = writer(&server, &session).await;
    late.wait_for("late sync", |c| c.text("main.rs") == clients[0].text("main.rs"))
        .await
        .unwrap();
}

/// The nearest UTF-16 offset at or before `at` that does not split a surrogate pair.
fn utf16_boundary(text: &str, at: u32) -> u32 {
    let mut pos = 0u32;
    for ch in text.chars() {
        let next = pos + ch.len_utf16() as u32;
        if next > at {
            return pos;
        }
        pos = next;
    }
    pos
}

#[tokio::test]
async fn readers_cannot_edit() {
    let server = TestServer::start().unwrap();
    let session = server.create_session("roles").await.unwrap();
    let w = writer(&server, &session).await;
    w.insert("a.txt", 0, "original");
    let r = YClient::connect_mesh(&server.ws_url(&session, &session.created.reader_token), "reader")
        .await
        .unwrap();
    r.wait_for("reader sync", |c| c.text("a.txt").as_deref() == Some("original"))
        .await
        .unwrap();
    let welcome = r
        .wait_mesh("welcome", |m| matches!(m, ServerMessage::Welcome { .. }))
        .await
        .unwrap();
    assert!(matches!(welcome, ServerMessage::Welcome { role: Role::Reader, .. }));
    r.insert("a.txt", 0, "HACKED ");
    let err = r
        .wait_mesh("refusal", |m| matches!(m, ServerMessage::Error { .. }))
        .await
        .unwrap();
    assert!(
        matches!(
            err,
            ServerMessage::Error {
                code: ErrorCode::Forbidden,
                ..
            }
        ),
        "{err:?}"
    );
    // The writer keeps editing; the reader's edit never reaches anyone.
    w.insert("a.txt", 8, "!");
    r.wait_for("writer edit", |c| c.text("a.txt").is_some_and(|t| t.ends_with('!')))
        .await
        .unwrap();
    let fresh = writer(&server, &session).await;
    fresh
        .wait_for("fresh", |c| c.text("a.txt").as_deref() == Some("original!"))
        .await
        .unwrap();
    assert_eq!(w.text("a.txt").as_deref(), Some("original!"));
}

#[tokio::test]
async fn bad_frames_are_rejected_while_others_keep_editing() {
    let server = TestServer::start().unwrap();
    let session = server.create_session("bad input").await.unwrap();
    let a = writer(&server, &session).await;
    let b = writer(&server, &session).await;
    let bad = YClient::connect_mesh(&server.ws_url(&session, &session.created.writer_token), "mallory")
        .await
        .unwrap();
    bad.wait_mesh("welcome", |m| matches!(m, ServerMessage::Welcome { .. }))
        .await
        .unwrap();

    a.insert("f.txt", 0, "before ");
    // Garbage, an unknown tag, an unknown mesh message, a broken update, a text frame.
    bad.send_raw(vec![0, 9, 9, 9]);
    bad.send_raw(Message::Custom(42, vec![1]).encode_v1());
    bad.send_raw(Message::Custom(MESH_MESSAGE_TAG, br#"{"type":"rm_rf"}"#.to_vec()).encode_v1());
    bad.send_raw(encode_yjs(&Message::Sync(yrs::sync::SyncMessage::Update(vec![
        1, 200, 200, 200,
    ]))));
    bad.send_mesh(&ClientMessage::Chat {
        text: "x".repeat(100_000),
    });
    bad.send_text("hello?");
    bad.wait_for("six errors", |c| {
        c.mesh_messages()
            .iter()
            .filter(|m| matches!(m, ServerMessage::Error { .. }))
            .count()
            >= 6
    })
    .await
    .unwrap();
    let codes: Vec<ErrorCode> = bad
        .mesh_messages()
        .into_iter()
        .filter_map(|m| match m {
            ServerMessage::Error { code, .. } => Some(code),
            _ => None,
        })
        .collect();
    assert_eq!(
        codes,
        [
            ErrorCode::BadRequest,
            ErrorCode::UnknownMessage,
            ErrorCode::BadRequest,
            ErrorCode::InvalidUpdate,
            ErrorCode::TooLarge,
            ErrorCode::BadRequest
        ]
    );
    // Still connected after a handful of mistakes, and the room works for everyone.
    assert!(bad.closed().is_none());
    b.wait_for("a's edit", |c| c.text("f.txt").as_deref() == Some("before "))
        .await
        .unwrap();
    b.insert("f.txt", 7, "after");
    for c in [&a, &b, &bad] {
        c.wait_for("edits", |c| c.text("f.txt").as_deref() == Some("before after"))
            .await
            .unwrap();
    }

    // An oversized frame ends that connection with 1009, and only that one.
    bad.send_raw(vec![0u8; MAX_FRAME_BYTES + 1]);
    let (code, _) = bad.wait_closed().await.unwrap();
    assert_eq!(code, 1009);
    a.insert("f.txt", 0, ">");
    b.wait_for("edit after the flood", |c| {
        c.text("f.txt").as_deref() == Some(">before after")
    })
    .await
    .unwrap();

    // A client that only sends garbage is cut off after a bounded number of errors.
    let spammer = YClient::connect(&server.ws_url(&session, &session.created.writer_token))
        .await
        .unwrap();
    for _ in 0..40 {
        spammer.send_raw(vec![7, 7, 7]);
    }
    let (code, reason) = spammer.wait_closed().await.unwrap();
    assert_eq!(code, 4400, "{reason}");
    a.insert("f.txt", 0, ">");
    b.wait_for("room still alive", |c| {
        c.text("f.txt").as_deref() == Some(">>before after")
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn chat_history_reaches_joiners_and_is_capped() {
    let server = TestServer::start().unwrap();
    let session = server.create_session("chat").await.unwrap();
    let url = server.ws_url(&session, &session.created.writer_token);
    let ada = YClient::connect_mesh(&url, "ada").await.unwrap();
    let bob = YClient::connect_mesh(&url, "bob").await.unwrap();
    bob.wait_mesh("welcome", |m| matches!(m, ServerMessage::Welcome { .. }))
        .await
        .unwrap();
    for i in 1..=205 {
        ada.send_mesh(&ClientMessage::Chat {
            text: format!("message {i}"),
        });
    }
    bob.wait_for("205 chat events", |c| {
        c.mesh_messages()
            .iter()
            .filter(|m| matches!(m, ServerMessage::Chat { .. }))
            .count()
            == 205
    })
    .await
    .unwrap();
    let Some(ServerMessage::Chat { entry }) = bob
        .mesh_messages()
        .into_iter()
        .rfind(|m| matches!(m, ServerMessage::Chat { .. }))
    else {
        unreachable!()
    };
    assert_eq!((entry.author.as_str(), entry.text.as_str()), ("ada", "message 205"));

    // A joiner (even a stock Yjs client) gets the newest 200 from the document.
    let late = YClient::connect(&url).await.unwrap();
    late.wait_synced().await.unwrap();
    let history: Vec<serde_json::Value> = {
        let txn = late.doc.transact();
        let chat = txn.get_array("chat").expect("chat array");
        chat.iter(&txn)
            .map(|v| serde_json::to_value(v.to_json(&txn)).unwrap())
            .collect()
    };
    assert_eq!(history.len(), 200);
    assert_eq!(history[0]["text"], "message 6");
    assert_eq!(history[199]["text"], "message 205");
    assert_eq!(history[199]["author"], "ada");
}

#[tokio::test]
async fn participants_and_awareness_follow_connections() {
    let server = TestServer::start().unwrap();
    let session = server.create_session("presence").await.unwrap();
    let url = server.ws_url(&session, &session.created.writer_token);
    let ada = YClient::connect_mesh(&url, "ada").await.unwrap();
    ada.wait_mesh("welcome", |m| matches!(m, ServerMessage::Welcome { .. }))
        .await
        .unwrap();
    let bob = YClient::connect_mesh(&url, "bob").await.unwrap();
    let welcome = bob
        .wait_mesh("welcome", |m| matches!(m, ServerMessage::Welcome { .. }))
        .await
        .unwrap();
    let ServerMessage::Welcome {
        participants,
        conn_id: bob_id,
        ..
    } = welcome
    else {
        unreachable!()
    };
    let names: Vec<_> = participants.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["ada", "bob"]);
    ada.wait_mesh(
        "bob joined",
        |m| matches!(m, ServerMessage::ParticipantJoined { participant } if participant.name == "bob"),
    )
    .await
    .unwrap();

    bob.set_awareness(serde_json::json!({"user": {"name": "bob"}, "cursor": {"path": "a", "anchor": 1, "head": 1}}))
        .unwrap();
    let bob_doc_id = bob.doc.client_id();
    ada.wait_for("bob's cursor", |c| {
        c.awareness
            .lock()
            .unwrap()
            .state::<serde_json::Value>(bob_doc_id)
            .is_some()
    })
    .await
    .unwrap();
    bob.close();
    ada.wait_mesh(
        "bob left",
        |m| matches!(m, ServerMessage::ParticipantLeft { conn_id } if *conn_id == bob_id),
    )
    .await
    .unwrap();
    ada.wait_for("bob's cursor gone", |c| {
        c.awareness
            .lock()
            .unwrap()
            .state::<serde_json::Value>(bob_doc_id)
            .is_none()
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn graceful_restart_keeps_every_room() {
    let mut server = TestServer::start().unwrap();
    let mut sessions = Vec::new();
    for i in 0..3 {
        let s = server.create_session(&format!("room {i}")).await.unwrap();
        let c = writer(&server, &s).await;
        c.insert("notes.md", 0, &format!("room {i} says héllo 👋"));
        let check = writer(&server, &s).await;
        let want = format!("room {i} says héllo 👋");
        check
            .wait_for("edit", |c| c.text("notes.md").as_deref() == Some(want.as_str()))
            .await
            .unwrap();
        sessions.push((s, c));
    }
    let code = server.terminate().unwrap();
    assert_eq!(code, Some(0), "SIGTERM should end the server cleanly");
    for (_, c) in &sessions {
        let (close, reason) = c.wait_closed().await.unwrap();
        assert_eq!(close, 1012, "clients are told to reconnect (service restart): {reason}");
    }
    server.restart().unwrap();
    for (i, (s, _)) in sessions.iter().enumerate() {
        let c = writer(&server, s).await;
        assert_eq!(c.text("notes.md"), Some(format!("room {i} says héllo 👋")));
    }
}

#[tokio::test]
async fn kill9_during_a_burst_loses_nothing_that_was_broadcast() {
    let mut server = TestServer::start().unwrap();
    let session = server.create_session("crash").await.unwrap();
    let typist = writer(&server, &session).await;
    let observer = writer(&server, &session).await;
    let n = 3000;
    for i in 0..n {
        typist.insert("burst.txt", i, "x");
        if i % 50 == 0 {
            tokio::task::yield_now().await;
        }
    }
    // Kill while the burst is still being delivered (at least something arrived).
    observer
        .wait_for("some of the burst", |c| {
            c.text("burst.txt").is_some_and(|t| t.len() > 10)
        })
        .await
        .unwrap();
    server.kill9();
    let seen: StateVector = observer.doc.transact().state_vector();
    let seen_len = observer.text("burst.txt").unwrap().len();
    server.restart().unwrap();
    let fresh = writer(&server, &session).await;
    let stored = fresh.doc.transact().state_vector();
    for (client, clock) in seen.iter() {
        assert!(
            stored.get(client) >= *clock,
            "update {client}:{clock} was broadcast but lost"
        );
    }
    assert!(fresh.text("burst.txt").unwrap().len() >= seen_len);
    println!("observer had {seen_len} of {n} characters at the kill; all of them survived");
}

#[tokio::test]
async fn bad_room_ids_and_tokens_get_clear_errors() {
    let server = TestServer::start().unwrap();
    let session = server.create_session("auth").await.unwrap();
    let other = server.create_session("other").await.unwrap();
    let ws = |path: String| format!("ws://127.0.0.1:{}{path}", server.port);
    let status = |url: String| async move {
        match tokio_tungstenite::connect_async(url).await {
            Ok(_) => 101,
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
            Err(e) => panic!("unexpected error {e}"),
        }
    };
    assert_eq!(status(ws("/ws/not-a-room".into())).await, 400);
    // Without a token the upgrade succeeds and the first message must carry it (host.rs
    // tests that a socket that sends anything else is closed with 4401).
    assert_eq!(status(ws(format!("/ws/{}", session.id()))).await, 101);
    assert_eq!(status(ws(format!("/ws/{}?token=garbage", session.id()))).await, 401);
    assert_eq!(
        status(ws(format!("/ws/{}?token={}", session.id(), other.created.writer_token))).await,
        401
    );
    assert_eq!(
        status(ws(format!(
            "/ws/{}?token={}",
            session.id(),
            session.created.reader_token
        )))
        .await,
        101
    );

    // After deletion, connected clients are closed with 4404 and new ones get 404.
    let c = writer(&server, &session).await;
    let resp = server
        .http()
        .delete(format!("{}/api/sessions/{}", server.url, session.id()))
        .bearer_auth(&session.created.writer_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403, "writers may not delete");
    let resp = server
        .http()
        .delete(format!("{}/api/sessions/{}", server.url, session.id()))
        .bearer_auth(&session.created.host_token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(c.wait_closed().await.unwrap().0, 4404);
    assert_eq!(
        status(ws(format!(
            "/ws/{}?token={}",
            session.id(),
            session.created.writer_token
        )))
        .await,
        404
    );
}
