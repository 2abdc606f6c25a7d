//! `room`: frames from clients through the room's real path. Each record of the input is one
//! WebSocket binary frame: its first byte says who sends it (a writer, a reader or the host),
//! the rest is the frame. Each is decoded by `mesh_protocol::decode_frame` as the socket
//! does, and every decoded message goes to `RoomCore::handle`, as the room actor does; a
//! frame that fails to decode is refused as the actor refuses it. Then the room is compacted
//! and reloaded, as the store does after a restart, and everyone leaves.
//!
//! Invariant checked beyond "no crash": a snapshot the room takes always loads again.
//!
//! `room_convergence` drives the same path and also checks that the snapshot loads with the
//! *same files* as the live room. It is known to fail: a writer can craft an item whose
//! origin and right origin contradict each other (no crash, the update guard lets it pass),
//! and the text then depends on the order in which a replica integrates it, so a replica
//! that loads the snapshot shows another text than one that saw the updates live. It runs
//! in the long runs and keeps its found cases, not in the test command's short run.

use mesh_protocol::codec::Frame;
use mesh_protocol::messages::Role;
use mesh_protocol::{decode_frame, Request};
use mesh_server::room::core::{ConnId, Effects, RoomCore};
use yrs::sync::{Message, SyncMessage};

use super::{Features, Shape, Target};
use crate::framing::records;

/// The target.
pub const TARGET: Target = Target {
    name: "room",
    about: "y-sync, awareness and mesh frames from a writer, a reader and the host through decode_frame and RoomCore",
    run,
    shape: Shape::Sequence,
    dictionary: &[
        &[0, 0],
        &[0, 1],
        &[0, 2],
        &[1],
        &[3],
        &[100],
        &[0x7f],
        &[0x80, 0x01],
        &[0xff, 0xff, 0xff, 0xff, 0x0f],
        b"{\"user\":{\"name\":\"a\"}}",
        b"null",
        b"files",
        b"main.py",
        b"chat",
    ],
    // Frames of real sessions are small; a few KiB leaves room for growth by mutation while
    // keeping a run fast. The frame limit itself (16 MiB) is the socket's, not the core's.
    max_len: 16 * 1024,
};

/// The same path, also checking that replicas converge (see the module doc).
pub const CONVERGENCE: Target = Target {
    name: "room_convergence",
    about: "as room, and the snapshot must load with the same files as the live room (known to fail: crafted origins)",
    run: run_converging,
    ..TARGET
};

/// Who may send a record: its first byte, modulo the number of connections.
const SENDERS: [(ConnId, Role); 3] = [(1, Role::Writer), (2, Role::Reader), (3, Role::Host)];

fn run(input: &[u8], fx: &mut Features) {
    drive(input, fx, false);
}

fn run_converging(input: &[u8], fx: &mut Features) {
    drive(input, fx, true);
}

fn drive(input: &[u8], fx: &mut Features, check_convergence: bool) {
    let (mut core, _) = RoomCore::load(None, &[]);
    for (conn, role) in SENDERS {
        core.join_as(conn, role, 0);
    }
    let mut persisted: Vec<Vec<u8>> = Vec::new();
    for (i, record) in records(input).into_iter().enumerate() {
        let Some((&who, frame)) = record.split_first() else {
            continue;
        };
        let (conn, role) = SENDERS[usize::from(who) % SENDERS.len()];
        match decode_frame::<Request>(frame) {
            Ok(messages) => {
                for message in messages {
                    fx.hit(&format!("{role:?}:{}", kind(&message)));
                    let effects = core.handle(conn, message, i as u64);
                    observe(&effects, fx);
                    persisted.extend(effects.persist);
                }
            }
            Err(e) => {
                fx.hit(&format!("decode:{:?}", e.code()));
                core.refuse(conn, e.code(), e.to_string());
            }
        }
    }
    fx.count("persisted", persisted.len());
    let snapshot = core.snapshot();
    if !snapshot.pending.is_empty() {
        fx.hit("snapshot:waiting-for-dependency");
    }
    let (reloaded, bad) = RoomCore::load(Some(&snapshot.state), &snapshot.pending);
    assert_eq!(bad, 0, "a snapshot the room took does not load again");
    if check_convergence {
        let mut before = core.file_texts();
        let mut after = reloaded.file_texts();
        before.sort();
        after.sort();
        assert_eq!(before, after, "a snapshot the room took loads with other files");
    }
    // A restart before compaction replays the log of accepted updates.
    let (_, bad) = RoomCore::load(None, &persisted);
    fx.count("reload-bad", bad);
    for (conn, _) in SENDERS {
        core.leave(conn, 0);
    }
}

fn kind(frame: &Frame<Request>) -> &'static str {
    match frame {
        Frame::Yjs(Message::Sync(SyncMessage::SyncStep1(_))) => "sync1",
        Frame::Yjs(Message::Sync(SyncMessage::SyncStep2(_))) => "sync2",
        Frame::Yjs(Message::Sync(SyncMessage::Update(_))) => "update",
        Frame::Yjs(Message::Awareness(_)) => "awareness",
        Frame::Yjs(Message::AwarenessQuery) => "awareness-query",
        Frame::Yjs(Message::Auth(_)) => "auth",
        Frame::Yjs(Message::Custom(..)) => "custom",
        Frame::Mesh(_) => "mesh",
    }
}

fn observe(effects: &Effects, fx: &mut Features) {
    fx.count("send", effects.send.len());
    fx.count("persist", effects.persist.len());
    fx.count("close", effects.close.len());
    fx.count("runs", effects.runs.len());
    fx.count("debug", effects.debug.len());
}
