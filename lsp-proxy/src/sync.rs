//! The editor bridge's core: one open document, kept in step between the editor's buffer
//! and the room's `Y.Text`. Sans-IO: it takes the editor's changes and the room's text and
//! returns operations for the room and edits for the editor.
//!
//! The proxy keeps a *shadow*: the editor's text at the version it last reported. Every
//! local change is applied to the shadow and pushed into the room at once, so the room text
//! is always the shadow plus remote changes the editor has not applied yet. Those are sent
//! with `workspace/applyEdit` against the shadow's version, one batch in flight at a time.
//! The editor reports the applied batch back as `didChange` (the echo); it is recognised by
//! the text it produces, not by the shape of its changes, because editors may split or
//! minimise edits. A local change made while a batch is in flight makes the editor reject
//! the batch (its version moved on); the change is pushed into the room re-based over the
//! remote changes, and the remainder is sent again.

use similar::{capture_diff_slices_deadline, Algorithm, DiffOp};
use std::time::{Duration, Instant};
use tower_lsp_server::lsp_types::{Position, Range, TextEdit};

use crate::text::{CharEdit, Encoding, Shadow};

/// Longest time spent diffing two versions of a document; past it the whole differing
/// middle becomes one replacement (still correct, just coarser).
const DIFF_DEADLINE: Duration = Duration::from_millis(50);

/// A line number past the end of any real buffer (editors clamp it to the end).
const FAR_LINE: u32 = 1 << 30;

/// More separate edits than this in one batch are merged into one replacement: editors
/// apply a single edit faster than thousands of small ones.
const MAX_EDITS_PER_BATCH: usize = 256;

/// An operation on the room's text, in UTF-16 offsets of the room text it applies to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomOp {
    /// Where the operation starts.
    pub start_utf16: u32,
    /// How many UTF-16 units to delete there.
    pub delete_utf16: u32,
    /// What to insert there after deleting.
    pub insert: String,
}

/// Edits to send to the editor with `workspace/applyEdit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditorBatch {
    /// The proxy's id of this batch (to match the editor's answer).
    pub id: u64,
    /// The document version the edits apply to.
    pub version: i32,
    /// The edits, in positions of that version.
    pub edits: Vec<TextEdit>,
}

/// What a `didChange` turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChangeKind {
    /// The editor applied (all of) our batch.
    Echo,
    /// The editor applied part of our batch; more echo is coming.
    PartialEcho,
    /// The user's own change: these operations bring it into the room.
    Local(Vec<RoomOp>),
    /// A version older than one already seen: ignored, and a resync is due.
    OutOfOrder,
}

#[derive(Debug, Clone)]
struct Inflight {
    id: u64,
    /// The shadow's text when the batch was sent, as characters.
    base: Vec<char>,
    /// The batch's changes in `base` coordinates.
    regions: Vec<Region>,
    /// The text the editor holds once the whole batch is applied.
    expected: String,
    sent: Instant,
    /// The editor said `applied: true`; only the echo is missing.
    accepted: bool,
}

/// One open document.
#[derive(Debug)]
pub struct DocSync {
    /// Editor version of the shadow.
    pub version: i32,
    shadow: Shadow,
    inflight: Option<Inflight>,
}

/// A changed region between two texts: `a[a_start..a_end]` became `b[b_start..b_end]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    a_start: usize,
    a_end: usize,
    b_start: usize,
    b_end: usize,
}

