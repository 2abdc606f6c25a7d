//! Open documents: attach to the room, local changes, edit batches to the editor, hash checks.

use std::time::{Duration, Instant};

use mesh_protocol::doc as shape;
use sha2::{Digest, Sha256};
use tower_lsp_server::lsp_types::Range;
use yrs::{TextPrelim, Transact};

use super::*;
use crate::lsp_ext::*;
use crate::sync::{ChangeKind, DocSync};
use crate::workspace;

/// A document is compared with the editor's text this long after its last change.
pub(super) const HASH_CHECK_AFTER: Duration = Duration::from_millis(1500);

/// An edit batch the editor has not echoed after this long is given up on, and the
/// editor's text is checked.
pub(super) const BATCH_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) struct OpenDoc {
    pub(super) sync: DocSync,
    /// Room path, when the document is inside the shared folder.
    pub(super) path: Option<String>,
    pub(super) last_change: Instant,
    pub(super) hash_checked: bool,
    pub(super) hash_pending: bool,
    pub(super) last_cursors: Option<Vec<RemoteCursor>>,
}

pub(super) fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl Session {
    pub(super) fn on_open(&mut self, uri: String, version: i32, text: String) {
        let mut path = self.room_path(&uri);
        if path.is_some() && (text.len() as u64 > workspace::MAX_FILE_BYTES || text.contains('\0')) {
            let why = if text.contains('\0') {
                "it is not text"
            } else {
                "it is larger than 4 MiB"
            };
            self.tell("info", format!("{uri} is not shared: {why}"));
            path = None;
        }
        if let Some(p) = &path {
            // The editor owns this file now; the disk follows its saves.
            self.disk.remove(p);
        }
        let doc = OpenDoc {
            sync: DocSync::new(version, &text),
            path,
            last_change: Instant::now(),
            hash_checked: false,
            hash_pending: false,
            last_cursors: None,
        };
        self.docs.insert(uri.clone(), doc);
        self.attach(&uri);
    }

    /// Ties an open document to the room: the room's text wins when the file exists there;
    /// otherwise the editor's text creates it.
    pub(super) fn attach(&mut self, uri: &str) {
        let Some(room) = self.room.as_ref().filter(|r| r.synced) else {
            return;
        };
        let Some(doc) = self.docs.get(uri) else { return };
        let Some(path) = doc.path.clone() else { return };
        let files = room.doc.get_or_insert_map(shape::FILES);
        let exists = matches!(files.get(&room.doc.transact(), path.as_str()), Some(yrs::Out::YText(_)));
        if !exists {
            if !self.can_write() {
                return;
            }
            let text = doc.sync.shadow().text();
            let mut txn = room.doc.transact_mut();
            files.insert(&mut txn, path.as_str(), TextPrelim::new(text.as_str()));
            tracing::info!(%path, "created in the room from the editor");
        }
        self.flush_doc(uri);
    }

    pub(super) fn on_change(&mut self, uri: String, version: i32, changes: Vec<(Option<Range>, String)>) {
        let enc = self.enc;
        let mut flush = !self.can_write();
        let path = self.docs.get(&uri).and_then(|d| d.path.clone());
        let in_room = self.room.as_ref().is_some_and(|r| r.synced);
        let room_text = match (&path, in_room) {
            (Some(p), true) => self.room_text(p),
            _ => None,
        };
        let writable = self.can_write();
        let Some(doc) = self.docs.get_mut(&uri) else {
            tracing::warn!(%uri, "change to a document that was never opened; ignored");
            return;
        };
        doc.last_change = Instant::now();
        doc.hash_checked = false;
        let Some(room_text) = room_text else {
            // Not in a room: just follow the editor.
            let _ = doc
                .sync
                .editor_changed(version, changes, enc, &doc.sync.shadow().text());
            return;
        };
        let size: usize = changes.iter().map(|(_, t)| t.len()).sum();
        if size as u64 > workspace::MAX_FILE_BYTES {
            // Too big to share in one go: refuse it, and bring the buffer back to the room's
            // text so the two never silently diverge. The user can undo the revert.
            let _ = doc.sync.editor_changed(version, changes, enc, &room_text);
            self.tell(
                "error",
                format!(
                    "a change of {} MiB is too large to share (limit 4 MiB); the buffer was reset to the shared text",
                    size / (1024 * 1024)
                ),
            );
            self.next_batch += 1;
            let id = self.next_batch;
            if let Some(doc) = self.docs.get_mut(&uri) {
                let batch = doc.sync.full_batch(&room_text, enc, id);
                let _ = self.out.send(EditorOut::ApplyEdit { uri, batch });
            }
            return;
        }
        match doc.sync.editor_changed(version, changes, enc, &room_text) {
            // Room changes that arrived while the batch was in flight go out now.
            ChangeKind::Echo => flush = true,
            ChangeKind::PartialEcho => {}
            ChangeKind::OutOfOrder => {
                tracing::error!(%uri, version, "didChange out of order; checking the buffer");
                let _ = self.out.send(EditorOut::DocumentHash { uri: uri.clone() });
            }
            ChangeKind::Local(ops) => {
                if !writable {
                    doc.hash_checked = false;
                    self.tell(
                        "warning",
                        "you joined as a reader: your edits stay local and will be replaced by the room's text",
                    );
                } else if let (Some(path), Some(room)) = (path, self.room.as_ref()) {
                    apply_ops(&room.doc, &path, ops);
                }
            }
        }
        // A reader's buffer goes back to the room's text; an echo lets the next batch go.
        if flush {
            self.flush_doc(&uri);
        }
    }

    /// Sends the next edit batch of a document, if the room has changes the editor lacks.
    pub(super) fn flush_doc(&mut self, uri: &str) {
        let enc = self.enc;
        // One batch at a time: while one is in flight there is nothing to compute.
        let Some(path) = self
            .docs
            .get(uri)
            .filter(|d| !d.sync.has_inflight())
            .and_then(|d| d.path.clone())
        else {
            return;
        };
        let Some(room_text) = self.room_text(&path) else { return };
        self.next_batch += 1;
        let id = self.next_batch;
        let Some(doc) = self.docs.get_mut(uri) else { return };
        if let Some(batch) = doc.sync.next_batch(&room_text, enc, id) {
            doc.hash_checked = false;
            doc.last_change = Instant::now();
            let _ = self.out.send(EditorOut::ApplyEdit {
                uri: uri.to_string(),
                batch,
            });
        }
    }

    pub(super) fn on_hash(&mut self, uri: String, result: Option<DocumentHashResult>) {
        let enc = self.enc;
        let path = self.docs.get(&uri).and_then(|d| d.path.clone());
        let room_text = path.as_deref().and_then(|p| self.room_text(p));
        self.next_batch += 1;
        let id = self.next_batch;
        let Some(doc) = self.docs.get_mut(&uri) else { return };
        doc.hash_pending = false;
        let Some(result) = result else { return };
        if result.version != doc.sync.version || doc.sync.has_inflight() {
            // The buffer moved on meanwhile: check again later.
            doc.hash_checked = false;
            return;
        }
        doc.hash_checked = true;
        if result.sha256 == sha256_hex(&doc.sync.shadow().text()) {
            // The buffer is what we believe; send what the room has that it lacks (after a
            // batch was given up on, nothing else would).
            self.flush_doc(&uri);
            return;
        }
        // The editor's buffer is not what we believe it is. Repair it from the room.
        tracing::error!(%uri, version = result.version, "DESYNC: the editor's buffer differs from the proxy's shadow; resyncing from the room");
        crate::DESYNCS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Some(room_text) = room_text else { return };
        let batch = doc.sync.full_batch(&room_text, enc, id);
        let _ = self.out.send(EditorOut::ApplyEdit {
            uri: uri.clone(),
            batch,
        });
        self.tell(
            "warning",
            format!(
                "{}: the buffer had drifted from the room and was resynced",
                path.unwrap_or(uri)
            ),
        );
    }

    pub(super) fn on_tick(&mut self) {
        let now = Instant::now();
        self.expire_run_request(now);
        let mut ask = Vec::new();
        let mut expired = Vec::new();
        for (uri, d) in &mut self.docs {
            if d.path.is_none() || !self.room.as_ref().is_some_and(|r| r.synced) {
                continue;
            }
            if d.sync.inflight_age().is_some_and(|a| a > BATCH_TIMEOUT) {
                expired.push(uri.clone());
                continue;
            }
            if !d.sync.has_inflight()
                && !d.hash_checked
                && !d.hash_pending
                && now.duration_since(d.last_change) > HASH_CHECK_AFTER
            {
                d.hash_pending = true;
                ask.push(uri.clone());
            }
        }
        for uri in expired {
            tracing::warn!(%uri, "the editor never echoed an edit batch; checking its buffer");
            if let Some(d) = self.docs.get_mut(&uri) {
                d.sync.abandon_inflight();
                d.hash_pending = true;
            }
            let _ = self.out.send(EditorOut::DocumentHash { uri });
        }
        for uri in ask {
            let _ = self.out.send(EditorOut::DocumentHash { uri });
        }
    }

    // ----- requests -----------------------------------------------------------------------
}
