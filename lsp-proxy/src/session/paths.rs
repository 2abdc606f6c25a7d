//! Paths: room paths, local files and their URIs.

use std::path::{Path, PathBuf};

use super::*;
use crate::workspace;

pub(super) fn file_uri(root: &Path, path: &str) -> String {
    let abs = root.join(path);
    url::Url::from_file_path(&abs)
        .map(|u| u.to_string())
        .unwrap_or_else(|_| format!("file://{}", abs.display()))
}

pub(super) fn uri_to_path(uri: &str) -> Option<PathBuf> {
    url::Url::parse(uri)
        .ok()
        .filter(|u| u.scheme() == "file")
        .and_then(|u| u.to_file_path().ok())
}

impl Session {
    pub(super) fn room_path(&self, uri: &str) -> Option<String> {
        let root = self.root.as_deref()?;
        workspace::rel_path(root, &uri_to_path(uri)?)
    }

    /// The `file://` URI of a room path in the shared folder, when there is a folder.
    pub(super) fn local_uri(&self, path: &str) -> Option<String> {
        self.root.as_deref().map(|root| file_uri(root, path))
    }
}
