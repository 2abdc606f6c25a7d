//! People connected to the room on other nodes (with a bus), sans-IO. Each node publishes
//! its own participants when they change and again with its awareness renewal; the others
//! list them next to their own, tell their mesh clients who came and went, and forget a
//! node's people when it stops renewing them (it died or lost the bus), as with awareness.
//!
//! Connection ids are unique across nodes (each node numbers its connections above its own
//! random prefix, `ws::first_conn_id`), so a participant's `conn_id` names the same person
//! on every node, in `run_started`'s `by` as in the participant list.

use std::collections::BTreeMap;

use mesh_protocol::codec::encode_mesh;
use mesh_protocol::messages::Participant;
use mesh_protocol::ServerMessage;

use super::remote::REMOTE_AWARENESS_TTL_MS;
use super::{Effects, RoomCore, Target};
use crate::bus::NodeId;

/// People on other nodes a room lists at most: far more than a room holds; a forged bus
/// cannot grow the list without bound.
pub const MAX_REMOTE_PEOPLE: usize = 4096;

/// The participants of each other node, with when that node was last heard of.
#[derive(Default)]
pub(super) struct RemotePeople {
    nodes: BTreeMap<NodeId, (Vec<Participant>, u64)>,
}

impl RemotePeople {
    fn count(&self) -> usize {
        self.nodes.values().map(|(list, _)| list.len()).sum()
    }

    /// Everyone on other nodes, node by node.
    pub(super) fn all(&self) -> impl Iterator<Item = &Participant> {
        self.nodes.values().flat_map(|(list, _)| list.iter())
    }
}

/// What changed between a node's old list and its new one, as messages for mesh clients.
fn differences(fx: &mut Effects, old: &[Participant], new: &[Participant]) {
    for p in new {
        if old.iter().all(|o| o != p) {
            fx.to(
                Target::MeshClients,
                encode_mesh(&ServerMessage::ParticipantJoined { participant: p.clone() }),
            );
        }
    }
    for o in old {
        if new.iter().all(|p| p.conn_id != o.conn_id) {
            fx.to(
                Target::MeshClients,
                encode_mesh(&ServerMessage::ParticipantLeft { conn_id: o.conn_id }),
            );
        }
    }
}

impl RoomCore {
    /// This node's participants, in join order.
    pub fn local_participants(&self) -> Vec<Participant> {
        self.conns
            .values()
            .filter(|c| c.announced)
            .map(|c| c.participant.clone())
            .collect()
    }

    /// Counts changes to this node's participant list (joins announced, leaves), so the room
    /// knows when to publish it again.
    pub fn people_version(&self) -> u64 {
        self.people_version
    }

    /// This node's participants as published on the bus.
    pub fn local_people(&self) -> Vec<u8> {
        serde_json::to_vec(&self.local_participants()).expect("participants always serialise")
    }

    /// Takes the participant list `node` published: checked (it parses, no id of this
    /// node's connections, at most [`MAX_REMOTE_PEOPLE`] in all), then what changed is told
    /// to this node's mesh clients.
    pub fn apply_remote_people(&mut self, node: NodeId, raw: &[u8], now_ms: u64) -> Effects {
        let mut fx = Effects::default();
        let Ok(mut list) = serde_json::from_slice::<Vec<Participant>>(raw) else {
            metrics::counter!("mesh_bus_bad_entries_total").increment(1);
            return fx;
        };
        list.retain(|p| !self.conns.contains_key(&p.conn_id));
        let others = self.remote_people.count() - self.remote_people.nodes.get(&node).map_or(0, |(l, _)| l.len());
        list.truncate(MAX_REMOTE_PEOPLE.saturating_sub(others));
        let old = self
            .remote_people
            .nodes
            .insert(node, (list, now_ms))
            .map(|(l, _)| l)
            .unwrap_or_default();
        let new = &self.remote_people.nodes[&node].0;
        differences(&mut fx, &old, new);
        if new.is_empty() {
            self.remote_people.nodes.remove(&node);
        }
        fx
    }

    /// Whether this room lists people of `node` (a node it has not heard of is told who is
    /// here, so a room that just loaded there lists everyone without waiting for renewals).
    pub fn lists_people_of(&self, node: NodeId) -> bool {
        self.remote_people.nodes.contains_key(&node)
    }

