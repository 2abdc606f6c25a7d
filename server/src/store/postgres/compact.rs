//! Compaction when several nodes share a room: the snapshot is built from the stored rows.
//!
//! **What compaction must guarantee.** Replacing log rows by a snapshot may drop only what
//! the snapshot holds. One node's document holds what that node integrated; with several
//! nodes appending to one room, a row another node appended (with a number below the
//! compacting node's last one) may not have reached it yet, and a snapshot of its memory
//! would silently drop that row. So the store rebuilds the snapshot itself, inside the
//! compacting transaction, from exactly the rows it replaces: the previous snapshot, every
//! row up to `upto_seq` (read while the room's numbering is locked), and, merged in, the
//! caller's snapshot and kept updates (a union: a CRDT merge loses nothing and applies a
//! duplicate once). Updates still waiting for a missing dependency go back into the log
//! after the snapshot, as [`crate::room::core::RoomCore::snapshot`] does for one node.
//! No IO here: bytes in, bytes out.

use crate::room::core::{RoomCore, RoomLimits};

/// A snapshot rebuilt from stored rows.
pub struct Rebuilt {
    /// The integrated document, to store as the snapshot.
    pub state: Vec<u8>,
    /// Updates waiting for a missing dependency, to append after the snapshot.
    pub pending: Vec<Vec<u8>>,
    /// Inputs that did not decode or apply (left out, as a load leaves them out).
    pub bad: usize,
}

/// Merges the previous snapshot, the stored rows (oldest first), the caller's snapshot and
/// the caller's kept updates into one snapshot.
pub fn rebuild(old: Option<Vec<u8>>, rows: Vec<Vec<u8>>, node_snapshot: Vec<u8>, keep: Vec<Vec<u8>>) -> Rebuilt {
    let mut updates = rows;
    updates.push(node_snapshot);
    updates.extend(keep);
    // A caller with nothing to add passes no bytes; that is not a bad update.
    updates.retain(|u| !u.is_empty());
    // The limits only bound what a client may add later; loading is never refused by them.
    let (core, bad) = RoomCore::load_with(RoomLimits::default(), old.as_deref(), &updates);
    let snapshot = core.snapshot();
    Rebuilt {
        state: snapshot.state,
        pending: snapshot.pending,
        bad,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::updates::decoder::Decode;
    use yrs::{GetString, ReadTxn, Text, Transact, Update};

    /// An update typing `text` at the end of `file` in a document of its own client.
    fn typed(doc: &yrs::Doc, text: &str) -> Vec<u8> {
        let before = doc.transact().state_vector();
        let t = doc.get_or_insert_text("t");
        let mut txn = doc.transact_mut();
        let len = t.len(&txn);
        t.insert(&mut txn, len, text);
        drop(txn);
        doc.transact().encode_diff_v1(&before)
    }

    fn text_of(state: &[u8], pending: &[Vec<u8>]) -> String {
        let doc = yrs::Doc::new();
        let mut txn = doc.transact_mut();
        for u in std::iter::once(state).chain(pending.iter().map(Vec::as_slice)) {
            txn.apply_update(Update::decode_v1(u).unwrap()).unwrap();
        }
        drop(txn);
        let t = doc.get_or_insert_text("t");
        let out = t.get_string(&doc.transact());
        out
    }

    #[test]
    fn rows_the_compacting_node_never_saw_are_in_the_snapshot() {
        let (a, b) = (yrs::Doc::with_client_id(1), yrs::Doc::with_client_id(2));
        let from_a = typed(&a, "A1 ");
        let from_b = typed(&b, "B1 ");
        // Node A's own view holds only its update; the store holds both rows.
        let built = rebuild(None, vec![from_a.clone(), from_b], from_a, Vec::new());
        let text = text_of(&built.state, &built.pending);
        assert!(text.contains("A1") && text.contains("B1"), "{text}");
        assert_eq!(built.bad, 0);
    }

    #[test]
    fn an_update_waiting_for_its_dependency_is_kept_after_the_snapshot() {
        let doc = yrs::Doc::with_client_id(7);
        let first = typed(&doc, "first ");
        let second = typed(&doc, "second");
        // Only the second arrived: it waits for the first.
        let built = rebuild(None, vec![second], Vec::new(), Vec::new());
        assert_eq!(built.pending.len(), 1, "the waiting update stays in the log");
        // Once its dependency comes, the kept update integrates.
        let mut all = built.pending.clone();
        all.insert(0, first);
        assert_eq!(text_of(&built.state, &all), "first second");
    }
}
