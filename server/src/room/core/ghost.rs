//! The ghost's typed messages inside the sans-IO room (decision 013, addendum): who may
//! command the ghost, the bounds of what it publishes, and the states the room holds for
//! joiners. The ghost itself is a participant like any other; the room only checks and
//! relays, so a ghost's policy (limits, modes) stays in the ghost.

use mesh_protocol::codec::encode_mesh;
use mesh_protocol::ghost::{default_mode, GhostCommand, GhostState, MAX_GHOST_PUBLISHERS};
use mesh_protocol::{ErrorCode, ServerMessage};

use super::{ConnId, Effects, RoomCore, Target};

impl RoomCore {
    /// A command for the ghost: refused unless the sender's role allows it and it is within
    /// bounds; otherwise relayed to every mesh client with the sender's name and role, an
    /// `ask` with its mode filled in.
    pub(super) fn ghost_command(&mut self, id: ConnId, command: GhostCommand, fx: &mut Effects) {
        let conn = &self.conns[&id];
        let role = conn.participant.role;
        if command.needs_writer() && !role.can_write() {
            let message = match command {
                GhostCommand::Ask { .. } => "readers may ask the ghost for explanations only (mode \"explain\"); ask the host for write access to have it change files",
                _ => "only writers may accept, reject, cancel or undo the ghost's work; ask the host for write access",
            };
            fx.error(conn, id, ErrorCode::Forbidden, message.into());
            return;
        }
        if let Err(message) = command.validate() {
            fx.error(conn, id, ErrorCode::BadRequest, message);
            return;
        }
        let command = match command {
            GhostCommand::Ask { text, mode, selection } => GhostCommand::Ask {
                text,
                mode: Some(mode.unwrap_or(default_mode(role))),
                selection,
            },
            other => other,
        };
        let name = conn.participant.name.clone();
        fx.announce(id, fx.request, |responding_to| ServerMessage::Ghost {
            from: id,
            name: name.clone(),
            role,
            command: command.clone(),
            responding_to,
        });
    }

    /// A ghost's published state: checked, kept as this connection's newest (a room holds
    /// at most [`MAX_GHOST_PUBLISHERS`]), and relayed to every mesh client.
    pub(super) fn ghost_state(&mut self, id: ConnId, state: GhostState, fx: &mut Effects) {
        let conn = &self.conns[&id];
        if let Err(message) = state.validate() {
            fx.error(conn, id, ErrorCode::BadRequest, message);
            return;
        }
        if !self.ghosts.contains_key(&id) && self.ghosts.len() >= MAX_GHOST_PUBLISHERS {
            let message = format!(
                "this room already holds the state of {MAX_GHOST_PUBLISHERS} ghosts (the limit); stop one before starting another"
            );
            fx.error(conn, id, ErrorCode::TooLarge, message);
            return;
        }
        let frame = encode_mesh(&ServerMessage::GhostState {
            from: id,
            state: state.clone(),
        });
        self.ghosts.insert(id, state);
        fx.to(Target::MeshClients, frame);
    }

