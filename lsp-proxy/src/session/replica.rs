//! The room's replica: its `Doc`, awareness and connection state, and what the room's
//! messages do to them. The `Doc`'s own observer sends every local transaction to the room,
//! so applying an [`Effect`](super::Effect)'s room operation here is all it takes to share it.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use mesh_protocol::awareness::PresenceState;
use mesh_protocol::codec::{encode_mesh, encode_yjs, Frame};
use mesh_protocol::messages::{Participant as RoomParticipant, Role};
use mesh_protocol::rest::{CreateSession, CreatedSession};
use mesh_protocol::{doc as shape, ClientMessage, ServerMessage, PROTOCOL_VERSION};
use tokio::sync::oneshot;
use yrs::sync::{Awareness, Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, Map, MapRef, Origin, ReadTxn, Text, TextPrelim, Transact, Update};

use super::outbox::Outbox;
use super::runs::{self, Starter};
use super::seats::{Person, SeatEvent, Seats};
use super::{notify, tell, Effect, PendingShare, RoomRead, Session, ShareReply, Standing};
use crate::link::RoomTarget;
use crate::lsp_ext::*;
use crate::room::{Outgoing, RoomConn, RoomEvent};
use crate::sync::{Delta, RoomOp, RoomTextChange};

/// Origin of transactions that apply what the server sent (never sent back).
const REMOTE: &str = "remote";

/// Origin prefix of transactions that carry an open document's local edits; the document's
/// URI follows. The document already counted its own edits, so they are not fed back to it.
const EDITOR_ORIGIN: &str = "editor:";

/// The most bytes of file text put into one transaction while uploading a folder; keeps
/// each update frame well under the server's frame limit (16 MiB), whatever the size of a
/// file: a larger file goes up in several transactions.
const UPLOAD_CHUNK_BYTES: usize = 2 * 1024 * 1024;

/// The largest sync step 2 the proxy sends as one message: half the server's frame limit
/// (`MAX_FRAME_BYTES`, 16 MiB), leaving room for the framing and for a server built with a
/// smaller one; larger answers go as the updates they were made of (see the `outbox`).
const MAX_SYNC_STEP2_BYTES: usize = mesh_protocol::MAX_FRAME_BYTES / 2;

/// Room paths changed by remote updates since the disk and the editors were last brought up
/// to date; filled by the `Doc`'s observer.
pub(super) type Dirty = Arc<Mutex<HashSet<String>>>;

/// A change to a room file's text: the path, the URI of the open document whose edit it was
/// (if any), and the change itself.
pub(super) type TextChange = (String, Option<String>, RoomTextChange);

/// Every change to the room's file texts since the session last handed them to the open
/// documents, in order; filled by the `Doc`'s observer.
pub(super) type TextChanges = Arc<Mutex<Vec<TextChange>>>;

/// The state of the room connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ConnState {
    /// Not connected yet.
    Connecting,
    /// Connected (the first sync may still be under way).
    Connected,
    /// Lost, for this reason; reconnecting.
    Offline(String),
}

/// The room this proxy is in.
pub(super) struct Room {
    pub(super) target: RoomTarget,
    pub(super) read_link: Option<String>,
    pub(super) doc: Doc,
    pub(super) awareness: Awareness,
    pub(super) conn: RoomConn,
    pub(super) state: ConnState,
    /// Whether the first sync is done.
    pub(super) synced: bool,
    /// The seat given before the first sync: kept in the folder only once the join is
    /// accepted (a join refused by the folder's limits writes nothing there).
    seat_to_keep: Option<crate::mesh_dir::Seat>,
    pub(super) conn_id: Option<u64>,
    pub(super) role: Option<Role>,
    pub(super) participants: BTreeMap<u64, RoomParticipant>,
    /// Replies waiting for the first sync (a join).
    pub(super) on_synced: Vec<oneshot::Sender<Result<JoinResult, String>>>,
    /// A share's reply, sent when the server confirms it has the upload.
    pub(super) share_ack: Option<(ShareResult, ShareReply)>,
    /// `share` again in a folder that rejoins the room it shared: answered after the first
    /// sync's merge.
    pub(super) share_again: Vec<(ShareResult, ShareReply)>,
    /// Files to upload once connected (a share), and the reply to send then.
    pub(super) pending_share: Option<PendingShare>,
    /// Our updates the server has not confirmed, resent in pieces after a reconnect.
    outbox: Arc<Mutex<Outbox>>,
    /// Our seat, the lobby, join requests and followers.
    pub(super) seats: Seats,
    /// The first sync brings every open buffer to the room's text instead of merging (the
    /// replica was built again after we became a reader).
    pub(super) follow_room: bool,
}

