//! A shared folder on disk: which files go into a room, and writing the room's files back.
//! Paths from the room are untrusted: they are checked before anything touches the disk.

use std::path::{Component, Path, PathBuf};

/// Files larger than this stay out of the room (a 1 MB source file fits easily).
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The default of [`FolderLimits::max_files`]: the most files a share uploads or a join
/// writes. The same as the server's default `max_files`, so every room a default server
/// holds can be joined, and a share never sends more files than it will accept.
pub const MAX_FILES: usize = 10_000;

/// The default of [`FolderLimits::max_bytes`]: the most bytes of text a share uploads or a
/// join writes. The same as the server's default document limit (`max_doc_bytes`): a room
/// cannot hold more text than that, and a folder past it is almost always build output or
/// data that `.gitignore` should name.
pub const MAX_TOTAL_BYTES: u64 = 64 * 1024 * 1024;

/// How much a share may upload and a join may write. Checked before anything is uploaded
/// or written: a folder or room over a limit is refused whole, never half shared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FolderLimits {
    /// The most files (`--max-folder-files`, `MESH_MAX_FOLDER_FILES`, `max_folder_files`).
    pub max_files: usize,
    /// The most bytes of text, all files together (`--max-folder-bytes`,
    /// `MESH_MAX_FOLDER_BYTES`, `max_folder_bytes`).
    pub max_bytes: u64,
}

impl Default for FolderLimits {
    fn default() -> Self {
        FolderLimits {
            max_files: MAX_FILES,
            max_bytes: MAX_TOTAL_BYTES,
        }
    }
}

/// What was about to go over a [`FolderLimits`] limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    /// Uploading a folder into a new room.
    Share,
    /// Writing a room's files into a folder.
    Join,
}

/// A share or a join refused by a [`FolderLimits`] limit; the message names the limit and
/// says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverLimit {
    /// Too many files.
    #[error("{}", over_files(*.transfer, *.limit))]
    Files {
        /// Share or join.
        transfer: Transfer,
        /// The limit passed.
        limit: usize,
    },
    /// Too many bytes of text.
    #[error("{}", over_bytes(*.transfer, *.limit))]
    Bytes {
        /// Share or join.
        transfer: Transfer,
        /// The limit passed.
        limit: u64,
    },
}

fn over_files(transfer: Transfer, limit: usize) -> String {
    match transfer {
        Transfer::Share => format!(
            "not shared: the folder has more than {limit} text files to share, the limit (max_folder_files); \
             list what others need not see (build output, dependencies, data) in .gitignore, \
             or raise the limit with --max-folder-files or MESH_MAX_FOLDER_FILES"
        ),
        Transfer::Join => format!(
            "not joined: the room has more than {limit} files, the most a join writes (max_folder_files); \
             nothing was written. To join anyway, raise the limit with --max-folder-files or MESH_MAX_FOLDER_FILES"
        ),
    }
}

fn over_bytes(transfer: Transfer, limit: u64) -> String {
    let size = human_bytes(limit);
    match transfer {
        Transfer::Share => format!(
            "not shared: the folder has more than {size} of text files to share, the limit (max_folder_bytes); \
             list what others need not see (build output, dependencies, data) in .gitignore, \
             or raise the limit with --max-folder-bytes or MESH_MAX_FOLDER_BYTES"
        ),
        Transfer::Join => format!(
            "not joined: the room holds more than {size} of text, the most a join writes (max_folder_bytes); \
             nothing was written. To join anyway, raise the limit with --max-folder-bytes or MESH_MAX_FOLDER_BYTES"
        ),
    }
}

/// `n` bytes for people: `64 MiB`, `1.5 KiB`, `12 bytes`.
fn human_bytes(n: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * 1024;
    match n {
        n if n >= MIB && n % MIB == 0 => format!("{} MiB", n / MIB),
        n if n >= MIB => format!("{:.1} MiB", n as f64 / MIB as f64),
        n if n >= KIB && n % KIB == 0 => format!("{} KiB", n / KIB),
        n if n >= KIB => format!("{:.1} KiB", n as f64 / KIB as f64),
        n => format!("{n} bytes"),
    }
}

impl FolderLimits {
    /// Whether `files` files of `bytes` bytes in all may be shared or written.
    pub fn check(&self, transfer: Transfer, files: usize, bytes: u64) -> Result<(), OverLimit> {
        if files > self.max_files {
            return Err(OverLimit::Files {
                transfer,
                limit: self.max_files,
            });
        }
        if bytes > self.max_bytes {
            return Err(OverLimit::Bytes {
                transfer,
                limit: self.max_bytes,
            });
        }
        Ok(())
    }
}