/// The changed regions between `a` and `b`, sorted, non-overlapping.
pub fn diff_regions(a: &[char], b: &[char]) -> Vec<Region> {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let max_suffix = a.len().min(b.len()) - prefix;
    let suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take(max_suffix)
        .take_while(|(x, y)| x == y)
        .count();
    let (a_mid, b_mid) = (&a[prefix..a.len() - suffix], &b[prefix..b.len() - suffix]);
    if a_mid.is_empty() && b_mid.is_empty() {
        return Vec::new();
    }
    let deadline = Some(Instant::now() + DIFF_DEADLINE);
    let ops = capture_diff_slices_deadline(Algorithm::Myers, a_mid, b_mid, deadline);
    // Walk the ops with our own cursors (only their order and lengths matter), joining
    // neighbouring deletes and inserts into one region.
    let mut out: Vec<Region> = Vec::new();
    let (mut ai, mut bi) = (prefix, prefix);
    let mut open: Option<Region> = None;
    for op in ops {
        let (a_len, b_len, equal) = match op {
            DiffOp::Equal { len, .. } => (len, len, true),
            DiffOp::Delete { old_len, .. } => (old_len, 0, false),
            DiffOp::Insert { new_len, .. } => (0, new_len, false),
            DiffOp::Replace { old_len, new_len, .. } => (old_len, new_len, false),
        };
        if equal {
            if let Some(r) = open.take() {
                out.push(r);
            }
        } else {
            let r = open.get_or_insert(Region {
                a_start: ai,
                a_end: ai,
                b_start: bi,
                b_end: bi,
            });
            r.a_end += a_len;
            r.b_end += b_len;
        }
        ai += a_len;
        bi += b_len;
    }
    if let Some(r) = open.take() {
        out.push(r);
    }
    if out.len() > MAX_EDITS_PER_BATCH {
        let (first, last) = (out[0], out[out.len() - 1]);
        out = vec![Region {
            a_start: first.a_start,
            a_end: last.a_end,
            b_start: first.b_start,
            b_end: last.b_end,
        }];
    }
    out
}

/// Maps a position in `a` to the corresponding position in `b`. Where `b` has an insertion
/// at exactly that spot, `after` picks its end (a local insert lands after a concurrent
/// remote insert; a local deletion starting there does not swallow it), else its start. A
/// position inside a replaced region is clamped into it.
pub fn map_pos_biased(regions: &[Region], p: usize, after: bool) -> usize {
    let mut shift: isize = 0;
    for r in regions {
        if p < r.a_start {
            break;
        }
        if p == r.a_start {
            return if r.a_start == r.a_end && after {
                r.b_end
            } else {
                r.b_start
            };
        }
        if p < r.a_end {
            return (r.b_start + (p - r.a_start)).min(r.b_end);
        }
        shift = r.b_end as isize - r.a_end as isize;
    }
    (p as isize + shift) as usize
}

/// [`map_pos_biased`] with the bias of an insertion point.
pub fn map_pos(regions: &[Region], p: usize) -> usize {
    map_pos_biased(regions, p, true)
}

/// The parts of `b` that a deletion of `a[s..e]` covers: the mapped range minus the text
/// `b` inserted strictly inside it (remote text the local user never saw is never deleted).
fn deletion_pieces(regions: &[Region], s: usize, e: usize) -> Vec<(usize, usize)> {
    let (start, end) = (map_pos_biased(regions, s, true), map_pos_biased(regions, e, false));
    if end <= start {
        return Vec::new();
    }
    let mut pieces = Vec::new();
    let mut cur = start;
    for r in regions {
        if r.a_start == r.a_end && r.a_start > s && r.a_start < e && r.b_start >= cur && r.b_end <= end {
            if r.b_start > cur {
                pieces.push((cur, r.b_start));
            }
            cur = r.b_end;
        }
    }
    if end > cur {
        pieces.push((cur, end));
    }
    pieces
}

/// Maps a position in `b` back to `a` (used to show remote cursors in the editor's text).
pub fn map_pos_back(regions: &[Region], p: usize) -> usize {
    let swapped: Vec<Region> = regions
        .iter()
        .map(|r| Region {
            a_start: r.b_start,
            a_end: r.b_end,
            b_start: r.a_start,
            b_end: r.a_end,
        })
        .collect();
    map_pos(&swapped, p)
}

/// Whether `now` is `base` with some of `regions` applied (each either fully applied or not
/// at all), where `new` holds the replacement texts.
fn is_partial_application(base: &[char], regions: &[Region], new: &[char], now: &[char], prefer_applied: bool) -> bool {
    let (mut a, mut s) = (0usize, 0usize);
    for r in regions {
        let equal = &base[a..r.a_start];
        if now.len() < s + equal.len() || &now[s..s + equal.len()] != equal {
            return false;
        }
        s += equal.len();
        let applied = &new[r.b_start..r.b_end];
        let original = &base[r.a_start..r.a_end];
        let (first, second) = if prefer_applied {
            (applied, original)
        } else {
            (original, applied)
        };
        if now[s..].starts_with(first) {
            s += first.len();
        } else if now[s..].starts_with(second) {
            s += second.len();
        } else {
            return false;
        }
        a = r.a_end;
    }
    now[s..] == base[a..]
}

