//! Who may be in a room and how (decision 011), sans-IO: links, seats, the approval setting
//! and the audit trail. The room core asks it whether a token gets in and records what the
//! host changes; every change is also queued as an [`AccessChange`] that the room's task makes
//! durable before it sends anything of the turn. No sockets, no store; the clock is passed in.

use std::collections::{BTreeMap, VecDeque};

use mesh_protocol::messages::{AuditEntry, AuditKind, LinkInfo, Role};
use mesh_protocol::ErrorCode;

use crate::accounts::identity::{Invitee, Verified};
use crate::auth::Grant;
use crate::store::{AccessChange, AccessState, LinkRecord, SeatRecord, MAX_AUDIT_ENTRIES};

/// How many seats a room keeps. A seat that is not connected and not the host's is forgotten,
/// oldest first, past this: its holder joins again through their link (which counts a use).
/// A room's regulars fit many times over; stock clients that take a seat per connection cannot
/// grow the store without bound.
pub const MAX_SEATS_KEPT: usize = 1_000;

/// Default most links a room keeps (working, expired and revoked together); past it the oldest
/// expired or revoked one is forgotten, and with none such a new link is refused. Far more than
/// a host hands out by hand; a script creating links in a loop stops here.
pub const DEFAULT_MAX_LINKS: usize = 100;

/// The `by` of a change made over REST without a seat (the host's link used before its seat
/// exists).
pub const REST_ACTOR: &str = "host (REST)";

/// A refusal with its error code and a message that says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The error code (its close code or HTTP status goes with it).
    pub code: ErrorCode,
    /// For humans: what happened and what to do.
    pub message: String,
}

impl Refusal {
    fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Refusal {
            code,
            message: message.into(),
        }
    }

    /// Refused because the caller is not the host.
    pub fn not_host(what: &str) -> Self {
        Refusal::new(
            ErrorCode::Forbidden,
            format!("only the host may {what}; ask the host to do it or to hand you the host role"),
        )
    }
}

/// What a token gets: a seat, or a place in the lobby.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// Take this seat (existing, or just created by a link).
    Seat(String),
    /// The room requires approval: wait for the host. `seat` is the id the seat will have.
    Lobby {
        /// The seat it would take.
        seat: String,
        /// The link it came through.
        link: String,
    },
}

/// Who asks for a host action: a connection's seat, or a REST caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The caller's seat, when it has one.
    pub seat: Option<String>,
    /// Its role now.
    pub role: Role,
    /// Its display name (`by` of announcements).
    pub name: String,
}

impl Caller {
    /// How the audit trail names it: `ada [seat]`, or the REST caller's name.
    pub fn actor(&self) -> String {
        match &self.seat {
            Some(seat) => actor_name(&self.name, seat),
            None => self.name.clone(),
        }
    }
}

/// Makes the tokens of a room: the seat tokens sent in `welcome` and the links' URLs.
pub trait Tokens: Send + Sync {
    /// A token that reconnects to `seat`, bound to `user` when a signed-in user holds it.
    fn seat_token(&self, seat: &str, user: Option<&str>, now_ms: u64) -> String;
    /// The join link of a link record.
    fn link_url(&self, link: &LinkRecord) -> String;
    /// How long a link lasts when its creator does not say (`token_ttl`), in milliseconds.
    fn default_link_ms(&self) -> u64;
}

/// Tokens for rooms that have no signer (unit tests of the core).
pub struct NoTokens;

impl Tokens for NoTokens {
    fn seat_token(&self, seat: &str, _user: Option<&str>, _now_ms: u64) -> String {
        format!("seat:{seat}")
    }
    fn link_url(&self, link: &LinkRecord) -> String {
        format!("link:{}", link.id)
    }
    fn default_link_ms(&self) -> u64 {
        7 * 24 * 3600 * 1000
    }
}

/// A random id for a seat or a link: 64 bits, plenty to tell a room's records apart (the
/// tokens that name them are signed, so ids need not be secret).
pub fn new_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// What a host asks of a new link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLink {
    /// The role its seats start with (`reader` or `writer`).
    pub role: Role,
    /// Its lifetime in seconds (the server's token lifetime when `None`).
    pub expires_in_secs: Option<u64>,
    /// How many seats it may create (unlimited when `None`).
    pub max_uses: Option<u32>,
    /// The one signed-in user it is for, if any.
    pub for_user: Option<Invitee>,
}

