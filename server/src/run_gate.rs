//! The server-wide handle to the [admission policy](crate::admission): every room's actor
//! and the REST path ask it before a run or debug session takes a container.
//!
//! The policy sits behind a `std` mutex that is held only for one call of it, never across
//! an `.await`. What follows from a call (a queued request may start, a position moved) is
//! sent to the room that holds the request, as [`Command::Admission`]. A room that is gone
//! cannot start what it queued, so its ticket is finished at once and the slot passes on.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, OnceLock};

use mesh_protocol::RoomId;
use tokio::sync::mpsc;

use crate::admission::{Admission, Decision, Event, Kind, Limits, Person, Request, Ticket};
use crate::room::actor::Command;

/// The shared admission state. Cheap to clone.
#[derive(Clone)]
pub struct RunGate {
    inner: Arc<Mutex<Inner>>,
}

struct Inner {
    policy: Admission,
    /// The room inbox of each waiting ticket, where its events go.
    waiting: HashMap<Ticket, mpsc::WeakSender<Command>>,
}

impl RunGate {
    /// A gate with these caps, nothing running.
    pub fn new(limits: Limits) -> Self {
        RunGate {
            inner: Arc::new(Mutex::new(Inner {
                policy: Admission::new(limits),
                waiting: HashMap::new(),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Each call leaves the policy consistent before it can panic; keep serving.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The caps.
    pub fn limits(&self) -> Limits {
        self.lock().policy.limits()
    }

    /// Asks for a sandbox for `request`; `room` is the inbox that hears when a queued
    /// request may start or moves.
    pub fn request(&self, request: Request, room: &mpsc::WeakSender<Command>) -> Decision {
        let mut inner = self.lock();
        let decision = inner.policy.request(request);
        if let Decision::Queued { ticket, .. } = &decision {
            inner.waiting.insert(*ticket, room.clone());
        }
        report(&inner.policy);
        decision
    }

    /// A sandbox ended, or a waiting request is withdrawn.
    pub fn finish(&self, ticket: Ticket) {
        let sends = {
            let mut inner = self.lock();
            inner.waiting.remove(&ticket);
            let events = inner.policy.finish(ticket);
            route(&mut inner, events)
        };
        self.deliver(sends);
    }

    /// The room's task stopped: what it queued leaves the queue.
    pub fn forget_room(&self, room: RoomId) {
        let sends = {
            let mut inner = self.lock();
            let events = inner.policy.forget_room(room);
            let Inner { policy, waiting } = &mut *inner;
            waiting.retain(|t, _| policy.is_waiting(*t));
            route(&mut inner, events)
        };
        self.deliver(sends);
    }

    /// A guard that finishes `ticket` when dropped: the sandbox's task holds it, so the
    /// slot is freed however the task ends (a panic included).
    pub fn slot(&self, ticket: Ticket) -> Slot {
        Slot {
            gate: self.clone(),
            ticket,
        }
    }

    /// Sends each event to its room, in order. A start that cannot reach its room frees
    /// the slot again.
    fn deliver(&self, sends: Vec<(Event, Option<mpsc::Sender<Command>>)>) {
        for (event, tx) in sends {
            let start = match event {
                Event::Start { ticket, .. } => Some(ticket),
                Event::Moved { .. } => None,
            };
            let Some(tx) = tx else {
                if let Some(ticket) = start {
                    self.finish(ticket);
                }
                continue;
            };
            match tx.try_send(Command::Admission(event)) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    if let Some(ticket) = start {
                        self.finish(ticket);
                    }
                }
                Err(mpsc::error::TrySendError::Full(cmd)) => {
                    // The room is busy: wait for space without holding anything up here.
                    let gate = self.clone();
                    tokio::spawn(async move {
                        if tx.send(cmd).await.is_err() {
                            if let Some(ticket) = start {
                                gate.finish(ticket);
                            }
                        }
                    });
                }
            }
        }
    }
}

/// Pairs each event with its room's inbox (a start's ticket stops waiting).
fn route(inner: &mut Inner, events: Vec<Event>) -> Vec<(Event, Option<mpsc::Sender<Command>>)> {
    let out = events
        .into_iter()
        .map(|e| {
            let tx = match &e {
                Event::Start { ticket, .. } => inner.waiting.remove(ticket),
                Event::Moved { ticket, .. } => inner.waiting.get(ticket).cloned(),
            };
            (e, tx.and_then(|w| w.upgrade()))
        })
        .collect();
    report(&inner.policy);
    out
}

fn report(policy: &Admission) {
    metrics::gauge!("mesh_sandboxes_running", "kind" => "run").set(policy.running(Kind::Run) as f64);
    metrics::gauge!("mesh_sandboxes_running", "kind" => "debug").set(policy.running(Kind::Debug) as f64);
    metrics::gauge!("mesh_sandboxes_waiting").set(policy.waiting() as f64);
}

/// Holds a running sandbox's place; dropping it frees the place for the next in line.
pub struct Slot {
    gate: RunGate,
    ticket: Ticket,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.gate.finish(self.ticket);
    }
}

/// The person a REST caller counts as: a keyed digest of its token, so that the policy
/// never holds the token itself. The key is random per process.
pub fn token_person(token: &str) -> Person {
    static KEY: OnceLock<RandomState> = OnceLock::new();
    Person::Token(KEY.get_or_init(RandomState::new).hash_one(token))
}