/// The room as the sans-IO parts read it; `None` when not in a room.
pub(super) struct View<'a>(pub(super) Option<&'a Room>);

impl RoomRead for View<'_> {
    fn synced(&self) -> bool {
        self.0.is_some_and(|r| r.synced)
    }

    fn writable(&self) -> bool {
        self.0.is_some_and(|r| r.role.is_none_or(|role| role.can_write()))
    }

    fn text(&self, path: &str) -> Option<String> {
        let room = self.0?;
        let txn = room.doc.transact();
        match txn.get_map(shape::FILES)?.get(&txn, path) {
            Some(yrs::Out::YText(t)) => Some(t.get_string(&txn)),
            _ => None,
        }
    }
}

impl Room {
    /// A fresh replica over connection `conn`. Local transactions go to the room; paths that
    /// remote updates change are collected in `dirty`, and every change to a file's text (its
    /// delta, for the open documents' exact maps) in `changes`.
    pub(super) fn new(
        target: RoomTarget,
        read_link: Option<String>,
        conn: RoomConn,
        dirty: Dirty,
        changes: TextChanges,
    ) -> Self {
        let doc = shape::new_doc();
        let tx = conn.tx.clone();
        let outbox: Arc<Mutex<Outbox>> = Default::default();
        let unconfirmed = outbox.clone();
        let me = doc.client_id();
        doc.observe_update_v1("mesh-send", move |txn: &yrs::TransactionMut, e: &yrs::UpdateEvent| {
            let remote = txn.origin().is_some_and(|o| *o == Origin::from(REMOTE));
            if !remote {
                let end_clock = txn.after_state().get(&me);
                unconfirmed
                    .lock()
                    .expect("not poisoned")
                    .record(e.update.clone(), end_clock);
                let _ = tx.send(Outgoing::Frame(encode_yjs(&Message::Sync(SyncMessage::Update(
                    e.update.clone(),
                )))));
            }
        })
        .expect("a fresh document accepts observers");
        let files_map = doc.get_or_insert_map(shape::FILES);
        yrs::DeepObservable::observe_deep(
            &files_map,
            "mesh-disk",
            move |txn: &yrs::TransactionMut, events: &yrs::types::Events| {
                let origin = txn.origin();
                let editor = origin
                    .and_then(|o| o.as_ref().strip_prefix(EDITOR_ORIGIN.as_bytes()))
                    .and_then(|uri| std::str::from_utf8(uri).ok())
                    .map(String::from);
                changes.lock().expect("not poisoned").extend(
                    text_changes(txn, events)
                        .into_iter()
                        .map(|(p, c)| (p, editor.clone(), c)),
                );
                if origin.is_none_or(|o| *o != Origin::from(REMOTE)) {
                    return;
                }
                let mut dirty = dirty.lock().expect("not poisoned");
                for e in events.iter() {
                    match e.path().front() {
                        Some(yrs::types::PathSegment::Key(k)) => {
                            dirty.insert(k.to_string());
                        }
                        _ => {
                            if let yrs::types::Event::Map(m) = e {
                                dirty.extend(m.keys(txn).keys().map(|k| k.to_string()));
                            }
                        }
                    }
                }
            },
        );
        Room {
            target,
            read_link,
            awareness: Awareness::new(doc.clone()),
            doc,
            conn,
            state: ConnState::Connecting,
            synced: false,
            seat_to_keep: None,
            conn_id: None,
            role: None,
            participants: BTreeMap::new(),
            on_synced: Vec::new(),
            pending_share: None,
            share_ack: None,
            share_again: Vec::new(),
            outbox,
            seats: Seats::default(),
            follow_room: false,
        }
    }

    /// The participants as the seats module reads them.
    pub(super) fn people(&self) -> BTreeMap<u64, Person> {
        self.participants.iter().map(|(id, p)| (*id, Person::from(p))).collect()
    }

    /// Sends a mesh message.
    pub(super) fn send<M: serde::Serialize>(&self, msg: &M) {
        let _ = self.conn.tx.send(Outgoing::Frame(encode_mesh(msg)));
    }

    /// Sends a Yjs message.
    fn send_yjs(&self, msg: &Message) {
        let _ = self.conn.tx.send(Outgoing::Frame(encode_yjs(msg)));
    }