impl DocSync {
    /// A document the editor opened at `version` with `text`.
    pub fn new(version: i32, text: &str) -> Self {
        DocSync {
            version,
            shadow: Shadow::new(text),
            inflight: None,
        }
    }

    /// The shadow (the editor's text at [`DocSync::version`]).
    pub fn shadow(&self) -> &Shadow {
        &self.shadow
    }

    /// Whether a batch is waiting for the editor.
    pub fn has_inflight(&self) -> bool {
        self.inflight.is_some()
    }

    /// How long the batch in flight has waited, if any.
    pub fn inflight_age(&self) -> Option<Duration> {
        self.inflight.as_ref().map(|i| i.sent.elapsed())
    }

    /// The text the editor will hold once the batch in flight is applied.
    pub fn inflight_expected(&self) -> Option<&str> {
        self.inflight.as_ref().map(|i| i.expected.as_str())
    }

    /// The editor reported a change. `room` is the room's current text of this document.
    pub fn editor_changed(
        &mut self,
        version: i32,
        changes: Vec<(Option<Range>, String)>,
        enc: Encoding,
        room: &str,
    ) -> ChangeKind {
        if version <= self.version {
            return ChangeKind::OutOfOrder;
        }
        let mut next = self.shadow.clone();
        let mut edits = Vec::with_capacity(changes.len());
        for (range, text) in changes {
            let e = next.change_to_edit(range, text, enc);
            next.apply(&e);
            edits.push(e);
        }
        if let Some(inflight) = &self.inflight {
            let now: Vec<char> = next.text().chars().collect();
            if next.eq_str(&inflight.expected) {
                self.shadow = next;
                self.version = version;
                self.inflight = None;
                return ChangeKind::Echo;
            }
            let expected: Vec<char> = inflight.expected.chars().collect();
            if is_partial_application(&inflight.base, &inflight.regions, &expected, &now, true)
                || is_partial_application(&inflight.base, &inflight.regions, &expected, &now, false)
            {
                self.shadow = next;
                self.version = version;
                return ChangeKind::PartialEcho;
            }
        }
        // The user's own change: push each step into the room, re-based over what the
        // room has that the editor does not.
        let mut room_text = Shadow::new(room);
        let mut ops = Vec::with_capacity(edits.len());
        for e in edits {
            let regions = if self.shadow.eq_str(&room_text.text()) {
                Vec::new()
            } else {
                let a: Vec<char> = self.shadow.text().chars().collect();
                let b: Vec<char> = room_text.text().chars().collect();
                diff_regions(&a, &b)
            };
            let start = map_pos(&regions, e.start);
            // Deletions go last to first so earlier offsets stay valid, then the insert.
            for (a, b) in deletion_pieces(&regions, e.start, e.end).into_iter().rev() {
                let op = RoomOp {
                    start_utf16: room_text.char_to_utf16(a) as u32,
                    delete_utf16: (room_text.char_to_utf16(b) - room_text.char_to_utf16(a)) as u32,
                    insert: String::new(),
                };
                room_text.apply(&CharEdit {
                    start: a,
                    end: b,
                    text: String::new(),
                });
                ops.push(op);
            }
            if !e.text.is_empty() {
                ops.push(RoomOp {
                    start_utf16: room_text.char_to_utf16(start) as u32,
                    delete_utf16: 0,
                    insert: e.text.clone(),
                });
                room_text.apply(&CharEdit {
                    start,
                    end: start,
                    text: e.text.clone(),
                });
            }
            self.shadow.apply(&e);
        }
        self.version = version;
        ChangeKind::Local(ops)
    }

