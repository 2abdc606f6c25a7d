//! Host control inside the sans-IO room (decision 011): the lobby, live roles, kicks, links,
//! approval and the audit trail, for a host's connection and for REST alike. The policy of
//! who may do what is [`Access`](super::Access)'s; this file applies its answers to the
//! room's connections: roles change in place, so the next message of a connection is checked
//! against its role now, and everything happens in the room's order, within one turn.

use std::sync::Arc;

use mesh_protocol::codec::{encode_mesh, Frame};
use mesh_protocol::messages::{AuditEntry, AuditKind, LinkInfo, Role};
use mesh_protocol::rest::{RoomParticipants, WaitingJoiner};
use mesh_protocol::{ClientMessage, ErrorCode, Request, ServerMessage, PROTOCOL_VERSION};
use yrs::sync::Message;

use super::{clean_name, ConnId, Effects, RoomCore, Target};
use crate::accounts::identity::{Invitee, Verified};
use crate::auth::Grant;
use crate::room::access::{actor_name, Access, Caller, Refusal, Tokens};
use crate::store::{AccessChange, AccessState};

/// Frames a waiting connection may send before it is let in; they are kept and handled once
/// it is. A client's hello, sync step 1 and a few edits fit; a client that keeps typing into a
/// room it cannot enter yet is turned away instead of growing the server's memory. (Awareness
/// updates replace each other and do not count.)
pub const LOBBY_FRAMES: usize = 64;

/// What a waiting connection is told.
const LOBBY_MESSAGE: &str = "this room lets people in with the host's approval: waiting for the host to let you in";

/// A connection in the lobby.
pub(super) struct Waiting {
    /// The seat it will take.
    seat: String,
    /// The link it came through.
    link: String,
    /// The signed-in user waiting, if any.
    user: Option<crate::accounts::identity::Verified>,
    /// When it started waiting.
    since: u64,
    name: String,
    client: String,
    /// Said hello: gets mesh messages.
    mesh: bool,
    /// Its hello, handled when it is let in (the answer is `welcome`).
    hello: Option<Frame<Request>>,
    /// Its latest awareness update.
    awareness: Option<Frame<Request>>,
    /// Everything else it sent, in order.
    frames: Vec<Frame<Request>>,
    /// The host was told.
    announced: bool,
}

/// A host action, from a connection's message or a REST call.
#[derive(Debug, Clone, PartialEq)]
pub enum HostOp {
    /// Give a seat a role.
    SetRole {
        /// The seat.
        seat: String,
        /// The role.
        role: Role,
    },
    /// Remove a seat.
    Kick {
        /// The seat.
        seat: String,
    },
    /// Let a waiting joiner in.
    Admit {
        /// The waiting seat.
        seat: String,
    },
    /// Turn a waiting joiner away.
    Refuse {
        /// The waiting seat.
        seat: String,
    },
    /// Turn approval on or off.
    SetApproval {
        /// On or off.
        on: bool,
    },
    /// Create a link.
    CreateLink {
        /// The role it grants.
        role: Role,
        /// Its lifetime in seconds.
        expires_in_secs: Option<u64>,
        /// How many seats it may create.
        max_uses: Option<u32>,
        /// The one signed-in user it is for (email or subject), if any.
        for_user: Option<String>,
    },
    /// The room's links.
    ListLinks,
    /// Revoke a link.
    RevokeLink {
        /// The link.
        id: String,
    },
    /// The audit trail.
    Audit {
        /// At most this many entries.
        limit: Option<u32>,
    },
    /// Who is in the room and who waits (REST).
    Participants,
}