    /// Asks the server for what we lack; it answers after everything sent before is stored.
    pub(super) fn send_sync_step1(&self) {
        let sv = self.doc.transact().state_vector();
        self.send_yjs(&Message::Sync(SyncMessage::SyncStep1(sv)));
        self.outbox.lock().expect("not poisoned").step1_sent();
    }

    /// Answers the server's sync step 1 (it sends one on every connection) with what it
    /// lacks: as one sync step 2 when that is well under the server's frame limit; otherwise
    /// (after an upload cut off, or much work offline) our own updates go again as the
    /// updates they were, each small, and the sync step 2 carries only the rest (others'
    /// updates it lacks, and the deletions).
    fn answer_sync_step1(&self, mut sv: yrs::StateVector) {
        let me = self.doc.client_id();
        // Both ways, what the server lacks of ours goes out now, on this connection.
        let pending = self.outbox.lock().expect("not poisoned").resend(sv.get(&me));
        let txn = self.doc.transact();
        let whole = txn.encode_state_as_update_v1(&sv);
        if whole.len() <= MAX_SYNC_STEP2_BYTES {
            self.send_yjs(&Message::Sync(SyncMessage::SyncStep2(whole)));
            return;
        }
        for update in pending {
            self.send_yjs(&Message::Sync(SyncMessage::Update(update)));
        }
        sv.set_max(me, txn.state_vector().get(&me));
        let rest = txn.encode_state_as_update_v1(&sv);
        self.send_yjs(&Message::Sync(SyncMessage::SyncStep2(rest)));
    }

    /// Where we stand, for the checks of requests; `Err` says what to tell the user.
    pub(super) fn standing(room: Option<&Room>) -> Result<Standing, String> {
        match room {
            None => Err("not in a room: share the folder or join a room first".into()),
            Some(r) if r.state == ConnState::Connected && r.synced => Ok(Standing {
                writable: View(Some(r)).writable(),
                conn_id: r.conn_id,
                host: r.role == Some(Role::Host),
            }),
            Some(_) => Err("not connected to the room right now; try again when the connection is back".into()),
        }
    }

    /// Who started a run or a debug session, for the editor. Connection 0 is the REST API;
    /// someone missing from the list has left since.
    pub(super) fn starter(&self, by: u64) -> Starter {
        let by_name = match self.participants.get(&by) {
            Some(p) => p.name.clone(),
            None if by == 0 => "the REST API".into(),
            None => "someone who left".into(),
        };
        Starter {
            by,
            by_name,
            you: self.conn_id == Some(by),
        }
    }

    /// Carries out a room operation the sans-IO parts asked for.
    pub(super) fn apply(&self, effect: RoomChange) {
        let files = self.doc.get_or_insert_map(shape::FILES);
        match effect {
            RoomChange::Edit { path, ops } => apply_ops(&files, &mut self.doc.transact_mut(), &path, ops),
            RoomChange::EditorEdit { uri, path, ops } => {
                // Tagged with the document, so that its own edits are not fed back to it.
                let mut txn = self.doc.transact_mut_with(format!("{EDITOR_ORIGIN}{uri}"));
                apply_ops(&files, &mut txn, &path, ops);
            }
            RoomChange::Create { path, text } => {
                files.insert(
                    &mut self.doc.transact_mut(),
                    path.as_str(),
                    TextPrelim::new(text.as_str()),
                );
            }
            RoomChange::Remove { path } => {
                files.remove(&mut self.doc.transact_mut(), path.as_str());
            }
        }
        // Each transaction above is committed (and its update in the outbox) by now.
        // Asks the server to confirm what it holds once enough waits, which lets the outbox
        // forget it.
        let ask = self.outbox.lock().expect("not poisoned").wants_confirmation();
        if ask && self.state == ConnState::Connected && self.synced {
            self.send_sync_step1();
        }
    }

    /// Sets our awareness state and sends it when connected.
    pub(super) fn publish(&mut self, state: &PresenceState) {
        if self.awareness.set_local_state(state.to_json()).is_err() || self.state != ConnState::Connected {
            return;
        }
        if let Ok(update) = self.awareness.update_with_clients([self.awareness.client_id()]) {
            self.send_yjs(&Message::Awareness(update));
        }
    }

