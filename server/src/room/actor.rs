//! The task that owns one loaded room. It is the only code that touches the room's
//! [`RoomCore`]: connections talk to it through a bounded inbox ([`RoomHandle`]).
//!
//! Each turn of the loop takes every command already waiting (up to [`MAX_BATCH`]), lets the
//! core handle them, makes the resulting updates durable in one store call, and only then
//! sends anything. So nothing reaches a client before it is on disk, and a busy room pays
//! for one disk write per turn, not per keystroke.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use mesh_protocol::codec::Frame;
use mesh_protocol::messages::{Participant, Role};
use mesh_protocol::{ErrorCode, Request, RoomId};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::access::{Caller, Refusal, Tokens};
use super::core::{ConnId, Effects, HostOp, HostReply, RoomCore, RoomLimits, Target};
use crate::auth::Pass;

mod across;
mod debugging;
mod fanout;
mod remote;
mod running;
use crate::store::sqlite::now_ms;
use crate::store::Store;
use debugging::{ActiveDebug, PendingDebug};
use fanout::{queue_planned, Plan};
use running::{ActiveRun, QueuedRun};

/// Commands one turn may take; bounds the time between two sends of the room.
const MAX_BATCH: usize = 256;

/// Room inbox capacity: when it is full, connections wait (back-pressure on readers of the
/// socket) instead of the server buffering without bound.
pub const INBOX_CAPACITY: usize = 1024;

/// How long a room with nobody in it stays loaded, so a quick reconnect finds it warm.
pub const IDLE_UNLOAD: Duration = Duration::from_secs(30);

/// Compact the log into a snapshot after this many appended updates, so a reload replays a
/// bounded number of updates.
pub const COMPACT_EVERY: u64 = 1_000;

/// What the room sends a connection, and its handle on the connection's queue of outgoing
/// frames. When the queue is full the client cannot keep up; the room drops it and it
/// resyncs on reconnect.
pub use crate::ws::{Outbound, OutboundTx};

/// What a room can be asked.
pub enum Command {
    /// A connection with a checked token wants in (to its seat, or the lobby).
    Join {
        conn: ConnId,
        grant: Pass,
        tx: OutboundTx,
        reply: oneshot::Sender<Result<(), Refusal>>,
    },
    /// Would this token get in now? (The check before the socket is upgraded.)
    Check {
        grant: Pass,
        reply: oneshot::Sender<Result<(), Refusal>>,
    },
    /// Who a REST caller is, with its role now.
    Authorize {
        grant: Pass,
        reply: oneshot::Sender<Result<Caller, Refusal>>,
    },
    /// A host action over REST.
    Host {
        grant: Pass,
        op: HostOp,
        reply: oneshot::Sender<Result<HostReply, Refusal>>,
    },
    /// A waiting joiner's time is up (sent by the room's own loop).
    Tick,
    /// A connection is gone.
    Leave { conn: ConnId },
    /// Decoded messages of one frame.
    Frames { conn: ConnId, frames: Vec<Frame<Request>> },
    /// A frame that failed to decode: tell the sender.
    Refuse {
        conn: ConnId,
        code: ErrorCode,
        message: String,
    },
    /// Participants and files, for REST.
    Info { reply: oneshot::Sender<RoomInfo> },
    /// The room was deleted: close every connection and stop, writing nothing.
    Delete,
    /// The server is stopping: compact, close every connection and stop.
    Shutdown,
    /// Start a run on behalf of a REST caller.
    StartRun {
        /// What to run.
        request: mesh_protocol::rest::StartRun,
        /// The caller's role.
        role: Role,
        /// Who the caller counts as for the per-person cap (its token).
        person: crate::admission::Person,
        /// The run id and its place in the queue if it waits, or why not.
        reply: oneshot::Sender<Result<mesh_protocol::rest::StartedRun, (ErrorCode, String)>>,
    },
    /// The server's run admission says a run or debug session this room queued may start,
    /// or moved in the queue.
    Admission(crate::admission::Event),
    /// A run of this room reports.
    Run {
        /// The run.
        run_id: String,
        /// What happened.
        notice: crate::runs::RunNotice,
    },
    /// The room's debug session reports.
    Debug {
        /// The session.
        debug_id: String,
        /// What happened.
        notice: crate::debug::Notice,
    },
    /// The room's bus reader reports what other nodes published (with `--bus`).
    Bus(crate::bus::BusEvent),
    /// A hole in the store's numbering or a remote person's awareness may have timed out
    /// (sent by the room's own loop).
    BusTick,
}

/// A loaded room's public state.
#[derive(Debug, Clone)]
pub struct RoomInfo {
    /// Who is connected.
    pub participants: Vec<Participant>,
    /// Paths and UTF-16 lengths of the files.
    pub files: Vec<(String, u32)>,
}