impl HostOp {
    /// The host action a client message asks for, if it is one.
    pub fn from_message(msg: ClientMessage) -> Option<HostOp> {
        Some(match msg {
            ClientMessage::SetRole { seat, role } => HostOp::SetRole { seat, role },
            ClientMessage::Kick { seat } => HostOp::Kick { seat },
            ClientMessage::Admit { seat } => HostOp::Admit { seat },
            ClientMessage::Refuse { seat } => HostOp::Refuse { seat },
            ClientMessage::SetApproval { on } => HostOp::SetApproval { on },
            ClientMessage::CreateLink {
                role,
                expires_in_secs,
                max_uses,
                for_user,
            } => HostOp::CreateLink {
                role,
                expires_in_secs,
                max_uses,
                for_user,
            },
            ClientMessage::ListLinks => HostOp::ListLinks,
            ClientMessage::RevokeLink { link } => HostOp::RevokeLink { id: link },
            ClientMessage::Audit { limit } => HostOp::Audit { limit },
            _ => return None,
        })
    }
}

/// What a host action answers.
#[derive(Debug, Clone, PartialEq)]
pub enum HostReply {
    /// Done; the room heard of it.
    Done,
    /// The room's links.
    Links(Vec<LinkInfo>),
    /// The audit trail, newest first.
    Audit(Vec<AuditEntry>),
    /// Who is in the room and who waits.
    Participants(RoomParticipants),
}

impl RoomCore {
    /// Takes the room's access records (from the store) and its token maker.
    pub fn set_access(&mut self, state: AccessState, tokens: Arc<dyn Tokens>) {
        self.access = Access::from_state(state, self.limits.max_links);
        self.tokens = tokens;
    }

    /// The room's access records changed since the last call, for the store.
    pub fn take_access_changes(&mut self) -> Vec<AccessChange> {
        self.access.take_changes()
    }

    /// Whether seats, links, approval or the audit trail changed since the last
    /// [`Self::take_access_changes`].
    pub fn has_access_changes(&self) -> bool {
        self.access.has_changes()
    }

    /// Joins `id` through a fresh link of `role` (a host link opens a new host seat each
    /// time): for tests and fuzzing of the room, which have no links of their own.
    pub fn join_as(&mut self, id: ConnId, role: Role, now_ms: u64) -> Effects {
        let link = self
            .access
            .create_link_record(role, u64::MAX, None, now_ms, "test".into())
            .expect("a room for tests has room for links");
        self.join(id, &Grant::Link(link.id), None, now_ms)
            .expect("a fresh link gets in")
    }

    /// Whether `grant`, shown by `user`, would get in now (the check before a socket is
    /// upgraded).
    pub fn check(&self, grant: &Grant, user: Option<&Verified>, now_ms: u64) -> Result<(), Refusal> {
        self.access.check(grant, user, now_ms)
    }

    /// Who a REST call's token (and signed-in user) is, with its role now.
    pub fn rest_caller(&self, grant: &Grant, user: Option<&Verified>, now_ms: u64) -> Result<Caller, Refusal> {
        self.access.rest_caller(grant, user, now_ms)
    }

    /// Records that `conn` (0: a REST call) started a run or debug session of `path`.
    pub fn record_run(&mut self, conn: ConnId, path: &str, debug: bool, now_ms: u64) {
        let actor = self.conns.get(&conn).map_or_else(
            || "rest".to_owned(),
            |c| actor_name(&c.participant.name, &c.participant.seat),
        );
        let detail = if debug {
            format!("debug {path}")
        } else {
            path.to_owned()
        };
        self.access.record(now_ms, AuditKind::RunStarted, &actor, "", &detail);
    }

    fn caller_of(&self, conn: ConnId) -> Option<Caller> {
        self.conns.get(&conn).map(|c| Caller {
            seat: Some(c.participant.seat.clone()),
            role: c.participant.role,
            name: c.participant.name.clone(),
        })
    }

    fn conns_of_seat(&self, seat: &str) -> Vec<ConnId> {
        self.conns
            .iter()
            .filter(|(_, c)| c.participant.seat == seat)
            .map(|(id, _)| *id)
            .collect()
    }

