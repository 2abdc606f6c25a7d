//! The editor bridge's core: one open document, kept in step between the editor's buffer
//! and the room's `Y.Text`. Sans-IO: it takes the editor's changes and the room's changes
//! and returns operations for the room and edits for the editor.
//!
//! The proxy keeps a *shadow*: the editor's text at the version it last reported, and the
//! exact map from the shadow to the room's text ([`Pending`]): the remote changes the editor
//! has not applied yet, composed one by one as the room reports them (each `Y.Text` event's
//! delta), never rediscovered by diffing the two texts. Every local change is applied to the
//! shadow and mapped through that map into the room at once, so it deletes only text the user
//! saw and lands where the user put it, however many remote changes wait and however large
//! the text. Remote changes are sent with `workspace/applyEdit` against the shadow's version,
//! one batch in flight at a time; the batch's edits are the map's changes (merged into one
//! replacement past [`MAX_EDITS_PER_BATCH`], which only the editor sees). The editor reports
//! the applied batch back as `didChange` (the echo); it is recognised by the text it produces,
//! not by the shape of its changes, because editors may split or minimise edits. While a
//! batch is in flight the map of the room changes since it was sent is kept beside it, so
//! the echo turns the map into exactly those changes. A local change made while a batch is in
//! flight makes the editor refuse the batch (its version moved on); the change is pushed into
//! the room mapped over everything pending, and the remainder is sent again.
//!
//! A document that is not *tracked* (disk sync, which does not see the room's deltas) derives
//! the map from a diff of the shadow and the room's text at each change, as does a tracked one
//! when the room's file was replaced as a whole (a first sync, a share) and its history is
//! not known.

use similar::{capture_diff_slices_deadline, Algorithm, DiffOp};
use std::borrow::Cow;
use std::time::{Duration, Instant};
use tower_lsp_server::lsp_types::{Position, Range, TextEdit};

use crate::pending::utf16_len;
pub use crate::pending::{Delta, Pending};
use crate::text::{CharEdit, Encoding, Shadow};

/// Longest time spent diffing two versions of a document; past it the whole differing
/// middle becomes one replacement (still correct, just coarser). Only texts with no known
/// history between them are diffed (a file first seen, disk sync).
const DIFF_DEADLINE: Duration = Duration::from_millis(50);

/// A line number past the end of any real buffer (editors clamp it to the end).
const FAR_LINE: u32 = 1 << 30;

/// More separate edits than this in one batch are merged into one replacement: editors
/// apply a single edit faster than thousands of small ones (Neovim reports each edit as its
/// own `didChange`). Only what the editor is sent is merged; re-basing stays exact.
pub const MAX_EDITS_PER_BATCH: usize = 256;

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

/// A change to a room file's text as the session saw it happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomTextChange {
    /// An edit of the file's `Y.Text`: its delta, in UTF-16 units of the text before it.
    Delta(Vec<Delta>),
    /// The file's `Y.Text` was replaced or removed as a whole: no history relates the old
    /// text to the new one.
    Replaced,
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

/// What is known of the room's changes since a batch was sent.
#[derive(Debug, Clone)]
enum Since {
    /// The exact map from the batch's text to the room's.
    Tracking(Pending),
    /// The room's file was replaced meanwhile (or the document is not tracked): once the
    /// echo comes, the map is derived again.
    Unknown,
    /// A local change came first: the editor will refuse the batch (its version moved on).
    Stale,
}

#[derive(Debug, Clone)]
struct Inflight {
    id: u64,
    /// The shadow's text when the batch was sent, as characters.
    base: Vec<char>,
    /// The batch's edits as sent, in `base` coordinates.
    regions: Vec<Region>,
    /// The text the editor holds once the whole batch is applied.
    expected: String,
    /// The same, as characters (compared with each partial echo).
    expected_chars: Vec<char>,
    /// The batch as an exact map from `base` to `expected`.
    batch: Pending,
    /// Whether the batch's changes were merged into one edit for the editor.
    merged: bool,
    /// The room's changes since the batch was sent.
    since: Since,
    sent: Instant,
    /// When the editor said `applied: true`; only the echo is missing since.
    accepted: Option<Instant>,
}

/// One open document.
#[derive(Debug)]
pub struct DocSync {
    /// Editor version of the shadow.
    pub version: i32,
    shadow: Shadow,
    /// Whether the room's changes are fed in ([`DocSync::room_changed`]).
    tracked: bool,
    /// The exact map from the shadow to the room's text; `None` when unknown (derived from a
    /// diff at its next use).
    pending: Option<Pending>,
    inflight: Option<Inflight>,
}