    /// Other clients' awareness states (the parts with mesh's shape).
    pub(super) fn remote_states(&self) -> Vec<(u64, PresenceState)> {
        let me = self.awareness.client_id();
        self.awareness
            .iter()
            .filter(|(id, _)| *id != me)
            .filter_map(|(id, state)| {
                let json = serde_json::from_str::<serde_json::Value>(state.data.as_deref()?).ok()?;
                Some((id.get(), PresenceState::from_json(&json)))
            })
            .collect()
    }

    /// The room's chat, oldest first.
    pub(super) fn chat_history(&self) -> Vec<ChatEntry> {
        let txn = self.doc.transact();
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

    /// The status shown to the user.
    pub(super) fn status(&self, share_link: Option<&str>) -> Status {
        let state = match &self.state {
            ConnState::Connected if self.seats.lobby.is_some() => "lobby",
            ConnState::Connecting => "connecting",
            ConnState::Connected if self.synced => "connected",
            ConnState::Connected => "connecting",
            ConnState::Offline(_) => "offline",
        };
        let participants = self
            .participants
            .values()
            // A companion (a debug adapter's connection) is its person's second one.
            .filter(|p| !p.companion)
            .map(|p| Participant::of(p, self.conn_id))
            .collect();
        Status {
            state: state.into(),
            room: Some(self.target.room.to_string()),
            link: Some(share_link.map(String::from).unwrap_or_else(|| self.target.link())),
            read_link: self.read_link.clone(),
            role: self.role.map(|r| format!("{r:?}").to_lowercase()),
            server: Some(self.target.server.clone()),
            you: self.conn_id,
            participants,
            conflicts: Vec::new(),
            lobby: self.seats.lobby.clone(),
            seat: self.seats.seat.clone(),
            approval: self.seats.approval,
            join_requests: self.seats.requests.values().cloned().collect(),
        }
    }
}

/// A change to the room's files, asked for by the sans-IO parts.
#[derive(Debug)]
pub(super) enum RoomChange {
    /// Local edits to a file.
    Edit { path: String, ops: Vec<RoomOp> },
    /// Local edits to a file made in the editor's document `uri`.
    EditorEdit {
        uri: String,
        path: String,
        ops: Vec<RoomOp>,
    },
    /// A new file.
    Create { path: String, text: String },
    /// A file removed.
    Remove { path: String },
}

/// The room connection's events and messages.
impl Session {
    pub(super) fn on_room(&mut self, ev: RoomEvent) {
        let Some(room) = self.room.as_mut() else { return };
        match ev {
            RoomEvent::Connected => {
                room.state = ConnState::Connected;
                room.outbox.lock().expect("not poisoned").reconnected();
                room.send(&ClientMessage::Hello {
                    version: PROTOCOL_VERSION,
                    name: self.identity.name.clone(),
                    color: self.identity.color.clone(),
                    client: Some(self.identity.client.clone()),
                    doc_client_id: Some(room.doc.client_id().get()),
                    companion: false,
                });
                room.send_sync_step1();
                self.publish_awareness();
            }
            RoomEvent::Disconnected { reason } => {
                if room.state != ConnState::Offline(reason.clone()) {
                    tracing::warn!(%reason, "room connection lost; edits continue locally and merge on reconnect");
                }
                room.state = ConnState::Offline(reason);
                room.outbox.lock().expect("not poisoned").reconnected();
                room.participants.clear();
                room.seats.disconnected();
                let fx = self
                    .runs
                    .abandon("the connection to the room was lost", std::time::Instant::now());
                self.apply(fx);
            }
            RoomEvent::Fatal(reason) => {
                tracing::error!(%reason, "leaving the room");
                // A refused link or seat (revoked, expired, kicked while away) ends it too.
                // The folder leaves the room (its seat forgotten) before `mesh/ended`, which
                // ends a headless `join` at once.
                self.apply(vec![tell("error", reason.clone())]);
                self.end_session(&reason);
                self.apply(vec![notify::<EndedNotification>(EndedParams {
                    reason: "revoked".into(),
                    message: reason,
                })]);
            }
            RoomEvent::Frames(frames) => {
                for f in frames {
                    self.on_frame(f);
                }
            }
        }
    }

