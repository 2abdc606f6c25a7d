//! Keeping the server's files private. The data directory holds `mesh.db`, and the database
//! holds the token-signing secret and every room's text: only the server's own user may read
//! them. New files are created private; files found with looser modes (an older server
//! created them, or an operator copied them) are tightened at start, and the change is
//! logged so an operator knows why a backup script may stop reading them.

use std::io;
use std::path::Path;

/// The data directory's mode: the owner alone may list and enter it.
pub const DIR_MODE: u32 = 0o700;

/// The mode of every file the store writes (`mesh.db`, `mesh.db-wal`, `mesh.db-shm`).
pub const FILE_MODE: u32 = 0o600;

/// Suffixes SQLite adds to the database path for its companion files; they hold the same
/// data as the database (the WAL holds recent commits verbatim).
pub const SQLITE_COMPANIONS: [&str; 2] = ["-wal", "-shm"];

/// Creates `dir` (and missing parents) owner-only, or tightens it to [`DIR_MODE`] if it
/// exists with a looser mode.
pub fn ensure_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new().recursive(true).mode(DIR_MODE).create(dir)?;
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)?;
    tighten(dir, DIR_MODE)
}

/// Makes sure the database file and its companions are private before SQLite opens them.
/// A missing database file is created empty with [`FILE_MODE`] (SQLite treats an empty file
/// as a new database, and gives its WAL and shared-memory files the database file's mode).
pub fn ensure_db_files(db: &Path) -> io::Result<()> {
    create_private(db)?;
    tighten(db, FILE_MODE)?;
    tighten_companions(db)
}

/// Tightens the database's `-wal` and `-shm` files, if they exist, to [`FILE_MODE`].
pub fn tighten_companions(db: &Path) -> io::Result<()> {
    for suffix in SQLITE_COMPANIONS {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        match tighten(Path::new(&name), FILE_MODE) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            other => other?,
        }
    }
    Ok(())
}

#[cfg(unix)]
fn create_private(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(not(unix))]
fn create_private(_path: &Path) -> io::Result<()> {
    Ok(())
}

/// Removes every permission bit beyond `mode` from `path`, logging when it had any.
#[cfg(unix)]
fn tighten(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let current = std::fs::metadata(path)?.permissions().mode() & 0o777;
    if current & !mode != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(current & mode))?;
        tracing::warn!(
            path = %path.display(),
            was = format!("{current:o}"),
            now = format!("{:o}", current & mode),
            "tightened the permissions of a file other users could read; only the server's user may read its data"
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn tighten(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_files_are_private_and_loose_ones_are_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        ensure_dir(&dir).unwrap();
        assert_eq!(mode(&dir), DIR_MODE);
        let db = dir.join("mesh.db");
        ensure_db_files(&db).unwrap();
        assert_eq!(mode(&db), FILE_MODE);

        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let wal = dir.join("mesh.db-wal");
        std::fs::write(&wal, b"").unwrap();
        std::fs::set_permissions(&wal, std::fs::Permissions::from_mode(0o666)).unwrap();
        ensure_dir(&dir).unwrap();
        ensure_db_files(&db).unwrap();
        assert_eq!((mode(&dir), mode(&db), mode(&wal)), (DIR_MODE, FILE_MODE, FILE_MODE));
    }

    #[test]
    fn modes_tighter_than_asked_are_left_alone() {
        let tmp = tempfile::tempdir().unwrap();
        let db = tmp.path().join("mesh.db");
        std::fs::write(&db, b"").unwrap();
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o400)).unwrap();
        ensure_db_files(&db).unwrap();
        assert_eq!(mode(&db), 0o400);
    }
}
