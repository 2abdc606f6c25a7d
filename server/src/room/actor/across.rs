//! Runs and debug sessions across nodes (with `--bus`; decision 019). A session lives on the
//! node that started it. What it tells the room (`Target::Room` frames: its start, output,
//! end, debug events, and chat) is relayed to the room's mesh clients on every node. A
//! participant on another node who types into a run, stops it, joins the debug session or
//! sends it DAP has the request forwarded to the session's node, which handles it through a
//! stand-in: a local connection id for the remote connection, with the role its node checked.
//! Whatever the session's node sends the stand-in goes back to the participant as a reply.
//!
//! Nodes learn where sessions live from the frames they relay (`run_started`, `run_queued`,
//! `debug_started`; `run_exited` and `debug_ended` end them), so a request for a session no
//! node holds is answered "not found" at once, by the participant's own node.

use std::collections::HashMap;

use mesh_protocol::codec::{decode_frame_up_to, Frame};
use mesh_protocol::messages::Role;
use mesh_protocol::{ClientMessage, ErrorCode, Request, ServerMessage};

use super::{merge, Actor};
use crate::bus::entry::{RemoteConn, MAX_RELAY_BYTES};
use crate::bus::{BusEntry, NodeId};
use crate::room::core::{ConnId, DebugRequest, Effects, Target};

/// Stand-ins' ids start here, far above any local connection's (those count up from 1).
const STAND_IN_BASE: ConnId = 1 << 62;

/// Sessions of other nodes a room keeps track of: far more than the server's caps on runs
/// let any room have; a forged stream cannot make a node hold more.
const MAX_REMOTE_SESSIONS: usize = 1024;

/// Remote connections a room holds stand-ins for: more than a room's participants.
const MAX_STAND_INS: usize = 4096;

/// How long a node may say nothing on the room's stream before its sessions count as gone:
/// a node holding a session renews its people every 10 s, so this is three renewals missed
/// (the awareness timeout).
const SILENCE_MS: u64 = crate::room::core::REMOTE_AWARENESS_TTL_MS;

/// A session another node holds.
#[derive(Debug, Clone, Copy)]
struct RemoteSession {
    node: NodeId,
    /// A debug session (a participant may join it), not only a run.
    debug: bool,
}

/// A remote connection that sent this node a request, as the room sees it.
#[derive(Debug, Clone, Copy)]
struct StandIn {
    remote: RemoteConn,
    role: Role,
}

/// The room's view of sessions and people across nodes.
#[derive(Default)]
pub(super) struct Across {
    sessions: HashMap<String, RemoteSession>,
    stand_ins: HashMap<ConnId, StandIn>,
    by_remote: HashMap<RemoteConn, ConnId>,
    next: ConnId,
    /// Local connections that joined a debug session on another node, and that node.
    joined: HashMap<ConnId, NodeId>,
    /// When each node that holds a session here, or has people in one here, was last heard.
    heard: HashMap<NodeId, u64>,
}

impl Across {
    /// Learns where sessions live from a frame another node relayed.
    fn learn(&mut self, node: NodeId, frame: &[u8]) {
        let Ok(messages) = decode_frame_up_to::<ServerMessage>(frame, MAX_RELAY_BYTES) else {
            return;
        };
        for message in messages {
            let Frame::Mesh(message) = message else { continue };
            match message {
                ServerMessage::RunStarted { run_id, .. } => self.opened(run_id, node, false),
                ServerMessage::RunQueued { run_id, debug, .. } => self.opened(run_id, node, debug),
                ServerMessage::DebugStarted { debug_id, .. } => self.opened(debug_id, node, true),
                ServerMessage::RunExited { run_id, .. } => {
                    self.sessions.remove(&run_id);
                }
                ServerMessage::DebugEnded { debug_id, .. } => {
                    self.sessions.remove(&debug_id);
                    self.joined.retain(|_, n| *n != node);
                }
                _ => {}
            }
        }
    }

    /// Another node published something at `now_ms`: it is alive. Only nodes that matter
    /// to this room's sessions are followed.
    pub(super) fn heard(&mut self, node: NodeId, now_ms: u64) {
        if let Some(at) = self.heard.get_mut(&node) {
            *at = now_ms;
        }
    }

    /// Starts following `node`'s liveness (it holds a session here, or stands in here).
    fn follow(&mut self, node: NodeId, now_ms: u64) {
        self.heard.entry(node).or_insert(now_ms);
    }

