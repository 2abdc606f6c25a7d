//! The sans-IO room: one shared document, its awareness and its participants. It takes a
//! connection's decoded messages and returns what to persist and what to send to whom. It
//! owns no socket, no store and no clock beyond the `now_ms` it is handed, so it is
//! deterministic and tested directly.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use mesh_protocol::codec::{encode_mesh, encode_yjs, Frame};
use mesh_protocol::messages::{Participant, Role};
use mesh_protocol::{doc as shape, ClientMessage, ErrorCode, Request, ServerMessage, MAX_NAME_CHARS};
use yrs::sync::awareness::AwarenessUpdate;
use yrs::sync::{Awareness, Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::{Doc, Map, ReadTxn, Transact, Update};

use super::access::{Access, NoTokens, Refusal, Tokens};
use super::guard::{self, TypeIndex};
use crate::auth::Grant;

mod awareness;
mod chat;
mod ghost;
pub mod host;
mod mesh;
mod people;
mod remote;
pub use host::{HostOp, HostReply};
pub use remote::{RemoteRefusal, REMOTE_AWARENESS_TTL_MS};

/// The largest awareness state (JSON) one client may publish: names, colours and a few
/// cursors fit in far less.
pub const MAX_AWARENESS_STATE_BYTES: usize = 16 * 1024;

/// Default largest document a room may hold, in bytes of its encoded updates: a large
/// source tree's text fits; a client cannot fill the disk or memory through one room.
pub const DEFAULT_MAX_DOC_BYTES: usize = 64 * 1024 * 1024;

/// Default most files a room may hold (a shared folder of a big project fits).
pub const DEFAULT_MAX_FILES: usize = 10_000;

/// Default awareness updates per second a connection may send on average: cursors move at
/// typing speed, tens a second at most.
pub const DEFAULT_AWARENESS_RATE: f64 = 60.0;

/// Default awareness updates a connection may send in a burst above the rate.
pub const DEFAULT_AWARENESS_BURST: f64 = 240.0;

/// Default most connections waiting in a room's lobby for the host's approval: a class
/// joining at once fits; a script cannot queue without bound.
pub const DEFAULT_MAX_LOBBY: usize = 32;

/// Default time a joiner waits for the host's answer before it is refused: long enough for a
/// host who is typing to notice, short enough that nobody waits forever.
pub const DEFAULT_LOBBY_TIMEOUT_MS: u64 = 10 * 60 * 1000;

/// What one room may be made to hold, and how fast awareness may change. Configurable; each
/// refusal names the limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoomLimits {
    /// The document's size, in bytes of accepted updates since the last compaction plus the
    /// snapshot (deletions shrink it at the next compaction).
    pub max_doc_bytes: usize,
    /// Entries of the `files` map.
    pub max_files: usize,
    /// Awareness updates per second per connection.
    pub awareness_rate: f64,
    /// Awareness burst per connection.
    pub awareness_burst: f64,
    /// Connections waiting in the lobby.
    pub max_lobby: usize,
    /// How long a joiner waits for the host before it is refused, in milliseconds.
    pub lobby_timeout_ms: u64,
    /// Links a room keeps.
    pub max_links: usize,
    /// Whether the server has accounts (OpenID Connect sign-in): invitations for a user are
    /// possible only then.
    pub accounts: bool,
}

impl Default for RoomLimits {
    fn default() -> Self {
        RoomLimits {
            max_doc_bytes: DEFAULT_MAX_DOC_BYTES,
            max_files: DEFAULT_MAX_FILES,
            awareness_rate: DEFAULT_AWARENESS_RATE,
            awareness_burst: DEFAULT_AWARENESS_BURST,
            max_lobby: DEFAULT_MAX_LOBBY,
            lobby_timeout_ms: DEFAULT_LOBBY_TIMEOUT_MS,
            max_links: super::access::DEFAULT_MAX_LINKS,
            accounts: false,
        }
    }
}

/// The encoding of an update that carries nothing (no blocks, no deletes): what an
/// up-to-date client answers a sync step 1 with. Readers may send it.
const EMPTY_UPDATE: [u8; 2] = [0, 0];

/// Colours handed to participants that did not pick one, in join order.
const PALETTE: [&str; 8] = [
    "#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#9a6324",
];

/// A room compacted (see [`RoomCore::snapshot`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The integrated document (`encode_diff_v1` from an empty state vector).
    pub state: Vec<u8>,
    /// Updates (v1) waiting for a missing dependency; empty when nothing waits.
    pub pending: Vec<Vec<u8>>,
}

/// A connection's id, unique for the life of the server process.
pub type ConnId = u64;

/// Who a message goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// One connection.
    One(ConnId),
    /// Every connection but one (the origin of an update).
    AllBut(ConnId),
    /// Every connection.
    All,
    /// Every connection that speaks mesh's extension messages.
    MeshClients,
    /// Every connection that speaks mesh's extension messages but one (who asked for what
    /// the message announces: it gets its own copy, naming its request).
    MeshClientsBut(ConnId),
    /// A document update for every connection whose sync step 1 the room has answered, but
    /// one (the update's origin). Connections still syncing get it inside their sync step 2,
    /// so no client ever receives an update before the state it builds on (out-of-order
    /// updates take yrs clients through their pending-update path, which has crashed them).
    SyncedBut(ConnId),
    /// A document update for every connection whose sync step 1 the room has answered.
    Synced,
    /// Every connection that speaks mesh's extension messages, on this node and (with a bus)
    /// on every other node of the room: a run's or a debug session's events, chat.
    Room,
    /// The same, but one (who asked: it gets its own copy, naming its request).
    RoomBut(ConnId),
    /// Every connection of the host's seat that speaks mesh's extension messages.
    Hosts,
    /// The same, but one (who asked: it gets its own copy, naming its request).
    HostsBut(ConnId),
}