/// A changed region between two texts: `a[a_start..a_end]` became `b[b_start..b_end]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// Start in the first text (characters).
    pub a_start: usize,
    /// End in the first text.
    pub a_end: usize,
    /// Start in the second text.
    pub b_start: usize,
    /// End in the second text.
    pub b_end: usize,
}

/// The changed regions between `a` and `b`, sorted, non-overlapping, as many as there are
/// (past [`DIFF_DEADLINE`] the rest of the middle becomes one region).
pub fn diff_regions_exact(a: &[char], b: &[char]) -> Vec<Region> {
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
    out
}

/// [`diff_regions_exact`], with more than [`MAX_EDITS_PER_BATCH`] regions merged into one
/// (for edits an editor is sent).
pub fn diff_regions(a: &[char], b: &[char]) -> Vec<Region> {
    merge_regions(diff_regions_exact(a, b))
}

/// More than [`MAX_EDITS_PER_BATCH`] regions become one spanning them all.
fn merge_regions(regions: Vec<Region>) -> Vec<Region> {
    if regions.len() <= MAX_EDITS_PER_BATCH {
        return regions;
    }
    let (first, last) = (regions[0], regions[regions.len() - 1]);
    vec![Region {
        a_start: first.a_start,
        a_end: last.a_end,
        b_start: first.b_start,
        b_end: last.b_end,
    }]
}

/// Most states [`partial_mask`] looks at before it gives up (a text built to be ambiguous
/// everywhere); far more than any real echo needs.
const PARTIAL_ECHO_BUDGET: usize = 100_000;

/// Which of `regions` `now` holds applied, when `now` is `base` with each of them either fully
/// applied or not at all (`new` holds the replacement texts); `None` when it is not. Editors
/// apply a batch's edits in any order and report each as its own change (Neovim: last
/// first), so every subset is tried: a depth-first search over the regions that prefers
/// "applied", remembering the (region, offset) states that failed.
fn partial_mask(base: &[char], regions: &[Region], new: &[char], now: &[char]) -> Option<Vec<bool>> {
    let mut search = EchoSearch {
        base,
        regions,
        new,
        now,
        failed: std::collections::HashSet::new(),
        mask: Vec::with_capacity(regions.len()),
        budget: PARTIAL_ECHO_BUDGET,
    };
    search.from(0, 0).then_some(search.mask)
}

/// The state of [`partial_mask`]'s search.
struct EchoSearch<'a> {
    base: &'a [char],
    regions: &'a [Region],
    new: &'a [char],
    now: &'a [char],
    /// (region, offset in `now`) states known not to lead to a match.
    failed: std::collections::HashSet<(usize, usize)>,
    /// The choices on the current path: whether each region is applied.
    mask: Vec<bool>,
    budget: usize,
}

impl EchoSearch<'_> {
    /// Whether `now[s..]` is the base from the end of region `i - 1` on, with each region from
    /// `i` on applied or not.
    fn from(&mut self, i: usize, s: usize) -> bool {
        if self.budget == 0 || self.failed.contains(&(i, s)) {
            return false;
        }
        self.budget -= 1;
        let from = if i == 0 { 0 } else { self.regions[i - 1].a_end };
        let to = self.regions.get(i).map_or(self.base.len(), |r| r.a_start);
        let equal = &self.base[from..to];
        if !self.now[s.min(self.now.len())..].starts_with(equal) {
            self.failed.insert((i, s));
            return false;
        }
        let at = s + equal.len();
        let Some(r) = self.regions.get(i).copied() else {
            return at == self.now.len();
        };
        for applied in [true, false] {
            let piece = if applied {
                &self.new[r.b_start..r.b_end]
            } else {
                &self.base[r.a_start..r.a_end]
            };
            if self.now[at..].starts_with(piece) {
                self.mask.push(applied);
                if self.from(i + 1, at + piece.len()) {
                    return true;
                }
                self.mask.pop();
            }
        }
        self.failed.insert((i, s));
        false
    }
}

impl DocSync {
    /// A document the editor opened at `version` with `text`, whose room changes are not fed
    /// in: the map to the room's text is derived from a diff at each change (disk sync).
    pub fn new(version: i32, text: &str) -> Self {
        DocSync {
            version,
            shadow: Shadow::new(text),
            tracked: false,
            pending: None,
            inflight: None,
        }
    }

