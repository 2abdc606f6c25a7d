//! Seats and host control as the editor sees them (decision 011): our own seat and role, the
//! lobby, join requests for the host, and who joined, left, changed role or follows us.
//! Sans-IO: the room's messages come in already converted at the edge ([`Person`],
//! [`SeatEvent`]), notifications for the editor come out as [`Effect`]s, and every sentence a
//! person reads is made here once, so every editor says the same.
//!
//! What a role change does to documents is not decided here: a reader's local edits are
//! refused by `docs` (it reads [`super::RoomRead::writable`]); this module says what happened.

use std::collections::{BTreeMap, BTreeSet};

use mesh_protocol::messages::Role;

use super::{notify, Effect};
use crate::lsp_ext::*;

/// A person in the room, as this module needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Person {
    /// Their connection.
    pub(super) conn_id: u64,
    /// Their seat, when the server gives seats.
    pub(super) seat: Option<String>,
    /// Display name, as the server assigned it.
    pub(super) name: String,
    /// Their role.
    pub(super) role: Role,
    /// A second connection of someone already listed (their debug adapter).
    pub(super) companion: bool,
    /// The Yjs client id of their document (awareness states are keyed by it).
    pub(super) doc_client_id: Option<u64>,
    /// Their kind of client: `yjs` until a mesh client said hello (and for stock clients).
    pub(super) client: String,
}

/// What the room said about seats, converted from the server's messages at the edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SeatEvent {
    /// We wait in the lobby for the host, with the server's words.
    Lobby { message: String },
    /// The host admitted us or we reconnected: we have `seat` (its id) with `role`.
    Welcome {
        seat: Option<String>,
        role: Role,
        approval: bool,
        name: Option<String>,
    },
    /// Someone joined (after the welcome).
    Joined(Person),
    /// Someone left.
    Left(Person),
    /// The host changed `seat`'s role; `by` names the host when known.
    RoleChanged {
        seat: String,
        role: Role,
        by: Option<String>,
    },
    /// We were removed from the room.
    Kicked { by: Option<String> },
    /// The host removed someone else's seat.
    SeatKicked { seat: String, by: Option<String> },
    /// The host refused to let us in (or nobody answered in time).
    Refused { message: String },
    /// Someone waits for the host (only hosts hear it).
    JoinRequest {
        seat: String,
        name: String,
        client: String,
        verified: bool,
    },
    /// A join request was answered (by any host, or it expired).
    JoinRequestClosed {
        seat: String,
        admitted: bool,
        by: Option<String>,
    },
    /// The room's approval setting changed.
    ApprovalChanged { on: bool, by: Option<String> },
}

/// Why the session ended for good, for the editor and the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Ended {
    /// `kicked` or `refused`.
    pub(super) reason: &'static str,
    /// What to tell the person.
    pub(super) message: String,
}

/// What this module keeps between messages.
#[derive(Debug, Default)]
pub(super) struct Seats {
    /// Our seat's id, once welcomed.
    pub(super) seat: Option<String>,
    /// The lobby's message while we wait for the host.
    pub(super) lobby: Option<String>,
    /// Whether the room asks the host to admit joiners.
    pub(super) approval: bool,
    /// Join requests waiting for a host's answer, by seat.
    pub(super) requests: BTreeMap<String, JoinRequestParams>,
    /// Connection ids of the people following us.
    followers: BTreeSet<u64>,
    /// Connections whose arrival was told (or who were there when we came): the server
    /// announces a connection when it opens and again once it said who it is, and only the
    /// second is a person joining; a leave is told only for someone whose arrival was.
    known: BTreeSet<u64>,
    /// Set when the room ended our session (kicked, refused): the connection's close that
    /// follows is reported with this, not as a lost connection.
    pub(super) ended: Option<Ended>,
}

/// `name` with the one who did it: `"Ada"`, or `"Ada (by Bob)"`.
fn by_whom(by: &Option<String>) -> String {
    by.as_deref().map(|b| format!(" by {b}")).unwrap_or_default()
}

fn role_word(role: Role) -> &'static str {
    role_name(role)
}