impl Target {
    /// Whether a frame for this target goes to connection `id` (`who`: what the room knows of
    /// it, `None` when it is not a member).
    pub fn includes(&self, id: ConnId, who: Option<Recipient>) -> bool {
        let Some(who) = who else {
            // Connections in the lobby get nothing of the room, only what names them.
            return matches!(self, Target::One(one) if *one == id);
        };
        match *self {
            Target::One(one) => one == id,
            Target::AllBut(but) => id != but,
            Target::All => true,
            Target::Hosts => who.host,
            Target::HostsBut(but) => id != but && who.host,
            Target::SyncedBut(but) => id != but && who.synced,
            Target::Synced => who.synced,
            Target::MeshClients | Target::Room => who.mesh,
            Target::MeshClientsBut(but) | Target::RoomBut(but) => id != but && who.mesh,
        }
    }
}

/// What the room wants done after handling an input.
#[derive(Debug, Default)]
pub struct Effects {
    /// Updates to make durable, in order, before any of `send` goes out.
    pub persist: Vec<Vec<u8>>,
    /// Frames to send, in order.
    pub send: Vec<(Target, Bytes)>,
    /// Connections to close, with the reason.
    pub close: Vec<(ConnId, ErrorCode, String)>,
    /// Runs to start (the caller owns the run service).
    pub runs: Vec<RunRequest>,
    /// Stdin for runs: (connection, request id, run id, text, close stdin after).
    pub run_inputs: Vec<(ConnId, Option<u64>, String, String, bool)>,
    /// Stop requests: (connection, request id, run id).
    pub run_stops: Vec<(ConnId, Option<u64>, String)>,
    /// Debug requests (the caller owns the debug sessions).
    pub debug: Vec<DebugRequest>,
    /// Awareness updates of this node's connections, for the other nodes (with a bus).
    pub bus_awareness: Vec<Vec<u8>>,
    /// The client's id of the request being handled: errors name it (`responding_to`).
    request: Option<u64>,
}

/// A participant's request about the room's debug session.
#[derive(Debug, Clone)]
pub enum DebugRequest {
    /// Start the session, or join the one going.
    Start {
        /// Who asked.
        conn: ConnId,
        /// The client's id of the request.
        request: Option<u64>,
        /// Their role.
        role: Role,
        /// The entry file.
        path: String,
        /// The language asked for, if any.
        language: Option<String>,
        /// Every file of the room, as it is now.
        files: Vec<(String, String)>,
    },
    /// A DAP request for the session.
    Dap {
        /// Who sent it.
        conn: ConnId,
        /// The client's id of the mesh message that carried it.
        request: Option<u64>,
        /// Their role now.
        role: Role,
        /// The session it is for.
        debug_id: String,
        /// The message.
        message: serde_json::Value,
    },
}

/// A participant asked to run the room's program.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// Who asked.
    pub conn: ConnId,
    /// The client's id of the request.
    pub request: Option<u64>,
    /// Their role (the host may stop anyone's run).
    pub role: Role,
    /// The entry file.
    pub path: String,
    /// The language asked for, if any.
    pub language: Option<String>,
    /// Every file of the room, as it is now.
    pub files: Vec<(String, String)>,
}

impl Effects {
    /// Takes over everything `from` asks for, after what this already holds.
    pub fn absorb(&mut self, from: Effects) {
        self.persist.extend(from.persist);
        self.send.extend(from.send);
        self.close.extend(from.close);
        self.runs.extend(from.runs);
        self.run_inputs.extend(from.run_inputs);
        self.run_stops.extend(from.run_stops);
        self.debug.extend(from.debug);
        self.bus_awareness.extend(from.bus_awareness);
    }

    /// Queues a frame.
    pub fn to(&mut self, target: Target, frame: Vec<u8>) {
        self.send.push((target, Bytes::from(frame)));
    }

    /// Sends `frame` to `target`, sharing its bytes (a frame several connections get).
    pub fn to_shared(&mut self, target: Target, frame: Bytes) {
        self.send.push((target, frame));
    }

    /// Tells every mesh client what `message(None)` says, and who asked (`asker`, with its
    /// request id) `message(request)`: the same news, naming the request it answers.
    pub fn announce(&mut self, asker: ConnId, request: Option<u64>, message: impl Fn(Option<u64>) -> ServerMessage) {
        if request.is_none() {
            self.to(Target::MeshClients, encode_mesh(&message(None)));
            return;
        }
        self.to(Target::MeshClientsBut(asker), encode_mesh(&message(None)));
        self.to(Target::One(asker), encode_mesh(&message(request)));
    }

    /// [`Effects::announce`] to the mesh clients of every node of the room.
    pub fn announce_everywhere(
        &mut self,
        asker: ConnId,
        request: Option<u64>,
        message: impl Fn(Option<u64>) -> ServerMessage,
    ) {
        if request.is_none() {
            self.to(Target::Room, encode_mesh(&message(None)));
            return;
        }
        self.to(Target::RoomBut(asker), encode_mesh(&message(None)));
        self.to(Target::One(asker), encode_mesh(&message(request)));
    }

    /// [`Effects::announce`] for the host's connections only.
    pub fn announce_to_hosts(
        &mut self,
        asker: Option<ConnId>,
        request: Option<u64>,
        message: impl Fn(Option<u64>) -> ServerMessage,
    ) {
        match (asker, request) {
            (Some(asker), Some(_)) => {
                self.to(Target::HostsBut(asker), encode_mesh(&message(None)));
                self.to(Target::One(asker), encode_mesh(&message(request)));
            }
            _ => self.to(Target::Hosts, encode_mesh(&message(None))),
        }
    }

    fn error(&mut self, conn: &Conn, id: ConnId, code: ErrorCode, message: String) {
        tracing::debug!(conn = id, ?code, %message, "refused a client message");
        if conn.mesh {
            let responding_to = self.request;
            self.to(
                Target::One(id),
                encode_mesh(&ServerMessage::Error {
                    code,
                    message,
                    responding_to,
                }),
            );
        } else if code == ErrorCode::Forbidden {
            // Stock Yjs clients understand only the y-protocols permission-denied message.
            self.to(Target::One(id), encode_yjs(&Message::Auth(Some(message))));
        }
    }
}

