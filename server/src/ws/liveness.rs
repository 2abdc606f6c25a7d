//! Dead peers and silent NATs are noticed by one sweep over every room socket every few
//! seconds, not by a timer per connection: a connection's task then waits on its socket
//! alone, and an idle connection holds no timer (decision 016). A client that sends nothing
//! for [`PING_AFTER`] is pinged (and again every [`PING_AFTER`]); one silent for
//! [`CLOSE_AFTER`] is closed with 1001. Each bound is kept to within one [`SWEEP_PERIOD`].

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use super::codec::PING;
use super::outbox::Outbox;

/// After this long without a frame from the client the server pings it.
pub const PING_AFTER: Duration = Duration::from_secs(20);

/// A connection that sends nothing (not even a pong) for this long is closed.
pub const CLOSE_AFTER: Duration = Duration::from_secs(60);

/// How often every connection is looked at.
pub const SWEEP_PERIOD: Duration = Duration::from_secs(5);

/// Seconds on the sweep's clock (since the first call): what a connection records when it
/// hears from its client, and what the sweep compares it with.
pub fn now_secs() -> u32 {
    static START: OnceLock<Instant> = OnceLock::new();
    let secs = START.get_or_init(Instant::now).elapsed().as_secs();
    u32::try_from(secs).unwrap_or(u32::MAX)
}

/// When a connection last heard from its client and last pinged it, on the sweep's clock.
#[derive(Debug)]
pub struct Heard {
    heard: AtomicU32,
    pinged: AtomicU32,
}

impl Heard {
    /// A connection that heard from its client now.
    pub(crate) fn new() -> Heard {
        let now = now_secs();
        Heard {
            heard: AtomicU32::new(now),
            pinged: AtomicU32::new(now),
        }
    }

    /// The client sent something.
    pub(crate) fn mark(&self) {
        self.heard.store(now_secs(), Ordering::Relaxed);
    }
}

/// What the sweep does to one connection at `now`.
#[derive(Debug, PartialEq, Eq)]
enum Due {
    Nothing,
    Ping,
    Close,
}

fn due(heard: &Heard, now: u32) -> Due {
    let silent = now.saturating_sub(heard.heard.load(Ordering::Relaxed));
    let since_ping = now.saturating_sub(heard.pinged.load(Ordering::Relaxed));
    if u64::from(silent) >= CLOSE_AFTER.as_secs() {
        Due::Close
    } else if u64::from(silent) >= PING_AFTER.as_secs() && u64::from(since_ping) >= PING_AFTER.as_secs() {
        Due::Ping
    } else {
        Due::Nothing
    }
}

/// Every open room socket, weakly: a connection that ended leaves at the next sweep.
#[derive(Default)]
pub struct Liveness {
    conns: Mutex<Vec<Weak<Outbox>>>,
}

impl Liveness {
    /// No connections yet; [`Liveness::run`] sweeps.
    pub fn new() -> Arc<Liveness> {
        Arc::new(Liveness::default())
    }

    /// Watches a connection from now on.
    pub fn watch(&self, outbox: &Arc<Outbox>) {
        self.lock().push(Arc::downgrade(outbox));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Weak<Outbox>>> {
        // The list stays consistent whatever panicked while it was held.
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connections watched and still open.
    #[cfg(test)]
    pub fn watched(&self) -> usize {
        self.lock().iter().filter(|w| w.strong_count() > 0).count()
    }

    /// Pings the connections silent too long, closes the ones silent far too long, and
    /// forgets the ones that ended.
    pub fn sweep(&self, now: u32) {
        let mut due_now = Vec::new();
        {
            let mut conns = self.lock();
            conns.retain(|weak| {
                let Some(outbox) = weak.upgrade() else { return false };
                match due(outbox.heard(), now) {
                    Due::Nothing => {}
                    what => due_now.push((outbox, what)),
                }
                true
            });
            // A burst of connections that came and went leaves no large list behind.
            if conns.capacity() > 64 && conns.len() < conns.capacity() / 4 {
                let keep = conns.len() * 2;
                conns.shrink_to(keep);
            }
        }
        // Written outside the list's lock: joins that add to it do not wait for the writes.
        for (outbox, what) in due_now {
            if what == Due::Ping {
                outbox.heard().pinged.store(now, Ordering::Relaxed);
                outbox.send_control(PING, bytes::Bytes::new());
            } else {
                outbox.close(1001, "idle timeout");
            }
        }
    }

    /// Sweeps every [`SWEEP_PERIOD`], for the life of the process.
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(SWEEP_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.sweep(now_secs());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ws::codec::CLOSE;

    /// A sweep watching two connections.
    fn two_watched() -> (Arc<Liveness>, Arc<Outbox>, Arc<Outbox>) {
        let live = Liveness::new();
        let (a, b) = (Outbox::new(8, None, None), Outbox::new(8, None, None));
        live.watch(&a);
        live.watch(&b);
        (live, a, b)
    }

    #[test]
    fn a_silent_client_is_pinged_then_pinged_again_then_closed_and_a_talking_one_never() {
        let (live, silent, talking) = two_watched();
        let t0 = now_secs();
        let (ping, close) = (PING_AFTER.as_secs() as u32, CLOSE_AFTER.as_secs() as u32);
        live.sweep(t0 + ping - 1);
        assert_eq!(silent.queued_opcodes(), Vec::<u8>::new(), "not yet");
        live.sweep(t0 + ping);
        assert_eq!(silent.queued_opcodes(), vec![PING]);
        // The other client answers the ping.
        talking.heard().heard.store(t0 + ping + 5, Ordering::Relaxed);
        live.sweep(t0 + ping + 5);
        assert_eq!(silent.queued_opcodes(), vec![PING], "one ping per interval");
        live.sweep(t0 + 2 * ping);
        assert_eq!(silent.queued_opcodes(), vec![PING, PING]);
        assert_eq!(talking.queued_opcodes(), vec![PING], "it was heard 15 s ago");
        live.sweep(t0 + close);
        assert_eq!(silent.queued_opcodes(), vec![PING, PING, CLOSE]);
        assert_eq!(
            talking.queued_opcodes(),
            vec![PING, PING],
            "silent again, pinged, not closed"
        );
        live.sweep(t0 + ping + 5 + close);
        assert_eq!(
            talking.queued_opcodes().last(),
            Some(&CLOSE),
            "silent for the whole bound"
        );
    }

    #[test]
    fn ended_connections_leave_the_sweep() {
        let (live, gone, _open) = two_watched();
        drop(gone);
        assert_eq!(live.watched(), 1);
        live.sweep(now_secs());
        assert_eq!(live.lock().len(), 1, "the ended one is forgotten");
    }
}
