//! Disk sync: files of the shared folder that no editor has open.

use std::path::{Path, PathBuf};

use mesh_protocol::doc as shape;
use yrs::{TextPrelim, Transact};

use super::*;
use crate::sync::{ChangeKind, DocSync};
use crate::text::Encoding;
use crate::workspace;

/// Keeping the shared folder's files that no editor has open in step with the room.
impl Session {
    pub(super) fn start_disk_sync(&mut self) {
        let Some(root) = self.root.clone() else { return };
        if self.disk_sync {
            return;
        }
        self.disk_sync = true;
        self.ignore = Some(ignore::gitignore::Gitignore::new(root.join(".gitignore")).0);
        // Every file of the room that no editor has open starts from its text on disk.
        let open: std::collections::HashSet<String> = self.docs.values().filter_map(|d| d.path.clone()).collect();
        if let Some(room) = &self.room {
            for (path, text) in room_files(&room.doc) {
                if open.contains(&path) || self.conflicts.contains(&path) {
                    continue;
                }
                let on_disk = workspace::safe_join(&root, &path)
                    .ok()
                    .and_then(|p| std::fs::read_to_string(p).ok());
                let baseline = on_disk.unwrap_or_default();
                if baseline != text {
                    self.remote_dirty.lock().expect("not poisoned").insert(path.clone());
                }
                self.disk.insert(path, DocSync::new(0, &baseline));
            }
        }
        let events = self.events_tx.clone();
        let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
            if let Ok(ev) = res {
                if matches!(ev.kind, notify::EventKind::Access(_)) {
                    return;
                }
                let _ = events.send(Event::Disk(ev.paths));
            }
        });
        match watcher {
            Ok(mut w) => {
                use notify::Watcher;
                if let Err(e) = w.watch(&root, notify::RecursiveMode::Recursive) {
                    tracing::warn!(error = %e, "cannot watch the folder; changes on disk will not be shared");
                }
                self.watcher = Some(w);
            }
            Err(e) => tracing::warn!(error = %e, "cannot watch the folder; changes on disk will not be shared"),
        }
    }

    pub(super) fn is_open(&self, path: &str) -> bool {
        self.docs.values().any(|d| d.path.as_deref() == Some(path))
    }

    /// One turn of disk sync: remote changes to disk, then disk changes to the room.
    pub(super) fn sync_disk(&mut self, dirty: &std::collections::HashSet<String>) {
        if !self.disk_sync {
            return;
        }
        let Some(root) = self.root.clone() else { return };
        for path in dirty {
            if self.is_open(path) || self.conflicts.contains(path) {
                continue;
            }
            let Ok(abs) = workspace::safe_join(&root, path) else {
                tracing::warn!(%path, "the room has a file with an unsafe path; not written");
                continue;
            };
            match self.room_text(path) {
                Some(text) => {
                    let entry = self.disk.entry(path.clone()).or_insert_with(|| DocSync::new(0, ""));
                    if entry.shadow().eq_str(&text) && abs.exists() {
                        continue;
                    }
                    match workspace::write_file(&abs, &text) {
                        Ok(()) => entry.reset(entry.version + 1, &text),
                        Err(e) => tracing::warn!(%path, error = %e, "cannot write"),
                    }
                }
                None => {
                    // Deleted in the room: delete here too, unless it changed locally since.
                    if let Some(entry) = self.disk.remove(path) {
                        match std::fs::read_to_string(&abs) {
                            Ok(t) if entry.shadow().eq_str(&t) => {
                                let _ = std::fs::remove_file(&abs);
                            }
                            Ok(_) => tracing::warn!(%path, "deleted in the room but changed here; kept"),
                            Err(_) => {}
                        }
                    }
                }
            }
        }
        let paths: Vec<PathBuf> = std::mem::take(&mut self.disk_events).into_iter().collect();
        for abs in paths {
            if abs.is_dir() {
                if let Ok((files, _)) = workspace::scan(&abs) {
                    for f in files {
                        self.disk_changed(&root, &abs.join(&f.path));
                    }
                }
            } else {
                self.disk_changed(&root, &abs);
            }
        }
    }

    pub(super) fn disk_changed(&mut self, root: &Path, abs: &Path) {
        let Some(path) = workspace::rel_path(root, abs) else {
            return;
        };
        if path.ends_with(".mesh-tmp") || self.is_open(&path) || self.conflicts.contains(&path) || !self.can_write() {
            return;
        }
        if self
            .ignore
            .as_ref()
            .is_some_and(|g| g.matched_path_or_any_parents(abs, false).is_ignore())
        {
            return;
        }
        let Some(room) = &self.room else { return };
        let files = room.doc.get_or_insert_map(shape::FILES);
        let content = match std::fs::metadata(abs) {
            Ok(m) if m.len() > workspace::MAX_FILE_BYTES => return,
            Ok(_) => std::fs::read(abs).ok(),
            Err(_) => None,
        };
        match content {
            None => {
                // Deleted (or renamed away) on disk.
                if self.disk.remove(&path).is_some() {
                    let mut txn = room.doc.transact_mut();
                    files.remove(&mut txn, path.as_str());
                    tracing::info!(%path, "deleted on disk; removed from the room");
                }
            }
            Some(bytes) if workspace::is_text(&bytes) => {
                let text = String::from_utf8(bytes).expect("checked by is_text");
                let room_text = self.room_text(&path);
                match (self.disk.get_mut(&path), room_text) {
                    (Some(entry), Some(room_text)) => {
                        if entry.shadow().eq_str(&text) {
                            return; // Our own write, or no change.
                        }
                        let base: Vec<char> = entry.shadow().text().chars().collect();
                        let new: Vec<char> = text.chars().collect();
                        let changes = crate::sync::diff_changes(entry.shadow(), &base, &new);
                        let version = entry.version + 1;
                        if let ChangeKind::Local(ops) =
                            entry.editor_changed(version, changes, Encoding::Utf16, &room_text)
                        {
                            let room = self.room.as_ref().expect("checked above");
                            apply_ops(&room.doc, &path, ops);
                        }
                    }
                    (None, None) => {
                        // A new file.
                        let mut txn = room.doc.transact_mut();
                        files.insert(&mut txn, path.as_str(), TextPrelim::new(text.as_str()));
                        drop(txn);
                        self.disk.insert(path.clone(), DocSync::new(0, &text));
                        tracing::info!(%path, "created on disk; added to the room");
                    }
                    (None, Some(room_text)) => {
                        if room_text == text {
                            self.disk.insert(path, DocSync::new(0, &text));
                        }
                    }
                    (Some(_), None) => {
                        // Deleted in the room meanwhile: the room's deletion wins on the next turn.
                    }
                }
            }
            Some(_) => {}
        }
    }
}
