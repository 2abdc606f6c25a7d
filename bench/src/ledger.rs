//! The ledger shared by every client of one run: when each update was sent, by whom, in which
//! phase, and how many of the sender's room-mates have received it.
//!
//! All clients live in this process, so a receiver finds the send instant of an update by the
//! ids the update itself carries (client id, clock): this works whatever framing or
//! re-encoding the server applies. Each sender has its own log behind its own lock, held only
//! for a few instructions and never across an `.await`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Added to a client's index to form its Yjs client id: keeps ids away from 0 and small
/// numbers a server might treat specially, and well below 2^53 as Yjs requires.
const CLIENT_ID_BASE: u64 = 1_000_000;

/// The load phases; their index selects counters and per-update records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Open loop at a fixed rate per client.
    Typing = 0,
    /// Closed loop with a window of undelivered updates per client.
    Saturation = 1,
}

/// How many [`Phase`]s there are.
pub const PHASES: usize = 2;

impl Phase {
    /// Both phases, in the order they run.
    pub const ALL: [Phase; PHASES] = [Phase::Typing, Phase::Saturation];

    /// The phase's index into per-phase arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Lower-case name, used in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Typing => "typing",
            Phase::Saturation => "saturation",
        }
    }
}

/// One sent update.
struct Entry {
    sent_at: Instant,
    phase: Phase,
    /// Room-mates that have received it so far.
    receipts: u32,
}

/// One sender's log, indexed by clock (each update inserts one character: one clock).
struct SenderLog {
    entries: Mutex<Vec<Entry>>,
    /// Per phase: updates received by all of the sender's room-mates.
    fully_delivered: [AtomicU64; PHASES],
    /// Woken when one of the sender's updates becomes fully delivered.
    delivered: Notify,
}

/// Per-phase totals over all clients.
#[derive(Default)]
struct Totals {
    sent: AtomicU64,
    receipts: AtomicU64,
}

/// A received update's record, as seen by the receiver.
pub struct Receipt {
    /// The phase the update was sent in.
    pub phase: Phase,
    /// Time from the send to this receipt.
    pub latency: Duration,
}

/// The shared ledger of one run against one server.
pub struct Ledger {
    senders: Vec<SenderLog>,
    clients_per_room: usize,
    totals: [Totals; PHASES],
}

impl Ledger {
    /// A ledger for `rooms` rooms of `clients_per_room` clients each.
    pub fn new(rooms: usize, clients_per_room: usize) -> Self {
        let senders = (0..rooms * clients_per_room)
            .map(|_| SenderLog {
                entries: Mutex::new(Vec::new()),
                fully_delivered: Default::default(),
                delivered: Notify::new(),
            })
            .collect();
        Ledger {
            senders,
            clients_per_room,
            totals: Default::default(),
        }
    }

    /// The Yjs client id of the client with global index `index`.
    pub fn client_id(index: usize) -> u64 {
        CLIENT_ID_BASE + index as u64
    }

    /// The global index of the client with Yjs id `client_id`, if it is one of ours.
    pub fn index_of(&self, client_id: u64) -> Option<usize> {
        let index = usize::try_from(client_id.checked_sub(CLIENT_ID_BASE)?).ok()?;
        (index < self.senders.len()).then_some(index)
    }

    /// The room of the client with global index `index`.
    pub fn room_of(&self, index: usize) -> usize {
        index / self.clients_per_room
    }

    /// Records that `sender` sent the update ending its clock range at `clock + 1` now.
    /// Clocks must be recorded in order, starting at 0.
    pub fn record_send(&self, sender: usize, clock: u32, phase: Phase) {
        let mut entries = lock(&self.senders[sender].entries);
        debug_assert_eq!(entries.len(), clock as usize, "sends are recorded in clock order");
        entries.push(Entry {
            sent_at: Instant::now(),
            phase,
            receipts: 0,
        });
        drop(entries);
        self.totals[phase.index()].sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Records that a room-mate of `sender` received its update at `clock`, at `now`.
    /// Returns `None` for a clock that was never sent. The caller ensures it reports each
    /// (receiver, clock) pair once.
    pub fn record_receipt(&self, sender: usize, clock: u32, now: Instant) -> Option<Receipt> {
        let log = &self.senders[sender];
        let mut entries = lock(&log.entries);
        let entry = entries.get_mut(clock as usize)?;
        entry.receipts += 1;
        let all_received = entry.receipts as usize == self.clients_per_room - 1;
        let receipt = Receipt {
            phase: entry.phase,
            latency: now.saturating_duration_since(entry.sent_at),
        };
        drop(entries);
        self.totals[receipt.phase.index()]
            .receipts
            .fetch_add(1, Ordering::Relaxed);
        if all_received {
            log.fully_delivered[receipt.phase.index()].fetch_add(1, Ordering::Release);
            log.delivered.notify_one();
        }
        Some(receipt)
    }

    /// How many of `sender`'s updates of `phase` all its room-mates have received.
    pub fn fully_delivered(&self, sender: usize, phase: Phase) -> u64 {
        self.senders[sender].fully_delivered[phase.index()].load(Ordering::Acquire)
    }

    /// Resolves after one of `sender`'s updates became fully delivered (or at once if one
    /// did since the last call).
    pub async fn delivery(&self, sender: usize) {
        self.senders[sender].delivered.notified().await;
    }

    /// Updates sent in `phase`, over all clients.
    pub fn sent(&self, phase: Phase) -> u64 {
        self.totals[phase.index()].sent.load(Ordering::Relaxed)
    }

    /// Receipts of `phase`'s updates, over all receivers.
    pub fn receipts(&self, phase: Phase) -> u64 {
        self.totals[phase.index()].receipts.load(Ordering::Relaxed)
    }

    /// Receipts `phase` should reach: every update by every room-mate of its sender.
    pub fn expected_receipts(&self, phase: Phase) -> u64 {
        self.sent(phase) * (self.clients_per_room as u64 - 1)
    }
}

/// Locks a sender log. A panic while holding it (a bug in this file) must not hide the
/// results of the others, so a poisoned lock is used as is.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_update_is_fully_delivered_when_every_room_mate_has_it() {
        let ledger = Ledger::new(2, 3);
        assert_eq!(ledger.index_of(Ledger::client_id(4)), Some(4));
        assert_eq!(ledger.index_of(Ledger::client_id(6)), None);
        assert_eq!(ledger.room_of(4), 1);
        ledger.record_send(4, 0, Phase::Saturation);
        let now = Instant::now();
        assert_eq!(ledger.record_receipt(4, 0, now).unwrap().phase, Phase::Saturation);
        assert_eq!(ledger.fully_delivered(4, Phase::Saturation), 0);
        ledger.record_receipt(4, 0, now);
        assert_eq!(ledger.fully_delivered(4, Phase::Saturation), 1);
        assert!(ledger.record_receipt(4, 1, now).is_none());
        assert_eq!(
            (ledger.sent(Phase::Saturation), ledger.receipts(Phase::Saturation)),
            (1, 2)
        );
        assert_eq!(ledger.expected_receipts(Phase::Saturation), 2);
        assert_eq!(ledger.sent(Phase::Typing), 0);
    }
}