/// A cloneable handle to a room's task.
#[derive(Clone)]
pub struct RoomHandle {
    tx: mpsc::Sender<Command>,
    /// Tells handles of successive loads of the same room apart.
    pub generation: u64,
}

/// The room's task is gone (unloaded or crashed); get a new handle from the registry.
#[derive(Debug)]
pub struct Gone;

impl RoomHandle {
    /// Sends a command, waiting for room in the inbox.
    pub async fn send(&self, cmd: Command) -> Result<(), Gone> {
        self.tx.send(cmd).await.map_err(|_| Gone)
    }

    /// Sends a command when the room's inbox has room, else gives it back (`Ok(Some)`) to be
    /// sent with [`RoomHandle::send`]: the common case without a future of a command's size.
    pub fn try_send(&self, cmd: Command) -> Result<Option<Command>, Gone> {
        match self.tx.try_send(cmd) {
            Ok(()) => Ok(None),
            Err(mpsc::error::TrySendError::Full(cmd)) => Ok(Some(cmd)),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(Gone),
        }
    }

    /// Asks the room to admit a connection.
    pub async fn join(
        &self,
        conn: ConnId,
        grant: impl Into<Pass>,
        tx: OutboundTx,
    ) -> Result<Result<(), Refusal>, Gone> {
        let grant = grant.into();
        let (reply, rx) = oneshot::channel();
        self.send(Command::Join { conn, grant, tx, reply }).await?;
        rx.await.map_err(|_| Gone)
    }

    /// Whether a token would get in now.
    pub async fn check(&self, grant: impl Into<Pass>) -> Result<Result<(), Refusal>, Gone> {
        let grant = grant.into();
        let (reply, rx) = oneshot::channel();
        self.send(Command::Check { grant, reply }).await?;
        rx.await.map_err(|_| Gone)
    }

    /// Who a REST caller is.
    pub async fn authorize(&self, grant: impl Into<Pass>) -> Result<Result<Caller, Refusal>, Gone> {
        let grant = grant.into();
        let (reply, rx) = oneshot::channel();
        self.send(Command::Authorize { grant, reply }).await?;
        rx.await.map_err(|_| Gone)
    }

    /// A host action over REST.
    pub async fn host(&self, grant: impl Into<Pass>, op: HostOp) -> Result<Result<HostReply, Refusal>, Gone> {
        let grant = grant.into();
        let (reply, rx) = oneshot::channel();
        self.send(Command::Host { grant, op, reply }).await?;
        rx.await.map_err(|_| Gone)
    }

    /// Participants and files of the room.
    pub async fn info(&self) -> Result<RoomInfo, Gone> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Info { reply }).await?;
        rx.await.map_err(|_| Gone)
    }

    /// Whether the task has stopped.
    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }
}

/// Starts a room's task. `on_exit` runs when it stops, whatever the reason.
pub fn spawn_with_runs(
    id: RoomId,
    generation: u64,
    store: Arc<dyn Store>,
    runs: Option<Arc<crate::runs::RunService>>,
    limits: RoomLimits,
    tokens: Arc<dyn Tokens>,
    on_exit: impl FnOnce() + Send + 'static,
) -> (RoomHandle, tokio::task::JoinHandle<()>) {
    spawn_on_bus(id, generation, store, runs, None, limits, tokens, on_exit)
}

/// [`spawn_with_runs`] for a node with a bus: the room follows its stream and publishes
/// what it accepts.
#[allow(clippy::too_many_arguments)]
pub fn spawn_on_bus(
    id: RoomId,
    generation: u64,
    store: Arc<dyn Store>,
    runs: Option<Arc<crate::runs::RunService>>,
    bus: Option<Arc<crate::bus::Bus>>,
    limits: RoomLimits,
    tokens: Arc<dyn Tokens>,
    on_exit: impl FnOnce() + Send + 'static,
) -> (RoomHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(INBOX_CAPACITY);
    let weak = tx.downgrade();
    let task = tokio::spawn(async move {
        let mut rx = rx;
        run(id, store, runs, bus, limits, tokens, weak, &mut rx).await;
        rx.close();
        while rx.try_recv().is_ok() {}
        on_exit();
    });
    (RoomHandle { tx, generation }, task)
}

/// Starts a room's task without a run service (runs are refused).
pub fn spawn(
    id: RoomId,
    generation: u64,
    store: Arc<dyn Store>,
    on_exit: impl FnOnce() + Send + 'static,
) -> (RoomHandle, tokio::task::JoinHandle<()>) {
    spawn_with_runs(
        id,
        generation,
        store,
        None,
        RoomLimits::default(),
        Arc::new(super::access::NoTokens),
        on_exit,
    )
}

