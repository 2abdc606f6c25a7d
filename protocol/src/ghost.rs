//! The ghost's typed messages: what people ask an AI participant in the room (ask, accept,
//! reject, cancel, undo) and what the ghost publishes back (its requests' progress and its
//! pending suggestions). They ride in [`crate::ClientMessage::Ghost`] and
//! [`crate::ClientMessage::GhostState`]; the server checks the role and these bounds, then
//! relays them to every mesh client (decision 013, addendum).
//!
//! Every list and string here has a limit, checked by [`GhostCommand::validate`] and
//! [`GhostState::validate`] before the server relays or holds anything.

use serde::{Deserialize, Serialize};

use crate::messages::Role;
use crate::MAX_CHAT_BYTES;

/// The longest request text, in bytes: a request is a sentence or a paragraph, like a chat
/// message.
pub const MAX_GHOST_ASK_BYTES: usize = MAX_CHAT_BYTES;

/// The longest selection sent with a request, in bytes: a function or two; the ghost reads
/// the rest of the file from the room.
pub const MAX_GHOST_SELECTION_BYTES: usize = 16 * 1024;

/// The longest room path a ghost message may name, in bytes (as file creation allows).
pub const MAX_GHOST_PATH_BYTES: usize = 1024;

/// How many requests a ghost's published state lists at most: the ones going and the most
/// recent finished ones, enough for a panel to show what just happened.
pub const MAX_GHOST_REQUESTS: usize = 20;

/// How many suggestions may wait at once (older ones are dropped by the ghost), so a room
/// cannot make the ghost or the server hold unbounded text.
pub const MAX_GHOST_SUGGESTIONS: usize = 20;

/// How many edits one suggestion may carry: a change to a handful of functions.
pub const MAX_GHOST_EDITS: usize = 64;

/// The longest free-text field of a published state (a request's text echo, a failure
/// message), in bytes.
pub const MAX_GHOST_NOTE_BYTES: usize = MAX_CHAT_BYTES;

/// How many connections of one room may publish ghost state the server holds: a room has a
/// ghost or two, never dozens.
pub const MAX_GHOST_PUBLISHERS: usize = 4;

/// How the ghost should answer a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GhostMode {
    /// An answer in chat; the room's files are not touched. The only mode readers get.
    Explain,
    /// The answer in chat, and any change it proposes kept as a suggestion that changes
    /// nothing until a writer accepts it. The default for writers.
    Suggest,
    /// The change streams into the room's files as the model writes it; one undo removes it.
    /// Writers only.
    Write,
}

impl GhostMode {
    /// Whether asking in this mode may change the room's files (and so needs a writer).
    pub fn changes_files(self) -> bool {
        !matches!(self, GhostMode::Explain)
    }
}

/// The part of a file the asker has selected, sent with a request as context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GhostSelection {
    /// The room path of the file.
    pub path: String,
    /// The first selected line, 1-based.
    pub start_line: u32,
    /// The last selected line, 1-based, inclusive.
    pub end_line: u32,
    /// The selected text, when the client has it (at most [`MAX_GHOST_SELECTION_BYTES`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub text: String,
}

/// What a person asks the ghost to do. On the wire, the `command` field of a
/// `{"type": "ghost"}` message, tagged by `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum GhostCommand {
    /// Ask something. Readers may ask for explanations only.
    Ask {
        /// What is asked (at most [`MAX_GHOST_ASK_BYTES`]).
        text: String,
        /// How to answer. When absent the server fills in the asker's default: `suggest`
        /// for writers, `explain` for readers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<GhostMode>,
        /// The asker's selection, as context.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        selection: Option<GhostSelection>,
    },
    /// Apply a pending suggestion (writers only).
    Accept {
        /// The suggestion's id (its request's number).
        suggestion: u64,
    },
    /// Drop a pending suggestion (writers only).
    Reject {
        /// The suggestion's id.
        suggestion: u64,
    },
    /// Stop a request (writers only); the newest going one when absent.
    Cancel {
        /// The request's number.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<u64>,
    },
    /// Undo the ghost's newest change that is not undone yet (writers only).
    Undo,
}

impl GhostCommand {
    /// Whether only writers (and the host) may send this command as it stands. An `ask`
    /// without a mode is allowed to everyone: the server fills in the role's default.
    pub fn needs_writer(&self) -> bool {
        match self {
            GhostCommand::Ask { mode, .. } => mode.is_some_and(GhostMode::changes_files),
            _ => true,
        }
    }

