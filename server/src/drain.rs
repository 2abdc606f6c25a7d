//! Graceful drain: what a node does between SIGTERM and its exit, so that the people in its
//! rooms move to another node and nothing acknowledged is lost.
//!
//! 1. [`Drain::start`]: `/readyz` answers 503 "draining" (a load balancer's health check
//!    takes the node out of rotation) and new room sockets are refused with 503
//!    `unavailable` (a client retries, and the proxy sends the retry elsewhere). Open rooms
//!    go on serving their people meanwhile.
//! 2. After the drain grace (`--drain-seconds`), every room handles what it has queued,
//!    persists it, compacts, and closes its sockets with [`DRAIN_CLOSE_CODE`] after the
//!    frames already queued on them: clients reconnect at once, through the proxy, to a
//!    node that is ready.
//! 3. The store is closed (its writes finished), then the process exits.
//!
//! Nothing acknowledged can be lost on the way: a room acknowledges an update only once it
//! is durable (the actor's invariant), and a client still holding an unacknowledged edit
//! resends it on its next connection (Yjs sync is idempotent).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long a draining node goes on serving by default: long enough for a proxy that checks
/// `/readyz` every second to see it fail, short enough to sit well inside the 10 s a
/// container engine waits after SIGTERM before it kills.
pub const DEFAULT_DRAIN_GRACE: Duration = Duration::from_secs(3);

/// The close code a draining node ends room sockets with: 1012 "service restart", which
/// every mesh client (and y-websocket) treats as "reconnect now", never as fatal.
pub const DRAIN_CLOSE_CODE: u16 = 1012;

/// The close reason that goes with [`DRAIN_CLOSE_CODE`].
pub const DRAIN_CLOSE_REASON: &str = "this server is shutting down; reconnecting to another";

/// What `/readyz` and a refused join say while the node drains.
pub const DRAINING_MESSAGE: &str =
    "this server is draining (shutting down): reconnect, and the proxy in front sends you to another server";

/// Whether this node is draining. Cheap to read on every join.
#[derive(Debug, Default)]
pub struct Drain {
    on: AtomicBool,
}

impl Drain {
    /// A node that is not draining.
    pub fn new() -> Drain {
        Drain::default()
    }

    /// From now on the node is draining (there is no way back: it is about to exit).
    pub fn start(&self) {
        self.on.store(true, Ordering::SeqCst);
    }

    /// Whether [`Drain::start`] was called.
    pub fn is_draining(&self) -> bool {
        self.on.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_drains_only_once_told_and_never_undrains() {
        let drain = Drain::new();
        assert!(!drain.is_draining());
        drain.start();
        drain.start();
        assert!(drain.is_draining());
    }
}