/// Why a folder could not be scanned for sharing.
#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    /// Over a limit (the walk stopped there).
    #[error(transparent)]
    OverLimit(#[from] OverLimit),
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

/// The folder mesh keeps its own things in; never shared.
pub const MESH_DIR: &str = ".mesh";

/// A file found for sharing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalFile {
    /// Room path (`/` separators, relative).
    pub path: String,
    /// Its text.
    pub text: String,
}

/// What a scan left out, and why.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// Not UTF-8 text.
    pub binary: Vec<String>,
    /// Over [`MAX_FILE_BYTES`].
    pub too_large: Vec<String>,
}

/// The text files of `dir`, honouring `.gitignore`, `.ignore` and git's exclude files,
/// skipping `.git`, `.mesh`, binaries and oversized files. Stops at the first file past
/// `limits`, so a folder far over them (a `node_modules`) is not read whole to be refused.
pub fn scan(dir: &Path, limits: &FolderLimits) -> Result<(Vec<LocalFile>, Skipped), ScanError> {
    let mut files = Vec::new();
    let mut skipped = Skipped::default();
    let mut total = 0u64;
    let walker = ignore::WalkBuilder::new(dir)
        .hidden(false)
        .git_ignore(true)
        .git_exclude(true)
        .require_git(false)
        .filter_entry(|e| !e.file_name().to_str().is_some_and(is_reserved))
        .sort_by_file_path(|a, b| a.cmp(b))
        .build();
    for entry in walker {
        let Ok(entry) = entry else { continue };
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        let Some(path) = rel_path(dir, entry.path()) else {
            continue;
        };
        let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
        if len > MAX_FILE_BYTES {
            skipped.too_large.push(path);
            continue;
        }
        let bytes = match std::fs::read(entry.path()) {
            Ok(b) => b,
            // Gone between the listing and the read (a build cleaning up): not there to share.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(ScanError::Io { path, source }),
        };
        match String::from_utf8(bytes) {
            Ok(text) if !text.contains('\0') => {
                total += text.len() as u64;
                limits.check(Transfer::Share, files.len() + 1, total)?;
                files.push(LocalFile { path, text });
            }
            _ => skipped.binary.push(path),
        }
    }
    Ok((files, skipped))
}

/// Whether bytes look like text mesh can share.
pub fn is_text(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|s| !s.contains('\0'))
}

/// Whether bytes are text cut off inside a character (read while a file was being written),
/// as opposed to binary: valid UTF-8 without NUL up to an incomplete sequence at the end.
pub fn is_cut_text(bytes: &[u8]) -> bool {
    match std::str::from_utf8(bytes) {
        Ok(_) => false,
        Err(e) => e.error_len().is_none() && !bytes[..e.valid_up_to()].contains(&0),
    }
}

/// The room path of `abs` inside `root`, if it is inside.
pub fn rel_path(root: &Path, abs: &Path) -> Option<String> {
    let rel = abs.strip_prefix(root).ok()?;
    let mut parts = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_str()?.to_string()),
            _ => return None,
        }
    }
    if parts.is_empty() || parts.iter().any(|p| is_reserved(p)) {
        return None;
    }
    Some(parts.join("/"))
}

/// Whether a path segment names a folder mesh never syncs: `.git` and `.mesh`, in any case
/// (on case-insensitive disks `.GIT/config` is `.git/config`).
fn is_reserved(segment: &str) -> bool {
    segment.eq_ignore_ascii_case(".git") || segment.eq_ignore_ascii_case(MESH_DIR)
}

/// Why a room path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsafe path in the room: {0:?}")]
pub struct UnsafePath(pub String);

/// Where a room path lives under `root`. Refuses absolute paths, `..`, empty or odd segments,
/// and paths that would pass through a symbolic link out of the folder.
pub fn safe_join(root: &Path, path: &str) -> Result<PathBuf, UnsafePath> {
    let bad = || UnsafePath(path.to_string());
    if path.is_empty() || path.len() > 4096 || path.starts_with('/') || path.contains('\\') || path.contains('\0') {
        return Err(bad());
    }
    let mut out = root.to_path_buf();
    for seg in path.split('/') {
        if seg.is_empty() || seg == "." || seg == ".." || is_reserved(seg) || seg.contains(':') {
            return Err(bad());
        }
        out.push(seg);
        // An existing symlink on the way could lead outside the folder.
        if std::fs::symlink_metadata(&out).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(bad());
        }
    }
    Ok(out)
}

