//! Paths: between the room's paths, the shared folder's files and the editor's `file://`
//! URIs. Pure functions of the folder's root.

use std::path::{Path, PathBuf};

use super::Session;
use crate::workspace;

/// The `file://` URI of room path `path` in the folder `root`.
pub(super) fn file_uri(root: &Path, path: &str) -> String {
    let abs = root.join(path);
    url::Url::from_file_path(&abs)
        .map(|u| u.to_string())
        .unwrap_or_else(|_| format!("file://{}", abs.display()))
}

/// The local path of a `file://` URI; `None` for other schemes.
pub(super) fn uri_to_path(uri: &str) -> Option<PathBuf> {
    url::Url::parse(uri)
        .ok()
        .filter(|u| u.scheme() == "file")
        .and_then(|u| u.to_file_path().ok())
}

/// The room path of `uri` when it is a file inside the folder `root`.
pub(super) fn room_path(root: &Path, uri: &str) -> Option<String> {
    workspace::rel_path(root, &uri_to_path(uri)?)
}

impl Session {
    /// The room path of `uri`, when it is in the shared folder.
    pub(super) fn room_path(&self, uri: &str) -> Option<String> {
        room_path(self.root.as_deref()?, uri)
    }

    /// The `file://` URI of a room path in the shared folder, when there is a folder.
    pub(super) fn local_uri(&self, path: &str) -> Option<String> {
        self.root.as_deref().map(|root| file_uri(root, path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_and_room_paths_map_both_ways_inside_the_folder_only() {
        let root = Path::new("/w/project");
        let uri = file_uri(root, "src/a b.rs");
        assert_eq!(uri, "file:///w/project/src/a%20b.rs");
        assert_eq!(room_path(root, &uri).as_deref(), Some("src/a b.rs"));
        assert_eq!(room_path(root, "file:///w/other/x.rs"), None);
        assert_eq!(room_path(root, "untitled:Untitled-1"), None);
        assert_eq!(room_path(root, "file:///w/project/.git/config"), None);
    }
}
