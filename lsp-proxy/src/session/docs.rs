//! Open documents: attach to the room (a three-way merge of the buffer, the room and the last
//! agreed text), local changes into room operations, edit batches to the editor, hash checks. Sans-IO: the room is read through [`RoomRead`], the time is
//! passed in, and everything to do comes back as [`Effect`]s (room operations, requests to
//! the editor, messages for the user) that the session's loop carries out in order.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use tower_lsp_server::lsp_types::Range;

use super::{conflict, tell, EditorOut, Effect, RoomRead};
use crate::lsp_ext::DocumentHashResult;
use crate::merge;
use crate::sync::{ChangeKind, DocSync, RoomTextChange};
use crate::text::Encoding;
use crate::workspace;

/// A document is compared with the editor's text this long after its last change.
const HASH_CHECK_AFTER: Duration = Duration::from_millis(1500);

/// An edit batch the editor accepted (`applied: true`) but whose echo has not come this long
/// after is given up on, and the editor's text is checked. It counts from the answer, not
/// from sending: a batch given up on while its echo is still on its way (in a busy editor, or
/// in our own inbox) turns that echo into a local edit, which duplicates the batch's text.
const BATCH_TIMEOUT: Duration = Duration::from_secs(5);

/// An edit batch the editor has not even answered this long after it was sent is given up
/// on (an editor that never answers `workspace/applyEdit`). Long, for the reason above: a
/// busy editor answers late, and nothing is lost while we wait (room changes keep
/// collecting for the next batch).
const UNANSWERED_BATCH_TIMEOUT: Duration = Duration::from_secs(30);

/// A document open in the editor.
#[derive(Debug)]
pub(super) struct OpenDoc {
    /// The bridge between the editor's text and the room's.
    pub(super) sync: DocSync,
    /// Room path, when the document is inside the shared folder and in step with the room.
    pub(super) path: Option<String>,
    /// The room path of a document held out of the room because the buffer and the room
    /// changed the same lines: the buffer keeps its text and follows the editor only, until
    /// the conflict is resolved.
    held: Option<String>,
    /// When the editor's text last changed (by the user or by a batch of ours).
    last_change: Instant,
    /// Whether the editor's text was compared with the shadow since that change.
    hash_checked: bool,
    /// Whether a hash request is out.
    hash_pending: bool,
}

/// The documents the editor has open, by URI.
#[derive(Debug)]
pub(super) struct Docs {
    open: HashMap<String, OpenDoc>,
    /// The id of the last edit batch sent to the editor.
    next_batch: u64,
    /// The position encoding negotiated with the editor.
    pub(super) enc: Encoding,
}

impl Default for Docs {
    fn default() -> Self {
        Self {
            open: HashMap::new(),
            next_batch: 0,
            enc: Encoding::Utf16,
        }
    }
}

/// The lowercase hex SHA-256 of `text`: what the editor answers `mesh/documentHash` with.
pub(super) fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

impl Docs {
    /// The open document `uri`.
    pub(super) fn get(&self, uri: &str) -> Option<&OpenDoc> {
        self.open.get(uri)
    }

    /// Every open document, with its URI.
    pub(super) fn iter(&self) -> impl Iterator<Item = (&String, &OpenDoc)> {
        self.open.iter()
    }

    /// The room path of the open document `uri`, if it is shared.
    pub(super) fn path(&self, uri: &str) -> Option<String> {
        self.open.get(uri).and_then(|d| d.path.clone())
    }

    /// Whether an editor has the room path `path` open (in step with the room or held out of
    /// it by a conflict).
    pub(super) fn is_open(&self, path: &str) -> bool {
        self.open
            .values()
            .any(|d| d.path.as_deref() == Some(path) || d.held.as_deref() == Some(path))
    }

    /// The URI of the open document held out of the room at `path` by a conflict.
    pub(super) fn holding(&self, path: &str) -> Option<String> {
        self.open
            .iter()
            .find(|(_, d)| d.held.as_deref() == Some(path))
            .map(|(u, _)| u.clone())
    }

    /// Holds `uri` out of the room: its path is in conflict. The buffer follows the editor
    /// only until [`Docs::resolve`].
    pub(super) fn hold(&mut self, uri: &str) {
        if let Some(d) = self.open.get_mut(uri) {
            if let Some(path) = d.path.take() {
                d.held = Some(path);
                // Held, it sees no room changes: its map is derived again at the resolve.
                d.sync.forget_room();
            }
        }
    }

    /// The URIs of the open documents showing the room paths in `paths`.
    pub(super) fn uris_of(&self, paths: &std::collections::HashSet<String>) -> Vec<String> {
        self.open
            .iter()
            .filter(|(_, d)| d.path.as_ref().is_some_and(|p| paths.contains(p)))
            .map(|(u, _)| u.clone())
            .collect()
    }

    /// The room paths and texts of the shared open documents: the editor's truth, which may
    /// be ahead of the disk.
    pub(super) fn shared_texts(&self) -> HashMap<String, String> {
        self.open
            .values()
            .filter_map(|d| Some((d.path.clone()?, d.sync.shadow().text())))
            .collect()
    }

