//! Our own updates until the server has stored them, so that a reconnect whose answer would
//! be too large for one message resends them as the updates they were, each small, never as
//! one sync message over the server's frame limit (16 MiB; an upload, or edits made offline,
//! can hold far more).
//!
//! Sans-IO: the replica records each local update as it goes out, tells the outbox when it
//! sends a sync step 1 and when the answer comes back (the server answers a sync step 1
//! only after everything sent before it on that connection is stored), and asks it what to
//! resend when the server's own sync step 1 says where the room is.

use std::collections::VecDeque;

/// The unconfirmed local updates that, together, make the outbox ask the server to confirm
/// (by a sync step 1): bounds the memory the outbox holds while connected.
pub(super) const CONFIRM_BYTES: usize = 8 * 1024 * 1024;

/// The epoch of an update not sent on the current connection: no answer confirms it.
const UNSENT: u64 = u64::MAX;

/// One local update as it was sent.
#[derive(Debug)]
struct Sent {
    /// The update (v1 encoding).
    update: Vec<u8>,
    /// Our client's clock after it: the server has it once its state vector reaches this.
    end_clock: u32,
    /// The sync step 1s sent before it on this connection (see [`Outbox::step1_sent`]), or
    /// [`UNSENT`].
    epoch: u64,
}

/// Local updates the server has not confirmed.
#[derive(Debug, Default)]
pub(super) struct Outbox {
    /// In the order they were sent; end clocks never decrease along it.
    sent: VecDeque<Sent>,
    /// Their bytes together.
    bytes: usize,
    /// Sync step 1s sent so far.
    epoch: u64,
    /// The epochs of the sync step 1s whose answers are still due on this connection.
    waiting: VecDeque<u64>,
}

impl Outbox {
    /// A local update went out (or was dropped, offline); our clock after it is `end_clock`.
    pub(super) fn record(&mut self, update: Vec<u8>, end_clock: u32) {
        self.bytes += update.len();
        self.sent.push_back(Sent {
            update,
            end_clock,
            epoch: self.epoch,
        });
    }

    /// A sync step 1 went out on the live connection.
    pub(super) fn step1_sent(&mut self) {
        self.waiting.push_back(self.epoch);
        self.epoch += 1;
    }

    /// The answer to the oldest sync step 1 still due arrived: what was sent before that
    /// step 1 is stored (or was refused, and would be refused again).
    pub(super) fn step2_received(&mut self) {
        let Some(mark) = self.waiting.pop_front() else { return };
        while self.sent.front().is_some_and(|s| s.epoch <= mark) {
            self.drop_front();
        }
    }

    /// The connection ended or a new one began: no answers are due any more, and nothing
    /// recorded so far reached this connection (frames queued while offline are dropped).
    pub(super) fn reconnected(&mut self) {
        self.waiting.clear();
        for s in &mut self.sent {
            s.epoch = UNSENT;
        }
    }

    /// Whether to ask the server to confirm now: enough waits and no question is open.
    pub(super) fn wants_confirmation(&self) -> bool {
        self.bytes >= CONFIRM_BYTES && self.waiting.is_empty()
    }

    /// The server's sync step 1 says it has our updates up to `server_clock`: the updates
    /// after that, in order, to send again now. The ones it has are forgotten. (Deletions
    /// add no clock: the sync step 2 that follows carries every deletion.)
    pub(super) fn resend(&mut self, server_clock: u32) -> Vec<Vec<u8>> {
        while self.sent.front().is_some_and(|s| s.end_clock <= server_clock) {
            self.drop_front();
        }
        let epoch = self.epoch;
        self.sent
            .iter_mut()
            .map(|s| {
                s.epoch = epoch;
                s.update.clone()
            })
            .collect()
    }

    fn drop_front(&mut self) {
        if let Some(s) = self.sent.pop_front() {
            self.bytes -= s.update.len();
        }
    }

    /// How many updates wait for confirmation.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.sent.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(n: u8) -> Vec<u8> {
        vec![n; 10]
    }

    #[test]
    fn updates_sent_before_an_answered_step1_are_forgotten_and_later_ones_kept() {
        let mut out = Outbox::default();
        out.record(update(1), 5);
        out.step1_sent();
        out.record(update(2), 9);
        out.step2_received();
        assert_eq!(out.len(), 1, "the update after the step 1 waits for the next answer");
        out.step1_sent();
        out.step2_received();
        assert_eq!(out.len(), 0);
        assert_eq!(out.bytes, 0);
    }

    #[test]
    fn a_reconnect_resends_in_order_what_the_server_lacks_and_only_that() {
        let mut out = Outbox::default();
        for (n, clock) in [(1, 5), (2, 9), (3, 9), (4, 14)] {
            out.record(update(n), clock);
        }
        // The server stored up to clock 9: the first three (the third a deletion, carried by
        // the sync step 2 anyway) are forgotten.
        assert_eq!(out.resend(9), [update(4)]);
        assert_eq!(out.resend(14), Vec::<Vec<u8>>::new());
    }

    #[test]
    fn answers_of_a_lost_connection_never_confirm_anything() {
        let mut out = Outbox::default();
        out.record(update(1), 5);
        out.step1_sent(); // Lost with the connection, never answered.
        out.reconnected();
        out.step1_sent();
        // Even an answer that came before the server's own step 1 confirms nothing unsent.
        out.step2_received();
        assert_eq!(out.len(), 1);
        out.step1_sent();
        let resent = out.resend(0);
        assert_eq!(resent, [update(1)]);
        // The answer to the step 1 sent before the resend.
        out.step2_received();
        assert_eq!(out.len(), 1, "a resent update waits for an answer sent after it");
        out.step1_sent();
        out.step2_received();
        assert_eq!(out.len(), 0);
    }

    #[test]
    fn confirmation_is_asked_for_past_the_threshold_once_at_a_time() {
        let mut out = Outbox::default();
        out.record(vec![0; CONFIRM_BYTES - 1], 1);
        assert!(!out.wants_confirmation());
        out.record(vec![0; 1], 2);
        assert!(out.wants_confirmation());
        out.step1_sent();
        assert!(!out.wants_confirmation(), "one question at a time");
        out.step2_received();
        assert!(!out.wants_confirmation());
    }
}
