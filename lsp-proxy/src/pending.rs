//! The exact map from the editor's text (the shadow) to the room's text: the remote changes
//! the editor has not applied yet, kept as they happened rather than rediscovered by a diff.
//!
//! Why not a diff: a diff of two texts only guesses which characters correspond, gives up
//! past a deadline with one coarse replacement, and had to merge regions past a cap; a local
//! delete re-based over such a guess removed room text the user never saw. Here every remote
//! change is composed into the map as it arrives (the `Y.Text` events' deltas, in the room's
//! UTF-16 offsets), every local change is mapped through it and applied to both sides, so the
//! map stays exact however many remote changes wait. Cost: linear in the number of pieces
//! per change, no text comparison.
//!
//! The map is a sequence of [`Piece`]s: `Keep(n)`, text both sides have, and
//! `Change { gone, added }`, shadow text the room deleted followed by room text the editor
//! has not seen. All lengths are UTF-16 code units (the room's unit). A local edit deletes only
//! kept text (what the user saw), never added text; its insertion goes after room text added at
//! exactly its spot, before room text added past it.

use crate::sync::RoomOp;
use crate::text::Shadow;

/// One stretch of the map.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// This many UTF-16 units of the shadow that the room has too, unchanged.
    Keep(usize),
    /// `gone` UTF-16 units of the shadow that the room deleted, then room text the editor
    /// has not seen (`added_len` is its length in UTF-16 units).
    Change {
        gone: usize,
        added: String,
        added_len: usize,
    },
}

/// One step of a remote change to a room text, in UTF-16 units of that text (a `Y.Text`
/// event's delta).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delta {
    /// Skip this much unchanged text.
    Retain(u32),
    /// Delete this much text.
    Delete(u32),
    /// Insert this text.
    Insert(String),
}

/// A change that does not fit the text it is applied to (it runs past its end, or cuts a
/// character in two): the map no longer knows the room and must be derived again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a room change does not fit the text it applies to; the map is derived again")]
pub struct Misfit;

/// The exact map from the shadow to the room's text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Pending {
    pieces: Vec<Piece>,
    shadow_len: usize,
    room_len: usize,
}

/// UTF-16 length of a string.
pub fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// The byte index of UTF-16 offset `units` in `s`; `Misfit` inside a character or past the end.
fn utf16_to_byte(s: &str, units: usize) -> Result<usize, Misfit> {
    let mut n = 0usize;
    for (i, ch) in s.char_indices() {
        if n == units {
            return Ok(i);
        }
        if n > units {
            return Err(Misfit);
        }
        n += ch.len_utf16();
    }
    if n == units {
        Ok(s.len())
    } else {
        Err(Misfit)
    }
}

/// Builds a map piece by piece, keeping it normal: no empty pieces, no two neighbours of one
/// kind (a change's deleted and added parts are merged with a neighbouring change).
#[derive(Default)]
struct Builder {
    map: Pending,
}

impl Builder {
    fn keep(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        self.map.shadow_len += n;
        self.map.room_len += n;
        match self.map.pieces.last_mut() {
            Some(Piece::Keep(k)) => *k += n,
            _ => self.map.pieces.push(Piece::Keep(n)),
        }
    }

    fn gone(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        self.map.shadow_len += n;
        match self.map.pieces.last_mut() {
            Some(Piece::Change { gone, .. }) => *gone += n,
            _ => self.map.pieces.push(Piece::Change {
                gone: n,
                added: String::new(),
                added_len: 0,
            }),
        }
    }

    fn add(&mut self, text: &str, len: usize) {
        if text.is_empty() {
            return;
        }
        self.map.room_len += len;
        match self.map.pieces.last_mut() {
            Some(Piece::Change { added, added_len, .. }) => {
                added.push_str(text);
                *added_len += len;
            }
            _ => self.map.pieces.push(Piece::Change {
                gone: 0,
                added: text.to_string(),
                added_len: len,
            }),
        }
    }

    fn piece(&mut self, p: Piece) {
        match p {
            Piece::Keep(n) => self.keep(n),
            Piece::Change { gone, added, added_len } => {
                self.gone(gone);
                self.add(&added, added_len);
            }
        }
    }

    fn finish(self) -> Pending {
        self.map
    }
}

