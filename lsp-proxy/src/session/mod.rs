//! The session: the one task that owns the proxy's replica of the room, the open documents
//! and the connection. Everything reaches it as an [`Event`] through one channel, in order;
//! it never waits on the editor (requests to the editor go through the outbox task, whose
//! answers come back as events).
//!
//! This module holds the events, the loop and the dispatch, and is the only place that
//! spawns. The parts that decide, `docs` (open documents), `disk` (files no editor has
//! open), `runs` and `presence`, do no IO: they read the room through [`RoomRead`] and return
//! [`Effect`]s, which [`Session::apply`] carries out in order. `replica` owns the room's
//! `Doc`, awareness and connection; `disk` also holds the only filesystem and watcher code.

mod agent;
mod agreed;
mod disk;
mod docs;
mod outbox;
mod paths;
mod presence;
mod replica;
mod runs;
mod seats;
#[cfg(test)]
mod testing;

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use mesh_protocol::rest::CreatedSession;
use mesh_protocol::ClientMessage;
use tokio::sync::{mpsc, oneshot};
use tower_lsp_server::lsp_types::notification::Notification;
use tower_lsp_server::lsp_types::Range;

use crate::link::RoomTarget;
use crate::lsp_ext::*;
use crate::room::{self, RoomEvent};
use crate::sync::{EditorBatch, RoomOp};
use crate::text::Encoding;
use crate::workspace::Transfer;
pub use agent::{replace_op, AgentEdit, AgentEdited};
use docs::Docs;
use presence::Presence;
pub use replica::{create_room, room_files, upload};
use replica::{ConnState, Dirty, Room, RoomChange, TextChanges, View};
use runs::Runs;
pub use runs::MAX_RUN_INPUT_BYTES;

/// How often the session looks at timers (batch timeouts, hash checks).
const TICK: Duration = Duration::from_millis(250);

/// Where a run request's answer goes.
type RunReply = oneshot::Sender<Result<RunResult, String>>;

/// Where a host request's answer goes: the result as the LSP method documents it.
pub type HostReply = oneshot::Sender<Result<serde_json::Value, String>>;

/// A host request from the editor (decision 011), carried out over the REST API with the
/// folder's seat token.
#[derive(Debug, Clone)]
pub enum HostCall {
    /// `mesh/hostParticipants`.
    Participants,
    /// `mesh/setRole`.
    SetRole(SetRoleParams),
    /// `mesh/kick`.
    Kick(KickParams),
    /// `mesh/admit`.
    Admit(SeatParams),
    /// `mesh/refuse`.
    Refuse(SeatParams),
    /// `mesh/setApproval`.
    SetApproval(ApprovalParams),
    /// `mesh/links`.
    Links,
    /// `mesh/createLink`.
    CreateLink(CreateLinkParams),
    /// `mesh/revokeLink`.
    RevokeLink(RevokeLinkParams),
    /// `mesh/audit`.
    Audit(AuditParams),
}