    fn on_frame(&mut self, frame: Frame<ServerMessage>) {
        let Some(room) = self.room.as_mut() else { return };
        match frame {
            Frame::Yjs(Message::Sync(SyncMessage::SyncStep1(sv))) => room.answer_sync_step1(sv),
            Frame::Yjs(Message::Sync(SyncMessage::SyncStep2(u))) => {
                room.outbox.lock().expect("not poisoned").step2_received();
                apply_remote(&room.doc, &u);
                self.feed_room_changes();
                let Some(room) = self.room.as_mut() else { return };
                if !room.synced {
                    room.synced = true;
                    self.on_first_sync();
                    // Still in the room: the join was accepted, and the folder keeps its seat.
                    if let Some(kept) = self.room.as_mut().and_then(|r| r.seat_to_keep.take()) {
                        keep_seat(self.root.as_deref(), &kept);
                    }
                } else if let Some((result, reply)) = room.share_ack.take() {
                    let _ = reply.send(Ok(result));
                }
            }
            Frame::Yjs(Message::Sync(SyncMessage::Update(u))) => {
                apply_remote(&room.doc, &u);
                self.feed_room_changes();
            }
            Frame::Yjs(Message::Awareness(update)) => {
                let _ = room.awareness.apply_update(update);
                self.presence.dirty = true;
            }
            Frame::Yjs(Message::Auth(Some(reason))) => self.apply(vec![tell("warning", reason)]),
            Frame::Yjs(_) => {}
            Frame::Mesh(msg) => self.on_mesh(msg),
        }
    }

