//! Durable storage of rooms: metadata, the append-only log of accepted updates, and
//! compacted snapshots.
//!
//! The [`Store`] trait is what the rest of the server sees. [`sqlite::SqliteStore`] is the
//! embedded default (one file, no server); [`postgres::PostgresStore`] is what several
//! servers share (`--store postgres://...`); [`memory::MemoryStore`] serves tests of the room
//! core. Every method may block on disk, so callers reach the store through its own thread.

pub mod memory;
pub mod postgres;
pub mod private;
pub mod sqlite;

use std::future::Future;
use std::pin::Pin;

use mesh_protocol::messages::{AuditEntry, Role};
use mesh_protocol::RoomId;

/// How many audit entries a room keeps; older ones are dropped as new ones arrive. A busy
/// room's day of joins, role changes and runs fits; a client that joins in a loop cannot
/// grow the store without bound.
pub const MAX_AUDIT_ENTRIES: usize = 1_000;

/// What a store without accounts answers when asked to keep one.
const NO_ACCOUNTS: &str = "this store keeps no accounts";

/// A boxed future, as returned by [`Store`] methods (the trait is used as `dyn Store`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("database error: {0}")]
    Database(String),
    /// The store's worker thread is gone (the server is shutting down).
    #[error("store is closed")]
    Closed,
}

/// `Result` with a [`StoreError`].
pub type StoreResult<T> = Result<T, StoreError>;

/// A room's row: what REST lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRecord {
    /// The room id.
    pub id: RoomId,
    /// Human name.
    pub name: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: u64,
}

/// A join link of a room (`room_links`): the signed token names it as `lid`, and the server
/// checks this record at every use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRecord {
    /// The link's id.
    pub id: String,
    /// The role its seats start with.
    pub role: Role,
    /// Milliseconds since the Unix epoch.
    pub created_at: u64,
    /// When it stops creating seats, milliseconds since the Unix epoch.
    pub expires_at: u64,
    /// How many seats it may create; unlimited when `None`.
    pub max_uses: Option<u32>,
    /// How many seats it created.
    pub uses: u32,
    /// When the host revoked it.
    pub revoked_at: Option<u64>,
    /// Who created it (an audit actor string; `server` for the links made with the room).
    pub created_by: String,
    /// The one signed-in user it is for, in [`Invitee`](crate::accounts::identity::Invitee)'s
    /// stored form; anyone with the link when `None`.
    pub for_user: Option<String>,
}

/// A person's place in a room (`room_seats`): holds the role, across reconnects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeatRecord {
    /// The seat's id.
    pub id: String,
    /// The name its holder was last given.
    pub name: String,
    /// Its role now.
    pub role: Role,
    /// The link that created it.
    pub link: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: u64,
    /// Removed by the host: its token is refused.
    pub kicked: bool,
    /// The signed-in user who holds it (mesh's user id); only they may use it.
    pub user: Option<String>,
}

/// A user who signed in with the OpenID Connect provider (`users`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// mesh's id of the user.
    pub id: String,
    /// The provider's issuer URL.
    pub issuer: String,
    /// The provider's subject: with the issuer, who the user is.
    pub subject: String,
    /// The name shown (from the provider, at the last sign-in).
    pub name: String,
    /// The email the provider gave at the last sign-in.
    pub email: Option<String>,
    /// First sign-in, milliseconds since the Unix epoch.
    pub created_at: u64,
}

/// A signed-in session (`user_sessions`): a browser's cookie or a `mesh-proxy` token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSession {
    /// SHA-256 of the token, hex: the token itself is never stored.
    pub digest: String,
    /// The user.
    pub user: String,
    /// `browser` or `device`.
    pub kind: String,
    /// Milliseconds since the Unix epoch.
    pub created_at: u64,
    /// When it stops working, milliseconds since the Unix epoch.
    pub expires_at: u64,
}

/// Who may be in a room and how: what [`Store::load_access`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccessState {
    /// Every link, in no particular order.
    pub links: Vec<LinkRecord>,
    /// Every seat kept, in no particular order.
    pub seats: Vec<SeatRecord>,
    /// Joiners wait for the host's approval.
    pub approval: bool,
    /// The audit trail, oldest first (at most [`MAX_AUDIT_ENTRIES`]).
    pub audit: Vec<AuditEntry>,
    /// The user who owns the room (its creator, signed in), if any.
    pub owner: Option<String>,
}

/// One change to a room's access records, written by [`Store::write_access`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessChange {
    /// Creates or replaces a link. Its use count never goes down: a writer's copy may be
    /// older than the store's (another node counted a use meanwhile).
    Link(LinkRecord),
    /// Counts one more seat made through the link with this id: an increment in the store,
    /// so seats made through several nodes at once all count.
    LinkUsed(String),
    /// Creates or replaces a seat.
    Seat(SeatRecord),
    /// Forgets a seat (its token is refused from then on).
    DropSeat(String),
    /// Sets the approval setting.
    Approval(bool),
    /// Appends to the audit trail, dropping the oldest past [`MAX_AUDIT_ENTRIES`].
    Audit(AuditEntry),
    /// Sets the room's owner (the signed-in user who created it).
    Owner(String),
}

