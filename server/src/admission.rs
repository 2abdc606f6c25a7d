//! Admission of runs and debug sessions: who may start a sandbox now, who waits, and who is
//! refused. Every container a run or debug session holds costs the host memory and CPU, so
//! their number is capped per server, per room and per person, and a request over a cap
//! waits in one server-wide queue whose length is bounded too.
//!
//! This is the one place the policy lives. It is sans-IO and deterministic: no tokio, no
//! clock, no sockets. [`Admission::request`] answers a request with a [`Decision`];
//! [`Admission::finish`] (a sandbox ended, or a waiting request was withdrawn) and
//! [`Admission::forget_room`] return the [`Event`]s that follow: queued requests that may
//! start now, and the new queue positions of those still waiting. The caller (the room
//! actors and the REST path, through a shared handle) carries them out.
//!
//! Rules (each one a test below):
//! - A request that fits every cap starts at once.
//! - A request over a cap waits in a FIFO queue and is told its position and the cap it
//!   waits on; the position is its place in the server's queue, so it only goes down.
//! - When a sandbox ends, the queue is scanned front to back and every request that fits
//!   now starts; a request held back by its own room's or person's cap does not hold up
//!   the others.
//! - The queue is bounded: in all ([`Limits::queue`]), per room (as many waiting as the room
//!   may run) and per person (as many waiting as they may run). Past that, a request is
//!   refused with the limit's name.
//! - A cap of zero turns that kind of sandbox off: refused, never queued forever.

use std::collections::{HashMap, VecDeque};

use mesh_protocol::RoomId;

/// Runs at once on one server by default: each may hold 1 CPU and 256 MiB (the registry's
/// default limits), so 16 bound a busy server's sandboxes to about 4 GiB.
pub const DEFAULT_MAX_RUNS: usize = 16;
/// Debug sessions at once on one server by default: each may hold 512 MiB for up to 30
/// minutes, so 4 bound them to 2 GiB.
pub const DEFAULT_MAX_DEBUG_SESSIONS: usize = 4;
/// Runs at once in one room by default: enough for a pair comparing two programs, few
/// enough that one room cannot take the whole server.
pub const DEFAULT_MAX_RUNS_PER_ROOM: usize = 4;
/// Runs at once per person by default (a connection, or a token over REST): one program
/// is what a person watches; the next waits for it.
pub const DEFAULT_MAX_RUNS_PER_PERSON: usize = 1;
/// Requests waiting on one server by default: a few per busy room; more is a flood, and
/// a long wait is worse than a clear refusal.
pub const DEFAULT_RUN_QUEUE: usize = 64;

/// The caps, as configured (`server/src/config.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Runs at once on the server (`max_runs`).
    pub runs: usize,
    /// Debug sessions at once on the server (`max_debug_sessions`).
    pub debug_sessions: usize,
    /// Runs at once in one room (`max_runs_per_room`).
    pub runs_per_room: usize,
    /// Runs at once per person (`max_runs_per_person`).
    pub runs_per_person: usize,
    /// Requests waiting on the server (`run_queue`).
    pub queue: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            runs: DEFAULT_MAX_RUNS,
            debug_sessions: DEFAULT_MAX_DEBUG_SESSIONS,
            runs_per_room: DEFAULT_MAX_RUNS_PER_ROOM,
            runs_per_person: DEFAULT_MAX_RUNS_PER_PERSON,
            queue: DEFAULT_RUN_QUEUE,
        }
    }
}

/// One of the caps, named as its configuration key (what errors and queue notices say).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    /// [`Limits::runs`].
    MaxRuns,
    /// [`Limits::debug_sessions`].
    MaxDebugSessions,
    /// [`Limits::runs_per_room`].
    MaxRunsPerRoom,
    /// [`Limits::runs_per_person`].
    MaxRunsPerPerson,
    /// [`Limits::queue`].
    RunQueue,
}

impl Limit {
    /// The configuration key (`--max-runs`, `MESH_MAX_RUNS`, `max_runs`), as the wire and
    /// errors name it.
    pub fn key(self) -> &'static str {
        match self {
            Limit::MaxRuns => "max_runs",
            Limit::MaxDebugSessions => "max_debug_sessions",
            Limit::MaxRunsPerRoom => "max_runs_per_room",
            Limit::MaxRunsPerPerson => "max_runs_per_person",
            Limit::RunQueue => "run_queue",
        }
    }

    fn value(self, limits: &Limits) -> usize {
        match self {
            Limit::MaxRuns => limits.runs,
            Limit::MaxDebugSessions => limits.debug_sessions,
            Limit::MaxRunsPerRoom => limits.runs_per_room,
            Limit::MaxRunsPerPerson => limits.runs_per_person,
            Limit::RunQueue => limits.queue,
        }
    }
}