impl NewLink {
    /// A link of `role` with the defaults: the server's lifetime, no limit, anyone.
    pub fn of(role: Role) -> Self {
        NewLink {
            role,
            expires_in_secs: None,
            max_uses: None,
            for_user: None,
        }
    }
}

/// A room's links, seats, approval setting and audit trail.
#[derive(Debug, Default)]
pub struct Access {
    links: BTreeMap<String, LinkRecord>,
    seats: BTreeMap<String, SeatRecord>,
    approval: bool,
    audit: VecDeque<AuditEntry>,
    owner: Option<String>,
    max_links: usize,
    /// Changes not yet handed to the store.
    changes: Vec<AccessChange>,
}

impl Access {
    /// The records as the store has them.
    pub fn from_state(state: AccessState, max_links: usize) -> Self {
        Access {
            links: state.links.into_iter().map(|l| (l.id.clone(), l)).collect(),
            seats: state.seats.into_iter().map(|s| (s.id.clone(), s)).collect(),
            approval: state.approval,
            audit: state.audit.into(),
            owner: state.owner,
            max_links,
            changes: Vec::new(),
        }
    }

    /// The changes made since the last call, for the store, in order.
    pub fn take_changes(&mut self) -> Vec<AccessChange> {
        std::mem::take(&mut self.changes)
    }

    /// Whether changes wait for [`Self::take_changes`].
    pub fn has_changes(&self) -> bool {
        !self.changes.is_empty()
    }

    /// Whether joiners wait for the host's approval.
    pub fn approval(&self) -> bool {
        self.approval
    }

    /// A seat.
    pub fn seat(&self, id: &str) -> Option<&SeatRecord> {
        self.seats.get(id)
    }

    /// A link's record.
    pub fn link(&self, id: &str) -> Option<&LinkRecord> {
        self.links.get(id)
    }

    fn link_refusal(link: Option<&LinkRecord>, now_ms: u64) -> Option<Refusal> {
        let Some(link) = link else {
            return Some(Refusal::new(
                ErrorCode::Unauthorized,
                "this link is not known to the room (it may have been removed): ask the host for a new link",
            ));
        };
        if link.revoked_at.is_some() {
            return Some(Refusal::new(
                ErrorCode::Unauthorized,
                "this link was revoked by the host: ask the host for a new link",
            ));
        }
        if now_ms >= link.expires_at {
            return Some(Refusal::new(
                ErrorCode::Unauthorized,
                "this link has expired: ask the host for a new link",
            ));
        }
        if link.max_uses.is_some_and(|max| link.uses >= max) {
            return Some(Refusal::new(
                ErrorCode::Unauthorized,
                format!(
                    "this link was already used by its limit of {} people (max_uses): ask the host for a new link",
                    link.max_uses.unwrap_or_default()
                ),
            ));
        }
        None
    }

    fn seat_refusal(&self, seat: Option<&SeatRecord>) -> Option<Refusal> {
        let Some(seat) = seat else {
            return Some(Refusal::new(
                ErrorCode::Unauthorized,
                "your seat in this room is no longer known: join again with your link",
            ));
        };
        if seat.kicked {
            let revoked = self.links.get(&seat.link).is_none_or(|l| l.revoked_at.is_some());
            let message = if revoked {
                "the link you joined with was revoked by the host: ask the host for a new link"
            } else {
                "you were removed from this room by the host"
            };
            return Some(Refusal::new(ErrorCode::Forbidden, message));
        }
        None
    }

    /// Refuses a seat held by a signed-in user to anyone else.
    fn seat_user_refusal(seat: &SeatRecord, user: Option<&Verified>) -> Option<Refusal> {
        let holder = seat.user.as_deref()?;
        match user {
            Some(u) if u.id == holder => None,
            Some(u) => Some(Refusal::new(
                ErrorCode::Forbidden,
                format!(
                    "this seat belongs to another signed-in user (you are signed in as {}): join with a link of your own",
                    u.name
                ),
            )),
            None => Some(Refusal::new(
                ErrorCode::Unauthorized,
                "this seat belongs to a signed-in user: sign in as them first (Sign in on the page, or mesh-proxy login)",
            )),
        }
    }