/// A `mesh/presence` notification.
fn presence(kind: &str, person: &Person, you: bool, message: String) -> Effect {
    notify::<PresenceNotification>(PresenceParams {
        kind: kind.into(),
        conn_id: person.conn_id,
        seat: person.seat.clone(),
        name: person.name.clone(),
        role: role_word(person.role).into(),
        you,
        message,
    })
}

impl Seats {
    /// A room message about seats; `me` is our connection id, `people` the participants as
    /// they are after the message (for `Left`, before).
    pub(super) fn on_event(&mut self, ev: SeatEvent, me: Option<u64>, people: &BTreeMap<u64, Person>) -> Vec<Effect> {
        match ev {
            SeatEvent::Lobby { message } => {
                self.lobby = Some(message.clone());
                vec![notify::<LobbyNotification>(LobbyParams { message })]
            }
            SeatEvent::Welcome {
                seat,
                role: _,
                approval,
                name: _,
            } => {
                self.known = people.keys().copied().collect();
                let admitted = self.lobby.take().is_some();
                self.seat = seat;
                self.approval = approval;
                if admitted {
                    vec![super::tell("info", "the host let you in")]
                } else {
                    Vec::new()
                }
            }
            // A connection that has not said who it is yet (or never will: a stock Yjs client)
            // is not announced; its hello is.
            SeatEvent::Joined(p)
                if !p.companion && Some(p.conn_id) != me && p.client != "yjs" && self.known.insert(p.conn_id) =>
            {
                let message = format!("{} joined as {}", p.name, role_word(p.role));
                vec![presence("joined", &p, false, message)]
            }
            SeatEvent::Left(p) if !p.companion && Some(p.conn_id) != me && self.known.remove(&p.conn_id) => {
                let mut fx = vec![presence("left", &p, false, format!("{} left", p.name))];
                if self.followers.remove(&p.conn_id) {
                    fx.push(presence(
                        "unfollowed",
                        &p,
                        false,
                        format!("{} stopped following you", p.name),
                    ));
                }
                fx
            }
            SeatEvent::Joined(_) | SeatEvent::Left(_) => Vec::new(),
            SeatEvent::RoleChanged { seat, role, by } => {
                let mine = self.seat.as_deref() == Some(seat.as_str());
                let who = people
                    .values()
                    .find(|p| !p.companion && p.seat.as_deref() == Some(seat.as_str()))
                    .cloned()
                    .unwrap_or(Person {
                        conn_id: 0,
                        seat: Some(seat.clone()),
                        name: "someone".into(),
                        role,
                        companion: false,
                        doc_client_id: None,
                        client: String::new(),
                    });
                let who = Person { role, ..who };
                let by = by_whom(&by);
                let message = if mine {
                    match role {
                        Role::Reader => format!(
                            "you are now a reader{by}: your edits are no longer shared, and your buffers follow the room"
                        ),
                        Role::Writer => format!("you are now a writer{by}: editing works again"),
                        Role::Host => format!("you are now the host{by}: you admit, change roles, kick and manage links"),
                    }
                } else {
                    format!("{} is now {}{by}", who.name, article(role))
                };
                vec![presence("roleChanged", &who, mine, message)]
            }
            SeatEvent::Kicked { by } => {
                let message = format!(
                    "you were removed from the room{}; your seat is gone. To come back, ask the host for a new link",
                    by_whom(&by)
                );
                self.end("kicked", message)
            }
            SeatEvent::SeatKicked { seat, by } => people
                .values()
                .find(|p| !p.companion && p.seat.as_deref() == Some(seat.as_str()))
                .map(|p| {
                    let message = format!("{} was removed from the room{}", p.name, by_whom(&by));
                    vec![presence("kicked", p, false, message)]
                })
                .unwrap_or_default(),
            SeatEvent::Refused { message } => {
                self.lobby = None;
                self.end("refused", message)
            }
            SeatEvent::JoinRequest {
                seat,
                name,
                client,
                verified,
            } => {
                let params = JoinRequestParams {
                    seat: seat.clone(),
                    name,
                    client,
                    verified,
                };
                self.requests.insert(seat, params.clone());
                vec![notify::<JoinRequestNotification>(params)]
            }
            SeatEvent::JoinRequestClosed { seat, admitted, by } => match self.requests.remove(&seat) {
                Some(req) => vec![notify::<JoinRequestClosedNotification>(JoinRequestClosedParams {
                    seat,
                    name: req.name,
                    admitted,
                    by,
                })],
                None => Vec::new(),
            },
            SeatEvent::ApprovalChanged { on, by } => {
                self.approval = on;
                let what = if on {
                    "joiners now wait for the host's approval"
                } else {
                    "joiners no longer wait for approval"
                };
                vec![super::tell("info", format!("{what}{}", by_whom(&by)))]
            }
        }
    }