    /// The editor opened `uri`, which is the room path `path` when it is in the shared folder.
    /// A file that is not text or too large is kept out of the room. Attach it next.
    pub(super) fn open(
        &mut self,
        uri: String,
        version: i32,
        text: String,
        path: Option<String>,
        now: Instant,
    ) -> Vec<Effect> {
        let mut fx = Vec::new();
        let mut path = path;
        if path.is_some() && (text.len() as u64 > workspace::MAX_FILE_BYTES || text.contains('\0')) {
            let why = if text.contains('\0') {
                "it is not text"
            } else {
                "it is larger than 4 MiB"
            };
            fx.push(tell("info", format!("{uri} is not shared: {why}")));
            path = None;
        }
        let doc = OpenDoc {
            sync: DocSync::tracking(version, &text),
            path,
            held: None,
            last_change: now,
            hash_checked: false,
            hash_pending: false,
        };
        self.open.insert(uri, doc);
        fx
    }

    /// The editor closed `uri`; returns its room path, if it was shared.
    pub(super) fn close(&mut self, uri: &str) -> Option<String> {
        self.open.remove(uri).and_then(|d| d.path)
    }

    /// Ties an open document to the room by a three-way merge: the buffer (which may hold
    /// unsaved work, or typing done before the room was reached), the room's text, and as
    /// the base the last text both agreed on: `persisted` (kept under `.mesh/`), else the
    /// file on disk `on_disk` when it equals the room's text. Local text the room has not
    /// seen becomes room operations; the room's changes come back as one versioned batch.
    /// When both changed the same lines, or there is no base and they differ, the buffer
    /// keeps its text, the document is held out of the room and the room's version is kept
    /// beside it as a conflict. A file the room lacks is created from the buffer. `exact` is
    /// the exact map from the buffer's text to the room's when one was kept (the buffer holds
    /// a text the folder and the room agreed on): the batch and any typing before it lands
    /// follow it instead of a diff's guess.
    pub(super) fn attach(
        &mut self,
        uri: &str,
        room: &impl RoomRead,
        persisted: Option<&str>,
        on_disk: Option<&str>,
        exact: Option<crate::pending::Pending>,
    ) -> Vec<Effect> {
        if !room.synced() {
            return Vec::new();
        }
        let Some(doc) = self.open.get(uri) else {
            return Vec::new();
        };
        let Some(path) = doc.path.clone() else {
            return Vec::new();
        };
        let Some(room_text) = room.text(&path) else {
            if !room.writable() {
                return Vec::new();
            }
            let text = doc.sync.shadow().text();
            tracing::info!(%path, "created in the room from the editor");
            // The editor's batch (if any) is computed once the file is in the room.
            return vec![Effect::Create { path, text }, Effect::Flush { uri: uri.to_string() }];
        };
        let local = doc.sync.shadow().text();
        let base = merge::base(persisted, on_disk, &room_text);
        let merged = merge::merge3(base, &local, &room_text).filter(|m| *m == room_text || room.writable());
        let Some(merged) = merged else {
            // A reader's local text cannot enter the room either: kept, as a conflict.
            tracing::warn!(%path, "the buffer and the room changed the same lines; kept the buffer, the room's version beside it");
            self.hold(uri);
            return conflict(&path, room_text);
        };
        let mut fx = Vec::new();
        if let Some(map) = exact.filter(|_| merged == room_text) {
            if let Some(doc) = self.open.get_mut(uri) {
                doc.sync.adopt_map(map);
            }
        }
        if merged != room_text {
            tracing::info!(%path, "merged the buffer's unshared text into the room on attach");
            fx.push(Effect::Edit {
                path: path.clone(),
                ops: merge::ops_between(&room_text, &merged),
            });
        }
        // What the file on disk and the room agree on is the base of the next merge: the
        // merged text once the disk holds it, else the disk copy the room still had (a
        // buffer's unsaved work later discarded then merges against it, not against nothing).
        let agreed = if on_disk == Some(merged.as_str()) {
            Some(merged)
        } else {
            on_disk
                .filter(|d| persisted.is_none() && *d == room_text)
                .map(String::from)
        };
        if let Some(text) = agreed.filter(|a| persisted != Some(a.as_str())) {
            fx.push(Effect::Agreed { path, text });
        }
        // The buffer gets what the room has that it lacks, computed once the edit is in.
        fx.push(Effect::Flush { uri: uri.to_string() });
        fx
    }

    /// The buffer of `uri` follows the room from now on whatever it holds (we became a
    /// reader and the replica was built again): its map to the room is derived again and the
    /// next batch brings it to the room's text.
    pub(super) fn follow_room(&mut self, uri: &str, room: &impl RoomRead) -> Vec<Effect> {
        let Some(doc) = self.open.get_mut(uri) else {
            return Vec::new();
        };
        if doc.held.is_some() {
            // Held for a conflict: the room's version is beside it already.
            return Vec::new();
        }
        doc.sync.forget_room();
        doc.hash_checked = false;
        self.flush(uri, room)
    }

    /// The conflict of the held document `uri` was resolved: the buffer is merged again with
    /// the room's version at the time of the conflict (`snapshot`) as the base, so the
    /// buffer's text wins where it still differs from that version and the room's later
    /// changes are kept. Both changing the same lines again is a new conflict.
    pub(super) fn resolve(&mut self, uri: &str, snapshot: &str, room: &impl RoomRead) -> Vec<Effect> {
        if let Some(d) = self.open.get_mut(uri) {
            if let Some(path) = d.held.take() {
                d.path = Some(path);
            }
        }
        self.attach(uri, room, Some(snapshot), None, None)
    }