    /// Sends a joiner the ghosts' states the room holds (after its welcome).
    pub(super) fn ghost_states_to(&self, id: ConnId, fx: &mut Effects) {
        for (&from, state) in &self.ghosts {
            if from != id {
                fx.to(
                    Target::One(id),
                    encode_mesh(&ServerMessage::GhostState {
                        from,
                        state: state.clone(),
                    }),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use mesh_protocol::codec::{decode_frame, Frame};
    use mesh_protocol::ghost::{GhostMode, GhostRequest, GhostRequestStatus};
    use mesh_protocol::messages::Role;
    use mesh_protocol::{ClientMessage, Request, PROTOCOL_VERSION};

    use super::*;

    fn hello(core: &mut RoomCore, id: ConnId, role: Role, name: &str) {
        core.join_as(id, role, 0);
        let hello = ClientMessage::Hello {
            version: PROTOCOL_VERSION,
            name: name.into(),
            color: None,
            client: None,
            doc_client_id: None,
            companion: false,
        };
        core.handle(id, Frame::Mesh(Request::from(hello)), 0);
    }

    fn sent(fx: &Effects) -> Vec<(Target, ServerMessage)> {
        fx.send
            .iter()
            .flat_map(|(t, f)| {
                decode_frame::<ServerMessage>(f)
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(move |m| match m {
                        Frame::Mesh(m) => Some((t.clone(), m)),
                        Frame::Yjs(_) => None,
                    })
            })
            .collect()
    }

    fn send(core: &mut RoomCore, id: ConnId, message: ClientMessage) -> Vec<(Target, ServerMessage)> {
        sent(&core.handle(id, Frame::Mesh(Request::new(7, message)), 0))
    }

    fn ask(mode: Option<GhostMode>) -> ClientMessage {
        ClientMessage::Ghost {
            command: GhostCommand::Ask {
                text: "why?".into(),
                mode,
                selection: None,
            },
        }
    }

    fn refused(out: &[(Target, ServerMessage)]) -> Option<(ErrorCode, String)> {
        match out {
            [(
                Target::One(_),
                ServerMessage::Error {
                    code,
                    message,
                    responding_to: Some(7),
                },
            )] => Some((*code, message.clone())),
            _ => None,
        }
    }

    fn state(requests: usize) -> GhostState {
        GhostState {
            requests: (0..requests as u64)
                .map(|id| GhostRequest {
                    id,
                    asker: "ada".into(),
                    mode: GhostMode::Suggest,
                    text: "fix".into(),
                    status: GhostRequestStatus::Working,
                    received_chars: 0,
                    message: None,
                })
                .collect(),
            suggestions: vec![],
        }
    }

    #[test]
    fn a_readers_ask_becomes_an_explanation_and_a_writers_a_suggestion_relayed_to_all() {
        let (mut core, _) = RoomCore::load(None, &[]);
        hello(&mut core, 1, Role::Writer, "ada");
        hello(&mut core, 2, Role::Reader, "rob");
        let out = send(&mut core, 2, ask(None));
        let modes: Vec<_> = out
            .iter()
            .map(|(t, m)| match m {
                ServerMessage::Ghost {
                    from: 2,
                    name,
                    role: Role::Reader,
                    command: GhostCommand::Ask { mode, .. },
                    responding_to,
                } if name == "rob" => (t.clone(), *mode, *responding_to),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            modes,
            [
                (Target::MeshClientsBut(2), Some(GhostMode::Explain), None),
                (Target::One(2), Some(GhostMode::Explain), Some(7)),
            ]
        );
        let out = send(&mut core, 1, ask(None));
        assert!(
            matches!(
                &out[0].1,
                ServerMessage::Ghost {
                    command: GhostCommand::Ask {
                        mode: Some(GhostMode::Suggest),
                        ..
                    },
                    ..
                }
            ),
            "{out:?}"
        );
    }

    #[test]
    fn a_reader_cannot_make_it_write_accept_reject_cancel_or_undo() {
        let (mut core, _) = RoomCore::load(None, &[]);
        hello(&mut core, 2, Role::Reader, "rob");
        for command in [
            GhostCommand::Ask {
                text: "x".into(),
                mode: Some(GhostMode::Write),
                selection: None,
            },
            GhostCommand::Ask {
                text: "x".into(),
                mode: Some(GhostMode::Suggest),
                selection: None,
            },
            GhostCommand::Accept { suggestion: 1 },
            GhostCommand::Reject { suggestion: 1 },
            GhostCommand::Cancel { request: None },
            GhostCommand::Undo,
        ] {
            let out = send(
                &mut core,
                2,
                ClientMessage::Ghost {
                    command: command.clone(),
                },
            );
            let (code, message) = refused(&out).unwrap_or_else(|| panic!("{command:?} was not refused: {out:?}"));
            assert_eq!(code, ErrorCode::Forbidden);
            assert!(message.contains("write access"), "{message}");
        }
        let (code, _) = refused(&send(&mut core, 2, ask(Some(GhostMode::Explain))))
            .map_or((ErrorCode::Internal, String::new()), |r| r);
        assert_ne!(code, ErrorCode::Forbidden, "an explanation is open to readers");
    }

    #[test]
    fn an_oversized_ask_is_refused_with_the_bound_named() {
        let (mut core, _) = RoomCore::load(None, &[]);
        hello(&mut core, 1, Role::Writer, "ada");
        let big = ClientMessage::Ghost {
            command: GhostCommand::Ask {
                text: "x".repeat(mesh_protocol::ghost::MAX_GHOST_ASK_BYTES + 1),
                mode: None,
                selection: None,
            },
        };
        let (code, message) = refused(&send(&mut core, 1, big)).unwrap();
        assert_eq!(code, ErrorCode::BadRequest);
        assert!(message.contains("1 to 4096 bytes"), "{message}");
    }

    #[test]
    fn published_states_are_bounded_kept_for_joiners_and_dropped_with_their_connection() {
        let (mut core, _) = RoomCore::load(None, &[]);
        hello(&mut core, 1, Role::Reader, "ghost");
        let out = send(&mut core, 1, ClientMessage::GhostState { state: state(1) });
        assert!(
            matches!(
                &out[..],
                [(Target::MeshClients, ServerMessage::GhostState { from: 1, .. })]
            ),
            "{out:?}"
        );
        let too_big = send(&mut core, 1, ClientMessage::GhostState { state: state(21) });
        assert_eq!(refused(&too_big).unwrap().0, ErrorCode::BadRequest);
        for id in 2..=MAX_GHOST_PUBLISHERS as u64 {
            hello(&mut core, id, Role::Reader, "g");
            send(&mut core, id, ClientMessage::GhostState { state: state(0) });
        }
        hello(&mut core, 9, Role::Writer, "many");
        let (code, message) = refused(&send(&mut core, 9, ClientMessage::GhostState { state: state(0) })).unwrap();
        assert_eq!(code, ErrorCode::TooLarge);
        assert!(message.contains("4 ghosts"), "{message}");

        core.join_as(10, Role::Writer, 0);
        let hello10 = ClientMessage::Hello {
            version: PROTOCOL_VERSION,
            name: "late".into(),
            color: None,
            client: None,
            doc_client_id: None,
            companion: false,
        };
        let out = sent(&core.handle(10, Frame::Mesh(Request::from(hello10)), 0));
        let held: Vec<u64> = out
            .iter()
            .filter_map(|(t, m)| match (t, m) {
                (Target::One(10), ServerMessage::GhostState { from, state }) => {
                    assert!(*from != 1 || state.requests.len() == 1, "the newest valid state");
                    Some(*from)
                }
                _ => None,
            })
            .collect();
        assert_eq!(held, [1, 2, 3, 4]);
        core.leave(1, 0);
        let out = sent(&core.handle(
            9,
            Frame::Mesh(Request::from(ClientMessage::GhostState { state: state(0) })),
            0,
        ));
        assert!(
            matches!(
                &out[..],
                [(Target::MeshClients, ServerMessage::GhostState { from: 9, .. })]
            ),
            "a left ghost frees its place: {out:?}"
        );
    }
}
