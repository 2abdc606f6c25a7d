//! The loaded rooms. A room's task starts on first use and removes itself when it stops; the
//! map's lock is never held across an `.await`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use mesh_protocol::{ErrorCode, RoomId};
use tokio::task::JoinHandle;

use super::access::{Caller, Refusal};
use super::actor::{self, Command, OutboundTx, RoomHandle, RoomInfo};
use super::core::{ConnId, HostOp, HostReply};
use crate::auth::{Pass, TokenIssuer};
use crate::store::Store;

/// How often a join retries when it races with the room unloading.
const JOIN_ATTEMPTS: usize = 3;

fn unavailable() -> Refusal {
    Refusal {
        code: ErrorCode::Unavailable,
        message: "the room is unloading; try again".into(),
    }
}

struct Loaded {
    handle: RoomHandle,
    task: Option<JoinHandle<()>>,
}

/// The registry of loaded rooms.
pub struct Rooms {
    store: Arc<dyn Store>,
    runs: Option<Arc<crate::runs::RunService>>,
    limits: super::core::RoomLimits,
    issuer: Option<TokenIssuer>,
    /// The bus to the other nodes (`--bus`), if any.
    bus: Option<Arc<crate::bus::Bus>>,
    loaded: Mutex<HashMap<RoomId, Loaded>>,
    generation: AtomicU64,
    me: Weak<Rooms>,
}

impl Rooms {
    /// An empty registry over `store`.
    pub fn new(store: Arc<dyn Store>, runs: Option<Arc<crate::runs::RunService>>) -> Arc<Self> {
        Self::with_limits(store, runs, super::core::RoomLimits::default(), None)
    }

    /// An empty registry whose rooms enforce `limits` and sign seat tokens and links with
    /// `issuer` (without one, tokens are placeholders: for tests of rooms alone).
    pub fn with_limits(
        store: Arc<dyn Store>,
        runs: Option<Arc<crate::runs::RunService>>,
        limits: super::core::RoomLimits,
        issuer: Option<TokenIssuer>,
    ) -> Arc<Self> {
        Self::on_bus(store, runs, limits, issuer, None)
    }

    /// [`Rooms::with_limits`] on a node whose rooms follow and publish to `bus`.
    pub fn on_bus(
        store: Arc<dyn Store>,
        runs: Option<Arc<crate::runs::RunService>>,
        limits: super::core::RoomLimits,
        issuer: Option<TokenIssuer>,
        bus: Option<Arc<crate::bus::Bus>>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Rooms {
            store,
            runs,
            limits,
            issuer,
            bus,
            loaded: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            me: me.clone(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<RoomId, Loaded>> {
        // The map holds only handles; a panic elsewhere cannot leave it inconsistent.
        self.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The room's handle, starting its task if it is not loaded.
    pub fn get_or_load(&self, id: RoomId) -> RoomHandle {
        let mut loaded = self.lock();
        if let Some(l) = loaded.get(&id) {
            if !l.handle.is_closed() {
                return l.handle.clone();
            }
        }
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let me = self.me.clone();
        let tokens = match &self.issuer {
            Some(issuer) => issuer.for_room(id),
            None => Arc::new(super::access::NoTokens),
        };
        let (handle, task) = actor::spawn_on_bus(
            id,
            generation,
            self.store.clone(),
            self.runs.clone(),
            self.bus.clone(),
            self.limits,
            tokens,
            move || {
                if let Some(rooms) = me.upgrade() {
                    rooms.forget(id, generation);
                }
            },
        );
        loaded.insert(
            id,
            Loaded {
                handle: handle.clone(),
                task: Some(task),
            },
        );
        handle
    }

    /// The handle of a room only if it is loaded.
    pub fn get_loaded(&self, id: RoomId) -> Option<RoomHandle> {
        self.lock()
            .get(&id)
            .map(|l| l.handle.clone())
            .filter(|h| !h.is_closed())
    }

    fn forget(&self, id: RoomId, generation: u64) {
        let mut loaded = self.lock();
        if loaded.get(&id).is_some_and(|l| l.handle.generation == generation) {
            loaded.remove(&id);
        }
    }

    /// Admits a connection to a room (its seat, or the lobby), loading the room if needed.
    pub async fn join(
        &self,
        id: RoomId,
        conn: ConnId,
        grant: impl Into<Pass>,
        tx: OutboundTx,
    ) -> Result<RoomHandle, Refusal> {
        let grant = grant.into();
        for _ in 0..JOIN_ATTEMPTS {
            let handle = self.get_or_load(id);
            match handle.join(conn, grant.clone(), tx.clone()).await {
                Ok(Ok(())) => return Ok(handle),
                Ok(Err(refusal)) => return Err(refusal),
                Err(actor::Gone) => self.forget(id, handle.generation),
            }
        }
        Err(unavailable())
    }

    /// Whether a token would get in now, loading the room if needed.
    pub async fn check(&self, id: RoomId, grant: impl Into<Pass>) -> Result<(), Refusal> {
        let grant = grant.into();
        for _ in 0..JOIN_ATTEMPTS {
            let handle = self.get_or_load(id);
            match handle.check(grant.clone()).await {
                Ok(result) => return result,
                Err(actor::Gone) => self.forget(id, handle.generation),
            }
        }
        Err(unavailable())
    }

    /// Who a REST caller is, with its role now.
    pub async fn authorize(&self, id: RoomId, grant: impl Into<Pass>) -> Result<Caller, Refusal> {
        let grant = grant.into();
        for _ in 0..JOIN_ATTEMPTS {
            let handle = self.get_or_load(id);
            match handle.authorize(grant.clone()).await {
                Ok(result) => return result,
                Err(actor::Gone) => self.forget(id, handle.generation),
            }
        }
        Err(unavailable())
    }

    /// A host action over REST.
    pub async fn host(&self, id: RoomId, grant: impl Into<Pass>, op: HostOp) -> Result<HostReply, Refusal> {
        let grant = grant.into();
        for _ in 0..JOIN_ATTEMPTS {
            let handle = self.get_or_load(id);
            match handle.host(grant.clone(), op.clone()).await {
                Ok(result) => return result,
                Err(actor::Gone) => self.forget(id, handle.generation),
            }
        }
        Err(unavailable())
    }

    /// Participants and files of a loaded room.
    pub async fn info(&self, id: RoomId) -> Option<RoomInfo> {
        self.get_loaded(id)?.info().await.ok()
    }

    /// How many rooms are loaded.
    pub fn loaded_count(&self) -> usize {
        self.lock().len()
    }

    /// Tells a loaded room it was deleted.
    pub async fn deleted(&self, id: RoomId) {
        if let Some(h) = self.get_loaded(id) {
            let _ = h.send(Command::Delete).await;
        }
    }

    /// Asks every room to compact and close its connections, and waits for them.
    pub async fn shutdown(&self) {
        let rooms: Vec<(RoomHandle, Option<JoinHandle<()>>)> = self
            .lock()
            .values_mut()
            .map(|l| (l.handle.clone(), l.task.take()))
            .collect();
        for (handle, _) in &rooms {
            let _ = handle.send(Command::Shutdown).await;
        }
        for (_, task) in rooms {
            if let Some(task) = task {
                let _ = task.await;
            }
        }
    }
}