#[derive(Debug)]
struct Conn {
    participant: Participant,
    /// The signed-in user behind the connection: its name is theirs and cannot be changed.
    /// Boxed: most connections have none, and an inline one is 96 bytes of every record.
    user: Option<Box<crate::accounts::identity::Verified>>,
    /// Said `Hello`: receives mesh messages.
    mesh: bool,
    /// Everyone has heard of it (and the audit trail has its join): at its first message,
    /// so that a mesh client is announced by the name its `Hello` gives, never first as
    /// "anonymous". A stock Yjs client, which says no hello, is announced at its first
    /// sync message; one that sends nothing saw nothing of the document and is never named.
    announced: bool,
    /// The room answered this connection's sync step 1: it has the document and receives
    /// updates from now on.
    synced: bool,
    /// Awareness client ids this connection published, removed when it leaves. A
    /// connection owns the first id it publishes and may set or clear no other.
    awareness_ids: BTreeSet<u64>,
    /// The awareness client id this connection owns, once it published one.
    awareness_owned: Option<u64>,
    /// Awareness updates left in the connection's budget, and when it was last refilled.
    awareness_tokens: f64,
    awareness_at_ms: u64,
}

/// One room's state.
pub struct RoomCore {
    awareness: Awareness,
    /// Boxed: a B-tree's nodes hold eleven values each and, filled in id order, stay about
    /// half full, so inline records of a few hundred bytes cost twice their size per person.
    conns: BTreeMap<ConnId, Box<Conn>>,
    joined_total: u64,
    chat_seq: u64,
    limits: RoomLimits,
    /// Which items hold shared types: what the update guard accepts as parents.
    types: TypeIndex,
    /// Bytes of the snapshot and every update applied since: the document's size as the
    /// limit counts it.
    doc_bytes: usize,
    /// Which connection owns each awareness client id.
    awareness_owner: BTreeMap<u64, ConnId>,
    /// Links, seats, approval and the audit trail.
    access: Access,
    /// Makes seat tokens and link URLs.
    tokens: Arc<dyn Tokens>,
    /// Connections in the lobby, waiting for the host.
    waiting: BTreeMap<ConnId, host::Waiting>,
    /// Counts the document's write transactions (bumped by an observer of the document).
    generation: Arc<AtomicU64>,
    /// The whole document as a sync step 2 frame, with the generation it was encoded at:
    /// what every new client (empty state vector) is sent. Encoded once and shared, so
    /// a hundred people joining a large room at once cost one encoding and one copy in
    /// memory, not a hundred.
    full_state: Option<(u64, Bytes)>,
    /// The newest state each ghost connection published, for joiners (at most
    /// `MAX_GHOST_PUBLISHERS`); dropped when the connection leaves.
    ghosts: BTreeMap<ConnId, mesh_protocol::ghost::GhostState>,
    /// Awareness client ids published by people on other nodes: which node, and when it was
    /// last heard of (a dead node's states time out).
    remote_awareness: BTreeMap<u64, (crate::bus::NodeId, u64)>,
    /// Participants connected on other nodes (see `people`).
    remote_people: people::RemotePeople,
    /// Counts changes to this node's participants (see [`RoomCore::people_version`]).
    people_version: u64,
    /// Whether the room has a bus: only then are its connections' awareness updates encoded
    /// for other nodes.
    bus: bool,
}

/// Bumps `generation` after every write transaction on `doc` (whoever makes it: a client's
/// update, chat, a reload), so what is derived from the document knows when it is stale.
fn count_writes(doc: &Doc, generation: Arc<AtomicU64>) {
    let counted = doc.observe_after_transaction("mesh-generation", move |_| {
        generation.fetch_add(1, Ordering::Relaxed);
    });
    // A document nobody else holds yet has no transaction open.
    debug_assert!(counted.is_ok(), "a new document is free to observe");
}

impl RoomCore {
    /// A room rebuilt from its snapshot and the updates after it. Updates that fail to apply
    /// are skipped and counted in the returned number (they were validated when accepted,
    /// so a non-zero count means the store was damaged).
    pub fn load(snapshot: Option<&[u8]>, updates: &[Vec<u8>]) -> (Self, usize) {
        Self::load_with(RoomLimits::default(), snapshot, updates)
    }

    /// [`RoomCore::load`] with the given limits.
    pub fn load_with(limits: RoomLimits, snapshot: Option<&[u8]>, updates: &[Vec<u8>]) -> (Self, usize) {
        let doc = shape::new_doc();
        let mut bad = 0;
        let mut types = TypeIndex::default();
        let mut doc_bytes = 0;
        {
            let mut txn = doc.transact_mut();
            for u in snapshot.into_iter().chain(updates.iter().map(|u| u.as_slice())) {
                types.record_bytes(u);
                doc_bytes += u.len();
                match Update::decode_v1(u) {
                    Ok(update) => {
                        if txn.apply_update(update).is_err() {
                            bad += 1;
                        }
                    }
                    Err(_) => bad += 1,
                }
            }
        }
        let generation = Arc::new(AtomicU64::new(0));
        count_writes(&doc, generation.clone());
        let room = RoomCore {
            generation,
            full_state: None,
            awareness: Awareness::new(doc),
            conns: BTreeMap::new(),
            joined_total: 0,
            chat_seq: 0,
            limits,
            types,
            doc_bytes,
            awareness_owner: BTreeMap::new(),
            access: Access::from_state(Default::default(), limits.max_links),
            tokens: Arc::new(NoTokens),
            waiting: BTreeMap::new(),
            ghosts: BTreeMap::new(),
            remote_awareness: BTreeMap::new(),
            remote_people: Default::default(),
            people_version: 0,
            bus: false,
        };
        (room, bad)
    }

    /// The room's document.
    pub fn doc(&self) -> &Doc {
        self.awareness.doc()
    }

    /// How many connections are in the room.
    pub fn conn_count(&self) -> usize {
        self.conns.len()
    }

    /// Everyone in the room that has been announced: this node's people in join order, then
    /// those on other nodes.
    pub fn participants(&self) -> Vec<Participant> {
        let mut all = self.local_participants();
        all.extend(self.remote_people.all().cloned());
        all
    }

    /// Paths and UTF-16 lengths of the room's files, sorted by path.
    pub fn files(&self) -> Vec<(String, u32)> {
        let txn = self.doc().transact();
        let Some(files) = txn.get_map(shape::FILES) else {
            return Vec::new();
        };
        let mut out: Vec<(String, u32)> = files
            .iter(&txn)
            .filter_map(|(path, value)| match value {
                yrs::Out::YText(text) => Some((
                    path.to_string(),
                    yrs::GetString::get_string(&text, &txn).encode_utf16().count() as u32,
                )),
                _ => None,
            })
            .collect();
        out.sort();
        out
    }

