//! A connection's awareness (cursors, selections, a stock client's name and colour), sans-IO:
//! what a connection may publish (its own client ids, within the size limits), taking over
//! an id its own seat held on a dead socket, and a stock client's name kept unique.

use std::collections::BTreeSet;

use mesh_protocol::codec::{encode_mesh, encode_yjs};
use mesh_protocol::{ErrorCode, ServerMessage};
use yrs::sync::awareness::AwarenessUpdate;
use yrs::sync::Message;

use super::{clean_name, is_color, unique_name, ConnId, Effects, RoomCore, Target, MAX_AWARENESS_STATE_BYTES};

impl RoomCore {
    /// A person's new connection may take over the awareness client id an older connection
    /// of the same seat owns: after a network change the client reconnects (same document,
    /// same client id) before the server has noticed the old socket is dead, which can take
    /// up to the read timeout; until then their cursor would be refused. Another seat's id
    /// stays refused. The old connection no longer owns the id, nor clears it when it closes.
    pub(super) fn take_over_own_seat_s_awareness(&mut self, id: ConnId, update: &AwarenessUpdate) {
        let seat = &self.conns[&id].participant.seat;
        let taken: Vec<(u64, ConnId)> = update
            .clients
            .keys()
            .filter_map(|c| {
                let owner = *self.awareness_owner.get(&c.get())?;
                let same_seat = owner != id && self.conns.get(&owner).is_some_and(|o| o.participant.seat == *seat);
                same_seat.then_some((c.get(), owner))
            })
            .collect();
        for (client, owner) in taken {
            if let Some(old) = self.conns.get_mut(&owner) {
                if old.awareness_owned == Some(client) {
                    old.awareness_owned = None;
                }
                old.awareness_ids.remove(&client);
            }
            self.awareness_owner.remove(&client);
        }
    }

    pub(super) fn apply_awareness(&mut self, id: ConnId, update: AwarenessUpdate, now_ms: u64, fx: &mut Effects) {
        let limits = self.limits;
        // A stock client's name comes from its awareness state and must be unique too.
        let taken = if self.conns[&id].mesh {
            BTreeSet::new()
        } else {
            self.names_taken_by_others(&self.conns[&id].participant.seat)
        };
        self.take_over_own_seat_s_awareness(id, &update);
        let conn = self.conns.get_mut(&id).expect("checked by handle");
        if let Some(entry) = update
            .clients
            .values()
            .find(|e| e.json.len() > MAX_AWARENESS_STATE_BYTES)
        {
            let len = entry.json.len();
            fx.error(
                conn,
                id,
                ErrorCode::TooLarge,
                format!("awareness state of {len} bytes exceeds {MAX_AWARENESS_STATE_BYTES}"),
            );
            return;
        }
        // A token bucket on the room's clock: cursors at typing speed pass, a flood is
        // refused (and its states never reach the others).
        let elapsed_s = now_ms.saturating_sub(conn.awareness_at_ms) as f64 / 1000.0;
        conn.awareness_at_ms = conn.awareness_at_ms.max(now_ms);
        conn.awareness_tokens = (conn.awareness_tokens + elapsed_s * limits.awareness_rate).min(limits.awareness_burst);
        if conn.awareness_tokens < 1.0 {
            metrics::counter!("mesh_awareness_refused_total", "reason" => "rate").increment(1);
            fx.error(
                conn,
                id,
                ErrorCode::RateLimited,
                format!(
                    "awareness updates over {} per second (awareness_rate); slow down",
                    limits.awareness_rate
                ),
            );
            return;
        }
        conn.awareness_tokens -= 1.0;
        // A connection owns the first client id it publishes; it may not touch any other,
        // nor claim one another connection owns.
        for client in update.clients.keys() {
            let client = client.get();
            let owned_by_other = self.awareness_owner.get(&client).is_some_and(|owner| *owner != id);
            let other_than_own = conn.awareness_owned.is_some_and(|own| own != client);
            if owned_by_other || other_than_own || (conn.awareness_owned.is_none() && update.clients.len() > 1) {
                metrics::counter!("mesh_awareness_refused_total", "reason" => "not_own").increment(1);
                let message = if owned_by_other {
                    format!("awareness client id {client} belongs to another connection; publish your own")
                } else {
                    "a connection may publish and clear only its own awareness client id (the first it used)"
                        .to_string()
                };
                fx.error(conn, id, ErrorCode::Forbidden, message);
                return;
            }
        }
        if conn.awareness_owned.is_none() {
            if let Some(client) = update.clients.keys().next() {
                conn.awareness_owned = Some(client.get());
                self.awareness_owner.insert(client.get(), id);
            }
        }
        let mut renamed = None;
        for (client, entry) in &update.clients {
            // A person who moved here from another node (theirs died) now publishes here.
            self.remote_awareness.remove(&client.get());
            if &*entry.json == "null" {
                conn.awareness_ids.remove(&client.get());
            } else {
                conn.awareness_ids.insert(client.get());
                // A stock Yjs client never says hello; its awareness `user` is the best name
                // and colour it has, so the participant list shows them.
                if !conn.mesh {
                    if let Some((name, color)) = awareness_user(&entry.json) {
                        let p = &mut conn.participant;
                        let color = color.filter(|c| is_color(c)).unwrap_or_else(|| p.color.clone());
                        // A signed-in person's name is the provider's, whatever the state says.
                        let name = match &conn.user {
                            Some(u) => u.name.clone(),
                            None => unique_name(&taken, clean_name(&name)),
                        };
                        if p.name != name || p.color != color || p.doc_client_id != Some(client.get()) {
                            p.name = name;
                            p.color = color;
                            p.doc_client_id = Some(client.get());
                            renamed = Some(p.clone());
                        }
                    }
                }
            }
        }
        if let Some(participant) = renamed {
            self.people_version += 1;
            fx.to(
                Target::MeshClients,
                encode_mesh(&ServerMessage::ParticipantJoined { participant }),
            );
        }
        let frame = encode_yjs(&Message::Awareness(update.clone()));
        let for_bus = self.bus.then(|| yrs::updates::encoder::Encode::encode_v1(&update));
        if let Err(e) = self.awareness.apply_update(update) {
            let conn = &self.conns[&id];
            fx.error(
                conn,
                id,
                ErrorCode::BadRequest,
                format!("invalid awareness update: {e}"),
            );
            return;
        }
        fx.bus_awareness.extend(for_bus);
        fx.to(Target::AllBut(id), frame);
    }
}

/// The `user.name` and `user.color` of an awareness state, if it has them.
fn awareness_user(json: &str) -> Option<(String, Option<String>)> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let user = v.get("user")?;
    let name = user.get("name")?.as_str()?.to_string();
    Some((name, user.get("color").and_then(|c| c.as_str()).map(String::from)))
}
