//! What the ghost shows of itself, sans-IO: its recent requests with their progress and its
//! pending suggestions, as the protocol's [`GhostState`] that panels in the browser and the
//! editors draw. The state is republished whole after each change, so it must fit one mesh
//! message: request texts are cut and, when suggestions are too large, the oldest ones are
//! published without their edits (their full text is in chat).

use std::collections::VecDeque;

use mesh_protocol::ghost::{GhostEdit, GhostMode, GhostRequest, GhostRequestStatus, GhostState, GhostSuggestion};
use mesh_protocol::{ClientMessage, MAX_MESH_MESSAGE_BYTES};

use crate::edits::Edit;

/// How many requests the board lists: the going ones and the latest finished, enough for a
/// panel to show what just happened without growing.
pub const SHOWN_REQUESTS: usize = 10;

/// How much of a request's text the board echoes, in characters: enough to recognise it; the
/// whole text is in the `ghost` message everyone received.
pub const REQUEST_ECHO_CHARS: usize = 300;

/// How much of a failure message the board shows, in characters; chat has all of it.
pub const MESSAGE_CHARS: usize = 500;

/// Room left under the mesh message limit for the envelope and JSON escaping slack.
const ENVELOPE_BYTES: usize = 1024;

/// A suggestion as the ghost keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Its id (its request's number).
    pub id: u64,
    /// Who asked.
    pub asker: String,
    /// The edits, as read from the answer.
    pub edits: Vec<Edit>,
}

/// The requests the ghost shows.
#[derive(Debug, Default)]
pub struct Board {
    requests: VecDeque<GhostRequest>,
}

fn cut(text: &str, chars: usize) -> String {
    text.chars().take(chars).collect()
}

impl Board {
    /// Request `id` started.
    pub fn started(&mut self, id: u64, asker: &str, mode: GhostMode, text: &str) {
        self.requests.push_back(GhostRequest {
            id,
            asker: cut(asker, 200),
            mode,
            text: cut(text, REQUEST_ECHO_CHARS),
            status: GhostRequestStatus::Working,
            received_chars: 0,
            message: None,
        });
        // Finished requests make way first; going ones are at most the concurrency limit.
        while self.requests.len() > SHOWN_REQUESTS {
            match self
                .requests
                .iter()
                .position(|r| r.status != GhostRequestStatus::Working)
            {
                Some(i) => self.requests.remove(i),
                None => self.requests.pop_front(),
            };
        }
    }

    /// `chars` characters of request `id`'s answer have arrived.
    pub fn progress(&mut self, id: u64, chars: u64) {
        if let Some(r) = self.requests.iter_mut().find(|r| r.id == id) {
            r.received_chars = chars;
        }
    }

    /// Request `id` ended.
    pub fn finished(&mut self, id: u64, status: GhostRequestStatus, message: Option<&str>) {
        if let Some(r) = self.requests.iter_mut().find(|r| r.id == id) {
            if r.status == GhostRequestStatus::Working {
                r.status = status;
                r.message = message.map(|m| cut(m, MESSAGE_CHARS));
            }
        }
    }

    /// The state to publish, fitted into one mesh message.
    pub fn state(&self, pending: &[Pending]) -> GhostState {
        let mut state = GhostState {
            requests: self.requests.iter().cloned().collect(),
            suggestions: pending.iter().map(suggestion).collect(),
        };
        let budget = MAX_MESH_MESSAGE_BYTES - ENVELOPE_BYTES;
        let mut next = 0;
        while encoded_len(&state) > budget && next < state.suggestions.len() {
            let s = &mut state.suggestions[next];
            s.edits.clear();
            s.omitted = true;
            next += 1;
        }
        state
    }
}

fn encoded_len(state: &GhostState) -> usize {
    serde_json::to_vec(&ClientMessage::GhostState { state: state.clone() }).map_or(usize::MAX, |v| v.len())
}