    /// Every file of the room with its text.
    pub fn file_texts(&self) -> Vec<(String, String)> {
        let txn = self.doc().transact();
        let Some(files) = txn.get_map(shape::FILES) else {
            return Vec::new();
        };
        files
            .iter(&txn)
            .filter_map(|(path, value)| match value {
                yrs::Out::YText(text) => Some((path.to_string(), yrs::GetString::get_string(&text, &txn))),
                _ => None,
            })
            .collect()
    }

    /// The role of a connection.
    pub fn role(&self, id: ConnId) -> Option<Role> {
        self.conns.get(&id).map(|c| c.participant.role)
    }

    /// Sends an error to one connection.
    pub fn error_to(&self, id: ConnId, request: Option<u64>, code: ErrorCode, message: String) -> Effects {
        let mut fx = Effects {
            request,
            ..Effects::default()
        };
        if let Some(conn) = self.conns.get(&id) {
            fx.error(conn, id, code, message);
        }
        fx
    }

    /// The room compacted: the integrated state, and apart from it whatever waits for a
    /// missing dependency. The caller stores the state as the snapshot and keeps `pending` in
    /// the log after it, so compaction never stops for a dependency that may never come,
    /// while the waiting updates are retried at every load and integrate once it arrives.
    pub fn snapshot(&self) -> Snapshot {
        use yrs::encoding::write::Write;
        use yrs::updates::encoder::{Encode, Encoder, EncoderV1};
        let txn = self.doc().transact();
        // `encode_diff_v1` from an empty state vector is the whole integrated document with
        // its delete set. `encode_state_as_update_v1` would merge the pending updates in, and
        // a merge that fails panics inside yrs: an update that never integrates must not be
        // able to spoil (or stop) the room's snapshot.
        let state = txn.encode_diff_v1(&yrs::StateVector::default());
        let store = txn.store();
        let mut pending = Vec::new();
        if let Some(update) = store.pending_update() {
            pending.push(update.update.encode_v1());
        }
        if let Some(ds) = store.pending_ds() {
            // An update with no blocks and only this delete set.
            let mut enc = EncoderV1::new();
            enc.write_var(0u32);
            ds.encode(&mut enc);
            pending.push(enc.to_vec());
        }
        Snapshot { state, pending }
    }

    /// A connection with a checked token asks in: it takes its seat (a new one for a link),
    /// waits in the lobby when the room requires approval, or is refused.
    /// `user` is the signed-in user of the connection, if any.
    pub fn join(
        &mut self,
        id: ConnId,
        grant: &Grant,
        user: Option<crate::accounts::identity::Verified>,
        now_ms: u64,
    ) -> Result<Effects, Refusal> {
        let conns = &self.conns;
        let live = |seat: &str| conns.values().any(|c| c.participant.seat == seat);
        match self.access.enter(grant, user.as_ref(), now_ms, live)? {
            super::access::Entry::Seat(seat) => Ok(self.enter(id, &seat, user, now_ms)),
            super::access::Entry::Lobby { seat, link } => self.wait(id, seat, link, user, now_ms),
        }
    }

    /// A connection takes its seat: it gets the room's state vector and the cursors; everyone
    /// hears of it at its first message ([`RoomCore::announce`]). A signed-in user's name is
    /// the provider's, marked verified, and the seat keeps it.
    fn enter(
        &mut self,
        id: ConnId,
        seat: &str,
        user: Option<crate::accounts::identity::Verified>,
        _now_ms: u64,
    ) -> Effects {
        let color = PALETTE[(self.joined_total % PALETTE.len() as u64) as usize].to_string();
        self.joined_total += 1;
        if let Some(u) = &user {
            self.access.rename_seat(seat, &u.name);
        }
        let record = self.access.seat(seat).expect("entered seats exist").clone();
        let participant = Participant {
            conn_id: id,
            seat: seat.to_owned(),
            verified: user.is_some(),
            link: Some(record.link.clone()),
            name: match &user {
                Some(u) => u.name.clone(),
                None if record.name.is_empty() => "anonymous".into(),
                None => record.name.clone(),
            },
            color,
            role: record.role,
            client: "yjs".into(),
            doc_client_id: None,
            companion: false,
        };
        self.conns.insert(
            id,
            Box::new(Conn {
                participant,
                user: user.map(Box::new),
                mesh: false,
                announced: false,
                synced: false,
                awareness_ids: BTreeSet::new(),
                awareness_owned: None,
                awareness_tokens: self.limits.awareness_burst,
                awareness_at_ms: 0,
            }),
        );
        let mut fx = Effects::default();
        let sv = self.doc().transact().state_vector();
        fx.to(Target::One(id), encode_yjs(&Message::Sync(SyncMessage::SyncStep1(sv))));
        if let Ok(update) = self.awareness.update() {
            if !update.clients.is_empty() {
                fx.to(Target::One(id), encode_yjs(&Message::Awareness(update)));
            }
        }
        fx
    }

    /// Everyone hears of connection `id` by the name it has now, and the audit trail records
    /// its seat's join unless another connection of that seat is here already. Once.
    fn announce(&mut self, id: ConnId, now_ms: u64, fx: &mut Effects) {
        if let Some(participant) = self.mark_announced(id, now_ms) {
            fx.to(
                Target::MeshClients,
                encode_mesh(&ServerMessage::ParticipantJoined { participant }),
            );
        }
    }

    /// The bookkeeping of [`RoomCore::announce`] without the message: the participant, when
    /// it was not announced before.
    fn mark_announced(&mut self, id: ConnId, now_ms: u64) -> Option<Participant> {
        let conn = self.conns.get(&id).filter(|c| !c.announced)?;
        let participant = conn.participant.clone();
        let seat = &participant.seat;
        let first = !self
            .conns
            .iter()
            .any(|(other, c)| *other != id && c.announced && c.participant.seat == *seat);
        if first {
            let who = super::access::actor_name(&participant.name, seat);
            self.access
                .record(now_ms, mesh_protocol::messages::AuditKind::Join, &who, seat, "");
        }
        self.conns.get_mut(&id).expect("just read").announced = true;
        self.people_version += 1;
        Some(participant)
    }