    /// If the room has changes the editor lacks and nothing is in flight, the batch to send.
    pub fn next_batch(&mut self, room: &str, enc: Encoding, id: u64) -> Option<EditorBatch> {
        if self.inflight.is_some() || self.shadow.eq_str(room) {
            return None;
        }
        let base: Vec<char> = self.shadow.text().chars().collect();
        let new: Vec<char> = room.chars().collect();
        let regions = diff_regions(&base, &new);
        if regions.is_empty() {
            return None;
        }
        let edits = regions
            .iter()
            .map(|r| TextEdit {
                range: self.shadow.range(r.a_start, r.a_end, enc),
                new_text: new[r.b_start..r.b_end].iter().collect(),
            })
            .collect();
        self.inflight = Some(Inflight {
            id,
            base,
            regions,
            expected: room.to_string(),
            sent: Instant::now(),
            accepted: false,
        });
        Some(EditorBatch {
            id,
            version: self.version,
            edits,
        })
    }

    /// A batch that replaces the whole buffer with `room` (used to repair a desync).
    pub fn full_batch(&mut self, room: &str, enc: Encoding, id: u64) -> EditorBatch {
        let base: Vec<char> = self.shadow.text().chars().collect();
        let regions = vec![Region {
            a_start: 0,
            a_end: base.len(),
            b_start: 0,
            b_end: room.chars().count(),
        }];
        // The editor's text is not what we believe, so its end is unknown: the range ends
        // far past any real end, which editors clamp to the end of the buffer.
        let range = Range {
            start: Position { line: 0, character: 0 },
            end: Position {
                line: FAR_LINE,
                character: 0,
            },
        };
        let edits = vec![TextEdit {
            range,
            new_text: room.to_string(),
        }];
        self.inflight = Some(Inflight {
            id,
            base,
            regions,
            expected: room.to_string(),
            sent: Instant::now(),
            accepted: false,
        });
        let _ = enc;
        EditorBatch {
            id,
            version: self.version,
            edits,
        }
    }

    /// The editor answered batch `id`. Returns whether the caller should look for the next
    /// batch (the editor refused this one, so it must be re-based and sent again).
    pub fn batch_answered(&mut self, id: u64, applied: bool) -> bool {
        match &mut self.inflight {
            Some(i) if i.id == id => {
                if applied {
                    i.accepted = true;
                    false
                } else {
                    self.inflight = None;
                    true
                }
            }
            _ => false,
        }
    }

    /// Gives up on the batch in flight (the editor never echoed it). The caller checks the
    /// editor's text before sending anything else.
    pub fn abandon_inflight(&mut self) {
        self.inflight = None;
    }

    /// Takes the editor's word that its text is `text` at `version` (after a repair).
    pub fn reset(&mut self, version: i32, text: &str) {
        self.version = version;
        self.shadow = Shadow::new(text);
        self.inflight = None;
    }

    /// Maps a UTF-16 offset of the room text to an LSP position in the editor's text.
    pub fn room_offset_to_editor(
        &self,
        room: &str,
        off: usize,
        enc: Encoding,
    ) -> tower_lsp_server::lsp_types::Position {
        let room_shadow = Shadow::new(room);
        let c = room_shadow.utf16_to_char(off);
        let c = if self.shadow.eq_str(room) {
            c
        } else {
            let a: Vec<char> = self.shadow.text().chars().collect();
            let b: Vec<char> = room.chars().collect();
            map_pos_back(&diff_regions(&a, &b), c)
        };
        self.shadow.char_to_pos(c, enc)
    }

    /// Maps an LSP position in the editor's text to a UTF-16 offset of the room text.
    pub fn editor_pos_to_room(&self, room: &str, pos: tower_lsp_server::lsp_types::Position, enc: Encoding) -> usize {
        let c = self.shadow.pos_to_char(pos, enc);
        let room_shadow = Shadow::new(room);
        let c = if self.shadow.eq_str(room) {
            c
        } else {
            let a: Vec<char> = self.shadow.text().chars().collect();
            let b: Vec<char> = room.chars().collect();
            map_pos(&diff_regions(&a, &b), c)
        };
        room_shadow.char_to_utf16(c)
    }
}

/// Applies room operations to a plain string (the tests' stand-in for a `Y.Text`).
pub fn apply_ops(text: &str, ops: &[RoomOp]) -> String {
    let mut s = Shadow::new(text);
    for op in ops {
        let start = s.utf16_to_char(op.start_utf16 as usize);
        let end = s.utf16_to_char((op.start_utf16 + op.delete_utf16) as usize);
        s.apply(&CharEdit {
            start,
            end,
            text: op.insert.clone(),
        });
    }
    s.text()
}