/// What a sandbox is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A run: counts against the server's, the room's and the person's run caps.
    Run,
    /// A debug session: counts against the server's debug cap (a room has at most one,
    /// which its actor keeps).
    Debug,
}

/// Who asks: the unit the per-person cap counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Person {
    /// A room socket connection (its id is unique for the server's lifetime).
    Conn(u64),
    /// A REST caller, by a keyed digest of its token (never the token itself).
    Token(u64),
}

/// A request's handle: the same ticket starts, waits, moves and finishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(pub u64);

/// A request for a sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// Run or debug session.
    pub kind: Kind,
    /// The room it is for.
    pub room: RoomId,
    /// Who asks.
    pub person: Person,
}

/// Why a request was refused: a cap with no room left in the queue behind it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The cap is zero: this kind of sandbox is off on this server.
    #[error("{} are turned off on this server ({} = 0); ask its operator", kind_plural(*.kind), .limit.key())]
    Off {
        /// The cap.
        limit: Limit,
        /// What was asked for.
        kind: Kind,
    },
    /// The person has as many running and waiting as the cap allows.
    #[error("you already have {running} run(s) going and {waiting} waiting ({} = {value}); stop one or wait for it to end", .limit.key())]
    Person {
        /// The cap.
        limit: Limit,
        /// Its value.
        value: usize,
        /// The person's runs going.
        running: usize,
        /// The person's runs waiting.
        waiting: usize,
    },
    /// The room has as many running and waiting as the cap allows.
    #[error("this room already has {running} run(s) going and {waiting} waiting ({} = {value}); wait for one to end", .limit.key())]
    Room {
        /// The cap.
        limit: Limit,
        /// Its value.
        value: usize,
        /// The room's runs going.
        running: usize,
        /// The room's runs waiting.
        waiting: usize,
    },
    /// The server's queue is full.
    #[error("{waiting} requests already wait for a sandbox on this server ({} = {value}); try again when one has ended", .limit.key())]
    QueueFull {
        /// The cap ([`Limit::RunQueue`]).
        limit: Limit,
        /// Its value.
        value: usize,
        /// Requests waiting.
        waiting: usize,
    },
}

impl Refusal {
    /// The cap that refused.
    pub fn limit(&self) -> Limit {
        match self {
            Refusal::Off { limit, .. }
            | Refusal::Person { limit, .. }
            | Refusal::Room { limit, .. }
            | Refusal::QueueFull { limit, .. } => *limit,
        }
    }
}

fn kind_plural(kind: Kind) -> &'static str {
    match kind {
        Kind::Run => "runs",
        Kind::Debug => "debug sessions",
    }
}

/// The answer to a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Start it now.
    Start(Ticket),
    /// It waits: `position` is its place in the server's queue (1 is next), `waiting_for`
    /// the cap that holds it back now.
    Queued {
        /// Its ticket, to withdraw it or to recognise its start.
        ticket: Ticket,
        /// 1-based place in the queue.
        position: u32,
        /// The cap it waits on.
        waiting_for: Limit,
    },
    /// Neither: the caps and the queue are full.
    Refused(Refusal),
}

/// What follows from a sandbox ending or a request leaving the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A queued request may start now; its sandbox is counted from here.
    Start {
        /// The request.
        ticket: Ticket,
        /// Its room.
        room: RoomId,
    },
    /// A queued request moved up, or now waits on another cap.
    Moved {
        /// The request.
        ticket: Ticket,
        /// Its room.
        room: RoomId,
        /// Its new 1-based place.
        position: u32,
        /// The cap it waits on now.
        waiting_for: Limit,
    },
}

#[derive(Debug)]
struct Waiting {
    ticket: Ticket,
    request: Request,
    /// What the requester was last told, so only changes are reported.
    told: (u32, Limit),
}

/// The admission policy's state: the sandboxes counted as running and the queue.
#[derive(Debug)]
pub struct Admission {
    limits: Limits,
    next: u64,
    running: HashMap<Ticket, Request>,
    queue: VecDeque<Waiting>,
}