    /// A connection left (or was dropped).
    pub fn leave(&mut self, id: ConnId, now_ms: u64) -> Effects {
        let mut fx = Effects::default();
        if self.waiting.contains_key(&id) {
            self.leave_lobby(id, &mut fx);
            return fx;
        }
        let Some(conn) = self.conns.remove(&id) else { return fx };
        self.ghosts.remove(&id);
        let seat = &conn.participant.seat;
        if conn.announced && !self.conns.values().any(|c| c.announced && c.participant.seat == *seat) {
            let who = super::access::actor_name(&conn.participant.name, seat);
            self.access
                .record(now_ms, mesh_protocol::messages::AuditKind::Leave, &who, seat, "");
        }
        if let Some(owned) = conn.awareness_owned {
            if self.awareness_owner.get(&owned) == Some(&id) {
                self.awareness_owner.remove(&owned);
            }
        }
        // Clear the awareness states the connection published, as y-websocket does, so
        // everyone drops its cursors at once.
        let mut removed = AwarenessUpdate {
            clients: Default::default(),
        };
        for client in conn.awareness_ids {
            let cid = yrs::block::ClientID::new(client);
            if let Some((clock, _)) = self.awareness.meta(cid) {
                removed.clients.insert(
                    cid,
                    yrs::sync::awareness::AwarenessUpdateEntry {
                        // A state at the largest clock is cleared at that clock (y-protocols
                        // takes a null state at an equal clock); a client cannot make it wrap.
                        clock: clock.saturating_add(1),
                        json: "null".into(),
                    },
                );
            }
        }
        if !removed.clients.is_empty() {
            let _ = self.awareness.apply_update(removed.clone());
            if self.bus {
                fx.bus_awareness
                    .push(yrs::updates::encoder::Encode::encode_v1(&removed));
            }
            fx.to(Target::All, encode_yjs(&Message::Awareness(removed)));
        }
        if conn.announced {
            self.people_version += 1;
            fx.to(
                Target::MeshClients,
                encode_mesh(&ServerMessage::ParticipantLeft { conn_id: id }),
            );
        }
        fx
    }

    /// Handles one decoded message of a connection.
    pub fn handle(&mut self, id: ConnId, frame: Frame<Request>, now_ms: u64) -> Effects {
        let mut fx = Effects::default();
        if self.waiting.contains_key(&id) {
            self.handle_waiting(id, frame, &mut fx);
            return fx;
        }
        if !self.conns.contains_key(&id) {
            return fx;
        }
        let hello = matches!(
            frame,
            Frame::Mesh(Request {
                message: ClientMessage::Hello { .. },
                ..
            })
        );
        if !hello {
            self.announce(id, now_ms, &mut fx);
        }
        match frame {
            Frame::Yjs(msg) => self.handle_yjs(id, msg, now_ms, &mut fx),
            Frame::Mesh(Request { id: request, message }) => {
                fx.request = request;
                self.handle_mesh(id, message, now_ms, &mut fx);
                fx.request = None;
            }
        }
        fx
    }

    /// Sends an error to a connection (used by the actor for frames that failed to decode).
    pub fn refuse(&self, id: ConnId, code: ErrorCode, message: String) -> Effects {
        let mut fx = Effects::default();
        if let Some(conn) = self.conns.get(&id) {
            fx.error(conn, id, code, message);
        }
        fx
    }

    fn handle_yjs(&mut self, id: ConnId, msg: Message, now_ms: u64, fx: &mut Effects) {
        match msg {
            Message::Sync(SyncMessage::SyncStep1(sv)) => {
                if let Some(conn) = self.conns.get_mut(&id) {
                    conn.synced = true;
                }
                let frame = if sv.is_empty() {
                    self.full_state_frame()
                } else {
                    let diff = self.doc().transact().encode_state_as_update_v1(&sv);
                    Bytes::from(encode_yjs(&Message::Sync(SyncMessage::SyncStep2(diff))))
                };
                fx.to_shared(Target::One(id), frame);
            }
            Message::Sync(SyncMessage::SyncStep2(update)) | Message::Sync(SyncMessage::Update(update)) => {
                self.apply_client_update(id, update, fx);
            }
            Message::Awareness(update) => self.apply_awareness(id, update, now_ms, fx),
            Message::AwarenessQuery => {
                if let Ok(update) = self.awareness.update() {
                    fx.to(Target::One(id), encode_yjs(&Message::Awareness(update)));
                }
            }
            // Authentication happens at the HTTP upgrade (or in mesh's own first `auth`
            // message); y-protocols' auth message carries nothing for the server.
            Message::Auth(_) => {}
            Message::Custom(..) => {
                let conn = &self.conns[&id];
                fx.error(conn, id, ErrorCode::UnknownMessage, "unknown message tag".into());
            }
        }
    }

