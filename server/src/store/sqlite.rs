//! The embedded default store: one SQLite file, created on first start.
//!
//! One OS thread owns the connection and serves commands from a channel. Appends that arrive
//! together are written in one transaction (group commit), so many rooms typing at once cost
//! one commit, not one each. WAL mode with `synchronous=NORMAL` makes a committed
//! transaction survive a crash of the process (`kill -9`); `Durability::Full` also survives
//! power loss, at the price of an fsync per commit.
//!
//! **What a keystroke costs on disk.** SQLite writes whole pages to the WAL, at least one per
//! commit, so the bytes written per update are about `page size × pages touched per commit ÷
//! updates per commit`. Three choices keep that small (the first design wrote ~9 KiB per
//! three-character update, see `docs/decisions/003-store-write-cost.md`):
//! - Appends go to one global log, `room_log`, keyed by a global sequence: every commit
//!   touches its rightmost page only, whichever rooms it carries. (A table clustered by room
//!   touches one page per room per commit.) Every [`FOLD_ROWS`] rows the log is folded into
//!   `room_updates`, clustered by room, in one transaction, so a room's load reads a bounded
//!   hot log plus its own range, and compacted rows are dropped on the way.
//! - Pages are [`PAGE_SIZE`] bytes (older databases are converted once at open).
//! - Under load, commits are at most one per commit interval ([`DEFAULT_COMMIT_INTERVAL`],
//!   `--commit-interval-ms`): appends arriving in the meantime share the commit (and its
//!   page), and every update is still stored before anyone sees it. An idle store commits at
//!   once.
//!
//! **The WAL stays bounded.** A second connection checkpoints it passively every
//! [`CHECKPOINT_INTERVAL`] (never stalling the writer); when it has grown past
//! [`WAL_TRUNCATE_BYTES`] anyway (continuous writing can starve passive checkpoints of the
//! moment when the WAL could restart) it runs a TRUNCATE checkpoint, which waits for the
//! writer. `journal_size_limit` trims the file whenever the WAL restarts, and [`Store::close`]
//! (graceful shutdown) and [`SqliteStore::open`] truncate it completely.

use std::cell::Cell;
use std::collections::HashMap;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mesh_protocol::RoomId;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::oneshot;

use super::{
    AccessChange, AccessState, BoxFuture, LinkRecord, OnDurable, RoomRecord, RoomState, RunRecord, SeatRecord, Store,
    StoreError, StoreResult, UserRecord, UserSession, MAX_AUDIT_ENTRIES,
};

/// The most commands the writer thread folds into one transaction; bounds the latency that
/// one large batch can add to the commands queued behind it.
const MAX_BATCH: usize = 512;

/// Database page size of new databases (older ones are converted at open). Every commit
/// writes at least one page to the WAL, so the page is the floor of a keystroke's cost;
/// 1 KiB still holds a dozen log rows, and snapshots spill into overflow pages either way.
pub const PAGE_SIZE: u32 = 1024;

/// Under load, at most one commit per this interval: appends that arrive meanwhile share it,
/// so one WAL page and one round of wake-ups carry several keystrokes. Short next to what a
/// person notices in someone else's typing; an idle store commits at once.
pub const DEFAULT_COMMIT_INTERVAL: Duration = Duration::from_millis(10);

/// Rows of the global log after which it is folded into the per-room table. A room's load
/// scans at most this many hot rows (about 2 MiB at typing load, a few milliseconds from
/// the page cache); a fold writes each busy room's pages once per this many updates, and
/// the rows of rooms compacted meanwhile not at all. Folding every 2,048 rows instead
/// doubled the bytes the process wrote per update.
pub const FOLD_ROWS: u64 = 32_768;

/// How often the WAL is checkpointed (passively) into the main database file. Often enough
/// to keep the WAL small under sustained typing, rarely enough to cost nothing when idle.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// A WAL larger than this is checkpointed with TRUNCATE, which waits for the writer (a stall
/// of a few milliseconds: the passive checkpoint just before it copied nearly everything);
/// below it, passive checkpoints never stall anyone. At 1,000 updates/s the WAL reaches it
/// about every 10 s.
pub const WAL_TRUNCATE_BYTES: u64 = 4 * 1024 * 1024;

/// `journal_size_limit`: the size the WAL file is cut back to when it restarts, so a burst
/// does not leave a large file behind.
const JOURNAL_SIZE_LIMIT: u64 = WAL_TRUNCATE_BYTES;

/// Bytes of the header SQLite puts before each page in the WAL.
const WAL_FRAME_HEADER: u64 = 24;

/// The schema this code writes (`PRAGMA user_version`). 1: per-room log only; 2: the global
/// hot log `room_log` beside it; 3: links, seats and the audit trail (`room_links`,
/// `room_seats`, `room_audit`) and `rooms.approval` (decision 011); 4: accounts (`users`,
/// `user_sessions`, `rooms.owner`, `room_links.for_user`, `room_seats.user_id`: decision 012).
const SCHEMA_VERSION: i64 = 4;

/// How long SQLite waits on a lock held by another connection (e.g. an operator's `sqlite3`
/// shell, or the checkpointer) before failing.
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

/// One append of a batch: the room, its updates, what to run once durable, the answer.
type AppendWork = (RoomId, Vec<Vec<u8>>, Option<OnDurable>, Reply<u64>);

enum Command {
    CreateRoom(RoomRecord, Reply<()>),
    GetRoom(RoomId, Reply<Option<RoomRecord>>),
    ListRooms(Reply<Vec<RoomRecord>>),
    DeleteRoom(RoomId, Reply<bool>),
    Load(RoomId, Reply<RoomState>),
    Append(RoomId, Vec<Vec<u8>>, Option<OnDurable>, Reply<u64>),
    Compact(RoomId, Vec<u8>, u64, Vec<Vec<u8>>, Reply<u64>),
    Secret(Reply<Vec<u8>>),
    PutRun(RoomId, Box<RunRecord>, Reply<()>),
    ListRuns(RoomId, usize, Reply<Vec<RunRecord>>),
    LoadAccess(RoomId, Reply<AccessState>),
    WriteAccess(RoomId, Vec<AccessChange>, Reply<()>),
    PutUser(UserRecord, Reply<UserRecord>),
    PutSession(UserSession, Reply<()>),
    GetSession(String, u64, Reply<Option<(UserSession, UserRecord)>>),
    DeleteSession(String, Reply<bool>),
    Close(Reply<()>),
}

