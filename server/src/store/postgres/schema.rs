//! The Postgres store's schema: versioned migrations, applied in order at start, each once.
//!
//! Several servers may start against one database at the same moment: the migrations run
//! in one transaction under an advisory lock, so exactly one of them applies each version
//! and the others find it applied. A database written by a newer mesh (a version this code
//! does not know) is refused rather than used half-understood.

use tokio_postgres::Client;

/// The advisory lock key the migrations hold ("mesh" in ASCII): any constant, the same in
/// every server of one deployment.
const MIGRATION_LOCK: i64 = 0x6d65_7368;

/// The migrations, oldest first: `(version, SQL)`. A released version is never edited; a
/// change to the schema is a new entry.
const MIGRATIONS: &[(i32, &str)] = &[(
    1,
    // The same records as the SQLite store's schema 4 (see sqlite.rs), in Postgres types:
    // times and counters are BIGINT milliseconds, blobs BYTEA. Every room's rows cascade
    // from `rooms`, so deleting a room deletes everything it held.
    "CREATE TABLE rooms (
         id TEXT PRIMARY KEY,
         name TEXT NOT NULL,
         created_at BIGINT NOT NULL,
         approval BOOLEAN NOT NULL DEFAULT false,
         owner TEXT
     );
     -- Each room's last sequence number, apart from `rooms` so that appends (which lock
     -- this row to number their updates) never wait on a change of the room's settings.
     CREATE TABLE room_seq (
         room_id TEXT PRIMARY KEY REFERENCES rooms(id) ON DELETE CASCADE,
         last_seq BIGINT NOT NULL
     );
     CREATE TABLE room_updates (
         room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
         seq BIGINT NOT NULL,
         data BYTEA NOT NULL,
         PRIMARY KEY (room_id, seq)
     );
     CREATE TABLE room_snapshots (
         room_id TEXT PRIMARY KEY REFERENCES rooms(id) ON DELETE CASCADE,
         data BYTEA NOT NULL,
         upto_seq BIGINT NOT NULL
     );
     CREATE TABLE room_runs (
         room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
         run_id TEXT NOT NULL,
         started_at BIGINT NOT NULL,
         data TEXT NOT NULL,
         PRIMARY KEY (room_id, run_id)
     );
     CREATE INDEX room_runs_by_start ON room_runs (room_id, started_at DESC);
     CREATE TABLE server_meta (
         key TEXT PRIMARY KEY,
         value BYTEA NOT NULL
     );
     CREATE TABLE room_links (
         room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
         id TEXT NOT NULL,
         role TEXT NOT NULL,
         created_at BIGINT NOT NULL,
         expires_at BIGINT NOT NULL,
         max_uses BIGINT,
         uses BIGINT NOT NULL,
         revoked_at BIGINT,
         created_by TEXT NOT NULL,
         for_user TEXT,
         PRIMARY KEY (room_id, id)
     );
     CREATE TABLE room_seats (
         room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
         id TEXT NOT NULL,
         name TEXT NOT NULL,
         role TEXT NOT NULL,
         link TEXT NOT NULL,
         created_at BIGINT NOT NULL,
         kicked BOOLEAN NOT NULL,
         user_id TEXT,
         PRIMARY KEY (room_id, id)
     );
     CREATE TABLE room_audit (
         room_id TEXT NOT NULL REFERENCES rooms(id) ON DELETE CASCADE,
         seq BIGINT NOT NULL,
         ts BIGINT NOT NULL,
         kind TEXT NOT NULL,
         actor TEXT NOT NULL,
         subject TEXT NOT NULL,
         detail TEXT NOT NULL,
         PRIMARY KEY (room_id, seq)
     );
     CREATE TABLE users (
         id TEXT PRIMARY KEY,
         issuer TEXT NOT NULL,
         subject TEXT NOT NULL,
         name TEXT NOT NULL,
         email TEXT,
         created_at BIGINT NOT NULL,
         UNIQUE (issuer, subject)
     );
     -- A session's token is never stored, only its SHA-256.
     CREATE TABLE user_sessions (
         digest TEXT PRIMARY KEY,
         user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
         kind TEXT NOT NULL,
         created_at BIGINT NOT NULL,
         expires_at BIGINT NOT NULL
     );
     CREATE INDEX user_sessions_by_user ON user_sessions (user_id);",
)];

/// The newest schema version this code writes.
pub fn latest() -> i32 {
    MIGRATIONS.last().map_or(0, |(v, _)| *v)
}

/// Applies the migrations the database lacks, in one transaction; returns the versions
/// applied (empty when it was current).
pub async fn migrate(client: &mut Client) -> Result<Vec<i32>, String> {
    let db = |e: tokio_postgres::Error| super::describe_error(&e);
    let tx = client.transaction().await.map_err(db)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(db)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS mesh_migrations (
             version INTEGER PRIMARY KEY,
             applied_at BIGINT NOT NULL
         )",
    )
    .await
    .map_err(db)?;
    let current: i32 = tx
        .query_one("SELECT coalesce(max(version), 0) FROM mesh_migrations", &[])
        .await
        .map_err(db)?
        .get(0);
    if current > latest() {
        return Err(format!(
            "the database has schema version {current}, newer than this server knows ({}); run a newer mesh-server, or point --store at another database",
            latest()
        ));
    }
    let mut applied = Vec::new();
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.batch_execute(sql).await.map_err(db)?;
        tx.execute(
            "INSERT INTO mesh_migrations (version, applied_at) VALUES ($1, $2)",
            &[version, &(crate::store::sqlite::now_ms() as i64)],
        )
        .await
        .map_err(db)?;
        applied.push(*version);
    }
    tx.commit().await.map_err(db)?;
    Ok(applied)
}
