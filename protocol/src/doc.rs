//! The shape of a room's shared document: the names of its root types. Every client that
//! wants to interoperate (the proxy, a browser page, a bot) uses these names.
//!
//! - `files`: `Y.Map<path, Y.Text>` — the project's text files, keyed by a relative path with
//!   `/` separators. Offsets in the texts are UTF-16 code units.
//! - `chat`: `Y.Array<{id, author, conn_id, text, ts}>` — the newest
//!   [`crate::CHAT_HISTORY_LEN`] chat messages; the server appends and trims it.
//! - `meta`: `Y.Map` — room metadata (name, language).
//! - `comments`, `breakpoints`: `Y.Map`s reserved for review comments and shared breakpoints.
//!
//! Awareness states of mesh clients are JSON objects of the form
//! `{"user": {"name", "color"}, "cursor": {"path", "anchor", "head"}}` where `anchor`/`head`
//! are UTF-16 offsets into the file's text.

/// Root map of file texts.
pub const FILES: &str = "files";
/// Root array of chat messages.
pub const CHAT: &str = "chat";
/// Root map of room metadata.
pub const META: &str = "meta";
/// Root map of review comments.
pub const COMMENTS: &str = "comments";
/// Root map of shared breakpoints.
pub const BREAKPOINTS: &str = "breakpoints";

/// The longest room path a client creates, in characters: far beyond real projects, well
/// inside every disk (the browser's `MAX_PATH_CHARS`).
pub const MAX_PATH_CHARS: usize = 1024;

/// Why `path` cannot be a new room path (the same rules as the browser's `pathProblem`), or
/// `None` when it can: relative, `/`-separated, no empty, `.` or `..` parts, no control
/// characters, and no `.git` or `.mesh` folders (never shared).
pub fn path_problem(path: &str) -> Option<String> {
    if path.is_empty() {
        return Some("a file needs a name".into());
    }
    if path.chars().count() > MAX_PATH_CHARS {
        return Some(format!("a path may have at most {MAX_PATH_CHARS} characters"));
    }
    if path.starts_with('/') {
        return Some("paths are relative to the project: remove the leading /".into());
    }
    if path.contains('\\') {
        return Some("use / to separate folders".into());
    }
    if path.chars().any(|c| c.is_control()) {
        return Some("a path may not contain control characters".into());
    }
    for seg in path.split('/') {
        if seg.is_empty() {
            return Some("a path may not have empty parts (//) or end with /".into());
        }
        if seg == "." || seg == ".." {
            return Some("a path may not contain . or .. parts".into());
        }
        if seg.eq_ignore_ascii_case(".git") || seg.eq_ignore_ascii_case(".mesh") {
            return Some(format!("{seg} folders are never shared"));
        }
    }
    None
}

/// A new document set up the way every mesh replica must be: offsets in UTF-16 code units
/// (what LSP and Yjs in browsers use), with a random client id.
pub fn new_doc() -> yrs::Doc {
    yrs::Doc::with_options(yrs::Options {
        offset_kind: yrs::OffsetKind::Utf16,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::path_problem;

    #[test]
    fn new_paths_follow_the_browsers_rules() {
        for ok in ["a.py", "src/lib/ü.rs", ".github/x.yml"] {
            assert_eq!(path_problem(ok), None, "{ok}");
        }
        for (bad, why) in [
            ("", "needs a name"),
            ("/etc/passwd", "leading /"),
            ("a\\b", "use /"),
            ("a//b", "empty parts"),
            ("a/", "empty parts"),
            ("../x", ". or .."),
            ("src/./x", ". or .."),
            (".git/config", "never shared"),
            ("x/.MESH/y", "never shared"),
            ("a\nb", "control"),
        ] {
            assert!(
                path_problem(bad).is_some_and(|p| p.contains(why)),
                "{bad:?}: {:?}",
                path_problem(bad)
            );
        }
        assert!(path_problem(&"a".repeat(1025)).is_some());
    }
}