/// A [`Store`] backed by one SQLite file.
pub struct SqliteStore {
    tx: mpsc::Sender<Command>,
}

fn db_err(e: rusqlite::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and starts its writer thread. The
    /// file and its WAL are made private (0600), a leftover hot log is folded and the WAL
    /// truncated, so a start always begins from a small WAL.
    pub fn open(path: &Path, durability: Durability) -> StoreResult<Self> {
        Self::open_with(path, durability, DEFAULT_COMMIT_INTERVAL)
    }

    /// Opens the database at `path`, committing at most once per `commit_interval` under load.
    pub fn open_with(path: &Path, durability: Durability, commit_interval: Duration) -> StoreResult<Self> {
        super::private::ensure_db_files(path)
            .map_err(|e| StoreError::Database(format!("cannot make {} private: {e}", path.display())))?;
        let conn = Connection::open(path).map_err(db_err)?;
        let page_size = init(&conn, durability).map_err(db_err)?;
        super::private::tighten_companions(path)
            .map_err(|e| StoreError::Database(format!("cannot make the files of {} private: {e}", path.display())))?;
        let mut writer = Writer::new(conn, page_size, commit_interval).map_err(db_err)?;
        writer.fold().map_err(db_err)?;
        checkpoint(&writer.conn, Checkpoint::Truncate).map_err(db_err)?;
        let checkpointer = Connection::open(path).map_err(db_err)?;
        checkpointer
            .busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))
            .map_err(db_err)?;
        checkpointer
            .pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT as i64)
            .map_err(db_err)?;
        // The checkpointer stops when this sender is dropped (the writer thread ends).
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("mesh-sqlite-ckpt".into())
            .spawn(move || checkpoint_loop(checkpointer, page_size, stop_rx))
            .map_err(|e| StoreError::Database(format!("cannot start the checkpoint thread: {e}")))?;
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("mesh-sqlite".into())
            .spawn(move || {
                WAL_PAGE_BYTES.with(|b| b.set(u64::from(page_size) + WAL_FRAME_HEADER));
                writer.run(rx);
                drop(stop_tx);
            })
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

/// Sets the connection up and creates or upgrades the schema; returns the page size.
fn init(conn: &Connection, durability: Durability) -> rusqlite::Result<u32> {
    conn.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))?;
    let page_size = set_page_size(conn)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    let sync = match durability {
        Durability::Process => "NORMAL",
        Durability::Full => "FULL",
    };
    conn.pragma_update(None, "synchronous", sync)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT as i64)?;
    // Checkpoints copy the WAL into the database and sync it; done by the writer they
    // stall every room for the length of an fsync. A second connection does them instead.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
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
         -- The hot log: every append lands at its end (see the module doc). No index and no
         -- foreign key, so an append writes this table's last page and nothing else; rows
         -- of deleted rooms are deleted with the room and skipped by the fold.
         CREATE TABLE IF NOT EXISTS room_log (
             seq INTEGER PRIMARY KEY,
             room_id TEXT NOT NULL,
             room_seq INTEGER NOT NULL,
             data BLOB NOT NULL
         );
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
         );
         CREATE TABLE IF NOT EXISTS room_links (
             room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
             id TEXT NOT NULL,
             role TEXT NOT NULL,
             created_at INTEGER NOT NULL,
             expires_at INTEGER NOT NULL,
             max_uses INTEGER,
             uses INTEGER NOT NULL,
             revoked_at INTEGER,
             created_by TEXT NOT NULL,
             PRIMARY KEY (room_id, id)
         ) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS room_seats (
             room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
             id TEXT NOT NULL,
             name TEXT NOT NULL,
             role TEXT NOT NULL,
             link TEXT NOT NULL,
             created_at INTEGER NOT NULL,
             kicked INTEGER NOT NULL,
             PRIMARY KEY (room_id, id)
         ) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS room_audit (
             room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
             seq INTEGER NOT NULL,
             ts INTEGER NOT NULL,
             kind TEXT NOT NULL,
             actor TEXT NOT NULL,
             subject TEXT NOT NULL,
             detail TEXT NOT NULL,
             PRIMARY KEY (room_id, seq)
         ) WITHOUT ROWID;
         CREATE TABLE IF NOT EXISTS users (
             id TEXT PRIMARY KEY,
             issuer TEXT NOT NULL,
             subject TEXT NOT NULL,
             name TEXT NOT NULL,
             email TEXT,
             created_at INTEGER NOT NULL,
             UNIQUE (issuer, subject)
         );
         -- A session's token is never stored, only its SHA-256.
         CREATE TABLE IF NOT EXISTS user_sessions (
             digest TEXT PRIMARY KEY,
             user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
             kind TEXT NOT NULL,
             created_at INTEGER NOT NULL,
             expires_at INTEGER NOT NULL
         ) WITHOUT ROWID;
         CREATE INDEX IF NOT EXISTS user_sessions_by_user ON user_sessions (user_id);",
    )?;
    // Version 3 added the room's approval setting to `rooms`. A database from before has
    // the table without the column (`CREATE TABLE IF NOT EXISTS` left it as it was).
    let has_approval: bool = conn.query_row(
        "SELECT count(*) FROM pragma_table_info('rooms') WHERE name = 'approval'",
        [],
        |r| r.get::<_, i64>(0).map(|n| n > 0),
    )?;
    if !has_approval {
        conn.execute_batch("ALTER TABLE rooms ADD COLUMN approval INTEGER NOT NULL DEFAULT 0")?;
    }
    // Version 4 added accounts: who owns a room, whom a link is for, who holds a seat. Older
    // rows have none of them (NULL), which is what they mean.
    for (table, column) in [
        ("rooms", "owner"),
        ("room_links", "for_user"),
        ("room_seats", "user_id"),
    ] {
        let has: bool = conn.query_row(
            "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2",
            [table, column],
            |r| r.get::<_, i64>(0).map(|n| n > 0),
        )?;
        if !has {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} TEXT"))?;
        }
    }
    conn.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    Ok(page_size)
}