    /// A connection goes to the lobby.
    pub(super) fn wait(
        &mut self,
        id: ConnId,
        seat: String,
        link: String,
        user: Option<Verified>,
        now_ms: u64,
    ) -> Result<Effects, Refusal> {
        let max = self.limits.max_lobby;
        if self.waiting.len() >= max {
            return Err(Refusal {
                code: ErrorCode::RateLimited,
                message: format!(
                    "this room's lobby is full: {max} people wait for the host's approval (max_lobby); try again later"
                ),
            });
        }
        self.waiting.insert(
            id,
            Waiting {
                seat,
                link,
                since: now_ms,
                name: user.as_ref().map_or_else(|| "anonymous".into(), |u| u.name.clone()),
                user,
                client: "yjs".into(),
                mesh: false,
                hello: None,
                awareness: None,
                frames: Vec::new(),
                announced: false,
            },
        );
        Ok(Effects::default())
    }

    /// A message of a waiting connection: kept for when it is let in. Its hello (or, from a
    /// stock client, its first message) tells the host someone waits.
    pub(super) fn handle_waiting(&mut self, id: ConnId, frame: Frame<Request>, fx: &mut Effects) {
        let hello = match &frame {
            Frame::Mesh(Request {
                message: ClientMessage::Hello {
                    version, name, client, ..
                },
                ..
            }) => Some((*version, name.clone(), client.clone())),
            _ => None,
        };
        let w = self.waiting.get_mut(&id).expect("checked by handle");
        match frame {
            frame if hello.is_some() && w.hello.is_none() => {
                let (version, name, client) = hello.expect("just checked");
                w.mesh = true;
                if version != PROTOCOL_VERSION {
                    let message = format!("this server speaks mesh protocol {PROTOCOL_VERSION}, the client speaks {version}: update the client or the server");
                    let error = ServerMessage::Error {
                        code: ErrorCode::UnsupportedVersion,
                        message: message.clone(),
                        responding_to: None,
                    };
                    fx.to(Target::One(id), encode_mesh(&error));
                    fx.close.push((id, ErrorCode::UnsupportedVersion, message));
                    return;
                }
                if w.user.is_none() {
                    w.name = clean_name(&name);
                }
                w.client = client.map(|c| clean_name(&c)).unwrap_or_else(|| "mesh".into());
                // Kept exactly as sent (colour, client id, companion) for when it is let in.
                w.hello = Some(frame);
                let lobby = ServerMessage::Lobby {
                    message: LOBBY_MESSAGE.into(),
                };
                fx.to(Target::One(id), encode_mesh(&lobby));
            }
            Frame::Yjs(Message::Awareness(_)) => w.awareness = Some(frame),
            frame => {
                if w.frames.len() >= LOBBY_FRAMES {
                    let message = format!(
                        "sent over {LOBBY_FRAMES} messages while waiting for the host's approval; join again and wait"
                    );
                    self.turn_away(id, ErrorCode::RateLimited, message, "left", None, None, fx);
                    return;
                }
                w.frames.push(frame);
            }
        }
        self.announce_waiting(id, fx);
    }

    fn announce_waiting(&mut self, id: ConnId, fx: &mut Effects) {
        let Some(w) = self.waiting.get_mut(&id) else { return };
        if w.announced {
            return;
        }
        w.announced = true;
        let request = ServerMessage::JoinRequest {
            seat: w.seat.clone(),
            name: w.name.clone(),
            client: w.client.clone(),
            verified: w.user.is_some(),
        };
        fx.to(Target::Hosts, encode_mesh(&request));
    }

    /// The join requests waiting, for a host connection that just arrived.
    pub(super) fn pending_requests_to(&self, conn: ConnId, fx: &mut Effects) {
        for w in self.waiting.values().filter(|w| w.announced) {
            let request = ServerMessage::JoinRequest {
                seat: w.seat.clone(),
                name: w.name.clone(),
                client: w.client.clone(),
                verified: w.user.is_some(),
            };
            fx.to(Target::One(conn), encode_mesh(&request));
        }
    }

    /// A waiting connection went away.
    pub(super) fn leave_lobby(&mut self, id: ConnId, fx: &mut Effects) {
        if let Some(w) = self.waiting.remove(&id) {
            if w.announced {
                fx.announce_to_hosts(None, None, |_| ServerMessage::JoinRequestClosed {
                    seat: w.seat.clone(),
                    admitted: false,
                    by: "left".into(),
                    responding_to: None,
                });
            }
        }
    }

