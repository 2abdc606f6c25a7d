//! The embedded default store: one SQLite file, created on first start.
//!
//! One OS thread owns the connection and serves commands from a channel. Appends that arrive
//! together are written in one transaction (group commit), so many rooms typing at once cost
//! one disk sync, not one each. WAL mode with `synchronous=NORMAL` makes a committed
//! transaction survive a crash of the process (`kill -9`); `Durability::Full` also survives
//! power loss, at the price of an fsync per commit.

use std::path::Path;
use std::sync::mpsc;
use std::time::{SystemTime, UNIX_EPOCH};

use mesh_protocol::RoomId;
use rusqlite::{params, Connection, OptionalExtension};
use tokio::sync::oneshot;

use super::{BoxFuture, RoomRecord, RoomState, RunRecord, Store, StoreError, StoreResult};

/// The most commands the writer thread folds into one transaction; bounds the latency that
/// one large batch can add to the commands queued behind it.
const MAX_BATCH: usize = 512;

/// How often the WAL is checkpointed into the main database file. Often enough to keep the
/// WAL small under sustained typing, rarely enough to cost nothing when idle.
const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// How long SQLite waits on a lock held by another connection (e.g. an operator's `sqlite3`
/// shell) before failing.
const BUSY_TIMEOUT_MS: u64 = 5_000;

/// How hard SQLite works to keep committed data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// Survives a crash of the server process (WAL, `synchronous=NORMAL`).
    Process,
    /// Also survives power loss or an OS crash (`synchronous=FULL`).
    Full,
}

type Reply<T> = oneshot::Sender<StoreResult<T>>;

enum Command {
    CreateRoom(RoomRecord, Reply<()>),
    GetRoom(RoomId, Reply<Option<RoomRecord>>),
    ListRooms(Reply<Vec<RoomRecord>>),
    DeleteRoom(RoomId, Reply<bool>),
    Load(RoomId, Reply<RoomState>),
    Append(RoomId, Vec<Vec<u8>>, Reply<u64>),
    Compact(RoomId, Vec<u8>, u64, Reply<()>),
    Secret(Reply<Vec<u8>>),
    PutRun(RoomId, Box<RunRecord>, Reply<()>),
    ListRuns(RoomId, usize, Reply<Vec<RunRecord>>),
}

/// A [`Store`] backed by one SQLite file.
pub struct SqliteStore {
    tx: mpsc::Sender<Command>,
}

fn db_err(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and starts its writer thread.
    pub fn open(path: &Path, durability: Durability) -> StoreResult<Self> {
        let conn = Connection::open(path).map_err(db_err)?;
        init(&conn, durability).map_err(db_err)?;
        // Checkpoints copy the WAL into the database and sync it; done by the writer they
        // stall every room for the length of an fsync. A second connection does them
        // instead, passively, so the writer never waits.
        conn.pragma_update(None, "wal_autocheckpoint", 0).map_err(db_err)?;
        let checkpointer = Connection::open(path).map_err(db_err)?;
        checkpointer
            .busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))
            .map_err(db_err)?;
        std::thread::Builder::new()
            .name("mesh-sqlite-ckpt".into())
            .spawn(move || checkpoint_loop(checkpointer))
            .map_err(|e| StoreError::Database(format!("cannot start the checkpoint thread: {e}")))?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("mesh-sqlite".into())
            .spawn(move || writer_loop(conn, rx))
            .map_err(|e| StoreError::Database(format!("cannot start the store thread: {e}")))?;
        Ok(SqliteStore { tx })
    }

    fn call<T: Send + 'static>(&self, make: impl FnOnce(Reply<T>) -> Command) -> BoxFuture<'_, StoreResult<T>> {
        let (reply, rx) = oneshot::channel();
        let sent = self.tx.send(make(reply));
        Box::pin(async move {
            sent.map_err(|_| StoreError::Closed)?;
            rx.await.map_err(|_| StoreError::Closed)?
        })
    }

    /// The server's signing secret, created on first use and kept in the database so that
    /// tokens stay valid across restarts.
    pub fn secret(&self) -> BoxFuture<'_, StoreResult<Vec<u8>>> {
        self.call(Command::Secret)
    }
}