    fn end(&mut self, reason: &'static str, message: String) -> Vec<Effect> {
        self.ended = Some(Ended {
            reason,
            message: message.clone(),
        });
        vec![notify::<EndedNotification>(EndedParams {
            reason: reason.into(),
            message,
        })]
    }

    /// Who follows us now, from the awareness states (`following` holds the followed
    /// connection id): a notification for each who started or stopped.
    pub(super) fn followers(
        &mut self,
        me: Option<u64>,
        states: &[(u64, mesh_protocol::awareness::PresenceState)],
        people: &BTreeMap<u64, Person>,
    ) -> Vec<Effect> {
        let Some(me) = me else { return Vec::new() };
        let now: BTreeSet<u64> = states
            .iter()
            .filter(|(_, s)| s.following == Some(me))
            .filter_map(|(client, _)| {
                people
                    .values()
                    .find(|p| p.doc_client_id == Some(*client) && !p.companion)
                    .map(|p| p.conn_id)
            })
            .collect();
        let mut fx = Vec::new();
        for started in now.difference(&self.followers) {
            if let Some(p) = people.get(started) {
                fx.push(presence("followed", p, false, format!("{} is following you", p.name)));
            }
        }
        for stopped in self.followers.difference(&now) {
            if let Some(p) = people.get(stopped) {
                fx.push(presence(
                    "unfollowed",
                    p,
                    false,
                    format!("{} stopped following you", p.name),
                ));
            }
        }
        self.followers = now;
        fx
    }

    /// The connection is gone (offline or left): requests and followers are told again on
    /// the next welcome.
    pub(super) fn disconnected(&mut self) {
        self.requests.clear();
        self.followers.clear();
        self.known.clear();
    }
}