    /// The editor changed `uri`: a local edit becomes room operations, an echo of our batch
    /// lets the next one go, a reader's edit is undone from the room.
    pub(super) fn change(
        &mut self,
        uri: &str,
        version: i32,
        changes: Vec<(Option<Range>, String)>,
        room: &impl RoomRead,
        now: Instant,
    ) -> Vec<Effect> {
        let enc = self.enc;
        let writable = room.writable();
        let mut flush = !writable;
        let Some(doc) = self.open.get_mut(uri) else {
            tracing::warn!(%uri, "change to a document that was never opened; ignored");
            return Vec::new();
        };
        let path = doc.path.clone();
        let room_text = match &path {
            Some(p) if room.synced() => room.text(p),
            _ => None,
        };
        doc.last_change = now;
        doc.hash_checked = false;
        let Some(room_text) = room_text else {
            // Not in a room: just follow the editor; the map to the room is derived when
            // there is one.
            let _ = doc
                .sync
                .editor_changed(version, changes, enc, &doc.sync.shadow().text());
            doc.sync.forget_room();
            return Vec::new();
        };
        let mut fx = Vec::new();
        let size: usize = changes.iter().map(|(_, t)| t.len()).sum();
        if size as u64 > workspace::MAX_FILE_BYTES {
            // Too big to share in one go: refuse it, and bring the buffer back to the room's
            // text so the two never silently diverge. The user can undo the revert.
            let _ = doc.sync.editor_changed(version, changes, enc, &room_text);
            doc.sync.forget_room();
            fx.push(tell(
                "error",
                format!(
                    "a change of {} MiB is too large to share (limit 4 MiB); the buffer was reset to the shared text",
                    size / (1024 * 1024)
                ),
            ));
            self.next_batch += 1;
            let batch = doc.sync.full_batch(&room_text, enc, self.next_batch);
            fx.push(Effect::Editor(EditorOut::ApplyEdit {
                uri: uri.to_string(),
                batch,
            }));
            return fx;
        }
        match doc.sync.editor_changed(version, changes, enc, &room_text) {
            // Room changes that arrived while the batch was in flight go out now.
            ChangeKind::Echo => flush = true,
            ChangeKind::PartialEcho => {}
            ChangeKind::OutOfOrder => {
                tracing::error!(%uri, version, "didChange out of order; checking the buffer");
                fx.push(Effect::Editor(EditorOut::DocumentHash { uri: uri.to_string() }));
            }
            ChangeKind::Local(ops) => {
                if !writable {
                    // Not applied to the room: the map must not count it.
                    doc.sync.forget_room();
                    doc.hash_checked = false;
                    fx.push(tell(
                        "warning",
                        "you are a reader: your edits are not shared and the buffer goes back to the room's text; ask the host for write access",
                    ));
                } else if let Some(path) = path {
                    fx.push(Effect::EditorEdit {
                        uri: uri.to_string(),
                        path,
                        ops,
                    });
                }
            }
        }
        // A reader's buffer goes back to the room's text; an echo lets the next batch go.
        // Nothing above changed the room, so its text is still `room_text`.
        if flush {
            fx.extend(self.flush(uri, room));
        }
        fx
    }

    /// The room's file `path` changed (`from` is the open document whose own edit it was):
    /// every other open document showing it takes the change into its map.
    pub(super) fn room_changed(&mut self, path: &str, from: Option<&str>, change: &RoomTextChange) {
        for (uri, doc) in self.open.iter_mut() {
            if doc.path.as_deref() == Some(path) && from != Some(uri.as_str()) {
                doc.sync.room_changed(change);
            }
        }
    }

    /// The next edit batch of a document, if the room has changes the editor lacks.
    pub(super) fn flush(&mut self, uri: &str, room: &impl RoomRead) -> Vec<Effect> {
        let enc = self.enc;
        // One batch at a time: while one is in flight there is nothing to compute.
        let Some(path) = self
            .open
            .get(uri)
            .filter(|d| !d.sync.has_inflight())
            .and_then(|d| d.path.clone())
        else {
            return Vec::new();
        };
        let Some(room_text) = room.text(&path) else {
            return Vec::new();
        };
        self.next_batch += 1;
        let id = self.next_batch;
        let Some(doc) = self.open.get_mut(uri) else {
            return Vec::new();
        };
        let Some(batch) = doc.sync.next_batch(&room_text, enc, id) else {
            return Vec::new();
        };
        doc.hash_checked = false;
        doc.last_change = Instant::now();
        vec![Effect::Editor(EditorOut::ApplyEdit {
            uri: uri.to_string(),
            batch,
        })]
    }

    /// The editor answered edit batch `id` at `now`; a refused batch is re-based and sent
    /// again.
    pub(super) fn answered(
        &mut self,
        uri: &str,
        id: u64,
        applied: bool,
        room: &impl RoomRead,
        now: Instant,
    ) -> Vec<Effect> {
        if let Some(d) = self.open.get_mut(uri) {
            if d.sync.batch_answered(id, applied, now) {
                tracing::debug!(%uri, id, "batch refused (stale version); re-basing");
            }
        }
        self.flush(uri, room)
    }