impl Admission {
    /// Nothing running, nothing waiting.
    pub fn new(limits: Limits) -> Self {
        Admission {
            limits,
            next: 1,
            running: HashMap::new(),
            queue: VecDeque::new(),
        }
    }

    /// The caps.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Sandboxes of `kind` counted as running.
    pub fn running(&self, kind: Kind) -> usize {
        self.running.values().filter(|r| r.kind == kind).count()
    }

    /// Requests waiting.
    pub fn waiting(&self) -> usize {
        self.queue.len()
    }

    /// Answers a request: start, wait, or refused.
    pub fn request(&mut self, request: Request) -> Decision {
        let server_cap = match request.kind {
            Kind::Run => Limit::MaxRuns,
            Kind::Debug => Limit::MaxDebugSessions,
        };
        for cap in [server_cap, Limit::MaxRunsPerRoom, Limit::MaxRunsPerPerson] {
            if applies(cap, request.kind) && cap.value(&self.limits) == 0 {
                return Decision::Refused(Refusal::Off {
                    limit: cap,
                    kind: request.kind,
                });
            }
        }
        let Some(waiting_for) = self.blocked_by(&request) else {
            let ticket = self.ticket();
            self.running.insert(ticket, request);
            return Decision::Start(ticket);
        };
        if let Some(refusal) = self.queue_refusal(&request) {
            return Decision::Refused(refusal);
        }
        let ticket = self.ticket();
        let position = self.queue.len() as u32 + 1;
        self.queue.push_back(Waiting {
            ticket,
            request,
            told: (position, waiting_for),
        });
        Decision::Queued {
            ticket,
            position,
            waiting_for,
        }
    }

    /// A sandbox ended, or a waiting request was withdrawn (an unknown ticket changes
    /// nothing). Returns the requests that start now and the positions that moved.
    pub fn finish(&mut self, ticket: Ticket) -> Vec<Event> {
        if self.running.remove(&ticket).is_none() {
            let before = self.queue.len();
            self.queue.retain(|w| w.ticket != ticket);
            if self.queue.len() == before {
                return Vec::new();
            }
        }
        self.schedule()
    }

    /// Whether `ticket` is waiting in the queue.
    pub fn is_waiting(&self, ticket: Ticket) -> bool {
        self.queue.iter().any(|w| w.ticket == ticket)
    }

    /// The room is gone: its waiting requests leave the queue. (Its running sandboxes are
    /// finished one by one as they end, since their containers outlive the room's task.)
    pub fn forget_room(&mut self, room: RoomId) -> Vec<Event> {
        let before = self.queue.len();
        self.queue.retain(|w| w.request.room != room);
        if self.queue.len() == before {
            return Vec::new();
        }
        self.schedule()
    }

    fn ticket(&mut self) -> Ticket {
        let t = Ticket(self.next);
        self.next += 1;
        t
    }

    /// Starts every waiting request that fits, front to back, then reports moves.
    fn schedule(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        let mut i = 0;
        while i < self.queue.len() {
            if self.blocked_by(&self.queue[i].request).is_none() {
                let w = self.queue.remove(i).expect("index checked");
                self.running.insert(w.ticket, w.request);
                events.push(Event::Start {
                    ticket: w.ticket,
                    room: w.request.room,
                });
            } else {
                i += 1;
            }
        }
        for i in 0..self.queue.len() {
            let waiting_for = self.blocked_by(&self.queue[i].request).expect("what fits has started");
            let now = (i as u32 + 1, waiting_for);
            let w = &mut self.queue[i];
            if w.told != now {
                w.told = now;
                events.push(Event::Moved {
                    ticket: w.ticket,
                    room: w.request.room,
                    position: now.0,
                    waiting_for,
                });
            }
        }
        events
    }