struct Actor {
    id: RoomId,
    core: RoomCore,
    limits: RoomLimits,
    store: Arc<dyn Store>,
    /// The connections in the room (and its lobby), in id order.
    senders: BTreeMap<ConnId, OutboundTx>,
    last_seq: u64,
    compacted_seq: u64,
    runs: Option<Arc<crate::runs::RunService>>,
    me: mpsc::WeakSender<Command>,
    active: HashMap<String, ActiveRun>,
    /// Runs waiting for the server's admission, by run id.
    queued: HashMap<String, QueuedRun>,
    debug: Option<ActiveDebug>,
    /// Bytes of updates waiting for a missing dependency that the last compaction kept.
    pending_kept_bytes: u64,
    /// The room's debug session while it waits for the server's admission.
    pending_debug: Option<PendingDebug>,
    /// The bus to the other nodes, with what this room has integrated of the store's
    /// numbering and its stream's reader (`None` without `--bus`).
    bus: Option<remote::RoomBus>,
    /// Runs and debug sessions of other nodes, and stand-ins for their people (with a bus).
    across: across::Across,
}

#[allow(clippy::too_many_arguments)]
async fn run(
    id: RoomId,
    store: Arc<dyn Store>,
    runs: Option<Arc<crate::runs::RunService>>,
    bus: Option<Arc<crate::bus::Bus>>,
    limits: RoomLimits,
    tokens: Arc<dyn Tokens>,
    me: mpsc::WeakSender<Command>,
    rx: &mut mpsc::Receiver<Command>,
) {
    let exists = match store.get_room(id).await {
        Ok(found) => found.is_some(),
        Err(e) => {
            tracing::error!(room = %id, error = %e, "cannot read the room from the store");
            refuse_all(rx, ErrorCode::Internal).await;
            return;
        }
    };
    if !exists {
        refuse_all(rx, ErrorCode::NotFound).await;
        return;
    }
    // The stream's position is taken before the load, so nothing published between the
    // load and the first read is missed.
    let start = match &bus {
        Some(bus) => bus.position(id).await,
        None => None,
    };
    let state = match store.load(id).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(room = %id, error = %e, "cannot load the room");
            refuse_all(rx, ErrorCode::Internal).await;
            return;
        }
    };
    let access = match store.load_access(id).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(room = %id, error = %e, "cannot load the room's links and seats");
            refuse_all(rx, ErrorCode::Internal).await;
            return;
        }
    };
    let me_for_bus = me.clone();
    let started = Instant::now();
    let (mut core, bad) = RoomCore::load_with(limits, state.snapshot.as_deref(), &state.updates);
    core.set_access(access, tokens);
    core.set_bus(bus.is_some());
    if bad > 0 {
        tracing::error!(room = %id, bad, "stored updates failed to apply; the store may be damaged");
        metrics::counter!("mesh_store_bad_updates_total").increment(bad as u64);
    }
    tracing::info!(room = %id, updates = state.updates.len(), ms = started.elapsed().as_millis() as u64, "room loaded");
    metrics::gauge!("mesh_rooms_loaded").increment(1);
    let compacted_seq = state.last_seq - state.updates.len() as u64;
    let mut actor = Actor {
        id,
        core,
        limits,
        store,
        senders: BTreeMap::new(),
        last_seq: state.last_seq,
        compacted_seq,
        runs,
        me,
        active: HashMap::new(),
        queued: HashMap::new(),
        debug: None,
        pending_kept_bytes: 0,
        pending_debug: None,
        bus: bus.map(|bus| remote::RoomBus::follow(bus, id, start, state.last_seq, me_for_bus)),
        across: across::Across::default(),
    };
    actor.main_loop(rx).await;
    actor.leave_bus();
    if let Some(service) = &actor.runs {
        // What the room queued can no longer start.
        service.gate.forget_room(id);
    }
    metrics::gauge!("mesh_rooms_loaded").decrement(1);
}

/// Answers every queued join with `code` (the room could not be opened).
async fn refuse_all(rx: &mut mpsc::Receiver<Command>, code: ErrorCode) {
    rx.close();
    while let Some(cmd) = rx.recv().await {
        match cmd {
            Command::Join { reply, .. } | Command::Check { reply, .. } => {
                let _ = reply.send(Err(cannot_open(code)));
            }
            Command::Authorize { reply, .. } => {
                let _ = reply.send(Err(cannot_open(code)));
            }
            Command::Host { reply, .. } => {
                let _ = reply.send(Err(cannot_open(code)));
            }
            Command::Tick
            | Command::Info { .. }
            | Command::Leave { .. }
            | Command::Frames { .. }
            | Command::Refuse { .. }
            | Command::Delete
            | Command::Run { .. }
            | Command::Debug { .. }
            | Command::Admission(_)
            | Command::Bus(_)
            | Command::BusTick
            | Command::Shutdown => {}
            Command::StartRun { reply, .. } => {
                let _ = reply.send(Err((code, "the room cannot be opened".into())));
            }
        }
    }
}

