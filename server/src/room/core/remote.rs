//! What other nodes tell the room through the bus, sans-IO: their updates (checked by the
//! same guard as a client's, since bus input is less trusted than memory), a resync from the
//! store, and the awareness of people connected elsewhere, which times out when their node
//! stops renewing it.

use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
use yrs::sync::{Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::{ReadTxn, Transact, Update};

use super::{guard, Effects, RoomCore, Target, MAX_AWARENESS_STATE_BYTES};
use crate::bus::NodeId;
use mesh_protocol::codec::{encode_mesh, encode_yjs};
use mesh_protocol::messages::Role;
use mesh_protocol::{ErrorCode, ServerMessage};

use super::ConnId;

/// Awareness client ids of people on other nodes a room keeps at most: far more people than
/// a room holds; a forged bus cannot grow the table without bound.
pub const MAX_REMOTE_AWARENESS: usize = 4096;

/// How long a remote person's awareness lives without being renewed: y-protocols clients
/// renew their state every 15 s, so 30 s (their own timeout) means their node is gone.
pub const REMOTE_AWARENESS_TTL_MS: u64 = 30_000;

/// Why a remote update was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteRefusal {
    /// It builds on something this node has not integrated yet: resync from the store.
    #[error("the update depends on something this node has not seen; resync from the store")]
    NeedsResync,
    /// It is malformed or breaks a rule; the store's copy is what counts, so resync.
    #[error("the bus carried an invalid update: {0}")]
    Invalid(String),
}

impl RoomCore {
    /// Takes access records another node wrote (a role change, a kick, a revoked link) and
    /// applies them to this node's connections at once, as the host's own node does: a
    /// kicked seat or one whose link was revoked is closed, a changed role is set and
    /// announced.
    pub fn reload_access(&mut self, state: crate::store::AccessState, now_ms: u64) -> Effects {
        let mut fx = Effects::default();
        self.access = crate::room::access::Access::from_state(state, self.limits.max_links);
        let conns: Vec<(ConnId, String, Role)> = self
            .conns
            .iter()
            .map(|(id, c)| (*id, c.participant.seat.clone(), c.participant.role))
            .collect();
        let mut announced = std::collections::BTreeSet::new();
        for (id, seat, role) in conns {
            let record = self.access.seat(&seat).cloned();
            match record {
                Some(s) if s.kicked => {
                    let revoked = self.access.link(&s.link).is_some_and(|l| l.revoked_at.is_some());
                    let (code, message) = if revoked {
                        (
                            ErrorCode::Unauthorized,
                            "the link you joined with was revoked by the host: ask the host for a new link",
                        )
                    } else {
                        (ErrorCode::Forbidden, "you were removed from this room by the host")
                    };
                    if !revoked && self.conns[&id].mesh {
                        fx.to(
                            Target::One(id),
                            encode_mesh(&ServerMessage::Kicked { by: "the host".into() }),
                        );
                    }
                    fx.absorb(self.leave(id, now_ms));
                    fx.close.push((id, code, message.into()));
                }
                Some(s) if s.role != role => {
                    self.conns.get_mut(&id).expect("listed").participant.role = s.role;
                    self.people_version += 1;
                    if announced.insert(seat.clone()) {
                        fx.to(
                            Target::MeshClients,
                            encode_mesh(&ServerMessage::RoleChanged {
                                seat: seat.clone(),
                                role: s.role,
                                by: "the host".into(),
                                responding_to: None,
                            }),
                        );
                    }
                }
                _ => {}
            }
        }
        fx
    }

    /// Says the room has a bus: its connections' awareness goes to the other nodes too.
    pub fn set_bus(&mut self, on: bool) {
        self.bus = on;
    }

    /// Applies an update another node appended to the store, after the guard's checks, and
    /// relays it to this node's synced connections. Nothing is persisted: it is already in
    /// the store.
    pub fn apply_remote_update(&mut self, raw: Vec<u8>) -> Result<Effects, RemoteRefusal> {
        let mut fx = Effects::default();
        let parsed = guard::parse(&raw).map_err(|r| RemoteRefusal::Invalid(r.to_string()))?;
        if parsed.is_empty() {
            return Ok(fx);
        }
        let sv = self.doc().transact().state_vector();
        match guard::check(&parsed, &sv, &self.types) {
            Ok(()) => {}
            Err(guard::Refusal::MissingDependency(_)) => return Err(RemoteRefusal::NeedsResync),
            Err(r) => return Err(RemoteRefusal::Invalid(r.to_string())),
        }
        let update = Update::decode_v1(&raw).map_err(|e| RemoteRefusal::Invalid(e.to_string()))?;
        self.doc()
            .transact_mut()
            .apply_update(update)
            .map_err(|e| RemoteRefusal::Invalid(e.to_string()))?;
        self.types.record(&parsed);
        self.doc_bytes += raw.len();
        fx.to(Target::Synced, encode_yjs(&Message::Sync(SyncMessage::Update(raw))));
        Ok(fx)
    }