impl Pending {
    /// The map of two equal texts of `len` UTF-16 units.
    pub fn identity(len: usize) -> Self {
        let mut b = Builder::default();
        b.keep(len);
        b.finish()
    }

    /// The map derived from a diff of `shadow` and `room` (characters): for texts with no
    /// known history between them (a file first seen, or replaced in the room).
    pub fn from_diff(shadow: &[char], room: &[char]) -> Self {
        let mut b = Builder::default();
        let mut a = 0usize;
        let len16 = |s: &[char]| s.iter().map(|c| c.len_utf16()).sum::<usize>();
        for r in crate::sync::diff_regions_exact(shadow, room) {
            b.keep(len16(&shadow[a..r.a_start]));
            b.gone(len16(&shadow[r.a_start..r.a_end]));
            let added: String = room[r.b_start..r.b_end].iter().collect();
            let n = utf16_len(&added);
            b.add(&added, n);
            a = r.a_end;
        }
        b.keep(len16(&shadow[a..]));
        b.finish()
    }

    /// The length of the shadow this map starts from, in UTF-16 units.
    pub fn shadow_len(&self) -> usize {
        self.shadow_len
    }

    /// The length of the room text this map leads to, in UTF-16 units.
    pub fn room_len(&self) -> usize {
        self.room_len
    }

    /// Whether the room's text equals the shadow.
    pub fn is_identity(&self) -> bool {
        !self.pieces.iter().any(|p| matches!(p, Piece::Change { .. }))
    }

    /// How many separate changes wait (the edits a batch would hold).
    pub fn changes_len(&self) -> usize {
        self.pieces.iter().filter(|p| matches!(p, Piece::Change { .. })).count()
    }

    /// The waiting changes in order: (start, end) in the shadow's UTF-16 units and the room
    /// text that replaces that stretch.
    pub fn changes(&self) -> impl Iterator<Item = (usize, usize, &str)> {
        let mut o = 0usize;
        self.pieces.iter().filter_map(move |p| match p {
            Piece::Keep(n) => {
                o += n;
                None
            }
            Piece::Change { gone, added, .. } => {
                let start = o;
                o += gone;
                Some((start, o, added.as_str()))
            }
        })
    }

    /// The room's text, rebuilt from the shadow and the map (to check the map against the room).
    pub fn apply_to(&self, shadow: &Shadow) -> String {
        let text = shadow.text();
        let mut out = String::with_capacity(text.len());
        let mut rest = text.as_str();
        for p in &self.pieces {
            let (skip, keep) = match p {
                Piece::Keep(n) => (0, *n),
                Piece::Change { gone, .. } => (*gone, 0),
            };
            let take = |rest: &str, units: usize| utf16_to_byte(rest, units).unwrap_or(rest.len());
            if keep > 0 {
                let b = take(rest, keep);
                out.push_str(&rest[..b]);
                rest = &rest[b..];
            }
            if skip > 0 {
                rest = &rest[take(rest, skip)..];
            }
            if let Piece::Change { added, .. } = p {
                out.push_str(added);
            }
        }
        out.push_str(rest);
        out
    }

    /// Composes a remote change of the room's text into the map.
    pub fn compose(&mut self, delta: &[Delta]) -> Result<(), Misfit> {
        let mut input: std::collections::VecDeque<Piece> = std::mem::take(&mut self.pieces).into();
        let mut b = Builder::default();
        // Takes `n` room units from the input, handing each part to `f` (kept, or deleted).
        fn take(
            input: &mut std::collections::VecDeque<Piece>,
            b: &mut Builder,
            mut n: usize,
            delete: bool,
        ) -> Result<(), Misfit> {
            while n > 0 {
                let Some(p) = input.pop_front() else { return Err(Misfit) };
                match p {
                    Piece::Keep(k) => {
                        let t = k.min(n);
                        if delete {
                            b.gone(t);
                        } else {
                            b.keep(t);
                        }
                        if k > t {
                            input.push_front(Piece::Keep(k - t));
                        }
                        n -= t;
                    }
                    Piece::Change { gone, added, added_len } => {
                        // The shadow text this change deleted stays deleted, wherever the
                        // remote change falls.
                        b.gone(gone);
                        let t = added_len.min(n);
                        let cut = utf16_to_byte(&added, t)?;
                        if !delete {
                            b.add(&added[..cut], t);
                        }
                        if added_len > t {
                            input.push_front(Piece::Change {
                                gone: 0,
                                added: added[cut..].to_string(),
                                added_len: added_len - t,
                            });
                        }
                        n -= t;
                    }
                }
            }
            Ok(())
        }
        for d in delta {
            match d {
                Delta::Retain(n) => take(&mut input, &mut b, *n as usize, false)?,
                Delta::Delete(n) => take(&mut input, &mut b, *n as usize, true)?,
                Delta::Insert(text) => b.add(text, utf16_len(text)),
            }
        }
        for p in input {
            b.piece(p);
        }
        *self = b.finish();
        Ok(())
    }