    fn on_mesh(&mut self, msg: ServerMessage) {
        let Some(room) = self.room.as_mut() else { return };
        let now = std::time::Instant::now();
        let fx = match msg {
            ServerMessage::Welcome {
                conn_id,
                role,
                participants,
                seat,
                name,
                approval,
                ..
            } => {
                room.conn_id = Some(conn_id);
                room.role = Some(role);
                // The server sends every ghost's current state after `welcome`; what we held
                // before a reconnect may be gone.
                let ghosts_cleared = self.ghosts.clear();
                room.participants = participants.into_iter().map(|p| (p.conn_id, p)).collect();
                let admitted = room.seats.lobby.is_some();
                let people = room.people();
                let mut fx = room.seats.on_event(
                    SeatEvent::Welcome {
                        seat: Some(seat.id.clone()),
                        role,
                        approval,
                        name: Some(name.clone()),
                    },
                    Some(conn_id),
                    &people,
                );
                if ghosts_cleared {
                    fx.push(notify::<GhostStateNotification>(GhostStateParams::default()));
                }
                // Every reconnect shows the seat token from now on (never the link's again).
                let kept = crate::mesh_dir::Seat {
                    room: room.target.room.to_string(),
                    id: seat.id,
                    token: seat.token.clone(),
                };
                let _ = room
                    .conn
                    .tx
                    .send(Outgoing::Credentials(crate::room::Credentials(seat.token)));
                if room.synced {
                    keep_seat(self.root.as_deref(), &kept);
                } else {
                    room.seat_to_keep = Some(kept);
                }
                if name != self.identity.name {
                    fx.push(tell(
                        "info",
                        format!(
                            "someone in the room is called {} already: you are shown as {name}",
                            self.identity.name
                        ),
                    ));
                }
                if admitted {
                    // Nothing of the room reached us in the lobby: sync now.
                    room.send_sync_step1();
                    self.apply(fx);
                    self.publish_awareness();
                    return;
                }
                fx
            }
            ServerMessage::ParticipantJoined { participant } => {
                let person = Person::from(&participant);
                room.participants.insert(participant.conn_id, participant);
                let people = room.people();
                room.seats.on_event(SeatEvent::Joined(person), room.conn_id, &people)
            }
            ServerMessage::ParticipantLeft { conn_id } => {
                let people = room.people();
                let mut fx = match room.participants.remove(&conn_id) {
                    Some(p) => room
                        .seats
                        .on_event(SeatEvent::Left(Person::from(&p)), room.conn_id, &people),
                    None => Vec::new(),
                };
                fx.extend(self.presence.participant_left(conn_id));
                if self.ghosts.left(conn_id) {
                    fx.push(self.ghost_state());
                }
                fx
            }
            ServerMessage::RoleChanged { seat, role, by, .. } => {
                for p in room.participants.values_mut().filter(|p| p.seat == seat) {
                    p.role = role;
                }
                let people = room.people();
                let mine = room.seats.seat.as_deref() == Some(seat.as_str());
                let demoted = mine && room.role.is_some_and(|r| r.can_write()) && !role.can_write();
                if mine {
                    room.role = Some(role);
                }
                let fx = room.seats.on_event(
                    SeatEvent::RoleChanged {
                        seat,
                        role,
                        by: Some(by),
                    },
                    room.conn_id,
                    &people,
                );
                self.apply(fx);
                if demoted {
                    self.resync_as_reader();
                }
                return;
            }
            ServerMessage::Kicked { by } => {
                let fx = room
                    .seats
                    .on_event(SeatEvent::Kicked { by: Some(by) }, room.conn_id, &BTreeMap::new());
                self.finish(fx);
                return;
            }
            ServerMessage::Refused { message } => {
                let fx = room
                    .seats
                    .on_event(SeatEvent::Refused { message }, room.conn_id, &BTreeMap::new());
                self.finish(fx);
                return;
            }
            ServerMessage::SeatKicked { seat, by, .. } => {
                let people = room.people();
                room.seats
                    .on_event(SeatEvent::SeatKicked { seat, by: Some(by) }, room.conn_id, &people)
            }
            ServerMessage::Lobby { message } => {
                room.seats
                    .on_event(SeatEvent::Lobby { message }, room.conn_id, &BTreeMap::new())
            }
            ServerMessage::JoinRequest {
                seat,
                name,
                client,
                verified,
            } => room.seats.on_event(
                SeatEvent::JoinRequest {
                    seat,
                    name,
                    client,
                    verified,
                },
                room.conn_id,
                &BTreeMap::new(),
            ),
            ServerMessage::JoinRequestClosed { seat, admitted, by, .. } => room.seats.on_event(
                SeatEvent::JoinRequestClosed {
                    seat,
                    admitted,
                    by: Some(by),
                },
                room.conn_id,
                &BTreeMap::new(),
            ),
            ServerMessage::ApprovalChanged { on, by, .. } => room.seats.on_event(
                SeatEvent::ApprovalChanged { on, by: Some(by) },
                room.conn_id,
                &BTreeMap::new(),
            ),
            // Host requests go over REST (`host_api`), whose answers name what they answer.
            ServerMessage::Links { .. } | ServerMessage::AuditLog { .. } => Vec::new(),
            // Who asked what reaches editors as the ghost's chat announcements; its state
            // (requests and pending suggestions) is what editors draw.
            ServerMessage::Ghost { .. } => Vec::new(),
            ServerMessage::GhostState { from, state } => {
                if self.ghosts.published(from, state) {
                    vec![self.ghost_state()]
                } else {
                    Vec::new()
                }
            }
            ServerMessage::Participants { participants } => {
                room.participants = participants.into_iter().map(|p| (p.conn_id, p)).collect();
                Vec::new()
            }
            ServerMessage::Chat { entry } => {
                let entry = ChatEntry {
                    id: entry.id,
                    author: entry.author,
                    conn_id: entry.conn_id,
                    text: entry.text,
                    ts: entry.ts,
                };
                vec![notify::<ChatMessageNotification>(ChatMessageParams { entry })]
            }
            ServerMessage::Error {
                code,
                message,
                responding_to,
            } => {
                tracing::warn!(?code, %message, ?responding_to, "the server refused something");
                self.runs.refused(code, &message, responding_to)
            }
            ServerMessage::Pong { .. } => Vec::new(),
            ServerMessage::RunStarted {
                run_id,
                path,
                language,
                by,
                responding_to,
            } => {
                let who = room.starter(by);
                let uri = self.local_uri(&path);
                self.runs.started(run_id, path, uri, language, who, responding_to, now)
            }
            ServerMessage::RunQueued {
                run_id,
                path,
                language,
                by,
                position,
                limit,
                debug,
                responding_to,
            } => {
                let who = room.starter(by);
                let uri = self.local_uri(&path);
                self.runs.queued(
                    run_id,
                    path,
                    uri,
                    language,
                    who,
                    position,
                    limit,
                    debug,
                    responding_to,
                    now,
                )
            }
            ServerMessage::RunOutput { run_id, stream, data } => {
                self.runs.output(RunOutputParams { run_id, stream, data })
            }
            ServerMessage::RunExited {
                run_id,
                stage,
                code,
                duration_ms,
                limit,
                error,
            } => self.runs.exited(RunExitedParams {
                run_id,
                stage,
                code,
                duration_ms,
                limit,
                error,
            }),
            ServerMessage::DebugStarted {
                debug_id,
                path,
                language,
                by,
            } => {
                let who = room.starter(by);
                let uri = self.local_uri(&path);
                self.runs.debug_session(&debug_id, true);
                vec![runs::debug_started(debug_id, path, uri, language, who)]
            }
            ServerMessage::DebugBreakpoints { debug_id, path, lines } => {
                let uri = self.local_uri(&path);
                vec![notify::<DebugBreakpointsNotification>(DebugBreakpointsParams {
                    debug_id,
                    path,
                    uri,
                    lines,
                })]
            }
            ServerMessage::DebugEnded {
                debug_id,
                exit_code,
                error,
            } => {
                self.runs.debug_session(&debug_id, false);
                vec![notify::<DebugEndedNotification>(DebugEndedParams {
                    debug_id,
                    exit_code,
                    error,
                })]
            }
            // Debug sessions themselves are the business of `mesh-proxy dap`, which has its own
            // connection; this one only tells the editor that a session started (so it can offer
            // to join), where the room's breakpoints are (so every editor shows them) and when
            // it ended.
            ServerMessage::DebugJoined { .. } | ServerMessage::Dap { .. } => Vec::new(),
        };
        self.apply(fx);
    }
}

impl Session {
    /// The room ended our session (kicked, refused): the editor hears why, then the folder
    /// leaves the room.
    fn finish(&mut self, fx: Vec<Effect>) {
        let message = self
            .room
            .as_ref()
            .and_then(|r| r.seats.ended.as_ref())
            .map(|e| e.message.clone())
            .unwrap_or_default();
        tracing::warn!(%message, "the room ended this session");
        // The folder leaves the room (its seat forgotten) before `mesh/ended` in `fx`, which
        // ends a headless `join` at once.
        self.apply(vec![tell("error", message.clone())]);
        self.end_session(&message);
        self.apply(fx);
    }
}

impl From<&RoomParticipant> for Person {
    fn from(p: &RoomParticipant) -> Self {
        Person {
            conn_id: p.conn_id,
            seat: Some(p.seat.clone()),
            name: p.name.clone(),
            role: p.role,
            companion: p.companion,
            doc_client_id: p.doc_client_id,
            client: p.client.clone(),
        }
    }
}

/// Keeps the seat in the folder's state (`root`), so reconnects and restarts take it again.
fn keep_seat(root: Option<&std::path::Path>, kept: &crate::mesh_dir::Seat) {
    if let Some(root) = root {
        if let Err(e) = crate::mesh_dir::write_seat(root, kept) {
            tracing::warn!(error = %e, "cannot keep the seat; a reconnect takes a new one");
        }
    }
}

/// Applies a local change to a file of the room (one transaction: one update goes out).
fn apply_ops(files: &MapRef, txn: &mut yrs::TransactionMut, path: &str, ops: Vec<RoomOp>) {
    if let Some(yrs::Out::YText(t)) = files.get(txn, path) {
        for op in ops {
            if op.delete_utf16 > 0 {
                t.remove_range(txn, op.start_utf16, op.delete_utf16);
            }
            if !op.insert.is_empty() {
                t.insert(txn, op.start_utf16, &op.insert);
            }
        }
    }
}

/// The changes a transaction made to the files' texts: a text edited in place gives its
/// delta; a file added, replaced or removed as a whole (or anything the map cannot follow,
/// like an embed) says so, and the open documents derive their maps again.
fn text_changes(txn: &yrs::TransactionMut, events: &yrs::types::Events) -> Vec<(String, RoomTextChange)> {
    let mut out = Vec::new();
    for e in events.iter() {
        let path = e.path();
        match (path.front(), e) {
            (Some(yrs::types::PathSegment::Key(k)), yrs::types::Event::Text(t)) if path.len() == 1 => {
                let delta: Option<Vec<Delta>> = t
                    .delta(txn)
                    .iter()
                    .map(|d| match d {
                        yrs::types::Delta::Retain(n, _) => Some(Delta::Retain(*n)),
                        yrs::types::Delta::Deleted(n) => Some(Delta::Delete(*n)),
                        yrs::types::Delta::Inserted(yrs::Out::Any(yrs::Any::String(s)), _) => {
                            Some(Delta::Insert(s.to_string()))
                        }
                        yrs::types::Delta::Inserted(..) => None,
                    })
                    .collect();
                let change = delta.map_or(RoomTextChange::Replaced, RoomTextChange::Delta);
                out.push((k.to_string(), change));
            }
            (Some(yrs::types::PathSegment::Key(k)), _) => out.push((k.to_string(), RoomTextChange::Replaced)),
            (_, yrs::types::Event::Map(m)) => {
                out.extend(m.keys(txn).keys().map(|k| (k.to_string(), RoomTextChange::Replaced)));
            }
            _ => {}
        }
    }
    out
}

fn apply_remote(doc: &Doc, update: &[u8]) {
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

/// Puts files into the room's document, at most [`UPLOAD_CHUNK_BYTES`] of text per
/// transaction so each update frame stays small: small files share a transaction, a large
/// one is created with its first piece and the rest appended piece by piece.
pub fn upload(doc: &Doc, files: impl IntoIterator<Item = (String, String)>) {
    let map: MapRef = doc.get_or_insert_map(shape::FILES);
    let mut txn = doc.transact_mut();
    let mut bytes = 0usize;
    for (path, text) in files {
        let mut pieces = pieces(&text, UPLOAD_CHUNK_BYTES);
        let first = pieces.next().unwrap_or("");
        if bytes > 0 && bytes + first.len() > UPLOAD_CHUNK_BYTES {
            drop(txn);
            txn = doc.transact_mut();
            bytes = 0;
        }
        bytes += first.len();
        let file = map.insert(&mut txn, path.as_str(), TextPrelim::new(first));
        for piece in pieces {
            drop(txn);
            txn = doc.transact_mut();
            file.push(&mut txn, piece);
            bytes = piece.len();
        }
    }
}

/// `text` cut into pieces of at most `max` bytes (at least one character each), between
/// characters.
fn pieces(text: &str, max: usize) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut end = max.min(rest.len());
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        if end == 0 {
            end = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(piece)
    })
}