    /// Refuses a waiting connection: it is told why (mesh clients), closed, and the hosts
    /// hear the request is closed.
    #[allow(clippy::too_many_arguments)]
    fn turn_away(
        &mut self,
        id: ConnId,
        code: ErrorCode,
        message: String,
        by: &str,
        asker: Option<ConnId>,
        request: Option<u64>,
        fx: &mut Effects,
    ) {
        let Some(w) = self.waiting.remove(&id) else { return };
        if w.mesh {
            fx.to(
                Target::One(id),
                encode_mesh(&ServerMessage::Refused {
                    message: message.clone(),
                }),
            );
        }
        fx.close.push((id, code, message));
        if w.announced || asker.is_some() {
            fx.announce_to_hosts(asker, request, |responding_to| ServerMessage::JoinRequestClosed {
                seat: w.seat.clone(),
                admitted: false,
                by: by.to_owned(),
                responding_to,
            });
        }
    }

    /// The time of the next lobby timeout, if anyone waits.
    pub fn next_deadline(&self) -> Option<u64> {
        self.waiting
            .values()
            .map(|w| w.since + self.limits.lobby_timeout_ms)
            .min()
    }

    /// Refuses whoever waited past the lobby timeout.
    pub fn tick(&mut self, now_ms: u64) -> Effects {
        let mut fx = Effects::default();
        let timeout = self.limits.lobby_timeout_ms;
        let late: Vec<ConnId> = self
            .waiting
            .iter()
            .filter(|(_, w)| w.since + timeout <= now_ms)
            .map(|(id, _)| *id)
            .collect();
        for id in late {
            let seat = self.waiting[&id].seat.clone();
            let message = format!(
                "nobody let you in within {} s (lobby_timeout_secs): ask the host, then join again",
                timeout / 1000
            );
            self.turn_away(id, ErrorCode::Forbidden, message, "timeout", None, None, &mut fx);
            self.access.record(now_ms, AuditKind::Refused, "timeout", &seat, "");
        }
        fx
    }

    /// A host message from a connection: carried out, answered, or refused with what to do.
    pub(super) fn host_message(&mut self, id: ConnId, op: HostOp, now_ms: u64, fx: &mut Effects) {
        let caller = self.caller_of(id).expect("checked by handle");
        let request = fx.request;
        match self.host_op(&caller, Some(id), request, op, now_ms, fx) {
            Ok(HostReply::Links(links)) => fx.to(
                Target::One(id),
                encode_mesh(&ServerMessage::Links {
                    links,
                    responding_to: request,
                }),
            ),
            Ok(HostReply::Audit(entries)) => fx.to(
                Target::One(id),
                encode_mesh(&ServerMessage::AuditLog {
                    entries,
                    responding_to: request,
                }),
            ),
            Ok(HostReply::Done | HostReply::Participants(_)) => {}
            Err(refusal) => {
                let conn = &self.conns[&id];
                fx.error(conn, id, refusal.code, refusal.message);
            }
        }
    }

