//! Attacks on a real server process, each while two honest clients keep editing the same
//! room: the attacker gets a clear error or is cut off, the server stays up, and every
//! honest edit arrives (round trips printed).

use mesh_protocol::{ErrorCode, ServerMessage};
use mesh_testkit::attacks::{
    awareness_frame, deep_value_update, honest_edits as measured, split_sequence, update_frame, YRS_CRASHERS,
};
use mesh_testkit::{Session, TestServer, YClient};

async fn client(server: &TestServer, session: &Session, token: &str, name: &str) -> YClient {
    let c = YClient::connect_mesh(&server.ws_url(session, token), name)
        .await
        .unwrap();
    c.wait_synced().await.unwrap();
    c
}

/// Honest round trips' p50 and p99 in milliseconds; fails unless every edit arrived once.
async fn honest_edits(a: &YClient, b: &YClient, path: &str, n: usize) -> (f64, f64) {
    let rtts = measured(a, b, path, n).await.unwrap();
    (rtts.quantile(0.5), rtts.quantile(0.99))
}

fn errors(c: &YClient) -> Vec<(ErrorCode, String)> {
    c.mesh_messages()
        .into_iter()
        .filter_map(|m| match m {
            ServerMessage::Error { code, message, .. } => Some((code, message)),
            _ => None,
        })
        .collect()
}

async fn wait_error(c: &YClient, what: &str, pred: impl Fn(&(ErrorCode, String)) -> bool) -> (ErrorCode, String) {
    c.wait_for(what, |c| errors(c).iter().any(&pred)).await.unwrap();
    errors(c).into_iter().find(|e| pred(e)).unwrap()
}

struct Room {
    server: TestServer,
    session: Session,
    a: YClient,
    b: YClient,
}

async fn room(args: &[&str]) -> Room {
    let server = TestServer::start_with(args).unwrap();
    let session = server.create_session("hostile").await.unwrap();
    let a = client(&server, &session, &session.created.writer_token, "ada").await;
    let b = client(&server, &session, &session.created.writer_token, "bob").await;
    a.insert("main.py", 0, "print('hi')\n");
    b.wait_for("the file", |c| c.text("main.py").is_some()).await.unwrap();
    Room { server, session, a, b }
}

#[tokio::test]
async fn a_deeply_nested_value_from_a_reader_is_refused_and_the_server_stays_up() {
    let r = room(&[]).await;
    let (base50, base99) = honest_edits(&r.a, &r.b, "main.py", 40).await;
    let reader = client(&r.server, &r.session, &r.session.created.reader_token, "eve").await;
    // An Any array nested 20,000 levels deep (a 40 KB frame): it once overflowed the stack
    // while decoding, before the role check.
    let update = deep_value_update(20_000);
    reader.send_raw(update_frame(update.clone()));
    let (code, message) = wait_error(&reader, "the reader's refusal", |_| true).await;
    assert_eq!(code, ErrorCode::Forbidden, "{message}");
    // The same update from a writer is refused by the guard, naming the nesting limit.
    let attacker = client(&r.server, &r.session, &r.session.created.writer_token, "mallory").await;
    attacker.send_raw(update_frame(update));
    let (code, message) = wait_error(&attacker, "the writer's refusal", |_| true).await;
    assert_eq!(code, ErrorCode::TooLarge);
    assert!(message.contains("nest"), "{message}");
    let (p50, p99) = honest_edits(&r.a, &r.b, "main.py", 40).await;
    println!("deep value: honest round trip p50 {p50:.2} ms p99 {p99:.2} ms (before: {base50:.2} / {base99:.2})");
}

#[tokio::test]
async fn updates_that_crash_yrs_are_refused_and_every_honest_edit_arrives() {
    let r = room(&[]).await;
    let attacker = client(&r.server, &r.session, &r.session.created.writer_token, "mallory").await;
    let mut sent = 0;
    for sequence in YRS_CRASHERS {
        for update in split_sequence(sequence) {
            attacker.send_raw(update_frame(update));
            sent += 1;
        }
    }
    let (p50, p99) = honest_edits(&r.a, &r.b, "main.py", 60).await;
    // The server is alive and still serves the room to a newcomer, who sees every edit.
    let late = client(&r.server, &r.session, &r.session.created.reader_token, "late").await;
    let want = r.a.text("main.py").unwrap();
    late.wait_for("the honest text", |c| {
        c.text("main.py").as_deref() == Some(want.as_str())
    })
    .await
    .unwrap();
    let refused = errors(&attacker)
        .iter()
        .filter(|(code, _)| *code == ErrorCode::InvalidUpdate)
        .count();
    println!(
        "yrs crashers: {sent} updates sent, {refused} refused as invalid; honest round trip p50 {p50:.2} ms p99 {p99:.2} ms"
    );
    assert!(refused > 0, "some of the corrupted updates must have been refused");
}