    /// Refuses an invitation to anyone but the user it names.
    fn invitee_refusal(link: &LinkRecord, user: Option<&Verified>) -> Option<Refusal> {
        let invitee = Invitee::from_stored(link.for_user.as_deref()?)?;
        match user {
            Some(u) if invitee.matches(u) => None,
            Some(u) => Some(Refusal::new(
                ErrorCode::Forbidden,
                format!(
                    "this link is an invitation for someone else (you are signed in as {}{}): ask the host for a link of your own",
                    u.name,
                    u.email.as_deref().map(|e| format!(", {e}")).unwrap_or_default()
                ),
            )),
            None => Some(Refusal::new(
                ErrorCode::Unauthorized,
                "this link is an invitation for a signed-in user: sign in first (Sign in on the page, or mesh-proxy login), then open it again",
            )),
        }
    }

    /// The seat a signed-in user already holds in this room, if any: a person has one seat,
    /// whichever link they come back through.
    fn seat_of_user(&self, user: Option<&Verified>) -> Option<&SeatRecord> {
        let user = user?;
        self.seats
            .values()
            .find(|s| s.user.as_deref() == Some(user.id.as_str()))
    }

    /// The host's seat that a host link opens, if it took one already.
    fn seat_of_host_link(&self, link: &str) -> Option<&SeatRecord> {
        self.seats.values().find(|s| s.link == link)
    }

    /// Whether `grant`, shown by `user` (signed in, or not), would get in now (nothing
    /// changes): the check at the HTTP upgrade.
    pub fn check(&self, grant: &Grant, user: Option<&Verified>, now_ms: u64) -> Result<(), Refusal> {
        match grant {
            Grant::Seat(id) => {
                let seat = self.seats.get(id);
                if let Some(refusal) = self.seat_refusal(seat) {
                    return Err(refusal);
                }
                seat.and_then(|s| Self::seat_user_refusal(s, user)).map_or(Ok(()), Err)
            }
            Grant::Link(id) => {
                let link = self.links.get(id);
                if let Some(refusal) = link.and_then(|l| Self::invitee_refusal(l, user)) {
                    return Err(refusal);
                }
                if link.is_some_and(|l| l.role == Role::Host && l.revoked_at.is_none() && now_ms < l.expires_at) {
                    if let Some(seat) = self.seat_of_host_link(id) {
                        if let Some(refusal) = self.seat_refusal(Some(seat)) {
                            return Err(refusal);
                        }
                        return Self::seat_user_refusal(seat, user).map_or(Ok(()), Err);
                    }
                    return Ok(());
                }
                if let Some(refusal) = Self::link_refusal(link, now_ms) {
                    return Err(refusal);
                }
                // A signed-in person removed from the room stays out, whichever link they
                // come back with: their seat is bound to them.
                self.seat_of_user(user)
                    .and_then(|s| self.seat_refusal(Some(s)))
                    .map_or(Ok(()), Err)
            }
        }
    }

    /// Lets `grant` in: its seat, a new seat (one use of the link), or the lobby when the room
    /// requires approval. `live` says whether a seat has a connection (live seats are never
    /// forgotten to make room).
    pub fn enter(
        &mut self,
        grant: &Grant,
        user: Option<&Verified>,
        now_ms: u64,
        live: impl Fn(&str) -> bool,
    ) -> Result<Entry, Refusal> {
        self.check(grant, user, now_ms)?;
        let uid = user.map(|u| u.id.as_str());
        let lid = match grant {
            Grant::Seat(id) => return Ok(Entry::Seat(id.clone())),
            Grant::Link(lid) => lid.clone(),
        };
        let role = self.links[&lid].role;
        if role == Role::Host {
            // The host's link opens the host's seat: a person, however many devices. After a
            // handoff that seat keeps the role it was given (a writer).
            if let Some(seat) = self.seat_of_host_link(&lid) {
                return Ok(Entry::Seat(seat.id.clone()));
            }
            return Ok(Entry::Seat(self.create_seat(&lid, new_id(), uid, now_ms, &live)));
        }
        // A signed-in person who has a seat here takes it again (no new use of the link).
        if let Some(seat) = self.seat_of_user(user) {
            return Ok(Entry::Seat(seat.id.clone()));
        }
        if self.approval {
            return Ok(Entry::Lobby {
                seat: new_id(),
                link: lid,
            });
        }
        Ok(Entry::Seat(self.create_seat(&lid, new_id(), uid, now_ms, &live)))
    }