    /// Carries out a host action for `caller` (`asker`: its connection, whose request id the
    /// announcements name).
    pub fn host_op(
        &mut self,
        caller: &Caller,
        asker: Option<ConnId>,
        request: Option<u64>,
        op: HostOp,
        now_ms: u64,
        fx: &mut Effects,
    ) -> Result<HostReply, Refusal> {
        let asker_conn = asker.unwrap_or(0);
        let by = caller.name.clone();
        match op {
            HostOp::SetRole { seat, role } => {
                let mut changed = self.access.set_role(caller, &seat, role)?;
                if !changed.iter().any(|(s, _)| *s == seat) {
                    // Already so: the asker still gets its answer.
                    changed.push((seat.clone(), role));
                }
                for (s, r) in changed {
                    let conns = self.conns_of_seat(&s);
                    for conn in &conns {
                        self.conns.get_mut(conn).expect("listed").participant.role = r;
                        self.people_version += 1;
                    }
                    let responding = if s == seat { request } else { None };
                    fx.announce(asker_conn, responding, |responding_to| ServerMessage::RoleChanged {
                        seat: s.clone(),
                        role: r,
                        by: by.clone(),
                        responding_to,
                    });
                    self.access
                        .record(now_ms, AuditKind::RoleChanged, &caller.actor(), &s, role_text(r));
                    if r == Role::Host {
                        for conn in conns.into_iter().filter(|c| self.conns[c].mesh) {
                            self.pending_requests_to(conn, fx);
                        }
                    }
                }
                Ok(HostReply::Done)
            }
            HostOp::Kick { seat } => {
                self.access.kick(caller, &seat)?;
                let message = format!("you were removed from this room by {by}");
                for conn in self.conns_of_seat(&seat) {
                    if self.conns[&conn].mesh {
                        fx.to(
                            Target::One(conn),
                            encode_mesh(&ServerMessage::Kicked { by: by.clone() }),
                        );
                    }
                    let left = self.leave(conn, now_ms);
                    fx.absorb(left);
                    fx.close.push((conn, ErrorCode::Forbidden, message.clone()));
                }
                fx.announce(asker_conn, request, |responding_to| ServerMessage::SeatKicked {
                    seat: seat.clone(),
                    by: by.clone(),
                    responding_to,
                });
                self.access
                    .record(now_ms, AuditKind::Kicked, &caller.actor(), &seat, "");
                Ok(HostReply::Done)
            }
            HostOp::Admit { seat } => {
                if caller.role != Role::Host {
                    return Err(Refusal::not_host("let people in"));
                }
                let id = self.waiting_conn(&seat)?;
                let link = self.waiting[&id].link.clone();
                let user = self.waiting[&id].user.as_ref().map(|u| u.id.clone());
                let conns = &self.conns;
                let live = |s: &str| conns.values().any(|c| c.participant.seat == s);
                if let Err(refusal) = self.access.admit(&link, seat.clone(), user.as_deref(), now_ms, live) {
                    self.turn_away(id, refusal.code, refusal.message.clone(), &by, None, None, fx);
                    return Err(refusal);
                }
                self.let_in(id, &by, asker, request, now_ms, fx);
                self.access
                    .record(now_ms, AuditKind::Admitted, &caller.actor(), &seat, "");
                Ok(HostReply::Done)
            }
            HostOp::Refuse { seat } => {
                if caller.role != Role::Host {
                    return Err(Refusal::not_host("turn people away"));
                }
                let id = self.waiting_conn(&seat)?;
                let message = format!("{by} did not let you in");
                self.turn_away(id, ErrorCode::Forbidden, message, &by, asker, request, fx);
                self.access
                    .record(now_ms, AuditKind::Refused, &caller.actor(), &seat, "");
                Ok(HostReply::Done)
            }
            HostOp::SetApproval { on } => {
                if self.access.set_approval(caller, on)? {
                    self.access.record(
                        now_ms,
                        AuditKind::ApprovalChanged,
                        &caller.actor(),
                        "",
                        if on { "on" } else { "off" },
                    );
                }
                fx.announce(asker_conn, request, |responding_to| ServerMessage::ApprovalChanged {
                    on,
                    by: by.clone(),
                    responding_to,
                });
                if !on {
                    // Nobody needs approval any more: whoever waits comes in.
                    let waiting: Vec<String> = self.waiting.values().map(|w| w.seat.clone()).collect();
                    for seat in waiting {
                        let _ = self.host_op(caller, None, None, HostOp::Admit { seat }, now_ms, fx);
                    }
                }
                Ok(HostReply::Done)
            }
            HostOp::CreateLink {
                role,
                expires_in_secs,
                max_uses,
                for_user,
            } => {
                let default_ms = self.tokens.default_link_ms();
                let invitee = match for_user {
                    None => None,
                    Some(_) if !self.limits.accounts => {
                        return Err(Refusal {
                            code: ErrorCode::BadRequest,
                            message: "this server has no accounts (sign-in is off), so a link cannot name a user: \
                                      make an ordinary link, or ask the operator to configure --oidc-issuer"
                                .into(),
                        })
                    }
                    Some(text) => Some(Invitee::parse_request(&text).map_err(|message| Refusal {
                        code: ErrorCode::BadRequest,
                        message,
                    })?),
                };
                let request = crate::room::access::NewLink {
                    role,
                    expires_in_secs,
                    max_uses,
                    for_user: invitee,
                };
                let link = self.access.create_link(caller, request, now_ms, default_ms)?;
                self.access.record(
                    now_ms,
                    AuditKind::LinkCreated,
                    &caller.actor(),
                    &link.id,
                    role_text(role),
                );
                // The new link first, so a caller that wants only it takes the head.
                let mut links = self.access.links(self.tokens.as_ref());
                if let Some(at) = links.iter().position(|l| l.id == link.id) {
                    let created = links.remove(at);
                    links.insert(0, created);
                }
                Ok(HostReply::Links(links))
            }
            HostOp::ListLinks => {
                if caller.role != Role::Host {
                    return Err(Refusal::not_host("list links"));
                }
                Ok(HostReply::Links(self.access.links(self.tokens.as_ref())))
            }
            HostOp::RevokeLink { id } => {
                let seats = self.access.revoke_link(caller, &id, now_ms)?;
                let message =
                    "the link you joined with was revoked by the host: ask the host for a new link".to_string();
                for seat in seats {
                    for conn in self.conns_of_seat(&seat) {
                        let left = self.leave(conn, now_ms);
                        fx.absorb(left);
                        fx.close.push((conn, ErrorCode::Unauthorized, message.clone()));
                    }
                }
                let waiting: Vec<ConnId> = self
                    .waiting
                    .iter()
                    .filter(|(_, w)| w.link == id)
                    .map(|(c, _)| *c)
                    .collect();
                for conn in waiting {
                    self.turn_away(conn, ErrorCode::Unauthorized, message.clone(), &by, None, None, fx);
                }
                self.access
                    .record(now_ms, AuditKind::LinkRevoked, &caller.actor(), &id, "");
                Ok(HostReply::Links(self.access.links(self.tokens.as_ref())))
            }
            HostOp::Audit { limit } => Ok(HostReply::Audit(self.access.audit(caller, limit)?)),
            HostOp::Participants => {
                if caller.role != Role::Host {
                    return Err(Refusal::not_host("see who waits"));
                }
                let waiting = self
                    .waiting
                    .values()
                    .map(|w| WaitingJoiner {
                        seat: w.seat.clone(),
                        name: w.name.clone(),
                        client: w.client.clone(),
                        verified: w.user.is_some(),
                        since: w.since,
                    })
                    .collect();
                Ok(HostReply::Participants(RoomParticipants {
                    participants: self.participants(),
                    waiting,
                    approval: self.access.approval(),
                }))
            }
        }
    }

