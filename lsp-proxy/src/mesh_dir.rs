//! The folder's `.mesh/`: what mesh keeps beside a shared folder, never shared and private to
//! its owner (folders 0700, files 0600; a `.gitignore` keeps it out of git).
//!
//! - `base/<room>/<path>`: the last text the folder and the room agreed on for each file
//!   (what the proxy last wrote there or read from there), per room. It is the base of the
//!   three-way merge that a rejoin runs, so edits made while no proxy ran are merged, not
//!   overwritten.
//! - `recent/<room>/<hash of path>/`: the last few texts agreed on for each file (files named
//!   `<sequence>-<hash of text>`, the highest the latest). An editor may have read a file
//!   just before the proxy wrote a newer version (its own disk sync, or the proxy of an
//!   editor that just quit), and its `didOpen` may carry typing already: the buffer merges
//!   with the agreed text it is closest to as its base, so what the room has beyond that
//!   version is never taken for the user's deletion.
//! - `conflicts/<path>`: the room's version of a file that could not be merged cleanly. The
//!   local text stays in the file; the user takes what they need from this copy, then runs
//!   `mesh-proxy resolve PATH` (or deletes the copy), and the file is merged again with the
//!   copy as the base, so the local text wins where the two still differ.
//! - `seat.json`: the seat this folder holds in its room (decision 011): the room, the seat's
//!   id and its seat token (a secret: never logged). The proxy reconnects with it, so a
//!   dropped connection comes back to the same seat and role; a kick or a refusal forgets it.

use std::path::{Path, PathBuf};

use crate::workspace::{self, UnsafePath, MESH_DIR};

/// The folder under `.mesh/` holding the last agreed texts.
const BASE_DIR: &str = "base";

/// The folder under `.mesh/` holding the recently agreed texts.
const RECENT_DIR: &str = "recent";

/// Recently agreed texts kept per file: an editor's open takes well under a second, during
/// which a burst of remote edits rewrites a file a few times.
pub const RECENT_TEXTS: usize = 8;

/// Larger texts keep only their base: eight copies of a file near the 4 MiB sharing limit
/// rewritten on every remote edit would cost more than the rare race they cover.
const RECENT_TEXT_MAX_BYTES: usize = 256 * 1024;

/// The folder under `.mesh/` holding the room's versions of conflicting files.
pub const CONFLICTS_DIR: &str = "conflicts";

/// The file under `.mesh/` holding the folder's seat.
const SEAT_FILE: &str = "seat.json";

/// Suffix of the temporary files of atomic writes (skipped when listing).
const TMP_SUFFIX: &str = ".mesh-tmp";

/// Why `mesh-proxy resolve` could not resolve a file.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The path has no open conflict.
    #[error("{0} has no open conflict; `mesh-proxy status` lists the open ones")]
    NoConflict(String),
    /// The path cannot be a room path.
    #[error(transparent)]
    Unsafe(#[from] UnsafePath),
    /// The folder could not be read or written.
    #[error("cannot update {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        source: std::io::Error,
    },
}

/// `root/.mesh`, created private (with its `.gitignore`) when missing.
fn mesh_dir(root: &Path) -> std::io::Result<PathBuf> {
    let dir = root.join(MESH_DIR);
    if !dir.is_dir() {
        create_private_dir(&dir)?;
        write_private(&dir.join(".gitignore"), "# mesh's own state: never commit it.\n*\n")?;
    }
    Ok(dir)
}

fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Writes `text` at `path` atomically, readable by its owner only.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        create_private_dir(parent)?;
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}{TMP_SUFFIX}"));
    {
        use std::io::Write;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        opts.open(&tmp)?.write_all(text.as_bytes())?;
    }
    std::fs::rename(&tmp, path)
}

/// Where the last agreed text of room path `path` in room `room` is kept.
fn base_file(root: &Path, room: &str, path: &str) -> Result<PathBuf, UnsafePath> {
    if room.is_empty() || room.contains(['/', '\\', '.']) {
        return Err(UnsafePath(room.to_string()));
    }
    workspace::safe_join(&root.join(MESH_DIR).join(BASE_DIR).join(room), path)
}

