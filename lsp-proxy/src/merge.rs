//! Three-way merges: the one rule for every write the proxy makes into an editor's buffer or
//! onto the disk. The *base* is the last text both sides agreed on; the local side's changes
//! since the base and the room's changes since the base are combined, line by line. Where
//! both changed the same lines the merge is a conflict: the caller keeps the local text
//! where it is and the room's beside it. Sans-IO: texts in, a decision out.

use std::time::Duration;

use similar::{capture_diff_slices_deadline, Algorithm, DiffOp};

use crate::sync::RoomOp;

/// Longest time spent diffing the room's text against a merged text; past it the differing
/// middle becomes one replacement (still exact, just coarser operations).
const OPS_DIFF_DEADLINE: Duration = Duration::from_millis(200);

/// The base of a merge: the persisted last agreed text when there is one; otherwise the
/// local file, but only when it already equals the room's text (then nothing differs). A
/// local file that differs from the room with no base has no common ancestor: `None`, and
/// any difference is a conflict.
pub fn base<'a>(persisted: Option<&'a str>, on_disk: Option<&'a str>, room: &str) -> Option<&'a str> {
    persisted.or(on_disk.filter(|d| *d == room))
}

/// Longest time spent comparing a buffer with one candidate base; past it the comparison
/// counts the undiffed middle as changed (a worse candidate, never a wrong merge).
const CLOSEST_DIFF_DEADLINE: Duration = Duration::from_millis(50);

/// Of the texts recently agreed on (`agreed`, the latest first), the one `local` changed
/// least (in lines inserted and removed); on a tie, the later one. A buffer read from an older
/// version than the latest (written while the editor was opening the file) merges against
/// the version it came from, so the room's lines since are not taken for its deletions; where
/// the choice is wrong it can only bring back lines, never drop them.
pub fn closest<'a>(agreed: &[&'a str], local: &str) -> Option<&'a str> {
    let changed = |candidate: &str| -> usize {
        let diff = similar::TextDiff::configure()
            .algorithm(Algorithm::Myers)
            .deadline(std::time::Instant::now() + CLOSEST_DIFF_DEADLINE)
            .diff_lines(candidate, local);
        diff.ops()
            .iter()
            .map(|op| match *op {
                DiffOp::Equal { .. } => 0,
                DiffOp::Delete { old_len, .. } => old_len,
                DiffOp::Insert { new_len, .. } => new_len,
                DiffOp::Replace { old_len, new_len, .. } => old_len + new_len,
            })
            .sum()
    };
    let mut best: Option<(usize, &str)> = None;
    for candidate in agreed {
        let n = changed(candidate);
        if best.is_none_or(|(b, _)| n < b) {
            best = Some((n, candidate));
        }
    }
    best.map(|(_, c)| c)
}

/// Merges `local` and `room`, both descended from `base`. `Some(text)` is the clean result
/// (which may equal either side); `None` is a conflict: both changed the same lines, or
/// they differ and there is no base to tell who changed what.
pub fn merge3(base: Option<&str>, local: &str, room: &str) -> Option<String> {
    if local == room {
        return Some(local.to_string());
    }
    let base = base?;
    if local == base {
        return Some(room.to_string());
    }
    if room == base {
        return Some(local.to_string());
    }
    diffy::merge(base, local, room).ok()
}