    /// A document the editor opened at `version` with `text`, whose room changes are fed in
    /// with [`DocSync::room_changed`]: re-basing is exact.
    pub fn tracking(version: i32, text: &str) -> Self {
        DocSync {
            tracked: true,
            ..DocSync::new(version, text)
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

    /// When the batch in flight was sent, and when the editor accepted it (if it did yet).
    pub fn inflight_times(&self) -> Option<(Instant, Option<Instant>)> {
        self.inflight.as_ref().map(|i| (i.sent, i.accepted))
    }

    /// The text the editor will hold once the batch in flight is applied.
    pub fn inflight_expected(&self) -> Option<&str> {
        self.inflight.as_ref().map(|i| i.expected.as_str())
    }

    /// How many separate remote changes wait for the editor (as far as the map knows).
    pub fn pending_changes(&self) -> Option<usize> {
        self.pending.as_ref().map(Pending::changes_len)
    }

    /// The room changed this document's text (a tracked document sees every change that did
    /// not come from itself, in order).
    pub fn room_changed(&mut self, change: &RoomTextChange) {
        if !self.tracked {
            return;
        }
        match change {
            RoomTextChange::Replaced => {
                self.pending = None;
                if let Some(i) = &mut self.inflight {
                    if matches!(i.since, Since::Tracking(_)) {
                        i.since = Since::Unknown;
                    }
                }
            }
            RoomTextChange::Delta(delta) => {
                if let Some(p) = &mut self.pending {
                    if let Err(e) = p.compose(delta) {
                        tracing::error!(error = %e, "a room change does not fit the editor's map");
                        self.pending = None;
                    }
                }
                if let Some(i) = &mut self.inflight {
                    if let Since::Tracking(q) = &mut i.since {
                        if q.compose(delta).is_err() {
                            i.since = Since::Unknown;
                        }
                    }
                }
            }
        }
    }

    /// Takes `map` as the exact map from the shadow to the room's text (one kept since the
    /// shadow's text was the room's), instead of deriving one from a diff: a diff can only
    /// guess which of two equal stretches is which, and a guess puts a local change into
    /// text the user never saw. Refused (`false`) when it does not fit the shadow.
    pub fn adopt_map(&mut self, map: Pending) -> bool {
        if !self.tracked || self.inflight.is_some() || map.shadow_len() != self.shadow.len_utf16() {
            return false;
        }
        self.pending = Some(map);
        true
    }

    /// Forgets the map to the room's text (local operations were not applied to the room,
    /// e.g. a reader's): it is derived again at its next use.
    pub fn forget_room(&mut self) {
        self.pending = None;
    }

    /// The map from the shadow to `room`, taken out: the kept one when it fits, else derived
    /// from a diff (loudly for a tracked document, whose map should always fit).
    fn take_pending(&mut self, room: &str) -> Pending {
        let (shadow_len, room_len) = (self.shadow.len_utf16(), utf16_len(room));
        match self.pending.take() {
            Some(p) if self.tracked && p.shadow_len() == shadow_len && p.room_len() == room_len => p,
            Some(p) if self.tracked => {
                tracing::error!(
                    map = ?(p.shadow_len(), p.room_len()),
                    texts = ?(shadow_len, room_len),
                    "the map from the editor's text to the room's does not fit them; derived again"
                );
                self.derive(room)
            }
            _ => self.derive(room),
        }
    }

    /// The map from the shadow to `room` by a diff.
    fn derive(&self, room: &str) -> Pending {
        let a: Vec<char> = self.shadow.text().chars().collect();
        let b: Vec<char> = room.chars().collect();
        Pending::from_diff(&a, &b)
    }

    /// The map to read positions through: the kept one when it fits `room`, else derived.
    fn map_for(&self, room: &str) -> Cow<'_, Pending> {
        match &self.pending {
            Some(p) if p.shadow_len() == self.shadow.len_utf16() && p.room_len() == utf16_len(room) => Cow::Borrowed(p),
            _ => Cow::Owned(self.derive(room)),
        }
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
        if let Some(kind) = self.echo(&next) {
            self.shadow = next;
            self.version = version;
            return kind;
        }
        // The user's own change: each step goes into the room mapped over what the room has
        // that the editor does not, and into the map.
        let mut map = self.take_pending(room);
        let mut ops = Vec::with_capacity(edits.len());
        for e in edits {
            let (start, end) = (self.shadow.char_to_utf16(e.start), self.shadow.char_to_utf16(e.end));
            ops.extend(map.apply_local(start, end, &e.text));
            self.shadow.apply(&e);
        }
        if self.tracked {
            self.pending = Some(map);
        }
        if let Some(i) = &mut self.inflight {
            i.since = Since::Stale;
        }
        self.version = version;
        ChangeKind::Local(ops)
    }

    /// Whether the editor's text `next` is (part of) the batch in flight; if so, the map is
    /// brought up to date (the caller then takes `next` as the shadow).
    fn echo(&mut self, next: &Shadow) -> Option<ChangeKind> {
        let inflight = self.inflight.as_ref()?;
        if matches!(inflight.since, Since::Stale) {
            return None;
        }
        if next.eq_str(&inflight.expected) {
            let inflight = self.inflight.take().expect("checked above");
            self.pending = match inflight.since {
                Since::Tracking(since) if self.tracked => Some(since),
                _ => None,
            };
            return Some(ChangeKind::Echo);
        }
        let now: Vec<char> = next.text().chars().collect();
        let mask = partial_mask(&inflight.base, &inflight.regions, &inflight.expected_chars, &now)?;
        self.pending = match &inflight.since {
            Since::Tracking(since) if self.tracked => {
                let applied = |i: usize| if inflight.merged { mask[0] } else { mask[i] };
                let mut map = inflight.batch.with_applied(applied);
                map.then(since).ok().map(|()| map)
            }
            _ => None,
        };
        Some(ChangeKind::PartialEcho)
    }

    /// If the room has changes the editor lacks and nothing is in flight, the batch to send.
    pub fn next_batch(&mut self, room: &str, enc: Encoding, id: u64) -> Option<EditorBatch> {
        if self.inflight.is_some() {
            return None;
        }
        let mut map = self.take_pending(room);
        // The batch's text must be the room's: a map that drifted is derived again, loudly.
        let fits = if map.is_identity() {
            self.shadow.eq_str(room)
        } else {
            map.apply_to(&self.shadow) == room
        };
        if !fits {
            tracing::error!("the map from the editor's text to the room's drifted; derived again");
            map = self.derive(room);
        }
        if map.is_identity() {
            self.pending = Some(map);
            return None;
        }
        let mut regions = Vec::with_capacity(map.changes_len());
        let mut texts: Vec<String> = Vec::with_capacity(map.changes_len());
        let mut shift: isize = 0;
        for (start, end, added) in map.changes() {
            let (a_start, a_end) = (self.shadow.utf16_to_char(start), self.shadow.utf16_to_char(end));
            let added_chars = added.chars().count();
            let b_start = (a_start as isize + shift) as usize;
            regions.push(Region {
                a_start,
                a_end,
                b_start,
                b_end: b_start + added_chars,
            });
            texts.push(added.to_string());
            shift += added_chars as isize - (a_end - a_start) as isize;
        }
        let merged = regions.len() > MAX_EDITS_PER_BATCH;
        if merged {
            regions = merge_regions(regions);
            let r = regions[0];
            texts = vec![room.chars().skip(r.b_start).take(r.b_end - r.b_start).collect()];
        }
        let edits = regions
            .iter()
            .zip(texts)
            .map(|(r, new_text)| TextEdit {
                range: self.shadow.range(r.a_start, r.a_end, enc),
                new_text,
            })
            .collect();
        self.inflight = Some(Inflight {
            id,
            base: self.shadow.text().chars().collect(),
            regions,
            expected: room.to_string(),
            expected_chars: room.chars().collect(),
            batch: map.clone(),
            merged,
            since: if self.tracked {
                Since::Tracking(Pending::identity(map.room_len()))
            } else {
                Since::Unknown
            },
            sent: Instant::now(),
            accepted: None,
        });
        self.pending = Some(map);
        Some(EditorBatch {
            id,
            version: self.version,
            edits,
        })
    }

    /// A batch that replaces the whole buffer with `room` (used to repair a desync).
    pub fn full_batch(&mut self, room: &str, _enc: Encoding, id: u64) -> EditorBatch {
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
        let room_len = utf16_len(room);
        let mut batch = Pending::identity(self.shadow.len_utf16());
        let _ = batch.compose(&[
            Delta::Delete(self.shadow.len_utf16() as u32),
            Delta::Insert(room.to_string()),
        ]);
        // What the editor holds is unknown: until the echo, the map is a diff's guess.
        self.pending = None;
        self.inflight = Some(Inflight {
            id,
            base,
            regions,
            expected: room.to_string(),
            expected_chars: room.chars().collect(),
            batch,
            merged: true,
            since: if self.tracked {
                Since::Tracking(Pending::identity(room_len))
            } else {
                Since::Unknown
            },
            sent: Instant::now(),
            accepted: None,
        });
        EditorBatch {
            id,
            version: self.version,
            edits,
        }
    }

    /// The editor answered batch `id` (at `now`). Returns whether the caller should look for
    /// the next batch (the editor refused this one, so it must be re-based and sent again).
    pub fn batch_answered(&mut self, id: u64, applied: bool, now: Instant) -> bool {
        match &mut self.inflight {
            Some(i) if i.id == id => {
                if applied {
                    i.accepted = Some(now);
                    false
                } else {
                    // The map still leads from the shadow to the room: nothing to undo.
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
        self.pending = None;
        self.inflight = None;
    }

    /// Maps a UTF-16 offset of the room text to an LSP position in the editor's text.
    pub fn room_offset_to_editor(&self, room: &str, off: usize, enc: Encoding) -> Position {
        let map = self.map_for(room);
        let s = map.map_back(off.min(map.room_len()));
        self.shadow.char_to_pos(self.shadow.utf16_to_char(s), enc)
    }

    /// Maps an LSP position in the editor's text to a UTF-16 offset of the room text.
    pub fn editor_pos_to_room(&self, room: &str, pos: Position, enc: Encoding) -> usize {
        let c = self.shadow.pos_to_char(pos, enc);
        self.map_for(room).map(self.shadow.char_to_utf16(c), true)
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
        assert!(d.batch_answered(b.id, false, Instant::now()));
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

    /// A replace-all by someone else: more separate changes than a batch holds, waiting for
    /// the editor, which has a batch in flight.
    fn lagging_after_a_replace_all(words: usize) -> (DocSync, String, Shadow) {
        let text: String = (0..words).map(|i| format!("w{i} ")).collect();
        let mut d = DocSync::tracking(1, &text);
        assert!(d.next_batch(&text, Encoding::Utf16, 1).is_none());
        // Every space becomes "_R_" (one transaction, as a replace-all is).
        let mut delta = Vec::new();
        let mut last = 0usize;
        for (i, _) in text.match_indices(' ') {
            delta.push(Delta::Retain((i - last) as u32));
            delta.push(Delta::Delete(1));
            delta.push(Delta::Insert("_R_".into()));
            last = i + 1;
        }
        d.room_changed(&RoomTextChange::Delta(delta));
        let room = text.replace(' ', "_R_");
        let batch = d.next_batch(&room, Encoding::Utf16, 2).expect("a batch");
        assert_eq!(batch.edits.len(), 1, "past the cap the editor gets one edit");
        (d, room, Shadow::new(&text))
    }

    #[test]
    fn a_delete_over_hundreds_of_pending_remote_changes_removes_only_what_the_user_saw() {
        let words = MAX_EDITS_PER_BATCH + 100;
        let (mut d, room, shadow) = lagging_after_a_replace_all(words);
        assert_eq!(d.pending_changes(), Some(words));
        // The user, who still sees "w0 w1 ...", deletes everything from "w1" to the end.
        let start = 3;
        let r = range(&shadow, start, shadow.len_chars());
        let ChangeKind::Local(ops) = d.editor_changed(2, vec![(r, String::new())], Encoding::Utf16, &room) else {
            panic!("a local change")
        };
        let room = apply_ops(&room, &ops);
        // The words the user saw are gone; every replacement the user never saw is still there.
        let want = format!("w0_R_{}", "_R_".repeat(words - 1));
        assert_eq!(room, want);
        // The editor refuses the stale batch; the next one brings it to the room's text.
        assert!(d.batch_answered(2, false, Instant::now()));
        let b = d.next_batch(&room, Encoding::Utf16, 3).unwrap();
        assert_eq!(apply_text_edits("w0 ", &b.edits, Encoding::Utf16), room);
    }

    #[test]
    fn typing_between_hundreds_of_pending_remote_changes_lands_where_the_user_typed() {
        let words = MAX_EDITS_PER_BATCH * 2;
        let (mut d, room, shadow) = lagging_after_a_replace_all(words);
        // The user types "!" right after "w300" (before its space, which the room replaced).
        let at = shadow.text().find("w300 ").unwrap() + 4;
        let r = range(&shadow, at, at);
        let ChangeKind::Local(ops) = d.editor_changed(2, vec![(r, "!".into())], Encoding::Utf16, &room) else {
            panic!("a local change")
        };
        let room2 = apply_ops(&room, &ops);
        assert_eq!(room2, room.replace("w300_R_", "w300!_R_"));
    }

    #[test]
    fn the_echo_of_a_merged_batch_leaves_only_what_came_after_it() {
        let (mut d, room, _) = lagging_after_a_replace_all(MAX_EDITS_PER_BATCH + 1);
        // More arrives while the batch is out.
        let n = utf16_len(&room) as u32;
        d.room_changed(&RoomTextChange::Delta(vec![
            Delta::Retain(n),
            Delta::Insert("tail".into()),
        ]));
        let room2 = format!("{room}tail");
        let echo = d.editor_changed(2, vec![(None, room.clone())], Encoding::Utf16, &room2);
        assert_eq!(echo, ChangeKind::Echo);
        assert_eq!(d.pending_changes(), Some(1));
        let b = d.next_batch(&room2, Encoding::Utf16, 3).unwrap();
        assert_eq!(apply_text_edits(&room, &b.edits, Encoding::Utf16), room2);
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
/// typists. Every typist (the local user and the remote ones) types unique markers among
/// other text; remote typists sometimes make hundreds of separate changes at once (a
/// replace-all) while the editor lags, and the user deletes across them. Whatever the
/// interleaving, once everyone stops: the editor's text equals the room's, and every marker
/// appears exactly once unless an operation that saw it deleted it (never twice). The map
/// from the shadow to the room is checked against the texts after every step.
///
/// By default 100 seeds run plain, 20 with replace-alls and 25 untracked (about six, three and
/// six seconds of CPU in a debug build); `MESH_SIM_SEED` moves the first seed and
/// `MESH_SIM_SEEDS` sets how many each test runs, to run thousands.
#[cfg(test)]
mod simulation {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};
    use std::collections::{HashSet, VecDeque};

    /// Seeds per run by default: what a debug build runs in a few seconds.
    const SEEDS: u64 = 100;

    /// Seeds with replace-alls per run by default (their texts grow large: slower per seed).
    const BURST_SEEDS: u64 = 20;

    /// Untracked seeds per run by default (each change is a diff: slower per seed).
    const UNTRACKED_SEEDS: u64 = 25;

    /// Steps of activity per seed, then quiet.
    const STEPS: usize = 300;

    /// Separate changes in one remote burst: past [`MAX_EDITS_PER_BATCH`], where a batch is
    /// merged into one edit.
    const BURST: usize = MAX_EDITS_PER_BATCH + 44;

    /// A marker is `«`, four digits, who typed it, the same four digits, `»`: a complete one can
    /// only be made of its own characters, so a count of complete markers is exact.
    const MARKER_CHARS: usize = 11;

    enum ToProxy {
        Changed(i32, Vec<(Option<Range>, String)>),
        Answer(u64, bool),
    }

    /// The markers typed so far, and those an operation that saw them deleted (wholly or in part).
    #[derive(Default)]
    struct Markers {
        next: u32,
        typed: Vec<String>,
        deleted: HashSet<String>,
    }

    impl Markers {
        fn new_marker(&mut self, who: char) -> String {
            self.next += 1;
            let m = format!("«{:04}{who}{:04}»", self.next, self.next);
            self.typed.push(m.clone());
            m
        }

        /// The complete markers in `text`: (start, end) in characters, and the marker.
        fn spans(text: &str) -> Vec<(usize, usize, String)> {
            let chars: Vec<char> = text.chars().collect();
            let mut out = Vec::new();
            for i in 0..chars.len() {
                if chars[i] == '«' && i + MARKER_CHARS <= chars.len() && chars[i + MARKER_CHARS - 1] == '»' {
                    let m: String = chars[i..i + MARKER_CHARS].iter().collect();
                    if m[2..].chars().take(4).all(|c| c.is_ascii_digit()) {
                        out.push((i, i + MARKER_CHARS, m));
                    }
                }
            }
            out
        }

        /// An operation that sees `text` deletes `s..e` (characters).
        fn deleting(&mut self, text: &str, s: usize, e: usize) {
            if s == e {
                return;
            }
            for (ms, me, m) in Self::spans(text) {
                if ms < e && s < me {
                    self.deleted.insert(m);
                }
            }
        }

        /// `p` moved out of any marker of `text` (typing never splits a marker).
        fn outside(text: &str, p: usize) -> usize {
            Self::spans(text)
                .into_iter()
                .find(|(ms, me, _)| *ms < p && p < *me)
                .map_or(p, |(_, me, _)| me)
        }

        fn check(&self, seed: u64, text: &str) {
            for m in &self.typed {
                let n = text.matches(m.as_str()).count();
                if self.deleted.contains(m) {
                    assert!(
                        n <= 1,
                        "seed {seed}: marker {m} appears {n} times (deleted one)\n{text}"
                    );
                } else {
                    assert_eq!(
                        n, 1,
                        "seed {seed}: marker {m} appears {n} times, nobody deleted it\n{text}"
                    );
                }
            }
        }
    }

    struct Sim {
        seed: u64,
        rng: StdRng,
        enc: Encoding,
        tracked: bool,
        room: String,
        editor: String,
        editor_version: i32,
        doc: DocSync,
        to_proxy: VecDeque<ToProxy>,
        to_editor: VecDeque<EditorBatch>,
        next_id: u64,
        markers: Markers,
    }

    impl Sim {
        /// A random edit of `text` by `who`: (start, end, text) in characters.
        fn random_edit(&mut self, text: &str, who: char) -> (usize, usize, String) {
            let len = text.chars().count();
            let start = Markers::outside(text, self.rng.random_range(0..=len));
            let end = match self.rng.random_range(0..10) {
                0..=2 => (start + self.rng.random_range(0..4)).min(len),
                3 => (start + self.rng.random_range(0..60)).min(len),
                _ => start,
            };
            let insert = if self.rng.random_bool(0.4) {
                self.markers.new_marker(who)
            } else {
                let pieces = ["a", "é", "漢", "🎉", "\n", "xy", ""];
                pieces[self.rng.random_range(0..pieces.len())].to_string()
            };
            self.markers.deleting(text, start, end);
            (start, end, insert)
        }

        fn local_edit(&mut self) {
            let editor = self.editor.clone();
            let (s, e, t) = self.random_edit(&editor, 'E');
            let range = Shadow::new(&editor).range(s, e, self.enc);
            let edit = TextEdit {
                range,
                new_text: t.clone(),
            };
            self.editor = apply_text_edits(&editor, &[edit], self.enc);
            self.editor_version += 1;
            self.to_proxy
                .push_back(ToProxy::Changed(self.editor_version, vec![(Some(range), t)]));
        }

        /// One remote transaction: `edits` in characters of the room text, in order, each in
        /// coordinates of the text the ones before it left.
        fn remote(&mut self, edits: Vec<(usize, usize, String)>) {
            let mut sh = Shadow::new(&self.room);
            let mut delta = Vec::new();
            // A delta walks the text once: sort the edits and give them as retains from the
            // previous end, as a `Y.Text` event does.
            let mut at = 0usize;
            for (s, e, t) in edits {
                let (s16, e16) = (sh.char_to_utf16(s), sh.char_to_utf16(e));
                delta.push(Delta::Retain((s16 - at) as u32));
                delta.push(Delta::Delete((e16 - s16) as u32));
                delta.push(Delta::Insert(t.clone()));
                at = s16 + utf16_len(&t);
                sh.apply(&CharEdit {
                    start: s,
                    end: e,
                    text: t,
                });
            }
            self.room = sh.text();
            self.doc.room_changed(&RoomTextChange::Delta(delta));
        }

        fn remote_edit(&mut self) {
            let room = self.room.clone();
            let edit = self.random_edit(&room, 'R');
            self.remote(vec![edit]);
        }

        /// A replace-all: more separate inserts than a batch holds, in one transaction.
        fn remote_burst(&mut self) {
            let room = self.room.clone();
            let len = room.chars().count();
            let spans = Markers::spans(&room);
            let mut spots: Vec<usize> = (0..BURST)
                .map(|_| {
                    let p = self.rng.random_range(0..=len);
                    spans
                        .iter()
                        .find(|(ms, me, _)| *ms < p && p < *me)
                        .map_or(p, |(_, me, _)| *me)
                })
                .collect();
            spots.sort();
            spots.dedup();
            let mut shift = 0usize;
            let mut edits = Vec::new();
            for p in spots {
                let m = self.markers.new_marker('R');
                edits.push((p + shift, p + shift, m));
                shift += MARKER_CHARS;
            }
            self.remote(edits);
        }

        fn check_map(&self, when: &str) {
            if !self.tracked {
                return;
            }
            if let Some(p) = &self.doc.pending {
                assert_eq!(
                    p.apply_to(&self.doc.shadow),
                    self.room,
                    "seed {}: the map drifted ({when})",
                    self.seed
                );
            }
        }

        fn deliver_to_proxy(&mut self) -> bool {
            let Some(msg) = self.to_proxy.pop_front() else {
                return false;
            };
            match msg {
                ToProxy::Changed(v, changes) => match self.doc.editor_changed(v, changes, self.enc, &self.room) {
                    ChangeKind::Local(ops) => self.room = apply_ops(&self.room, &ops),
                    ChangeKind::OutOfOrder => panic!("seed {}: out of order", self.seed),
                    ChangeKind::Echo | ChangeKind::PartialEcho => {}
                },
                ToProxy::Answer(id, applied) => {
                    self.doc.batch_answered(id, applied, Instant::now());
                }
            }
            self.check_map("after a change from the editor");
            true
        }

        fn send_batch(&mut self) -> bool {
            self.next_id += 1;
            let batch = self.doc.next_batch(&self.room, self.enc, self.next_id);
            self.check_map("after a batch");
            match batch {
                Some(b) => {
                    assert_eq!(
                        apply_text_edits(&self.doc.shadow.text(), &b.edits, self.enc),
                        self.room,
                        "seed {}: the batch does not lead to the room's text",
                        self.seed
                    );
                    self.to_editor.push_back(b);
                    true
                }
                None => false,
            }
        }

        /// The editor takes the oldest batch: applies it when its version matches (edit by
        /// edit, last first, like Neovim, or all in one change) and answers.
        fn deliver_to_editor(&mut self, whole: bool) -> bool {
            let Some(b) = self.to_editor.pop_front() else {
                return false;
            };
            if b.version != self.editor_version {
                self.to_proxy.push_back(ToProxy::Answer(b.id, false));
                return true;
            }
            if whole {
                self.editor = apply_text_edits(&self.editor, &b.edits, self.enc);
                self.editor_version += 1;
                let text = self.editor.clone();
                self.to_proxy
                    .push_back(ToProxy::Changed(self.editor_version, vec![(None, text)]));
            } else {
                let mut edits = b.edits.clone();
                edits.sort_by_key(|e| std::cmp::Reverse((e.range.start.line, e.range.start.character)));
                let split = self.rng.random_bool(0.5);
                let mut changes = Vec::new();
                // Last first: each edit's positions still hold when it is applied.
                let mut editor = Shadow::new(&self.editor);
                for e in edits {
                    let edit = editor.change_to_edit(Some(e.range), e.new_text.clone(), self.enc);
                    editor.apply(&edit);
                    if split {
                        self.editor_version += 1;
                        self.to_proxy
                            .push_back(ToProxy::Changed(self.editor_version, vec![(Some(e.range), e.new_text)]));
                    } else {
                        changes.push((Some(e.range), e.new_text));
                    }
                }
                if !split {
                    self.editor_version += 1;
                    self.to_proxy.push_back(ToProxy::Changed(self.editor_version, changes));
                }
                self.editor = editor.text();
            }
            self.to_proxy.push_back(ToProxy::Answer(b.id, true));
            true
        }
    }

    fn run(seed: u64, tracked: bool, bursts: bool) {
        let mut rng = StdRng::seed_from_u64(seed);
        let enc = [Encoding::Utf8, Encoding::Utf16, Encoding::Utf32][rng.random_range(0..3)];
        let initial: String = (0..rng.random_range(1..10)).map(|i| format!("line {i} é\n")).collect();
        let doc = if tracked {
            DocSync::tracking(1, &initial)
        } else {
            DocSync::new(1, &initial)
        };
        let mut sim = Sim {
            seed,
            rng,
            enc,
            tracked,
            room: initial.clone(),
            editor: initial,
            editor_version: 1,
            doc,
            to_proxy: VecDeque::new(),
            to_editor: VecDeque::new(),
            next_id: 0,
            markers: Markers::default(),
        };
        // Attached: the first look at the room (equal texts) starts the map.
        assert!(!sim.send_batch());
        for _ in 0..STEPS {
            match sim.rng.random_range(0..100) {
                0..=24 => sim.local_edit(),
                25..=49 => sim.remote_edit(),
                50 if bursts => sim.remote_burst(),
                51..=69 => {
                    sim.deliver_to_proxy();
                }
                70..=84 => {
                    sim.send_batch();
                }
                _ => {
                    sim.deliver_to_editor(false);
                }
            }
        }
        // Quiet: deliver everything until nothing moves.
        for _ in 0..10_000 {
            if sim.deliver_to_proxy() || sim.deliver_to_editor(true) || sim.send_batch() {
                continue;
            }
            break;
        }
        assert_eq!(sim.editor, sim.room, "seed {seed} ({enc:?}): editor and room differ");
        assert!(
            sim.doc.shadow().eq_str(&sim.editor),
            "seed {seed}: shadow differs from the editor"
        );
        if tracked {
            sim.markers.check(seed, &sim.room);
        }
    }

    fn seeds(default: u64) -> std::ops::Range<u64> {
        let var = |name: &str| std::env::var(name).ok().and_then(|s| s.parse().ok());
        let base: u64 = var("MESH_SIM_SEED").unwrap_or(0);
        base..base + var("MESH_SIM_SEEDS").unwrap_or(default)
    }

    #[test]
    fn editor_and_room_converge_and_every_marker_survives() {
        for seed in seeds(SEEDS) {
            run(seed, true, false);
        }
    }

    /// Remote replace-alls (more separate changes than a batch holds) while the editor lags
    /// and the user deletes across them.
    #[test]
    fn markers_survive_replace_alls_while_the_editor_lags() {
        for seed in seeds(BURST_SEEDS) {
            run(seed, true, true);
        }
    }

    /// Disk sync's documents see no deltas: the map comes from a diff at each change. They
    /// converge; a diff may pair equal characters differently, so markers are not checked.
    #[test]
    fn untracked_documents_converge() {
        for seed in seeds(UNTRACKED_SEEDS) {
            run(seed, false, false);
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