/// A kept suggestion as the protocol shows it: each edit block's quoted and new text.
fn suggestion(p: &Pending) -> GhostSuggestion {
    let mut edits: Vec<GhostEdit> = Vec::new();
    for e in &p.edits {
        match e {
            Edit::Begin { path, search } => edits.push(GhostEdit {
                path: path.clone(),
                search: search.clone(),
                replace: String::new(),
            }),
            Edit::Text(t) => {
                if let Some(last) = edits.last_mut() {
                    last.replace.push_str(t);
                }
            }
            Edit::End => {}
        }
    }
    let mut files: Vec<String> = Vec::new();
    for e in &edits {
        if !files.contains(&e.path) {
            files.push(e.path.clone());
        }
    }
    let omitted = edits.len() > mesh_protocol::ghost::MAX_GHOST_EDITS;
    GhostSuggestion {
        id: p.id,
        asker: cut(&p.asker, 200),
        files: files.into_iter().take(mesh_protocol::ghost::MAX_GHOST_EDITS).collect(),
        edits: if omitted { Vec::new() } else { edits },
        omitted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(id: u64, replace: &str) -> Pending {
        Pending {
            id,
            asker: "ada".into(),
            edits: vec![
                Edit::Begin {
                    path: "calc.py".into(),
                    search: "a - b".into(),
                },
                Edit::Text(replace[..replace.len() / 2].into()),
                Edit::Text(replace[replace.len() / 2..].into()),
                Edit::End,
            ],
        }
    }

    #[test]
    fn a_suggestion_is_shown_as_whole_search_and_replace_texts_per_file() {
        let state = Board::default().state(&[pending(3, "a + b")]);
        assert_eq!(
            state.suggestions,
            [GhostSuggestion {
                id: 3,
                asker: "ada".into(),
                files: vec!["calc.py".into()],
                edits: vec![GhostEdit {
                    path: "calc.py".into(),
                    search: "a - b".into(),
                    replace: "a + b".into()
                }],
                omitted: false
            }]
        );
        assert_eq!(state.validate(), Ok(()));
    }

    #[test]
    fn requests_show_progress_then_how_they_ended_and_old_ones_make_way() {
        let mut board = Board::default();
        board.started(1, "ada", GhostMode::Write, &"x".repeat(1000));
        board.progress(1, 42);
        let r = &board.state(&[]).requests[0];
        assert_eq!(
            (r.status, r.received_chars, r.text.len()),
            (GhostRequestStatus::Working, 42, REQUEST_ECHO_CHARS)
        );
        board.finished(1, GhostRequestStatus::Failed, Some("the provider answered 500"));
        board.finished(1, GhostRequestStatus::Done, None);
        let r = &board.state(&[]).requests[0];
        assert_eq!(r.status, GhostRequestStatus::Failed, "the first ending stands");
        assert_eq!(r.message.as_deref(), Some("the provider answered 500"));
        for id in 2..=(SHOWN_REQUESTS as u64 + 5) {
            board.started(id, "ada", GhostMode::Explain, "q");
        }
        let ids: Vec<u64> = board.state(&[]).requests.iter().map(|r| r.id).collect();
        assert_eq!(ids.len(), SHOWN_REQUESTS);
        assert_eq!(*ids.last().unwrap(), SHOWN_REQUESTS as u64 + 5);
    }

    #[test]
    fn suggestions_too_large_for_one_message_are_published_without_their_edits_oldest_first() {
        let big = "y".repeat(40 * 1024);
        let state = Board::default().state(&[pending(1, &big), pending(2, &big), pending(3, "small")]);
        let omitted: Vec<bool> = state.suggestions.iter().map(|s| s.omitted).collect();
        assert_eq!(omitted, [true, false, false]);
        assert!(encoded_len(&state) <= MAX_MESH_MESSAGE_BYTES);
        assert_eq!(state.suggestions[0].files, ["calc.py"], "the files are still named");
    }
}
