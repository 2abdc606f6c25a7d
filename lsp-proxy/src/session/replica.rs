//! The room's replica: its `Doc`, awareness and connection state, and what the room's
//! messages do to them.

use std::collections::{BTreeMap, HashMap};

use mesh_protocol::codec::{encode_mesh, encode_yjs, Frame};
use mesh_protocol::messages::Role;
use mesh_protocol::{doc as shape, ClientMessage, ErrorCode, ServerMessage, PROTOCOL_VERSION};
use tokio::sync::oneshot;
use yrs::sync::{Awareness, Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, Map, MapRef, ReadTxn, Text, TextPrelim, TextRef, Transact, Update};

use super::*;
use crate::link::RoomTarget;
use crate::lsp_ext::*;
use crate::room::{Outgoing, RoomConn, RoomEvent};
use crate::workspace;

/// Origin of transactions that apply what the server sent (never sent back).
pub(super) const REMOTE: &str = "remote";

/// The most bytes of file text put into one transaction while uploading a folder; keeps
/// each update frame well under the server's frame limit.
pub(super) const UPLOAD_CHUNK_BYTES: usize = 2 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ConnState {
    Connecting,
    Connected,
    Offline(String),
}

pub(super) struct Room {
    pub(super) target: RoomTarget,
    pub(super) read_link: Option<String>,
    pub(super) doc: Doc,
    pub(super) awareness: Awareness,
    pub(super) conn: RoomConn,
    pub(super) state: ConnState,
    pub(super) synced: bool,
    pub(super) conn_id: Option<u64>,
    pub(super) role: Option<Role>,
    pub(super) participants: BTreeMap<u64, mesh_protocol::messages::Participant>,
    /// Replies waiting for the first sync (a join).
    pub(super) on_synced: Vec<oneshot::Sender<Result<JoinResult, String>>>,
    /// A share's reply, sent when the server confirms it has the upload.
    pub(super) share_ack: Option<(ShareResult, ShareReply)>,
    /// Files to upload once connected (a share), and the reply to send then.
    pub(super) pending_share: Option<PendingShare>,
    /// The room's runs as this proxy sees them.
    pub(super) runs: Runs,
}

/// The name to show for connection `by`: who started a run or a debug session. Connection 0
/// is the REST API; someone missing from the list has left since.
pub(super) fn participant_name(room: &Room, by: u64) -> String {
    match room.participants.get(&by) {
        Some(p) => p.name.clone(),
        None if by == 0 => "the REST API".into(),
        None => "someone who left".into(),
    }
}

impl Session {
    pub(super) fn can_write(&self) -> bool {
        self.room
            .as_ref()
            .is_some_and(|r| r.role.is_none_or(|role| role.can_write()))
    }

    pub(super) fn text_ref(&self, path: &str) -> Option<TextRef> {
        let room = self.room.as_ref()?;
        let txn = room.doc.transact();
        match txn.get_map(shape::FILES)?.get(&txn, path) {
            Some(yrs::Out::YText(t)) => Some(t),
            _ => None,
        }
    }

    pub(super) fn room_text(&self, path: &str) -> Option<String> {
        let room = self.room.as_ref()?;
        let t = self.text_ref(path)?;
        let txn = room.doc.transact();
        Some(t.get_string(&txn))
    }

    pub(super) fn leave(&mut self) {
        self.abandon_runs("you left the room");
        if let Some(room) = self.room.take() {
            drop(room);
            for d in self.docs.values_mut() {
                d.last_cursors = None;
            }
            let uris: Vec<String> = self.docs.keys().cloned().collect();
            for uri in uris {
                self.notify::<CursorsNotification>(CursorsParams {
                    uri,
                    cursors: Vec::new(),
                });
            }
            if let Some(root) = &self.root {
                let _ = crate::config::forget_session(root);
            }
        }
        self.following = None;
        self.share_link = None;
        self.disk_sync = false;
        self.watcher = None;
        self.disk.clear();
        self.conflicts.clear();
    }
    pub(super) fn on_room(&mut self, ev: RoomEvent) {
        let Some(room) = self.room.as_mut() else { return };
        match ev {
            RoomEvent::Connected => {
                room.state = ConnState::Connected;
                let hello = ClientMessage::Hello {
                    version: PROTOCOL_VERSION,
                    name: self.identity.name.clone(),
                    color: self.identity.color.clone(),
                    client: Some(self.identity.client.clone()),
                    doc_client_id: Some(room.doc.client_id().get()),
                    companion: false,
                };
                let _ = room.conn.tx.send(Outgoing::Frame(encode_mesh(&hello)));
                let sv = room.doc.transact().state_vector();
                let _ = room
                    .conn
                    .tx
                    .send(Outgoing::Frame(encode_yjs(&Message::Sync(SyncMessage::SyncStep1(sv)))));
                self.publish_awareness();
            }
            RoomEvent::Disconnected { reason } => {
                if room.state != ConnState::Offline(reason.clone()) {
                    tracing::warn!(%reason, "room connection lost; edits continue locally and merge on reconnect");
                }
                room.state = ConnState::Offline(reason);
                room.participants.clear();
                self.abandon_runs("the connection to the room was lost");
            }
            RoomEvent::Fatal(reason) => {
                tracing::error!(%reason, "leaving the room");
                for reply in room.on_synced.drain(..) {
                    let _ = reply.send(Err(reason.clone()));
                }
                self.tell("error", reason);
                self.leave();
            }
            RoomEvent::Frames(frames) => {
                for f in frames {
                    self.on_frame(f);
                }
            }
        }
    }