    /// The first cap a request would exceed if it started now, counting running sandboxes.
    fn blocked_by(&self, r: &Request) -> Option<Limit> {
        let running = |f: &dyn Fn(&Request) -> bool| self.running.values().filter(|x| f(x)).count();
        match r.kind {
            Kind::Debug => {
                (running(&|x| x.kind == Kind::Debug) >= self.limits.debug_sessions).then_some(Limit::MaxDebugSessions)
            }
            Kind::Run => {
                let runs = |x: &Request| x.kind == Kind::Run;
                if running(&runs) >= self.limits.runs {
                    Some(Limit::MaxRuns)
                } else if running(&|x| runs(x) && x.room == r.room) >= self.limits.runs_per_room {
                    Some(Limit::MaxRunsPerRoom)
                } else if running(&|x| runs(x) && x.person == r.person) >= self.limits.runs_per_person {
                    Some(Limit::MaxRunsPerPerson)
                } else {
                    None
                }
            }
        }
    }

    /// Why a request that cannot start may not wait either.
    fn queue_refusal(&self, r: &Request) -> Option<Refusal> {
        let count = |f: &dyn Fn(&Request) -> bool| {
            (
                self.running.values().filter(|x| f(x)).count(),
                self.queue.iter().filter(|w| f(&w.request)).count(),
            )
        };
        if r.kind == Kind::Run {
            let (running, waiting) = count(&|x| x.kind == Kind::Run && x.person == r.person);
            if waiting >= self.limits.runs_per_person {
                return Some(Refusal::Person {
                    limit: Limit::MaxRunsPerPerson,
                    value: self.limits.runs_per_person,
                    running,
                    waiting,
                });
            }
            let (running, waiting) = count(&|x| x.kind == Kind::Run && x.room == r.room);
            if waiting >= self.limits.runs_per_room {
                return Some(Refusal::Room {
                    limit: Limit::MaxRunsPerRoom,
                    value: self.limits.runs_per_room,
                    running,
                    waiting,
                });
            }
        }
        (self.queue.len() >= self.limits.queue).then_some(Refusal::QueueFull {
            limit: Limit::RunQueue,
            value: self.limits.queue,
            waiting: self.queue.len(),
        })
    }
}