    /// Lets a waiting joiner in: checks its link again (it may have been revoked or used up
    /// meanwhile) and creates its seat, held by `user` when they signed in.
    pub fn admit(
        &mut self,
        link: &str,
        seat: String,
        user: Option<&str>,
        now_ms: u64,
        live: impl Fn(&str) -> bool,
    ) -> Result<(), Refusal> {
        if let Some(refusal) = Self::link_refusal(self.links.get(link), now_ms) {
            return Err(refusal);
        }
        self.create_seat(link, seat, user, now_ms, &live);
        Ok(())
    }

    fn create_seat(
        &mut self,
        link: &str,
        id: String,
        user: Option<&str>,
        now_ms: u64,
        live: &impl Fn(&str) -> bool,
    ) -> String {
        let record = {
            let l = self.links.get_mut(link).expect("checked by the caller");
            l.uses += 1;
            l.clone()
        };
        self.changes.push(AccessChange::LinkUsed(record.id.clone()));
        if self.seats.len() >= MAX_SEATS_KEPT {
            let oldest = self
                .seats
                .values()
                .filter(|s| s.role != Role::Host && !live(&s.id))
                .min_by_key(|s| s.created_at)
                .map(|s| s.id.clone());
            if let Some(old) = oldest {
                self.seats.remove(&old);
                self.changes.push(AccessChange::DropSeat(old));
            }
        }
        let seat = SeatRecord {
            id: id.clone(),
            name: "anonymous".into(),
            role: record.role,
            link: link.to_owned(),
            created_at: now_ms,
            kicked: false,
            user: user.map(str::to_owned),
        };
        self.changes.push(AccessChange::Seat(seat.clone()));
        self.seats.insert(id.clone(), seat);
        id
    }

    /// Who a REST call's token is, with its role now.
    pub fn rest_caller(&self, grant: &Grant, user: Option<&Verified>, now_ms: u64) -> Result<Caller, Refusal> {
        self.check(grant, user, now_ms)?;
        let seat = match grant {
            Grant::Seat(id) => Some(&self.seats[id]),
            Grant::Link(lid) if self.links[lid].role == Role::Host => self.seat_of_host_link(lid),
            // With approval on, a link alone has not been let in: what the room holds (its
            // runs, their output) is for admitted seats, as on the socket.
            Grant::Link(_) if self.approval => {
                return Err(Refusal::new(
                    ErrorCode::Forbidden,
                    "this room lets people in only with the host's approval: join it, and once \
                     the host admits you, use your seat's token",
                ))
            }
            Grant::Link(lid) => {
                return Ok(Caller {
                    seat: None,
                    role: self.links[lid].role,
                    name: REST_ACTOR.into(),
                })
            }
        };
        Ok(match seat {
            Some(s) => Caller {
                seat: Some(s.id.clone()),
                role: s.role,
                name: s.name.clone(),
            },
            // The host's link before its seat exists.
            None => Caller {
                seat: None,
                role: Role::Host,
                name: REST_ACTOR.into(),
            },
        })
    }

    /// Renames a seat (its holder said hello).
    pub fn rename_seat(&mut self, id: &str, name: &str) {
        if let Some(seat) = self.seats.get_mut(id) {
            if seat.name != name {
                seat.name = name.to_owned();
                self.changes.push(AccessChange::Seat(seat.clone()));
            }
        }
    }