    /// Brings the document up to the store's copy (`snapshot` then `updates`, written by
    /// every node) and relays what was missing to this node's synced connections as one
    /// update. What the room already holds is in the store too (it was appended before it
    /// was integrated), so the result is the store's state.
    pub fn resync_from(&mut self, snapshot: Option<&[u8]>, updates: &[Vec<u8>]) -> Effects {
        let mut fx = Effects::default();
        let (fresh, _bad) = RoomCore::load_with(self.limits, snapshot, updates);
        let sv = self.doc().transact().state_vector();
        let missing = fresh.doc().transact().encode_state_as_update_v1(&sv);
        let Ok(update) = Update::decode_v1(&missing) else {
            return fx;
        };
        if update.is_empty() {
            return fx;
        }
        if self.doc().transact_mut().apply_update(update).is_err() {
            // The store's own state does not apply to this copy: take the store's whole.
            self.replace_document(fresh);
            let full = self
                .doc()
                .transact()
                .encode_state_as_update_v1(&yrs::StateVector::default());
            fx.to(Target::Synced, encode_yjs(&Message::Sync(SyncMessage::Update(full))));
            return fx;
        }
        self.types.record_bytes(&missing);
        self.doc_bytes += missing.len();
        fx.to(Target::Synced, encode_yjs(&Message::Sync(SyncMessage::Update(missing))));
        fx
    }

    /// Applies the awareness of people on `node`, checked and bounded: no client id a
    /// connection of this node owns, no state over the per-client limit, no more remote ids
    /// than [`MAX_REMOTE_AWARENESS`]. Relays what applies to this node's members.
    pub fn apply_remote_awareness(&mut self, node: NodeId, raw: &[u8], now_ms: u64) -> Effects {
        let mut fx = Effects::default();
        let Some(update) = decode_awareness(raw) else {
            metrics::counter!("mesh_bus_bad_entries_total").increment(1);
            return fx;
        };
        let mut kept = AwarenessUpdate {
            clients: Default::default(),
        };
        for (client, entry) in update.clients {
            let id = client.get();
            let local = self.awareness_owner.contains_key(&id);
            let full = self.remote_awareness.len() >= MAX_REMOTE_AWARENESS && !self.remote_awareness.contains_key(&id);
            if local || full || entry.json.len() > MAX_AWARENESS_STATE_BYTES {
                metrics::counter!("mesh_bus_awareness_refused_total").increment(1);
                continue;
            }
            if &*entry.json == "null" {
                self.remote_awareness.remove(&id);
            } else {
                self.remote_awareness.insert(id, (node, now_ms));
            }
            kept.clients.insert(client, entry);
        }
        if kept.clients.is_empty() {
            return fx;
        }
        let frame = encode_yjs(&Message::Awareness(kept.clone()));
        if self.awareness.apply_update(kept).is_ok() {
            fx.to(Target::All, frame);
        }
        fx
    }

    /// Clears the states of people on other nodes not renewed within
    /// [`REMOTE_AWARENESS_TTL_MS`] (their node died or lost the bus), for everyone here.
    pub fn expire_remote_awareness(&mut self, now_ms: u64) -> Effects {
        let mut fx = Effects::default();
        let stale: Vec<u64> = self
            .remote_awareness
            .iter()
            .filter(|(_, (_, seen))| now_ms.saturating_sub(*seen) >= REMOTE_AWARENESS_TTL_MS)
            .map(|(id, _)| *id)
            .collect();
        let mut removed = AwarenessUpdate {
            clients: Default::default(),
        };
        for id in stale {
            self.remote_awareness.remove(&id);
            let cid = yrs::block::ClientID::new(id);
            if let Some((clock, _)) = self.awareness.meta(cid) {
                removed.clients.insert(
                    cid,
                    AwarenessUpdateEntry {
                        // A state at the largest clock is cleared at that clock (y-protocols
                        // takes a null state at an equal clock); a client cannot make it wrap.
                        clock: clock.saturating_add(1),
                        json: "null".into(),
                    },
                );
            }
        }
        if !removed.clients.is_empty() {
            let _ = self.awareness.apply_update(removed.clone());
            fx.to(Target::All, encode_yjs(&Message::Awareness(removed)));
        }
        fx
    }

    /// When the oldest remote awareness state expires, on the room's clock.
    pub fn next_remote_expiry(&self) -> Option<u64> {
        self.remote_awareness
            .values()
            .map(|(_, seen)| seen + REMOTE_AWARENESS_TTL_MS)
            .min()
    }