    /// The editor answered a hash request: a buffer that is not what we believe is repaired
    /// from the room, loudly.
    pub(super) fn hash_answered(
        &mut self,
        uri: &str,
        result: Option<DocumentHashResult>,
        room: &impl RoomRead,
    ) -> Vec<Effect> {
        let enc = self.enc;
        self.next_batch += 1;
        let id = self.next_batch;
        let Some(doc) = self.open.get_mut(uri) else {
            return Vec::new();
        };
        doc.hash_pending = false;
        let Some(result) = result else { return Vec::new() };
        if result.version != doc.sync.version || doc.sync.has_inflight() {
            // The buffer moved on meanwhile: check again later.
            doc.hash_checked = false;
            return Vec::new();
        }
        doc.hash_checked = true;
        if result.sha256 == sha256_hex(&doc.sync.shadow().text()) {
            // The buffer is what we believe; send what the room has that it lacks (after a
            // batch was given up on, nothing else would).
            return self.flush(uri, room);
        }
        // The editor's buffer is not what we believe it is. Repair it from the room.
        tracing::error!(%uri, version = result.version, "DESYNC: the editor's buffer differs from the proxy's shadow; resyncing from the room");
        crate::DESYNCS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = doc.path.clone();
        let Some(room_text) = path.as_deref().and_then(|p| room.text(p)) else {
            return Vec::new();
        };
        let batch = doc.sync.full_batch(&room_text, enc, id);
        vec![
            Effect::Editor(EditorOut::ApplyEdit {
                uri: uri.to_string(),
                batch,
            }),
            tell(
                "warning",
                format!(
                    "{}: the buffer had drifted from the room and was resynced",
                    path.unwrap_or_else(|| uri.to_string())
                ),
            ),
        ]
    }