/// Where the recently agreed texts of `path` in room `room` are kept: one folder per path,
/// named by the path's hash so that no room path can reach into another's.
fn recent_dir(root: &Path, room: &str, path: &str) -> Result<PathBuf, UnsafePath> {
    if room.is_empty() || room.contains(['/', '\\', '.']) {
        return Err(UnsafePath(room.to_string()));
    }
    Ok(root.join(MESH_DIR).join(RECENT_DIR).join(room).join(sha256_hex(path)))
}

fn sha256_hex(text: &str) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The kept texts of `dir` as (sequence, file), lowest sequence first.
fn recent_files(dir: &Path) -> Vec<(u64, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(u64, PathBuf)> = entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let (seq, hash) = name.split_once('-')?;
            (hash.len() == 64).then_some(())?;
            Some((seq.parse().ok()?, e.path()))
        })
        .collect();
    files.sort();
    files
}

/// The texts recently agreed on for `path`, the latest first.
pub fn read_recent(root: &Path, room: &str, path: &str) -> Vec<String> {
    let Ok(dir) = recent_dir(root, room, path) else {
        return Vec::new();
    };
    recent_files(&dir)
        .into_iter()
        .rev()
        .filter_map(|(_, f)| std::fs::read_to_string(f).ok())
        .collect()
}

/// Keeps `text` as the latest agreed text of `path`; the oldest beyond [`RECENT_TEXTS`] go.
/// A text over [`RECENT_TEXT_MAX_BYTES`] is not kept (its base is).
pub fn keep_recent(root: &Path, room: &str, path: &str, text: &str) -> std::io::Result<()> {
    if text.len() > RECENT_TEXT_MAX_BYTES {
        return Ok(());
    }
    mesh_dir(root)?;
    let dir = recent_dir(root, room, path).map_err(std::io::Error::other)?;
    let hash = sha256_hex(text);
    let mut files = recent_files(&dir);
    let next = files.last().map_or(0, |(seq, _)| seq + 1);
    // The same text agreed again becomes the latest.
    files.retain(|(_, f)| {
        let same = f
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(&hash));
        if same {
            let _ = std::fs::remove_file(f);
        }
        !same
    });
    write_private(&dir.join(format!("{next:020}-{hash}")), text)?;
    let extra = (files.len() + 1).saturating_sub(RECENT_TEXTS);
    for (_, f) in files.iter().take(extra) {
        std::fs::remove_file(f)?;
    }
    Ok(())
}

/// The last text the folder and room `room` agreed on for `path`, if one was kept.
pub fn read_base(root: &Path, room: &str, path: &str) -> Option<String> {
    std::fs::read_to_string(base_file(root, room, path).ok()?).ok()
}

/// Keeps `text` as the last agreed text of `path`.
pub fn write_base(root: &Path, room: &str, path: &str, text: &str) -> std::io::Result<()> {
    mesh_dir(root)?;
    let file = base_file(root, room, path).map_err(std::io::Error::other)?;
    write_private(&file, text)
}