    /// The awareness states of this node's connections, for a node that just joined the
    /// stream (so it sees who is here without waiting for their next move).
    pub fn local_awareness(&self) -> Option<Vec<u8>> {
        let mut update = AwarenessUpdate {
            clients: Default::default(),
        };
        for (cid, state) in self.awareness.iter() {
            if !self.awareness_owner.contains_key(&cid.get()) {
                continue;
            }
            if let Some(json) = state.data.clone() {
                update.clients.insert(
                    cid,
                    AwarenessUpdateEntry {
                        clock: state.clock,
                        json,
                    },
                );
            }
        }
        (!update.clients.is_empty()).then(|| yrs::updates::encoder::Encode::encode_v1(&update))
    }
}

/// Decodes an awareness update from the bus through the same checked path as a client's
/// (`decode_frame`: declared counts bounded by the bytes, client ids within 53 bits, which
/// yrs asserts), by framing it as the y-protocols awareness message it is.
fn decode_awareness(raw: &[u8]) -> Option<AwarenessUpdate> {
    use yrs::encoding::write::Write;
    const MSG_AWARENESS: u8 = 1;
    let mut framed = Vec::with_capacity(raw.len() + 6);
    framed.write_var(MSG_AWARENESS);
    framed.write_buf(raw);
    let mut frames = mesh_protocol::decode_frame::<mesh_protocol::Request>(&framed).ok()?;
    match (frames.pop(), frames.is_empty()) {
        (Some(mesh_protocol::codec::Frame::Yjs(Message::Awareness(update))), true) => Some(update),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::room::core::tests::three_edits;

    fn node() -> NodeId {
        NodeId(7)
    }

    fn state(client: u64, clock: u32, json: &str) -> Vec<u8> {
        let update = AwarenessUpdate {
            clients: [(
                yrs::block::ClientID::new(client),
                AwarenessUpdateEntry {
                    clock,
                    json: json.into(),
                },
            )]
            .into(),
        };
        yrs::updates::encoder::Encode::encode_v1(&update)
    }

    #[test]
    fn a_remote_update_that_builds_on_the_unseen_asks_for_a_resync() {
        let (mut room, _) = RoomCore::load(None, &[]);
        let [a, b, _c] = three_edits();
        assert_eq!(room.apply_remote_update(b).err(), Some(RemoteRefusal::NeedsResync));
        let fx = room.apply_remote_update(a).expect("the first edit applies");
        assert_eq!(fx.send.len(), 1, "relayed to the synced connections");
        assert!(fx.persist.is_empty(), "never appended twice");
    }

    #[test]
    fn a_resync_relays_only_what_was_missing_and_converges_on_the_store() {
        let [a, b, c] = three_edits();
        let (mut room, _) = RoomCore::load(None, std::slice::from_ref(&a));
        let fx = room.resync_from(None, &[a.clone(), b, c]);
        assert_eq!(fx.send.len(), 1);
        assert_eq!(crate::room::core::tests::text_t(&room), "abc");
        assert!(
            room.resync_from(None, &[a]).send.is_empty(),
            "nothing new, nothing sent"
        );
    }

    #[test]
    fn remote_awareness_expires_when_its_node_stops_renewing_it() {
        let (mut room, _) = RoomCore::load(None, &[]);
        let fx = room.apply_remote_awareness(node(), &state(42, 1, r#"{"user":{"name":"b"}}"#), 1_000);
        assert_eq!(fx.send.len(), 1);
        assert_eq!(room.next_remote_expiry(), Some(1_000 + REMOTE_AWARENESS_TTL_MS));
        assert!(room
            .expire_remote_awareness(1_000 + REMOTE_AWARENESS_TTL_MS - 1)
            .send
            .is_empty());
        room.apply_remote_awareness(node(), &state(42, 2, r#"{"user":{"name":"b"}}"#), 20_000);
        assert!(room.expire_remote_awareness(31_000).send.is_empty(), "renewed at 20 s");
        let gone = room.expire_remote_awareness(20_000 + REMOTE_AWARENESS_TTL_MS);
        assert_eq!(gone.send.len(), 1, "cleared for everyone here");
        assert_eq!(room.next_remote_expiry(), None);
    }

    #[test]
    fn forged_remote_awareness_is_bounded_and_never_fatal() {
        let (mut room, _) = RoomCore::load(None, &[]);
        assert!(room
            .apply_remote_awareness(node(), &[0xff, 0xff, 0xff], 0)
            .send
            .is_empty());
        let big = format!("{{\"x\":\"{}\"}}", "a".repeat(MAX_AWARENESS_STATE_BYTES));
        assert!(room
            .apply_remote_awareness(node(), &state(1, 1, &big), 0)
            .send
            .is_empty());
        for i in 0..MAX_REMOTE_AWARENESS as u64 + 10 {
            room.apply_remote_awareness(node(), &state(100 + i, 1, "{}"), 0);
        }
        assert_eq!(room.remote_awareness.len(), MAX_REMOTE_AWARENESS);
    }
}