fn cannot_open(code: ErrorCode) -> Refusal {
    let message = match code {
        ErrorCode::NotFound => "the room does not exist (was it deleted?)",
        _ => "the room cannot be opened now; try again",
    };
    Refusal {
        code,
        message: message.into(),
    }
}

enum Stop {
    Idle,
    Shutdown,
    Deleted,
    StoreFailed,
}

impl Actor {
    async fn main_loop(&mut self, rx: &mut mpsc::Receiver<Command>) {
        let mut idle_since = Some(Instant::now());
        let stop = loop {
            let idle_deadline = idle_since.map(|t| t + IDLE_UNLOAD);
            // The lobby's next timeout, on the room's clock (epoch milliseconds).
            let lobby_deadline = self
                .core
                .next_deadline()
                .map(|at| Instant::now() + Duration::from_millis(at.saturating_sub(now_ms())));
            // A hole in the numbering to give up on, or a remote person's state to expire.
            let bus_deadline = self
                .bus_deadline()
                .map(|at| Instant::now() + Duration::from_millis(at.saturating_sub(now_ms())));
            let first = tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(cmd) => cmd,
                    None => break Stop::Shutdown,
                },
                _ = sleep_until_opt(idle_deadline) => break Stop::Idle,
                _ = sleep_until_opt(lobby_deadline) => Command::Tick,
                _ = sleep_until_opt(bus_deadline) => Command::BusTick,
            };
            let mut batch = Vec::with_capacity(8);
            batch.push(first);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(cmd) => batch.push(cmd),
                    Err(_) => break,
                }
            }
            match self.turn(batch).await {
                Ok(()) => {}
                Err(stop) => break stop,
            }
            // A room whose run or debug session goes on stays: people on other nodes (or a
            // REST caller) may be following it, and it ends within its wall clock.
            let holds_sessions = !self.active.is_empty()
                || !self.queued.is_empty()
                || self.debug.is_some()
                || self.pending_debug.is_some();
            idle_since = if self.senders.is_empty() && !holds_sessions {
                idle_since.or(Some(Instant::now()))
            } else {
                None
            };
        };
        // What the last turns recorded after their own writes (leaves of dropped clients).
        let changes = self.core.take_access_changes();
        if !changes.is_empty() && !matches!(stop, Stop::Deleted | Stop::StoreFailed) {
            if let Err(e) = self.store.write_access(self.id, changes).await {
                tracing::warn!(room = %self.id, error = %e, "cannot write the last audit entries");
            }
        }
        match stop {
            Stop::Idle | Stop::Shutdown => {
                self.compact().await;
                let (code, reason) = match stop {
                    Stop::Idle => (1001, "room unloaded"),
                    // Tells clients to reconnect at once, to another node (drain.rs).
                    _ => (crate::drain::DRAIN_CLOSE_CODE, crate::drain::DRAIN_CLOSE_REASON),
                };
                self.close_all(code, reason);
            }
            Stop::Deleted => self.close_all(ErrorCode::NotFound.close_code(), "the room was deleted"),
            Stop::StoreFailed => self.close_all(ErrorCode::Unavailable.close_code(), "storage failed; reconnect"),
        }
        tracing::info!(room = %self.id, "room unloaded");
    }

    /// One turn: handle the batch, persist, then send.
    async fn turn(&mut self, batch: Vec<Command>) -> Result<(), Stop> {
        let mut fx = Effects::default();
        let mut stop = None;
        let mut poisoned = false;
        let mut bus_work = remote::BusWork::default();
        for cmd in batch {
            match cmd {
                Command::Join { conn, grant, tx, reply } => {
                    match self.core.join(conn, &grant.grant, grant.user, now_ms()) {
                        Ok(out) => {
                            self.senders.insert(conn, tx);
                            merge(&mut fx, out);
                            metrics::gauge!("mesh_participants").increment(1);
                            let _ = reply.send(Ok(()));
                        }
                        Err(refusal) => {
                            tracing::info!(room = %self.id, conn, message = %refusal.message, "join refused");
                            let _ = reply.send(Err(refusal));
                        }
                    }
                }
                Command::Check { grant, reply } => {
                    let _ = reply.send(self.core.check(&grant.grant, grant.user.as_ref(), now_ms()));
                }
                Command::Authorize { grant, reply } => {
                    let _ = reply.send(self.core.rest_caller(&grant.grant, grant.user.as_ref(), now_ms()));
                }
                Command::Host { grant, op, reply } => {
                    let now = now_ms();
                    let result = self
                        .core
                        .rest_caller(&grant.grant, grant.user.as_ref(), now)
                        .and_then(|caller| self.core.host_op(&caller, None, None, op, now, &mut fx));
                    let _ = reply.send(result);
                }
                Command::Tick => merge(&mut fx, self.core.tick(now_ms())),
                Command::Leave { conn } => {
                    if self.senders.remove(&conn).is_some() {
                        metrics::gauge!("mesh_participants").decrement(1);
                    }
                    merge(&mut fx, self.core.leave(conn, now_ms()));
                    self.debug_leave(&mut fx, conn);
                    self.left_across(conn);
                }
                Command::Frames { conn, frames } => {
                    let now = now_ms();
                    for frame in frames {
                        // A panic while handling one client's input ends that input, not the
                        // room: the document is rebuilt from the store after this turn.
                        let core = &mut self.core;
                        let handled =
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| core.handle(conn, frame, now)));
                        match handled {
                            Ok(out) => merge(&mut fx, out),
                            Err(_) => {
                                tracing::error!(room = %self.id, conn, "handling a client's message panicked; the message is refused and the room reloads its document");
                                metrics::counter!("mesh_room_panics_total").increment(1);
                                poisoned = true;
                                fx.close.push((
                                    conn,
                                    ErrorCode::InvalidUpdate,
                                    "your message could not be handled and was refused".into(),
                                ));
                                break;
                            }
                        }
                    }
                }
                Command::Refuse { conn, code, message } => merge(&mut fx, self.core.refuse(conn, code, message)),
                Command::Info { reply } => {
                    let _ = reply.send(RoomInfo {
                        participants: self.core.participants(),
                        files: self.core.files(),
                    });
                }
                Command::Delete => stop = Some(Stop::Deleted),
                Command::Shutdown => stop = Some(Stop::Shutdown),
                Command::Run { run_id, notice } => self.on_run_notice(&mut fx, run_id, notice),
                Command::Debug { debug_id, notice } => self.on_debug_notice(&mut fx, debug_id, notice),
                Command::StartRun {
                    request,
                    role,
                    person,
                    reply,
                } => {
                    let result = self.rest_run(&mut fx, request, role, person);
                    let _ = reply.send(result);
                }
                Command::Admission(event) => self.on_admission(&mut fx, event),
                Command::Bus(event) => self.on_bus(&mut fx, event, &mut bus_work),
                Command::BusTick => self.on_bus_tick(&mut fx, &mut bus_work),
            }
        }
        // The common turn (updates to store, nothing else for the store, nothing to start):
        // the store relays the turn's frames itself the moment the updates are durable.
        let relay_on_durable = !fx.persist.is_empty()
            && !poisoned
            && fx.runs.is_empty()
            && fx.run_inputs.is_empty()
            && fx.run_stops.is_empty()
            && fx.debug.is_empty()
            && !self.core.has_access_changes()
            && !self.crosses_nodes(&fx.send);
        if !fx.persist.is_empty() {
            let n = fx.persist.len() as u64;
            let bytes: usize = fx.persist.iter().map(Vec::len).sum();
            let started = Instant::now();
            let updates = std::mem::take(&mut fx.persist);
            // Only with a bus: the updates go to the other nodes once durable.
            let for_bus = self.bus.as_ref().map(|_| updates.clone());
            let appended = if relay_on_durable {
                let plan = self.plan(std::mem::take(&mut fx.send));
                let full = Arc::new(std::sync::Mutex::new(Vec::new()));
                let full_then = full.clone();
                let relay = Box::new(move || {
                    let dropped = queue_planned(plan);
                    *full_then.lock().unwrap_or_else(|e| e.into_inner()) = dropped;
                });
                let appended = self.store.append_then(self.id, updates, relay).await;
                let dropped = std::mem::take(&mut *full.lock().unwrap_or_else(|e| e.into_inner()));
                if appended.is_ok() {
                    self.settle(std::mem::take(&mut fx.close), dropped);
                }
                appended
            } else {
                self.store.append(self.id, updates).await
            };
            match appended {
                Ok(seq) => {
                    self.last_seq = self.last_seq.max(seq);
                    if let Some(updates) = for_bus {
                        self.published(seq, updates);
                    }
                }
                Err(e) => {
                    // The updates are in memory but not on disk: send nothing, drop everyone.
                    // Clients keep their edits and resend them when they resync.
                    tracing::error!(room = %self.id, error = %e, "cannot persist updates; closing the room");
                    metrics::counter!("mesh_store_errors_total").increment(1);
                    return Err(Stop::StoreFailed);
                }
            }
            metrics::histogram!("mesh_store_append_seconds").record(started.elapsed().as_secs_f64());
            metrics::counter!("mesh_updates_total").increment(n);
            metrics::counter!("mesh_update_bytes_total").increment(bytes as u64);
        }
        self.bus_turn(&mut fx, bus_work).await?;
        if poisoned {
            // Everything accepted before the panic is durable now; the document is rebuilt
            // from exactly that, so whatever the failed message half-did is gone.
            match self.store.load(self.id).await {
                Ok(state) => {
                    let (fresh, _) = RoomCore::load_with(self.limits, state.snapshot.as_deref(), &state.updates);
                    self.core.replace_document(fresh);
                }
                Err(e) => {
                    tracing::error!(room = %self.id, error = %e, "cannot reload the room after a panic");
                    return Err(Stop::StoreFailed);
                }
            }
        }
        let (runs, inputs, stops) = (
            std::mem::take(&mut fx.runs),
            std::mem::take(&mut fx.run_inputs),
            std::mem::take(&mut fx.run_stops),
        );
        for req in runs {
            self.start_run(&mut fx, req);
        }
        for (conn, request, run_id, data, eof) in inputs {
            self.run_input(&mut fx, conn, request, run_id, data, eof);
        }
        for (conn, request, run_id) in stops {
            self.stop_run(&mut fx, conn, request, run_id);
        }
        for req in std::mem::take(&mut fx.debug) {
            self.on_debug_request(&mut fx, req);
        }
        // Seats, links, approval and the audit trail changed this turn are durable before
        // anyone hears of them (a seat token in `welcome` names a stored seat).
        self.persist_access().await?;
        self.deliver(fx);
        if let Some(stop) = stop {
            return Err(stop);
        }
        if self.last_seq - self.compacted_seq >= COMPACT_EVERY {
            self.compact().await;
        }
        Ok(())
    }

    /// Writes the seats, links, approval and audit entries the room changed, and tells the
    /// other nodes to reload theirs. A store that cannot take them closes the room: nobody
    /// may hear of a seat that is not stored.
    async fn persist_access(&mut self) -> Result<(), Stop> {
        let changes = self.core.take_access_changes();
        if changes.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.store.write_access(self.id, changes).await {
            tracing::error!(room = %self.id, error = %e, "cannot persist the room's seats and links; closing the room");
            metrics::counter!("mesh_store_errors_total").increment(1);
            return Err(Stop::StoreFailed);
        }
        self.access_changed();
        Ok(())
    }

    fn deliver(&mut self, mut fx: Effects) {
        if let Some(bus) = &self.bus {
            bus.publish_awareness(self.id, std::mem::take(&mut fx.bus_awareness));
        }
        let plan = self.plan(fx.send);
        let dropped = queue_planned(plan);
        self.settle(fx.close, dropped);
        self.publish_people(false);
    }

    /// Who gets which of the turn's frames: each connection once, its frames in order.
    fn plan(&self, send: Vec<(Target, Bytes)>) -> Plan {
        let mut targets = Vec::with_capacity(send.len());
        let mut frames = Vec::with_capacity(send.len());
        for (target, frame) in send {
            // Beyond this node first (relays, replies to stand-ins); what is left is local.
            if let Some(target) = self.send_across(target, &frame) {
                targets.push(target);
                frames.push(frame);
            }
        }
        let mut plan = Plan::new(frames);
        if targets.is_empty() {
            return plan;
        }
        // A turn that only answers (each frame names its connection) looks at those
        // connections alone: in a hall of 1,500, walking the room is a lookup per person.
        let answered: Option<BTreeSet<ConnId>> = targets
            .iter()
            .map(|t| if let Target::One(id) = t { Some(*id) } else { None })
            .collect();
        let conns: Box<dyn Iterator<Item = (&ConnId, &OutboundTx)>> = match &answered {
            Some(ids) => Box::new(ids.iter().filter_map(|id| self.senders.get_key_value(id))),
            None => Box::new(self.senders.iter()),
        };
        for (&id, tx) in conns {
            let who = self.core.recipient(id);
            let picks = (0..targets.len() as u32).filter(|&i| targets[i as usize].includes(id, who));
            // A frame for one connection answers it (its sync, its request): not paced.
            let reply = targets.iter().any(|t| matches!(t, Target::One(one) if *one == id));
            plan.deliver(id, tx, picks, reply);
        }
        plan
    }

    /// Closes what the turn closes and drops the connections whose queue was full (after
    /// their frames were queued, as the turn's frames come first).
    fn settle(&mut self, close: Vec<(ConnId, ErrorCode, String)>, mut dropped: Vec<ConnId>) {
        for (id, code, reason) in close {
            if let Some(tx) = self.senders.remove(&id) {
                let _ = tx.try_send(Outbound::Close(code.close_code(), reason));
                metrics::gauge!("mesh_participants").decrement(1);
                let leave = self.core.leave(id, now_ms());
                self.deliver(leave);
            }
        }
        dropped.sort_unstable();
        dropped.dedup();
        for id in dropped {
            if self.senders.remove(&id).is_some() {
                // Its queue is full, so it cannot even be told; its writer closes the socket
                // when the queue's sender is dropped here.
                tracing::warn!(room = %self.id, conn = id, "client too slow; dropped");
                metrics::counter!("mesh_slow_clients_dropped_total").increment(1);
                metrics::gauge!("mesh_participants").decrement(1);
                let leave = self.core.leave(id, now_ms());
                self.deliver(leave);
            }
        }
    }

    /// Replaces the room's log by a snapshot of the integrated document. Updates waiting for
    /// a missing dependency are appended again after the snapshot (in the same store
    /// transaction), so compaction always proceeds; a room whose waiting updates grow from
    /// one compaction to the next is reported (log and metrics), as its log cannot shrink.
    async fn compact(&mut self) {
        if self.last_seq == self.compacted_seq {
            return;
        }
        let snapshot = self.core.snapshot();
        let (waiting, waiting_bytes) = (
            snapshot.pending.len() as u64,
            snapshot.pending.iter().map(Vec::len).sum::<usize>() as u64,
        );
        // Nothing new since the last compaction but the waiting updates themselves: writing
        // the same snapshot again would gain nothing.
        if waiting > 0 && self.last_seq - self.compacted_seq <= waiting && waiting_bytes == self.pending_kept_bytes {
            return;
        }
        let upto = self.last_seq;
        match self
            .store
            .compact(self.id, snapshot.state, upto, snapshot.pending)
            .await
        {
            Ok(last_seq) => {
                self.compacted_seq = upto;
                self.compacted_bus(waiting, last_seq);
                self.last_seq = last_seq;
                metrics::counter!("mesh_compactions_total").increment(1);
                if waiting > 0 {
                    metrics::counter!("mesh_compaction_pending_kept_total").increment(waiting);
                    metrics::counter!("mesh_compaction_pending_kept_bytes_total").increment(waiting_bytes);
                    if waiting_bytes > self.pending_kept_bytes {
                        metrics::counter!("mesh_rooms_pending_growing_total").increment(1);
                        tracing::warn!(
                            room = %self.id,
                            waiting_bytes,
                            before = self.pending_kept_bytes,
                            "updates waiting for a missing dependency keep growing; they stay in the log after each snapshot until a client sends what they depend on"
                        );
                    }
                }
                self.pending_kept_bytes = waiting_bytes;
            }
            Err(e) => tracing::warn!(room = %self.id, error = %e, "compaction failed; the log is kept"),
        }
    }

    fn close_all(&mut self, code: u16, reason: &str) {
        for (_, tx) in std::mem::take(&mut self.senders) {
            let _ = tx.try_send(Outbound::Close(code, reason.to_string()));
            metrics::gauge!("mesh_participants").decrement(1);
        }
    }
}

