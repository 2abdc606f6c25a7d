//! Writing a turn's frames to its connections: each connection's frames in one go, and a
//! turn for many connections shared by several threads.

use bytes::Bytes;

use super::super::core::ConnId;
use crate::ws::OutboundTx;

/// A turn's frames and who gets which: each connection once, in id order, with the indices
/// of its frames in the turn's order. Each frame is held once here; a connection's queue
/// takes a reference to it.
pub(super) struct Plan {
    frames: Vec<Bytes>,
    /// Indices into `frames`, one connection's after another's (see [`Delivery::picks`]).
    picks: Vec<u32>,
    deliveries: Vec<Delivery>,
}

/// One connection's share of a [`Plan`].
struct Delivery {
    id: ConnId,
    tx: OutboundTx,
    /// Where its frames' indices are in [`Plan::picks`].
    picks: std::ops::Range<usize>,
    /// One of them answers the connection (see [`crate::ws::outbox::Outbox::send_frames`]).
    reply: bool,
}

impl Plan {
    /// A plan for `frames`, the turn's frames in order.
    pub(super) fn new(frames: Vec<Bytes>) -> Plan {
        Plan {
            frames,
            picks: Vec::new(),
            deliveries: Vec::new(),
        }
    }

    /// Plans the next connection (in increasing id order) to get the frames at `picks`,
    /// whose ascending indices give the turn's order; `reply`: one of them answers it.
    pub(super) fn deliver(&mut self, id: ConnId, tx: &OutboundTx, picks: impl IntoIterator<Item = u32>, reply: bool) {
        let start = self.picks.len();
        self.picks.extend(picks);
        if self.picks.len() > start {
            self.deliveries.push(Delivery {
                id,
                tx: tx.clone(),
                picks: start..self.picks.len(),
                reply,
            });
        }
    }
}

/// Connections a turn writes to before the writes are shared with other threads: below it
/// one thread writes them all (a few milliseconds at most); above it, each thread takes at
/// least this many.
const PARALLEL_WRITES_FROM: usize = 256;

/// The most threads one turn's writes are shared by.
const MAX_WRITE_THREADS: usize = 8;

/// Queues planned frames on their connections, each connection's frames of the turn in one
/// go (one write when its socket takes them); returns those whose queue was full (the client
/// cannot keep up). Runs on the room's task or, after an append, the store's thread. A
/// turn for many connections (one person typing to a lecture hall) is written by several
/// threads at once, one share of the connections each: a write to a socket is a syscall of
/// several microseconds, and 1,500 of them in a row were most of the last observer's wait.
pub(super) fn queue_planned(plan: Plan) -> Vec<ConnId> {
    let conns = plan.deliveries.len();
    let threads = (conns / PARALLEL_WRITES_FROM).min(write_threads());
    if threads <= 1 {
        return queue_share(&plan, &plan.deliveries);
    }
    let mut shares = plan.deliveries.chunks(conns.div_ceil(threads));
    let mine = shares.next().unwrap_or_default();
    let plan = &plan;
    std::thread::scope(|scope| {
        let mut full = Vec::new();
        let mut others = Vec::new();
        for share in shares {
            let spawned = std::thread::Builder::new()
                .name("mesh-writes".into())
                .spawn_scoped(scope, move || queue_share(plan, share));
            match spawned {
                Ok(thread) => others.push(thread),
                // No thread to be had (a process or memory limit): this one writes the share.
                Err(_) => full.extend(queue_share(plan, share)),
            }
        }
        full.extend(queue_share(plan, mine));
        for other in others {
            // A panic while writing is the writing thread's own; its connections resync.
            full.extend(other.join().unwrap_or_default());
        }
        full
    })
}

/// Threads one turn's writes may use: the machine's cores, at most [`MAX_WRITE_THREADS`].
fn write_threads() -> usize {
    static THREADS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *THREADS.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(MAX_WRITE_THREADS)
    })
}

/// Queues a share of the plan's deliveries, each connection's frames in one go.
fn queue_share(plan: &Plan, share: &[Delivery]) -> Vec<ConnId> {
    let mut full = Vec::new();
    for d in share {
        let frames = plan.picks[d.picks.clone()].iter().map(|&i| &plan.frames[i as usize]);
        match d.tx.send_frames(frames, d.reply) {
            Ok(()) => {}
            Err(crate::ws::TrySendError::Full) => full.push(d.id),
            // The socket is closing; its reader will send `Leave`.
            Err(crate::ws::TrySendError::Closed) => {}
        }
    }
    full
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::{Outbound, OutboundRx};

    /// Takes what is queued for a connection without waiting.
    async fn queued(rx: &mut OutboundRx) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        while let Ok(Some(Outbound::Frame(f))) =
            tokio::time::timeout(std::time::Duration::from_millis(1), rx.recv()).await
        {
            got.push(f.to_vec());
        }
        got
    }

    #[tokio::test]
    async fn a_turn_for_many_connections_reaches_each_in_order_and_reports_the_full_ones() {
        // Enough connections for every thread the machine allows, two frames each; every
        // fifth connection's queue holds one frame only.
        let n = PARALLEL_WRITES_FROM * (MAX_WRITE_THREADS + 1);
        let mut rxs = Vec::new();
        let mut frames = Vec::new();
        for id in 0..n as ConnId {
            frames.push(Bytes::from(format!("first {id}")));
            frames.push(Bytes::from(format!("second {id}")));
        }
        let mut plan = Plan::new(frames);
        for id in 0..n as ConnId {
            let capacity = if id % 5 == 0 { 1 } else { 8 };
            let (tx, rx) = crate::ws::channel(capacity);
            rxs.push(rx);
            let first = 2 * id as u32;
            plan.deliver(id, &tx, [first, first + 1], id % 7 == 0);
        }
        let mut full = queue_planned(plan);
        full.sort_unstable();
        let expected: Vec<ConnId> = (0..n as ConnId).filter(|id| id % 5 == 0).collect();
        assert_eq!(full, expected, "the connections whose queue could not take the turn");
        for (id, rx) in rxs.iter_mut().enumerate() {
            let got = queued(rx).await;
            if id % 5 == 0 {
                assert!(got.is_empty(), "a full queue takes none of the turn: {got:?}");
            } else {
                let want = vec![format!("first {id}").into_bytes(), format!("second {id}").into_bytes()];
                assert_eq!(got, want, "connection {id}");
            }
        }
    }
}