    /// Composes another map after this one: `self` leads from A to B, `next` from B to C;
    /// afterwards `self` leads from A to C.
    pub fn then(&mut self, next: &Pending) -> Result<(), Misfit> {
        let delta: Vec<Delta> = next
            .pieces
            .iter()
            .flat_map(|p| match p {
                Piece::Keep(n) => vec![Delta::Retain(*n as u32)],
                Piece::Change { gone, added, .. } => vec![Delta::Delete(*gone as u32), Delta::Insert(added.clone())],
            })
            .collect();
        if next.shadow_len != self.room_len {
            return Err(Misfit);
        }
        self.compose(&delta)
    }

    /// The map with some of its changes applied to the shadow: `applied(i)` says whether the
    /// `i`th change (in order) is now part of the shadow (the editor applied it).
    pub fn with_applied(&self, applied: impl Fn(usize) -> bool) -> Pending {
        let mut b = Builder::default();
        let mut i = 0usize;
        for p in &self.pieces {
            match p {
                Piece::Keep(n) => b.keep(*n),
                Piece::Change { added_len, .. } if applied(i) => {
                    b.keep(*added_len);
                    i += 1;
                }
                other => {
                    b.piece(other.clone());
                    i += 1;
                }
            }
        }
        b.finish()
    }

    /// Maps a local edit of the shadow, replacing `start..end` (UTF-16 units) with `text`,
    /// onto the room: returns the operations on the room's text (each in offsets of the text
    /// the ones before it left) and updates the map to lead from the edited shadow to the
    /// edited room text. Only text the user saw is deleted; remote text inside the range or at
    /// its ends stays.
    pub fn apply_local(&mut self, start: usize, end: usize, text: &str) -> Vec<RoomOp> {
        let end = end.clamp(start, self.shadow_len.max(start));
        let text_len = utf16_len(text);
        let mut b = Builder::default();
        let mut ops: Vec<RoomOp> = Vec::new();
        let mut rn = 0usize; // offset in the room text as the operations so far left it
        let mut o = 0usize; // offset in the shadow
        let mut inserted = false;
        let insert = |b: &mut Builder, ops: &mut Vec<RoomOp>, rn: &mut usize| {
            if !text.is_empty() {
                ops.push(RoomOp {
                    start_utf16: *rn as u32,
                    delete_utf16: 0,
                    insert: text.to_string(),
                });
                b.keep(text_len);
                *rn += text_len;
            }
        };
        let delete = |ops: &mut Vec<RoomOp>, at: usize, n: usize| match ops.last_mut() {
            Some(op) if op.insert.is_empty() && op.start_utf16 as usize == at => op.delete_utf16 += n as u32,
            _ => ops.push(RoomOp {
                start_utf16: at as u32,
                delete_utf16: n as u32,
                insert: String::new(),
            }),
        };
        for p in std::mem::take(&mut self.pieces) {
            match p {
                Piece::Keep(k) => {
                    let (mut pos, stop) = (o, o + k);
                    while pos < stop {
                        if !inserted && pos == start {
                            insert(&mut b, &mut ops, &mut rn);
                            inserted = true;
                        }
                        if pos < start {
                            let t = stop.min(start) - pos;
                            b.keep(t);
                            rn += t;
                            pos += t;
                        } else if pos < end {
                            let t = stop.min(end) - pos;
                            delete(&mut ops, rn, t);
                            pos += t;
                        } else {
                            b.keep(stop - pos);
                            rn += stop - pos;
                            pos = stop;
                        }
                    }
                    o = stop;
                }
                Piece::Change { gone, added, added_len } => {
                    // What of the room's deletion lies in the edited range is deleted on both
                    // sides now and leaves the map.
                    let overlap = (o + gone).min(end).saturating_sub(o.max(start));
                    if gone > 0 && !inserted && start >= o && start < o + gone {
                        // The edit starts in text the room deleted: it goes where that was,
                        // before the room's replacement.
                        b.gone(start - o);
                        insert(&mut b, &mut ops, &mut rn);
                        inserted = true;
                        b.gone(gone - (start - o) - overlap);
                    } else {
                        b.gone(gone - overlap);
                    }
                    b.add(&added, added_len);
                    rn += added_len;
                    o += gone;
                }
            }
        }
        if !inserted {
            insert(&mut b, &mut ops, &mut rn);
        }
        *self = b.finish();
        ops
    }