    /// A client's update, in the order the design asks for: the role first, then the size,
    /// then mesh's own bounded parse and the guard's checks against the document, and only
    /// then yrs.
    fn apply_client_update(&mut self, id: ConnId, raw: Vec<u8>, fx: &mut Effects) {
        let conn = &self.conns[&id];
        if !conn.participant.role.can_write() {
            // Sync step 2 of a reader that has nothing new is not an edit.
            if raw != EMPTY_UPDATE {
                fx.error(
                    conn,
                    id,
                    ErrorCode::Forbidden,
                    "your role is reader: edits are not accepted; ask the host for write access".into(),
                );
            }
            return;
        }
        let max = self.limits.max_doc_bytes;
        if self.doc_bytes + raw.len() > max {
            metrics::counter!("mesh_updates_refused_total", "reason" => "doc_size").increment(1);
            fx.error(
                conn,
                id,
                ErrorCode::TooLarge,
                format!(
                    "the room's document would exceed its size limit of {max} bytes (max_doc_bytes); delete files or ask the operator to raise it"
                ),
            );
            return;
        }
        let refused = |fx: &mut Effects, conn: &Conn, refusal: guard::Refusal| {
            let reason = match refusal {
                guard::Refusal::Limit(_) => "limit",
                guard::Refusal::MissingDependency(_) => "missing_dependency",
                _ => "invalid",
            };
            metrics::counter!("mesh_updates_refused_total", "reason" => reason).increment(1);
            let code = match refusal {
                guard::Refusal::Limit(_) => ErrorCode::TooLarge,
                _ => ErrorCode::InvalidUpdate,
            };
            fx.error(conn, id, code, refusal.to_string());
        };
        let parsed = match guard::parse(&raw) {
            Ok(p) => p,
            Err(r) => return refused(fx, conn, r),
        };
        if parsed.is_empty() {
            return;
        }
        let sv = self.doc().transact().state_vector();
        if let Err(r) = guard::check(&parsed, &sv, &self.types) {
            return refused(fx, conn, r);
        }
        if let Err(message) = self.check_file_count(&parsed) {
            metrics::counter!("mesh_updates_refused_total", "reason" => "files").increment(1);
            fx.error(conn, id, ErrorCode::TooLarge, message);
            return;
        }
        let update = match Update::decode_v1(&raw) {
            Ok(u) => u,
            Err(e) => {
                fx.error(
                    conn,
                    id,
                    ErrorCode::InvalidUpdate,
                    format!("cannot decode the update: {e}"),
                );
                return;
            }
        };
        let result = self.doc().transact_mut().apply_update(update);
        if let Err(e) = result {
            let conn = &self.conns[&id];
            fx.error(
                conn,
                id,
                ErrorCode::InvalidUpdate,
                format!("the update does not apply to this room: {e}"),
            );
            return;
        }
        self.types.record(&parsed);
        self.doc_bytes += raw.len();
        fx.to(
            Target::SyncedBut(id),
            encode_yjs(&Message::Sync(SyncMessage::Update(raw.clone()))),
        );
        fx.persist.push(raw);
    }

    /// Refuses an update that would add files past the room's limit.
    fn check_file_count(&self, parsed: &guard::Parsed) -> Result<(), String> {
        // Most updates (keystrokes) set no key of `files`: nothing to count then.
        if parsed.keys_set_in_root(shape::FILES).next().is_none() {
            return Ok(());
        }
        let txn = self.doc().transact();
        let files = txn.get_map(shape::FILES);
        let have = files.as_ref().map_or(0, |f| f.len(&txn) as usize);
        let mut new_keys: Vec<&str> = parsed
            .keys_set_in_root(shape::FILES)
            .filter(|k| files.as_ref().is_none_or(|f| !f.contains_key(&txn, k)))
            .collect();
        new_keys.sort_unstable();
        new_keys.dedup();
        let max = self.limits.max_files;
        if have + new_keys.len() > max {
            return Err(format!(
                "the room would hold {} files, over its limit of {max} (max_files); delete files or ask the operator to raise it",
                have + new_keys.len()
            ));
        }
        Ok(())
    }

    /// Takes the document (and what is derived from it) of `fresh`, keeping the connections,
    /// their roles and awareness: the room goes on with a document rebuilt from the store.
    pub fn replace_document(&mut self, fresh: RoomCore) {
        let states: Vec<_> = self.awareness.iter().map(|(id, state)| (id, state.clone())).collect();
        self.awareness = fresh.awareness;
        for (id, state) in states {
            if let Some(json) = state.data {
                let _ = self.awareness.apply_update(AwarenessUpdate {
                    clients: [(
                        id,
                        yrs::sync::awareness::AwarenessUpdateEntry {
                            clock: state.clock,
                            json,
                        },
                    )]
                    .into(),
                });
            }
        }
        self.types = fresh.types;
        self.doc_bytes = fresh.doc_bytes;
        self.generation = fresh.generation;
        self.full_state = None;
    }

    /// The whole document as a sync step 2 frame, encoded again only when the document
    /// changed since the last time.
    fn full_state_frame(&mut self) -> Bytes {
        let now = self.generation.load(Ordering::Relaxed);
        if let Some((at, frame)) = &self.full_state {
            if *at == now {
                return frame.clone();
            }
        }
        let diff = self
            .doc()
            .transact()
            .encode_state_as_update_v1(&yrs::StateVector::default());
        let frame = Bytes::from(encode_yjs(&Message::Sync(SyncMessage::SyncStep2(diff))));
        self.full_state = Some((now, frame.clone()));
        frame
    }

    /// The document's size as the limit counts it, in bytes.
    pub fn doc_bytes(&self) -> usize {
        self.doc_bytes
    }

    /// After a compaction the document's size is the snapshot's.
    pub fn compacted(&mut self, snapshot_bytes: usize) {
        self.doc_bytes = snapshot_bytes;
    }
}

fn clean_name(name: &str) -> String {
    let cleaned: String = name.chars().filter(|c| !c.is_control()).take(MAX_NAME_CHARS).collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() {
        "anonymous".into()
    } else {
        cleaned.to_string()
    }
}

/// `wanted`, or with ` (2)` (then 3, ...) appended when someone else has it.
fn unique_name(taken: &BTreeSet<String>, wanted: String) -> String {
    if !taken.contains(&wanted) {
        return wanted;
    }
    (2..)
        .map(|n| format!("{wanted} ({n})"))
        .find(|candidate| !taken.contains(candidate))
        .expect("some number is free")
}

fn is_color(c: &str) -> bool {
    c.len() == 7 && c.starts_with('#') && c[1..].bytes().all(|b| b.is_ascii_hexdigit())
}

impl RoomCore {
    /// Names held by connections of other seats than `seat`.
    fn names_taken_by_others(&self, seat: &str) -> BTreeSet<String> {
        self.conns
            .values()
            .filter(|c| c.participant.seat != seat)
            .map(|c| c.participant.name.clone())
            .collect()
    }

    /// Whether a connection is in the room (not waiting in the lobby, not gone).
    pub fn is_member(&self, id: ConnId) -> bool {
        self.conns.contains_key(&id)
    }

    /// Whether a connection speaks mesh's extension messages and holds the host's seat.
    pub fn is_host_client(&self, id: ConnId) -> bool {
        self.conns
            .get(&id)
            .is_some_and(|c| c.mesh && c.participant.role == Role::Host)
    }