fn merge(into: &mut Effects, from: Effects) {
    into.absorb(from);
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use crate::store::{BoxFuture, RoomRecord, RoomState, StoreResult};
    use mesh_protocol::codec::decode_frame;
    use mesh_protocol::ServerMessage;
    use yrs::sync::SyncMessage;
    use yrs::{ReadTxn, Text, Transact};

    /// A store whose appends wait until the test opens the gate.
    struct GateStore {
        inner: MemoryStore,
        gate: tokio::sync::Semaphore,
    }

    impl Store for GateStore {
        fn create_room(&self, room: RoomRecord) -> BoxFuture<'_, StoreResult<()>> {
            self.inner.create_room(room)
        }
        fn get_room(&self, id: RoomId) -> BoxFuture<'_, StoreResult<Option<RoomRecord>>> {
            self.inner.get_room(id)
        }
        fn list_rooms(&self) -> BoxFuture<'_, StoreResult<Vec<RoomRecord>>> {
            self.inner.list_rooms()
        }
        fn delete_room(&self, id: RoomId) -> BoxFuture<'_, StoreResult<bool>> {
            self.inner.delete_room(id)
        }
        fn load(&self, id: RoomId) -> BoxFuture<'_, StoreResult<RoomState>> {
            self.inner.load(id)
        }
        fn append(&self, id: RoomId, updates: Vec<Vec<u8>>) -> BoxFuture<'_, StoreResult<u64>> {
            Box::pin(async move {
                self.gate.acquire().await.expect("gate open").forget();
                self.inner.append(id, updates).await
            })
        }
        fn compact(
            &self,
            id: RoomId,
            snapshot: Vec<u8>,
            upto_seq: u64,
            keep: Vec<Vec<u8>>,
        ) -> BoxFuture<'_, StoreResult<u64>> {
            self.inner.compact(id, snapshot, upto_seq, keep)
        }
        fn put_run(&self, id: RoomId, run: crate::store::RunRecord) -> BoxFuture<'_, StoreResult<()>> {
            self.inner.put_run(id, run)
        }
        fn list_runs(&self, id: RoomId, limit: usize) -> BoxFuture<'_, StoreResult<Vec<crate::store::RunRecord>>> {
            self.inner.list_runs(id, limit)
        }
        fn load_access(&self, id: RoomId) -> BoxFuture<'_, StoreResult<crate::store::AccessState>> {
            self.inner.load_access(id)
        }
        fn write_access(&self, id: RoomId, changes: Vec<crate::store::AccessChange>) -> BoxFuture<'_, StoreResult<()>> {
            self.inner.write_access(id, changes)
        }
    }

    /// A writer link of the room, in the store.
    async fn writer_link(store: &dyn Store, id: RoomId) -> crate::auth::Grant {
        let link = crate::store::LinkRecord {
            id: "writers".into(),
            role: Role::Writer,
            created_at: 0,
            expires_at: u64::MAX,
            max_uses: None,
            uses: 0,
            revoked_at: None,
            created_by: "test".into(),
            for_user: None,
        };
        store
            .write_access(id, vec![crate::store::AccessChange::Link(link)])
            .await
            .unwrap();
        crate::auth::Grant::Link("writers".into())
    }

    fn update_frame(text: &str) -> Frame<Request> {
        let doc = mesh_protocol::doc::new_doc();
        let t = doc.get_or_insert_text("t");
        t.insert(&mut doc.transact_mut(), 0, text);
        let update = doc.transact().encode_state_as_update_v1(&yrs::StateVector::default());
        Frame::Yjs(yrs::sync::Message::Sync(SyncMessage::Update(update)))
    }

    async fn next_update(rx: &mut crate::ws::OutboundRx) -> Option<Vec<u8>> {
        while let Ok(Some(out)) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {
            if let Outbound::Frame(bytes) = out {
                for f in decode_frame::<ServerMessage>(&bytes).unwrap() {
                    if let Frame::Yjs(yrs::sync::Message::Sync(SyncMessage::Update(u))) = f {
                        return Some(u);
                    }
                }
            }
        }
        None
    }

    #[tokio::test]
    async fn nothing_is_broadcast_before_it_is_durable() {
        let store = Arc::new(GateStore {
            inner: MemoryStore::new(),
            gate: tokio::sync::Semaphore::new(0),
        });
        let id = RoomId::random();
        store
            .create_room(RoomRecord {
                id,
                name: "gate".into(),
                created_at: 0,
            })
            .await
            .unwrap();
        let grant = writer_link(store.as_ref(), id).await;
        let (room, _task) = spawn(id, 0, store.clone(), || {});
        let (a_tx, _a_rx) = crate::ws::channel(64);
        let (b_tx, mut b_rx) = crate::ws::channel(64);
        room.join(1, grant.clone(), a_tx).await.unwrap().unwrap();
        room.join(2, grant, b_tx).await.unwrap().unwrap();
        // B has synced: updates reach it from now on.
        room.send(Command::Frames {
            conn: 2,
            frames: vec![Frame::Yjs(yrs::sync::Message::Sync(SyncMessage::SyncStep1(
                yrs::StateVector::default(),
            )))],
        })
        .await
        .unwrap();
        room.send(Command::Frames {
            conn: 1,
            frames: vec![update_frame("hello")],
        })
        .await
        .unwrap();
        assert_eq!(
            next_update(&mut b_rx).await,
            None,
            "broadcast before the store acknowledged"
        );
        store.gate.add_permits(1);
        assert!(
            next_update(&mut b_rx).await.is_some(),
            "broadcast after the store acknowledged"
        );
        assert_eq!(store.inner.load(id).await.unwrap().updates.len(), 1);
    }

    #[tokio::test]
    async fn compaction_proceeds_past_an_update_waiting_for_its_dependency() {
        use crate::room::core::tests::{text_t, three_edits};
        let store = Arc::new(MemoryStore::new());
        let id = RoomId::random();
        store
            .create_room(RoomRecord {
                id,
                name: "pending".into(),
                created_at: 0,
            })
            .await
            .unwrap();
        let [a, b, c] = three_edits();
        // "c" waits for "b", which no client has sent yet.
        store.append(id, vec![a, c.clone()]).await.unwrap();
        for round in 0..2 {
            let (room, task) = spawn(id, round, store.clone(), || {});
            room.send(Command::Shutdown).await.unwrap();
            task.await.unwrap();
            let state = store.load(id).await.unwrap();
            assert!(state.snapshot.is_some(), "round {round}: the room was compacted");
            assert_eq!(state.updates.len(), 1, "round {round}: only the waiting update is left");
            let (core, _) = RoomCore::load(state.snapshot.as_deref(), &state.updates);
            assert_eq!(text_t(&core), "a");
        }
        // The dependency arrives: the kept update integrates.
        store.append(id, vec![b]).await.unwrap();
        let (room, task) = spawn(id, 2, store.clone(), || {});
        room.send(Command::Shutdown).await.unwrap();
        task.await.unwrap();
        let state = store.load(id).await.unwrap();
        assert!(state.updates.is_empty(), "nothing waits any more: {:?}", state.updates);
        let (core, _) = RoomCore::load(state.snapshot.as_deref(), &[]);
        assert_eq!(text_t(&core), "abc");
    }
}
