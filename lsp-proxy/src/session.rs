//! The session: the one task that owns the proxy's replica of the room, the open documents
//! and the connection. Everything reaches it as an [`Event`] through one channel, in order;
//! it never waits on the editor (requests to the editor go through the outbox task, whose
//! answers come back as events).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use mesh_protocol::codec::{encode_mesh, encode_yjs, Frame};
use mesh_protocol::messages::Role;
use mesh_protocol::rest::{CreateSession, CreatedSession};
use mesh_protocol::{doc as shape, ClientMessage, ErrorCode, ServerMessage, PROTOCOL_VERSION};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};
use tower_lsp_server::lsp_types::{Position, Range};
use yrs::sync::{Awareness, Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, Map, MapRef, Origin, ReadTxn, Text, TextPrelim, TextRef, Transact, Update};

use crate::link::RoomTarget;
use crate::lsp_ext::*;
use crate::room::{self, Outgoing, RoomConn, RoomEvent};
use crate::sync::{ChangeKind, DocSync, EditorBatch};
use crate::text::Encoding;
use crate::workspace;

/// Origin of transactions that apply what the server sent (never sent back).
const REMOTE: &str = "remote";

/// How often the session looks at timers (batch timeouts, hash checks).
const TICK: Duration = Duration::from_millis(250);

/// A document is compared with the editor's text this long after its last change.
const HASH_CHECK_AFTER: Duration = Duration::from_millis(1500);

/// An edit batch the editor has not echoed after this long is given up on, and the
/// editor's text is checked.
const BATCH_TIMEOUT: Duration = Duration::from_secs(5);

/// The most bytes of file text put into one transaction while uploading a folder; keeps
/// each update frame well under the server's frame limit.
const UPLOAD_CHUNK_BYTES: usize = 2 * 1024 * 1024;

/// How long the server may take to answer a run request; it answers before the container
/// starts, so only a lost connection or a stuck room takes this long.
const RUN_START_TIMEOUT: Duration = Duration::from_secs(15);

/// The most stdin text one `mesh/runInput` may carry: what a person types or pastes, not a
/// file upload.
pub const MAX_RUN_INPUT_BYTES: usize = 64 * 1024;

/// Input goes to the server in pieces of at most this many bytes: even when every byte needs
/// JSON's six-byte escape, a piece's message stays under the 64 KiB mesh message limit.
const INPUT_CHUNK_BYTES: usize = 8 * 1024;

/// Language ids are short words; a longer one is a mistake, refused before it travels.
const MAX_LANGUAGE_BYTES: usize = 64;

/// Where a run request's answer goes.
type RunReply = oneshot::Sender<Result<RunResult, String>>;

/// A request from the editor (or the command line) that wants an answer.
pub enum Request {
    /// Share the workspace folder.
    Share(ShareParams, oneshot::Sender<Result<ShareResult, String>>),
    /// Join a room into the workspace folder.
    Join(String, oneshot::Sender<Result<JoinResult, String>>),
    /// Leave the room.
    Leave(oneshot::Sender<Result<(), String>>),
    /// Current status.
    Status(oneshot::Sender<Status>),
    /// Send a chat message.
    Chat(String, oneshot::Sender<Result<(), String>>),
    /// Chat history.
    ChatHistory(oneshot::Sender<ChatHistory>),
    /// Follow someone (or stop).
    Follow(Option<u64>, oneshot::Sender<Result<(), String>>),
    /// Run a file of the room; answered once the server started it (or refused).
    Run(RunParams, RunReply),
    /// Text for a run's stdin.
    RunInput(RunInputParams, oneshot::Sender<Result<(), String>>),
    /// Stop a run.
    RunStop(String, oneshot::Sender<Result<(), String>>),
}

/// Everything the session reacts to.
pub enum Event {
    /// The editor started us.
    Initialize {
        /// The workspace folder.
        root: Option<PathBuf>,
        /// The negotiated position encoding.
        encoding: Encoding,
        /// The editor's name from `clientInfo` (`Neovim`, `Visual Studio Code`, ...).
        client: Option<String>,
    },
    /// A document was opened.
    Open {
        /// Its URI.
        uri: String,
        /// Version.
        version: i32,
        /// Text.
        text: String,
    },
    /// A document changed.
    Change {
        /// Its URI.
        uri: String,
        /// New version.
        version: i32,
        /// The content changes, in order.
        changes: Vec<(Option<Range>, String)>,
    },
    /// A document was closed.
    Close {
        /// Its URI.
        uri: String,
    },
    /// The local cursor moved.
    Cursor(CursorParams),
    /// The focused editor changed or scrolled.
    ActiveEditor(ActiveEditorParams),
    /// The user took over while following.
    StopFollowing,
    /// A request wanting an answer.
    Request(Request),
    /// The editor answered an edit batch.
    EditAnswered {
        /// The document.
        uri: String,
        /// The batch id.
        id: u64,
        /// Whether it was applied.
        applied: bool,
    },
    /// The editor answered a hash request.
    HashAnswered {
        /// The document.
        uri: String,
        /// The answer, if any.
        result: Option<DocumentHashResult>,
    },
    /// The room was created on the server (for a share).
    Created(
        Result<CreatedSession, String>,
        ShareParams,
        oneshot::Sender<Result<ShareResult, String>>,
    ),
    /// Something from the room connection.
    Room(RoomEvent),
    /// Files changed on disk in the shared folder.
    Disk(Vec<PathBuf>),
    /// The editor is going away.
    Shutdown,
}