    /// Checks the bounds of a command from outside: text sizes, a selection's lines and
    /// path. The error says which bound and what to do.
    pub fn validate(&self) -> Result<(), String> {
        if let GhostCommand::Ask { text, selection, .. } = self {
            if text.trim().is_empty() || text.len() > MAX_GHOST_ASK_BYTES {
                return Err(format!(
                    "a ghost request must be 1 to {MAX_GHOST_ASK_BYTES} bytes of text, not {}; say what the ghost should do",
                    text.len()
                ));
            }
            if let Some(s) = selection {
                check_path(&s.path)?;
                if s.start_line == 0 || s.end_line < s.start_line {
                    return Err(format!(
                        "a selection's lines are 1-based and in order, not {}-{}",
                        s.start_line, s.end_line
                    ));
                }
                if s.text.len() > MAX_GHOST_SELECTION_BYTES {
                    return Err(format!(
                        "a selection sent to the ghost may be at most {MAX_GHOST_SELECTION_BYTES} bytes, not {}; select less (the ghost reads the whole file from the room)",
                        s.text.len()
                    ));
                }
            }
        }
        Ok(())
    }
}

fn check_path(path: &str) -> Result<(), String> {
    if path.is_empty() || path.len() > MAX_GHOST_PATH_BYTES || path.contains('\0') {
        return Err(format!(
            "a path must be 1 to {MAX_GHOST_PATH_BYTES} bytes without NUL, not {} bytes",
            path.len()
        ));
    }
    Ok(())
}

fn check_note(what: &str, text: &str) -> Result<(), String> {
    if text.len() > MAX_GHOST_NOTE_BYTES {
        return Err(format!(
            "a ghost {what} may be at most {MAX_GHOST_NOTE_BYTES} bytes, not {}",
            text.len()
        ));
    }
    Ok(())
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GhostRequestStatus {
    /// The ghost is asking the model, or typing its answer.
    Working,
    /// Answered (in chat, as a suggestion, or typed into the files).
    Done,
    /// It failed; `message` says why. Nothing was changed.
    Failed,
    /// Someone cancelled it; nothing was changed.
    Cancelled,
}

/// One request, as the ghost publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GhostRequest {
    /// Its number in the room.
    pub id: u64,
    /// Who asked (display name).
    pub asker: String,
    /// How it is answered.
    pub mode: GhostMode,
    /// What was asked (cut to [`MAX_GHOST_NOTE_BYTES`]).
    pub text: String,
    /// Where it stands.
    pub status: GhostRequestStatus,
    /// How many characters of the answer have arrived so far: the progress people see.
    #[serde(default)]
    pub received_chars: u64,
    /// Why it failed, or who cancelled it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One proposed edit: replace the quoted text of a file with new text. An empty `search`
/// on a path that does not exist yet creates the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GhostEdit {
    /// The room path.
    pub path: String,
    /// The text replaced (exactly as it is in the file).
    pub search: String,
    /// The text put in its place.
    pub replace: String,
}

/// A change waiting for a writer to accept or reject it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GhostSuggestion {
    /// Its id (the number of the request that proposed it).
    pub id: u64,
    /// Who asked for it.
    pub asker: String,
    /// The files it changes.
    pub files: Vec<String>,
    /// The edits; empty when `omitted`.
    pub edits: Vec<GhostEdit>,
    /// The edits were too large to publish; the full answer is in chat.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub omitted: bool,
}

/// Everything a ghost shows of itself: its recent requests and its pending suggestions.
/// Each publication replaces the previous one from the same connection.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GhostState {
    /// Requests going and recently finished, oldest first.
    pub requests: Vec<GhostRequest>,
    /// Suggestions waiting, oldest first.
    pub suggestions: Vec<GhostSuggestion>,
}

impl GhostState {
    /// Checks the bounds of a published state (its total size is already bounded by the
    /// mesh message limit): list lengths, paths and notes.
    pub fn validate(&self) -> Result<(), String> {
        if self.requests.len() > MAX_GHOST_REQUESTS {
            return Err(format!(
                "a ghost state may list at most {MAX_GHOST_REQUESTS} requests, not {}; drop the oldest finished ones",
                self.requests.len()
            ));
        }
        if self.suggestions.len() > MAX_GHOST_SUGGESTIONS {
            return Err(format!(
                "a ghost state may list at most {MAX_GHOST_SUGGESTIONS} suggestions, not {}; drop the oldest",
                self.suggestions.len()
            ));
        }
        for r in &self.requests {
            check_note("request text", &r.text)?;
            check_note("request message", r.message.as_deref().unwrap_or(""))?;
            check_note("asker name", &r.asker)?;
        }
        for s in &self.suggestions {
            check_note("asker name", &s.asker)?;
            if s.edits.len() > MAX_GHOST_EDITS || s.files.len() > MAX_GHOST_EDITS {
                return Err(format!(
                    "a suggestion may carry at most {MAX_GHOST_EDITS} edits and files, not {}",
                    s.edits.len().max(s.files.len())
                ));
            }
            for f in &s.files {
                check_path(f)?;
            }
            for e in &s.edits {
                check_path(&e.path)?;
            }
        }
        Ok(())
    }
}