    pub(super) fn on_frame(&mut self, frame: Frame<ServerMessage>) {
        let Some(room) = self.room.as_mut() else { return };
        match frame {
            Frame::Yjs(Message::Sync(SyncMessage::SyncStep1(sv))) => {
                let diff = room.doc.transact().encode_state_as_update_v1(&sv);
                let _ = room
                    .conn
                    .tx
                    .send(Outgoing::Frame(encode_yjs(&Message::Sync(SyncMessage::SyncStep2(
                        diff,
                    )))));
            }
            Frame::Yjs(Message::Sync(SyncMessage::SyncStep2(u))) => {
                apply_remote(&room.doc, &u);
                if !room.synced {
                    room.synced = true;
                    self.on_first_sync();
                } else if let Some((result, reply)) = room.share_ack.take() {
                    let _ = reply.send(Ok(result));
                }
            }
            Frame::Yjs(Message::Sync(SyncMessage::Update(u))) => apply_remote(&room.doc, &u),
            Frame::Yjs(Message::Awareness(update)) => {
                let _ = room.awareness.apply_update(update);
                self.cursors_dirty = true;
            }
            Frame::Yjs(Message::Auth(Some(reason))) => self.tell("warning", reason),
            Frame::Yjs(_) => {}
            Frame::Mesh(msg) => self.on_mesh(msg),
        }
    }

    pub(super) fn on_first_sync(&mut self) {
        if let Some((files, result, reply)) = self.room.as_mut().and_then(|r| r.pending_share.take()) {
            // Open buffers hold the editor's truth, which may be ahead of the disk.
            let open: HashMap<String, String> = self
                .docs
                .values()
                .filter_map(|d| Some((d.path.clone()?, d.sync.shadow().text())))
                .collect();
            let seen: std::collections::HashSet<String> = files.iter().map(|(p, _)| p.clone()).collect();
            let mut merged: Vec<(String, String)> = files
                .into_iter()
                .map(|(path, text)| {
                    let text = open.get(&path).cloned().unwrap_or(text);
                    (path, text)
                })
                .collect();
            merged.extend(
                open.iter()
                    .filter(|(p, _)| !seen.contains(*p))
                    .map(|(p, t)| (p.clone(), t.clone())),
            );
            if let Some(room) = self.room.as_mut() {
                upload(&room.doc, merged);
                // The share is done when the server has the files: it answers a sync step 1
                // only after everything sent before it is stored.
                let sv = room.doc.transact().state_vector();
                let _ = room
                    .conn
                    .tx
                    .send(Outgoing::Frame(encode_yjs(&Message::Sync(SyncMessage::SyncStep1(sv)))));
                room.share_ack = Some((result, reply));
            }
        }
        let Some(room) = self.room.as_mut() else { return };
        let replies: Vec<_> = room.on_synced.drain(..).collect();
        let files = room_files(&room.doc);
        let mut conflicts = Vec::new();
        let mut conflicts_for_disk = Vec::new();
        if !replies.is_empty() {
            // A join: write the room's files into the folder, never over different local ones.
            if let Some(root) = &self.root {
                for (path, text) in &files {
                    let Ok(abs) = workspace::safe_join(root, path) else {
                        tracing::warn!(%path, "skipped a file with an unsafe path");
                        continue;
                    };
                    match std::fs::read(&abs) {
                        Ok(existing) if existing == text.as_bytes() => {}
                        Ok(_) => conflicts.push(path.clone()),
                        Err(_) => {
                            if let Err(e) = workspace::write_file(&abs, text) {
                                tracing::warn!(%path, error = %e, "cannot write");
                            }
                        }
                    }
                }
                let _ = crate::config::save_session(crate::config::SessionRecord {
                    dir: root.clone(),
                    link: room.target.link(),
                    read_link: room.read_link.clone(),
                    name: String::new(),
                });
            }
            conflicts_for_disk = conflicts.clone();
            let result = JoinResult {
                room: room.target.room.to_string(),
                files: files.len(),
                conflicts,
            };
            for reply in replies {
                let _ = reply.send(Ok(result.clone()));
            }
        }
        let uris: Vec<String> = self.docs.keys().cloned().collect();
        for uri in uris {
            self.attach(&uri);
        }
        self.conflicts.extend(conflicts_for_disk);
        self.start_disk_sync();
    }