/// Whether a cap counts requests of `kind`.
fn applies(cap: Limit, kind: Kind) -> bool {
    match cap {
        Limit::MaxRuns | Limit::MaxRunsPerRoom | Limit::MaxRunsPerPerson => kind == Kind::Run,
        Limit::MaxDebugSessions => kind == Kind::Debug,
        Limit::RunQueue => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(runs: usize, per_room: usize, per_person: usize, queue: usize) -> Limits {
        Limits {
            runs,
            debug_sessions: 1,
            runs_per_room: per_room,
            runs_per_person: per_person,
            queue,
        }
    }

    fn run(room: RoomId, person: Person) -> Request {
        Request {
            kind: Kind::Run,
            room,
            person,
        }
    }

    fn started(d: Decision) -> Ticket {
        match d {
            Decision::Start(t) => t,
            other => panic!("expected a start, got {other:?}"),
        }
    }

    fn queued(d: Decision) -> (Ticket, u32, Limit) {
        match d {
            Decision::Queued {
                ticket,
                position,
                waiting_for,
            } => (ticket, position, waiting_for),
            other => panic!("expected to wait, got {other:?}"),
        }
    }

    fn refused(d: Decision) -> Refusal {
        match d {
            Decision::Refused(r) => r,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn a_request_within_every_cap_starts_at_once() {
        let mut a = Admission::new(limits(2, 2, 1, 4));
        let room = RoomId::random();
        started(a.request(run(room, Person::Conn(1))));
        started(a.request(run(room, Person::Conn(2))));
        assert_eq!(a.running(Kind::Run), 2);
        assert_eq!(a.waiting(), 0);
    }

    #[test]
    fn over_the_server_cap_a_request_waits_with_its_position() {
        let mut a = Admission::new(limits(1, 4, 4, 4));
        let first = started(a.request(run(RoomId::random(), Person::Conn(1))));
        let (_, pos, why) = queued(a.request(run(RoomId::random(), Person::Conn(2))));
        assert_eq!((pos, why), (1, Limit::MaxRuns));
        let (_, pos, _) = queued(a.request(run(RoomId::random(), Person::Conn(3))));
        assert_eq!(pos, 2, "the second to wait is second in line");
        let _ = first;
    }

    #[test]
    fn when_a_sandbox_ends_the_first_waiting_starts_and_the_rest_move_up() {
        let mut a = Admission::new(limits(1, 4, 4, 4));
        let (r1, r2, r3) = (RoomId::random(), RoomId::random(), RoomId::random());
        let first = started(a.request(run(r1, Person::Conn(1))));
        let (second, _, _) = queued(a.request(run(r2, Person::Conn(2))));
        let (third, _, _) = queued(a.request(run(r3, Person::Conn(3))));
        let events = a.finish(first);
        assert_eq!(
            events,
            vec![
                Event::Start {
                    ticket: second,
                    room: r2
                },
                Event::Moved {
                    ticket: third,
                    room: r3,
                    position: 1,
                    waiting_for: Limit::MaxRuns
                },
            ]
        );
        assert_eq!(a.running(Kind::Run), 1);
    }

    #[test]
    fn the_per_person_cap_counts_rest_tokens_like_connections() {
        let mut a = Admission::new(limits(16, 16, 1, 16));
        let room = RoomId::random();
        let token = Person::Token(42);
        started(a.request(run(room, token)));
        let (_, pos, why) = queued(a.request(run(room, token)));
        assert_eq!((pos, why), (1, Limit::MaxRunsPerPerson));
        // Six parallel calls with one token: one runs, one waits, the rest are refused.
        for _ in 0..4 {
            let r = refused(a.request(run(room, token)));
            assert_eq!(r.limit(), Limit::MaxRunsPerPerson);
            assert!(r.to_string().contains("max_runs_per_person = 1"), "{r}");
        }
        // Another person is not held back by it.
        started(a.request(run(room, Person::Token(7))));
    }

    #[test]
    fn the_per_room_cap_holds_back_only_its_room() {
        let mut a = Admission::new(limits(16, 1, 4, 16));
        let (busy, other) = (RoomId::random(), RoomId::random());
        started(a.request(run(busy, Person::Conn(1))));
        let (_, _, why) = queued(a.request(run(busy, Person::Conn(2))));
        assert_eq!(why, Limit::MaxRunsPerRoom);
        let r = refused(a.request(run(busy, Person::Conn(3))));
        assert_eq!(r.limit(), Limit::MaxRunsPerRoom, "a room waits for at most its cap");
        started(a.request(run(other, Person::Conn(4))));
    }

    #[test]
    fn a_request_held_by_its_own_cap_does_not_hold_up_the_queue() {
        let mut a = Admission::new(limits(2, 4, 1, 8));
        let (r1, r2) = (RoomId::random(), RoomId::random());
        let ada_first = started(a.request(run(r1, Person::Conn(1))));
        // Ada's second waits on her own cap; Bob's waits on the server's.
        let (ada_second, _, why) = queued(a.request(run(r1, Person::Conn(1))));
        assert_eq!(why, Limit::MaxRunsPerPerson);
        let other = started(a.request(run(r1, Person::Conn(2))));
        let (bob, pos, why) = queued(a.request(run(r2, Person::Conn(3))));
        assert_eq!((pos, why), (2, Limit::MaxRuns));
        // A slot frees that Ada may not use (her first run still goes): Bob starts past her.
        let events = a.finish(other);
        assert_eq!(
            events,
            vec![
                Event::Start { ticket: bob, room: r2 },
                Event::Moved {
                    ticket: ada_second,
                    room: r1,
                    position: 1,
                    waiting_for: Limit::MaxRuns
                },
            ],
            "Ada now waits on the server's cap, as the front of the queue"
        );
        let _ = ada_first;
    }

    #[test]
    fn a_full_queue_refuses_with_the_limit_name() {
        let mut a = Admission::new(limits(1, 8, 8, 2));
        started(a.request(run(RoomId::random(), Person::Conn(1))));
        queued(a.request(run(RoomId::random(), Person::Conn(2))));
        queued(a.request(run(RoomId::random(), Person::Conn(3))));
        let r = refused(a.request(run(RoomId::random(), Person::Conn(4))));
        assert_eq!(r.limit(), Limit::RunQueue);
        assert!(r.to_string().contains("run_queue = 2"), "{r}");
        assert_eq!(a.waiting(), 2);
    }

    #[test]
    fn withdrawing_a_waiting_request_moves_those_behind_it() {
        let mut a = Admission::new(limits(1, 8, 8, 8));
        let r = RoomId::random();
        started(a.request(run(r, Person::Conn(1))));
        let (second, _, _) = queued(a.request(run(r, Person::Conn(2))));
        let (third, _, _) = queued(a.request(run(r, Person::Conn(3))));
        assert!(a.is_waiting(second));
        assert_eq!(
            a.finish(second),
            vec![Event::Moved {
                ticket: third,
                room: r,
                position: 1,
                waiting_for: Limit::MaxRuns
            }]
        );
        assert!(!a.is_waiting(second));
        assert_eq!(a.running(Kind::Run), 1, "withdrawing frees no running slot");
    }

    #[test]
    fn finishing_an_unknown_or_finished_ticket_changes_nothing() {
        let mut a = Admission::new(limits(1, 8, 8, 8));
        let t = started(a.request(run(RoomId::random(), Person::Conn(1))));
        queued(a.request(run(RoomId::random(), Person::Conn(2))));
        assert_eq!(a.finish(t).len(), 1);
        assert!(a.finish(t).is_empty(), "a second finish is not a second free slot");
        assert!(a.finish(Ticket(9_999)).is_empty());
        assert_eq!(a.running(Kind::Run), 1);
    }

    #[test]
    fn debug_sessions_have_their_own_server_cap() {
        let mut a = Admission::new(limits(1, 1, 1, 8));
        let room = RoomId::random();
        started(a.request(run(room, Person::Conn(1))));
        let debug = |room| Request {
            kind: Kind::Debug,
            room,
            person: Person::Conn(1),
        };
        let first = started(a.request(debug(room)));
        let (second, pos, why) = queued(a.request(debug(RoomId::random())));
        assert_eq!((pos, why), (1, Limit::MaxDebugSessions));
        assert!(matches!(a.finish(first).as_slice(), [Event::Start { ticket, .. }] if *ticket == second));
    }

    #[test]
    fn a_zero_cap_refuses_instead_of_queueing_forever() {
        let mut a = Admission::new(Limits {
            runs: 0,
            debug_sessions: 0,
            ..Limits::default()
        });
        let r = refused(a.request(run(RoomId::random(), Person::Conn(1))));
        assert_eq!(r.limit(), Limit::MaxRuns);
        assert!(r.to_string().contains("runs are turned off"), "{r}");
        let d = refused(a.request(Request {
            kind: Kind::Debug,
            room: RoomId::random(),
            person: Person::Conn(1),
        }));
        assert!(d.to_string().contains("max_debug_sessions = 0"), "{d}");
        assert_eq!(a.waiting(), 0);
    }

    #[test]
    fn a_gone_room_leaves_the_queue() {
        let mut a = Admission::new(limits(1, 8, 8, 8));
        let (gone, stays) = (RoomId::random(), RoomId::random());
        started(a.request(run(stays, Person::Conn(1))));
        queued(a.request(run(gone, Person::Conn(2))));
        let (t, _, _) = queued(a.request(run(stays, Person::Conn(3))));
        assert_eq!(
            a.forget_room(gone),
            vec![Event::Moved {
                ticket: t,
                room: stays,
                position: 1,
                waiting_for: Limit::MaxRuns
            }]
        );
        assert_eq!(a.waiting(), 1);
    }

    #[test]
    fn positions_only_go_down_while_waiting() {
        // Seeded interleaving of requests and finishes: every reported position of a
        // ticket is at most its previous one.
        let mut a = Admission::new(limits(3, 2, 1, 32));
        let rooms: Vec<RoomId> = (0..4).map(|_| RoomId::random()).collect();
        let mut last: HashMap<Ticket, u32> = HashMap::new();
        let mut running: Vec<Ticket> = Vec::new();
        let mut seed = 0x5eed_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..2_000 {
            if next() % 3 != 0 || running.is_empty() {
                let req = run(rooms[(next() % 4) as usize], Person::Conn(next() % 6));
                match a.request(req) {
                    Decision::Start(t) => running.push(t),
                    Decision::Queued { ticket, position, .. } => {
                        last.insert(ticket, position);
                    }
                    Decision::Refused(_) => {}
                }
            } else {
                let t = running.swap_remove((next() as usize) % running.len());
                for e in a.finish(t) {
                    match e {
                        Event::Start { ticket, .. } => {
                            last.remove(&ticket);
                            running.push(ticket);
                        }
                        Event::Moved { ticket, position, .. } => {
                            let before = last.insert(ticket, position).expect("moved while waiting");
                            assert!(position <= before, "{ticket:?} went from {before} to {position}");
                        }
                    }
                }
            }
            assert!(a.running(Kind::Run) <= 3);
            assert!(a.waiting() <= 32);
        }
    }
}
