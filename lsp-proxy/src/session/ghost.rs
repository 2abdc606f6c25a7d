//! The ghosts' published state as the editor sees it (decision 013): the newest
//! `ghost_state` of each publishing connection, turned into `mesh/ghostState` with room paths
//! also given as the editor's URIs, and the editor's decisions (accept, reject, cancel, undo)
//! checked against our role before they become a typed `ghost` message. No sockets, no
//! clock: the session feeds it what the server said and sends what it returns.

use std::collections::BTreeMap;

use mesh_protocol::ghost::{GhostCommand, GhostState};
use mesh_protocol::messages::Role;

use crate::lsp_ext::{
    GhostDecisionParams, GhostEditView, GhostFile, GhostRequestView, GhostStateParams, GhostSuggestionView, GhostView,
};

/// The newest state of every connection that published one. The server bounds each state
/// (`GhostState::validate`) and the number of publishers per room, so this holds no more than
/// the server does.
#[derive(Debug, Default)]
pub(super) struct GhostBoard {
    states: BTreeMap<u64, GhostState>,
}

impl GhostBoard {
    /// `from` published `state`, which replaces its previous one. Returns whether anything
    /// changed (the ghost republishes unchanged states while it waits).
    pub(super) fn published(&mut self, from: u64, state: GhostState) -> bool {
        if self.states.get(&from) == Some(&state) {
            return false;
        }
        self.states.insert(from, state);
        true
    }

    /// Connection `conn_id` left: its state goes with it, as on the server. Returns whether
    /// it had one.
    pub(super) fn left(&mut self, conn_id: u64) -> bool {
        self.states.remove(&conn_id).is_some()
    }

    /// Forgets every state (we reconnected or left: the server sends the current ones to
    /// a joiner). Returns whether there was any.
    pub(super) fn clear(&mut self) -> bool {
        let had = !self.states.is_empty();
        self.states.clear();
        had
    }

    /// The `mesh/ghostState` params: each publisher under its name (`name` looks it up among
    /// the participants), each path also as a URI of the local folder when `uri` gives one.
    pub(super) fn params(
        &self,
        name: impl Fn(u64) -> Option<String>,
        uri: impl Fn(&str) -> Option<String>,
    ) -> GhostStateParams {
        let ghosts = self
            .states
            .iter()
            .map(|(&conn_id, state)| GhostView {
                conn_id,
                name: name(conn_id).unwrap_or_else(|| format!("connection {conn_id}")),
                requests: state
                    .requests
                    .iter()
                    .map(|r| GhostRequestView {
                        id: r.id,
                        asker: r.asker.clone(),
                        mode: r.mode,
                        text: r.text.clone(),
                        status: r.status,
                        received_chars: r.received_chars,
                        message: r.message.clone(),
                    })
                    .collect(),
                suggestions: state
                    .suggestions
                    .iter()
                    .map(|s| GhostSuggestionView {
                        id: s.id,
                        asker: s.asker.clone(),
                        files: s
                            .files
                            .iter()
                            .map(|p| GhostFile {
                                path: p.clone(),
                                uri: uri(p),
                            })
                            .collect(),
                        edits: s
                            .edits
                            .iter()
                            .map(|e| GhostEditView {
                                path: e.path.clone(),
                                uri: uri(&e.path),
                                search: e.search.clone(),
                                replace: e.replace.clone(),
                            })
                            .collect(),
                        omitted: s.omitted,
                    })
                    .collect(),
            })
            .collect();
        GhostStateParams { ghosts }
    }
}

impl super::Session {
    /// `mesh/ghostState` for what the ghosts published last, their names from the
    /// participants and their paths also as URIs of the shared folder.
    pub(super) fn ghost_state(&self) -> super::Effect {
        let participants = self.room.as_ref().map(|r| &r.participants);
        let params = self.ghosts.params(
            |conn| participants.and_then(|p| p.get(&conn)).map(|p| p.name.clone()),
            |path| self.local_uri(path),
        );
        super::notify::<crate::lsp_ext::GhostStateNotification>(params)
    }
}