    fn waiting_conn(&self, seat: &str) -> Result<ConnId, Refusal> {
        self.waiting
            .iter()
            .find(|(_, w)| w.seat == seat)
            .map(|(id, _)| *id)
            .ok_or_else(|| Refusal {
                code: ErrorCode::NotFound,
                message: format!("nobody waits to join as seat {seat} (they may have left, or been answered)"),
            })
    }

    /// A waiting connection takes its seat: it gets the document, and what it sent while it
    /// waited is handled now, its hello first (so `welcome` comes before anything else).
    fn let_in(
        &mut self,
        id: ConnId,
        by: &str,
        asker: Option<ConnId>,
        request: Option<u64>,
        now_ms: u64,
        fx: &mut Effects,
    ) {
        let w = self.waiting.remove(&id).expect("checked by the caller");
        let entered = self.enter(id, &w.seat, w.user, now_ms);
        fx.absorb(entered);
        for frame in w.hello.into_iter().chain(w.frames).chain(w.awareness) {
            let handled = self.handle(id, frame, now_ms);
            fx.absorb(handled);
        }
        fx.announce_to_hosts(asker, request, |responding_to| ServerMessage::JoinRequestClosed {
            seat: w.seat.clone(),
            admitted: true,
            by: by.to_owned(),
            responding_to,
        });
    }
}

fn role_text(role: Role) -> &'static str {
    match role {
        Role::Reader => "reader",
        Role::Writer => "writer",
        Role::Host => "host",
    }
}