/// Writes `text` to `path` atomically (temp file + rename), creating parent folders.
pub fn write_file(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = path.with_file_name(format!(".{name}.mesh-tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_honours_gitignore_and_skips_binaries() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join(".gitignore"), "target/\n*.log\n").unwrap();
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::create_dir_all(root.join("target")).unwrap();
        std::fs::write(root.join("src/main.rs"), "fn main() {}\n").unwrap();
        std::fs::write(root.join("target/out"), "x").unwrap();
        std::fs::write(root.join("debug.log"), "x").unwrap();
        std::fs::write(root.join("image.png"), [0x89, b'P', b'N', b'G', 0, 1, 2]).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        std::fs::write(root.join(".git/HEAD"), "ref").unwrap();
        let (files, skipped) = scan(root, &FolderLimits::default()).unwrap();
        let paths: Vec<_> = files.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, [".gitignore", "src/main.rs"]);
        assert_eq!(skipped.binary, ["image.png"]);
    }

    #[test]
    fn room_paths_cannot_escape_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        assert_eq!(safe_join(root, "src/a.rs").unwrap(), root.join("src/a.rs"));
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a//b",
            "./a",
            ".mesh/session",
            "a\\b",
            "C:/x",
            ".git/config",
            ".GIT/config",
            ".Mesh/session",
            "src/.Git/hooks/pre-commit",
        ] {
            assert!(safe_join(root, bad).is_err(), "{bad}");
        }
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/", root.join("link")).unwrap();
            assert!(safe_join(root, "link/etc/passwd").is_err());
        }
        assert_eq!(rel_path(root, &root.join(".GIT/config")), None);
        assert_eq!(rel_path(root, &root.join("sub/.git/HEAD")), None);
        assert_eq!(rel_path(root, &root.join("src/a.rs")).as_deref(), Some("src/a.rs"));
    }

    #[test]
    fn a_scan_over_a_limit_is_refused_naming_the_limit_and_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        for i in 0..4 {
            std::fs::write(dir.path().join(format!("f{i}.txt")), "0123456789").unwrap();
        }
        std::fs::write(dir.path().join("blob.bin"), [0u8; 64]).unwrap();
        let fits = FolderLimits {
            max_files: 4,
            max_bytes: 40,
        };
        let (files, skipped) = scan(dir.path(), &fits).unwrap();
        assert_eq!(files.len(), 4, "binaries count toward neither limit");
        assert_eq!(skipped.binary, ["blob.bin"]);

        let few = FolderLimits { max_files: 3, ..fits };
        let err = scan(dir.path(), &few).unwrap_err().to_string();
        assert!(
            err.contains("more than 3 text files") && err.contains("max_folder_files"),
            "{err}"
        );
        assert!(
            err.contains(".gitignore") && err.contains("MESH_MAX_FOLDER_FILES"),
            "{err}"
        );

        let small = FolderLimits { max_bytes: 39, ..fits };
        let err = scan(dir.path(), &small).unwrap_err().to_string();
        assert!(
            err.contains("more than 39 bytes") && err.contains("--max-folder-bytes"),
            "{err}"
        );
    }

    #[test]
    fn text_cut_inside_a_character_is_told_from_binary() {
        let text = "abc 漢".as_bytes();
        assert!(is_cut_text(&text[..text.len() - 1]));
        assert!(!is_cut_text(text), "whole text is not cut");
        assert!(!is_cut_text(&[0xff, b'a']), "invalid in the middle is binary");
        assert!(!is_cut_text(&[0, 0xe6]), "NUL is binary");
    }

    #[test]
    fn a_join_over_a_limit_says_nothing_was_written() {
        let limits = FolderLimits {
            max_files: 10,
            max_bytes: 3 * 1024 * 1024,
        };
        assert!(limits.check(Transfer::Join, 10, 3 * 1024 * 1024).is_ok());
        let err = limits.check(Transfer::Join, 11, 0).unwrap_err().to_string();
        assert!(
            err.starts_with("not joined") && err.contains("nothing was written"),
            "{err}"
        );
        let err = limits
            .check(Transfer::Join, 1, 3 * 1024 * 1024 + 1)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("more than 3 MiB of text") && err.contains("MESH_MAX_FOLDER_BYTES"),
            "{err}"
        );
    }
}