/// A request from the editor (or the command line) that wants an answer.
pub enum Request {
    /// A host request.
    Host(HostCall, HostReply),
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
    /// Ask the room's ghost, with the editor's selection.
    GhostAsk(crate::lsp_ext::GhostAskParams, oneshot::Sender<Result<(), String>>),
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
    /// Resolve the conflict of a file (by URI or room path): the room's version kept in
    /// `.mesh/conflicts/` becomes the base and the local text is merged again.
    Resolve(ResolveParams, oneshot::Sender<Result<(), String>>),
    /// Every file of the room with its text, as the replica has it now (for `mesh-proxy mcp`).
    RoomFiles(oneshot::Sender<Result<Vec<(String, String)>, String>>),
    /// An edit by a program (`mesh-proxy mcp`), applied to the replica as one operation.
    Agent(AgentEdit, oneshot::Sender<Result<AgentEdited, String>>),
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
    /// The room was created on the server (for a share of the folder's text files, found
    /// and checked against the limits before the room was created).
    Created(
        Result<CreatedSession, String>,
        ShareParams,
        oneshot::Sender<Result<ShareResult, String>>,
        Box<Scanned>,
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
    /// Whom to trust on `https://`/`wss://` servers (system roots plus `--ca-file`).
    pub tls: crate::tls::Tls,
    /// How much a share may upload and a join may write.
    pub limits: crate::workspace::FolderLimits,
}

/// A shared folder's text files, and what its scan left out.
pub struct Scanned(Vec<crate::workspace::LocalFile>, crate::workspace::Skipped);

/// Where a share's answer goes.
type ShareReply = oneshot::Sender<Result<ShareResult, String>>;

/// A share waiting for the connection: the files to upload, the answer, where it goes.
type PendingShare = (Vec<(String, String)>, ShareResult, ShareReply);

/// What the session's sans-IO parts ask the loop to do, in order.
#[derive(Debug)]
pub(super) enum Effect {
    /// Something for the editor: a notification, an edit batch, a hash request.
    Editor(EditorOut),
    /// A mesh message for the room, with our id of it.
    Send(mesh_protocol::Request),
    /// Local edits to a file of the room.
    Edit { path: String, ops: Vec<RoomOp> },
    /// Local edits to a file of the room made in the editor's open document `uri` (which has
    /// counted them already, so they are not fed back to it).
    EditorEdit {
        uri: String,
        path: String,
        ops: Vec<RoomOp>,
    },
    /// A new file in the room.
    Create { path: String, text: String },
    /// A file removed from the room.
    Remove { path: String },
    /// Write a file of the shared folder; disk sync takes it as the baseline once written.
    WriteFile { path: String, text: String },
    /// Delete a file of the shared folder.
    DeleteFile { path: String },
    /// The answer to the run request in flight.
    RunAnswer(Result<RunResult, String>),
    /// Send the next edit batch of a document, computed against the room as it is then.
    Flush { uri: String },
    /// The local text of `path` and the room's (`room`) could not be merged: the local text
    /// stays, the room's version is kept beside it (`.mesh/conflicts/<path>`) and the path
    /// stays out of sync until the user resolves it.
    Conflict { path: String, room: String },
    /// `path` merged cleanly after a conflict: its copy of the room's version goes.
    Resolved { path: String },
    /// The folder and the room agree on `text` for `path`: it is the base of the next merge.
    Agreed { path: String, text: String },
}

/// A notification for the editor.
pub(super) fn notify<N: Notification>(params: N::Params) -> Effect {
    let value = serde_json::to_value(params).unwrap_or_default();
    Effect::Editor(EditorOut::Notify(N::METHOD, value))
}

/// A message for the user (`mesh/notify`), logged too.
pub(super) fn tell(level: &str, message: impl Into<String>) -> Effect {
    let message = message.into();
    tracing::info!(level, %message, "notify editor");
    notify::<NotifyNotification>(NotifyParams {
        level: level.into(),
        message,
    })
}

/// A conflict on `path`: the room's version `room` is kept beside the local text, and the
/// user is told (LSP `window/showMessage`; the command line prints it) which file and how to
/// resolve it.
pub(super) fn conflict(path: &str, room: String) -> Vec<Effect> {
    use tower_lsp_server::lsp_types::notification::ShowMessage;
    use tower_lsp_server::lsp_types::{MessageType, ShowMessageParams};
    let copy = crate::mesh_dir::conflict_display(path);
    let message = format!(
        "{path} was changed here and in the room in the same lines: your text is kept in {path}, \
         the room's version is in {copy}. Take what you need from it, then resolve: \
         `mesh-proxy resolve {path}`, :Mesh resolve in Neovim, Mesh: Resolve Conflict in VS Code \
         (or delete {copy}); your text is then shared."
    );
    tracing::warn!(%path, "conflict: kept the local text, the room's version beside it");
    vec![
        Effect::Conflict {
            path: path.to_string(),
            room,
        },
        notify::<ShowMessage>(ShowMessageParams {
            typ: MessageType::WARNING,
            message,
        }),
    ]
}

/// What the sans-IO parts may read of the room: pure reads of the replica (a fake in tests).
pub(super) trait RoomRead {
    /// Whether the first sync is done (before it, the room's files are not known).
    fn synced(&self) -> bool;
    /// Whether we may change the room (in a room, and not a reader).
    fn writable(&self) -> bool;
    /// The text of the room's file `path`, if the room has it.
    fn text(&self, path: &str) -> Option<String>;
}

/// Where we stand in a connected, synced room, for the checks of requests.
#[derive(Debug, Clone, Copy)]
pub(super) struct Standing {
    /// Whether we may change the room.
    pub(super) writable: bool,
    /// Our connection id, once welcomed.
    pub(super) conn_id: Option<u64>,
    /// Whether we are the room's host.
    pub(super) host: bool,
}

/// The session's state.
pub struct Session {
    identity: Identity,
    events_tx: mpsc::UnboundedSender<Event>,
    out: mpsc::UnboundedSender<EditorOut>,
    root: Option<PathBuf>,
    docs: Docs,
    room: Option<Room>,
    runs: Runs,
    /// Where the answer to the run request in flight goes.
    run_reply: Option<RunReply>,
    presence: Presence,
    last_status: Option<Status>,
    /// The writer link handed out when we shared (our own token is the host's).
    share_link: Option<String>,
    /// Disk sync of the files no editor has open.
    disk: disk::DiskSync,
    watcher: Option<notify::RecommendedWatcher>,
    /// Room paths changed by remote updates since the disk was last brought up to date.
    remote_dirty: Dirty,
    /// For the latest of those texts, the exact map to the room's text now: a buffer opened
    /// from one starts with it rather than a diff's guess.
    agreed_maps: agreed::AgreedMaps,
    /// Changes to the room's file texts not yet handed to the open documents.
    text_changes: TextChanges,
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
        docs: Docs::default(),
        room: None,
        runs: Runs::default(),
        run_reply: None,
        presence: Presence::default(),
        last_status: None,
        share_link: None,
        disk: Default::default(),
        watcher: None,
        remote_dirty: Default::default(),
        agreed_maps: Default::default(),
        text_changes: Default::default(),
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
                _ = tick.tick() => {
                    // Timers look at the state only after everything already received: an
                    // echo waiting in the inbox must not look like one that never came.
                    while let Ok(ev) = rx.try_recv() {
                        if matches!(ev, Event::Shutdown) {
                            return;
                        }
                        self.handle(ev);
                    }
                    self.on_tick();
                }
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

    /// The room as the sans-IO parts read it.
    fn view(&self) -> View<'_> {
        View(self.room.as_ref())
    }

