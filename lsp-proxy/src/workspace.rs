//! A shared folder on disk: which files go into a room, and writing the room's files back.
//! Paths from the room are untrusted: they are checked before anything touches the disk.

use std::path::{Component, Path, PathBuf};

/// Files larger than this stay out of the room (a 1 MB source file fits easily).
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// At most this many files are shared from one folder.
pub const MAX_FILES: usize = 10_000;

/// At most this many bytes are shared from one folder.
pub const MAX_TOTAL_BYTES: u64 = 64 * 1024 * 1024;

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
    /// Past [`MAX_FILES`] or [`MAX_TOTAL_BYTES`].
    pub over_limit: Vec<String>,
}

/// The text files of `dir`, honouring `.gitignore`, `.ignore` and git's exclude files,
/// skipping `.git`, `.mesh`, binaries and oversized files.
pub fn scan(dir: &Path) -> std::io::Result<(Vec<LocalFile>, Skipped)> {
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
        if files.len() >= MAX_FILES || total + len > MAX_TOTAL_BYTES {
            skipped.over_limit.push(path);
            continue;
        }
        let bytes = std::fs::read(entry.path())?;
        match String::from_utf8(bytes) {
            Ok(text) if !text.contains('\0') => {
                total += len;
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
        let (files, skipped) = scan(root).unwrap();
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
}