/// Gives a new database [`PAGE_SIZE`] pages, and converts an older one with larger pages
/// (a `VACUUM` outside WAL mode, once). Returns the page size in effect.
fn set_page_size(conn: &Connection) -> rusqlite::Result<u32> {
    let current: u32 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
    if current == PAGE_SIZE {
        return Ok(current);
    }
    let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
    if tables == 0 {
        // A new database: the page size applies when the first table is written.
        conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    } else {
        let started = Instant::now();
        conn.pragma_update(None, "journal_mode", "DELETE")?;
        conn.pragma_update(None, "page_size", PAGE_SIZE)?;
        conn.execute_batch("VACUUM")?;
        tracing::info!(
            from = current,
            to = PAGE_SIZE,
            ms = started.elapsed().as_millis() as u64,
            "converted the database to smaller pages (once); small updates now cost less to write"
        );
    }
    conn.pragma_query_value(None, "page_size", |r| r.get(0))
}

#[derive(Clone, Copy, Debug)]
enum Checkpoint {
    /// Copy what it can without waiting for anyone.
    Passive,
    /// Wait for the writer, copy everything, and truncate the WAL to zero bytes.
    Truncate,
}

/// Runs a checkpoint; returns the frames in the WAL before it (`log` of the pragma).
fn checkpoint(conn: &Connection, mode: Checkpoint) -> rusqlite::Result<u64> {
    let sql = match mode {
        Checkpoint::Passive => "PRAGMA wal_checkpoint(PASSIVE)",
        Checkpoint::Truncate => "PRAGMA wal_checkpoint(TRUNCATE)",
    };
    let (busy, frames): (i64, i64) = conn.query_row(sql, [], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let label = match mode {
        Checkpoint::Passive => "passive",
        Checkpoint::Truncate => "truncate",
    };
    metrics::counter!("mesh_store_checkpoints_total", "mode" => label).increment(1);
    if busy != 0 {
        tracing::debug!(?mode, "WAL checkpoint could not finish (busy)");
    }
    Ok(frames.max(0) as u64)
}

/// Checkpoints the WAL every [`CHECKPOINT_INTERVAL`] until `stop` is dropped: passively,
/// and with TRUNCATE when the WAL holds more than [`WAL_TRUNCATE_BYTES`].
fn checkpoint_loop(conn: Connection, page_size: u32, stop: mpsc::Receiver<()>) {
    let frame = u64::from(page_size) + WAL_FRAME_HEADER;
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(CHECKPOINT_INTERVAL) {
        let result = checkpoint(&conn, Checkpoint::Passive).and_then(|frames| {
            let bytes = frames * frame;
            metrics::gauge!("mesh_store_wal_bytes").set(bytes as f64);
            if bytes > WAL_TRUNCATE_BYTES {
                tracing::info!(wal_bytes = bytes, "WAL over its bound; truncating it");
                checkpoint(&conn, Checkpoint::Truncate)?;
                metrics::gauge!("mesh_store_wal_bytes").set(0.0);
            }
            Ok(())
        });
        if let Err(e) = result {
            tracing::warn!(error = %e, "WAL checkpoint failed");
        }
    }
}

thread_local! {
    /// Bytes of one WAL frame of the writer's database (set on the writer thread).
    static WAL_PAGE_BYTES: Cell<u64> = const { Cell::new(0) };
    /// Frames in the WAL after the writer's previous commit.
    static WAL_FRAMES: Cell<i32> = const { Cell::new(0) };
}

/// Called by SQLite on the writer thread after each commit with the frames now in the WAL:
/// counts the bytes the commit wrote (`mesh_store_wal_bytes_written_total`).
fn count_wal_frames(_wal: &rusqlite::hooks::Wal, frames: std::os::raw::c_int) -> rusqlite::Result<()> {
    let before = WAL_FRAMES.with(|f| f.replace(frames));
    // Fewer frames than before: the WAL restarted from its beginning during this commit.
    let new = if frames >= before { frames - before } else { frames };
    let bytes = new.max(0) as u64 * WAL_PAGE_BYTES.with(Cell::get);
    metrics::counter!("mesh_store_wal_bytes_written_total").increment(bytes);
    Ok(())
}

/// The writer thread's state: the connection, each room's last sequence number once known,
/// and the hot log's length.
struct Writer {
    conn: Connection,
    last_seq: HashMap<RoomId, u64>,
    log_rows: u64,
    page_size: u32,
    /// Under load, at most one commit per this interval.
    commit_interval: Duration,
}

impl Writer {
    fn new(conn: Connection, page_size: u32, commit_interval: Duration) -> rusqlite::Result<Writer> {
        conn.wal_hook(Some(count_wal_frames));
        let log_rows: u64 = conn.query_row("SELECT count(*) FROM room_log", [], |r| r.get(0))?;
        Ok(Writer {
            conn,
            last_seq: HashMap::new(),
            log_rows,
            page_size,
            commit_interval,
        })
    }

    fn run(mut self, rx: mpsc::Receiver<Command>) {
        // Long enough ago that the first commit does not wait.
        let mut last_commit: Option<Instant> = None;
        while let Ok(first) = rx.recv() {
            // Under load (the previous commit was recent), an append waits for the commit
            // interval to end and takes along what arrived meanwhile, so the appends share
            // one commit. The thread sleeps rather than waiting on the channel: a sender
            // then wakes no one, where waiting on the channel woke this thread once per
            // append only to put it back to sleep (a fifth of the server's CPU at typing
            // load went to such wake-ups). Anything else runs at once.
            if matches!(first, Command::Append(..)) {
                let wait = last_commit.map_or(Duration::ZERO, |t| {
                    (t + self.commit_interval).saturating_duration_since(Instant::now())
                });
                if !wait.is_zero() {
                    std::thread::sleep(wait);
                }
            }
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(cmd) => batch.push(cmd),
                    Err(_) => break,
                }
            }
            let appended = batch.iter().any(|c| matches!(c, Command::Append(..)));
            if self.run_batch(batch) {
                return;
            }
            if appended {
                last_commit = Some(Instant::now());
            }
            if self.log_rows >= FOLD_ROWS {
                if let Err(e) = self.fold() {
                    tracing::error!(error = %e, "cannot fold the store's log; it keeps growing until this works");
                }
            }
        }
    }

    /// Runs a batch: all appends in one transaction first (their callers wait on the disk),
    /// then everything else in order. Returns true when the store was closed.
    fn run_batch(&mut self, batch: Vec<Command>) -> bool {
        let (appends, others): (Vec<_>, Vec<_>) = batch.into_iter().partition(|c| matches!(c, Command::Append(..)));
        if !appends.is_empty() {
            let mut work: Vec<AppendWork> = appends
                .into_iter()
                .filter_map(|c| match c {
                    Command::Append(id, updates, then, reply) => Some((id, updates, then, reply)),
                    _ => None,
                })
                .collect();
            let before = self.last_seq.clone();
            let rows = self.log_rows;
            let result = (|| {
                // Every write transaction of this thread takes the write lock at BEGIN
                // (IMMEDIATE): a deferred one that starts while the checkpointer truncates
                // the WAL fails at once with "database is locked" (its snapshot is gone, and
                // SQLite does not wait for that), which closed rooms under a burst of joins.
                let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let mut seqs = Vec::with_capacity(work.len());
                for (id, updates, _, _) in &work {
                    seqs.push(append_in(&tx, &mut self.last_seq, &mut self.log_rows, *id, updates)?);
                }
                tx.commit()?;
                Ok::<_, rusqlite::Error>(seqs)
            })();
            match result {
                Ok(seqs) => {
                    for ((_, _, then, reply), seq) in work.drain(..).zip(seqs) {
                        if let Some(then) = then {
                            // Its panic must not end the store (every room's writes).
                            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(then)).is_err() {
                                tracing::error!("the work after an append panicked");
                            }
                        }
                        let _ = reply.send(Ok(seq));
                    }
                }
                Err(e) => {
                    // Nothing was written: forget the sequence numbers handed out.
                    self.last_seq = before;
                    self.log_rows = rows;
                    // `rusqlite::Error` is not `Clone`; one failure answers every caller.
                    let text = e.to_string();
                    for (_, _, _, reply) in work.drain(..) {
                        let _ = reply.send(Err(StoreError::Database(text.clone())));
                    }
                }
            }
        }
        for cmd in others {
            if let Command::Close(reply) = cmd {
                let _ = reply.send(self.close());
                return true;
            }
            self.serve(cmd);
        }
        false
    }

    /// Moves the hot log into the per-room table, dropping rows a snapshot already holds and
    /// rows of deleted rooms, in one transaction.
    fn fold(&mut self) -> rusqlite::Result<()> {
        if self.log_rows == 0 {
            return Ok(());
        }
        let started = Instant::now();
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let upto: Option<i64> = tx.query_row("SELECT max(seq) FROM room_log", [], |r| r.get(0))?;
        let Some(upto) = upto else {
            self.log_rows = 0;
            return Ok(());
        };
        let moved = tx.execute(
            "INSERT OR IGNORE INTO room_updates (room_id, seq, data)
             SELECT l.room_id, l.room_seq, l.data FROM room_log l
             JOIN rooms r ON r.id = l.room_id
             LEFT JOIN room_snapshots s ON s.room_id = l.room_id
             WHERE l.seq <= ?1 AND l.room_seq > coalesce(s.upto_seq, 0)
             ORDER BY l.room_id, l.room_seq",
            [upto],
        )?;
        tx.execute(
            "INSERT INTO room_seq (room_id, last_seq)
             SELECT l.room_id, max(l.room_seq) FROM room_log l JOIN rooms r ON r.id = l.room_id
             WHERE l.seq <= ?1 GROUP BY l.room_id
             ON CONFLICT(room_id) DO UPDATE SET last_seq = max(last_seq, excluded.last_seq)",
            [upto],
        )?;
        let removed = tx.execute("DELETE FROM room_log WHERE seq <= ?1", [upto])?;
        tx.commit()?;
        self.log_rows = self.log_rows.saturating_sub(removed as u64);
        metrics::counter!("mesh_store_folds_total").increment(1);
        tracing::debug!(
            removed,
            moved,
            ms = started.elapsed().as_millis() as u64,
            "folded the store's log"
        );
        Ok(())
    }

    /// Folds the log and truncates the WAL, for a stop.
    fn close(&mut self) -> StoreResult<()> {
        self.fold().map_err(db_err)?;
        let frames = checkpoint(&self.conn, Checkpoint::Truncate).map_err(db_err)?;
        tracing::info!(
            wal_frames = frames,
            page_size = self.page_size,
            "store closed: WAL checkpointed and truncated"
        );
        Ok(())
    }
}