/// The mode an `ask` gets when it names none: what the role may have.
pub fn default_mode(role: Role) -> GhostMode {
    if role.can_write() {
        GhostMode::Suggest
    } else {
        GhostMode::Explain
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn commands_are_tagged_by_kind_and_unknown_fields_are_refused() {
        let ask: GhostCommand = serde_json::from_value(json!({"kind": "ask", "text": "fix f",
            "selection": {"path": "a.py", "start_line": 2, "end_line": 3, "text": "x"}}))
        .unwrap();
        assert_eq!(
            ask,
            GhostCommand::Ask {
                text: "fix f".into(),
                mode: None,
                selection: Some(GhostSelection {
                    path: "a.py".into(),
                    start_line: 2,
                    end_line: 3,
                    text: "x".into()
                })
            }
        );
        assert_eq!(
            serde_json::to_value(GhostCommand::Cancel { request: None }).unwrap(),
            json!({"kind": "cancel"})
        );
        assert_eq!(
            serde_json::to_value(GhostCommand::Undo).unwrap(),
            json!({"kind": "undo"})
        );
        for bad in [
            json!({"kind": "ask", "text": "x", "extra": 1}),
            json!({"kind": "accept"}),
            json!({"kind": "launch"}),
            json!({"kind": "ask", "text": "x", "mode": "delete"}),
        ] {
            assert!(serde_json::from_value::<GhostCommand>(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_asking_to_explain_or_for_the_default_is_open_to_readers() {
        let ask = |mode| GhostCommand::Ask {
            text: "x".into(),
            mode,
            selection: None,
        };
        assert!(!ask(None).needs_writer());
        assert!(!ask(Some(GhostMode::Explain)).needs_writer());
        assert!(ask(Some(GhostMode::Suggest)).needs_writer());
        assert!(ask(Some(GhostMode::Write)).needs_writer());
        assert!(GhostCommand::Accept { suggestion: 1 }.needs_writer());
        assert!(GhostCommand::Reject { suggestion: 1 }.needs_writer());
        assert!(GhostCommand::Cancel { request: None }.needs_writer());
        assert!(GhostCommand::Undo.needs_writer());
        assert_eq!(default_mode(Role::Reader), GhostMode::Explain);
        assert_eq!(default_mode(Role::Host), GhostMode::Suggest);
    }

    #[test]
    fn oversized_or_malformed_asks_are_refused_with_the_bound_named() {
        let ask = |text: String, selection| GhostCommand::Ask {
            text,
            mode: None,
            selection,
        };
        assert!(ask(" ".into(), None)
            .validate()
            .unwrap_err()
            .contains("1 to 4096 bytes"));
        assert!(ask("x".repeat(MAX_GHOST_ASK_BYTES + 1), None).validate().is_err());
        assert!(ask("x".repeat(MAX_GHOST_ASK_BYTES), None).validate().is_ok());
        let sel = |start, end, text: &str| {
            Some(GhostSelection {
                path: "a.py".into(),
                start_line: start,
                end_line: end,
                text: text.into(),
            })
        };
        assert!(ask("x".into(), sel(0, 1, ""))
            .validate()
            .unwrap_err()
            .contains("1-based"));
        assert!(ask("x".into(), sel(3, 2, "")).validate().is_err());
        let big = "y".repeat(MAX_GHOST_SELECTION_BYTES + 1);
        assert!(ask("x".into(), sel(1, 2, &big))
            .validate()
            .unwrap_err()
            .contains("select less"));
        let mut no_path = sel(1, 1, "");
        no_path.as_mut().unwrap().path.clear();
        assert!(ask("x".into(), no_path).validate().is_err());
    }

    #[test]
    fn a_published_state_is_bounded_in_every_list() {
        let request = GhostRequest {
            id: 1,
            asker: "ada".into(),
            mode: GhostMode::Suggest,
            text: "fix".into(),
            status: GhostRequestStatus::Working,
            received_chars: 12,
            message: None,
        };
        let suggestion = GhostSuggestion {
            id: 1,
            asker: "ada".into(),
            files: vec!["a.py".into()],
            edits: vec![GhostEdit {
                path: "a.py".into(),
                search: "a".into(),
                replace: "b".into(),
            }],
            omitted: false,
        };
        let state = GhostState {
            requests: vec![request.clone()],
            suggestions: vec![suggestion.clone()],
        };
        assert_eq!(state.validate(), Ok(()));
        let round: GhostState = serde_json::from_value(serde_json::to_value(&state).unwrap()).unwrap();
        assert_eq!(round, state);
        let too_many = GhostState {
            requests: vec![request; MAX_GHOST_REQUESTS + 1],
            suggestions: vec![],
        };
        assert!(too_many.validate().unwrap_err().contains("at most 20 requests"));
        let too_many = GhostState {
            requests: vec![],
            suggestions: vec![suggestion.clone(); MAX_GHOST_SUGGESTIONS + 1],
        };
        assert!(too_many.validate().is_err());
        let mut edits = suggestion.clone();
        edits.edits = vec![edits.edits[0].clone(); MAX_GHOST_EDITS + 1];
        let state = GhostState {
            requests: vec![],
            suggestions: vec![edits],
        };
        assert!(state.validate().unwrap_err().contains("at most 64 edits"));
    }
}
