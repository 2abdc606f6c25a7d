//! The session: the one task that owns the proxy's replica of the room, the open documents
//! and the connection. Everything reaches it as an [`Event`] through one channel, in order;
//! it never waits on the editor (requests to the editor go through the outbox task, whose
//! answers come back as events).

mod disk;
mod docs;
mod paths;
mod presence;
mod replica;
mod runs;

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::Duration;

use mesh_protocol::codec::{encode_mesh, encode_yjs};
use mesh_protocol::rest::{CreateSession, CreatedSession};
use mesh_protocol::{doc as shape, ClientMessage};
use tokio::sync::{mpsc, oneshot};
use tower_lsp_server::lsp_types::Range;
use yrs::sync::{Awareness, Message, SyncMessage};
use yrs::{Map, Origin};

use crate::link::RoomTarget;
use crate::lsp_ext::*;
use crate::room::{self, Outgoing, RoomEvent};
use crate::sync::{DocSync, EditorBatch};
use crate::text::Encoding;
use crate::workspace;
use docs::OpenDoc;
use paths::file_uri;
use replica::{apply_ops, participant_name, ConnState, Room, REMOTE};
pub use replica::{room_files, upload};
use runs::RunReply;
use runs::Runs;
pub use runs::MAX_RUN_INPUT_BYTES;

/// How often the session looks at timers (batch timeouts, hash checks).
const TICK: Duration = Duration::from_millis(250);

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

/// Where a share's answer goes.
type ShareReply = oneshot::Sender<Result<ShareResult, String>>;

/// A share waiting for the connection: the files to upload, the answer, where it goes.
type PendingShare = (Vec<(String, String)>, ShareResult, ShareReply);

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