/// The last sequence number of a room, from whatever holds it (the hot log, the per-room
/// table, the folded counter, the snapshot).
fn stored_last_seq(conn: &Connection, key: &str) -> rusqlite::Result<u64> {
    conn.query_row(
        "SELECT max(coalesce((SELECT max(room_seq) FROM room_log WHERE room_id = ?1), 0),
                    coalesce((SELECT max(seq) FROM room_updates WHERE room_id = ?1), 0),
                    coalesce((SELECT last_seq FROM room_seq WHERE room_id = ?1), 0),
                    coalesce((SELECT upto_seq FROM room_snapshots WHERE room_id = ?1), 0))",
        [key],
        |r| r.get(0),
    )
}

fn append_in(
    tx: &rusqlite::Transaction<'_>,
    last_seq: &mut HashMap<RoomId, u64>,
    log_rows: &mut u64,
    id: RoomId,
    updates: &[Vec<u8>],
) -> rusqlite::Result<u64> {
    let key = id.to_string();
    let mut seq = match last_seq.get(&id) {
        Some(s) => *s,
        None => stored_last_seq(tx, &key)?,
    };
    let mut insert = tx.prepare_cached("INSERT INTO room_log (room_id, room_seq, data) VALUES (?1, ?2, ?3)")?;
    for u in updates {
        seq += 1;
        insert.execute(params![key, seq, u])?;
    }
    *log_rows += updates.len() as u64;
    last_seq.insert(id, seq);
    Ok(seq)
}

