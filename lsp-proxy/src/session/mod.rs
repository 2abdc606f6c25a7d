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
mod ghost;
mod host;
mod outbox;
mod paths;
mod presence;
mod replica;
mod requests;
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
    /// A decision about the ghost's work (accept, reject, cancel, undo).
    Ghost(GhostDecisionParams, oneshot::Sender<Result<(), String>>),
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
    /// The ghosts' published requests and suggestions.
    ghosts: ghost::GhostBoard,
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
        ghosts: Default::default(),
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
        if self.ghosts.clear() {
            fx.push(notify::<GhostStateNotification>(GhostStateParams::default()));
        }
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