    /// When the node heard of longest ago counts as gone, on the room's clock.
    pub(super) fn next_silence(&self) -> Option<u64> {
        self.heard.values().map(|at| at + SILENCE_MS).min()
    }

    fn opened(&mut self, id: String, node: NodeId, debug: bool) {
        if self.sessions.len() >= MAX_REMOTE_SESSIONS && !self.sessions.contains_key(&id) {
            tracing::warn!(session = %id, "bus: too many sessions on other nodes; not following this one");
            return;
        }
        let s = self.sessions.entry(id).or_insert(RemoteSession { node, debug });
        s.debug |= debug;
        self.follow(node, crate::store::sqlite::now_ms());
    }

    /// The stand-in for `remote`, made when it is new (`None` when there are too many).
    fn stand_in(&mut self, remote: RemoteConn, role: Role) -> Option<ConnId> {
        if let Some(id) = self.by_remote.get(&remote) {
            if let Some(s) = self.stand_ins.get_mut(id) {
                s.role = role;
            }
            return Some(*id);
        }
        if self.stand_ins.len() >= MAX_STAND_INS {
            return None;
        }
        let id = STAND_IN_BASE + self.next;
        self.next += 1;
        self.follow(remote.node, crate::store::sqlite::now_ms());
        self.stand_ins.insert(id, StandIn { remote, role });
        self.by_remote.insert(remote, id);
        Some(id)
    }

    /// The remote connection a local id stands in for.
    pub(super) fn remote(&self, conn: ConnId) -> Option<RemoteConn> {
        self.stand_ins.get(&conn).map(|s| s.remote)
    }
}

impl Actor {
    /// A connection's role: a local participant's, or what a stand-in's node said.
    pub(super) fn role_of(&self, conn: ConnId) -> Option<Role> {
        self.core
            .role(conn)
            .or_else(|| self.across.stand_ins.get(&conn).map(|s| s.role))
    }

    /// An error for `conn`, local or a stand-in (whose node passes it on).
    pub(super) fn error_to(&self, conn: ConnId, request: Option<u64>, code: ErrorCode, message: String) -> Effects {
        if !self.across.stand_ins.contains_key(&conn) {
            return self.core.error_to(conn, request, code, message);
        }
        let mut fx = Effects::default();
        fx.to(
            Target::One(conn),
            mesh_protocol::encode_mesh(&ServerMessage::Error {
                code,
                message,
                responding_to: request,
            }),
        );
        fx
    }

    /// Sends a local participant's request about `session` to the node that holds it, when
    /// another node does. Returns false when no other node holds it (or the request came
    /// from a stand-in: requests never travel twice).
    pub(super) fn forward(
        &mut self,
        conn: ConnId,
        request: Option<u64>,
        message: ClientMessage,
        session: &str,
    ) -> bool {
        let Some(remote) = self.across.sessions.get(session).copied() else {
            return false;
        };
        self.forward_to(conn, request, message, remote.node)
    }

    /// A local participant's `debug_start` while another node holds the room's debug
    /// session: it joins that one. Returns false when no other node holds one.
    pub(super) fn forward_debug_join(&mut self, conn: ConnId, request: Option<u64>, message: ClientMessage) -> bool {
        let node = self.across.sessions.values().find(|s| s.debug).map(|s| s.node);
        match node {
            Some(node) => self.forward_to(conn, request, message, node),
            None => false,
        }
    }

    fn forward_to(&mut self, conn: ConnId, request: Option<u64>, message: ClientMessage, to: NodeId) -> bool {
        let (Some(bus), Some(role)) = (&self.bus, self.core.role(conn)) else {
            return false;
        };
        if matches!(message, ClientMessage::DebugStart { .. } | ClientMessage::Dap { .. }) {
            self.across.joined.insert(conn, to);
        }
        let request = serde_json::to_vec(&Request { id: request, message }).expect("requests always serialise");
        bus.publish_entry(
            self.id,
            BusEntry::Forward {
                node: bus.node(),
                to,
                conn,
                role,
                request,
            },
        );
        true
    }

    /// A local connection left: a debug session it joined on another node hears it.
    pub(super) fn left_across(&mut self, conn: ConnId) {
        if let (Some(to), Some(bus)) = (self.across.joined.remove(&conn), &self.bus) {
            bus.publish_entry(
                self.id,
                BusEntry::Left {
                    node: bus.node(),
                    to,
                    conn,
                },
            );
        }
    }