    /// Whether a connection speaks mesh's extension messages.
    pub fn is_mesh(&self, id: ConnId) -> bool {
        self.conns.get(&id).is_some_and(|c| c.mesh)
    }

    /// Whether the room answered a connection's sync step 1 (it receives updates).
    pub fn is_synced(&self, id: ConnId) -> bool {
        self.conns.get(&id).is_some_and(|c| c.synced)
    }

    /// What decides which of the room's frames a connection gets; `None` for a connection
    /// that is not a member (one in the lobby gets only what names it).
    pub fn recipient(&self, id: ConnId) -> Option<Recipient> {
        self.conns.get(&id).map(|c| Recipient {
            synced: c.synced,
            mesh: c.mesh,
            host: c.mesh && c.participant.role == Role::Host,
        })
    }
}

/// A member connection as frames are addressed to it (see [`Target::includes`]).
#[derive(Debug, Clone, Copy)]
pub struct Recipient {
    /// The room answered its sync step 1.
    pub synced: bool,
    /// It speaks mesh's extension messages.
    pub mesh: bool,
    /// It speaks them and holds the host's seat.
    pub host: bool,
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use mesh_protocol::PROTOCOL_VERSION;

    #[test]
    fn a_companion_connection_says_so_in_the_participant_list() {
        let (mut core, _) = RoomCore::load(None, &[]);
        let hello = |companion| {
            Frame::Mesh(
                ClientMessage::Hello {
                    version: PROTOCOL_VERSION,
                    name: "ada".into(),
                    color: None,
                    client: Some("mesh-proxy".into()),
                    doc_client_id: None,
                    companion,
                }
                .into(),
            )
        };
        for (conn, companion) in [(1, false), (2, true)] {
            core.join_as(conn, Role::Writer, 0);
            core.handle(conn, hello(companion), 0);
        }
        let flags: Vec<(ConnId, bool)> = core.participants().iter().map(|p| (p.conn_id, p.companion)).collect();
        assert_eq!(flags, vec![(1, false), (2, true)]);
    }

    #[test]
    fn a_frame_reaches_whom_its_target_names_and_the_lobby_only_what_names_it() {
        let (plain, synced, mesh, host) = (
            Recipient {
                synced: false,
                mesh: false,
                host: false,
            },
            Recipient {
                synced: true,
                mesh: false,
                host: false,
            },
            Recipient {
                synced: true,
                mesh: true,
                host: false,
            },
            Recipient {
                synced: true,
                mesh: true,
                host: true,
            },
        );
        // The lobby (not a member) gets a frame only when it is named.
        assert!(Target::One(7).includes(7, None));
        for target in [
            Target::All,
            Target::AllBut(1),
            Target::Synced,
            Target::MeshClients,
            Target::Hosts,
        ] {
            assert!(!target.includes(7, None), "{target:?} reached the lobby");
        }
        assert!(!Target::One(7).includes(8, Some(host)));
        assert!(Target::All.includes(2, Some(plain)));
        assert!(Target::AllBut(1).includes(2, Some(plain)) && !Target::AllBut(2).includes(2, Some(host)));
        assert!(!Target::Synced.includes(2, Some(plain)) && Target::Synced.includes(2, Some(synced)));
        assert!(!Target::SyncedBut(2).includes(2, Some(synced)) && Target::SyncedBut(1).includes(2, Some(synced)));
        assert!(!Target::MeshClients.includes(2, Some(synced)) && Target::Room.includes(2, Some(mesh)));
        assert!(!Target::RoomBut(2).includes(2, Some(mesh)) && Target::MeshClientsBut(1).includes(2, Some(mesh)));
        assert!(!Target::Hosts.includes(2, Some(mesh)) && Target::Hosts.includes(2, Some(host)));
        assert!(!Target::HostsBut(2).includes(2, Some(host)) && Target::HostsBut(1).includes(2, Some(host)));
    }

    /// Three successive edits of one client ("a", "b", "c" appended to text `t`): the third
    /// depends on the second.
    pub(crate) fn three_edits() -> [Vec<u8>; 3] {
        use yrs::Text;
        let doc = shape::new_doc();
        let t = doc.get_or_insert_text("t");
        ["a", "b", "c"].map(|s| {
            let mut txn = doc.transact_mut();
            let len = t.len(&txn);
            t.insert(&mut txn, len, s);
            txn.encode_update_v1()
        })
    }

    pub(crate) fn text_t(core: &RoomCore) -> String {
        let t = core.doc().get_or_insert_text("t");
        let txn = core.doc().transact();
        yrs::GetString::get_string(&t, &txn)
    }

    #[test]
    fn a_snapshot_holds_the_integrated_state_and_keeps_waiting_updates_apart() {
        let [a, b, c] = three_edits();
        // "c" waits for "b", which is withheld.
        let (core, bad) = RoomCore::load(None, &[a, c]);
        assert_eq!((bad, text_t(&core)), (0, "a".to_string()));
        let snap = core.snapshot();
        assert_eq!(snap.pending.len(), 1, "the waiting update is kept apart");
        let (state_only, _) = RoomCore::load(Some(&snap.state), &[]);
        assert_eq!(text_t(&state_only), "a");
        assert!(
            !state_only.doc().transact().has_missing_updates(),
            "the snapshot itself holds only integrated state"
        );
        // Reloaded from the snapshot and the kept update, the room still waits; once the
        // dependency arrives, everything integrates.
        let (reloaded, _) = RoomCore::load(Some(&snap.state), &snap.pending);
        assert_eq!(text_t(&reloaded), "a");
        assert!(reloaded.doc().transact().has_missing_updates());
        let mut tail = snap.pending.clone();
        tail.push(b);
        let (complete, bad) = RoomCore::load(Some(&snap.state), &tail);
        assert_eq!((bad, text_t(&complete)), (0, "abc".to_string()));
        assert_eq!(complete.snapshot().pending, Vec::<Vec<u8>>::new());
    }

    #[test]
    fn a_room_with_nothing_waiting_snapshots_to_its_whole_state() {
        let [a, b, c] = three_edits();
        let (core, _) = RoomCore::load(None, &[a, b, c]);
        let snap = core.snapshot();
        assert!(snap.pending.is_empty());
        let (reloaded, bad) = RoomCore::load(Some(&snap.state), &[]);
        assert_eq!((bad, text_t(&reloaded)), (0, "abc".to_string()));
    }
}