/// Applies LSP text edits (all in positions of `text`) the way an editor does.
pub fn apply_text_edits(text: &str, edits: &[TextEdit], enc: Encoding) -> String {
    let s = Shadow::new(text);
    let mut char_edits: Vec<CharEdit> = edits
        .iter()
        .map(|e| s.change_to_edit(Some(e.range), e.new_text.clone(), enc))
        .collect();
    char_edits.sort_by_key(|e| std::cmp::Reverse(e.start));
    let mut out = s;
    for e in &char_edits {
        out.apply(e);
    }
    out.text()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(s: &Shadow, a: usize, b: usize) -> Option<Range> {
        Some(s.range(a, b, Encoding::Utf16))
    }

    #[test]
    fn local_changes_go_straight_into_an_equal_room() {
        let mut d = DocSync::new(1, "héllo");
        let r = range(d.shadow(), 5, 5);
        let k = d.editor_changed(2, vec![(r, " 🎉".into())], Encoding::Utf16, "héllo");
        let ChangeKind::Local(ops) = k else { panic!("{k:?}") };
        assert_eq!(apply_ops("héllo", &ops), "héllo 🎉");
        assert_eq!(d.shadow().text(), "héllo 🎉");
    }

    #[test]
    fn remote_changes_become_a_batch_and_its_echo_is_recognised() {
        let mut d = DocSync::new(1, "abc");
        let b = d.next_batch("aXbcY", Encoding::Utf16, 7).unwrap();
        assert_eq!((b.id, b.version, b.edits.len()), (7, 1, 2));
        assert_eq!(apply_text_edits("abc", &b.edits, Encoding::Utf16), "aXbcY");
        // Nothing else goes out while it is in flight.
        assert!(d.next_batch("aXbcYZ", Encoding::Utf16, 8).is_none());
        // The editor may minimise or reorder: only the resulting text counts. Two partial steps.
        let s = Shadow::new("abc");
        assert_eq!(
            d.editor_changed(2, vec![(range(&s, 3, 3), "Y".into())], Encoding::Utf16, "aXbcYZ"),
            ChangeKind::PartialEcho
        );
        let s = Shadow::new("abcY");
        assert_eq!(
            d.editor_changed(3, vec![(range(&s, 1, 1), "X".into())], Encoding::Utf16, "aXbcYZ"),
            ChangeKind::Echo
        );
        assert!(!d.has_inflight());
        let b = d.next_batch("aXbcYZ", Encoding::Utf16, 9).unwrap();
        assert_eq!(apply_text_edits("aXbcY", &b.edits, Encoding::Utf16), "aXbcYZ");
    }

    #[test]
    fn a_local_change_during_a_batch_is_rebased_and_the_batch_resent() {
        let mut d = DocSync::new(1, "hello world");
        let room = "hello big world";
        let b = d.next_batch(room, Encoding::Utf16, 1).unwrap();
        // The user types "!" at the end before the editor sees the batch.
        let s = Shadow::new("hello world");
        let k = d.editor_changed(2, vec![(range(&s, 11, 11), "!".into())], Encoding::Utf16, room);
        let ChangeKind::Local(ops) = k else { panic!("{k:?}") };
        let room = apply_ops(room, &ops);
        assert_eq!(room, "hello big world!");
        // The editor refuses the stale batch; the next one re-bases on version 2.
        assert!(d.batch_answered(b.id, false));
        let b = d.next_batch(&room, Encoding::Utf16, 2).unwrap();
        assert_eq!(b.version, 2);
        assert_eq!(apply_text_edits("hello world!", &b.edits, Encoding::Utf16), room);
    }

    #[test]
    fn concurrent_inserts_at_one_spot_keep_both() {
        let mut d = DocSync::new(1, "ab");
        // Remote inserted "R" between a and b; the editor has not seen it; the user types "L" there.
        let k = d.editor_changed(
            2,
            vec![(range(&Shadow::new("ab"), 1, 1), "L".into())],
            Encoding::Utf16,
            "aRb",
        );
        let ChangeKind::Local(ops) = k else { panic!() };
        assert_eq!(apply_ops("aRb", &ops), "aRLb");
        // A delete around the spot does not swallow the remote text.
        let mut d = DocSync::new(1, "ab");
        let k = d.editor_changed(
            2,
            vec![(range(&Shadow::new("ab"), 0, 2), "".into())],
            Encoding::Utf16,
            "aRb",
        );
        let ChangeKind::Local(ops) = k else { panic!() };
        assert_eq!(apply_ops("aRb", &ops), "R");
    }

    #[test]
    fn cursors_map_both_ways_over_pending_changes() {
        let d = DocSync::new(1, "one two");
        let room = "one 🎉 two";
        // "two" starts at UTF-16 offset 7 in the room and at character 4 in the editor.
        assert_eq!(
            d.room_offset_to_editor(room, 7, Encoding::Utf16),
            Position { line: 0, character: 4 }
        );
        assert_eq!(
            d.editor_pos_to_room(room, Position { line: 0, character: 4 }, Encoding::Utf16),
            7
        );
    }

    #[test]
    fn old_versions_are_refused() {
        let mut d = DocSync::new(5, "x");
        assert_eq!(
            d.editor_changed(5, vec![(None, "y".into())], Encoding::Utf16, "x"),
            ChangeKind::OutOfOrder
        );
    }
}