/// Creates a room on the server, with the creation token when the server asks for one.
pub async fn create_room(
    tls: &crate::tls::Tls,
    server: &str,
    name: Option<String>,
    create_token: Option<&str>,
) -> Result<CreatedSession, String> {
    let url = format!("{server}/api/sessions");
    // A server with accounts creates rooms for signed-in users only (mesh-proxy login).
    let mut request =
        crate::account::with_user(tls.http().post(&url), server).json(&CreateSession { name, approval: None });
    if let Some(token) = create_token {
        request = request.bearer_auth(token);
    }
    let resp = request.send().await.map_err(|e| {
        tls.explain(&e, server)
            .unwrap_or_else(|| format!("cannot reach the server at {server}: {e}"))
    })?;
    let status = resp.status();
    if !status.is_success() {
        let body: serde_json::Value = resp.json().await.unwrap_or_default();
        return Err(format!(
            "the server refused to create a room ({status}): {}",
            body["message"].as_str().unwrap_or("")
        ));
    }
    resp.json()
        .await
        .map_err(|e| format!("unexpected answer from {server}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upload_keeps_every_update_near_the_chunk_size_whatever_the_file_sizes() {
        let doc = shape::new_doc();
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = sizes.clone();
        doc.observe_update_v1("sizes", move |_, e: &yrs::UpdateEvent| {
            seen.lock().unwrap().push(e.update.len())
        })
        .unwrap();
        // A file three pieces long in characters of every width, among small ones.
        let big = "aé漢🎉".repeat(UPLOAD_CHUNK_BYTES * 5 / 2 / 10);
        let files = vec![
            ("a.txt".to_string(), "small".to_string()),
            ("big.txt".to_string(), big.clone()),
            ("empty.txt".to_string(), String::new()),
            ("z.txt".to_string(), "small too".to_string()),
        ];
        upload(&doc, files);
        let sizes = sizes.lock().unwrap().clone();
        assert!(sizes.len() >= 3, "{sizes:?}");
        // An update carries its text plus a little framing.
        assert!(sizes.iter().all(|&n| n <= UPLOAD_CHUNK_BYTES + 1024), "{sizes:?}");
        let files = room_files(&doc);
        assert_eq!(files.len(), 4);
        assert!(files[1].1 == big, "the large file is whole, in order");
        assert_eq!((files[2].1.as_str(), files[3].1.as_str()), ("", "small too"));
    }

    #[test]
    fn pieces_split_between_characters() {
        let text = "ab漢🎉c";
        let cut: Vec<&str> = pieces(text, 3).collect();
        assert_eq!(cut.concat(), text);
        assert!(cut.iter().all(|p| !p.is_empty()));
        assert_eq!(
            cut,
            ["ab", "漢", "🎉", "c"],
            "a 4-byte character larger than the piece size is one piece"
        );
        assert_eq!(pieces("", 3).count(), 0);
    }
}