    pub(super) fn on_mesh(&mut self, msg: ServerMessage) {
        let Some(room) = self.room.as_mut() else { return };
        match msg {
            ServerMessage::Welcome {
                conn_id,
                role,
                participants,
                ..
            } => {
                room.conn_id = Some(conn_id);
                room.role = Some(role);
                room.participants = participants.into_iter().map(|p| (p.conn_id, p)).collect();
            }
            ServerMessage::ParticipantJoined { participant } => {
                room.participants.insert(participant.conn_id, participant);
            }
            ServerMessage::ParticipantLeft { conn_id } => {
                room.participants.remove(&conn_id);
                if self.following == Some(conn_id) {
                    self.following = None;
                    self.notify::<FollowStoppedNotification>(FollowStopped {
                        reason: "they left the room".into(),
                    });
                }
            }
            ServerMessage::Participants { participants } => {
                room.participants = participants.into_iter().map(|p| (p.conn_id, p)).collect();
            }
            ServerMessage::Chat { entry } => {
                let entry = ChatEntry {
                    id: entry.id,
                    author: entry.author,
                    conn_id: entry.conn_id,
                    text: entry.text,
                    ts: entry.ts,
                };
                self.notify::<ChatMessageNotification>(ChatMessageParams { entry });
            }
            ServerMessage::Error { code, message } => {
                tracing::warn!(?code, %message, "the server refused something");
                let answers_run = matches!(
                    code,
                    ErrorCode::BadRequest
                        | ErrorCode::Forbidden
                        | ErrorCode::NotFound
                        | ErrorCode::RateLimited
                        | ErrorCode::Unavailable
                );
                if let Some(pending) = room.runs.pending.take_if(|_| answers_run) {
                    // While a run request waits, a refusal of the kinds a run gets is its answer.
                    let _ = pending
                        .reply
                        .send(Err(format!("the server refused the run: {message}")));
                } else {
                    self.tell("warning", format!("server: {message}"));
                }
            }
            ServerMessage::Pong { .. } => {}
            ServerMessage::RunStarted {
                run_id,
                path,
                language,
                by,
            } => self.on_run_started(run_id, path, language, by),
            ServerMessage::RunQueued {
                run_id,
                path,
                language,
                by,
                position,
                limit,
                debug,
            } => self.on_run_queued(run_id, path, language, by, position, limit, debug),
            ServerMessage::RunOutput { run_id, stream, data } => {
                if room.runs.active.contains_key(&run_id) {
                    self.notify::<RunOutputNotification>(RunOutputParams { run_id, stream, data });
                }
            }
            ServerMessage::RunExited {
                run_id,
                stage,
                code,
                duration_ms,
                limit,
                error,
            } => {
                if room.runs.active.remove(&run_id).is_some() {
                    self.notify::<RunExitedNotification>(RunExitedParams {
                        run_id,
                        stage,
                        code,
                        duration_ms,
                        limit,
                        error,
                    });
                }
            }
            ServerMessage::DebugStarted {
                debug_id,
                path,
                language,
                by,
            } => self.on_debug_started(debug_id, path, language, by),
            ServerMessage::DebugBreakpoints { debug_id, path, lines } => {
                let uri = self.local_uri(&path);
                self.notify::<DebugBreakpointsNotification>(DebugBreakpointsParams {
                    debug_id,
                    path,
                    uri,
                    lines,
                });
            }
            ServerMessage::DebugEnded {
                debug_id,
                exit_code,
                error,
            } => self.notify::<DebugEndedNotification>(DebugEndedParams {
                debug_id,
                exit_code,
                error,
            }),
            // Debug sessions themselves are the business of `mesh-proxy dap`, which has its own
            // connection; this one only tells the editor that a session started (so it can offer
            // to join), where the room's breakpoints are (so every editor shows them) and when
            // it ended.
            ServerMessage::DebugJoined { .. } | ServerMessage::Dap { .. } => {}
        }
    }