    /// Carries out effects, in order.
    fn apply(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Editor(out) => {
                    let _ = self.out.send(out);
                }
                Effect::Send(msg) => {
                    if let Some(room) = &self.room {
                        room.send(&msg);
                    }
                }
                Effect::Edit { path, ops } => {
                    // A change read from disk: what disk sync read there is agreed once it
                    // reaches the room. Offline, the base stays: a proxy that exits before
                    // reconnecting loses its replica, and the next rejoin must still see
                    // the change as the disk's own.
                    let read = self.disk.baseline(&path).filter(|_| self.connected());
                    self.change_room(RoomChange::Edit {
                        path: path.clone(),
                        ops,
                    });
                    if let Some(text) = read {
                        self.keep_base(&path, Some(&text));
                    }
                }
                Effect::Create { path, text } => {
                    if self.disk.baseline(&path).is_some() && self.connected() {
                        self.keep_base(&path, Some(&text));
                    }
                    self.change_room(RoomChange::Create { path, text });
                }
                Effect::Remove { path } => {
                    self.keep_base(&path, None);
                    self.change_room(RoomChange::Remove { path });
                }
                Effect::EditorEdit { uri, path, ops } => self.change_room(RoomChange::EditorEdit { uri, path, ops }),
                Effect::WriteFile { path, text } => {
                    let Some(root) = &self.root else { continue };
                    match disk::write(root, &path, &text) {
                        Ok(()) => {
                            self.disk.wrote(&path, &text);
                            self.keep_base(&path, Some(&text));
                        }
                        Err(e) => tracing::warn!(%path, error = %e, "cannot write"),
                    }
                }
                Effect::DeleteFile { path } => {
                    if let Some(root) = &self.root {
                        let _ = disk::remove(root, &path);
                    }
                    self.keep_base(&path, None);
                }
                Effect::Conflict { path, room } => {
                    if let Some(root) = &self.root {
                        if let Err(e) = crate::mesh_dir::write_conflict(root, &path, &room) {
                            tracing::warn!(%path, error = %e, "cannot keep the room's version of a conflict");
                        }
                    }
                    self.disk.conflicted(&path, room);
                }
                Effect::Resolved { path } => {
                    if let Some(root) = &self.root {
                        let _ = crate::mesh_dir::remove_conflict(root, &path);
                    }
                }
                Effect::Agreed { path, text } => self.keep_base(&path, Some(&text)),
                Effect::RunAnswer(answer) => {
                    if let Some(reply) = self.run_reply.take() {
                        let _ = reply.send(answer);
                    }
                }
                Effect::Flush { uri } => {
                    let fx = self.docs.flush(&uri, &View(self.room.as_ref()));
                    self.apply(fx);
                }
            }
        }
    }

    /// Whether the room connection is up (what we send now reaches the server).
    fn connected(&self) -> bool {
        self.room.as_ref().is_some_and(|r| r.state == ConnState::Connected)
    }

    /// Keeps `text` as the last text the folder and the room agreed on for `path` (`None`:
    /// the file left both), the base of the merge a rejoin runs.
    fn keep_base(&mut self, path: &str, text: Option<&str>) {
        // The maps follow every change already in the replica before a new one starts there.
        self.feed_room_changes();
        match text {
            Some(text) => {
                self.agreed_maps
                    .agreed(path, &docs::sha256_hex(text), text, self.view().text(path).as_deref())
            }
            None => self.agreed_maps.forget(path),
        }
        let (Some(root), Some(room)) = (&self.root, &self.room) else {
            return;
        };
        let id = room.target.room.to_string();
        if let Some(text) = text {
            // The base it replaces was agreed too: an editor may have read that version. The
            // texts are kept before the base, so that whoever reads the new base (the proxy
            // of an editor opened while this one quits) finds the old one among them.
            let mut kept = Ok(());
            if crate::mesh_dir::read_recent(root, &id, path).is_empty() {
                // A folder from before the texts were kept: its base is the one known.
                if let Some(old) = crate::mesh_dir::read_base(root, &id, path) {
                    kept = crate::mesh_dir::keep_recent(root, &id, path, &old);
                }
            }
            if let Err(e) = kept.and_then(|_| crate::mesh_dir::keep_recent(root, &id, path, text)) {
                tracing::warn!(%path, error = %e, "cannot keep the recently agreed texts");
            }
        }
        let kept = match text {
            Some(text) => crate::mesh_dir::write_base(root, &id, path, text),
            None => crate::mesh_dir::remove_base(root, &id, path),
        };
        if let Err(e) = kept {
            tracing::warn!(%path, error = %e, "cannot keep the last agreed text; a rejoin may report a conflict");
        }
    }

    /// Attaches the open document `uri` to the room: the merge's base is the last agreed text
    /// kept under `.mesh/`, else the file on disk.
    fn attach_doc(&mut self, uri: &str) {
        let (mut persisted, on_disk) = match (self.docs.path(uri), &self.root, &self.room) {
            (Some(path), Some(root), Some(room)) => (
                crate::mesh_dir::read_base(root, &room.target.room.to_string(), &path),
                disk::read_text(root, &path),
            ),
            _ => (None, None),
        };
        if let (Some(path), Some(doc), Some(root), Some(room)) =
            (self.docs.path(uri), self.docs.get(uri), &self.root, &self.room)
        {
            // Read from `.mesh/` each time: the proxy of an editor that just quit may have
            // written its last agreed text after this editor read the file. The editor read
            // one of these versions, perhaps just before a newer one was written, and its
            // `didOpen` may carry typing already: what the buffer holds beyond the version it
            // is closest to is the user's typing, and what the room has beyond it is what the
            // buffer lacks.
            let recent = crate::mesh_dir::read_recent(root, &room.target.room.to_string(), &path);
            let mut agreed: Vec<&str> = recent.iter().map(String::as_str).collect();
            if let Some(base) = persisted.as_deref().filter(|b| !agreed.contains(b)) {
                agreed.insert(0, base);
            }
            if let Some(closest) = crate::merge::closest(&agreed, &doc.sync.shadow().text()) {
                persisted = Some(closest.to_string());
            }
        }
        if let Some(path) = self.docs.path(uri).filter(|p| self.disk.is_conflict(p)) {
            // Its path is in conflict already (found by disk sync): held until resolved.
            tracing::info!(%path, "opened a file in conflict; held out of the room until resolved");
            self.docs.hold(uri);
            return;
        }
        let exact = self
            .docs
            .path(uri)
            .zip(self.docs.get(uri))
            .and_then(|(path, doc)| self.agreed_maps.map_from(&path, &doc.sync.shadow().text()));
        let fx = self.docs.attach(
            uri,
            &View(self.room.as_ref()),
            persisted.as_deref(),
            on_disk.as_deref(),
            exact,
        );
        self.apply(fx);
    }

    /// The conflict of `path` was resolved (its copy of the room's version is gone): the
    /// local text is merged again with that version as the base.
    fn resolve_conflict(&mut self, path: &str) {
        let Some(snapshot) = self.disk.resolved(path) else {
            return;
        };
        let fx = match self.docs.holding(path) {
            Some(uri) => self.docs.resolve(&uri, &snapshot, &View(self.room.as_ref())),
            None => {
                let Some(root) = self.root.clone() else { return };
                let Ok(on_disk) = disk::read(&root, path) else { return };
                let view = View(self.room.as_ref());
                self.disk.settle(
                    path,
                    view.text(path).as_deref(),
                    &on_disk,
                    Some(&snapshot),
                    view.writable(),
                )
            }
        };
        let again = fx.iter().any(|e| matches!(e, Effect::Conflict { .. }));
        self.apply(fx);
        if !again {
            self.apply(vec![tell(
                "info",
                format!("{path}: conflict resolved; your text is shared"),
            )]);
        }
    }

    /// The watcher saw `paths` change. Under `.mesh/conflicts/`: a conflict whose copy is
    /// gone was resolved. A file open in an editor whose disk text is the buffer's (a save)
    /// is agreed with the room. The rest is disk sync's.
    fn on_disk_event(&mut self, paths: Vec<PathBuf>) {
        let Some(root) = self.root.clone() else { return };
        let conflicts_dir = root
            .join(crate::workspace::MESH_DIR)
            .join(crate::mesh_dir::CONFLICTS_DIR);
        if paths.iter().any(|p| p.starts_with(&conflicts_dir)) {
            for path in self.disk.conflict_paths() {
                if crate::mesh_dir::conflict_file(&root, &path).is_ok_and(|f| !f.exists()) {
                    self.resolve_conflict(&path);
                }
            }
        }
        for abs in &paths {
            let Some(path) = crate::workspace::rel_path(&root, abs) else {
                continue;
            };
            let saved = self
                .docs
                .iter()
                .find_map(|(_, d)| (d.path.as_deref() == Some(path.as_str())).then(|| d.sync.shadow().text()));
            if let Some(text) = saved.filter(|t| disk::read_text(&root, &path).as_deref() == Some(t.as_str())) {
                self.keep_base(&path, Some(&text));
            }
        }
        self.disk.watched(paths);
    }

    fn change_room(&mut self, change: RoomChange) {
        if let Some(room) = &self.room {
            room.apply(change);
        }
        self.feed_room_changes();
    }

    /// Hands every change of the room's file texts since the last call to the open documents,
    /// in order, so that each keeps its exact map from the editor's text to the room's. Called
    /// after every change of the replica, before anything reads it again.
    fn feed_room_changes(&mut self) {
        let changes = std::mem::take(&mut *self.text_changes.lock().expect("not poisoned"));
        for (path, from, change) in changes {
            self.agreed_maps.room_changed(&path, &change);
            self.docs.room_changed(&path, from.as_deref(), &change);
        }
    }

    fn handle(&mut self, ev: Event) {
        // Every path that changes the replica feeds the documents itself; this is the net.
        self.feed_room_changes();
        match ev {
            Event::Initialize { root, encoding, client } => {
                self.docs.enc = encoding;
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
                        self.share_link = rec.share_link;
                        self.open_room(target, rec.read_link);
                    }
                }
            }
            Event::Open { uri, version, text } => {
                self.presence.dirty = true;
                let path = self.room_path(&uri);
                let fx = self.docs.open(uri.clone(), version, text, path, Instant::now());
                if let Some(p) = self.docs.path(&uri) {
                    self.disk.opened(&p);
                }
                self.apply(fx);
                self.attach_doc(&uri);
            }
            Event::Change { uri, version, changes } => {
                self.presence.dirty = true;
                let fx = self
                    .docs
                    .change(&uri, version, changes, &View(self.room.as_ref()), Instant::now());
                self.apply(fx);
            }
            Event::Close { uri } => {
                self.presence.closed(&uri);
                if let Some(path) = self.docs.close(&uri) {
                    let on_disk = self.root.as_deref().and_then(|r| disk::read_text(r, &path));
                    if self.disk.closed(&path, on_disk) {
                        self.remote_dirty.lock().expect("not poisoned").insert(path);
                    }
                }
            }
            Event::Cursor(c) => {
                self.presence.cursor(c.uri, c.selections);
                self.publish_awareness();
            }
            Event::ActiveEditor(a) => {
                self.presence.view(a.uri, a.visible_range);
                self.publish_awareness();
            }
            Event::StopFollowing => {
                let fx = self.presence.stop_following("you took over");
                self.apply(fx);
                // Everyone sees who follows whom: the state says it.
                self.publish_awareness();
            }
            Event::Request(req) => self.on_request(req),
            Event::EditAnswered { uri, id, applied } => {
                let fx = self
                    .docs
                    .answered(&uri, id, applied, &View(self.room.as_ref()), Instant::now());
                self.apply(fx);
            }
            Event::HashAnswered { uri, result } => {
                let fx = self.docs.hash_answered(&uri, result, &View(self.room.as_ref()));
                self.apply(fx);
            }
            Event::Created(result, params, reply, scanned) => self.on_created(result, params, reply, *scanned),
            Event::Room(ev) => self.on_room(ev),
            Event::Disk(paths) => self.on_disk_event(paths),
            Event::Shutdown => {}
        }
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        let mut fx = self.runs.expire(now);
        self.disk.rescan_new_folders(now);
        fx.extend(self.docs.tick(self.view().synced(), now));
        self.apply(fx);
    }

    fn on_request(&mut self, req: Request) {
        match req {
            Request::Host(call, reply) => self.host_request(call, reply),
            Request::Share(params, reply) => {
                if let Some(room) = self.room.as_mut() {
                    // Shared from here before (the folder's record, a restart): the same
                    // room, its links, after the same merge as a first share.
                    let Some(link) = self.share_link.clone() else {
                        let _ = reply.send(Err(format!(
                            "this folder is in room {} already, joined with a link: leave it first to share it as a new room",
                            room.target.room
                        )));
                        return;
                    };
                    let result = ShareResult {
                        room: room.target.room.to_string(),
                        link,
                        read_link: room.read_link.clone().unwrap_or_default(),
                    };
                    if room.synced {
                        let _ = reply.send(Ok(result));
                    } else {
                        room.share_again.push((result, reply));
                    }
                    return;
                }
                if self.root.is_none() {
                    let _ = reply.send(Err("open a folder first: mesh shares the workspace folder".into()));
                    return;
                }
                // The folder is read and checked before the room exists: a share over a
                // limit creates nothing.
                let scanned = match disk::scan(self.root.as_deref().expect("checked above"), &self.identity.limits) {
                    Ok((files, skipped)) => Box::new(Scanned(files, skipped)),
                    Err(e) => {
                        let _ = reply.send(Err(e.to_string()));
                        return;
                    }
                };
                let server = params.server.clone().unwrap_or_else(|| self.identity.server.clone());
                let name = params.name.clone().or_else(|| {
                    self.root
                        .as_ref()
                        .and_then(|r| r.file_name())
                        .map(|n| n.to_string_lossy().into_owned())
                });
                let tx = self.events_tx.clone();
                let create_token = self.identity.create_token.clone();
                let tls = self.identity.tls.clone();
                tokio::spawn(async move {
                    let result = create_room(&tls, &server, name, create_token.as_deref()).await;
                    let _ = tx.send(Event::Created(
                        result,
                        ShareParams {
                            server: Some(server),
                            ..params
                        },
                        reply,
                        scanned,
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
                if let Some(room) = self.room.as_mut() {
                    if room.target.room != target.room {
                        let _ = reply.send(Err("already in a room: leave it first".into()));
                    } else if !room.synced {
                        // Rejoining this room already (the folder's record): the rejoin runs
                        // the same merge as a first join; answer when it is done.
                        room.on_synced.push(reply);
                    } else {
                        let _ = reply.send(Ok(JoinResult {
                            room: room.target.room.to_string(),
                            files: room_files(&room.doc).len(),
                            conflicts: self.disk.conflict_paths(),
                        }));
                    }
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
                        room.send(&ClientMessage::Chat { text });
                        Ok(())
                    }
                    Some(_) => Err("not connected to the room right now; try again when the connection is back".into()),
                    None => Err("not in a room".into()),
                };
                let _ = reply.send(result);
            }
            Request::GhostAsk(params, reply) => {
                let path = match &params.uri {
                    Some(uri) => match self.room_path(uri) {
                        Some(p) => Some(p),
                        None => {
                            let _ = reply.send(Err(format!(
                                "{uri} is not a file of the room: ask about a file of the shared folder"
                            )));
                            return;
                        }
                    },
                    None => None,
                };
                let result = crate::ask_cli::editor_ask(params, path).and_then(|msg| match &self.room {
                    Some(room) if room.state == ConnState::Connected => {
                        room.send(&msg);
                        Ok(())
                    }
                    Some(_) => Err("not connected to the room right now; try again when the connection is back".into()),
                    None => Err("not in a room".into()),
                });
                let _ = reply.send(result);
            }
            Request::ChatHistory(reply) => {
                let messages = self.room.as_ref().map(Room::chat_history).unwrap_or_default();
                let _ = reply.send(ChatHistory { messages });
            }
            Request::Resolve(params, reply) => {
                let result = self.resolve_request(params);
                let _ = reply.send(result);
            }
            Request::Follow(who, reply) => {
                let participants = self.room.as_ref().map(|r| r.participants.clone()).unwrap_or_default();
                let _ = reply.send(self.presence.follow(who, &participants));
                self.update_follow();
                self.publish_awareness();
            }
            Request::Run(params, reply) => {
                let path = match (&params.uri, &params.path) {
                    (Some(uri), _) => self.room_path(uri).ok_or_else(|| match &self.root {
                        Some(root) => format!(
                            "{uri} is not in the shared folder {}; only the room's files can run",
                            root.display()
                        ),
                        None => "open the shared folder first: runs take files of the room".to_string(),
                    }),
                    (None, Some(path)) => Ok(path.clone()),
                    (None, None) => Err("say which file to run: mesh/run takes a `uri` or a `path`".into()),
                };
                let view = View(self.room.as_ref());
                let standing = Room::standing(self.room.as_ref());
                let exists = |p: &str| view.text(p).is_some();
                match self
                    .runs
                    .request(standing, path, params.language, exists, Instant::now())
                {
                    Ok(msg) => {
                        self.run_reply = Some(reply);
                        self.apply(vec![Effect::Send(msg)]);
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Request::RunInput(params, reply) => {
                let result = self
                    .runs
                    .input(Room::standing(self.room.as_ref()), params)
                    .map(|msgs| self.apply(msgs.into_iter().map(Effect::Send).collect()));
                let _ = reply.send(result);
            }
            Request::RoomFiles(reply) => {
                let files = Room::standing(self.room.as_ref())
                    .map(|_| room_files(&self.room.as_ref().expect("standing says in a room").doc));
                let _ = reply.send(files);
            }
            Request::Agent(edit, reply) => {
                let result = self.agent_edit(edit);
                let _ = reply.send(result);
            }
            Request::RunStop(run_id, reply) => {
                let result = self
                    .runs
                    .stop(Room::standing(self.room.as_ref()), &run_id)
                    .map(|msg| self.apply(vec![Effect::Send(msg)]));
                let _ = reply.send(result);
            }
        }
    }

    fn on_created(
        &mut self,
        result: Result<CreatedSession, String>,
        params: ShareParams,
        reply: oneshot::Sender<Result<ShareResult, String>>,
        Scanned(files, skipped): Scanned,
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
        if !skipped.binary.is_empty() || !skipped.too_large.is_empty() {
            self.apply(vec![tell(
                "info",
                format!(
                    "shared without {} binary and {} too large files",
                    skipped.binary.len(),
                    skipped.too_large.len(),
                ),
            )]);
        }
        let host_link = target.link();
        self.open_room(target, Some(created.read_link.clone()));
        let _ = crate::config::save_session(crate::config::SessionRecord {
            dir: root,
            link: host_link,
            read_link: Some(created.read_link.clone()),
            share_link: Some(created.join_link.clone()),
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

    /// The first sync of a room is done: a share uploads its folder; then every open buffer
    /// and every file of the folder is merged with the room by the same rule, whether this
    /// is a first join, a rejoin (the editor reopening the folder, `join` again, a restart)
    /// or a share. Only then, with disk sync watching, does a join hear that it is done, so
    /// a file written right after "Joined" is seen.
    pub(super) fn on_first_sync(&mut self) {
        if let Some((files, result, reply)) = self.room.as_mut().and_then(|r| r.pending_share.take()) {
            // Open buffers hold the editor's truth, which may be ahead of the disk.
            let open = self.docs.shared_texts();
            let seen: HashSet<String> = files.iter().map(|(p, _)| p.clone()).collect();
            let mut merged: Vec<(String, String)> = files
                .into_iter()
                .map(|(path, text)| {
                    let text = open.get(&path).cloned().unwrap_or(text);
                    (path, text)
                })
                .collect();
            let mut extra: Vec<(String, String)> = open.into_iter().filter(|(p, _)| !seen.contains(p)).collect();
            extra.sort();
            merged.extend(extra);
            if let Some(room) = self.room.as_mut() {
                upload(&room.doc, merged);
                // The share is done when the server has the files: it answers a sync step 1
                // only after everything sent before it is stored.
                room.send_sync_step1();
                room.share_ack = Some((result, reply));
            }
            self.feed_room_changes();
        }
        // A join writes nothing when the room is over the folder limits.
        if let Some(room) = self.room.as_mut().filter(|r| !r.on_synced.is_empty()) {
            let files = room_files(&room.doc);
            let bytes = files.iter().map(|(_, text)| text.len() as u64).sum();
            if let Err(e) = self.identity.limits.check(Transfer::Join, files.len(), bytes) {
                for reply in room.on_synced.drain(..) {
                    let _ = reply.send(Err(e.to_string()));
                }
                self.leave();
                return;
            }
        }
        // Buffers first: where a file is open, the buffer is the local side of the merge.
        // After a demotion the buffers follow the room instead: a reader has nothing to merge.
        let uris: Vec<String> = self.docs.iter().map(|(u, _)| u.clone()).collect();
        let follow = self.room.as_mut().is_some_and(|r| std::mem::take(&mut r.follow_room));
        for uri in uris {
            if follow {
                let fx = self.docs.follow_room(&uri, &View(self.room.as_ref()));
                self.apply(fx);
            } else {
                self.attach_doc(&uri);
            }
        }
        self.start_disk_sync();
        let Some(room) = self.room.as_mut() else { return };
        for (result, reply) in room.share_again.drain(..) {
            let _ = reply.send(Ok(result));
        }
        let replies: Vec<_> = room.on_synced.drain(..).collect();
        if replies.is_empty() {
            return;
        }
        let files = room_files(&room.doc).len();
        let result = JoinResult {
            room: room.target.room.to_string(),
            files,
            conflicts: self.disk.conflict_paths(),
        };
        if let Some(root) = self.root.clone() {
            let _ = crate::config::save_session(crate::config::SessionRecord {
                dir: root,
                link: room.target.link(),
                read_link: room.read_link.clone(),
                share_link: self.share_link.clone(),
                name: String::new(),
            });
        }
        for reply in replies {
            let _ = reply.send(Ok(result.clone()));
        }
    }

    /// Connects to a room; its events come back as [`Event::Room`].
    fn open_room(&mut self, target: RoomTarget, read_link: Option<String>) {
        let events = self.events_tx.clone();
        let (room_tx, mut room_rx) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(ev) = room_rx.recv().await {
                if events.send(Event::Room(ev)).is_err() {
                    break;
                }
            }
        });
        // The folder's seat in this room, when it has one, holds the role: connect with it.
        let seat = self
            .root
            .as_deref()
            .and_then(|root| crate::mesh_dir::read_seat(root, &target.room.to_string()));
        let shown = RoomTarget {
            token: seat.as_ref().map_or_else(|| target.token.clone(), |s| s.token.clone()),
            ..target.clone()
        };
        let conn = room::connect(shown, self.identity.tls.clone(), room_tx);
        self.runs = Runs::default();
        self.text_changes.lock().expect("not poisoned").clear();
        self.room = Some(Room::new(
            target,
            read_link,
            conn,
            self.remote_dirty.clone(),
            self.text_changes.clone(),
        ));
        if let (Some(room), Some(seat)) = (self.room.as_mut(), seat) {
            room.seats.seat = Some(seat.id);
        }
    }

    /// We became a reader: edits we sent just before we knew may have been refused by the
    /// server, and our replica would still hold them (and send them again on a reconnect
    /// once we write again). So the replica is built again from the room, over the same
    /// seat, and every open buffer is brought to the room's text after the first sync.
    fn resync_as_reader(&mut self) {
        let Some(old) = self.room.take() else { return };
        self.watcher = None;
        self.disk.stop();
        let (target, read_link) = (old.target.clone(), old.read_link.clone());
        let seats = old.seats;
        let share_ack = old.share_ack;
        drop(old.conn);
        self.open_room(target, read_link);
        if let Some(room) = self.room.as_mut() {
            room.follow_room = true;
            room.role = Some(mesh_protocol::messages::Role::Reader);
            room.seats = seats;
            room.seats.disconnected();
            room.share_ack = share_ack;
        }
    }

    /// The room ended this session for good (kicked, refused, link revoked): whoever waits
    /// for the join hears why, the folder leaves the room and its seat is forgotten.
    fn end_session(&mut self, message: &str) {
        if let Some(room) = self.room.as_mut() {
            for reply in room.on_synced.drain(..) {
                let _ = reply.send(Err(message.to_string()));
            }
        }
        self.leave();
    }

    /// A host request: over REST, with the folder's seat token (or the link's), in its own
    /// task; the answer goes to `reply`.
    fn host_request(&mut self, call: HostCall, reply: HostReply) {
        let Some(room) = self.room.as_ref() else {
            let _ = reply.send(Err("not in a room: share the folder or join a room first".into()));
            return;
        };
        let seat = self
            .root
            .as_deref()
            .and_then(|root| crate::mesh_dir::read_seat(root, &room.target.room.to_string()));
        let target = RoomTarget {
            token: seat.map_or_else(|| room.target.token.clone(), |s| s.token),
            ..room.target.clone()
        };
        let me = room.conn_id;
        let api = crate::host_api::HostApi::new(self.identity.tls.clone(), target);
        tokio::spawn(async move {
            let _ = reply.send(host_call(&api, call, me).await);
        });
    }

    fn leave(&mut self) {
        let mut fx = self.runs.abandon("you left the room", Instant::now());
        if self.room.take().is_some() {
            fx.extend(self.presence.left(self.docs.iter().map(|(u, _)| u.clone())));
            if let Some(root) = &self.root {
                let _ = crate::config::forget_session(root);
                // The seat goes with the folder's place in the room.
                let _ = crate::mesh_dir::forget_seat(root);
            }
        }
        let _ = self.presence.follow(None, &Default::default());
        self.apply(fx);
        self.share_link = None;
        self.watcher = None;
        self.disk.stop();
    }

    fn status(&self) -> Status {
        match &self.room {
            Some(room) => Status {
                conflicts: self.disk.conflict_paths(),
                ..room.status(self.share_link.as_deref())
            },
            None => Status {
                state: "idle".into(),
                ..Default::default()
            },
        }
    }

    /// `mesh/resolve`: what `mesh-proxy resolve PATH` does, from the editor.
    fn resolve_request(&mut self, params: ResolveParams) -> Result<(), String> {
        let (Some(root), Some(room)) = (self.root.clone(), self.room.as_ref()) else {
            return Err("not in a room".into());
        };
        let path = match (&params.uri, &params.path) {
            (Some(uri), _) => self
                .room_path(uri)
                .ok_or_else(|| format!("{uri} is not in the shared folder {}", root.display()))?,
            (None, Some(path)) => path.clone(),
            (None, None) => return Err("say which file: mesh/resolve takes a `uri` or a `path`".into()),
        };
        if !self.disk.is_conflict(&path) {
            return Err(format!("{path} is not in conflict"));
        }
        let room_id = room.target.room.to_string();
        crate::mesh_dir::resolve(&root, &room_id, &path).map_err(|e| e.to_string())?;
        self.resolve_conflict(&path);
        Ok(())
    }

    /// Carries out an agent's edit: checked against our role and the room's text now, applied
    /// as one operation, written to disk like a remote change, and the cursor moved there.
    fn agent_edit(&mut self, edit: AgentEdit) -> Result<AgentEdited, String> {
        let standing = Room::standing(self.room.as_ref())?;
        if !standing.writable {
            return Err(
                "this room link is read-only: edits need a writer link (ask the host for one, \
                        or for the writer role)"
                    .into(),
            );
        }
        let (path, change, cursor, line) = match edit {
            AgentEdit::Replace {
                path,
                old_text,
                new_text,
            } => {
                let text = self
                    .view()
                    .text(&path)
                    .ok_or_else(|| format!("{path} is not in the room: list_files shows the room's files"))?;
                let (op, cursor, line) =
                    agent::replace_op(&text, &old_text, &new_text).map_err(|e| format!("{path}: {e}"))?;
                let change = RoomChange::Edit {
                    path: path.clone(),
                    ops: vec![op],
                };
                (path, change, cursor, line)
            }
            AgentEdit::Create { path, text } => {
                if self.view().text(&path).is_some() {
                    return Err(format!("{path} is in the room already: edit it instead"));
                }
                let root = self.root.clone().ok_or("not in a folder")?;
                crate::workspace::safe_join(&root, &path).map_err(|e| format!("{path} cannot be a room file: {e}"))?;
                if path.split('/').next() == Some(".mesh") {
                    return Err(".mesh/ is the proxy's own folder, not the room's: choose another path".into());
                }
                let cursor = text.encode_utf16().count() as u64;
                let line = u32::try_from(text.matches('\n').count() + 1).unwrap_or(u32::MAX);
                (path.clone(), RoomChange::Create { path, text }, cursor, line)
            }
        };
        self.change_room(change);
        // The folder's copy follows as it does for someone else's change.
        self.remote_dirty.lock().expect("not poisoned").insert(path.clone());
        self.presence.agent_cursor = Some(agent::cursor_at(&path, cursor));
        self.publish_awareness();
        Ok(AgentEdited { path, line, cursor })
    }

    /// Publishes our awareness state (name, colour, cursor, view).
    fn publish_awareness(&mut self) {
        let color = self.identity.color.clone().or_else(|| {
            self.room.as_ref().and_then(|r| {
                r.conn_id
                    .and_then(|id| r.participants.get(&id))
                    .map(|p| p.color.clone())
            })
        });
        let root = self.root.clone();
        let state = self.presence.local_state(
            &self.docs,
            &View(self.room.as_ref()),
            |uri| paths::room_path(root.as_deref()?, uri),
            &self.identity.name,
            color,
        );
        if let Some(room) = self.room.as_mut() {
            room.publish(&state);
        }
    }

    fn update_follow(&mut self) {
        let (Some(root), Some(room)) = (self.root.as_deref(), self.room.as_ref()) else {
            return;
        };
        let states = room.remote_states();
        let fx = self
            .presence
            .follow_update(root, &View(Some(room)), &states, &room.participants, self.docs.enc);
        self.apply(fx);
    }

    /// Derived state, recomputed once per batch of events.
    fn after_events(&mut self) {
        if self.view().synced() {
            // Only files the room changed need work: the disk copy and the editor's buffer.
            let changed: HashSet<String> = std::mem::take(&mut *self.remote_dirty.lock().expect("not poisoned"));
            if !changed.is_empty() {
                self.presence.dirty = true;
            }
            self.sync_disk(&changed);
            for uri in self.docs.uris_of(&changed) {
                let fx = self.docs.flush(&uri, &View(self.room.as_ref()));
                self.apply(fx);
            }
            if std::mem::take(&mut self.presence.dirty) {
                if let Some(room) = self.room.as_mut() {
                    let states = room.remote_states();
                    let people = room.people();
                    let mut fx = room.seats.followers(room.conn_id, &states, &people);
                    let room = self.room.as_ref().expect("just used");
                    fx.extend(
                        self.presence
                            .cursors(&self.docs, &View(Some(room)), &states, &room.participants),
                    );
                    self.apply(fx);
                }
            }
            self.update_follow();
        }
        let status = self.status();
        if self.last_status.as_ref() != Some(&status) {
            self.apply(vec![
                notify::<ParticipantsNotification>(ParticipantsParams {
                    participants: status.participants.clone(),
                }),
                notify::<StatusNotification>(status.clone()),
            ]);
            self.last_status = Some(status);
        }
    }
}

/// Carries out a host request; the answer as the LSP method documents it.
async fn host_call(
    api: &crate::host_api::HostApi,
    call: HostCall,
    me: Option<u64>,
) -> Result<serde_json::Value, String> {
    use crate::host_api::parse_role;
    let done = || serde_json::json!({});
    let value = match call {
        HostCall::Participants => {
            let room = api.participants().await.map_err(|e| e.to_string())?;
            serde_json::to_value(HostParticipants {
                participants: room
                    .participants
                    .iter()
                    .filter(|p| !p.companion)
                    .map(|p| Participant::of(p, me))
                    .collect(),
                waiting: room
                    .waiting
                    .into_iter()
                    .map(|w| JoinRequestParams {
                        seat: w.seat,
                        name: w.name,
                        client: w.client,
                        verified: w.verified,
                    })
                    .collect(),
                approval: room.approval,
            })
        }
        HostCall::SetRole(p) => {
            let role = parse_role(&p.role)?;
            api.set_role(&p.seat, role).await.map_err(|e| e.to_string())?;
            Ok(done())
        }
        HostCall::Kick(p) => {
            api.kick(&p.seat).await.map_err(|e| e.to_string())?;
            Ok(done())
        }
        HostCall::Admit(p) => {
            api.admit(&p.seat).await.map_err(|e| e.to_string())?;
            Ok(done())
        }
        HostCall::Refuse(p) => {
            api.refuse(&p.seat).await.map_err(|e| e.to_string())?;
            Ok(done())
        }
        HostCall::SetApproval(p) => {
            api.set_approval(p.on).await.map_err(|e| e.to_string())?;
            Ok(done())
        }
        HostCall::Links => {
            let links = api.links().await.map_err(|e| e.to_string())?;
            serde_json::to_value(Links {
                links: links.into_iter().map(Link::from).collect(),
            })
        }
        HostCall::CreateLink(p) => {
            let role = parse_role(&p.role)?;
            let link = api
                .create_link(mesh_protocol::rest::CreateLink {
                    role,
                    expires_in_secs: p.expires_in_secs,
                    max_uses: p.max_uses,
                    for_user: None,
                })
                .await
                .map_err(|e| e.to_string())?;
            serde_json::to_value(Link::from(link))
        }
        HostCall::RevokeLink(p) => {
            api.revoke_link(&p.id).await.map_err(|e| e.to_string())?;
            Ok(done())
        }
        HostCall::Audit(p) => {
            let entries = api.audit(p.limit).await.map_err(|e| e.to_string())?;
            serde_json::to_value(Audit { entries })
        }
    };
    value.map_err(|e| e.to_string())
}