    /// Whether any of a turn's frames would go to other nodes: such a turn sends only after
    /// its updates are durable (the store's early relay plans, and so publishes, before).
    pub(super) fn crosses_nodes(&self, send: &[(Target, bytes::Bytes)]) -> bool {
        self.bus.is_some()
            && send.iter().any(|(target, _)| match target {
                Target::Room | Target::RoomBut(_) => true,
                Target::One(conn) => self.across.stand_ins.contains_key(conn),
                _ => false,
            })
    }

    /// Publishes what the turn sends beyond this node (relays, replies to stand-ins) and
    /// returns the targets as they apply to this node's own connections.
    pub(super) fn send_across(&self, target: Target, frame: &[u8]) -> Option<Target> {
        let Some(bus) = &self.bus else {
            return Some(match target {
                Target::Room => Target::MeshClients,
                Target::RoomBut(asker) => Target::MeshClientsBut(asker),
                other => other,
            });
        };
        let node = bus.node();
        match target {
            Target::Room => {
                bus.publish_entry(
                    self.id,
                    BusEntry::Relay {
                        node,
                        skip: None,
                        frame: frame.to_vec(),
                    },
                );
                Some(Target::MeshClients)
            }
            Target::RoomBut(asker) => {
                bus.publish_entry(
                    self.id,
                    BusEntry::Relay {
                        node,
                        skip: self.across.remote(asker),
                        frame: frame.to_vec(),
                    },
                );
                Some(Target::MeshClientsBut(asker))
            }
            Target::One(conn) => match self.across.remote(conn) {
                Some(to) => {
                    bus.publish_entry(
                        self.id,
                        BusEntry::Reply {
                            node,
                            to,
                            frame: frame.to_vec(),
                        },
                    );
                    None
                }
                None => Some(target),
            },
            other => Some(other),
        }
    }

    /// A relayed frame from another node: for this node's mesh clients (but the asker, who
    /// got its own copy as a reply).
    pub(super) fn on_relay(&mut self, fx: &mut Effects, node: NodeId, skip: Option<RemoteConn>, frame: Vec<u8>) {
        self.across.learn(node, &frame);
        let me = self.bus.as_ref().map(|b| b.node());
        let target = match skip {
            Some(skip) if Some(skip.node) == me => Target::MeshClientsBut(skip.conn),
            _ => Target::MeshClients,
        };
        fx.to(target, frame);
    }

    /// A frame another node sends one of this node's connections.
    pub(super) fn on_reply(&mut self, fx: &mut Effects, to: RemoteConn, frame: Vec<u8>) {
        if self.bus.as_ref().is_some_and(|b| b.node() == to.node) && to.conn < STAND_IN_BASE {
            fx.to(Target::One(to.conn), frame);
        }
    }

    /// A request another node forwarded about a session this node holds: handled as the
    /// participant's own, through its stand-in, checked again here.
    pub(super) fn on_forward(&mut self, fx: &mut Effects, from: RemoteConn, role: Role, request: &[u8]) {
        let Ok(Request { id, message }) = serde_json::from_slice::<Request>(request) else {
            metrics::counter!("mesh_bus_bad_entries_total").increment(1);
            tracing::warn!(room = %self.id, "bus: a forwarded request does not parse; ignored");
            return;
        };
        let Some(conn) = self.across.stand_in(from, role) else {
            tracing::warn!(room = %self.id, "bus: too many remote participants; a forwarded request is refused");
            return;
        };
        match message {
            ClientMessage::Input { run_id, data, eof } => {
                if role.can_write() {
                    self.run_input(fx, conn, id, run_id, data, eof);
                } else {
                    let refusal = "readers may not type into a run".to_owned();
                    merge(fx, self.error_to(conn, id, ErrorCode::Forbidden, refusal));
                }
            }
            ClientMessage::Stop { run_id } => self.stop_run(fx, conn, id, run_id),
            ClientMessage::DebugStart { path, language } => {
                let files = self.core.file_texts();
                let req = DebugRequest::Start {
                    conn,
                    request: id,
                    role,
                    path,
                    language,
                    files,
                };
                self.on_debug_request(fx, req);
            }
            ClientMessage::Dap { debug_id, message } => {
                let req = DebugRequest::Dap {
                    conn,
                    request: id,
                    role,
                    debug_id,
                    message,
                };
                self.on_debug_request(fx, req);
            }
            _ => {
                metrics::counter!("mesh_bus_bad_entries_total").increment(1);
                tracing::warn!(room = %self.id, "bus: a forwarded request is not about a run or debug session; ignored");
            }
        }
    }

