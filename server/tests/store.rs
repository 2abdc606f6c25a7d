//! The store on disk, against a real server process: its files are private, and steady
//! typing keeps them small (a bounded WAL, a small cost per update, nothing left in the WAL
//! after a graceful stop).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use mesh_testkit::soak::{dir_bytes, type_across_rooms, TypingLoad};
use mesh_testkit::TestServer;

const MIB: u64 = 1024 * 1024;

/// The store truncates its WAL once it is over 4 MiB (`WAL_TRUNCATE_BYTES`), checking once
/// a second; at this test's rate the WAL grows well under 1 MiB in that second.
const WAL_BOUND: u64 = 6 * MIB;

/// The target cost of one small update at typing load (the first store wrote ~9 KiB).
const MAX_WAL_BYTES_PER_UPDATE: f64 = 1024.0;

/// What may be left after typing ~20,000 updates and a graceful stop: the snapshots are a
/// few KiB per room; the rest is the hot log's pages, free for reuse (the first store left
/// 190 MiB after 30,000 updates).
const DATA_DIR_BOUND_AFTER_STOP: u64 = 8 * MIB;

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn db_files(dir: &Path) -> Vec<std::path::PathBuf> {
    ["mesh.db", "mesh.db-wal", "mesh.db-shm"]
        .iter()
        .map(|f| dir.join(f))
        .filter(|p| p.exists())
        .collect()
}

#[tokio::test]
async fn the_data_dir_and_the_database_files_are_private() {
    let mut server = TestServer::start().unwrap();
    // A room makes the server write (and SQLite create its WAL and shared-memory files).
    server.create_session("private").await.unwrap();
    let dir = server.data_dir().to_path_buf();
    assert_eq!(mode(&dir), 0o700, "data dir");
    let files = db_files(&dir);
    assert_eq!(files.len(), 3, "mesh.db, its WAL and its shared memory: {files:?}");
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }

    // Files left readable by others (an older server, a careless copy) are tightened at
    // start.
    server.kill9();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for f in &files {
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    // (The start itself opens the database and its WAL: no request needed.)
    server.restart().unwrap();
    assert_eq!(mode(&dir), 0o700, "data dir after restart");
    for f in db_files(&dir) {
        assert_eq!(mode(&f), 0o600, "{} after restart", f.display());
    }
}

#[tokio::test]
async fn steady_typing_keeps_the_store_small_and_a_stop_empties_the_wal() {
    let mut server = TestServer::start().unwrap();
    // 1,000 updates/s in all, as in the soak of docs/benchmarks.md, over fewer rooms.
    let load = TypingLoad {
        rooms: 25,
        rate: 40.0,
        duration: Duration::from_secs(20),
        sample_every: Duration::from_secs(2),
    };
    let samples = type_across_rooms(&server, &load, |s| {
        eprintln!(
            "{:>5.1} s  {:>6} updates  data dir {:>6.2} MiB  WAL {:>5.2} MiB",
            s.at.as_secs_f64(),
            s.updates,
            s.data_dir_bytes as f64 / MIB as f64,
            s.wal_bytes as f64 / MIB as f64
        )
    })
    .await
    .unwrap();
    let (first, last) = (&samples[0], samples.last().unwrap());
    let updates = last.updates - first.updates;
    let wal_per_update = last.wal_bytes_per_update_since(first);
    eprintln!(
        "{updates} updates: {wal_per_update:.0} WAL bytes and {:.0} process bytes per update",
        last.process_bytes_per_update_since(first)
    );
    assert!(updates >= 15_000, "the load ran: {updates} updates");
    assert!(
        wal_per_update <= MAX_WAL_BYTES_PER_UPDATE,
        "{wal_per_update:.0} WAL bytes per update, over {MAX_WAL_BYTES_PER_UPDATE}"
    );
    for s in &samples {
        assert!(
            s.wal_bytes <= WAL_BOUND,
            "WAL of {} bytes at {:?}, over {WAL_BOUND}",
            s.wal_bytes,
            s.at
        );
    }

    // A graceful stop compacts every room, folds the log and truncates the WAL.
    assert_eq!(server.terminate().unwrap(), Some(0));
    let dir = server.data_dir();
    assert_eq!(std::fs::metadata(dir.join("mesh.db-wal")).map_or(0, |m| m.len()), 0);
    let size = dir_bytes(dir).unwrap();
    assert!(
        size <= DATA_DIR_BOUND_AFTER_STOP,
        "data dir of {size} bytes after a stop, over {DATA_DIR_BOUND_AFTER_STOP}"
    );
}