impl Writer {
    fn serve(&mut self, cmd: Command) {
        let conn = &mut self.conn;
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
                let key = id.to_string();
                let r = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .and_then(|tx| {
                        let n = tx.execute("DELETE FROM rooms WHERE id = ?1", [&key])?;
                        self.log_rows = self
                            .log_rows
                            .saturating_sub(tx.execute("DELETE FROM room_log WHERE room_id = ?1", [&key])? as u64);
                        tx.commit()?;
                        Ok(n > 0)
                    });
                self.last_seq.remove(&id);
                let _ = reply.send(r.map_err(db_err));
            }
            Command::Load(id, reply) => {
                let _ = reply.send(load(conn, id).map_err(db_err));
            }
            Command::Append(id, updates, then, reply) => {
                // Appends are batched by `run_batch`; one arriving here is served the same way.
                self.run_batch(vec![Command::Append(id, updates, then, reply)]);
            }
            Command::Close(reply) => {
                let _ = reply.send(self.close());
            }
            Command::Compact(id, snapshot, upto, keep, reply) => {
                let before = (self.last_seq.clone(), self.log_rows);
                let r = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .and_then(|tx| {
                        let key = id.to_string();
                        tx.execute(
                            "INSERT INTO room_snapshots (room_id, data, upto_seq) VALUES (?1, ?2, ?3)
                     ON CONFLICT(room_id) DO UPDATE SET data = excluded.data, upto_seq = excluded.upto_seq",
                            params![key, snapshot, upto],
                        )?;
                        // Rows of the hot log up to `upto` stay until the next fold, which drops
                        // them; loads skip them meanwhile.
                        tx.execute(
                            "DELETE FROM room_updates WHERE room_id = ?1 AND seq <= ?2",
                            params![key, upto],
                        )?;
                        let seq = append_in(&tx, &mut self.last_seq, &mut self.log_rows, id, &keep)?;
                        tx.commit()?;
                        Ok(seq)
                    });
                if r.is_err() {
                    (self.last_seq, self.log_rows) = before;
                }
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
            Command::LoadAccess(id, reply) => {
                let _ = reply.send(load_access(conn, id).map_err(db_err));
            }
            Command::PutUser(user, reply) => {
                let _ = reply.send(put_user(conn, user).map_err(db_err));
            }
            Command::PutSession(session, reply) => {
                let r = conn
                    .execute(
                        "DELETE FROM user_sessions WHERE user_id = ?1 AND expires_at <= ?2",
                        params![session.user, session.created_at],
                    )
                    .and_then(|_| {
                        conn.execute(
                            "INSERT OR REPLACE INTO user_sessions (digest, user_id, kind, created_at, expires_at)
                             VALUES (?1, ?2, ?3, ?4, ?5)",
                            params![
                                session.digest,
                                session.user,
                                session.kind,
                                session.created_at,
                                session.expires_at
                            ],
                        )
                    })
                    .map(|_| ());
                let _ = reply.send(r.map_err(db_err));
            }
            Command::GetSession(digest, now, reply) => {
                let _ = reply.send(get_session(conn, &digest, now).map_err(db_err));
            }
            Command::DeleteSession(digest, reply) => {
                let r = conn
                    .execute("DELETE FROM user_sessions WHERE digest = ?1", [digest])
                    .map(|n| n > 0);
                let _ = reply.send(r.map_err(db_err));
            }
            Command::WriteAccess(id, changes, reply) => {
                let r = conn
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .and_then(|tx| {
                        write_access(&tx, id, changes)?;
                        tx.commit()
                    });
                let _ = reply.send(r.map_err(db_err));
            }
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
    let mut updates = stmt
        .query_map(params![key, upto], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<Vec<u8>>>>()?;
    // The hot log has no index by room: a scan of at most about `FOLD_ROWS` rows. Its rows
    // are all newer than the folded ones.
    let mut stmt =
        conn.prepare_cached("SELECT data FROM room_log WHERE room_id = ?1 AND room_seq > ?2 ORDER BY room_seq")?;
    for row in stmt.query_map(params![key, upto], |r| r.get(0))? {
        updates.push(row?);
    }
    let last_seq = stored_last_seq(conn, &key)?;
    Ok(RoomState {
        snapshot: snapshot.map(|(d, _)| d),
        updates,
        last_seq,
    })
}

/// An enum's documented string (its serde name), for a TEXT column.
fn enum_text<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => unreachable!("enums stored as text serialise to strings, not {other:?}"),
    }
}

/// The enum a TEXT column names; a value this code does not know fails the read.
fn text_enum<T: serde::de::DeserializeOwned>(idx: usize, text: String) -> rusqlite::Result<T> {
    serde_json::from_value(serde_json::Value::String(text))
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e)))
}