    /// Nodes silent for [`SILENCE_MS`] are gone (killed, cut off): their sessions end for
    /// this node's people, who are told so instead of waiting on a run nobody holds, and
    /// their people's stand-ins leave this node's debug session.
    pub(super) fn forget_silent_nodes(&mut self, fx: &mut Effects, now_ms: u64) {
        let silent: Vec<NodeId> = self
            .across
            .heard
            .iter()
            .filter(|(_, at)| now_ms.saturating_sub(**at) >= SILENCE_MS)
            .map(|(node, _)| *node)
            .collect();
        for node in silent {
            self.across.heard.remove(&node);
            tracing::warn!(room = %self.id, %node, "bus: a node that held sessions or people here went silent; forgetting them");
            let gone: Vec<(String, RemoteSession)> = self
                .across
                .sessions
                .iter()
                .filter(|(_, s)| s.node == node)
                .map(|(id, s)| (id.clone(), *s))
                .collect();
            let error = "the server running it stopped answering".to_owned();
            for (id, session) in gone {
                self.across.sessions.remove(&id);
                let exited = ServerMessage::RunExited {
                    run_id: id.clone(),
                    stage: "run".into(),
                    code: None,
                    duration_ms: 0,
                    limit: None,
                    error: Some(error.clone()),
                };
                fx.to(Target::MeshClients, mesh_protocol::encode_mesh(&exited));
                if session.debug {
                    let ended = ServerMessage::DebugEnded {
                        debug_id: id,
                        exit_code: None,
                        error: Some(error.clone()),
                    };
                    fx.to(Target::MeshClients, mesh_protocol::encode_mesh(&ended));
                }
            }
            self.across.joined.retain(|_, n| *n != node);
            let stand_ins: Vec<RemoteConn> = self
                .across
                .by_remote
                .keys()
                .filter(|r| r.node == node)
                .copied()
                .collect();
            for remote in stand_ins {
                self.on_left(fx, remote);
            }
        }
    }

    /// A remote participant that joined this node's debug session left.
    pub(super) fn on_left(&mut self, fx: &mut Effects, from: RemoteConn) {
        if let Some(conn) = self.across.by_remote.remove(&from) {
            self.across.stand_ins.remove(&conn);
            self.debug_leave(fx, conn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(msg: &ServerMessage) -> Vec<u8> {
        mesh_protocol::encode_mesh(msg)
    }

    #[test]
    fn sessions_are_learned_from_what_their_node_relays_and_forgotten_when_they_end() {
        let mut a = Across::default();
        let node = NodeId(7);
        a.learn(
            node,
            &frame(&ServerMessage::DebugStarted {
                debug_id: "d1".into(),
                path: "main.py".into(),
                language: "python".into(),
                by: 1,
            }),
        );
        // The debug session's run announcement does not make it "only a run".
        a.learn(
            node,
            &frame(&ServerMessage::RunStarted {
                run_id: "d1".into(),
                path: "main.py".into(),
                language: "python".into(),
                by: 1,
                responding_to: None,
            }),
        );
        assert!(a.sessions["d1"].debug);
        assert_eq!(a.sessions["d1"].node, node);
        a.learn(
            node,
            &frame(&ServerMessage::DebugEnded {
                debug_id: "d1".into(),
                exit_code: Some(0),
                error: None,
            }),
        );
        assert!(a.sessions.is_empty());
        // Garbage teaches nothing and breaks nothing.
        a.learn(node, b"\x00\x01garbage");
        assert!(a.sessions.is_empty());
    }

    #[test]
    fn a_remote_connection_keeps_one_stand_in_far_from_local_ids() {
        let mut a = Across::default();
        let remote = RemoteConn {
            node: NodeId(3),
            conn: 5,
        };
        let id = a.stand_in(remote, Role::Writer).unwrap();
        assert!(id >= STAND_IN_BASE);
        assert_eq!(a.stand_in(remote, Role::Host), Some(id));
        assert_eq!(a.stand_ins[&id].role, Role::Host, "the latest role its node checked");
        let other = a
            .stand_in(
                RemoteConn {
                    node: NodeId(4),
                    conn: 5,
                },
                Role::Reader,
            )
            .unwrap();
        assert_ne!(other, id, "the same connection id on another node is another person");
    }

    #[test]
    fn a_forged_stream_cannot_make_a_room_follow_sessions_without_bound() {
        let mut a = Across::default();
        for i in 0..MAX_REMOTE_SESSIONS + 10 {
            a.opened(format!("r{i}"), NodeId(1), false);
        }
        assert_eq!(a.sessions.len(), MAX_REMOTE_SESSIONS);
    }
}