    /// Gives a seat a role. `host` moves the host role: every other host seat becomes a
    /// writer. Returns every seat whose role changed, with its new role.
    pub fn set_role(&mut self, caller: &Caller, seat: &str, role: Role) -> Result<Vec<(String, Role)>, Refusal> {
        if caller.role != Role::Host {
            return Err(Refusal::not_host("change roles"));
        }
        match self.seats.get(seat) {
            None => {
                return Err(Refusal::new(
                    ErrorCode::NotFound,
                    format!("no seat {seat} in this room"),
                ))
            }
            Some(s) if s.kicked => {
                return Err(Refusal::new(
                    ErrorCode::BadRequest,
                    format!("seat {seat} was removed from the room"),
                ))
            }
            Some(_) => {}
        }
        if caller.seat.as_deref() == Some(seat) && role != Role::Host {
            return Err(Refusal::new(
                ErrorCode::BadRequest,
                "the room needs a host: hand the host role to someone else (set_role with role host) instead",
            ));
        }
        let mut changed = Vec::new();
        if role == Role::Host {
            let others: Vec<String> = self
                .seats
                .values()
                .filter(|s| s.role == Role::Host && s.id != seat)
                .map(|s| s.id.clone())
                .collect();
            for other in others {
                self.put_role(&other, Role::Writer);
                changed.push((other, Role::Writer));
            }
        }
        if self.seats[seat].role != role {
            self.put_role(seat, role);
            changed.push((seat.to_owned(), role));
        }
        Ok(changed)
    }

    fn put_role(&mut self, seat: &str, role: Role) {
        let s = self.seats.get_mut(seat).expect("checked by the caller");
        s.role = role;
        self.changes.push(AccessChange::Seat(s.clone()));
    }

    /// Removes a seat: its token is refused from now on.
    pub fn kick(&mut self, caller: &Caller, seat: &str) -> Result<(), Refusal> {
        if caller.role != Role::Host {
            return Err(Refusal::not_host("remove people"));
        }
        if caller.seat.as_deref() == Some(seat) {
            return Err(Refusal::new(
                ErrorCode::BadRequest,
                "you cannot remove yourself; leave instead",
            ));
        }
        let s = self
            .seats
            .get_mut(seat)
            .ok_or_else(|| Refusal::new(ErrorCode::NotFound, format!("no seat {seat} in this room")))?;
        s.kicked = true;
        self.changes.push(AccessChange::Seat(s.clone()));
        Ok(())
    }

    /// Creates a link.
    pub fn create_link(
        &mut self,
        caller: &Caller,
        request: NewLink,
        now_ms: u64,
        default_ms: u64,
    ) -> Result<LinkRecord, Refusal> {
        let NewLink {
            role,
            expires_in_secs,
            max_uses,
            for_user,
        } = request;
        if caller.role != Role::Host {
            return Err(Refusal::not_host("create links"));
        }
        if role == Role::Host {
            return Err(Refusal::new(
                ErrorCode::BadRequest,
                "a link cannot grant the host role: hand it to a participant with set_role",
            ));
        }
        let lifetime = match expires_in_secs {
            None => default_ms,
            Some(secs) if secs >= 1 && secs.saturating_mul(1000) <= default_ms => secs * 1000,
            Some(secs) => {
                return Err(Refusal::new(
                    ErrorCode::BadRequest,
                    format!(
                        "expires_in_secs must be 1 to {} (this server's token_ttl), not {secs}",
                        default_ms / 1000
                    ),
                ))
            }
        };
        if max_uses == Some(0) {
            return Err(Refusal::new(
                ErrorCode::BadRequest,
                "max_uses must be at least 1 (leave it out for no limit)",
            ));
        }
        let mut link = self.create_link_record(role, now_ms + lifetime, max_uses, now_ms, caller.actor())?;
        if let Some(invitee) = for_user {
            link.for_user = Some(invitee.stored());
            self.links.insert(link.id.clone(), link.clone());
            self.changes.push(AccessChange::Link(link.clone()));
        }
        Ok(link)
    }

    /// The user who owns the room, if a signed-in user created it.
    pub fn owner(&self) -> Option<&str> {
        self.owner.as_deref()
    }

    /// Creates a link without a caller (the room's first links, made with it).
    pub fn create_link_record(
        &mut self,
        role: Role,
        expires_at: u64,
        max_uses: Option<u32>,
        now_ms: u64,
        created_by: String,
    ) -> Result<LinkRecord, Refusal> {
        if self.links.len() >= self.max_links {
            let oldest_ended = self
                .links
                .values()
                .filter(|l| l.revoked_at.is_some() || now_ms >= l.expires_at)
                .min_by_key(|l| l.created_at)
                .map(|l| l.id.clone());
            match oldest_ended {
                // Its seats were closed when it was revoked (kicked), or live on without it.
                Some(id) => {
                    self.links.remove(&id);
                }
                None => {
                    return Err(Refusal::new(
                        ErrorCode::TooLarge,
                        format!(
                            "this room has {} working links, its limit (max_links): revoke one first",
                            self.links.len()
                        ),
                    ))
                }
            }
        }
        let link = LinkRecord {
            id: new_id(),
            role,
            created_at: now_ms,
            expires_at,
            max_uses,
            uses: 0,
            revoked_at: None,
            created_by,
            for_user: None,
        };
        self.links.insert(link.id.clone(), link.clone());
        self.changes.push(AccessChange::Link(link.clone()));
        Ok(link)
    }

