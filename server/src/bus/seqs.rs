//! Which of a room's store sequence numbers this node has integrated, sans-IO: the rule that
//! tells a bus entry arriving out of order (normal: two nodes commit in one order and publish
//! in the other) from one that was lost (a gap that outlives its grace: resync from the
//! store). No clock, no sockets; the actor hands it the time.

use std::collections::BTreeMap;

/// Ranges ahead of the contiguous prefix a room keeps before it stops waiting and resyncs:
/// each is one published turn; thousands mean the gap is not closing.
pub const MAX_AHEAD: usize = 4096;

/// How long a hole in the sequence may stay open before the room resyncs from the store:
/// longer than a commit-to-publish race between two nodes, short enough that a lost entry
/// is noticed within a second.
pub const GAP_GRACE_MS: u64 = 1_000;

/// What the tracker says after an entry is marked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Every number up to the newest seen is integrated.
    Contiguous,
    /// A hole is open (since the given time); keep waiting until the grace ends.
    Waiting,
    /// The hole outlived its grace, or too much waits behind it: resync from the store.
    Resync,
}

/// The integrated prefix of a room's sequence numbers, and ranges seen beyond it.
#[derive(Debug, Clone, Default)]
pub struct SeqTracker {
    /// Every number up to and including this one is integrated.
    upto: u64,
    /// Ranges (first → last) integrated beyond `upto`, not touching it.
    ahead: BTreeMap<u64, u64>,
    /// When the current hole was first seen.
    gap_since_ms: Option<u64>,
}

impl SeqTracker {
    /// A room loaded from the store up to `upto`.
    pub fn new(upto: u64) -> Self {
        SeqTracker {
            upto,
            ahead: BTreeMap::new(),
            gap_since_ms: None,
        }
    }

    /// The integrated prefix.
    pub fn upto(&self) -> u64 {
        self.upto
    }

    /// Whether `seq` is integrated already.
    pub fn seen(&self, seq: u64) -> bool {
        seq <= self.upto
            || self
                .ahead
                .range(..=seq)
                .next_back()
                .is_some_and(|(_, last)| *last >= seq)
    }

    /// Whether a hole is open.
    pub fn has_gap(&self) -> bool {
        !self.ahead.is_empty()
    }

    /// When the open hole must be resolved by a resync, if one is open.
    pub fn deadline_ms(&self) -> Option<u64> {
        self.gap_since_ms.map(|t| t + GAP_GRACE_MS)
    }

    /// Records that `first..=last` is integrated (appended here, or applied from the bus).
    pub fn mark(&mut self, first: u64, last: u64, now_ms: u64) -> Verdict {
        if last < first || last <= self.upto {
            return self.verdict(now_ms);
        }
        let first = first.max(self.upto + 1);
        if first == self.upto + 1 {
            self.upto = last;
            // Ranges now reached join the prefix.
            while let Some((&a, &b)) = self.ahead.first_key_value() {
                if a > self.upto + 1 {
                    break;
                }
                self.ahead.pop_first();
                self.upto = self.upto.max(b);
            }
        } else {
            let end = self.ahead.entry(first).or_insert(last);
            *end = (*end).max(last);
        }
        if self.ahead.is_empty() {
            self.gap_since_ms = None;
        } else if self.gap_since_ms.is_none() {
            self.gap_since_ms = Some(now_ms);
        }
        self.verdict(now_ms)
    }

    /// The verdict now, without new information (the grace timer fired).
    pub fn verdict(&self, now_ms: u64) -> Verdict {
        match self.gap_since_ms {
            None => Verdict::Contiguous,
            Some(_) if self.ahead.len() > MAX_AHEAD => Verdict::Resync,
            Some(since) if now_ms.saturating_sub(since) >= GAP_GRACE_MS => Verdict::Resync,
            Some(_) => Verdict::Waiting,
        }
    }

    /// After a resync from a store that held everything up to `upto`.
    pub fn resynced(&mut self, upto: u64) {
        self.upto = self.upto.max(upto);
        let reached: Vec<u64> = self.ahead.range(..=self.upto + 1).map(|(a, _)| *a).collect();
        for a in reached {
            if let Some(b) = self.ahead.remove(&a) {
                self.upto = self.upto.max(b);
            }
        }
        // Whatever is still ahead was published after the load; a new hole starts now.
        self.gap_since_ms = None;
        self.ahead.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_in_order_keep_the_prefix_contiguous() {
        let mut t = SeqTracker::new(4);
        assert_eq!(t.mark(5, 6, 0), Verdict::Contiguous);
        assert_eq!(t.mark(7, 7, 0), Verdict::Contiguous);
        assert_eq!(t.upto(), 7);
    }

    #[test]
    fn an_entry_published_out_of_order_waits_then_closes_the_hole() {
        let mut t = SeqTracker::new(4);
        // Node B committed 7 after node A committed 5..=6, but published first.
        assert_eq!(t.mark(7, 7, 100), Verdict::Waiting);
        assert_eq!(t.verdict(100 + GAP_GRACE_MS - 1), Verdict::Waiting);
        assert_eq!(t.mark(5, 6, 200), Verdict::Contiguous);
        assert_eq!(t.upto(), 7);
        assert_eq!(t.deadline_ms(), None);
        assert!(t.seen(6) && !t.seen(8));
    }

    #[test]
    fn a_hole_that_outlives_its_grace_asks_for_a_resync() {
        let mut t = SeqTracker::new(0);
        assert_eq!(t.mark(3, 3, 1_000), Verdict::Waiting);
        assert_eq!(t.deadline_ms(), Some(1_000 + GAP_GRACE_MS));
        assert_eq!(t.verdict(1_000 + GAP_GRACE_MS), Verdict::Resync);
        t.resynced(3);
        assert_eq!(t.verdict(5_000), Verdict::Contiguous);
        assert_eq!(t.upto(), 3);
    }

    #[test]
    fn duplicates_and_old_entries_change_nothing() {
        let mut t = SeqTracker::new(10);
        assert_eq!(t.mark(3, 8, 0), Verdict::Contiguous);
        assert_eq!(t.mark(9, 10, 0), Verdict::Contiguous);
        assert_eq!(t.mark(8, 12, 0), Verdict::Contiguous, "an overlap extends the prefix");
        assert_eq!(t.upto(), 12);
        assert_eq!(t.mark(5, 4, 0), Verdict::Contiguous, "an empty range is ignored");
    }

    #[test]
    fn too_much_waiting_behind_a_hole_asks_for_a_resync_at_once() {
        let mut t = SeqTracker::new(0);
        for i in 0..=MAX_AHEAD as u64 {
            t.mark(2 + 2 * i, 2 + 2 * i, 0);
        }
        assert_eq!(t.verdict(0), Verdict::Resync);
    }

    #[test]
    fn a_resync_forgets_what_was_ahead_so_the_next_hole_starts_fresh() {
        let mut t = SeqTracker::new(0);
        t.mark(2, 2, 0);
        t.mark(5, 6, 0);
        t.resynced(3);
        assert!(!t.has_gap());
        assert_eq!(t.upto(), 3);
    }
}