    pub(super) fn chat_history(&self) -> Vec<ChatEntry> {
        let Some(room) = &self.room else { return Vec::new() };
        let txn = room.doc.transact();
        let Some(chat) = txn.get_array(shape::CHAT) else {
            return Vec::new();
        };
        yrs::Array::iter(&chat, &txn)
            .filter_map(|v| {
                let json = serde_json::to_value(yrs::types::ToJson::to_json(&v, &txn)).ok()?;
                Some(ChatEntry {
                    id: json["id"].as_str()?.to_string(),
                    author: json["author"].as_str()?.to_string(),
                    conn_id: json["conn_id"].as_f64()? as u64,
                    text: json["text"].as_str()?.to_string(),
                    ts: json["ts"].as_f64()? as u64,
                })
            })
            .collect()
    }

    // ----- presence -----------------------------------------------------------------------

    pub(super) fn status(&self) -> Status {
        let Some(room) = &self.room else {
            return Status {
                state: "idle".into(),
                ..Default::default()
            };
        };
        let state = match &room.state {
            ConnState::Connecting => "connecting",
            ConnState::Connected if room.synced => "connected",
            ConnState::Connected => "connecting",
            ConnState::Offline(_) => "offline",
        };
        let participants = room
            .participants
            .values()
            // A companion (a debug adapter's connection) is its person's second one.
            .filter(|p| !p.companion)
            .map(|p| Participant {
                conn_id: p.conn_id,
                name: p.name.clone(),
                color: p.color.clone(),
                role: format!("{:?}", p.role).to_lowercase(),
                client: p.client.clone(),
                you: Some(p.conn_id) == room.conn_id,
            })
            .collect();
        Status {
            state: state.into(),
            room: Some(room.target.room.to_string()),
            link: Some(self.share_link.clone().unwrap_or_else(|| room.target.link())),
            read_link: room.read_link.clone(),
            role: room.role.map(|r| format!("{r:?}").to_lowercase()),
            server: Some(room.target.server.clone()),
            you: room.conn_id,
            participants,
        }
    }
}

/// Applies a local change to a file of the room (one transaction: one update goes out).
pub(super) fn apply_ops(doc: &Doc, path: &str, ops: Vec<crate::sync::RoomOp>) {
    let files = doc.get_or_insert_map(shape::FILES);
    let mut txn = doc.transact_mut();
    if let Some(yrs::Out::YText(t)) = files.get(&txn, path) {
        for op in ops {
            if op.delete_utf16 > 0 {
                t.remove_range(&mut txn, op.start_utf16, op.delete_utf16);
            }
            if !op.insert.is_empty() {
                t.insert(&mut txn, op.start_utf16, &op.insert);
            }
        }
    }
}

pub(super) fn apply_remote(doc: &Doc, update: &[u8]) {
    match Update::decode_v1(update) {
        Ok(u) => {
            let mut txn = doc.transact_mut_with(REMOTE);
            if let Err(e) = txn.apply_update(u) {
                tracing::error!(error = %e, "an update from the server does not apply");
            }
        }
        Err(e) => tracing::error!(error = %e, "an update from the server does not decode"),
    }
}

/// The room's files as (path, text), sorted.
pub fn room_files(doc: &Doc) -> Vec<(String, String)> {
    let txn = doc.transact();
    let Some(files) = txn.get_map(shape::FILES) else {
        return Vec::new();
    };
    let mut out: Vec<(String, String)> = files
        .iter(&txn)
        .filter_map(|(k, v)| match v {
            yrs::Out::YText(t) => Some((k.to_string(), t.get_string(&txn))),
            _ => None,
        })
        .collect();
    out.sort();
    out
}

/// Puts files into the room's document, a few megabytes per transaction so each update
/// frame stays small.
pub fn upload(doc: &Doc, files: impl IntoIterator<Item = (String, String)>) {
    let map: MapRef = doc.get_or_insert_map(shape::FILES);
    let mut txn = doc.transact_mut();
    let mut bytes = 0usize;
    for (path, text) in files {
        if bytes > 0 && bytes + text.len() > UPLOAD_CHUNK_BYTES {
            drop(txn);
            txn = doc.transact_mut();
            bytes = 0;
        }
        bytes += text.len();
        map.insert(&mut txn, path.as_str(), TextPrelim::new(text.as_str()));
    }
}