    /// Revokes a link and removes the seats it created (their tokens are refused from now
    /// on). Returns those seats, whose connections the caller closes.
    pub fn revoke_link(&mut self, caller: &Caller, id: &str, now_ms: u64) -> Result<Vec<String>, Refusal> {
        if caller.role != Role::Host {
            return Err(Refusal::not_host("revoke links"));
        }
        let Some(link) = self.links.get(id) else {
            return Err(Refusal::new(ErrorCode::NotFound, format!("no link {id} in this room")));
        };
        if caller
            .seat
            .as_ref()
            .and_then(|s| self.seats.get(s))
            .is_some_and(|s| s.link == id)
            || (caller.seat.is_none() && link.role == Role::Host)
        {
            return Err(Refusal::new(
                ErrorCode::BadRequest,
                "your own seat came through this link: hand the host role to someone else first",
            ));
        }
        let link = self.links.get_mut(id).expect("just seen");
        if link.revoked_at.is_none() {
            link.revoked_at = Some(now_ms);
            self.changes.push(AccessChange::Link(link.clone()));
        }
        let mut seats = Vec::new();
        for seat in self.seats.values_mut().filter(|s| s.link == id && !s.kicked) {
            seat.kicked = true;
            self.changes.push(AccessChange::Seat(seat.clone()));
            seats.push(seat.id.clone());
        }
        Ok(seats)
    }

    /// The room's links, newest first.
    pub fn links(&self, tokens: &dyn Tokens) -> Vec<LinkInfo> {
        let mut links: Vec<LinkInfo> = self
            .links
            .values()
            .map(|l| LinkInfo {
                id: l.id.clone(),
                role: l.role,
                url: tokens.link_url(l),
                created_at: l.created_at,
                expires_at: l.expires_at,
                max_uses: l.max_uses,
                uses: l.uses,
                revoked: l.revoked_at.is_some(),
                for_user: l.for_user.clone(),
            })
            .collect();
        links.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.id.cmp(&b.id)));
        links
    }

    /// Turns approval on or off; returns whether it changed.
    pub fn set_approval(&mut self, caller: &Caller, on: bool) -> Result<bool, Refusal> {
        if caller.role != Role::Host {
            return Err(Refusal::not_host("change whether joiners need approval"));
        }
        if self.approval == on {
            return Ok(false);
        }
        self.approval = on;
        self.changes.push(AccessChange::Approval(on));
        Ok(true)
    }

    /// Records an event in the audit trail (the oldest entry goes past
    /// [`MAX_AUDIT_ENTRIES`]).
    pub fn record(&mut self, ts: u64, kind: AuditKind, actor: &str, subject: &str, detail: &str) {
        let entry = AuditEntry {
            ts,
            kind,
            actor: actor.to_owned(),
            subject: subject.to_owned(),
            detail: detail.to_owned(),
        };
        self.audit.push_back(entry.clone());
        while self.audit.len() > MAX_AUDIT_ENTRIES {
            self.audit.pop_front();
        }
        self.changes.push(AccessChange::Audit(entry));
    }

    /// The audit trail, newest first, at most `limit` entries.
    pub fn audit(&self, caller: &Caller, limit: Option<u32>) -> Result<Vec<AuditEntry>, Refusal> {
        if caller.role != Role::Host {
            return Err(Refusal::not_host("read the audit trail"));
        }
        let limit = limit.map_or(usize::MAX, |l| l as usize);
        Ok(self.audit.iter().rev().take(limit).cloned().collect())
    }
}

/// How the audit trail and announcements name a seat's holder: `ada [3f2a…]`.
pub fn actor_name(name: &str, seat: &str) -> String {
    format!("{name} [{seat}]")
}

#[cfg(test)]
mod tests;