fn load_access(conn: &Connection, id: RoomId) -> rusqlite::Result<AccessState> {
    let key = id.to_string();
    let (approval, owner): (bool, Option<String>) = conn
        .query_row("SELECT approval, owner FROM rooms WHERE id = ?1", [&key], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?
        .unwrap_or((false, None));
    let mut stmt = conn.prepare_cached(
        "SELECT id, role, created_at, expires_at, max_uses, uses, revoked_at, created_by, for_user
         FROM room_links WHERE room_id = ?1",
    )?;
    let links = stmt
        .query_map([&key], |r| {
            Ok(LinkRecord {
                id: r.get(0)?,
                role: text_enum(1, r.get(1)?)?,
                created_at: r.get(2)?,
                expires_at: r.get(3)?,
                max_uses: r.get(4)?,
                uses: r.get(5)?,
                revoked_at: r.get(6)?,
                created_by: r.get(7)?,
                for_user: r.get(8)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut stmt = conn.prepare_cached(
        "SELECT id, name, role, link, created_at, kicked, user_id FROM room_seats WHERE room_id = ?1",
    )?;
    let seats = stmt
        .query_map([&key], |r| {
            Ok(SeatRecord {
                id: r.get(0)?,
                name: r.get(1)?,
                role: text_enum(2, r.get(2)?)?,
                link: r.get(3)?,
                created_at: r.get(4)?,
                kicked: r.get(5)?,
                user: r.get(6)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut stmt =
        conn.prepare_cached("SELECT ts, kind, actor, subject, detail FROM room_audit WHERE room_id = ?1 ORDER BY seq")?;
    let audit = stmt
        .query_map([&key], |r| {
            Ok(mesh_protocol::messages::AuditEntry {
                ts: r.get(0)?,
                kind: text_enum(1, r.get(1)?)?,
                actor: r.get(2)?,
                subject: r.get(3)?,
                detail: r.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(AccessState {
        links,
        seats,
        approval,
        audit,
        owner,
    })
}

fn write_access(tx: &rusqlite::Transaction<'_>, id: RoomId, changes: Vec<AccessChange>) -> rusqlite::Result<()> {
    let key = id.to_string();
    for change in changes {
        match change {
            AccessChange::Link(l) => {
                tx.prepare_cached(
                    "INSERT INTO room_links
                     (room_id, id, role, created_at, expires_at, max_uses, uses, revoked_at, created_by, for_user)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
                     ON CONFLICT (room_id, id) DO UPDATE SET role = excluded.role,
                       created_at = excluded.created_at, expires_at = excluded.expires_at,
                       max_uses = excluded.max_uses, uses = MAX(room_links.uses, excluded.uses),
                       revoked_at = excluded.revoked_at, created_by = excluded.created_by,
                       for_user = excluded.for_user",
                )?
                .execute(params![
                    key,
                    l.id,
                    enum_text(&l.role),
                    l.created_at,
                    l.expires_at,
                    l.max_uses,
                    l.uses,
                    l.revoked_at,
                    l.created_by,
                    l.for_user
                ])?;
            }
            AccessChange::LinkUsed(link) => {
                tx.prepare_cached("UPDATE room_links SET uses = uses + 1 WHERE room_id = ?1 AND id = ?2")?
                    .execute(params![key, link])?;
            }
            AccessChange::Seat(s) => {
                tx.prepare_cached(
                    "INSERT OR REPLACE INTO room_seats (room_id, id, name, role, link, created_at, kicked, user_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?
                .execute(params![
                    key,
                    s.id,
                    s.name,
                    enum_text(&s.role),
                    s.link,
                    s.created_at,
                    s.kicked,
                    s.user
                ])?;
            }
            AccessChange::DropSeat(seat) => {
                tx.execute(
                    "DELETE FROM room_seats WHERE room_id = ?1 AND id = ?2",
                    params![key, seat],
                )?;
            }
            AccessChange::Approval(on) => {
                tx.execute("UPDATE rooms SET approval = ?2 WHERE id = ?1", params![key, on])?;
            }
            AccessChange::Owner(user) => {
                tx.execute("UPDATE rooms SET owner = ?2 WHERE id = ?1", params![key, user])?;
            }
            AccessChange::Audit(e) => {
                let seq: i64 = tx.query_row(
                    "SELECT coalesce(max(seq), 0) + 1 FROM room_audit WHERE room_id = ?1",
                    [&key],
                    |r| r.get(0),
                )?;
                tx.prepare_cached(
                    "INSERT INTO room_audit (room_id, seq, ts, kind, actor, subject, detail)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                )?
                .execute(params![
                    key,
                    seq,
                    e.ts,
                    enum_text(&e.kind),
                    e.actor,
                    e.subject,
                    e.detail
                ])?;
                tx.execute(
                    "DELETE FROM room_audit WHERE room_id = ?1 AND seq <= ?2",
                    params![key, seq - MAX_AUDIT_ENTRIES as i64],
                )?;
            }
        }
    }
    Ok(())
}

fn put_user(conn: &Connection, user: UserRecord) -> rusqlite::Result<UserRecord> {
    conn.execute(
        "INSERT INTO users (id, issuer, subject, name, email, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(issuer, subject) DO UPDATE SET name = excluded.name, email = excluded.email",
        params![
            user.id,
            user.issuer,
            user.subject,
            user.name,
            user.email,
            user.created_at
        ],
    )?;
    conn.query_row(
        "SELECT id, name, email, created_at FROM users WHERE issuer = ?1 AND subject = ?2",
        params![user.issuer, user.subject],
        |r| {
            Ok(UserRecord {
                id: r.get(0)?,
                issuer: user.issuer.clone(),
                subject: user.subject.clone(),
                name: r.get(1)?,
                email: r.get(2)?,
                created_at: r.get(3)?,
            })
        },
    )
}

fn get_session(conn: &Connection, digest: &str, now: u64) -> rusqlite::Result<Option<(UserSession, UserRecord)>> {
    conn.query_row(
        "SELECT s.user_id, s.kind, s.created_at, s.expires_at, u.issuer, u.subject, u.name, u.email, u.created_at
         FROM user_sessions s JOIN users u ON u.id = s.user_id
         WHERE s.digest = ?1 AND s.expires_at > ?2",
        params![digest, now],
        |r| {
            let user: String = r.get(0)?;
            Ok((
                UserSession {
                    digest: digest.to_owned(),
                    user: user.clone(),
                    kind: r.get(1)?,
                    created_at: r.get(2)?,
                    expires_at: r.get(3)?,
                },
                UserRecord {
                    id: user,
                    issuer: r.get(4)?,
                    subject: r.get(5)?,
                    name: r.get(6)?,
                    email: r.get(7)?,
                    created_at: r.get(8)?,
                },
            ))
        },
    )
    .optional()
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
        self.call(|r| Command::Append(id, updates, None, r))
    }
    fn append_then(&self, id: RoomId, updates: Vec<Vec<u8>>, on_durable: OnDurable) -> BoxFuture<'_, StoreResult<u64>> {
        self.call(|r| Command::Append(id, updates, Some(on_durable), r))
    }
    fn compact(
        &self,
        id: RoomId,
        snapshot: Vec<u8>,
        upto_seq: u64,
        keep: Vec<Vec<u8>>,
    ) -> BoxFuture<'_, StoreResult<u64>> {
        self.call(|r| Command::Compact(id, snapshot, upto_seq, keep, r))
    }
    fn put_run(&self, id: RoomId, run: RunRecord) -> BoxFuture<'_, StoreResult<()>> {
        self.call(|r| Command::PutRun(id, Box::new(run), r))
    }
    fn list_runs(&self, id: RoomId, limit: usize) -> BoxFuture<'_, StoreResult<Vec<RunRecord>>> {
        self.call(|r| Command::ListRuns(id, limit, r))
    }
    fn load_access(&self, id: RoomId) -> BoxFuture<'_, StoreResult<AccessState>> {
        self.call(|r| Command::LoadAccess(id, r))
    }
    fn write_access(&self, id: RoomId, changes: Vec<AccessChange>) -> BoxFuture<'_, StoreResult<()>> {
        self.call(|r| Command::WriteAccess(id, changes, r))
    }
    fn put_user(&self, user: UserRecord) -> BoxFuture<'_, StoreResult<UserRecord>> {
        self.call(|r| Command::PutUser(user, r))
    }
    fn put_session(&self, session: UserSession) -> BoxFuture<'_, StoreResult<()>> {
        self.call(|r| Command::PutSession(session, r))
    }
    fn get_session(
        &self,
        digest: String,
        now_ms: u64,
    ) -> BoxFuture<'_, StoreResult<Option<(UserSession, UserRecord)>>> {
        self.call(|r| Command::GetSession(digest, now_ms, r))
    }
    fn delete_session(&self, digest: String) -> BoxFuture<'_, StoreResult<bool>> {
        self.call(|r| Command::DeleteSession(digest, r))
    }
    fn close(&self) -> BoxFuture<'_, StoreResult<()>> {
        self.call(Command::Close)
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
            store.compact(id, vec![9], 1, Vec::new()).await.unwrap();
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

    async fn store_with_room(path: &Path) -> (SqliteStore, RoomId) {
        let store = SqliteStore::open(path, Durability::Process).unwrap();
        let id = RoomId::random();
        store
            .create_room(RoomRecord {
                id,
                name: "r".into(),
                created_at: 1,
            })
            .await
            .unwrap();
        (store, id)
    }

    fn count(path: &Path, sql: &str) -> i64 {
        Connection::open(path)
            .unwrap()
            .query_row(sql, [], |r| r.get(0))
            .unwrap()
    }

    #[tokio::test]
    async fn the_hot_log_folds_into_room_ranges_and_loads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mesh.db");
        let (store, a) = store_with_room(&path).await;
        let b = RoomId::random();
        store
            .create_room(RoomRecord {
                id: b,
                name: "b".into(),
                created_at: 2,
            })
            .await
            .unwrap();
        // Interleaved appends, as rooms typing at once produce them.
        for i in 0..10u8 {
            store.append(a, vec![vec![i]]).await.unwrap();
            store.append(b, vec![vec![100 + i]]).await.unwrap();
        }
        assert_eq!(store.compact(a, vec![42], 6, Vec::new()).await.unwrap(), 10);
        let (before_a, before_b) = (store.load(a).await.unwrap(), store.load(b).await.unwrap());
        assert_eq!(before_a.updates, (6..10u8).map(|i| vec![i]).collect::<Vec<_>>());
        store.close().await.unwrap();
        drop(store);
        // Close folded the log: it is empty, and the compacted rows of `a` were dropped.
        assert_eq!(count(&path, "SELECT count(*) FROM room_log"), 0);
        assert_eq!(count(&path, "SELECT count(*) FROM room_updates"), 4 + 10);
        let store = SqliteStore::open(&path, Durability::Process).unwrap();
        assert_eq!(store.load(a).await.unwrap(), before_a);
        assert_eq!(store.load(b).await.unwrap(), before_b);
        // Sequence numbers continue where they were.
        assert_eq!(store.append(a, vec![vec![10]]).await.unwrap(), 11);
    }

    #[tokio::test]
    async fn updates_kept_at_compaction_follow_the_snapshot_across_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mesh.db");
        let (store, id) = store_with_room(&path).await;
        store.append(id, vec![vec![1], vec![2], vec![3]]).await.unwrap();
        let last = store.compact(id, vec![9], 3, vec![vec![7]]).await.unwrap();
        assert_eq!(last, 4, "the kept update gets the next sequence number");
        let want = RoomState {
            snapshot: Some(vec![9]),
            updates: vec![vec![7]],
            last_seq: 4,
        };
        assert_eq!(store.load(id).await.unwrap(), want);
        drop(store);
        // Reopened without a clean close (as after a crash), and again after a clean one.
        let store = SqliteStore::open(&path, Durability::Process).unwrap();
        assert_eq!(store.load(id).await.unwrap(), want);
        store.close().await.unwrap();
        let store = SqliteStore::open(&path, Durability::Process).unwrap();
        assert_eq!(store.load(id).await.unwrap(), want);
    }

    #[tokio::test]
    async fn a_version_2_database_gains_the_access_tables_and_keeps_its_rooms() {
        use mesh_protocol::messages::{AuditEntry, AuditKind, Role};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mesh.db");
        let id = RoomId::random();
        {
            // What schema 2 left behind: `rooms` without `approval`, no access tables.
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(
                "CREATE TABLE rooms (id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at INTEGER NOT NULL);
                 PRAGMA user_version = 2;",
            )
            .unwrap();
            conn.execute("INSERT INTO rooms VALUES (?1, 'old', 1)", [id.to_string()])
                .unwrap();
        }
        let store = SqliteStore::open(&path, Durability::Process).unwrap();
        assert_eq!(count(&path, "PRAGMA user_version"), SCHEMA_VERSION);
        assert_eq!(store.get_room(id).await.unwrap().unwrap().name, "old");
        assert_eq!(store.load_access(id).await.unwrap(), AccessState::default());
        let link = LinkRecord {
            id: "l1".into(),
            role: Role::Writer,
            created_at: 1,
            expires_at: 2,
            max_uses: Some(3),
            uses: 1,
            revoked_at: None,
            created_by: "server".into(),
            for_user: Some("email:ada@example.test".into()),
        };
        let seat = SeatRecord {
            id: "s1".into(),
            name: "ada".into(),
            role: Role::Host,
            link: "l1".into(),
            created_at: 1,
            kicked: false,
            user: Some("u1".into()),
        };
        let entry = |ts| AuditEntry {
            ts,
            kind: AuditKind::Join,
            actor: "ada [s1]".into(),
            subject: "s1".into(),
            detail: String::new(),
        };
        let mut changes = vec![
            AccessChange::Link(link.clone()),
            AccessChange::Seat(seat.clone()),
            AccessChange::Approval(true),
            AccessChange::Owner("u1".into()),
        ];
        changes.extend((0..MAX_AUDIT_ENTRIES as u64 + 5).map(|ts| AccessChange::Audit(entry(ts))));
        store.write_access(id, changes).await.unwrap();
        drop(store);
        let store = SqliteStore::open(&path, Durability::Process).unwrap();
        let access = store.load_access(id).await.unwrap();
        assert_eq!(
            (access.links, access.seats, access.approval),
            (vec![link], vec![seat], true)
        );
        assert_eq!(access.owner.as_deref(), Some("u1"));
        assert_eq!(access.audit.len(), MAX_AUDIT_ENTRIES, "the oldest entries are dropped");
        assert_eq!(access.audit[0].ts, 5);
        store.delete_room(id).await.unwrap();
        assert_eq!(store.load_access(id).await.unwrap(), AccessState::default());
    }

    // Users and sessions, like the other rules every store keeps, are tested against SQLite
    // and Postgres alike in server/tests/store_conformance.rs.

    #[tokio::test]
    async fn close_leaves_an_empty_wal_and_refuses_later_calls() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mesh.db");
        let (store, id) = store_with_room(&path).await;
        for i in 0..200u32 {
            store.append(id, vec![i.to_le_bytes().to_vec()]).await.unwrap();
        }
        let wal = dir.path().join("mesh.db-wal");
        assert!(std::fs::metadata(&wal).unwrap().len() > 0);
        store.close().await.unwrap();
        assert_eq!(std::fs::metadata(&wal).map_or(0, |m| m.len()), 0);
        assert!(matches!(store.load(id).await, Err(StoreError::Closed)));
    }

    #[tokio::test]
    async fn a_database_with_large_pages_is_converted_and_keeps_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mesh.db");
        let id = RoomId::random();
        {
            // What the first version of this store left behind: 4 KiB pages, no hot log.
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "page_size", 4096).unwrap();
            conn.pragma_update(None, "journal_mode", "WAL").unwrap();
            conn.execute_batch(
                "CREATE TABLE rooms (id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at INTEGER NOT NULL);
                 CREATE TABLE room_updates (room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
                     seq INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (room_id, seq)) WITHOUT ROWID;
                 CREATE TABLE room_seq (room_id TEXT PRIMARY KEY REFERENCES rooms(id) ON DELETE CASCADE,
                     last_seq INTEGER NOT NULL);",
            )
            .unwrap();
            let key = id.to_string();
            conn.execute("INSERT INTO rooms VALUES (?1, 'old', 1)", [&key]).unwrap();
            conn.execute("INSERT INTO room_updates VALUES (?1, 1, x'01'), (?1, 2, x'02')", [&key])
                .unwrap();
            conn.execute("INSERT INTO room_seq VALUES (?1, 2)", [&key]).unwrap();
        }
        let store = SqliteStore::open(&path, Durability::Process).unwrap();
        assert_eq!(
            store.load(id).await.unwrap(),
            RoomState {
                snapshot: None,
                updates: vec![vec![1], vec![2]],
                last_seq: 2
            }
        );
        assert_eq!(store.append(id, vec![vec![3]]).await.unwrap(), 3);
        assert_eq!(count(&path, "PRAGMA page_size"), i64::from(PAGE_SIZE));
        assert_eq!(count(&path, "PRAGMA user_version"), SCHEMA_VERSION);
    }

    #[tokio::test]
    async fn deleting_a_room_drops_its_hot_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mesh.db");
        let (store, id) = store_with_room(&path).await;
        store.append(id, vec![vec![1], vec![2]]).await.unwrap();
        assert!(store.delete_room(id).await.unwrap());
        assert_eq!(count(&path, "SELECT count(*) FROM room_log"), 0);
        assert_eq!(store.load(id).await.unwrap(), RoomState::default());
    }
}