/// What the session asks of the editor; the outbox task carries it out.
#[derive(Debug)]
pub enum EditorOut {
    /// A notification.
    Notify(&'static str, serde_json::Value),
    /// `workspace/applyEdit`; the answer comes back as [`Event::EditAnswered`].
    ApplyEdit {
        /// The document.
        uri: String,
        /// The batch.
        batch: EditorBatch,
    },
    /// `mesh/documentHash`; the answer comes back as [`Event::HashAnswered`].
    DocumentHash {
        /// The document.
        uri: String,
    },
}

/// Who we are in rooms.
#[derive(Debug, Clone)]
pub struct Identity {
    /// Display name.
    pub name: String,
    /// Colour, if chosen.
    pub color: Option<String>,
    /// The kind of client (`neovim`, `vscode`, `mesh-proxy`).
    pub client: String,
    /// The default server base URL.
    pub server: String,
    /// The token room creation needs on servers that ask for one (`mesh-server
    /// --create-token`); sent as a bearer token when sharing.
    pub create_token: Option<String>,
}

struct OpenDoc {
    sync: DocSync,
    /// Room path, when the document is inside the shared folder.
    path: Option<String>,
    last_change: Instant,
    hash_checked: bool,
    hash_pending: bool,
    last_cursors: Option<Vec<RemoteCursor>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ConnState {
    Connecting,
    Connected,
    Offline(String),
}

/// Where a share's answer goes.
type ShareReply = oneshot::Sender<Result<ShareResult, String>>;

/// A share waiting for the connection: the files to upload, the answer, where it goes.
type PendingShare = (Vec<(String, String)>, ShareResult, ShareReply);

struct Room {
    target: RoomTarget,
    read_link: Option<String>,
    doc: Doc,
    awareness: Awareness,
    conn: RoomConn,
    state: ConnState,
    synced: bool,
    conn_id: Option<u64>,
    role: Option<Role>,
    participants: BTreeMap<u64, mesh_protocol::messages::Participant>,
    /// Replies waiting for the first sync (a join).
    on_synced: Vec<oneshot::Sender<Result<JoinResult, String>>>,
    /// A share's reply, sent when the server confirms it has the upload.
    share_ack: Option<(ShareResult, ShareReply)>,
    /// Files to upload once connected (a share), and the reply to send then.
    pending_share: Option<PendingShare>,
    /// The room's runs as this proxy sees them.
    runs: Runs,
}

/// A run the room announced and has not seen end.
struct ActiveRun {
    /// Who started it (connection id).
    by: u64,
    /// When its start arrived here.
    started: Instant,
}

/// A run request sent to the server, waiting for its `RunStarted` or its refusal.
struct PendingRun {
    /// The room path asked for.
    path: String,
    /// Where the answer goes.
    reply: RunReply,
    /// When it was sent.
    sent: Instant,
}

/// The room's runs: those going (seen starting since we joined) and our own request in flight.
/// One request at a time: the server answers a refusal with a bare `Error`, which can only be
/// tied to the request while no other one waits.
#[derive(Default)]
struct Runs {
    active: HashMap<String, ActiveRun>,
    pending: Option<PendingRun>,
}

/// The session's state.
pub struct Session {
    identity: Identity,
    events_tx: mpsc::UnboundedSender<Event>,
    out: mpsc::UnboundedSender<EditorOut>,
    root: Option<PathBuf>,
    enc: Encoding,
    docs: HashMap<String, OpenDoc>,
    room: Option<Room>,
    next_batch: u64,
    local_cursor: Option<(String, Vec<Selection>)>,
    local_view: Option<(String, Option<Range>)>,
    following: Option<u64>,
    last_follow: Option<FollowUpdate>,
    last_status: Option<Status>,
    /// The writer link handed out when we shared (our own token is the host's).
    share_link: Option<String>,
    /// Files of the shared folder that no editor has open, kept in sync on disk. The
    /// "editor" of each is the disk: its shadow is the content last read or written.
    disk: HashMap<String, DocSync>,
    /// Room paths changed by remote updates since the disk was last brought up to date.
    remote_dirty: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// Local files that differ from the room at join time: left alone, never synced.
    conflicts: std::collections::HashSet<String>,
    /// Disk paths reported by the watcher, handled once per turn.
    disk_events: std::collections::BTreeSet<PathBuf>,
    watcher: Option<notify::RecommendedWatcher>,
    ignore: Option<ignore::gitignore::Gitignore>,
    /// Whether disk sync runs (after the first sync of a shared or joined folder).
    disk_sync: bool,
    /// Remote cursors may have moved (awareness, text or open documents changed).
    cursors_dirty: bool,
}

/// Starts a session task. Returns the sender for its events.
pub fn spawn(
    identity: Identity,
    out: mpsc::UnboundedSender<EditorOut>,
) -> (mpsc::UnboundedSender<Event>, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let session = Session {
        identity,
        events_tx: tx.clone(),
        out,
        root: None,
        enc: Encoding::Utf16,
        docs: HashMap::new(),
        room: None,
        next_batch: 0,
        local_cursor: None,
        local_view: None,
        following: None,
        last_follow: None,
        last_status: None,
        share_link: None,
        disk: HashMap::new(),
        remote_dirty: Default::default(),
        conflicts: Default::default(),
        disk_events: Default::default(),
        watcher: None,
        ignore: None,
        disk_sync: false,
        cursors_dirty: false,
    };
    let task = tokio::spawn(session.run(rx));
    (tx, task)
}

fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

fn file_uri(root: &Path, path: &str) -> String {
    let abs = root.join(path);
    url::Url::from_file_path(&abs)
        .map(|u| u.to_string())
        .unwrap_or_else(|_| format!("file://{}", abs.display()))
}

/// The name to show for connection `by`: who started a run or a debug session. Connection 0
/// is the REST API; someone missing from the list has left since.
fn participant_name(room: &Room, by: u64) -> String {
    match room.participants.get(&by) {
        Some(p) => p.name.clone(),
        None if by == 0 => "the REST API".into(),
        None => "someone who left".into(),
    }
}

fn uri_to_path(uri: &str) -> Option<PathBuf> {
    url::Url::parse(uri)
        .ok()
        .filter(|u| u.scheme() == "file")
        .and_then(|u| u.to_file_path().ok())
}

impl Session {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Event>) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                ev = rx.recv() => match ev {
                    Some(Event::Shutdown) | None => break,
                    Some(ev) => self.handle(ev),
                },
                _ = tick.tick() => self.on_tick(),
            }
            // Drain whatever else is queued before rendering derived state once.
            while let Ok(ev) = rx.try_recv() {
                if matches!(ev, Event::Shutdown) {
                    return;
                }
                self.handle(ev);
            }
            self.after_events();
        }
    }

    fn notify<N: tower_lsp_server::lsp_types::notification::Notification>(&self, params: N::Params) {
        if let Ok(v) = serde_json::to_value(params) {
            let _ = self.out.send(EditorOut::Notify(N::METHOD, v));
        }
    }

    fn tell(&self, level: &str, message: impl Into<String>) {
        let message = message.into();
        tracing::info!(level, %message, "notify editor");
        self.notify::<NotifyNotification>(NotifyParams {
            level: level.into(),
            message,
        });
    }

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::Initialize { root, encoding, client } => {
                self.enc = encoding;
                if let Some(c) = client {
                    let lower = c.to_lowercase();
                    self.identity.client = if lower.contains("neovim") || lower == "nvim" {
                        "neovim".into()
                    } else if lower.contains("code") {
                        "vscode".into()
                    } else {
                        lower
                    };
                }
                self.root = root.clone();
                if let Some(rec) = root.as_deref().and_then(crate::config::session_for) {
                    // The folder (or a parent) is in a room: rejoin it.
                    if let Ok(target) = RoomTarget::parse(&rec.link) {
                        self.root = Some(rec.dir.clone());
                        tracing::info!(room = %target.room, dir = %rec.dir.display(), "workspace is shared; joining");
                        self.open_room(target, rec.read_link);
                    }
                }
            }
            Event::Open { uri, version, text } => {
                self.cursors_dirty = true;
                self.on_open(uri, version, text)
            }
            Event::Change { uri, version, changes } => {
                self.cursors_dirty = true;
                self.on_change(uri, version, changes)
            }
            Event::Close { uri } => {
                if let Some(doc) = self.docs.remove(&uri) {
                    if let (Some(path), true) = (doc.path, self.disk_sync) {
                        // Back to disk sync: what is on disk now is the baseline; the room's
                        // text (which holds every edit made in the editor) is written over it.
                        let on_disk = self
                            .root
                            .as_deref()
                            .and_then(|r| workspace::safe_join(r, &path).ok())
                            .and_then(|p| std::fs::read_to_string(p).ok());
                        self.disk
                            .insert(path.clone(), DocSync::new(0, &on_disk.unwrap_or_default()));
                        self.remote_dirty.lock().expect("not poisoned").insert(path);
                    }
                }
            }
            Event::Cursor(c) => {
                self.local_cursor = Some((c.uri, c.selections));
                self.publish_awareness();
            }
            Event::ActiveEditor(a) => {
                self.local_view = a.uri.map(|u| (u, a.visible_range));
                self.publish_awareness();
            }
            Event::StopFollowing => {
                if self.following.take().is_some() {
                    self.last_follow = None;
                    self.notify::<FollowStoppedNotification>(FollowStopped {
                        reason: "you took over".into(),
                    });
                }
            }
            Event::Request(req) => self.on_request(req),
            Event::EditAnswered { uri, id, applied } => {
                if let Some(d) = self.docs.get_mut(&uri) {
                    if d.sync.batch_answered(id, applied) {
                        tracing::debug!(%uri, id, "batch refused (stale version); re-basing");
                    }
                }
                self.flush_doc(&uri);
            }
            Event::HashAnswered { uri, result } => self.on_hash(uri, result),
            Event::Created(result, params, reply) => self.on_created(result, params, reply),
            Event::Room(ev) => self.on_room(ev),
            Event::Disk(paths) => self.disk_events.extend(paths),
            Event::Shutdown => {}
        }
    }

    // ----- documents ----------------------------------------------------------------------

    fn room_path(&self, uri: &str) -> Option<String> {
        let root = self.root.as_deref()?;
        workspace::rel_path(root, &uri_to_path(uri)?)
    }

    fn on_open(&mut self, uri: String, version: i32, text: String) {
        let mut path = self.room_path(&uri);
        if path.is_some() && (text.len() as u64 > workspace::MAX_FILE_BYTES || text.contains('\0')) {
            let why = if text.contains('\0') {
                "it is not text"
            } else {
                "it is larger than 4 MiB"
            };
            self.tell("info", format!("{uri} is not shared: {why}"));
            path = None;
        }
        if let Some(p) = &path {
            // The editor owns this file now; the disk follows its saves.
            self.disk.remove(p);
        }
        let doc = OpenDoc {
            sync: DocSync::new(version, &text),
            path,
            last_change: Instant::now(),
            hash_checked: false,
            hash_pending: false,
            last_cursors: None,
        };
        self.docs.insert(uri.clone(), doc);
        self.attach(&uri);
    }

    /// Ties an open document to the room: the room's text wins when the file exists there;
    /// otherwise the editor's text creates it.
    fn attach(&mut self, uri: &str) {
        let Some(room) = self.room.as_ref().filter(|r| r.synced) else {
            return;
        };
        let Some(doc) = self.docs.get(uri) else { return };
        let Some(path) = doc.path.clone() else { return };
        let files = room.doc.get_or_insert_map(shape::FILES);
        let exists = matches!(files.get(&room.doc.transact(), path.as_str()), Some(yrs::Out::YText(_)));
        if !exists {
            if !self.can_write() {
                return;
            }
            let text = doc.sync.shadow().text();
            let mut txn = room.doc.transact_mut();
            files.insert(&mut txn, path.as_str(), TextPrelim::new(text.as_str()));
            tracing::info!(%path, "created in the room from the editor");
        }
        self.flush_doc(uri);
    }

    fn can_write(&self) -> bool {
        self.room
            .as_ref()
            .is_some_and(|r| r.role.is_none_or(|role| role.can_write()))
    }

    fn text_ref(&self, path: &str) -> Option<TextRef> {
        let room = self.room.as_ref()?;
        let txn = room.doc.transact();
        match txn.get_map(shape::FILES)?.get(&txn, path) {
            Some(yrs::Out::YText(t)) => Some(t),
            _ => None,
        }
    }

    fn room_text(&self, path: &str) -> Option<String> {
        let room = self.room.as_ref()?;
        let t = self.text_ref(path)?;
        let txn = room.doc.transact();
        Some(t.get_string(&txn))
    }

    fn on_change(&mut self, uri: String, version: i32, changes: Vec<(Option<Range>, String)>) {
        let enc = self.enc;
        let mut flush = !self.can_write();
        let path = self.docs.get(&uri).and_then(|d| d.path.clone());
        let in_room = self.room.as_ref().is_some_and(|r| r.synced);
        let room_text = match (&path, in_room) {
            (Some(p), true) => self.room_text(p),
            _ => None,
        };
        let writable = self.can_write();
        let Some(doc) = self.docs.get_mut(&uri) else {
            tracing::warn!(%uri, "change to a document that was never opened; ignored");
            return;
        };
        doc.last_change = Instant::now();
        doc.hash_checked = false;
        let Some(room_text) = room_text else {
            // Not in a room: just follow the editor.
            let _ = doc
                .sync
                .editor_changed(version, changes, enc, &doc.sync.shadow().text());
            return;
        };
        let size: usize = changes.iter().map(|(_, t)| t.len()).sum();
        if size as u64 > workspace::MAX_FILE_BYTES {
            // Too big to share in one go: refuse it, and bring the buffer back to the room's
            // text so the two never silently diverge. The user can undo the revert.
            let _ = doc.sync.editor_changed(version, changes, enc, &room_text);
            self.tell(
                "error",
                format!(
                    "a change of {} MiB is too large to share (limit 4 MiB); the buffer was reset to the shared text",
                    size / (1024 * 1024)
                ),
            );
            self.next_batch += 1;
            let id = self.next_batch;
            if let Some(doc) = self.docs.get_mut(&uri) {
                let batch = doc.sync.full_batch(&room_text, enc, id);
                let _ = self.out.send(EditorOut::ApplyEdit { uri, batch });
            }
            return;
        }
        match doc.sync.editor_changed(version, changes, enc, &room_text) {
            // Room changes that arrived while the batch was in flight go out now.
            ChangeKind::Echo => flush = true,
            ChangeKind::PartialEcho => {}
            ChangeKind::OutOfOrder => {
                tracing::error!(%uri, version, "didChange out of order; checking the buffer");
                let _ = self.out.send(EditorOut::DocumentHash { uri: uri.clone() });
            }
            ChangeKind::Local(ops) => {
                if !writable {
                    doc.hash_checked = false;
                    self.tell(
                        "warning",
                        "you joined as a reader: your edits stay local and will be replaced by the room's text",
                    );
                } else if let (Some(path), Some(room)) = (path, self.room.as_ref()) {
                    apply_ops(&room.doc, &path, ops);
                }
            }
        }
        // A reader's buffer goes back to the room's text; an echo lets the next batch go.
        if flush {
            self.flush_doc(&uri);
        }
    }

    /// Sends the next edit batch of a document, if the room has changes the editor lacks.
    fn flush_doc(&mut self, uri: &str) {
        let enc = self.enc;
        // One batch at a time: while one is in flight there is nothing to compute.
        let Some(path) = self
            .docs
            .get(uri)
            .filter(|d| !d.sync.has_inflight())
            .and_then(|d| d.path.clone())
        else {
            return;
        };
        let Some(room_text) = self.room_text(&path) else { return };
        self.next_batch += 1;
        let id = self.next_batch;
        let Some(doc) = self.docs.get_mut(uri) else { return };
        if let Some(batch) = doc.sync.next_batch(&room_text, enc, id) {
            doc.hash_checked = false;
            doc.last_change = Instant::now();
            let _ = self.out.send(EditorOut::ApplyEdit {
                uri: uri.to_string(),
                batch,
            });
        }
    }

    fn on_hash(&mut self, uri: String, result: Option<DocumentHashResult>) {
        let enc = self.enc;
        let path = self.docs.get(&uri).and_then(|d| d.path.clone());
        let room_text = path.as_deref().and_then(|p| self.room_text(p));
        self.next_batch += 1;
        let id = self.next_batch;
        let Some(doc) = self.docs.get_mut(&uri) else { return };
        doc.hash_pending = false;
        let Some(result) = result else { return };
        if result.version != doc.sync.version || doc.sync.has_inflight() {
            // The buffer moved on meanwhile: check again later.
            doc.hash_checked = false;
            return;
        }
        doc.hash_checked = true;
        if result.sha256 == sha256_hex(&doc.sync.shadow().text()) {
            // The buffer is what we believe; send what the room has that it lacks (after a
            // batch was given up on, nothing else would).
            self.flush_doc(&uri);
            return;
        }
        // The editor's buffer is not what we believe it is. Repair it from the room.
        tracing::error!(%uri, version = result.version, "DESYNC: the editor's buffer differs from the proxy's shadow; resyncing from the room");
        crate::DESYNCS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Some(room_text) = room_text else { return };
        let batch = doc.sync.full_batch(&room_text, enc, id);
        let _ = self.out.send(EditorOut::ApplyEdit {
            uri: uri.clone(),
            batch,
        });
        self.tell(
            "warning",
            format!(
                "{}: the buffer had drifted from the room and was resynced",
                path.unwrap_or(uri)
            ),
        );
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        self.expire_run_request(now);
        let mut ask = Vec::new();
        let mut expired = Vec::new();
        for (uri, d) in &mut self.docs {
            if d.path.is_none() || !self.room.as_ref().is_some_and(|r| r.synced) {
                continue;
            }
            if d.sync.inflight_age().is_some_and(|a| a > BATCH_TIMEOUT) {
                expired.push(uri.clone());
                continue;
            }
            if !d.sync.has_inflight()
                && !d.hash_checked
                && !d.hash_pending
                && now.duration_since(d.last_change) > HASH_CHECK_AFTER
            {
                d.hash_pending = true;
                ask.push(uri.clone());
            }
        }
        for uri in expired {
            tracing::warn!(%uri, "the editor never echoed an edit batch; checking its buffer");
            if let Some(d) = self.docs.get_mut(&uri) {
                d.sync.abandon_inflight();
                d.hash_pending = true;
            }
            let _ = self.out.send(EditorOut::DocumentHash { uri });
        }
        for uri in ask {
            let _ = self.out.send(EditorOut::DocumentHash { uri });
        }
    }

    // ----- requests -----------------------------------------------------------------------

    fn on_request(&mut self, req: Request) {
        match req {
            Request::Share(params, reply) => {
                if self.room.is_some() {
                    let _ = reply.send(Err("already in a room: leave it first".into()));
                    return;
                }
                if self.root.is_none() {
                    let _ = reply.send(Err("open a folder first: mesh shares the workspace folder".into()));
                    return;
                }
                let server = params.server.clone().unwrap_or_else(|| self.identity.server.clone());
                let name = params.name.clone().or_else(|| {
                    self.root
                        .as_ref()
                        .and_then(|r| r.file_name())
                        .map(|n| n.to_string_lossy().into_owned())
                });
                let tx = self.events_tx.clone();
                let create_token = self.identity.create_token.clone();
                tokio::spawn(async move {
                    let result = create_room(&server, name, create_token.as_deref()).await;
                    let _ = tx.send(Event::Created(
                        result,
                        ShareParams {
                            server: Some(server),
                            ..params
                        },
                        reply,
                    ));
                });
            }
            Request::Join(link, reply) => {
                let target = match RoomTarget::parse(&link) {
                    Ok(t) => t,
                    Err(e) => {
                        let _ = reply.send(Err(e.to_string()));
                        return;
                    }
                };
                if self.room.is_some() {
                    let _ = reply.send(Err("already in a room: leave it first".into()));
                    return;
                }
                if self.root.is_none() {
                    let _ = reply.send(Err("open a folder first: mesh joins into the workspace folder".into()));
                    return;
                }
                self.open_room(target, None);
                if let Some(room) = self.room.as_mut() {
                    room.on_synced.push(reply);
                }
            }
            Request::Leave(reply) => {
                self.leave();
                let _ = reply.send(Ok(()));
            }
            Request::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Request::Chat(text, reply) => {
                let result = match &self.room {
                    Some(room) if room.state == ConnState::Connected => {
                        let _ = room
                            .conn
                            .tx
                            .send(Outgoing::Frame(encode_mesh(&ClientMessage::Chat { text })));
                        Ok(())
                    }
                    Some(_) => Err("not connected to the room right now; try again when the connection is back".into()),
                    None => Err("not in a room".into()),
                };
                let _ = reply.send(result);
            }
            Request::ChatHistory(reply) => {
                let _ = reply.send(ChatHistory {
                    messages: self.chat_history(),
                });
            }
            Request::Follow(who, reply) => {
                self.following = who;
                self.last_follow = None;
                let result = match who {
                    Some(id) if !self.room.as_ref().is_some_and(|r| r.participants.contains_key(&id)) => {
                        self.following = None;
                        Err(format!("no participant with id {id} in the room"))
                    }
                    _ => Ok(()),
                };
                let _ = reply.send(result);
                self.update_follow();
            }
            Request::Run(params, reply) => self.on_run_request(params, reply),
            Request::RunInput(params, reply) => {
                let _ = reply.send(self.run_input(params));
            }
            Request::RunStop(run_id, reply) => {
                let _ = reply.send(self.run_stop(&run_id));
            }
        }
    }

    fn on_created(
        &mut self,
        result: Result<CreatedSession, String>,
        params: ShareParams,
        reply: oneshot::Sender<Result<ShareResult, String>>,
    ) {
        let created = match result {
            Ok(c) => c,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let server = params.server.unwrap_or_else(|| self.identity.server.clone());
        // The sharer connects as host; the link it hands out carries a writer token.
        let target = RoomTarget {
            server: server.clone(),
            room: created.id,
            token: created.host_token.clone(),
        };
        let root = self.root.clone().expect("checked before creating");
        let scan = workspace::scan(&root);
        let (files, skipped) = match scan {
            Ok(x) => x,
            Err(e) => {
                let _ = reply.send(Err(format!("cannot read {}: {e}", root.display())));
                return;
            }
        };
        if !skipped.binary.is_empty() || !skipped.too_large.is_empty() || !skipped.over_limit.is_empty() {
            self.tell(
                "info",
                format!(
                    "shared without {} binary, {} too large and {} over-limit files",
                    skipped.binary.len(),
                    skipped.too_large.len(),
                    skipped.over_limit.len()
                ),
            );
        }
        self.open_room(target, Some(created.read_link.clone()));
        let _ = crate::config::save_session(crate::config::SessionRecord {
            dir: root,
            link: created.join_link.clone(),
            read_link: Some(created.read_link.clone()),
            name: created.name.clone(),
        });
        self.share_link = Some(created.join_link.clone());
        let result = ShareResult {
            room: created.id.to_string(),
            link: created.join_link,
            read_link: created.read_link,
        };
        let files = files.into_iter().map(|f| (f.path, f.text)).collect();
        if let Some(room) = self.room.as_mut() {
            // The upload waits for the connection, so it goes out as a stream of modest
            // updates rather than one huge sync message.
            room.pending_share = Some((files, result, reply));
        }
    }

    fn leave(&mut self) {
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

    // ----- the room -------------------------------------------------------------------------

    fn open_room(&mut self, target: RoomTarget, read_link: Option<String>) {
        let doc = shape::new_doc();
        let events = self.events_tx.clone();
        let (room_tx, mut room_rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(ev) = room_rx.recv().await {
                if events.send(Event::Room(ev)).is_err() {
                    break;
                }
            }
        });
        let conn = room::connect(target.clone(), room_tx);
        let tx = conn.tx.clone();
        doc.observe_update_v1("mesh-send", move |txn: &yrs::TransactionMut, e: &yrs::UpdateEvent| {
            let remote = txn.origin().is_some_and(|o| *o == Origin::from(REMOTE));
            if !remote {
                let _ = tx.send(Outgoing::Frame(encode_yjs(&Message::Sync(SyncMessage::Update(
                    e.update.clone(),
                )))));
            }
        })
        .expect("a fresh document accepts observers");
        let dirty = self.remote_dirty.clone();
        let files_map = doc.get_or_insert_map(shape::FILES);
        yrs::DeepObservable::observe_deep(
            &files_map,
            "mesh-disk",
            move |txn: &yrs::TransactionMut, events: &yrs::types::Events| {
                if txn.origin().is_none_or(|o| *o != Origin::from(REMOTE)) {
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
        self.room = Some(Room {
            target,
            read_link,
            awareness: Awareness::new(doc.clone()),
            doc,
            conn,
            state: ConnState::Connecting,
            synced: false,
            conn_id: None,
            role: None,
            participants: BTreeMap::new(),
            on_synced: Vec::new(),
            pending_share: None,
            share_ack: None,
            runs: Runs::default(),
        });
    }

    fn on_room(&mut self, ev: RoomEvent) {
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

    fn on_frame(&mut self, frame: Frame<ServerMessage>) {
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

    fn on_first_sync(&mut self) {
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

    fn on_mesh(&mut self, msg: ServerMessage) {
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

    fn chat_history(&self) -> Vec<ChatEntry> {
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

    fn publish_awareness(&mut self) {
        let enc = self.enc;
        let cursor = self.local_cursor.as_ref().and_then(|(uri, sels)| {
            let doc = self.docs.get(uri)?;
            let path = doc.path.clone()?;
            let room_text = self.room_text(&path)?;
            let sels: Vec<(usize, usize)> = sels
                .iter()
                .map(|s| {
                    (
                        doc.sync.editor_pos_to_room(&room_text, s.anchor, enc),
                        doc.sync.editor_pos_to_room(&room_text, s.head, enc),
                    )
                })
                .collect();
            let (anchor, head) = *sels.first()?;
            Some(serde_json::json!({ "path": path, "anchor": anchor, "head": head, "selections": sels }))
        });
        let view = self.local_view.as_ref().and_then(|(uri, range)| {
            let path = self.docs.get(uri).and_then(|d| d.path.clone()).or_else(|| self.room_path(uri))?;
            Some(serde_json::json!({ "path": path, "start_line": range.map(|r| r.start.line), "end_line": range.map(|r| r.end.line) }))
        });
        let color = self.identity.color.clone().or_else(|| {
            self.room.as_ref().and_then(|r| {
                r.conn_id
                    .and_then(|id| r.participants.get(&id))
                    .map(|p| p.color.clone())
            })
        });
        let state = serde_json::json!({
            "user": { "name": self.identity.name, "color": color },
            "cursor": cursor,
            "view": view,
        });
        let Some(room) = self.room.as_mut() else { return };
        if room.awareness.set_local_state(state).is_err() {
            return;
        }
        if room.state != ConnState::Connected {
            return;
        }
        if let Ok(update) = room.awareness.update_with_clients([room.awareness.client_id()]) {
            let _ = room
                .conn
                .tx
                .send(Outgoing::Frame(encode_yjs(&Message::Awareness(update))));
        }
    }

    fn remote_states(&self) -> Vec<(u64, serde_json::Value)> {
        let Some(room) = &self.room else { return Vec::new() };
        let me = room.awareness.client_id();
        room.awareness
            .iter()
            .filter(|(id, _)| *id != me)
            .filter_map(|(id, state)| {
                Some((
                    id.get(),
                    serde_json::from_str::<serde_json::Value>(state.data.as_deref()?).ok()?,
                ))
            })
            .collect()
    }

    fn who(&self, client: u64, state: &serde_json::Value) -> (u64, String, String) {
        let p = self
            .room
            .as_ref()
            .and_then(|r| r.participants.values().find(|p| p.doc_client_id == Some(client)));
        let name = state["user"]["name"]
            .as_str()
            .map(String::from)
            .or_else(|| p.map(|p| p.name.clone()))
            .unwrap_or_else(|| "anonymous".into());
        let color = state["user"]["color"]
            .as_str()
            .map(String::from)
            .or_else(|| p.map(|p| p.color.clone()))
            .unwrap_or_else(|| "#888888".into());
        (p.map(|p| p.conn_id).unwrap_or(client), name, color)
    }

    fn update_cursors(&mut self) {
        let enc = self.enc;
        let states = self.remote_states();
        let uris: Vec<String> = self.docs.keys().cloned().collect();
        for uri in uris {
            let Some(path) = self.docs.get(&uri).and_then(|d| d.path.clone()) else {
                continue;
            };
            let Some(room_text) = self.room_text(&path) else {
                continue;
            };
            let mut cursors = Vec::new();
            for (client, state) in &states {
                let c = &state["cursor"];
                if c["path"].as_str() != Some(path.as_str()) {
                    continue;
                }
                let doc = &self.docs[&uri];
                let to_pos = |off: &serde_json::Value| {
                    off.as_u64()
                        .map(|o| doc.sync.room_offset_to_editor(&room_text, o as usize, enc))
                };
                let mut selections = Vec::new();
                if let Some(list) = c["selections"].as_array() {
                    for pair in list {
                        if let (Some(a), Some(h)) = (to_pos(&pair[0]), to_pos(&pair[1])) {
                            selections.push(Selection { anchor: a, head: h });
                        }
                    }
                }
                if selections.is_empty() {
                    if let (Some(a), Some(h)) = (to_pos(&c["anchor"]), to_pos(&c["head"])) {
                        selections.push(Selection { anchor: a, head: h });
                    }
                }
                if selections.is_empty() {
                    continue;
                }
                let (conn_id, name, color) = self.who(*client, state);
                cursors.push(RemoteCursor {
                    conn_id,
                    name,
                    color,
                    selections,
                });
            }
            cursors.sort_by_key(|c| c.conn_id);
            let doc = self.docs.get_mut(&uri).expect("listed above");
            if doc.last_cursors.as_ref() != Some(&cursors) {
                doc.last_cursors = Some(cursors.clone());
                self.notify::<CursorsNotification>(CursorsParams { uri, cursors });
            }
        }
    }

    fn update_follow(&mut self) {
        let Some(target) = self.following else { return };
        let Some(root) = self.root.clone() else { return };
        let Some(p) = self.room.as_ref().and_then(|r| r.participants.get(&target)).cloned() else {
            return;
        };
        let Some(client) = p.doc_client_id else { return };
        let Some((_, state)) = self.remote_states().into_iter().find(|(c, _)| *c == client) else {
            return;
        };
        let view = &state["view"];
        let Some(path) = view["path"].as_str().or(state["cursor"]["path"].as_str()) else {
            return;
        };
        let visible_range = match (view["start_line"].as_u64(), view["end_line"].as_u64()) {
            (Some(a), Some(b)) => Some(Range {
                start: Position {
                    line: a as u32,
                    character: 0,
                },
                end: Position {
                    line: b as u32,
                    character: 0,
                },
            }),
            _ => None,
        };
        let selections = state["cursor"]["path"].as_str().filter(|p| *p == path).and_then(|_| {
            let room_text = self.room_text(path)?;
            let text = crate::text::Shadow::new(&room_text);
            let at = |v: &serde_json::Value| {
                v.as_u64()
                    .map(|o| text.char_to_pos(text.utf16_to_char(o as usize), self.enc))
            };
            Some(vec![Selection {
                anchor: at(&state["cursor"]["anchor"])?,
                head: at(&state["cursor"]["head"])?,
            }])
        });
        let update = FollowUpdate {
            conn_id: target,
            name: p.name.clone(),
            uri: file_uri(&root, path),
            visible_range,
            selections,
        };
        if self.last_follow.as_ref() != Some(&update) {
            self.last_follow = Some(update.clone());
            self.notify::<FollowNotification>(update);
        }
    }

    fn status(&self) -> Status {
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

    /// Derived state, recomputed once per batch of events.
    fn after_events(&mut self) {
        if self.room.as_ref().is_some_and(|r| r.synced) {
            // Only files the room changed need work: the disk copy and the editor's buffer.
            let changed: std::collections::HashSet<String> =
                std::mem::take(&mut *self.remote_dirty.lock().expect("not poisoned"));
            if !changed.is_empty() {
                self.cursors_dirty = true;
            }
            self.sync_disk(&changed);
            let uris: Vec<String> = self
                .docs
                .iter()
                .filter(|(_, d)| d.path.as_ref().is_some_and(|p| changed.contains(p)))
                .map(|(u, _)| u.clone())
                .collect();
            for uri in uris {
                self.flush_doc(&uri);
            }
            if std::mem::take(&mut self.cursors_dirty) {
                self.update_cursors();
            }
            self.update_follow();
        }
        let status = self.status();
        if self.last_status.as_ref() != Some(&status) {
            self.notify::<ParticipantsNotification>(ParticipantsParams {
                participants: status.participants.clone(),
            });
            self.notify::<StatusNotification>(status.clone());
            self.last_status = Some(status);
        }
    }
}

/// Applies a local change to a file of the room (one transaction: one update goes out).
fn apply_ops(doc: &Doc, path: &str, ops: Vec<crate::sync::RoomOp>) {
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

/// Creates a room on the server, with the creation token when the server asks for one.
pub async fn create_room(
    server: &str,
    name: Option<String>,
    create_token: Option<&str>,
) -> Result<CreatedSession, String> {
    let url = format!("{server}/api/sessions");
    let mut request = reqwest::Client::new().post(&url).json(&CreateSession { name });
    if let Some(token) = create_token {
        request = request.bearer_auth(token);
    }
    let resp = request
        .send()
        .await
        .map_err(|e| format!("cannot reach the server at {server}: {e}"))?;
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

/// Keeping the shared folder's files that no editor has open in step with the room.
impl Session {
    fn start_disk_sync(&mut self) {
        let Some(root) = self.root.clone() else { return };
        if self.disk_sync {
            return;
        }
        self.disk_sync = true;
        self.ignore = Some(ignore::gitignore::Gitignore::new(root.join(".gitignore")).0);
        // Every file of the room that no editor has open starts from its text on disk.
        let open: std::collections::HashSet<String> = self.docs.values().filter_map(|d| d.path.clone()).collect();
        if let Some(room) = &self.room {
            for (path, text) in room_files(&room.doc) {
                if open.contains(&path) || self.conflicts.contains(&path) {
                    continue;
                }
                let on_disk = workspace::safe_join(&root, &path)
                    .ok()
                    .and_then(|p| std::fs::read_to_string(p).ok());
                let baseline = on_disk.unwrap_or_default();
                if baseline != text {
                    self.remote_dirty.lock().expect("not poisoned").insert(path.clone());
                }
                self.disk.insert(path, DocSync::new(0, &baseline));
            }
        }
        let events = self.events_tx.clone();
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res {
                if matches!(ev.kind, notify::EventKind::Access(_)) {
                    return;
                }
                let _ = events.send(Event::Disk(ev.paths));
            }
        });
        match watcher {
            Ok(mut w) => {
                use notify::Watcher;
                if let Err(e) = w.watch(&root, notify::RecursiveMode::Recursive) {
                    tracing::warn!(error = %e, "cannot watch the folder; changes on disk will not be shared");
                }
                self.watcher = Some(w);
            }
            Err(e) => tracing::warn!(error = %e, "cannot watch the folder; changes on disk will not be shared"),
        }
    }

    fn is_open(&self, path: &str) -> bool {
        self.docs.values().any(|d| d.path.as_deref() == Some(path))
    }

    /// One turn of disk sync: remote changes to disk, then disk changes to the room.
    fn sync_disk(&mut self, dirty: &std::collections::HashSet<String>) {
        if !self.disk_sync {
            return;
        }
        let Some(root) = self.root.clone() else { return };
        for path in dirty {
            if self.is_open(path) || self.conflicts.contains(path) {
                continue;
            }
            let Ok(abs) = workspace::safe_join(&root, path) else {
                tracing::warn!(%path, "the room has a file with an unsafe path; not written");
                continue;
            };
            match self.room_text(path) {
                Some(text) => {
                    let entry = self.disk.entry(path.clone()).or_insert_with(|| DocSync::new(0, ""));
                    if entry.shadow().eq_str(&text) && abs.exists() {
                        continue;
                    }
                    match workspace::write_file(&abs, &text) {
                        Ok(()) => entry.reset(entry.version + 1, &text),
                        Err(e) => tracing::warn!(%path, error = %e, "cannot write"),
                    }
                }
                None => {
                    // Deleted in the room: delete here too, unless it changed locally since.
                    if let Some(entry) = self.disk.remove(path) {
                        match std::fs::read_to_string(&abs) {
                            Ok(t) if entry.shadow().eq_str(&t) => {
                                let _ = std::fs::remove_file(&abs);
                            }
                            Ok(_) => tracing::warn!(%path, "deleted in the room but changed here; kept"),
                            Err(_) => {}
                        }
                    }
                }
            }
        }
        let paths: Vec<PathBuf> = std::mem::take(&mut self.disk_events).into_iter().collect();
        for abs in paths {
            if abs.is_dir() {
                if let Ok((files, _)) = workspace::scan(&abs) {
                    for f in files {
                        self.disk_changed(&root, &abs.join(&f.path));
                    }
                }
            } else {
                self.disk_changed(&root, &abs);
            }
        }
    }

    fn disk_changed(&mut self, root: &Path, abs: &Path) {
        let Some(path) = workspace::rel_path(root, abs) else {
            return;
        };
        if path.ends_with(".mesh-tmp") || self.is_open(&path) || self.conflicts.contains(&path) || !self.can_write() {
            return;
        }
        if self
            .ignore
            .as_ref()
            .is_some_and(|g| g.matched_path_or_any_parents(abs, false).is_ignore())
        {
            return;
        }
        let Some(room) = &self.room else { return };
        let files = room.doc.get_or_insert_map(shape::FILES);
        let content = match std::fs::metadata(abs) {
            Ok(m) if m.len() > workspace::MAX_FILE_BYTES => return,
            Ok(_) => std::fs::read(abs).ok(),
            Err(_) => None,
        };
        match content {
            None => {
                // Deleted (or renamed away) on disk.
                if self.disk.remove(&path).is_some() {
                    let mut txn = room.doc.transact_mut();
                    files.remove(&mut txn, path.as_str());
                    tracing::info!(%path, "deleted on disk; removed from the room");
                }
            }
            Some(bytes) if workspace::is_text(&bytes) => {
                let text = String::from_utf8(bytes).expect("checked by is_text");
                let room_text = self.room_text(&path);
                match (self.disk.get_mut(&path), room_text) {
                    (Some(entry), Some(room_text)) => {
                        if entry.shadow().eq_str(&text) {
                            return; // Our own write, or no change.
                        }
                        let base: Vec<char> = entry.shadow().text().chars().collect();
                        let new: Vec<char> = text.chars().collect();
                        let changes = crate::sync::diff_changes(entry.shadow(), &base, &new);
                        let version = entry.version + 1;
                        if let ChangeKind::Local(ops) =
                            entry.editor_changed(version, changes, Encoding::Utf16, &room_text)
                        {
                            let room = self.room.as_ref().expect("checked above");
                            apply_ops(&room.doc, &path, ops);
                        }
                    }
                    (None, None) => {
                        // A new file.
                        let mut txn = room.doc.transact_mut();
                        files.insert(&mut txn, path.as_str(), TextPrelim::new(text.as_str()));
                        drop(txn);
                        self.disk.insert(path.clone(), DocSync::new(0, &text));
                        tracing::info!(%path, "created on disk; added to the room");
                    }
                    (None, Some(room_text)) => {
                        if room_text == text {
                            self.disk.insert(path, DocSync::new(0, &text));
                        }
                    }
                    (Some(_), None) => {
                        // Deleted in the room meanwhile: the room's deletion wins on the next turn.
                    }
                }
            }
            Some(_) => {}
        }
    }
}

/// Runs: the editor's `mesh/run*` requests go to the room; the room's run messages come back
/// to the editor as notifications, for every run in the room.
impl Session {
    /// The room, when it is connected and synced; else what to tell the user.
    fn connected_room(&self) -> Result<&Room, String> {
        match &self.room {
            None => Err("not in a room: share the folder or join a room first".into()),
            Some(r) if r.state == ConnState::Connected && r.synced => Ok(r),
            Some(_) => Err("not connected to the room right now; try again when the connection is back".into()),
        }
    }

    fn on_run_request(&mut self, params: RunParams, reply: RunReply) {
        let path = match self.check_run(&params) {
            Ok(path) => path,
            Err(e) => {
                let _ = reply.send(Err(e));
                return;
            }
        };
        let Some(room) = self.room.as_mut() else { return };
        let run = ClientMessage::Run {
            path: path.clone(),
            language: params.language,
        };
        let _ = room.conn.tx.send(Outgoing::Frame(encode_mesh(&run)));
        room.runs.pending = Some(PendingRun {
            path,
            reply,
            sent: Instant::now(),
        });
    }

    /// Checks a run request before it travels; returns the room path to run.
    fn check_run(&self, params: &RunParams) -> Result<String, String> {
        let room = self.connected_room()?;
        if !self.can_write() {
            return Err("you joined as a reader: readers may watch runs but not start them".into());
        }
        if room.runs.pending.is_some() {
            return Err("a run request is already waiting for the server's answer; wait for it".into());
        }
        if params.language.as_ref().is_some_and(|l| l.len() > MAX_LANGUAGE_BYTES) {
            return Err(format!("a language id is at most {MAX_LANGUAGE_BYTES} bytes"));
        }
        let path = match (&params.uri, &params.path) {
            (Some(uri), _) => self.room_path(uri).ok_or_else(|| match &self.root {
                Some(root) => format!(
                    "{uri} is not in the shared folder {}; only the room's files can run",
                    root.display()
                ),
                None => "open the shared folder first: runs take files of the room".to_string(),
            })?,
            (None, Some(path)) => path.clone(),
            (None, None) => return Err("say which file to run: mesh/run takes a `uri` or a `path`".into()),
        };
        if self.text_ref(&path).is_none() {
            return Err(format!(
                "no file {path:?} in this room; only files of the shared folder can run"
            ));
        }
        Ok(path)
    }

    /// Checks a `mesh/runInput` and sends it in pieces the server accepts.
    fn run_input(&self, params: RunInputParams) -> Result<(), String> {
        if params.data.len() > MAX_RUN_INPUT_BYTES {
            return Err(format!(
                "{} bytes of input is too much at once: send at most {} KiB per mesh/runInput",
                params.data.len(),
                MAX_RUN_INPUT_BYTES / 1024
            ));
        }
        let room = self.connected_room()?;
        if !self.can_write() {
            return Err("you joined as a reader: readers may not type into a run".into());
        }
        if !room.runs.active.contains_key(&params.run_id) {
            return Err(format!("no run {} is going (it may have ended)", params.run_id));
        }
        for (data, eof) in input_chunks(&params.data, params.eof) {
            let msg = ClientMessage::Input {
                run_id: params.run_id.clone(),
                data,
                eof,
            };
            let _ = room.conn.tx.send(Outgoing::Frame(encode_mesh(&msg)));
        }
        Ok(())
    }

    /// Checks a `mesh/runStop` against what the server allows, then sends it.
    fn run_stop(&self, run_id: &str) -> Result<(), String> {
        let room = self.connected_room()?;
        let Some(run) = room.runs.active.get(run_id) else {
            return Err(format!("no run {run_id} is going (it may have ended)"));
        };
        if room.conn_id != Some(run.by) && room.role != Some(Role::Host) {
            return Err("only who started a run (or the host) may stop it".into());
        }
        let msg = ClientMessage::Stop {
            run_id: run_id.to_string(),
        };
        let _ = room.conn.tx.send(Outgoing::Frame(encode_mesh(&msg)));
        Ok(())
    }

    fn on_run_started(&mut self, run_id: String, path: String, language: String, by: u64) {
        let uri = self.local_uri(&path);
        let Some(room) = self.room.as_mut() else { return };
        room.runs.active.insert(
            run_id.clone(),
            ActiveRun {
                by,
                started: Instant::now(),
            },
        );
        let you = room.conn_id == Some(by);
        if you {
            if let Some(pending) = room.runs.pending.take_if(|p| p.path == path) {
                let _ = pending.reply.send(Ok(RunResult {
                    run_id: run_id.clone(),
                    queued: None,
                }));
            }
        }
        let by_name = participant_name(room, by);
        self.notify::<RunStartedNotification>(RunStartedParams {
            run_id,
            path,
            uri,
            language,
            by,
            by_name,
            you,
        });
    }

    /// A run of the room waits for a free sandbox: it is tracked like a going run (so it can
    /// be stopped, and its start or end is recognised), our own request is answered with
    /// its place, and the editor is told each time it moves.
    #[allow(clippy::too_many_arguments)]
    fn on_run_queued(
        &mut self,
        run_id: String,
        path: String,
        language: String,
        by: u64,
        position: u32,
        limit: String,
        debug: bool,
    ) {
        let uri = self.local_uri(&path);
        let Some(room) = self.room.as_mut() else { return };
        room.runs.active.entry(run_id.clone()).or_insert(ActiveRun {
            by,
            started: Instant::now(),
        });
        let you = room.conn_id == Some(by);
        if you && !debug {
            if let Some(pending) = room.runs.pending.take_if(|p| p.path == path) {
                let _ = pending.reply.send(Ok(RunResult {
                    run_id: run_id.clone(),
                    queued: Some(position),
                }));
            }
        }
        let by_name = participant_name(room, by);
        let message = mesh_protocol::messages::queued_text(position, &limit);
        self.notify::<RunQueuedNotification>(RunQueuedParams {
            run_id,
            path,
            uri,
            language,
            by,
            by_name,
            you,
            position,
            limit,
            debug,
            message,
        });
    }

    /// The `file://` URI of a room path in the shared folder, when there is a folder.
    fn local_uri(&self, path: &str) -> Option<String> {
        self.root.as_deref().map(|root| file_uri(root, path))
    }

    /// Tells the editor of a debug session in the room, so that it can offer to join it.
    fn on_debug_started(&self, debug_id: String, path: String, language: String, by: u64) {
        let uri = self.local_uri(&path);
        let Some(room) = self.room.as_ref() else { return };
        let you = room.conn_id == Some(by);
        let by_name = participant_name(room, by);
        self.notify::<DebugStartedNotification>(DebugStartedParams {
            debug_id,
            path,
            uri,
            language,
            by,
            by_name,
            you,
        });
    }

    /// Fails a run request the server has not answered in time.
    fn expire_run_request(&mut self, now: Instant) {
        let Some(room) = self.room.as_mut() else { return };
        if let Some(pending) = room
            .runs
            .pending
            .take_if(|p| now.duration_since(p.sent) > RUN_START_TIMEOUT)
        {
            let _ = pending.reply.send(Err(format!(
                "the server did not start the run within {} s; check the connection and try again",
                RUN_START_TIMEOUT.as_secs()
            )));
        }
    }

    /// Ends what this proxy tracks of the room's runs when it stops hearing about them: the
    /// request in flight fails, and every run going ends for the editor with `why`, so no
    /// output view waits forever for an exit it cannot see.
    fn abandon_runs(&mut self, why: &str) {
        let Some(room) = self.room.as_mut() else { return };
        let runs = std::mem::take(&mut room.runs);
        if let Some(pending) = runs.pending {
            let _ = pending
                .reply
                .send(Err(format!("{why} before the run started; try again")));
        }
        for (run_id, run) in runs.active {
            self.notify::<RunExitedNotification>(RunExitedParams {
                run_id,
                stage: "run".into(),
                code: None,
                duration_ms: run.started.elapsed().as_millis() as u64,
                limit: None,
                error: Some(format!("{why}; the rest of this run is not shown here")),
            });
        }
    }
}

/// Splits stdin text into pieces of at most [`INPUT_CHUNK_BYTES`], on character boundaries;
/// only the last piece carries `eof`. Empty text without `eof` sends nothing.
fn input_chunks(data: &str, eof: bool) -> Vec<(String, bool)> {
    let mut pieces = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let mut end = rest.len().min(INPUT_CHUNK_BYTES);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        pieces.push((rest[..end].to_string(), false));
        rest = &rest[end..];
    }
    match pieces.last_mut() {
        Some(last) => last.1 = eof,
        None if eof => pieces.push((String::new(), true)),
        None => {}
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_is_cut_on_character_boundaries_with_eof_on_the_last_piece() {
        let text = "é".repeat(INPUT_CHUNK_BYTES); // two bytes each: twice the chunk size
        let pieces = input_chunks(&text, true);
        assert_eq!(pieces.len(), 2);
        assert!(pieces.iter().all(|(p, _)| p.len() <= INPUT_CHUNK_BYTES));
        assert_eq!(pieces.iter().map(|(p, _)| p.as_str()).collect::<String>(), text);
        assert_eq!(pieces.iter().map(|(_, eof)| *eof).collect::<Vec<_>>(), [false, true]);
    }

    #[test]
    fn empty_input_sends_only_an_eof() {
        assert_eq!(input_chunks("", true), [(String::new(), true)]);
        assert!(input_chunks("", false).is_empty());
        assert_eq!(input_chunks("x\n", false), [("x\n".to_string(), false)]);
    }

    #[test]
    fn the_largest_input_fits_the_mesh_message_limit_even_fully_escaped() {
        let worst = "\u{1}".repeat(MAX_RUN_INPUT_BYTES);
        for (data, eof) in input_chunks(&worst, true) {
            let msg = ClientMessage::Input {
                run_id: "f".repeat(16),
                data,
                eof,
            };
            assert!(serde_json::to_vec(&msg).unwrap().len() <= mesh_protocol::MAX_MESH_MESSAGE_BYTES);
        }
    }
}