/// The typed `ghost` command for an editor's decision, or why it cannot be sent: every
/// decision may change the room's files, so it needs a writer (the server checks again), and
/// accepting or rejecting names a suggestion some ghost has pending.
pub(super) fn decision(
    board: &GhostBoard,
    role: Option<Role>,
    params: GhostDecisionParams,
) -> Result<GhostCommand, String> {
    if !role.is_some_and(Role::can_write) {
        return Err(
            "only writers can accept, reject, cancel or undo the ghost's work; ask the host for write access".into(),
        );
    }
    if let GhostDecisionParams::Accept { suggestion } | GhostDecisionParams::Reject { suggestion } = params {
        let pending = board
            .states
            .values()
            .any(|s| s.suggestions.iter().any(|x| x.id == suggestion));
        if !pending {
            return Err(format!(
                "no ghost has suggestion #{suggestion} pending (it was accepted, rejected or dropped); see the current suggestions"
            ));
        }
    }
    Ok(params.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_protocol::ghost::{GhostEdit, GhostMode, GhostRequest, GhostRequestStatus, GhostSuggestion};
    use serde_json::json;

    fn state(suggestion: u64) -> GhostState {
        GhostState {
            requests: vec![GhostRequest {
                id: suggestion,
                asker: "Ada".into(),
                mode: GhostMode::Suggest,
                text: "fix add".into(),
                status: GhostRequestStatus::Done,
                received_chars: 42,
                message: None,
            }],
            suggestions: vec![GhostSuggestion {
                id: suggestion,
                asker: "Ada".into(),
                files: vec!["calc.py".into(), "new/x.py".into()],
                edits: vec![
                    GhostEdit {
                        path: "calc.py".into(),
                        search: "a - b".into(),
                        replace: "a + b".into(),
                    },
                    GhostEdit {
                        path: "new/x.py".into(),
                        search: String::new(),
                        replace: "x = 1\n".into(),
                    },
                ],
                omitted: false,
            }],
        }
    }

    fn local(path: &str) -> Option<String> {
        (path == "calc.py").then(|| format!("file:///w/{path}"))
    }

    #[test]
    fn the_editor_sees_each_publisher_under_its_name_with_paths_as_uris_in_camel_case() {
        let mut board = GhostBoard::default();
        assert!(board.published(9, state(3)));
        let params = board.params(|c| (c == 9).then(|| "ghost (m)".to_string()), local);
        assert_eq!(
            serde_json::to_value(&params).unwrap(),
            json!({"ghosts": [{
                "connId": 9, "name": "ghost (m)",
                "requests": [{"id": 3, "asker": "Ada", "mode": "suggest", "text": "fix add",
                              "status": "done", "receivedChars": 42}],
                "suggestions": [{"id": 3, "asker": "Ada",
                    "files": [{"path": "calc.py", "uri": "file:///w/calc.py"}, {"path": "new/x.py"}],
                    "edits": [
                        {"path": "calc.py", "uri": "file:///w/calc.py", "search": "a - b", "replace": "a + b"},
                        {"path": "new/x.py", "search": "", "replace": "x = 1\n"}]}]
            }]})
        );
        let unnamed = board.params(|_| None, local);
        assert_eq!(unnamed.ghosts[0].name, "connection 9");
    }

    #[test]
    fn a_new_state_replaces_the_old_one_and_an_unchanged_one_is_not_news() {
        let mut board = GhostBoard::default();
        assert!(board.published(9, state(3)));
        assert!(!board.published(9, state(3)), "the same state again changes nothing");
        assert!(board.published(9, GhostState::default()));
        let params = board.params(|_| None, local);
        assert_eq!(params.ghosts.len(), 1);
        assert!(params.ghosts[0].suggestions.is_empty());
    }

    #[test]
    fn a_state_goes_with_its_connection_and_with_a_reconnect() {
        let mut board = GhostBoard::default();
        board.published(9, state(3));
        board.published(11, state(4));
        assert!(!board.left(5), "someone without a state leaving is not news");
        assert!(board.left(9));
        assert_eq!(
            board
                .params(|_| None, local)
                .ghosts
                .iter()
                .map(|g| g.conn_id)
                .collect::<Vec<_>>(),
            vec![11]
        );
        assert!(board.clear());
        assert!(!board.clear());
        assert_eq!(board.params(|_| None, local), GhostStateParams::default());
    }

    #[test]
    fn readers_and_the_unwelcomed_cannot_decide_anything() {
        let mut board = GhostBoard::default();
        board.published(9, state(3));
        for role in [None, Some(Role::Reader)] {
            for d in [
                GhostDecisionParams::Accept { suggestion: 3 },
                GhostDecisionParams::Reject { suggestion: 3 },
                GhostDecisionParams::Cancel { request: None },
                GhostDecisionParams::Undo,
            ] {
                let err = decision(&board, role, d).unwrap_err();
                assert!(err.contains("only writers"), "{err}");
            }
        }
    }

    #[test]
    fn writers_decide_only_about_suggestions_that_are_pending() {
        let mut board = GhostBoard::default();
        board.published(9, state(3));
        assert_eq!(
            decision(
                &board,
                Some(Role::Writer),
                GhostDecisionParams::Accept { suggestion: 3 }
            ),
            Ok(GhostCommand::Accept { suggestion: 3 })
        );
        assert_eq!(
            decision(&board, Some(Role::Host), GhostDecisionParams::Reject { suggestion: 3 }),
            Ok(GhostCommand::Reject { suggestion: 3 })
        );
        let err = decision(
            &board,
            Some(Role::Writer),
            GhostDecisionParams::Accept { suggestion: 4 },
        )
        .unwrap_err();
        assert!(err.contains("#4"), "{err}");
        // Cancel and undo name no suggestion: the ghost knows what is going.
        assert_eq!(
            decision(
                &board,
                Some(Role::Writer),
                GhostDecisionParams::Cancel { request: Some(7) }
            ),
            Ok(GhostCommand::Cancel { request: Some(7) })
        );
        assert_eq!(
            decision(&board, Some(Role::Writer), GhostDecisionParams::Undo),
            Ok(GhostCommand::Undo)
        );
    }

    #[test]
    fn decisions_are_tagged_by_kind_and_unknown_fields_are_refused() {
        let d: GhostDecisionParams = serde_json::from_value(json!({"kind": "accept", "suggestion": 2})).unwrap();
        assert_eq!(d, GhostDecisionParams::Accept { suggestion: 2 });
        let d: GhostDecisionParams = serde_json::from_value(json!({"kind": "cancel"})).unwrap();
        assert_eq!(d, GhostDecisionParams::Cancel { request: None });
        assert!(serde_json::from_value::<GhostDecisionParams>(json!({"kind": "ask", "text": "x"})).is_err());
        assert!(
            serde_json::from_value::<GhostDecisionParams>(json!({"kind": "accept", "suggestion": 1, "x": 1})).is_err()
        );
    }
}