    /// The room offset of shadow offset `p`. At a spot where the room added text, `after`
    /// picks the end of that text (where a local insertion goes), else its start.
    pub fn map(&self, p: usize, after: bool) -> usize {
        let (mut o, mut r) = (0usize, 0usize);
        for piece in &self.pieces {
            match piece {
                Piece::Keep(k) => {
                    if p < o + k {
                        return r + (p - o);
                    }
                    o += k;
                    r += k;
                }
                Piece::Change { gone, added_len, .. } => {
                    if p < o + gone || (p == o + gone && !after) {
                        return r;
                    }
                    o += gone;
                    r += added_len;
                }
            }
        }
        r
    }

    /// The shadow offset of room offset `r`; inside room text the editor has not seen, the
    /// spot where that text goes.
    pub fn map_back(&self, r: usize) -> usize {
        let (mut o, mut rr) = (0usize, 0usize);
        for piece in &self.pieces {
            match piece {
                Piece::Keep(k) => {
                    if r < rr + k {
                        return o + (r - rr);
                    }
                    o += k;
                    rr += k;
                }
                Piece::Change { gone, added_len, .. } => {
                    if r < rr + added_len {
                        return o + gone;
                    }
                    o += gone;
                    rr += added_len;
                }
            }
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::apply_ops;

    fn map_of(shadow: &str, room: &str) -> Pending {
        let a: Vec<char> = shadow.chars().collect();
        let b: Vec<char> = room.chars().collect();
        Pending::from_diff(&a, &b)
    }

    /// Applies a delta to a plain string (the tests' stand-in for a `Y.Text`).
    fn apply_delta(text: &str, delta: &[Delta]) -> String {
        let mut out = String::new();
        let mut rest = text;
        for d in delta {
            match d {
                Delta::Retain(n) => {
                    let b = utf16_to_byte(rest, *n as usize).unwrap();
                    out.push_str(&rest[..b]);
                    rest = &rest[b..];
                }
                Delta::Delete(n) => rest = &rest[utf16_to_byte(rest, *n as usize).unwrap()..],
                Delta::Insert(t) => out.push_str(t),
            }
        }
        out.push_str(rest);
        out
    }

    #[test]
    fn a_diff_derived_map_rebuilds_the_room_text() {
        for (s, r) in [
            ("", ""),
            ("abc", "abc"),
            ("abc", ""),
            ("", "🎉x"),
            ("héllo wörld", "hello 🎉 world!"),
        ] {
            let m = map_of(s, r);
            assert_eq!(m.apply_to(&Shadow::new(s)), r);
            assert_eq!((m.shadow_len(), m.room_len()), (utf16_len(s), utf16_len(r)));
        }
    }

    #[test]
    fn remote_deltas_compose_exactly() {
        let shadow = "one two three";
        let mut room = shadow.to_string();
        let mut m = Pending::identity(utf16_len(shadow));
        let steps = [
            vec![Delta::Retain(4), Delta::Insert("🎉".into())],
            vec![Delta::Retain(2), Delta::Delete(5), Delta::Insert("X".into())],
            vec![Delta::Delete(1)],
            vec![Delta::Retain(3), Delta::Insert("end".into())],
        ];
        for d in steps {
            room = apply_delta(&room, &d);
            m.compose(&d).unwrap();
            assert_eq!(m.apply_to(&Shadow::new(shadow)), room);
        }
        assert_eq!(m.compose(&[Delta::Retain(999)]), Err(Misfit));
    }

    #[test]
    fn a_local_delete_never_removes_remote_text_it_did_not_see() {
        // The room inserted "R" inside the range the user deletes, and at both of its ends.
        let shadow = "abcdef";
        let mut m = Pending::identity(6);
        let mut room = shadow.to_string();
        for d in [
            vec![Delta::Retain(1), Delta::Insert("R1".into())],
            vec![Delta::Retain(5), Delta::Insert("R2".into())],
            vec![Delta::Retain(9), Delta::Insert("R3".into())],
        ] {
            room = apply_delta(&room, &d);
            m.compose(&d).unwrap();
        }
        assert_eq!(room, "aR1bcR2deR3f");
        // The user deletes "bcde" (1..5) of the shadow.
        let ops = m.apply_local(1, 5, "");
        let room = apply_ops(&room, &ops);
        assert_eq!(room, "aR1R2R3f");
        let mut s = Shadow::new(shadow);
        s.apply(&crate::text::CharEdit {
            start: 1,
            end: 5,
            text: String::new(),
        });
        assert_eq!(m.apply_to(&s), room);
    }

    #[test]
    fn a_local_insert_goes_after_remote_text_at_its_spot_and_before_text_past_it() {
        let mut m = Pending::identity(2);
        let room = "aRb";
        m.compose(&[Delta::Retain(1), Delta::Insert("R".into())]).unwrap();
        assert_eq!(apply_ops(room, &m.clone().apply_local(1, 1, "L")), "aRLb");
        // Replaced text: an insertion inside what the room deleted lands before its replacement.
        let mut m = Pending::identity(4);
        m.compose(&[Delta::Retain(1), Delta::Delete(2), Delta::Insert("XY".into())])
            .unwrap();
        assert_eq!(apply_ops("aXYd", &m.apply_local(2, 2, "L")), "aLXYd");
    }

    #[test]
    fn positions_map_both_ways() {
        let m = map_of("one two", "one 🎉 two");
        assert_eq!(m.map(4, true), 7);
        assert_eq!(m.map(4, false), 4);
        assert_eq!(m.map_back(7), 4);
        assert_eq!(m.map_back(5), 4);
    }

    #[test]
    fn applied_changes_become_part_of_the_shadow() {
        let m = map_of("a.b.c", "aXbYc");
        assert_eq!(m.changes_len(), 2);
        let rest = m.with_applied(|i| i == 1);
        // The shadow now holds the second change.
        assert_eq!(rest.apply_to(&Shadow::new("a.bYc")), "aXbYc");
        let mut since = Pending::identity(5);
        since.compose(&[Delta::Retain(5), Delta::Insert("!".into())]).unwrap();
        let mut total = rest.clone();
        total.then(&since).unwrap();
        assert_eq!(total.apply_to(&Shadow::new("a.bYc")), "aXbYc!");
    }

    /// Random remote deltas and local edits, checked against plain strings: the map always
    /// rebuilds the room's text from the shadow, and local operations keep it so.
    #[test]
    fn the_map_stays_exact_under_random_changes() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        let pieces = ["a", "é", "漢", "🎉", "\n", "xy", ""];
        for seed in 0..300u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let mut shadow = Shadow::new("start\nmiddle🎉\nend");
            let mut room = shadow.text();
            let mut m = Pending::identity(shadow.len_utf16());
            for step in 0..60 {
                let remote = rng.random_bool(0.5);
                let text = if remote { room.clone() } else { shadow.text() };
                let sh = Shadow::new(&text);
                let len = sh.len_chars();
                let s = rng.random_range(0..=len);
                let e = if rng.random_bool(0.4) {
                    (s + rng.random_range(0..5)).min(len)
                } else {
                    s
                };
                let t = pieces[rng.random_range(0..pieces.len())].to_string();
                let (s16, e16) = (sh.char_to_utf16(s), sh.char_to_utf16(e));
                if remote {
                    let d = vec![
                        Delta::Retain(s16 as u32),
                        Delta::Delete((e16 - s16) as u32),
                        Delta::Insert(t),
                    ];
                    room = apply_delta(&room, &d);
                    m.compose(&d).unwrap();
                } else {
                    let ops = m.apply_local(s16, e16, &t);
                    room = apply_ops(&room, &ops);
                    shadow.apply(&crate::text::CharEdit {
                        start: s,
                        end: e,
                        text: t,
                    });
                }
                assert_eq!(m.apply_to(&shadow), room, "seed {seed} step {step} remote {remote}");
                assert_eq!((m.shadow_len(), m.room_len()), (shadow.len_utf16(), utf16_len(&room)));
            }
        }
    }
}