/// A deterministic simulation of an editor, the proxy's bridge and a room with remote
/// typists, over thousands of seeds: whatever the interleaving, once everyone stops, the
/// editor's text equals the room's.
#[cfg(test)]
mod simulation {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::collections::VecDeque;

    enum ToProxy {
        Changed(i32, Vec<(Option<Range>, String)>),
        Answer(u64, bool),
    }

    fn random_edit(rng: &mut StdRng, text: &str) -> (usize, usize, String) {
        let len = text.chars().count();
        let start = rng.random_range(0..=len);
        let end = if rng.random_bool(0.3) {
            (start + rng.random_range(0..4)).min(len)
        } else {
            start
        };
        let pieces = ["a", "é", "漢", "🎉", "\n", "xy", ""];
        (start, end, pieces[rng.random_range(0..pieces.len())].to_string())
    }

    fn run(seed: u64) {
        let mut rng = StdRng::seed_from_u64(seed);
        let enc = [Encoding::Utf8, Encoding::Utf16, Encoding::Utf32][rng.random_range(0..3)];
        let mut room = "start\n".to_string();
        let mut editor = room.clone();
        let mut editor_version = 1;
        let mut doc = DocSync::new(1, &editor);
        let mut to_proxy: VecDeque<ToProxy> = VecDeque::new();
        let mut to_editor: VecDeque<EditorBatch> = VecDeque::new();
        let mut next_id = 0;
        for step in 0..400 {
            let quiet = step >= 300;
            match rng.random_range(0..5) {
                0 if !quiet => {
                    let (s, e, t) = random_edit(&mut rng, &editor);
                    let sh = Shadow::new(&editor);
                    let range = sh.range(s, e, enc);
                    editor = apply_text_edits(
                        &editor,
                        &[TextEdit {
                            range,
                            new_text: t.clone(),
                        }],
                        enc,
                    );
                    editor_version += 1;
                    to_proxy.push_back(ToProxy::Changed(editor_version, vec![(Some(range), t)]));
                }
                1 if !quiet => {
                    let (s, e, t) = random_edit(&mut rng, &room);
                    let mut sh = Shadow::new(&room);
                    sh.apply(&CharEdit {
                        start: s,
                        end: e,
                        text: t,
                    });
                    room = sh.text();
                }
                2 => {
                    if let Some(msg) = to_proxy.pop_front() {
                        match msg {
                            ToProxy::Changed(v, changes) => match doc.editor_changed(v, changes, enc, &room) {
                                ChangeKind::Local(ops) => room = apply_ops(&room, &ops),
                                ChangeKind::OutOfOrder => panic!("seed {seed}: out of order"),
                                ChangeKind::Echo | ChangeKind::PartialEcho => {}
                            },
                            ToProxy::Answer(id, applied) => {
                                doc.batch_answered(id, applied);
                            }
                        }
                    }
                }
                3 => {
                    next_id += 1;
                    if let Some(b) = doc.next_batch(&room, enc, next_id) {
                        to_editor.push_back(b);
                    }
                }
                _ => {
                    if let Some(b) = to_editor.pop_front() {
                        if b.version == editor_version {
                            // Like Neovim, apply edit by edit (last first), one notification each.
                            let mut edits = b.edits.clone();
                            edits.sort_by_key(|e| std::cmp::Reverse((e.range.start.line, e.range.start.character)));
                            let split = rng.random_bool(0.5);
                            let mut changes = Vec::new();
                            for e in edits {
                                editor = apply_text_edits(&editor, std::slice::from_ref(&e), enc);
                                if split {
                                    editor_version += 1;
                                    to_proxy
                                        .push_back(ToProxy::Changed(editor_version, vec![(Some(e.range), e.new_text)]));
                                } else {
                                    changes.push((Some(e.range), e.new_text));
                                }
                            }
                            if !split {
                                editor_version += 1;
                                to_proxy.push_back(ToProxy::Changed(editor_version, changes));
                            }
                            to_proxy.push_back(ToProxy::Answer(b.id, true));
                        } else {
                            to_proxy.push_back(ToProxy::Answer(b.id, false));
                        }
                    }
                }
            }
        }
        // Quiet: deliver everything until nothing moves.
        for _ in 0..10_000 {
            if let Some(msg) = to_proxy.pop_front() {
                match msg {
                    ToProxy::Changed(v, changes) => {
                        if let ChangeKind::Local(ops) = doc.editor_changed(v, changes, enc, &room) {
                            room = apply_ops(&room, &ops);
                        }
                    }
                    ToProxy::Answer(id, applied) => {
                        doc.batch_answered(id, applied);
                    }
                }
                continue;
            }
            if let Some(b) = to_editor.pop_front() {
                if b.version == editor_version {
                    editor = apply_text_edits(&editor, &b.edits, enc);
                    editor_version += 1;
                    to_proxy.push_back(ToProxy::Changed(editor_version, vec![(None, editor.clone())]));
                    to_proxy.push_back(ToProxy::Answer(b.id, true));
                } else {
                    to_proxy.push_back(ToProxy::Answer(b.id, false));
                }
                continue;
            }
            next_id += 1;
            match doc.next_batch(&room, enc, next_id) {
                Some(b) => to_editor.push_back(b),
                None => break,
            }
        }
        assert_eq!(editor, room, "seed {seed} ({enc:?}): editor and room differ");
        assert!(
            doc.shadow().eq_str(&editor),
            "seed {seed}: shadow differs from the editor"
        );
    }