fn init(conn: &Connection, durability: Durability) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_millis(BUSY_TIMEOUT_MS))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let sync = match durability {
        Durability::Process => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS rooms (
             id TEXT PRIMARY KEY,
             name TEXT NOT NULL,
             created_at INTEGER NOT NULL
         );
         CREATE TABLE IF NOT EXISTS room_snapshots (
             room_id TEXT PRIMARY KEY REFERENCES rooms(id) ON DELETE CASCADE,
             data BLOB NOT NULL,
             upto_seq INTEGER NOT NULL
         );
         CREATE TABLE IF NOT EXISTS room_updates (
             room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
             seq INTEGER NOT NULL,
             data BLOB NOT NULL,
             PRIMARY KEY (room_id, seq)
         ) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS room_seq (
             room_id TEXT PRIMARY KEY REFERENCES rooms(id) ON DELETE CASCADE,
             last_seq INTEGER NOT NULL
         );
         CREATE TABLE IF NOT EXISTS room_runs (
             room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
             run_id TEXT NOT NULL,
             started_at INTEGER NOT NULL,
             data TEXT NOT NULL,
             PRIMARY KEY (room_id, run_id)
         );
         CREATE TABLE IF NOT EXISTS server_meta (
             key TEXT PRIMARY KEY,
             value BLOB NOT NULL
         );",
    )
}

/// Checkpoints the WAL every [`CHECKPOINT_INTERVAL`] until the database cannot be reached
/// (the process is exiting).
fn checkpoint_loop(conn: Connection) {
    loop {
        std::thread::sleep(CHECKPOINT_INTERVAL);
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
}

fn writer_loop(mut conn: Connection, rx: mpsc::Receiver<Command>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(cmd) => batch.push(cmd),
                Err(_) => break,
            }
        }
        run_batch(&mut conn, batch);
    }
}

/// Runs a batch: all appends in one transaction first (their callers wait on the disk), then
/// everything else in order.
fn run_batch(conn: &mut Connection, batch: Vec<Command>) {
    let (appends, others): (Vec<_>, Vec<_>) = batch.into_iter().partition(|c| matches!(c, Command::Append(..)));
    if !appends.is_empty() {
        let mut work: Vec<(RoomId, Vec<Vec<u8>>, Reply<u64>)> = appends
            .into_iter()
            .filter_map(|c| match c {
                Command::Append(id, updates, reply) => Some((id, updates, reply)),
                _ => None,
            })
            .collect();
        let result = conn.transaction().and_then(|tx| {
            let mut seqs = Vec::with_capacity(work.len());
            for (id, updates, _) in &work {
                seqs.push(append_in(&tx, *id, updates)?);
            }
            tx.commit()?;
            Ok(seqs)
        });
        match result {
            Ok(seqs) => {
                for ((_, _, reply), seq) in work.drain(..).zip(seqs) {
                    let _ = reply.send(Ok(seq));
                }
            }
            Err(e) => {
                // `rusqlite::Error` is not `Clone`; one failure answers every caller.
                let text = e.to_string();
                for (_, _, reply) in work.drain(..) {
                    let _ = reply.send(Err(StoreError::Database(text.clone())));
                }
            }
        }
    }
    for cmd in others {
        serve(conn, cmd);
    }
}