/// Forgets the last agreed text of `path` and the hashes of the earlier ones (the file left
/// the room).
pub fn remove_base(root: &Path, room: &str, path: &str) -> std::io::Result<()> {
    let file = base_file(root, room, path).map_err(std::io::Error::other)?;
    match std::fs::remove_file(file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let dir = recent_dir(root, room, path).map_err(std::io::Error::other)?;
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Where the room's version of a conflicting `path` is kept.
pub fn conflict_file(root: &Path, path: &str) -> Result<PathBuf, UnsafePath> {
    workspace::safe_join(&root.join(MESH_DIR).join(CONFLICTS_DIR), path)
}

/// The folder-relative name of the conflict copy of `path`, for messages.
pub fn conflict_display(path: &str) -> String {
    format!("{MESH_DIR}/{CONFLICTS_DIR}/{path}")
}

/// Keeps the room's version `text` of the conflicting `path` beside the local file.
pub fn write_conflict(root: &Path, path: &str, text: &str) -> std::io::Result<()> {
    mesh_dir(root)?;
    let file = conflict_file(root, path).map_err(std::io::Error::other)?;
    write_private(&file, text)
}

/// Removes the conflict copy of `path`, if there is one.
pub fn remove_conflict(root: &Path, path: &str) -> std::io::Result<()> {
    let file = conflict_file(root, path).map_err(std::io::Error::other)?;
    match std::fs::remove_file(file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The room path whose conflict copy is `abs`, when `abs` is inside `.mesh/conflicts/`.
pub fn conflict_path_of(root: &Path, abs: &Path) -> Option<String> {
    let rel = abs.strip_prefix(root.join(MESH_DIR).join(CONFLICTS_DIR)).ok()?;
    let parts: Option<Vec<&str>> = rel.components().map(|c| c.as_os_str().to_str()).collect();
    let path = parts?.join("/");
    (!path.is_empty() && !path.ends_with(TMP_SUFFIX)).then_some(path)
}

/// The open conflicts of the folder: the room paths that have a conflict copy, sorted.
pub fn conflicts(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let Some(name) = entry.file_name().to_str().map(String::from) else {
                continue;
            };
            let path = format!("{prefix}{name}");
            match entry.file_type() {
                Ok(t) if t.is_dir() => walk(&entry.path(), &format!("{path}/"), out),
                Ok(t) if t.is_file() && !name.ends_with(TMP_SUFFIX) => out.push(path),
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(&root.join(MESH_DIR).join(CONFLICTS_DIR), "", &mut out);
    out.sort();
    out
}

/// Resolves the conflict of `path` by hand (`mesh-proxy resolve`): the room's version kept
/// beside it becomes the base, and the copy is removed. A running proxy sees the copy go and
/// merges the file at once; otherwise the next start does. Either way the local text wins
/// where it still differs from that version, and the room's later changes are kept.
pub fn resolve(root: &Path, room: &str, path: &str) -> Result<(), ResolveError> {
    let copy = conflict_file(root, path)?;
    let io = |source, path: &Path| ResolveError::Io {
        path: path.to_path_buf(),
        source,
    };
    let text = match std::fs::read_to_string(&copy) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(ResolveError::NoConflict(path.into())),
        Err(e) => return Err(io(e, &copy)),
    };
    let base = base_file(root, room, path)?;
    write_base(root, room, path, &text).map_err(|e| io(e, &base))?;
    std::fs::remove_file(&copy).map_err(|e| io(e, &copy))
}

/// The seat a folder holds in a room, as `welcome` gave it.
#[derive(Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Seat {
    /// The room it is in.
    pub room: String,
    /// The seat's id, as participants and host requests name it.
    pub id: String,
    /// The seat token (a secret: never logged, never printed).
    pub token: String,
}

impl std::fmt::Debug for Seat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seat")
            .field("room", &self.room)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// The seat the folder `root` holds in `room`, if one was kept (a seat of another room, or
/// an unreadable file, is none).
pub fn read_seat(root: &Path, room: &str) -> Option<Seat> {
    let bytes = std::fs::read(root.join(MESH_DIR).join(SEAT_FILE)).ok()?;
    serde_json::from_slice::<Seat>(&bytes).ok().filter(|s| s.room == room)
}

/// Keeps `seat` as the folder's seat, readable by its owner only.
pub fn write_seat(root: &Path, seat: &Seat) -> std::io::Result<()> {
    let dir = mesh_dir(root)?;
    let json = serde_json::to_string(seat).map_err(std::io::Error::other)?;
    write_private(&dir.join(SEAT_FILE), &json)
}

/// Forgets the folder's seat (kicked, refused, or the room left).
pub fn forget_seat(root: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(root.join(MESH_DIR).join(SEAT_FILE)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seat_is_kept_privately_per_room_and_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let seat = Seat {
            room: "r1".into(),
            id: "s7".into(),
            token: "secret-token".into(),
        };
        write_seat(root, &seat).unwrap();
        assert_eq!(read_seat(root, "r1"), Some(seat.clone()));
        assert_eq!(read_seat(root, "r2"), None, "a seat is of one room");
        assert!(
            !format!("{seat:?}").contains("secret-token"),
            "the token is never logged"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(root.join(MESH_DIR).join(SEAT_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        forget_seat(root).unwrap();
        assert_eq!(read_seat(root, "r1"), None);
        forget_seat(root).unwrap();
    }

    #[test]
    fn bases_and_conflicts_are_kept_privately_and_listed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_base(root, "r1", "src/a.rs", "agreed").unwrap();
        assert_eq!(read_base(root, "r1", "src/a.rs").as_deref(), Some("agreed"));
        assert_eq!(read_base(root, "r2", "src/a.rs"), None, "bases are per room");
        write_conflict(root, "src/a.rs", "room's").unwrap();
        write_conflict(root, "b.txt", "room's b").unwrap();
        assert_eq!(conflicts(root), ["b.txt", "src/a.rs"]);
        assert_eq!(
            conflict_path_of(root, &conflict_file(root, "src/a.rs").unwrap()).as_deref(),
            Some("src/a.rs")
        );
        assert_eq!(conflict_path_of(root, &root.join("src/a.rs")), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&root.join(MESH_DIR)), 0o700);
            assert_eq!(mode(&conflict_file(root, "b.txt").unwrap()), 0o600);
            assert_eq!(mode(&base_file(root, "r1", "src/a.rs").unwrap()), 0o600);
        }
        assert!(std::fs::read_to_string(root.join(".mesh/.gitignore"))
            .unwrap()
            .contains('*'));
    }

    #[test]
    fn the_latest_agreed_texts_are_kept_per_room_and_go_with_the_base() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_base(root, "r1", "src/a.rs", "v9").unwrap();
        for i in 0..10 {
            keep_recent(root, "r1", "src/a.rs", &format!("v{i}")).unwrap();
        }
        let want: Vec<String> = (2..10).rev().map(|i| format!("v{i}")).collect();
        assert_eq!(
            read_recent(root, "r1", "src/a.rs"),
            want,
            "the latest first, {RECENT_TEXTS} kept"
        );
        // Agreed again: it becomes the latest, kept once.
        keep_recent(root, "r1", "src/a.rs", "v5").unwrap();
        let got = read_recent(root, "r1", "src/a.rs");
        assert_eq!(got[0], "v5");
        assert_eq!(got.iter().filter(|t| *t == "v5").count(), 1);
        assert!(read_recent(root, "r2", "src/a.rs").is_empty(), "per room");
        assert!(read_recent(root, "r1", "src/a.rs/x").is_empty(), "per path");
        // Too large to keep: only the base holds it.
        keep_recent(root, "r1", "src/a.rs", &"x".repeat(RECENT_TEXT_MAX_BYTES + 1)).unwrap();
        assert_eq!(read_recent(root, "r1", "src/a.rs")[0], "v5");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let files = recent_files(&recent_dir(root, "r1", "src/a.rs").unwrap());
            assert_eq!(
                std::fs::metadata(&files[0].1).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        remove_base(root, "r1", "src/a.rs").unwrap();
        assert_eq!(read_base(root, "r1", "src/a.rs"), None);
        assert!(read_recent(root, "r1", "src/a.rs").is_empty());
        remove_base(root, "r1", "src/a.rs").unwrap();
        assert!(keep_recent(root, "../r", "a", "t").is_err());
    }

    #[test]
    fn resolving_makes_the_room_s_version_the_base_and_removes_the_copy() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write_base(root, "r1", "a.txt", "old base").unwrap();
        write_conflict(root, "a.txt", "room's version").unwrap();
        resolve(root, "r1", "a.txt").unwrap();
        assert_eq!(read_base(root, "r1", "a.txt").as_deref(), Some("room's version"));
        assert!(conflicts(root).is_empty());
        let again = resolve(root, "r1", "a.txt").unwrap_err().to_string();
        assert!(
            again.contains("no open conflict") && again.contains("mesh-proxy status"),
            "{again}"
        );
        assert!(resolve(root, "r1", "../x").is_err());
    }
}