/// `a reader`, `a writer`, `the host`.
fn article(role: Role) -> &'static str {
    match role {
        Role::Reader => "a reader",
        Role::Writer => "a writer",
        Role::Host => "the host",
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{methods, notification};
    use super::*;
    use mesh_protocol::awareness::PresenceState;

    fn person(conn_id: u64, seat: &str, name: &str, role: Role) -> Person {
        Person {
            conn_id,
            seat: Some(seat.into()),
            name: name.into(),
            role,
            companion: false,
            doc_client_id: Some(conn_id * 100),
            client: "neovim".into(),
        }
    }

    fn people(list: &[Person]) -> BTreeMap<u64, Person> {
        list.iter().map(|p| (p.conn_id, p.clone())).collect()
    }

    fn welcomed(seat: &str) -> Seats {
        let mut seats = Seats::default();
        seats.on_event(
            SeatEvent::Welcome {
                seat: Some(seat.into()),
                role: Role::Writer,
                approval: false,
                name: None,
            },
            Some(1),
            &BTreeMap::new(),
        );
        seats
    }

    #[test]
    fn a_role_change_of_our_seat_says_what_it_does_to_editing() {
        let mut seats = welcomed("s1");
        let room = people(&[person(1, "s1", "Ada", Role::Writer), person(2, "s2", "Bob", Role::Host)]);
        let fx = seats.on_event(
            SeatEvent::RoleChanged {
                seat: "s1".into(),
                role: Role::Reader,
                by: Some("Bob".into()),
            },
            Some(1),
            &room,
        );
        let n = notification(&fx, "mesh/presence");
        assert_eq!(
            (n["kind"].as_str(), n["you"].as_bool(), n["role"].as_str()),
            (Some("roleChanged"), Some(true), Some("reader"))
        );
        let msg = n["message"].as_str().unwrap();
        assert!(
            msg.contains("you are now a reader by Bob") && msg.contains("no longer shared"),
            "{msg}"
        );
        let fx = seats.on_event(
            SeatEvent::RoleChanged {
                seat: "s1".into(),
                role: Role::Writer,
                by: None,
            },
            Some(1),
            &room,
        );
        assert!(notification(&fx, "mesh/presence")["message"]
            .as_str()
            .unwrap()
            .contains("editing works again"));
    }

    #[test]
    fn another_seat_s_role_change_names_them() {
        let mut seats = welcomed("s1");
        let room = people(&[person(1, "s1", "Ada", Role::Host), person(2, "s2", "Bob", Role::Writer)]);
        let fx = seats.on_event(
            SeatEvent::RoleChanged {
                seat: "s2".into(),
                role: Role::Reader,
                by: Some("Ada".into()),
            },
            Some(1),
            &room,
        );
        let n = notification(&fx, "mesh/presence");
        assert_eq!(n["message"], "Bob is now a reader by Ada");
        assert_eq!((n["you"].as_bool(), n["connId"].as_u64()), (Some(false), Some(2)));
    }

    #[test]
    fn joins_and_leaves_are_told_but_not_our_own_nor_companions() {
        let mut seats = welcomed("s1");
        let bob = person(2, "s2", "Bob", Role::Writer);
        let fx = seats.on_event(
            SeatEvent::Joined(bob.clone()),
            Some(1),
            &people(std::slice::from_ref(&bob)),
        );
        assert_eq!(notification(&fx, "mesh/presence")["message"], "Bob joined as writer");
        let me = person(1, "s1", "Ada", Role::Writer);
        assert!(seats
            .on_event(SeatEvent::Joined(me), Some(1), &BTreeMap::new())
            .is_empty());
        let adapter = Person {
            companion: true,
            conn_id: 3,
            ..bob.clone()
        };
        assert!(seats
            .on_event(SeatEvent::Joined(adapter), Some(1), &BTreeMap::new())
            .is_empty());
        let fx = seats.on_event(SeatEvent::Left(bob), Some(1), &BTreeMap::new());
        assert_eq!(notification(&fx, "mesh/presence")["message"], "Bob left");
    }

    #[test]
    fn a_connection_is_announced_once_when_it_says_who_it_is_and_its_leave_only_then() {
        let mut seats = welcomed("s1");
        let cy = person(4, "s4", "Cy", Role::Writer);
        let before_hello = Person {
            name: "anonymous".into(),
            client: "yjs".into(),
            ..cy.clone()
        };
        assert!(seats
            .on_event(SeatEvent::Joined(before_hello.clone()), Some(1), &BTreeMap::new())
            .is_empty());
        let fx = seats.on_event(SeatEvent::Joined(cy.clone()), Some(1), &BTreeMap::new());
        assert_eq!(notification(&fx, "mesh/presence")["message"], "Cy joined as writer");
        assert!(
            seats
                .on_event(SeatEvent::Joined(cy.clone()), Some(1), &BTreeMap::new())
                .is_empty(),
            "a rename is no join"
        );
        assert_eq!(
            methods(&seats.on_event(SeatEvent::Left(cy), Some(1), &BTreeMap::new())),
            ["mesh/presence"]
        );
        // A stock Yjs client that never said hello comes and goes unannounced.
        let bot = Person {
            conn_id: 5,
            ..before_hello
        };
        assert!(seats
            .on_event(SeatEvent::Joined(bot.clone()), Some(1), &BTreeMap::new())
            .is_empty());
        assert!(seats
            .on_event(SeatEvent::Left(bot), Some(1), &BTreeMap::new())
            .is_empty());
    }

    #[test]
    fn the_lobby_waits_until_the_welcome_and_a_refusal_ends_the_session() {
        let mut seats = Seats::default();
        let fx = seats.on_event(
            SeatEvent::Lobby {
                message: "waiting for the host to let you in".into(),
            },
            None,
            &BTreeMap::new(),
        );
        assert_eq!(methods(&fx), ["mesh/lobby"]);
        assert!(seats.lobby.is_some());
        let fx = seats.on_event(
            SeatEvent::Welcome {
                seat: Some("s9".into()),
                role: Role::Writer,
                approval: true,
                name: None,
            },
            Some(9),
            &BTreeMap::new(),
        );
        assert_eq!(methods(&fx), ["mesh/notify"]);
        assert_eq!(
            (seats.lobby.as_deref(), seats.seat.as_deref(), seats.approval),
            (None, Some("s9"), true)
        );

        let mut waiting = Seats::default();
        waiting.on_event(SeatEvent::Lobby { message: "wait".into() }, None, &BTreeMap::new());
        let fx = waiting.on_event(
            SeatEvent::Refused {
                message: "the host refused to let you in".into(),
            },
            None,
            &BTreeMap::new(),
        );
        assert_eq!(notification(&fx, "mesh/ended")["reason"], "refused");
        assert_eq!(waiting.ended.as_ref().map(|e| e.reason), Some("refused"));
        assert!(waiting.lobby.is_none());
    }

    #[test]
    fn a_kick_ends_the_session_and_says_how_to_come_back() {
        let mut seats = welcomed("s1");
        let fx = seats.on_event(SeatEvent::Kicked { by: Some("Ada".into()) }, Some(1), &BTreeMap::new());
        let n = notification(&fx, "mesh/ended");
        assert_eq!(n["reason"], "kicked");
        let msg = n["message"].as_str().unwrap();
        assert!(
            msg.contains("removed from the room by Ada") && msg.contains("ask the host for a new link"),
            "{msg}"
        );
    }

    #[test]
    fn join_requests_are_kept_until_answered_and_answers_name_the_joiner() {
        let mut seats = welcomed("s1");
        let fx = seats.on_event(
            SeatEvent::JoinRequest {
                seat: "s5".into(),
                name: "Cy".into(),
                client: "neovim".into(),
                verified: true,
            },
            Some(1),
            &BTreeMap::new(),
        );
        assert_eq!(notification(&fx, "mesh/joinRequest")["name"], "Cy");
        assert_eq!(notification(&fx, "mesh/joinRequest")["verified"], true);
        assert_eq!(seats.requests.len(), 1);
        let fx = seats.on_event(
            SeatEvent::JoinRequestClosed {
                seat: "s5".into(),
                admitted: true,
                by: Some("Ada".into()),
            },
            Some(1),
            &BTreeMap::new(),
        );
        let n = notification(&fx, "mesh/joinRequestClosed");
        assert_eq!((n["name"].as_str(), n["admitted"].as_bool()), (Some("Cy"), Some(true)));
        assert!(seats.requests.is_empty());
        let again = SeatEvent::JoinRequestClosed {
            seat: "s5".into(),
            admitted: true,
            by: None,
        };
        assert!(seats.on_event(again, Some(1), &BTreeMap::new()).is_empty(), "told once");
    }

    #[test]
    fn followers_are_told_when_they_start_and_stop() {
        let mut seats = welcomed("s1");
        let bob = person(2, "s2", "Bob", Role::Writer);
        let room = people(&[person(1, "s1", "Ada", Role::Host), bob.clone()]);
        let following = |who: Option<u64>| PresenceState {
            following: who,
            ..Default::default()
        };
        let fx = seats.followers(Some(1), &[(200, following(Some(1)))], &room);
        assert_eq!(notification(&fx, "mesh/presence")["message"], "Bob is following you");
        assert!(
            seats.followers(Some(1), &[(200, following(Some(1)))], &room).is_empty(),
            "once"
        );
        let fx = seats.followers(Some(1), &[(200, following(None))], &room);
        assert_eq!(
            notification(&fx, "mesh/presence")["message"],
            "Bob stopped following you"
        );
    }
}