#[tokio::test]
async fn a_reader_cannot_touch_anothers_cursor_nor_flood_awareness() {
    let r = room(&[]).await;
    r.a.set_awareness(serde_json::json!({"user": {"name": "ada"}, "cursor": 1}))
        .unwrap();
    let ada_id = r.a.awareness.lock().unwrap().client_id();
    r.b.wait_for("ada's cursor", |c| {
        c.awareness
            .lock()
            .unwrap()
            .iter()
            .any(|(id, s)| id == ada_id && s.data.is_some())
    })
    .await
    .unwrap();
    let eve = client(&r.server, &r.session, &r.session.created.reader_token, "eve").await;
    // Overwrite, then delete, ada's state by using her client id.
    eve.send_raw(awareness_frame(ada_id, r#"{"user":{"name":"eve"},"cursor":99}"#, 1000));
    eve.send_raw(awareness_frame(ada_id, "null", 1001));
    let (code, message) = wait_error(&eve, "the forgery's refusal", |_| true).await;
    assert_eq!(code, ErrorCode::Forbidden, "{message}");
    // A flood of states under her own id: refused past the burst, and nothing grows.
    for i in 0..3000u32 {
        let state = format!(
            r#"{{"user":{{"name":"eve"}},"pad":"{}"}}"#,
            "x".repeat(8000 + (i as usize % 7))
        );
        eve.send_raw(awareness_frame(yrs::block::ClientID::new(4242), &state, i));
    }
    let (_, message) = wait_error(&eve, "the flood's refusal", |(c, _)| *c == ErrorCode::RateLimited).await;
    assert!(message.contains("awareness_rate"), "{message}");
    let (p50, p99) = honest_edits(&r.a, &r.b, "main.py", 40).await;
    // Ada's state as bob sees it is still hers.
    let state =
        r.b.awareness
            .lock()
            .unwrap()
            .iter()
            .find(|(id, _)| *id == ada_id)
            .and_then(|(_, s)| s.data.clone())
            .expect("ada's state is still there");
    assert!(state.contains("ada"), "{state}");
    println!("awareness attacks: honest round trip p50 {p50:.2} ms p99 {p99:.2} ms");
}

#[tokio::test]
async fn a_document_and_its_files_are_bounded_with_errors_that_name_the_limit() {
    let r = room(&["--max-doc-bytes", "200000", "--max-files", "3"]).await;
    let attacker = client(&r.server, &r.session, &r.session.created.writer_token, "mallory").await;
    attacker
        .wait_for("the file", |c| c.text("main.py").is_some())
        .await
        .unwrap();
    attacker.insert("main.py", 0, &"x".repeat(300_000));
    let (code, message) = wait_error(&attacker, "the size refusal", |_| true).await;
    assert_eq!(code, ErrorCode::TooLarge);
    assert!(message.contains("max_doc_bytes"), "{message}");
    // Two more files fit, the fourth does not.
    let files = client(&r.server, &r.session, &r.session.created.writer_token, "filer").await;
    for (i, name) in ["a.py", "b.py", "c.py"].iter().enumerate() {
        files.insert(name, 0, "pass\n");
        if i < 2 {
            r.a.wait_for("a new file", |c| c.text(name).is_some()).await.unwrap();
        }
    }
    let (code, message) = wait_error(&files, "the file-count refusal", |_| true).await;
    assert_eq!(code, ErrorCode::TooLarge);
    assert!(message.contains("max_files"), "{message}");
    let (p50, p99) = honest_edits(&r.a, &r.b, "main.py", 40).await;
    println!("document limits: honest round trip p50 {p50:.2} ms p99 {p99:.2} ms");
    assert!(r.a.text("c.py").is_none(), "the refused file never reached anyone");
}