    #[test]
    fn editor_and_room_converge_for_many_seeds() {
        let base: u64 = std::env::var("MESH_SIM_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        for seed in base..base + 600 {
            run(seed);
        }
    }
}

#[cfg(test)]
mod repair {
    use super::*;

    #[test]
    fn a_full_batch_replaces_a_buffer_longer_than_the_shadow() {
        let mut d = DocSync::new(3, "short");
        let b = d.full_batch("room text", Encoding::Utf16, 1);
        let editor = "short, but the editor had much more\nthan we knew\n";
        assert_eq!(apply_text_edits(editor, &b.edits, Encoding::Utf16), "room text");
        let echo = b.edits.into_iter().map(|e| (Some(e.range), e.new_text)).collect();
        assert_eq!(
            d.editor_changed(4, echo, Encoding::Utf16, "room text"),
            ChangeKind::Echo
        );
    }
}

/// The LSP content changes that turn `shadow` (whose characters are `base`) into `new`,
/// last region first so that each change's positions hold when applied in order.
pub fn diff_changes(shadow: &Shadow, base: &[char], new: &[char]) -> Vec<(Option<Range>, String)> {
    diff_regions(base, new)
        .into_iter()
        .rev()
        .map(|r| {
            (
                Some(shadow.range(r.a_start, r.a_end, Encoding::Utf16)),
                new[r.b_start..r.b_end].iter().collect(),
            )
        })
        .collect()
}