fn append_in(tx: &rusqlite::Transaction<'_>, id: RoomId, updates: &[Vec<u8>]) -> rusqlite::Result<u64> {
    let key = id.to_string();
    let last: u64 = tx
        .query_row("SELECT last_seq FROM room_seq WHERE room_id = ?1", [&key], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    let mut insert = tx.prepare_cached("INSERT INTO room_updates (room_id, seq, data) VALUES (?1, ?2, ?3)")?;
    let mut seq = last;
    for u in updates {
        seq += 1;
        insert.execute(params![key, seq, u])?;
    }
    tx.execute(
        "INSERT INTO room_seq (room_id, last_seq) VALUES (?1, ?2)
         ON CONFLICT(room_id) DO UPDATE SET last_seq = excluded.last_seq",
        params![key, seq],
    )?;
    Ok(seq)
}

fn serve(conn: &mut Connection, cmd: Command) {
    match cmd {
        Command::CreateRoom(room, reply) => {
            let r = conn
                .execute(
                    "INSERT INTO rooms (id, name, created_at) VALUES (?1, ?2, ?3)",
                    params![room.id.to_string(), room.name, room.created_at],
                )
                .map(|_| ());
            let _ = reply.send(r.map_err(db_err));
        }
        Command::GetRoom(id, reply) => {
            let r = conn
                .query_row(
                    "SELECT name, created_at FROM rooms WHERE id = ?1",
                    [id.to_string()],
                    |r| {
                        Ok(RoomRecord {
                            id,
                            name: r.get(0)?,
                            created_at: r.get(1)?,
                        })
                    },
                )
                .optional();
            let _ = reply.send(r.map_err(db_err));
        }
        Command::ListRooms(reply) => {
            let _ = reply.send(list_rooms(conn).map_err(db_err));
        }
        Command::DeleteRoom(id, reply) => {
            let r = conn
                .execute("DELETE FROM rooms WHERE id = ?1", [id.to_string()])
                .map(|n| n > 0);
            let _ = reply.send(r.map_err(db_err));
        }
        Command::Load(id, reply) => {
            let _ = reply.send(load(conn, id).map_err(db_err));
        }
        Command::Append(id, updates, reply) => {
            let r = conn.transaction().and_then(|tx| {
                let seq = append_in(&tx, id, &updates)?;
                tx.commit()?;
                Ok(seq)
            });
            let _ = reply.send(r.map_err(db_err));
        }
        Command::Compact(id, snapshot, upto, reply) => {
            let r = conn.transaction().and_then(|tx| {
                let key = id.to_string();
                tx.execute(
                    "INSERT INTO room_snapshots (room_id, data, upto_seq) VALUES (?1, ?2, ?3)
                     ON CONFLICT(room_id) DO UPDATE SET data = excluded.data, upto_seq = excluded.upto_seq",
                    params![key, snapshot, upto],
                )?;
                tx.execute(
                    "DELETE FROM room_updates WHERE room_id = ?1 AND seq <= ?2",
                    params![key, upto],
                )?;
                tx.commit()
            });
            let _ = reply.send(r.map_err(db_err));
        }
        Command::PutRun(id, run, reply) => {
            let r = serde_json::to_string(&run)
                .map_err(|e| StoreError::Database(e.to_string()))
                .and_then(|data| {
                    conn.execute(
                        "INSERT OR REPLACE INTO room_runs (room_id, run_id, started_at, data) VALUES (?1, ?2, ?3, ?4)",
                        params![id.to_string(), run.run_id, run.started_at, data],
                    )
                    .map(|_| ())
                    .map_err(db_err)
                });
            let _ = reply.send(r);
        }
        Command::ListRuns(id, limit, reply) => {
            let r = (|| {
                let mut stmt = conn.prepare_cached(
                    "SELECT data FROM room_runs WHERE room_id = ?1 ORDER BY started_at DESC, run_id LIMIT ?2",
                )?;
                let rows = stmt.query_map(params![id.to_string(), limit as i64], |r| r.get::<_, String>(0))?;
                let mut out = Vec::new();
                for row in rows {
                    if let Ok(run) = serde_json::from_str(&row?) {
                        out.push(run);
                    }
                }
                Ok(out)
            })();
            let _ = reply.send(r.map_err(db_err));
        }
        Command::Secret(reply) => {
            let _ = reply.send(secret(conn).map_err(db_err));
        }
    }
}

fn list_rooms(conn: &Connection) -> rusqlite::Result<Vec<RoomRecord>> {
    let mut stmt = conn.prepare_cached("SELECT id, name, created_at FROM rooms ORDER BY created_at DESC, id")?;
    let rows = stmt.query_map([], |r| {
        let id: String = r.get(0)?;
        Ok((id, r.get::<_, String>(1)?, r.get::<_, u64>(2)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (id, name, created_at) = row?;
        // Rows are only ever written with valid ids; skip anything an operator inserted by hand.
        if let Ok(id) = id.parse() {
            out.push(RoomRecord { id, name, created_at });
        }
    }
    Ok(out)
}

fn load(conn: &Connection, id: RoomId) -> rusqlite::Result<RoomState> {
    let key = id.to_string();
    let snapshot: Option<(Vec<u8>, u64)> = conn
        .query_row(
            "SELECT data, upto_seq FROM room_snapshots WHERE room_id = ?1",
            [&key],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let upto = snapshot.as_ref().map_or(0, |(_, s)| *s);
    let mut stmt = conn.prepare_cached("SELECT data FROM room_updates WHERE room_id = ?1 AND seq > ?2 ORDER BY seq")?;
    let updates = stmt
        .query_map(params![key, upto], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<Vec<u8>>>>()?;
    let last_seq: u64 = conn
        .query_row("SELECT last_seq FROM room_seq WHERE room_id = ?1", [&key], |r| r.get(0))
        .optional()?
        .unwrap_or(0);
    Ok(RoomState {
        snapshot: snapshot.map(|(d, _)| d),
        updates,
        last_seq,
    })
}

fn secret(conn: &Connection) -> rusqlite::Result<Vec<u8>> {
    let existing: Option<Vec<u8>> = conn
        .query_row("SELECT value FROM server_meta WHERE key = 'token_secret'", [], |r| {
            r.get(0)
        })
        .optional()?;
    if let Some(s) = existing {
        return Ok(s);
    }
    let mut s = vec![0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut s);
    conn.execute("INSERT INTO server_meta (key, value) VALUES ('token_secret', ?1)", [&s])?;
    Ok(s)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Store for SqliteStore {
    fn create_room(&self, room: RoomRecord) -> BoxFuture<'_, StoreResult<()>> {
        self.call(|r| Command::CreateRoom(room, r))
    }
    fn get_room(&self, id: RoomId) -> BoxFuture<'_, StoreResult<Option<RoomRecord>>> {
        self.call(|r| Command::GetRoom(id, r))
    }
    fn list_rooms(&self) -> BoxFuture<'_, StoreResult<Vec<RoomRecord>>> {
        self.call(Command::ListRooms)
    }
    fn delete_room(&self, id: RoomId) -> BoxFuture<'_, StoreResult<bool>> {
        self.call(|r| Command::DeleteRoom(id, r))
    }
    fn load(&self, id: RoomId) -> BoxFuture<'_, StoreResult<RoomState>> {
        self.call(|r| Command::Load(id, r))
    }
    fn append(&self, id: RoomId, updates: Vec<Vec<u8>>) -> BoxFuture<'_, StoreResult<u64>> {
        self.call(|r| Command::Append(id, updates, r))
    }
    fn compact(&self, id: RoomId, snapshot: Vec<u8>, upto_seq: u64) -> BoxFuture<'_, StoreResult<()>> {
        self.call(|r| Command::Compact(id, snapshot, upto_seq, r))
    }
    fn put_run(&self, id: RoomId, run: RunRecord) -> BoxFuture<'_, StoreResult<()>> {
        self.call(|r| Command::PutRun(id, Box::new(run), r))
    }
    fn list_runs(&self, id: RoomId, limit: usize) -> BoxFuture<'_, StoreResult<Vec<RunRecord>>> {
        self.call(|r| Command::ListRuns(id, limit, r))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn appends_survive_reopen_and_compaction_keeps_the_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mesh.db");
        let id = RoomId::random();
        {
            let store = SqliteStore::open(&path, Durability::Process).unwrap();
            store
                .create_room(RoomRecord {
                    id,
                    name: "r".into(),
                    created_at: 1,
                })
                .await
                .unwrap();
            assert_eq!(store.append(id, vec![vec![1], vec![2]]).await.unwrap(), 2);
            store.compact(id, vec![9], 1).await.unwrap();
            assert_eq!(store.append(id, vec![vec![3]]).await.unwrap(), 3);
        }
        let store = SqliteStore::open(&path, Durability::Process).unwrap();
        let state = store.load(id).await.unwrap();
        assert_eq!(
            state,
            RoomState {
                snapshot: Some(vec![9]),
                updates: vec![vec![2], vec![3]],
                last_seq: 3
            }
        );
        let secret = store.secret().await.unwrap();
        assert_eq!(secret, store.secret().await.unwrap());
        assert!(store.delete_room(id).await.unwrap());
        assert_eq!(store.load(id).await.unwrap(), RoomState::default());
    }
}
