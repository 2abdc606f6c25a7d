//! What the debug tests share: a participant's DAP traffic through the room socket, as
//! `mesh-proxy dap` sends it for an editor (container paths, the participant's own seqs).
// Each test file uses its own subset of these helpers.
#![allow(dead_code)]

use mesh_protocol::{ClientMessage, ServerMessage};
use mesh_testkit::YClient;
use serde_json::{json, Value};

/// A participant's view of the session: its DAP messages, in order.
pub fn daps(c: &YClient) -> Vec<Value> {
    c.mesh_messages()
        .into_iter()
        .filter_map(|m| match m {
            ServerMessage::Dap { message, .. } => Some(message),
            _ => None,
        })
        .collect()
}

/// Sends a request and waits for its response.
pub async fn request(c: &YClient, debug_id: &str, seq: i64, command: &str, args: Value) -> Value {
    c.send_mesh(&ClientMessage::Dap {
        debug_id: debug_id.into(),
        message: json!({"type": "request", "seq": seq, "command": command, "arguments": args}),
    });
    let find = |c: &YClient| {
        daps(c)
            .into_iter()
            .find(|m| m["type"] == "response" && m["request_seq"] == seq)
    };
    c.wait_for(command, |c| find(c).is_some()).await.unwrap();
    find(c).unwrap()
}

/// Waits for the `n`th (1-based) event of this name and returns it.
pub async fn event(c: &YClient, name: &str, n: usize) -> Value {
    let find = |c: &YClient| {
        daps(c)
            .into_iter()
            .filter(|m| m["type"] == "event" && m["event"] == name)
            .nth(n - 1)
    };
    c.wait_for(name, |c| find(c).is_some())
        .await
        .unwrap_or_else(|e| panic!("{e}: {:#?}", c.mesh_messages()));
    find(c).unwrap()
}

pub async fn joined(c: &YClient) -> String {
    let m = c
        .wait_mesh("debug_joined", |m| matches!(m, ServerMessage::DebugJoined { .. }))
        .await
        .unwrap_or_else(|e| panic!("{e}: {:#?}", c.mesh_messages()));
    let ServerMessage::DebugJoined { debug_id, .. } = m else {
        unreachable!()
    };
    debug_id
}

pub async fn top_frame(c: &YClient, id: &str, seq: i64) -> Value {
    let threads = request(c, id, seq, "threads", json!({})).await;
    let thread = threads["body"]["threads"][0]["id"].clone();
    let stack = request(c, id, seq + 1, "stackTrace", json!({"threadId": thread})).await;
    stack["body"]["stackFrames"][0].clone()
}

pub async fn ended(c: &YClient) -> (Option<i64>, Option<String>) {
    let m = c
        .wait_mesh("debug_ended", |m| matches!(m, ServerMessage::DebugEnded { .. }))
        .await
        .unwrap();
    let ServerMessage::DebugEnded { exit_code, error, .. } = m else {
        unreachable!()
    };
    (exit_code, error)
}