/// Everything needed to rebuild a room's document: the latest snapshot and the updates
/// appended after it, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RoomState {
    /// The compacted state (`encode_state_as_update_v1`), if the room was ever compacted.
    pub snapshot: Option<Vec<u8>>,
    /// Updates accepted after the snapshot, oldest first.
    pub updates: Vec<Vec<u8>>,
    /// The sequence number of the last update in the log (0 when none ever was).
    pub last_seq: u64,
}

/// What [`Store::append_then`] runs once an append is durable: quick, non-blocking work
/// (queueing frames), as it may run on the store's own thread.
pub type OnDurable = Box<dyn FnOnce() + Send>;

/// Durable storage. Implementations must make [`Store::append`] durable against a process
/// crash before its future resolves: the server broadcasts an update only after that.
pub trait Store: Send + Sync + 'static {
    /// Creates a room.
    fn create_room(&self, room: RoomRecord) -> BoxFuture<'_, StoreResult<()>>;
    /// Looks a room up.
    fn get_room(&self, id: RoomId) -> BoxFuture<'_, StoreResult<Option<RoomRecord>>>;
    /// All rooms, newest first.
    fn list_rooms(&self) -> BoxFuture<'_, StoreResult<Vec<RoomRecord>>>;
    /// Deletes a room and all its data. Returns whether it existed.
    fn delete_room(&self, id: RoomId) -> BoxFuture<'_, StoreResult<bool>>;
    /// Loads a room's document state.
    fn load(&self, id: RoomId) -> BoxFuture<'_, StoreResult<RoomState>>;
    /// Appends accepted updates to a room's log, durably; returns the last sequence number.
    fn append(&self, id: RoomId, updates: Vec<Vec<u8>>) -> BoxFuture<'_, StoreResult<u64>>;
    /// Appends like [`Store::append`] and runs `on_durable` the moment the updates are
    /// durable, before the caller hears of it; never after a failed append. A store that
    /// commits on a thread of its own runs it there, so the work it carries (a room relaying
    /// the updates to its connections) does not wait for the appending task to be woken and
    /// scheduled again: one hand-off fewer on every keystroke's way through the server.
    fn append_then(&self, id: RoomId, updates: Vec<Vec<u8>>, on_durable: OnDurable) -> BoxFuture<'_, StoreResult<u64>> {
        Box::pin(async move {
            let seq = self.append(id, updates).await?;
            on_durable();
            Ok(seq)
        })
    }
    /// Replaces every update up to and including `upto_seq` by `snapshot` and appends `keep`
    /// after it, atomically; returns the last sequence number. `keep` carries what the
    /// snapshot cannot hold yet (updates waiting for a missing dependency), so they are
    /// retried at every load and integrate once their dependency arrives.
    fn compact(
        &self,
        id: RoomId,
        snapshot: Vec<u8>,
        upto_seq: u64,
        keep: Vec<Vec<u8>>,
    ) -> BoxFuture<'_, StoreResult<u64>>;
    /// Adds a finished run to the room's history.
    fn put_run(&self, id: RoomId, run: RunRecord) -> BoxFuture<'_, StoreResult<()>>;
    /// The room's runs, newest first, at most `limit`.
    fn list_runs(&self, id: RoomId, limit: usize) -> BoxFuture<'_, StoreResult<Vec<RunRecord>>>;
    /// The room's links, seats, approval setting and audit trail.
    fn load_access(&self, id: RoomId) -> BoxFuture<'_, StoreResult<AccessState>>;
    /// Applies changes to the room's access records, in order, durably and atomically.
    fn write_access(&self, id: RoomId, changes: Vec<AccessChange>) -> BoxFuture<'_, StoreResult<()>>;
    /// Creates the user of `issuer` and `subject`, or updates its name and email; returns
    /// the record with mesh's id of the user.
    fn put_user(&self, user: UserRecord) -> BoxFuture<'_, StoreResult<UserRecord>> {
        let _ = user;
        Box::pin(async { Err(StoreError::Database(NO_ACCOUNTS.into())) })
    }
    /// Keeps a session (dropping the user's expired ones).
    fn put_session(&self, session: UserSession) -> BoxFuture<'_, StoreResult<()>> {
        let _ = session;
        Box::pin(async { Err(StoreError::Database(NO_ACCOUNTS.into())) })
    }
    /// The session of a token digest and its user, if it exists and has not expired at
    /// `now_ms`.
    fn get_session(
        &self,
        digest: String,
        now_ms: u64,
    ) -> BoxFuture<'_, StoreResult<Option<(UserSession, UserRecord)>>> {
        let _ = (digest, now_ms);
        Box::pin(async { Ok(None) })
    }
    /// Ends a session. Returns whether it existed.
    fn delete_session(&self, digest: String) -> BoxFuture<'_, StoreResult<bool>> {
        let _ = digest;
        Box::pin(async { Ok(false) })
    }
    /// Leaves the files tidy for a stop (the server calls it last, after every room was
    /// compacted): for SQLite, the WAL is checkpointed and truncated. Later calls fail with
    /// [`StoreError::Closed`]. Stores with nothing to tidy keep the default.
    fn close(&self) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async { Ok(()) })
    }
}

pub use mesh_protocol::rest::RunRecord;