    /// Timers: a batch the editor never echoed is given up on and the buffer checked; a
    /// document quiet for a while is compared with the editor's text.
    pub(super) fn tick(&mut self, room_synced: bool, now: Instant) -> Vec<Effect> {
        let mut fx = Vec::new();
        if !room_synced {
            return fx;
        }
        let mut uris: Vec<&String> = self.open.keys().collect();
        uris.sort();
        let uris: Vec<String> = uris.into_iter().cloned().collect();
        for uri in uris {
            let d = self.open.get_mut(&uri).expect("listed above");
            if d.path.is_none() {
                continue;
            }
            let overdue = d.sync.inflight_times().is_some_and(|(sent, accepted)| match accepted {
                Some(at) => now.saturating_duration_since(at) > BATCH_TIMEOUT,
                None => now.saturating_duration_since(sent) > UNANSWERED_BATCH_TIMEOUT,
            });
            if overdue {
                tracing::warn!(%uri, "the editor never echoed an edit batch; checking its buffer");
                d.sync.abandon_inflight();
                d.hash_pending = true;
                fx.push(Effect::Editor(EditorOut::DocumentHash { uri }));
                continue;
            }
            if !d.sync.has_inflight()
                && !d.hash_checked
                && !d.hash_pending
                && now.duration_since(d.last_change) > HASH_CHECK_AFTER
            {
                d.hash_pending = true;
                fx.push(Effect::Editor(EditorOut::DocumentHash { uri }));
            }
        }
        fx
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{methods, notification, FakeRoom};
    use super::*;
    use crate::sync::{Delta, EditorBatch, Pending};
    use tower_lsp_server::lsp_types::Position;

    const URI: &str = "file:///w/a.txt";

    fn open_doc(docs: &mut Docs, text: &str, now: Instant) {
        assert!(docs
            .open(URI.into(), 1, text.into(), Some("a.txt".into()), now)
            .is_empty());
    }

    fn batch_of(fx: &[Effect]) -> &EditorBatch {
        fx.iter()
            .find_map(|e| match e {
                Effect::Editor(EditorOut::ApplyEdit { batch, .. }) => Some(batch),
                _ => None,
            })
            .expect("an edit batch")
    }

    fn insert_at(line: u32, character: u32, text: &str) -> Vec<(Option<Range>, String)> {
        let p = Position { line, character };
        vec![(Some(Range { start: p, end: p }), text.to_string())]
    }

    /// Someone else changes the room's `a.txt` to `text` by `delta`; the documents see it.
    fn remote(docs: &mut Docs, room: FakeRoom, text: &str, delta: Vec<Delta>) -> FakeRoom {
        docs.room_changed("a.txt", None, &RoomTextChange::Delta(delta));
        room.with("a.txt", text)
    }

    /// Applies a batch's edits to the text the editor holds, as the editor would.
    fn editor_applies(text: &str, batch: &EditorBatch) -> String {
        crate::sync::apply_text_edits(text, &batch.edits, Encoding::Utf16)
    }

    #[test]
    fn a_file_the_room_lacks_is_created_from_the_editor_text_on_attach() {
        let now = Instant::now();
        let mut docs = Docs::default();
        open_doc(&mut docs, "mine\n", now);
        let room = FakeRoom::synced_writer();
        let fx = docs.attach(URI, &room, None, None, None);
        assert!(matches!(&fx[..], [Effect::Create { path, text }, Effect::Flush { uri }]
            if path == "a.txt" && text == "mine\n" && uri == URI));
    }

    #[test]
    fn nothing_attaches_before_the_first_sync_or_for_a_reader_creating() {
        let now = Instant::now();
        let mut docs = Docs::default();
        open_doc(&mut docs, "mine\n", now);
        let mut room = FakeRoom::synced_writer();
        room.synced = false;
        assert!(docs.attach(URI, &room, None, None, None).is_empty());
        room.synced = true;
        room.writable = false;
        assert!(docs.attach(URI, &room, None, None, None).is_empty());
    }

    /// The effects' room edits applied to `room`, as the loop would.
    fn room_after(room: &str, fx: &[Effect]) -> String {
        fx.iter().fold(room.to_string(), |text, e| match e {
            Effect::Edit { ops, .. } => crate::sync::apply_ops(&text, ops),
            _ => text,
        })
    }

    #[test]
    fn attach_takes_the_room_s_changes_when_the_buffer_has_none_of_its_own() {
        let now = Instant::now();
        let mut docs = Docs::default();
        open_doc(&mut docs, "old\n", now);
        let room = FakeRoom::synced_writer().with("a.txt", "room\n");
        let fx = docs.attach(URI, &room, Some("old\n"), Some("old\n"), None);
        assert!(matches!(&fx[..], [Effect::Flush { uri }] if uri == URI), "{fx:?}");
        let batch = batch_of(&docs.flush(URI, &room)).clone();
        assert_eq!(batch.version, 1);
        assert_eq!(editor_applies("old\n", &batch), "room\n");
        // One batch at a time: nothing more goes out until the editor answers.
        assert!(docs.flush(URI, &room).is_empty());
    }

    #[test]
    fn a_buffer_opened_from_an_agreed_text_maps_typing_exactly_before_its_first_batch_lands() {
        let now = Instant::now();
        let mut docs = Docs::default();
        // The editor read the text disk sync wrote; the room gained a marker before it since.
        let opened = "«0004b0004»";
        let room_text = "«0001c0001»«0004b0004»";
        open_doc(&mut docs, opened, now);
        let room = FakeRoom::synced_writer().with("a.txt", room_text);
        let mut kept = Pending::identity(opened.encode_utf16().count());
        kept.compose(&[Delta::Insert("«0001c0001»".into())]).unwrap();
        docs.attach(URI, &room, Some(opened), Some(opened), Some(kept));
        // The user types inside «0004…» before the room's batch reaches the buffer.
        let fx = docs.change(URI, 2, insert_at(0, 3, "Z"), &room, now);
        assert_eq!(
            room_after_editor(room_text, &fx),
            "«0001c0001»«00Z04b0004»",
            "the typing lands where the user put it, not in the marker a diff would align"
        );
    }

    /// The effects' editor edits applied to `room`, as the loop would.
    fn room_after_editor(room: &str, fx: &[Effect]) -> String {
        fx.iter().fold(room.to_string(), |text, e| match e {
            Effect::EditorEdit { ops, .. } => crate::sync::apply_ops(&text, ops),
            _ => text,
        })
    }

    #[test]
    fn typing_before_the_room_was_reached_is_merged_into_the_room_on_attach_never_dropped() {
        let now = Instant::now();
        let mut docs = Docs::default();
        open_doc(&mut docs, "fn main() {}\n", now);
        // The room is not synced yet: the typing follows the editor only.
        let mut room = FakeRoom::synced_writer().with("a.txt", "fn main() {}\n");
        room.synced = false;
        assert!(docs
            .change(URI, 2, insert_at(1, 0, "typed at once\n"), &room, now)
            .is_empty());
        room.synced = true;
        // No base kept yet: the file on disk, equal to the room's text, is the base.
        let fx = docs.attach(URI, &room, None, Some("fn main() {}\n"), None);
        let merged = room_after("fn main() {}\n", &fx);
        assert!(
            fx.iter()
                .any(|e| matches!(e, Effect::Agreed { text, .. } if text == "fn main() {}\n")),
            "the disk copy the room had is kept as the base: {fx:?}"
        );
        assert_eq!(merged, "fn main() {}\ntyped at once\n");
        let room = room.with("a.txt", &merged);
        assert!(docs.flush(URI, &room).is_empty(), "the buffer is already right");
    }

    #[test]
    fn an_unsaved_buffer_is_merged_with_the_room_s_changes_to_other_lines() {
        let now = Instant::now();
        let mut docs = Docs::default();
        let disk = "one\ntwo\nthree\n";
        open_doc(&mut docs, "one (unsaved)\ntwo\nthree\n", now);
        let room_text = "one\ntwo\nthree (room)\n";
        let room = FakeRoom::synced_writer().with("a.txt", room_text);
        let fx = docs.attach(URI, &room, Some(disk), Some(disk), None);
        let merged = room_after(room_text, &fx);
        assert!(
            !fx.iter().any(|e| matches!(e, Effect::Agreed { .. })),
            "the disk agrees with neither"
        );
        assert_eq!(merged, "one (unsaved)\ntwo\nthree (room)\n");
        assert!(matches!(fx.last(), Some(Effect::Flush { .. })));
        let room = room.with("a.txt", &merged);
        let batch = batch_of(&docs.flush(URI, &room)).clone();
        assert_eq!(editor_applies("one (unsaved)\ntwo\nthree\n", &batch), merged);
    }

    #[test]
    fn a_buffer_and_room_that_changed_the_same_lines_keep_the_buffer_and_report_a_conflict() {
        let now = Instant::now();
        let mut docs = Docs::default();
        open_doc(&mut docs, "one\nmine\n", now);
        let room = FakeRoom::synced_writer().with("a.txt", "one\nroom\n");
        let fx = docs.attach(URI, &room, Some("one\ntwo\n"), None, None);
        assert!(matches!(&fx[0], Effect::Conflict { path, room } if path == "a.txt" && room == "one\nroom\n"));
        let told = notification(&fx, "window/showMessage")["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            told.contains(".mesh/conflicts/a.txt") && told.contains("mesh-proxy resolve a.txt"),
            "{told}"
        );
        assert!(!fx
            .iter()
            .any(|e| matches!(e, Effect::Edit { .. } | Effect::Flush { .. })));
        // Held out of the room: typing stays local, the room's text never lands in the buffer.
        assert!(docs.is_open("a.txt"));
        assert_eq!(docs.holding("a.txt").as_deref(), Some(URI));
        assert!(docs.change(URI, 2, insert_at(0, 0, "X"), &room, now).is_empty());
        assert!(docs.flush(URI, &room).is_empty());
    }

    #[test]
    fn no_base_and_a_different_buffer_is_a_conflict_not_an_overwrite() {
        let now = Instant::now();
        let mut docs = Docs::default();
        open_doc(&mut docs, "my local work\n", now);
        let room = FakeRoom::synced_writer().with("a.txt", "room\n");
        let fx = docs.attach(URI, &room, None, Some("my local work\n"), None);
        assert!(matches!(&fx[0], Effect::Conflict { .. }), "{fx:?}");
    }

    #[test]
    fn a_readers_unshared_buffer_text_is_a_conflict() {
        let now = Instant::now();
        let mut docs = Docs::default();
        open_doc(&mut docs, "one\nmine\n", now);
        let mut room = FakeRoom::synced_writer().with("a.txt", "one\n");
        room.writable = false;
        let fx = docs.attach(URI, &room, Some("one\n"), None, None);
        assert!(matches!(&fx[0], Effect::Conflict { .. }), "{fx:?}");
    }

    #[test]
    fn resolving_a_held_buffer_shares_its_text_over_the_room_s_version_and_keeps_later_room_changes() {
        let now = Instant::now();
        let mut docs = Docs::default();
        open_doc(&mut docs, "a\nmine\nz\n", now);
        let room = FakeRoom::synced_writer().with("a.txt", "a\nroom\nz\n");
        let fx = docs.attach(URI, &room, Some("a\nb\nz\n"), None, None);
        assert!(matches!(&fx[0], Effect::Conflict { .. }));
        // The user merges by hand in the buffer; the room changes another line meanwhile.
        assert!(docs.change(URI, 2, insert_at(1, 4, ", room"), &room, now).is_empty());
        let room_text = "a\nroom\nz\nlater\n";
        let room = room.with("a.txt", room_text);
        let fx = docs.resolve(URI, "a\nroom\nz\n", &room);
        let merged = room_after(room_text, &fx);
        assert_eq!(merged, "a\nmine, room\nz\nlater\n");
        assert_eq!(docs.path(URI).as_deref(), Some("a.txt"), "in step with the room again");
        let room = room.with("a.txt", &merged);
        let batch = batch_of(&docs.flush(URI, &room)).clone();
        assert_eq!(editor_applies("a\nmine, room\nz\n", &batch), merged);
    }

    #[test]
    fn local_typing_becomes_room_operations_on_its_path() {
        let now = Instant::now();
        let mut docs = Docs::default();
        open_doc(&mut docs, "ab\n", now);
        let room = FakeRoom::synced_writer().with("a.txt", "ab\n");
        let fx = docs.change(URI, 2, insert_at(0, 1, "X"), &room, now);
        assert!(matches!(&fx[..], [Effect::EditorEdit { uri, path, ops }]
            if uri == URI && path == "a.txt" && crate::sync::apply_ops("ab\n", ops) == "aXb\n"));
    }

    #[test]
    fn the_echo_of_our_batch_is_not_sent_back_and_lets_the_next_batch_go() {
        let now = Instant::now();
        let mut docs = Docs::default();
        open_doc(&mut docs, "a\n", now);
        let mut room = FakeRoom::synced_writer().with("a.txt", "ab\n");
        let fx = docs.flush(URI, &room);
        let first = batch_of(&fx).clone();
        // The room moves on while the batch is in flight.
        room = remote(
            &mut docs,
            room,
            "abc\n",
            vec![Delta::Retain(2), Delta::Insert("c".into())],
        );
        assert!(docs.answered(URI, first.id, true, &room, now).is_empty());
        let echo = first
            .edits
            .iter()
            .map(|e| (Some(e.range), e.new_text.clone()))
            .collect();
        let fx = docs.change(URI, 2, echo, &room, now);
        assert!(!fx.iter().any(|e| matches!(e, Effect::EditorEdit { .. })), "{fx:?}");
        let next = batch_of(&fx);
        assert_eq!(next.version, 2);
        assert_eq!(editor_applies("ab\n", next), "abc\n");
    }

    #[test]
    fn a_refused_batch_is_rebased_and_sent_again() {
        let now = Instant::now();
        let mut docs = Docs::default();
        open_doc(&mut docs, "a\n", now);
        let room = FakeRoom::synced_writer().with("a.txt", "ab\n");
        let first = batch_of(&docs.flush(URI, &room)).clone();
        // The user typed meanwhile: the editor refuses the stale version.
        let fx = docs.change(URI, 2, insert_at(0, 0, "Z"), &room, now);
        assert!(matches!(&fx[..], [Effect::EditorEdit { .. }]));
        let room = room.with("a.txt", "Zab\n");
        let again = batch_of(&docs.answered(URI, first.id, false, &room, now)).clone();
        assert_eq!(again.version, 2);
        assert_eq!(editor_applies("Za\n", &again), "Zab\n");
    }

    #[test]
    fn a_reader_s_edit_stays_local_the_user_is_told_and_the_buffer_goes_back_to_the_room() {
        let now = Instant::now();
        let mut docs = Docs::default();
        open_doc(&mut docs, "ab\n", now);
        let mut room = FakeRoom::synced_writer().with("a.txt", "ab\n");
        room.writable = false;
        let fx = docs.change(URI, 2, insert_at(0, 0, "X"), &room, now);
        assert!(!fx.iter().any(|e| matches!(e, Effect::EditorEdit { .. })));
        assert_eq!(methods(&fx), ["mesh/notify", "workspace/applyEdit"]);
        assert_eq!(editor_applies("Xab\n", batch_of(&fx)), "ab\n");
    }

    #[test]
    fn an_out_of_order_change_asks_for_the_editor_s_hash() {
        let now = Instant::now();
        let mut docs = Docs::default();
        open_doc(&mut docs, "ab\n", now);
        let room = FakeRoom::synced_writer().with("a.txt", "ab\n");
        let fx = docs.change(URI, 1, insert_at(0, 0, "X"), &room, now);
        assert_eq!(methods(&fx), ["mesh/documentHash"]);
    }

    #[test]
    fn a_change_over_the_file_limit_is_refused_and_the_buffer_reset_to_the_room() {
        let now = Instant::now();
        let mut docs = Docs::default();
        open_doc(&mut docs, "ab\n", now);
        let room = FakeRoom::synced_writer().with("a.txt", "ab\n");
        let huge = "x".repeat(workspace::MAX_FILE_BYTES as usize + 1);
        let fx = docs.change(URI, 2, insert_at(0, 0, &huge), &room, now);
        assert!(!fx.iter().any(|e| matches!(e, Effect::EditorEdit { .. })));
        assert_eq!(methods(&fx), ["mesh/notify", "workspace/applyEdit"]);
        let batch = batch_of(&fx);
        assert_eq!(batch.edits[0].new_text, "ab\n");
    }

    #[test]
    fn a_file_that_is_not_text_or_too_large_is_not_shared() {
        let now = Instant::now();
        let mut docs = Docs::default();
        let fx = docs.open(URI.into(), 1, "a\0b".into(), Some("a.txt".into()), now);
        assert_eq!(methods(&fx), ["mesh/notify"]);
        assert_eq!(docs.path(URI), None);
        let room = FakeRoom::synced_writer();
        assert!(docs.attach(URI, &room, None, None, None).is_empty());
    }

    #[test]
    fn a_quiet_document_is_hash_checked_once_and_a_match_sends_what_the_room_has() {
        let now = Instant::now();
        let mut docs = Docs::default();
        open_doc(&mut docs, "ab\n", now);
        assert!(docs.tick(true, now + HASH_CHECK_AFTER).is_empty());
        assert!(docs.tick(false, now + HASH_CHECK_AFTER * 2).is_empty());
        let fx = docs.tick(true, now + HASH_CHECK_AFTER * 2);
        assert_eq!(methods(&fx), ["mesh/documentHash"]);
        // The request is out: not asked again.
        assert!(docs.tick(true, now + HASH_CHECK_AFTER * 3).is_empty());
        let room = FakeRoom::synced_writer().with("a.txt", "abc\n");
        let answer = DocumentHashResult {
            version: 1,
            sha256: sha256_hex("ab\n"),
        };
        let fx = docs.hash_answered(URI, Some(answer), &room);
        assert_eq!(editor_applies("ab\n", batch_of(&fx)), "abc\n");
    }

    #[test]
    fn a_buffer_that_drifted_is_resynced_from_the_room_and_the_user_told() {
        let now = Instant::now();
        let mut docs = Docs::default();
        open_doc(&mut docs, "ab\n", now);
        let room = FakeRoom::synced_writer().with("a.txt", "ab\n");
        let before = crate::DESYNCS.load(std::sync::atomic::Ordering::Relaxed);
        let answer = DocumentHashResult {
            version: 1,
            sha256: sha256_hex("something else"),
        };
        let fx = docs.hash_answered(URI, Some(answer), &room);
        assert_eq!(methods(&fx), ["workspace/applyEdit", "mesh/notify"]);
        assert_eq!(editor_applies("whatever it holds", batch_of(&fx)), "ab\n");
        assert!(crate::DESYNCS.load(std::sync::atomic::Ordering::Relaxed) > before);
    }

    #[test]
    fn a_hash_of_an_older_version_is_not_trusted_and_checked_again_later() {
        let now = Instant::now();
        let mut docs = Docs::default();
        open_doc(&mut docs, "ab\n", now);
        let room = FakeRoom::synced_writer().with("a.txt", "ab\n");
        docs.change(URI, 2, insert_at(0, 0, "X"), &room, now);
        let stale = DocumentHashResult {
            version: 1,
            sha256: sha256_hex("nonsense"),
        };
        assert!(docs.hash_answered(URI, Some(stale), &room).is_empty());
        let fx = docs.tick(true, now + HASH_CHECK_AFTER * 2);
        assert_eq!(methods(&fx), ["mesh/documentHash"]);
    }

    #[test]
    fn a_document_s_own_edits_are_not_fed_back_to_it_but_reach_another_of_the_same_file() {
        let now = Instant::now();
        let mut docs = Docs::default();
        open_doc(&mut docs, "ab\n", now);
        const OTHER: &str = "file:///w/link-to-a.txt";
        docs.open(OTHER.into(), 1, "ab\n".into(), Some("a.txt".into()), now);
        let room = FakeRoom::synced_writer().with("a.txt", "ab\n");
        assert!(docs.flush(URI, &room).is_empty() && docs.flush(OTHER, &room).is_empty());
        let fx = docs.change(URI, 2, insert_at(0, 0, "X"), &room, now);
        let [Effect::EditorEdit { ops, .. }] = &fx[..] else {
            panic!("{fx:?}")
        };
        // The session applies it to the room, whose observer reports it from this document.
        let delta = vec![Delta::Insert(ops[0].insert.clone())];
        docs.room_changed("a.txt", Some(URI), &RoomTextChange::Delta(delta));
        let room = room.with("a.txt", "Xab\n");
        assert!(docs.flush(URI, &room).is_empty(), "nothing to send back to the typist");
        assert_eq!(docs.get(URI).and_then(|d| d.sync.pending_changes()), Some(0));
        let other = batch_of(&docs.flush(OTHER, &room)).clone();
        assert_eq!(editor_applies("ab\n", &other), "Xab\n");
    }

    #[test]
    fn typing_while_hundreds_of_remote_changes_wait_deletes_only_what_the_user_saw() {
        let now = Instant::now();
        let mut docs = Docs::default();
        let words = crate::sync::MAX_EDITS_PER_BATCH + 10;
        let text: String = (0..words).map(|i| format!("w{i} ")).collect();
        open_doc(&mut docs, &text, now);
        let room = FakeRoom::synced_writer().with("a.txt", &text);
        assert!(docs.flush(URI, &room).is_empty());
        // Someone replaces every space, one change each.
        let mut delta = Vec::new();
        let mut last = 0;
        for (i, _) in text.match_indices(' ') {
            delta.extend([
                Delta::Retain((i - last) as u32),
                Delta::Delete(1),
                Delta::Insert("_".into()),
            ]);
            last = i + 1;
        }
        let replaced = text.replace(' ', "_");
        let room = remote(&mut docs, room, &replaced, delta);
        let batch = batch_of(&docs.flush(URI, &room)).clone();
        // Before it arrives, the user deletes everything after "w0 ".
        let end = Position {
            line: 0,
            character: text.len() as u32,
        };
        let start = Position { line: 0, character: 3 };
        let fx = docs.change(URI, 2, vec![(Some(Range { start, end }), String::new())], &room, now);
        let [Effect::EditorEdit { ops, .. }] = &fx[..] else {
            panic!("{fx:?}")
        };
        let after = crate::sync::apply_ops(&replaced, ops);
        assert_eq!(after, format!("w0_{}", "_".repeat(words - 1)));
        let room = room.with("a.txt", &after);
        let again = batch_of(&docs.answered(URI, batch.id, false, &room, now)).clone();
        assert_eq!(editor_applies("w0 ", &again), after);
    }

    #[test]
    fn a_batch_the_editor_has_not_answered_is_waited_for_and_its_late_echo_is_still_an_echo() {
        let now = Instant::now();
        let mut docs = Docs::default();
        open_doc(&mut docs, "a\n", now);
        let room = FakeRoom::synced_writer().with("a.txt", "ab\n");
        let batch = batch_of(&docs.flush(URI, &room)).clone();
        // A busy editor (or a busy session) takes longer than the accepted-batch timeout.
        assert!(docs.tick(true, now + BATCH_TIMEOUT * 2).is_empty());
        let echo = batch
            .edits
            .iter()
            .map(|e| (Some(e.range), e.new_text.clone()))
            .collect();
        let fx = docs.change(URI, 2, echo, &room, now + BATCH_TIMEOUT * 2);
        assert!(!fx.iter().any(|e| matches!(e, Effect::EditorEdit { .. })), "{fx:?}");
        assert!(!docs.get(URI).unwrap().sync.has_inflight());
    }

    #[test]
    fn an_accepted_batch_whose_echo_never_comes_is_given_up_on_and_the_buffer_checked() {
        let now = Instant::now();
        let mut docs = Docs::default();
        open_doc(&mut docs, "a\n", now);
        let room = FakeRoom::synced_writer().with("a.txt", "ab\n");
        let batch = batch_of(&docs.flush(URI, &room)).clone();
        let answered = now + Duration::from_secs(1);
        assert!(docs.answered(URI, batch.id, true, &room, answered).is_empty());
        assert!(docs.tick(true, answered + BATCH_TIMEOUT / 2).is_empty());
        let fx = docs.tick(true, answered + BATCH_TIMEOUT + Duration::from_millis(1));
        assert_eq!(methods(&fx), ["mesh/documentHash"]);
    }

    #[test]
    fn a_batch_never_answered_is_given_up_on_at_last() {
        let now = Instant::now();
        let mut docs = Docs::default();
        open_doc(&mut docs, "a\n", now);
        let room = FakeRoom::synced_writer().with("a.txt", "ab\n");
        assert!(!docs.flush(URI, &room).is_empty());
        let fx = docs.tick(true, now + UNANSWERED_BATCH_TIMEOUT + Duration::from_secs(1));
        assert_eq!(methods(&fx), ["mesh/documentHash"]);
    }
}
