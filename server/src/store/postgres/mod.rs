//! The Postgres store: what several servers share when they serve the same rooms.
//!
//! **Durability.** Every write is one transaction, committed before its future resolves
//! (`synchronous_commit` is forced on for mesh's connections, whatever the server's
//! default), so [`Store::append`] answers only once Postgres has the updates on disk, and
//! the trait's default [`Store::append_then`] runs `on_durable` right after that commit.
//!
//! **Several nodes, one room.** A room's sequence numbers come from its `room_seq` row,
//! incremented and read in the appending transaction (`UPDATE ... RETURNING`): the row lock
//! orders concurrent appends from any number of servers, so numbers are unique and each
//! append's updates are consecutive, with no gap and no reuse. Compaction rebuilds the
//! snapshot from the stored rows themselves (see [`compact`]), so a node never replaces
//! updates it has not integrated.
//!
//! **An unreachable database.** The pool is bounded ([`MAX_CONNECTIONS`]); connecting,
//! waiting for a connection and each statement are timed out, so a store call fails with an
//! error naming the database (never its password) instead of hanging. A room whose append
//! fails closes its connections ("storage failed; reconnect"): nothing unacknowledged was
//! relayed, clients keep their edits and resend them when they reconnect, and once Postgres
//! answers again the pool's next connection works, without a restart of the server.

mod access;
mod compact;
mod schema;
pub mod url;

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime};
use mesh_protocol::RoomId;

pub use self::url::PostgresUrl;
use super::{
    AccessChange, AccessState, BoxFuture, RoomRecord, RoomState, RunRecord, Store, StoreError, StoreResult, UserRecord,
    UserSession,
};

/// Connections one server keeps to Postgres at most. Appends of different rooms commit in
/// parallel up to this; more wait for a free connection. Sixteen covers a busy node on a
/// two-core database and stays far below Postgres's default `max_connections` (100) with
/// several nodes.
pub const MAX_CONNECTIONS: usize = 16;

/// How long opening a connection may take (TCP, TLS-less startup, authentication): long
/// enough for a database across a data centre, short enough that a dead one is reported
/// while the person who typed is still looking.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a store call waits for a free connection from the pool before it fails.
pub const POOL_WAIT_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest one statement may run; a statement past it is cancelled by Postgres. It
/// bounds how long an append can hold a room's sequence row, whatever goes wrong.
pub const STATEMENT_TIMEOUT: Duration = Duration::from_secs(30);

/// A [`Store`] in a Postgres database, shared by every server given the same URL.
pub struct PostgresStore {
    pool: Pool,
    url: PostgresUrl,
}