    /// Forgets the people of nodes not heard of within the awareness timeout, and says so.
    pub fn expire_remote_people(&mut self, now_ms: u64) -> Effects {
        let mut fx = Effects::default();
        let stale: Vec<NodeId> = self
            .remote_people
            .nodes
            .iter()
            .filter(|(_, (_, seen))| now_ms.saturating_sub(*seen) >= REMOTE_AWARENESS_TTL_MS)
            .map(|(node, _)| *node)
            .collect();
        for node in stale {
            if let Some((old, _)) = self.remote_people.nodes.remove(&node) {
                differences(&mut fx, &old, &[]);
            }
        }
        fx
    }

    /// When the people of the node heard of longest ago expire, on the room's clock.
    pub fn next_people_expiry(&self) -> Option<u64> {
        self.remote_people
            .nodes
            .values()
            .map(|(_, seen)| seen + REMOTE_AWARENESS_TTL_MS)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_protocol::codec::decode_frame;
    use mesh_protocol::codec::Frame;
    use mesh_protocol::messages::Role;

    fn person(conn_id: u64, name: &str) -> Participant {
        Participant {
            conn_id,
            seat: format!("seat-{name}"),
            verified: false,
            link: None,
            name: name.into(),
            color: "#336699".into(),
            role: Role::Writer,
            client: "test".into(),
            doc_client_id: None,
            companion: false,
        }
    }

    fn said(fx: &Effects) -> Vec<ServerMessage> {
        fx.send
            .iter()
            .flat_map(|(_, frame)| decode_frame::<ServerMessage>(frame).unwrap())
            .filter_map(|f| match f {
                Frame::Mesh(m) => Some(m),
                Frame::Yjs(_) => None,
            })
            .collect()
    }

    fn json(list: &[Participant]) -> Vec<u8> {
        serde_json::to_vec(list).unwrap()
    }

    #[test]
    fn people_on_other_nodes_are_listed_and_their_comings_and_goings_told() {
        let (mut room, _) = RoomCore::load(None, &[]);
        let node = NodeId(5);
        let fx = room.apply_remote_people(node, &json(&[person(100, "ana"), person(101, "ben")]), 0);
        assert_eq!(said(&fx).len(), 2, "two joined");
        assert_eq!(room.participants().len(), 2);
        assert!(room.local_participants().is_empty());
        // The same list again says nothing; a list without ben says he left.
        assert!(said(&room.apply_remote_people(node, &json(&[person(100, "ana"), person(101, "ben")]), 1)).is_empty());
        let fx = room.apply_remote_people(node, &json(&[person(100, "ana")]), 2);
        assert_eq!(said(&fx), vec![ServerMessage::ParticipantLeft { conn_id: 101 }]);
    }

    #[test]
    fn a_silent_node_s_people_leave_after_the_awareness_timeout() {
        let (mut room, _) = RoomCore::load(None, &[]);
        room.apply_remote_people(NodeId(1), &json(&[person(7, "ana")]), 1_000);
        assert_eq!(room.next_people_expiry(), Some(1_000 + REMOTE_AWARENESS_TTL_MS));
        assert!(said(&room.expire_remote_people(1_000 + REMOTE_AWARENESS_TTL_MS - 1)).is_empty());
        let fx = room.expire_remote_people(1_000 + REMOTE_AWARENESS_TTL_MS);
        assert_eq!(said(&fx), vec![ServerMessage::ParticipantLeft { conn_id: 7 }]);
        assert!(room.participants().is_empty());
        assert_eq!(room.next_people_expiry(), None);
    }

    #[test]
    fn a_forged_list_is_bounded_and_never_fatal() {
        let (mut room, _) = RoomCore::load(None, &[]);
        assert!(said(&room.apply_remote_people(NodeId(1), b"{not json", 0)).is_empty());
        let many: Vec<Participant> = (0..MAX_REMOTE_PEOPLE as u64 + 50).map(|i| person(i, "x")).collect();
        room.apply_remote_people(NodeId(1), &json(&many), 0);
        room.apply_remote_people(NodeId(2), &json(&many[..10]), 0);
        assert_eq!(room.participants().len(), MAX_REMOTE_PEOPLE);
    }
}