/// Operations that turn the room's text `from` into `to`, in UTF-16 offsets of `from`,
/// last first so that each one's offsets hold when they are applied in order.
pub fn ops_between(from: &str, to: &str) -> Vec<RoomOp> {
    let a: Vec<char> = from.chars().collect();
    let b: Vec<char> = to.chars().collect();
    // UTF-16 offset of each character boundary of `from`.
    let mut utf16 = Vec::with_capacity(a.len() + 1);
    let mut n = 0u32;
    utf16.push(0);
    for c in &a {
        n += c.len_utf16() as u32;
        utf16.push(n);
    }
    let diff = capture_diff_slices_deadline(
        Algorithm::Myers,
        &a,
        &b,
        Some(std::time::Instant::now() + OPS_DIFF_DEADLINE),
    );
    let mut ops = Vec::new();
    for op in diff.iter().rev() {
        let (a_start, a_len, b_start, b_len) = match *op {
            DiffOp::Equal { .. } => continue,
            DiffOp::Delete {
                old_index,
                old_len,
                new_index,
            } => (old_index, old_len, new_index, 0),
            DiffOp::Insert {
                old_index,
                new_index,
                new_len,
            } => (old_index, 0, new_index, new_len),
            DiffOp::Replace {
                old_index,
                old_len,
                new_index,
                new_len,
            } => (old_index, old_len, new_index, new_len),
        };
        ops.push(RoomOp {
            start_utf16: utf16[a_start],
            delete_utf16: utf16[a_start + a_len] - utf16[a_start],
            insert: b[b_start..b_start + b_len].iter().collect(),
        });
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::apply_ops;

    #[test]
    fn the_closest_agreed_text_is_the_base_and_a_tie_goes_to_the_latest() {
        let older = "notes\nsecond\n";
        let latest = "notes\nsecond\nfrom the room\n";
        // Typed into the older version, read just before the latest was written.
        let local = "typed\nnotes\nsecond\n";
        assert_eq!(closest(&[latest, older], local), Some(older));
        let room = latest;
        assert_eq!(
            merge3(closest(&[latest, older], local), local, room).as_deref(),
            Some("typed\nnotes\nsecond\nfrom the room\n"),
            "the room's line is kept"
        );
        // Typed into the latest: it is the base.
        assert_eq!(
            closest(&[latest, older], "typed\nnotes\nsecond\nfrom the room\n"),
            Some(latest)
        );
        // Equally far from both: the latest.
        assert_eq!(closest(&["a\nb\n", "a\nc\n"], "a\n"), Some("a\nb\n"));
        assert_eq!(closest(&[], local), None);
    }

    #[test]
    fn agreement_is_never_a_conflict_even_without_a_base() {
        assert_eq!(merge3(None, "same\n", "same\n").as_deref(), Some("same\n"));
    }

    #[test]
    fn different_texts_without_a_base_are_a_conflict() {
        assert_eq!(merge3(None, "mine\n", "room\n"), None);
    }

    #[test]
    fn a_change_on_one_side_only_is_taken() {
        assert_eq!(merge3(Some("a\n"), "a\n", "a\nroom\n").as_deref(), Some("a\nroom\n"));
        assert_eq!(merge3(Some("a\n"), "a\nmine\n", "a\n").as_deref(), Some("a\nmine\n"));
    }

    #[test]
    fn changes_to_different_lines_merge_and_keep_both() {
        let base = "one\ntwo\nthree\nfour\n";
        let local = "one\nTWO (mine)\nthree\nfour\n";
        let room = "one\ntwo\nthree\nFOUR (room)\n";
        assert_eq!(
            merge3(Some(base), local, room).as_deref(),
            Some("one\nTWO (mine)\nthree\nFOUR (room)\n")
        );
    }

    #[test]
    fn changes_to_the_same_lines_are_a_conflict() {
        let base = "one\ntwo\n";
        assert_eq!(merge3(Some(base), "one\nmine\n", "one\nroom\n"), None);
    }

    #[test]
    fn the_same_change_on_both_sides_merges_once() {
        let base = "one\ntwo\nthree\n";
        let both = "one\ntwo, fixed\nthree\n";
        let room = "one\ntwo, fixed\nthree\nand more\n";
        assert_eq!(merge3(Some(base), both, room).as_deref(), Some(room));
    }

    #[test]
    fn the_base_is_the_persisted_text_else_a_disk_copy_equal_to_the_room() {
        assert_eq!(base(Some("b"), Some("d"), "r"), Some("b"));
        assert_eq!(base(None, Some("r"), "r"), Some("r"));
        assert_eq!(base(None, Some("d"), "r"), None);
        assert_eq!(base(None, None, "r"), None);
    }

    #[test]
    fn ops_between_turn_one_text_into_the_other_exactly() {
        for (from, to) in [
            ("", "new\n"),
            ("gone\n", ""),
            ("a b c\n", "a X c Y\n"),
            ("漢字 🎉 x\n", "漢 🎉🎉 y\n"),
            ("one\ntwo\nthree\n", "zero\none\nthree\nfour\n"),
        ] {
            assert_eq!(apply_ops(from, &ops_between(from, to)), to, "{from:?} -> {to:?}");
        }
        assert!(ops_between("same", "same").is_empty());
    }
}