/// Says what failed, with the database's own message when it sent one.
fn describe_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            // The driver's top-level text ("error connecting to server") hides the cause.
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (bounded pool, timeouts), applies the migrations it
    /// lacks, and returns the store. Fails with an error that names the database and says
    /// what to check.
    pub async fn connect(url: &PostgresUrl) -> StoreResult<Self> {
        let mut config = url.config().clone();
        config.connect_timeout(CONNECT_TIMEOUT);
        config.application_name("mesh-server");
        // Durability must not depend on the database's defaults: a commit returns only once
        // it is on disk. The statement timeout bounds a stuck statement.
        config.options(format!(
            "-c synchronous_commit=on -c client_min_messages=warning -c statement_timeout={}",
            STATEMENT_TIMEOUT.as_millis()
        ));
        let manager = Manager::from_config(
            config,
            tokio_postgres::NoTls,
            ManagerConfig {
                // A connection is checked cheaply when taken from the pool (is its socket
                // still open?); one that Postgres closed, e.g. in a restart, is replaced.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(MAX_CONNECTIONS)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Database(format!("cannot set up the Postgres pool: {e}")))?;
        let store = PostgresStore { pool, url: url.clone() };
        let mut client = store.client().await?;
        let applied = schema::migrate(&mut client)
            .await
            .map_err(|e| StoreError::Database(format!("cannot migrate the Postgres store at {}: {e}", store.url)))?;
        if !applied.is_empty() {
            tracing::info!(url = %store.url, ?applied, "applied the Postgres store's migrations");
        }
        tracing::info!(url = %store.url, schema = schema::latest(), "using the Postgres store");
        Ok(store)
    }

    /// A connection from the pool, or an error that names the database.
    async fn client(&self) -> StoreResult<Object> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Closed => StoreError::Closed,
            PoolError::Backend(e) => StoreError::Database(format!(
                "cannot reach the Postgres store at {}: {}; check that it runs and accepts this server's connections",
                self.url,
                describe_error(&e)
            )),
            PoolError::Timeout(_) => StoreError::Database(format!(
                "the Postgres store at {} did not answer within {} s; check that it runs and is reachable",
                self.url,
                POOL_WAIT_TIMEOUT.as_secs()
            )),
            other => StoreError::Database(format!("the Postgres store at {}: {other}", self.url)),
        })
    }

    /// Maps a failed statement to a store error naming the database.
    fn err(&self, e: tokio_postgres::Error) -> StoreError {
        StoreError::Database(format!("the Postgres store at {}: {}", self.url, describe_error(&e)))
    }

    /// The servers' shared signing secret, created by the first server that asks and then
    /// read by all: tokens one node issues are valid on every node.
    pub async fn secret(&self) -> StoreResult<Vec<u8>> {
        let client = self.client().await?;
        let mut fresh = vec![0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut fresh);
        client
            .execute(
                "INSERT INTO server_meta (key, value) VALUES ('token_secret', $1) ON CONFLICT (key) DO NOTHING",
                &[&fresh],
            )
            .await
            .map_err(|e| self.err(e))?;
        let row = client
            .query_one("SELECT value FROM server_meta WHERE key = 'token_secret'", &[])
            .await
            .map_err(|e| self.err(e))?;
        Ok(row.get(0))
    }

    /// Numbers and appends a turn's updates in one statement (one round trip, its own
    /// transaction): the `UPDATE` takes the room's sequence row lock, which orders this
    /// append against every other node's, and the `INSERT` numbers the updates from what it
    /// returned. A room missing from the store updates no row, so nothing is inserted.
    async fn append_rows(&self, id: RoomId, updates: Vec<Vec<u8>>) -> StoreResult<u64> {
        let client = self.client().await?;
        let key = id.to_string();
        let n = updates.len() as i64;
        let append = client
            .prepare_cached(
                "WITH bump AS (
                     UPDATE room_seq SET last_seq = last_seq + $2 WHERE room_id = $1 RETURNING last_seq
                 ), added AS (
                     INSERT INTO room_updates (room_id, seq, data)
                     SELECT $1, bump.last_seq - $2 + t.i, t.d
                     FROM bump, unnest($3::bytea[]) WITH ORDINALITY AS t(d, i)
                 )
                 SELECT last_seq FROM bump",
            )
            .await
            .map_err(|e| self.err(e))?;
        let Some(row) = client
            .query_opt(&append, &[&key, &n, &updates])
            .await
            .map_err(|e| self.err(e))?
        else {
            return Err(StoreError::Database(format!(
                "room {id} is not in the store (deleted, or never created); create it again"
            )));
        };
        Ok(row.get::<_, i64>(0) as u64)
    }

    async fn load_state(&self, id: RoomId) -> StoreResult<RoomState> {
        let mut client = self.client().await?;
        let key = id.to_string();
        // One consistent view: the snapshot, the rows after it and the last number agree
        // even while another node appends or compacts.
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(|e| self.err(e))?;
        let snapshot = tx
            .query_opt("SELECT data, upto_seq FROM room_snapshots WHERE room_id = $1", &[&key])
            .await
            .map_err(|e| self.err(e))?
            .map(|r| (r.get::<_, Vec<u8>>(0), r.get::<_, i64>(1)));
        let upto = snapshot.as_ref().map_or(0, |(_, s)| *s);
        let updates = tx
            .query(
                "SELECT data FROM room_updates WHERE room_id = $1 AND seq > $2 ORDER BY seq",
                &[&key, &upto],
            )
            .await
            .map_err(|e| self.err(e))?
            .into_iter()
            .map(|r| r.get::<_, Vec<u8>>(0))
            .collect();
        let last_seq = tx
            .query_opt("SELECT last_seq FROM room_seq WHERE room_id = $1", &[&key])
            .await
            .map_err(|e| self.err(e))?
            .map_or(0, |r| r.get::<_, i64>(0));
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(RoomState {
            snapshot: snapshot.map(|(d, _)| d),
            updates,
            last_seq: last_seq.max(upto) as u64,
        })
    }

    async fn compact_rows(&self, id: RoomId, snapshot: Vec<u8>, upto_seq: u64, keep: Vec<Vec<u8>>) -> StoreResult<u64> {
        let mut client = self.client().await?;
        let key = id.to_string();
        let tx = client.transaction().await.map_err(|e| self.err(e))?;
        // Locks the room's numbering: no node appends while the snapshot is replaced, so the
        // rows read below are every row up to `upto`.
        let Some(row) = tx
            .query_opt("SELECT last_seq FROM room_seq WHERE room_id = $1 FOR UPDATE", &[&key])
            .await
            .map_err(|e| self.err(e))?
        else {
            return Err(StoreError::Database(format!(
                "room {id} is not in the store; nothing to compact"
            )));
        };
        let last: i64 = row.get(0);
        let upto = (upto_seq.min(i64::MAX as u64) as i64).min(last);
        let old = tx
            .query_opt("SELECT data FROM room_snapshots WHERE room_id = $1", &[&key])
            .await
            .map_err(|e| self.err(e))?
            .map(|r| r.get::<_, Vec<u8>>(0));
        let rows: Vec<Vec<u8>> = tx
            .query(
                "SELECT data FROM room_updates WHERE room_id = $1 AND seq <= $2 ORDER BY seq",
                &[&key, &upto],
            )
            .await
            .map_err(|e| self.err(e))?
            .into_iter()
            .map(|r| r.get(0))
            .collect();
        // Decoding and merging is CPU work: off the async threads.
        let built = tokio::task::spawn_blocking(move || compact::rebuild(old, rows, snapshot, keep))
            .await
            .map_err(|_| {
                StoreError::Database(format!("rebuilding the snapshot of room {id} failed; the log is kept"))
            })?;
        if built.bad > 0 {
            tracing::warn!(room = %id, bad = built.bad, "stored updates that do not decode were left out of the snapshot");
        }
        tx.execute(
            "INSERT INTO room_snapshots (room_id, data, upto_seq) VALUES ($1, $2, $3)
             ON CONFLICT (room_id) DO UPDATE SET data = excluded.data, upto_seq = excluded.upto_seq",
            &[&key, &built.state, &upto],
        )
        .await
        .map_err(|e| self.err(e))?;
        tx.execute(
            "DELETE FROM room_updates WHERE room_id = $1 AND seq <= $2",
            &[&key, &upto],
        )
        .await
        .map_err(|e| self.err(e))?;
        let n = built.pending.len() as i64;
        let new_last = last + n;
        if n > 0 {
            let seqs: Vec<i64> = (last + 1..=new_last).collect();
            tx.execute(
                "INSERT INTO room_updates (room_id, seq, data)
                 SELECT $1, s, d FROM unnest($2::bigint[], $3::bytea[]) AS t(s, d)",
                &[&key, &seqs, &built.pending],
            )
            .await
            .map_err(|e| self.err(e))?;
            tx.execute(
                "UPDATE room_seq SET last_seq = $2 WHERE room_id = $1",
                &[&key, &new_last],
            )
            .await
            .map_err(|e| self.err(e))?;
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(new_last as u64)
    }
}

