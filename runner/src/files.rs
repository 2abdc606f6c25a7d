//! The files of a job: validated before anything starts, then packed into the tar archive
//! that is uploaded into the container.
//!
//! A job's files are plain `(path, bytes)` pairs, so the archive this module writes holds
//! only directories and regular files with fixed owners and modes: there is no way to put a
//! symlink, a device or a set-uid file into a sandbox through it.

use std::collections::BTreeSet;

use bytes::Bytes;

use crate::{Error, Result};

/// Most files one job may carry (a project is sent whole, but not a `node_modules`).
pub const MAX_FILES: usize = 256;
/// Largest single file: source files, not data sets.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;
/// Largest job: well under the work dir's tmpfs, which also holds build output.
pub const MAX_TOTAL_BYTES: usize = 16 * 1024 * 1024;
/// Longest path, and longest path component (what Linux file systems accept).
pub const MAX_PATH_BYTES: usize = 1024;
const MAX_COMPONENT_BYTES: usize = 255;
/// Deepest nesting of directories.
pub const MAX_DEPTH: usize = 16;

/// One file of a job, relative to the work dir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFile {
    /// Relative path with `/` separators, e.g. `src/util.py`.
    pub path: String,
    /// The file's bytes.
    pub contents: Bytes,
}

impl JobFile {
    /// A file at `path` holding `contents`.
    pub fn new(path: impl Into<String>, contents: impl Into<Bytes>) -> Self {
        Self {
            path: path.into(),
            contents: contents.into(),
        }
    }
}

