//! A member's mesh extension messages, sans-IO: `hello` (name, colour, client), chat, the
//! participant list, runs and debug requests (checked here, carried out by the room task),
//! host and ghost commands.

use mesh_protocol::codec::encode_mesh;
use mesh_protocol::messages::Role;
use mesh_protocol::{ClientMessage, ErrorCode, ServerMessage, PROTOCOL_VERSION};

use super::{clean_name, is_color, unique_name, ConnId, DebugRequest, Effects, HostOp, RoomCore, RunRequest, Target};

impl RoomCore {
    pub(super) fn handle_mesh(&mut self, id: ConnId, msg: ClientMessage, now_ms: u64, fx: &mut Effects) {
        match msg {
            ClientMessage::Hello {
                version,
                name,
                color,
                client,
                doc_client_id,
                companion,
            } => {
                let conn = self.conns.get_mut(&id).expect("checked by handle");
                conn.mesh = true;
                if version != PROTOCOL_VERSION {
                    let message = format!("this server speaks mesh protocol {PROTOCOL_VERSION}, the client speaks {version}: update the client or the server");
                    fx.error(conn, id, ErrorCode::UnsupportedVersion, message.clone());
                    fx.close.push((id, ErrorCode::UnsupportedVersion, message));
                    return;
                }
                let seat = conn.participant.seat.clone();
                // A signed-in person's name is the provider's: a hello cannot change it.
                let name = match conn.user.as_ref() {
                    Some(u) => u.name.clone(),
                    None => unique_name(&self.names_taken_by_others(&seat), clean_name(&name)),
                };
                let conn = self.conns.get_mut(&id).expect("checked by handle");
                let uid = conn.user.as_ref().map(|u| u.id.clone());
                let p = &mut conn.participant;
                p.name = name.clone();
                if let Some(c) = color.filter(|c| is_color(c)) {
                    p.color = c;
                }
                p.client = client.map(|c| clean_name(&c)).unwrap_or_else(|| "mesh".into());
                p.doc_client_id = doc_client_id;
                p.companion = companion;
                let (participant, role) = (p.clone(), p.role);
                self.access.rename_seat(&seat, &name);
                // Announced now (by this name), told to everyone after its welcome.
                self.mark_announced(id, now_ms);
                let welcome = ServerMessage::Welcome {
                    version: PROTOCOL_VERSION,
                    conn_id: id,
                    role,
                    participants: self.participants(),
                    seat: mesh_protocol::messages::SeatToken {
                        token: self.tokens.seat_token(&seat, uid.as_deref(), now_ms),
                        id: seat,
                    },
                    name,
                    approval: self.access.approval(),
                };
                fx.to(Target::One(id), encode_mesh(&welcome));
                // Its arrival, or a second hello's new name.
                self.people_version += 1;
                fx.to(
                    Target::MeshClients,
                    encode_mesh(&ServerMessage::ParticipantJoined { participant }),
                );
                if role == Role::Host {
                    self.pending_requests_to(id, fx);
                }
                self.ghost_states_to(id, fx);
            }
            ClientMessage::Chat { text } => self.chat(id, text, now_ms, fx),
            ClientMessage::ListParticipants => {
                let participants = self.participants();
                fx.to(
                    Target::One(id),
                    encode_mesh(&ServerMessage::Participants { participants }),
                );
            }
            ClientMessage::Ping { nonce } => fx.to(Target::One(id), encode_mesh(&ServerMessage::Pong { nonce })),
            ClientMessage::Run { path, language } => {
                let conn = &self.conns[&id];
                if !conn.participant.role.can_write() {
                    fx.error(
                        conn,
                        id,
                        ErrorCode::Forbidden,
                        "readers may watch runs but not start them".into(),
                    );
                    return;
                }
                let files = self.file_texts();
                if !files.iter().any(|(p, _)| *p == path) {
                    fx.error(conn, id, ErrorCode::NotFound, format!("no file {path:?} in this room"));
                    return;
                }
                let role = conn.participant.role;
                fx.runs.push(RunRequest {
                    conn: id,
                    request: fx.request,
                    role,
                    path,
                    language,
                    files,
                });
            }
            ClientMessage::Input { run_id, data, eof } => {
                let conn = &self.conns[&id];
                if !conn.participant.role.can_write() {
                    fx.error(conn, id, ErrorCode::Forbidden, "readers may not type into a run".into());
                    return;
                }
                fx.run_inputs.push((id, fx.request, run_id, data, eof));
            }
            ClientMessage::Stop { run_id } => fx.run_stops.push((id, fx.request, run_id)),
            ClientMessage::DebugStart { path, language } => {
                let role = self.conns[&id].participant.role;
                let files = self.file_texts();
                fx.debug.push(DebugRequest::Start {
                    conn: id,
                    request: fx.request,
                    role,
                    path,
                    language,
                    files,
                });
            }
            ClientMessage::Dap { debug_id, message } => {
                let role = self.conns[&id].participant.role;
                fx.debug.push(DebugRequest::Dap {
                    conn: id,
                    request: fx.request,
                    role,
                    debug_id,
                    message,
                });
            }
            ClientMessage::Auth { .. } => {
                let conn = &self.conns[&id];
                fx.error(
                    conn,
                    id,
                    ErrorCode::BadRequest,
                    "auth is accepted only as the first message of a connection that presented no token".into(),
                );
            }
            ClientMessage::SetRole { .. }
            | ClientMessage::Kick { .. }
            | ClientMessage::Admit { .. }
            | ClientMessage::Refuse { .. }
            | ClientMessage::SetApproval { .. }
            | ClientMessage::CreateLink { .. }
            | ClientMessage::ListLinks
            | ClientMessage::RevokeLink { .. }
            | ClientMessage::Audit { .. } => {
                let op = HostOp::from_message(msg).expect("a host message");
                self.host_message(id, op, now_ms, fx);
            }
            ClientMessage::Ghost { command } => self.ghost_command(id, command, fx),
            ClientMessage::GhostState { state } => self.ghost_state(id, state, fx),
        }
    }
}