/// A stored BIGINT as the unsigned value it was written from.
fn u64_of(v: i64) -> u64 {
    v.max(0) as u64
}

/// An unsigned value as a BIGINT (values past `i64::MAX` are clamped; none is that large).
fn i64_of(v: u64) -> i64 {
    v.min(i64::MAX as u64) as i64
}

impl Store for PostgresStore {
    fn create_room(&self, room: RoomRecord) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            let key = room.id.to_string();
            let tx = client.transaction().await.map_err(|e| self.err(e))?;
            tx.execute(
                "INSERT INTO rooms (id, name, created_at) VALUES ($1, $2, $3)",
                &[&key, &room.name, &i64_of(room.created_at)],
            )
            .await
            .map_err(|e| self.err(e))?;
            tx.execute("INSERT INTO room_seq (room_id, last_seq) VALUES ($1, 0)", &[&key])
                .await
                .map_err(|e| self.err(e))?;
            tx.commit().await.map_err(|e| self.err(e))
        })
    }

    fn get_room(&self, id: RoomId) -> BoxFuture<'_, StoreResult<Option<RoomRecord>>> {
        Box::pin(async move {
            let client = self.client().await?;
            // Every socket's upgrade asks: prepared once per pooled connection.
            let stmt = client
                .prepare_cached("SELECT name, created_at FROM rooms WHERE id = $1")
                .await
                .map_err(|e| self.err(e))?;
            let row = client
                .query_opt(&stmt, &[&id.to_string()])
                .await
                .map_err(|e| self.err(e))?;
            Ok(row.map(|r| RoomRecord {
                id,
                name: r.get(0),
                created_at: u64_of(r.get(1)),
            }))
        })
    }

    fn list_rooms(&self) -> BoxFuture<'_, StoreResult<Vec<RoomRecord>>> {
        Box::pin(async move {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT id, name, created_at FROM rooms ORDER BY created_at DESC, id",
                    &[],
                )
                .await
                .map_err(|e| self.err(e))?;
            // Rows are only ever written with valid ids; skip anything inserted by hand.
            Ok(rows
                .into_iter()
                .filter_map(|r| {
                    let id: String = r.get(0);
                    Some(RoomRecord {
                        id: id.parse().ok()?,
                        name: r.get(1),
                        created_at: u64_of(r.get(2)),
                    })
                })
                .collect())
        })
    }

    fn delete_room(&self, id: RoomId) -> BoxFuture<'_, StoreResult<bool>> {
        Box::pin(async move {
            let client = self.client().await?;
            let n = client
                .execute("DELETE FROM rooms WHERE id = $1", &[&id.to_string()])
                .await
                .map_err(|e| self.err(e))?;
            Ok(n > 0)
        })
    }

    fn load(&self, id: RoomId) -> BoxFuture<'_, StoreResult<RoomState>> {
        Box::pin(self.load_state(id))
    }

    fn append(&self, id: RoomId, updates: Vec<Vec<u8>>) -> BoxFuture<'_, StoreResult<u64>> {
        Box::pin(self.append_rows(id, updates))
    }

    fn compact(
        &self,
        id: RoomId,
        snapshot: Vec<u8>,
        upto_seq: u64,
        keep: Vec<Vec<u8>>,
    ) -> BoxFuture<'_, StoreResult<u64>> {
        Box::pin(self.compact_rows(id, snapshot, upto_seq, keep))
    }

    fn put_run(&self, id: RoomId, run: RunRecord) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move {
            let data = serde_json::to_string(&run).map_err(|e| StoreError::Database(e.to_string()))?;
            let client = self.client().await?;
            client
                .execute(
                    "INSERT INTO room_runs (room_id, run_id, started_at, data) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (room_id, run_id) DO UPDATE SET started_at = excluded.started_at, data = excluded.data",
                    &[&id.to_string(), &run.run_id, &i64_of(run.started_at), &data],
                )
                .await
                .map_err(|e| self.err(e))?;
            Ok(())
        })
    }

    fn list_runs(&self, id: RoomId, limit: usize) -> BoxFuture<'_, StoreResult<Vec<RunRecord>>> {
        Box::pin(async move {
            let client = self.client().await?;
            let rows = client
                .query(
                    "SELECT data FROM room_runs WHERE room_id = $1 ORDER BY started_at DESC, run_id LIMIT $2",
                    &[&id.to_string(), &(limit.min(i64::MAX as usize) as i64)],
                )
                .await
                .map_err(|e| self.err(e))?;
            // A run this code cannot read (written by a newer server) is skipped, as in SQLite.
            Ok(rows
                .into_iter()
                .filter_map(|r| serde_json::from_str(&r.get::<_, String>(0)).ok())
                .collect())
        })
    }

    fn load_access(&self, id: RoomId) -> BoxFuture<'_, StoreResult<AccessState>> {
        Box::pin(self.load_access_rows(id))
    }

    fn write_access(&self, id: RoomId, changes: Vec<AccessChange>) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(self.write_access_rows(id, changes))
    }

    fn put_user(&self, user: UserRecord) -> BoxFuture<'_, StoreResult<UserRecord>> {
        Box::pin(async move {
            let client = self.client().await?;
            let r = client
                .query_one(
                    "INSERT INTO users (id, issuer, subject, name, email, created_at) VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (issuer, subject) DO UPDATE SET name = excluded.name, email = excluded.email
                     RETURNING id, name, email, created_at",
                    &[
                        &user.id,
                        &user.issuer,
                        &user.subject,
                        &user.name,
                        &user.email,
                        &i64_of(user.created_at),
                    ],
                )
                .await
                .map_err(|e| self.err(e))?;
            Ok(UserRecord {
                id: r.get(0),
                issuer: user.issuer,
                subject: user.subject,
                name: r.get(1),
                email: r.get(2),
                created_at: u64_of(r.get(3)),
            })
        })
    }

    fn put_session(&self, session: UserSession) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(|e| self.err(e))?;
            tx.execute(
                "DELETE FROM user_sessions WHERE user_id = $1 AND expires_at <= $2",
                &[&session.user, &i64_of(session.created_at)],
            )
            .await
            .map_err(|e| self.err(e))?;
            tx.execute(
                "INSERT INTO user_sessions (digest, user_id, kind, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (digest) DO UPDATE SET user_id = excluded.user_id, kind = excluded.kind,
                   created_at = excluded.created_at, expires_at = excluded.expires_at",
                &[
                    &session.digest,
                    &session.user,
                    &session.kind,
                    &i64_of(session.created_at),
                    &i64_of(session.expires_at),
                ],
            )
            .await
            .map_err(|e| self.err(e))?;
            tx.commit().await.map_err(|e| self.err(e))
        })
    }

    fn get_session(
        &self,
        digest: String,
        now_ms: u64,
    ) -> BoxFuture<'_, StoreResult<Option<(UserSession, UserRecord)>>> {
        Box::pin(async move {
            let client = self.client().await?;
            let row = client
                .query_opt(
                    "SELECT s.user_id, s.kind, s.created_at, s.expires_at, u.issuer, u.subject, u.name, u.email, u.created_at
                     FROM user_sessions s JOIN users u ON u.id = s.user_id
                     WHERE s.digest = $1 AND s.expires_at > $2",
                    &[&digest, &i64_of(now_ms)],
                )
                .await
                .map_err(|e| self.err(e))?;
            Ok(row.map(|r| {
                let user: String = r.get(0);
                (
                    UserSession {
                        digest: digest.clone(),
                        user: user.clone(),
                        kind: r.get(1),
                        created_at: u64_of(r.get(2)),
                        expires_at: u64_of(r.get(3)),
                    },
                    UserRecord {
                        id: user,
                        issuer: r.get(4),
                        subject: r.get(5),
                        name: r.get(6),
                        email: r.get(7),
                        created_at: u64_of(r.get(8)),
                    },
                )
            }))
        })
    }

    fn delete_session(&self, digest: String) -> BoxFuture<'_, StoreResult<bool>> {
        Box::pin(async move {
            let client = self.client().await?;
            let n = client
                .execute("DELETE FROM user_sessions WHERE digest = $1", &[&digest])
                .await
                .map_err(|e| self.err(e))?;
            Ok(n > 0)
        })
    }

    fn close(&self) -> BoxFuture<'_, StoreResult<()>> {
        // Postgres keeps its own files tidy; closing the pool ends this server's connections
        // and makes later calls fail with `Closed`.
        self.pool.close();
        Box::pin(async { Ok(()) })
    }
}