/// Checks one relative path; the error says what is wrong with it.
pub(crate) fn check_path(path: &str) -> std::result::Result<(), String> {
    if path.is_empty() {
        return Err("the path is empty".into());
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(format!("the path is longer than {MAX_PATH_BYTES} bytes"));
    }
    if path.starts_with('/') {
        return Err("absolute paths are not allowed".into());
    }
    if path.contains('\\') {
        return Err("backslashes are not allowed; use '/'".into());
    }
    if path.chars().any(char::is_control) {
        return Err("control characters are not allowed".into());
    }
    let components: Vec<&str> = path.split('/').collect();
    if components.len() > MAX_DEPTH {
        return Err(format!("more than {MAX_DEPTH} levels deep"));
    }
    for c in components {
        match c {
            "" => return Err("empty path component (a '//' or a trailing '/')".into()),
            "." | ".." => return Err(format!("'{c}' components are not allowed")),
            _ if c.len() > MAX_COMPONENT_BYTES => {
                return Err(format!("a component is longer than {MAX_COMPONENT_BYTES} bytes"))
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks a job's files: every path, the counts and sizes, duplicates, and a file that is
/// also used as a directory. Runs before any container exists.
pub fn validate(files: &[JobFile]) -> Result<()> {
    if files.len() > MAX_FILES {
        return Err(Error::TooManyFiles {
            count: files.len(),
            max: MAX_FILES,
        });
    }
    let mut total = 0usize;
    let mut seen = BTreeSet::new();
    for f in files {
        check_path(&f.path).map_err(|problem| Error::BadFile {
            path: f.path.clone(),
            problem,
        })?;
        if f.contents.len() > MAX_FILE_BYTES {
            return Err(Error::BadFile {
                path: f.path.clone(),
                problem: format!(
                    "{} bytes is over the {MAX_FILE_BYTES}-byte limit per file",
                    f.contents.len()
                ),
            });
        }
        total += f.contents.len();
        if !seen.insert(f.path.as_str()) {
            return Err(Error::BadFile {
                path: f.path.clone(),
                problem: "listed twice".into(),
            });
        }
    }
    if total > MAX_TOTAL_BYTES {
        return Err(Error::JobTooLarge {
            bytes: total,
            max: MAX_TOTAL_BYTES,
        });
    }
    for f in files {
        for (i, _) in f.path.match_indices('/') {
            let dir = &f.path[..i];
            if seen.contains(dir) {
                return Err(Error::BadFile {
                    path: dir.to_owned(),
                    problem: format!("is a file but {:?} uses it as a directory", f.path),
                });
            }
        }
    }
    Ok(())
}

/// Packs validated files into a tar archive: parent directories first (0755), then the
/// files (0644), all owned by root, so the sandbox user can read but not change the originals.
pub fn tar_archive(files: &[JobFile]) -> Result<Vec<u8>> {
    let mut dirs = BTreeSet::new();
    for f in files {
        for (i, _) in f.path.match_indices('/') {
            dirs.insert(&f.path[..i]);
        }
    }
    let mut builder = tar::Builder::new(Vec::new());
    let io = |e: std::io::Error| Error::Protocol(format!("building the upload archive: {e}"));
    // BTreeSet order puts "a" before "a/b": every parent precedes its children.
    for dir in dirs {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
        header.set_size(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        builder
            .append_data(&mut header, format!("{dir}/"), std::io::empty())
            .map_err(io)?;
    }
    for f in files {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
        header.set_size(f.contents.len() as u64);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        builder
            .append_data(&mut header, &f.path, f.contents.as_ref())
            .map_err(io)?;
    }
    builder.into_inner().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str) -> JobFile {
        JobFile::new(path, "x")
    }

    #[test]
    fn good_paths_pass() {
        validate(&[file("main.py"), file("src/a b/ü.py"), file(".env"), file("a..b")]).unwrap();
    }

    #[test]
    fn bad_paths_are_refused_with_the_reason() {
        let cases = [
            ("", "empty"),
            ("/etc/passwd", "absolute"),
            ("../x", "'..'"),
            ("a/../../x", "'..'"),
            ("./x", "'.'"),
            ("a//b", "empty path component"),
            ("a/", "empty path component"),
            ("a\\b", "backslash"),
            ("a\nb", "control"),
        ];
        for (path, want) in cases {
            let got = validate(&[file(path)]).unwrap_err().to_string();
            assert!(got.contains(want), "{path:?}: want {want:?} in {got:?}");
        }
        let deep = vec!["d"; MAX_DEPTH + 1].join("/");
        assert!(validate(&[file(&deep)]).is_err());
    }

    #[test]
    fn limits_duplicates_and_file_dir_clashes() {
        assert!(matches!(validate(&[file("a"), file("a")]), Err(Error::BadFile { .. })));
        let err = validate(&[file("a"), file("a/b")]).unwrap_err().to_string();
        assert!(err.contains("uses it as a directory"), "{err}");
        let many: Vec<_> = (0..=MAX_FILES).map(|i| file(&format!("f{i}"))).collect();
        assert!(matches!(validate(&many), Err(Error::TooManyFiles { .. })));
        let big = JobFile::new("big", vec![0u8; MAX_FILE_BYTES + 1]);
        assert!(validate(&[big]).is_err());
        let quarter: Vec<_> = (0..5)
            .map(|i| JobFile::new(format!("q{i}"), vec![0u8; MAX_FILE_BYTES]))
            .collect();
        assert!(matches!(validate(&quarter), Err(Error::JobTooLarge { .. })));
    }

    #[test]
    fn archive_holds_only_dirs_and_regular_files() {
        let tar = tar_archive(&[JobFile::new("src/lib/x.c", "int x;"), JobFile::new("main.c", "")]).unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let entries: Vec<(String, tar::EntryType, u32)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().display().to_string(),
                    e.header().entry_type(),
                    e.header().mode().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            entries,
            vec![
                ("src/".into(), tar::EntryType::Directory, 0o755),
                ("src/lib/".into(), tar::EntryType::Directory, 0o755),
                ("src/lib/x.c".into(), tar::EntryType::Regular, 0o644),
                ("main.c".into(), tar::EntryType::Regular, 0o644),
            ]
        );
    }
}