#[cfg(test)]
mod sync_order_tests {
    use super::*;
    use mesh_protocol::PROTOCOL_VERSION;

    fn update(text: &str) -> Frame<Request> {
        let doc = shape::new_doc();
        let files = doc.get_or_insert_map(shape::FILES);
        let u = {
            let mut txn = doc.transact_mut();
            files.insert(&mut txn, "a.txt", yrs::TextPrelim::new(text));
            txn.encode_update_v1()
        };
        Frame::Yjs(Message::Sync(SyncMessage::Update(u)))
    }

    fn synced_targets(fx: &Effects) -> Vec<Target> {
        fx.send
            .iter()
            .filter(|(t, _)| matches!(t, Target::Synced | Target::SyncedBut(_)))
            .map(|(t, _)| t.clone())
            .collect()
    }

    fn joined_names(fx: &Effects) -> Vec<String> {
        fx.send
            .iter()
            .flat_map(|(_, f)| mesh_protocol::codec::decode_frame::<ServerMessage>(f).unwrap_or_default())
            .filter_map(|frame| match frame {
                Frame::Mesh(ServerMessage::ParticipantJoined { participant }) => Some(participant.name),
                _ => None,
            })
            .collect()
    }

    fn audit_actors(core: &RoomCore) -> Vec<String> {
        let host = super::super::access::Caller {
            seat: None,
            role: Role::Host,
            name: "test".into(),
        };
        let mut entries = core.access.audit(&host, None).unwrap();
        entries.reverse();
        entries
            .into_iter()
            .map(|e| format!("{:?} {}", e.kind, e.actor))
            .collect()
    }

    #[test]
    fn a_connection_is_announced_at_its_first_message_by_the_name_its_hello_gives() {
        let (mut core, _) = RoomCore::load(None, &[]);
        let fx = core.join_as(1, Role::Writer, 0);
        assert!(joined_names(&fx).is_empty(), "nobody hears of it before it speaks");
        let hello = Frame::Mesh(Request {
            id: None,
            message: ClientMessage::Hello {
                version: PROTOCOL_VERSION,
                name: "ada".into(),
                color: None,
                client: None,
                doc_client_id: None,
                companion: false,
            },
        });
        let fx = core.handle(1, hello, 0);
        assert_eq!(joined_names(&fx), ["ada"]);
        // A stock Yjs client says no hello: announced at its first sync message.
        core.join_as(2, Role::Writer, 0);
        let step1 = Frame::Yjs(Message::Sync(SyncMessage::SyncStep1(yrs::StateVector::default())));
        let fx = core.handle(2, step1.clone(), 0);
        assert_eq!(joined_names(&fx), ["anonymous"]);
        assert!(joined_names(&core.handle(2, step1, 0)).is_empty(), "once");
        // One that sends nothing saw nothing of the document, and leaves no trace.
        core.join_as(3, Role::Writer, 0);
        let fx = core.leave(3, 0);
        assert!(fx.send.is_empty(), "{:?}", fx.send);
        core.leave(1, 0);
        let actors = audit_actors(&core);
        assert_eq!(actors.len(), 3, "{actors:?}");
        assert!(actors[0].starts_with("Join ada ["), "{actors:?}");
        assert!(actors[1].starts_with("Join anonymous ["), "{actors:?}");
        assert!(actors[2].starts_with("Leave ada ["), "{actors:?}");
    }

    #[test]
    fn new_clients_share_one_encoding_of_the_document_until_it_changes() {
        let (mut core, _) = RoomCore::load(None, &[]);
        core.join_as(1, Role::Writer, 0);
        core.handle(1, update("hello"), 0);
        let step1 = Frame::Yjs(Message::Sync(SyncMessage::SyncStep1(yrs::StateVector::default())));
        let step2 = |core: &mut RoomCore, id: ConnId| {
            core.join_as(id, Role::Writer, 0);
            let fx = core.handle(id, step1.clone(), 0);
            let (_, frame) = fx
                .send
                .into_iter()
                .find(|(t, f)| *t == Target::One(id) && f.starts_with(&[0, 1]))
                .expect("a sync step 2 for the joiner");
            frame
        };
        let (a, b) = (step2(&mut core, 2), step2(&mut core, 3));
        assert_eq!(a.as_ptr(), b.as_ptr(), "one encoding, shared");
        core.handle(1, update(" world"), 0);
        let c = step2(&mut core, 4);
        assert_ne!(c.as_ptr(), a.as_ptr(), "the document changed: encoded again");
        let writers = |frame: &Bytes| {
            let Ok(frames) = mesh_protocol::codec::decode_frame::<ServerMessage>(frame) else {
                panic!("the frame decodes")
            };
            let Some(Frame::Yjs(Message::Sync(SyncMessage::SyncStep2(u)))) = frames.into_iter().next() else {
                panic!("a sync step 2")
            };
            let doc = Doc::new();
            doc.transact_mut().apply_update(Update::decode_v1(&u).unwrap()).unwrap();
            let writers = doc.transact().state_vector().len();
            writers
        };
        assert_eq!((writers(&a), writers(&c)), (1, 2), "the new joiner gets the change");
    }

    #[test]
    fn updates_reach_a_connection_only_after_its_sync_step_1_is_answered() {
        let (mut core, _) = RoomCore::load(None, &[]);
        core.join_as(1, Role::Writer, 0);
        core.join_as(2, Role::Writer, 0);
        assert!(!core.is_synced(2), "a new connection is still syncing");
        let fx = core.handle(1, update("hello"), 0);
        assert_eq!(
            synced_targets(&fx),
            vec![Target::SyncedBut(1)],
            "updates go only to synced peers"
        );
        let step1 = Frame::Yjs(Message::Sync(SyncMessage::SyncStep1(yrs::StateVector::default())));
        let fx = core.handle(2, step1, 0);
        assert!(core.is_synced(2));
        // The answer holds everything so far, "hello" included.
        assert!(
            fx.send
                .iter()
                .any(|(t, f)| *t == Target::One(2) && String::from_utf8_lossy(f).contains("hello")),
            "the sync step 2 carries what the connection missed"
        );
    }
}
