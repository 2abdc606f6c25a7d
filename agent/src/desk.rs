//! The ghost's request desk, sans-IO: which chat messages are requests, who may ask for what,
//! who may cancel, and the room's limits. No sockets, no clock: the time comes in as an
//! argument and what to do comes out as [`Action`]s.
//!
//! A request is a chat message that starts with `@ghost`. `@ghost cancel` (or
//! `@ghost cancel N`) stops a request; any writer may cancel anyone's request, because a
//! request changes (or will change) the room everyone shares.

use mesh_protocol::ghost::{GhostCommand, GhostSelection};
use mesh_protocol::messages::Role;

use crate::config::{Limits, REQUEST_WINDOW};

/// The word that addresses the ghost in chat.
pub const MENTION: &str = "@ghost";

/// The longest request text kept: a request is a sentence or a paragraph, and it is sent to
/// the provider with every answer.
pub const MAX_PROMPT_CHARS: usize = 2000;

/// What the asker wants done: explain (readers' only mode), suggest (writers' default) or
/// write. The protocol's type, so typed requests and chat commands mean the same.
pub use mesh_protocol::ghost::GhostMode as Mode;

/// A parsed chat command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Ask the ghost something.
    Ask {
        /// What was asked.
        prompt: String,
        /// How it should answer.
        mode: Mode,
    },
    /// Stop a request (the newest going one when no number is given).
    Cancel(Option<u64>),
    /// Undo the ghost's newest change that is not undone yet.
    Undo,
    /// Apply suggestion N.
    Accept(u64),
    /// Drop suggestion N.
    Reject(u64),
}

/// Reads a chat message: `None` when it is not addressed to the ghost.
pub fn parse(text: &str) -> Option<Command> {
    let rest = text.trim_start().strip_prefix(MENTION)?;
    // `@ghostly` is someone else's word, not a mention.
    if rest
        .chars()
        .next()
        .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-')
    {
        return None;
    }
    let rest = rest.trim_start_matches([',', ':']).trim();
    let (word, tail) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    match word.to_ascii_lowercase().as_str() {
        "cancel" | "stop" => {
            let n = tail.trim().trim_start_matches('#');
            Some(Command::Cancel(n.parse().ok()))
        }
        "explain" => Some(Command::Ask {
            prompt: truncate(tail.trim()),
            mode: Mode::Explain,
        }),
        "write" => Some(Command::Ask {
            prompt: truncate(tail.trim()),
            mode: Mode::Write,
        }),
        "suggest" => Some(Command::Ask {
            prompt: truncate(tail.trim()),
            mode: Mode::Suggest,
        }),
        "undo" => Some(Command::Undo),
        "accept" | "reject" => {
            let n: u64 = tail.trim().trim_start_matches('#').parse().ok()?;
            Some(if word.eq_ignore_ascii_case("accept") {
                Command::Accept(n)
            } else {
                Command::Reject(n)
            })
        }
        // Anything else is a request in the default mode: a suggestion (readers get an
        // explanation, see `Desk::on_chat`).
        _ => Some(Command::Ask {
            prompt: truncate(rest),
            mode: Mode::Suggest,
        }),
    }
}

/// Whether a request names its mode (`@ghost suggest ...`) rather than taking the default.
fn names_a_mode(text: &str) -> bool {
    let rest = text.trim_start().strip_prefix(MENTION).unwrap_or("");
    let word = rest
        .trim_start_matches([',', ':'])
        .split_whitespace()
        .next()
        .unwrap_or("");
    ["suggest", "write", "explain"].contains(&word.to_ascii_lowercase().as_str())
}

fn truncate(text: &str) -> String {
    text.chars().take(MAX_PROMPT_CHARS).collect()
}

/// Who wrote a chat message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asker {
    /// Their display name.
    pub name: String,
    /// Their connection.
    pub conn_id: u64,
    /// Their role now (`None`: not in the participant list, e.g. already gone).
    pub role: Option<Role>,
}

/// What the ghost should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Post this in chat.
    Say(String),
    /// Start request `id`.
    Start {
        /// The request's number in this room.
        id: u64,
        /// What was asked.
        prompt: String,
        /// How to answer.
        mode: Mode,
        /// Who asked.
        asker: String,
        /// The asker's selection, when the request came from an editor or the panel.
        selection: Option<GhostSelection>,
    },
    /// Stop request `id`.
    Cancel(u64),
    /// Apply suggestion `id` (accepted by `by`).
    Accept {
        /// The suggestion (its request's number).
        id: u64,
        /// Who accepted it.
        by: String,
    },
    /// Drop suggestion `id` (rejected by `by`).
    Reject {
        /// The suggestion.
        id: u64,
        /// Who rejected it.
        by: String,
    },
    /// Undo the ghost's newest change (asked by `by`).
    Undo {
        /// Who asked for the undo.
        by: String,
    },
}

#[derive(Debug)]
struct Going {
    id: u64,
}

/// One room's requests.
#[derive(Debug)]
pub struct Desk {
    limits: Limits,
    /// The ghost's own role in the room: it cannot write with a read link.
    own_role: Role,
    next_id: u64,
    going: Vec<Going>,
    window_start_ms: u64,
    in_window: u32,
}

impl Desk {
    /// A desk with no requests yet.
    pub fn new(limits: Limits) -> Desk {
        Desk {
            limits,
            own_role: Role::Reader,
            next_id: 1,
            going: Vec::new(),
            window_start_ms: 0,
            in_window: 0,
        }
    }

    /// The ghost's own role (from `welcome` and `role_changed`).
    pub fn set_own_role(&mut self, role: Role) {
        self.own_role = role;
    }

    /// Requests going now.
    pub fn going(&self) -> usize {
        self.going.len()
    }

    /// A chat message arrived at `now_ms`.
    pub fn on_chat(&mut self, asker: &Asker, text: &str, now_ms: u64) -> Vec<Action> {
        let Some(command) = parse(text) else {
            return Vec::new();
        };
        self.on_command(asker, command, names_a_mode(text), None, now_ms)
    }

    /// A typed command (`ghost` message) arrived at `now_ms`. The server already refused
    /// what the asker's role does not allow; the desk checks again, as for chat, so the
    /// policy holds whichever way a request comes.
    pub fn on_typed(&mut self, asker: &Asker, command: GhostCommand, now_ms: u64) -> Vec<Action> {
        let (command, named, selection) = match command {
            GhostCommand::Ask { text, mode, selection } => (
                Command::Ask {
                    prompt: truncate(text.trim()),
                    mode: mode.unwrap_or(Mode::Suggest),
                },
                mode.is_some(),
                selection,
            ),
            GhostCommand::Accept { suggestion } => (Command::Accept(suggestion), false, None),
            GhostCommand::Reject { suggestion } => (Command::Reject(suggestion), false, None),
            GhostCommand::Cancel { request } => (Command::Cancel(request), false, None),
            GhostCommand::Undo => (Command::Undo, false, None),
        };
        self.on_command(asker, command, named, selection, now_ms)
    }

    fn on_command(
        &mut self,
        asker: &Asker,
        command: Command,
        names_mode: bool,
        selection: Option<GhostSelection>,
        now_ms: u64,
    ) -> Vec<Action> {
        let Some(role) = asker.role else {
            return Vec::new();
        };
        match command {
            Command::Cancel(which) => self.cancel(asker, role, which),
            Command::Undo if !role.can_write() => vec![Action::Say(format!(
                "{}: only writers can undo the ghost's changes (you are a reader).",
                asker.name
            ))],
            Command::Undo => vec![Action::Undo {
                by: asker.name.clone(),
            }],
            Command::Accept(_) | Command::Reject(_) if !role.can_write() => vec![Action::Say(format!(
                "{}: only writers can accept or reject suggestions (you are a reader).",
                asker.name
            ))],
            Command::Accept(_) if !self.own_role.can_write() => vec![Action::Say(format!(
                "{}: the ghost joined with a read link, so it cannot apply suggestions; restart it with a writer link.",
                asker.name
            ))],
            Command::Accept(id) => vec![Action::Accept {
                id,
                by: asker.name.clone(),
            }],
            Command::Reject(id) => vec![Action::Reject {
                id,
                by: asker.name.clone(),
            }],
            // A reader's plain request is a question: answered, never a proposed change.
            Command::Ask {
                prompt,
                mode: Mode::Suggest,
            } if !role.can_write() && !names_mode => self.ask(asker, prompt, Mode::Explain, selection, now_ms),
            Command::Ask {
                mode: Mode::Write | Mode::Suggest,
                ..
            } if !role.can_write() => vec![Action::Say(format!(
                "{}: readers can ask for explanations only (\"@ghost explain ...\"); ask the host for write access to have the ghost change files.",
                asker.name
            ))],
            Command::Ask { mode: Mode::Write, .. } if !self.own_role.can_write() => vec![Action::Say(format!(
                "{}: the ghost joined with a read link, so it can only explain; restart it with a writer link to let it change files.",
                asker.name
            ))],
            Command::Ask { prompt, mode } => self.ask(asker, prompt, mode, selection, now_ms),
        }
    }

    fn cancel(&mut self, asker: &Asker, role: Role, which: Option<u64>) -> Vec<Action> {
        if !role.can_write() {
            return vec![Action::Say(format!(
                "{}: only writers can cancel a request (you are a reader).",
                asker.name
            ))];
        }
        let id = match which {
            Some(id) => id,
            None => match self.going.last() {
                Some(g) => g.id,
                None => return vec![Action::Say(format!("{}: no request is going.", asker.name))],
            },
        };
        if !self.going.iter().any(|g| g.id == id) {
            return vec![Action::Say(format!("{}: request #{id} is not going.", asker.name))];
        }
        self.going.retain(|g| g.id != id);
        vec![
            Action::Cancel(id),
            Action::Say(format!("Request #{id} cancelled by {}.", asker.name)),
        ]
    }

    fn ask(
        &mut self,
        asker: &Asker,
        prompt: String,
        mode: Mode,
        selection: Option<GhostSelection>,
        now_ms: u64,
    ) -> Vec<Action> {
        if prompt.is_empty() {
            return vec![Action::Say(format!(
                "{}: tell me what to do after @ghost, e.g. \"@ghost why does main.py fail?\"",
                asker.name
            ))];
        }
        if self.going.len() >= self.limits.concurrent_per_room {
            return vec![Action::Say(format!(
                "{}: I am still working on request #{}; wait for it, or a writer can stop it with \"@ghost cancel\".",
                asker.name,
                self.going.last().map_or(0, |g| g.id)
            ))];
        }
        let window_ms = REQUEST_WINDOW.as_millis() as u64;
        if now_ms.saturating_sub(self.window_start_ms) >= window_ms {
            self.window_start_ms = now_ms;
            self.in_window = 0;
        }
        if self.in_window >= self.limits.requests_per_window {
            let wait_min = (self.window_start_ms + window_ms - now_ms).div_ceil(60_000);
            return vec![Action::Say(format!(
                "{}: this room has used its {} requests for this hour (--requests-per-hour); try again in {wait_min} min.",
                asker.name, self.limits.requests_per_window
            ))];
        }
        self.in_window += 1;
        let id = self.next_id;
        self.next_id += 1;
        self.going.push(Going { id });
        vec![
            Action::Say(format!("Request #{id} from {}: working on it.", asker.name)),
            Action::Start {
                id,
                prompt,
                mode,
                asker: asker.name.clone(),
                selection,
            },
        ]
    }

    /// Request `id` ended (answered, failed or cancelled).
    pub fn finished(&mut self, id: u64) {
        self.going.retain(|g| g.id != id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(name: &str, role: Role) -> Asker {
        Asker {
            name: name.into(),
            conn_id: 1,
            role: Some(role),
        }
    }

    fn started(actions: &[Action]) -> Option<u64> {
        actions.iter().find_map(|a| match a {
            Action::Start { id, .. } => Some(*id),
            _ => None,
        })
    }

    #[test]
    fn only_messages_that_start_with_the_mention_are_requests() {
        assert_eq!(parse("hello @ghost"), None);
        assert_eq!(parse("@ghostly figure"), None);
        assert_eq!(
            parse("  @ghost, why?"),
            Some(Command::Ask {
                prompt: "why?".into(),
                mode: Mode::Suggest
            })
        );
        assert_eq!(
            parse("@ghost explain main.py"),
            Some(Command::Ask {
                prompt: "main.py".into(),
                mode: Mode::Explain
            })
        );
        assert_eq!(parse("@ghost cancel #3"), Some(Command::Cancel(Some(3))));
        assert_eq!(parse("@ghost stop"), Some(Command::Cancel(None)));
    }

    #[test]
    fn a_reader_cannot_make_it_write_or_undo() {
        let mut desk = Desk::new(Limits::default());
        desk.set_own_role(Role::Writer);
        let a = desk.on_chat(&who("rob", Role::Reader), "@ghost write fix f", 0);
        assert!(matches!(&a[..], [Action::Say(s)] if s.contains("readers can ask for explanations only")));
        let a = desk.on_chat(&who("rob", Role::Reader), "@ghost undo", 0);
        assert!(matches!(&a[..], [Action::Say(s)] if s.contains("only writers can undo")));
        assert_eq!(desk.going(), 0);
        let a = desk.on_chat(&who("ada", Role::Writer), "@ghost undo", 0);
        assert_eq!(a, vec![Action::Undo { by: "ada".into() }]);
    }

    #[test]
    fn a_writers_plain_request_is_a_suggestion_and_only_writers_accept() {
        let mut desk = Desk::new(Limits::default());
        desk.set_own_role(Role::Writer);
        let a = desk.on_chat(&who("ada", Role::Writer), "@ghost fix f", 0);
        assert!(
            matches!(&a[1], Action::Start { mode: Mode::Suggest, prompt, .. } if prompt == "fix f"),
            "{a:?}"
        );
        let a = desk.on_chat(&who("rob", Role::Reader), "@ghost accept 1", 0);
        assert!(matches!(&a[..], [Action::Say(s)] if s.contains("only writers can accept")));
        let a = desk.on_chat(&who("rob", Role::Reader), "@ghost suggest a fix", 0);
        assert!(matches!(&a[..], [Action::Say(s)] if s.contains("readers can ask for explanations only")));
        assert_eq!(
            desk.on_chat(&who("bea", Role::Writer), "@ghost accept #1", 0),
            vec![Action::Accept {
                id: 1,
                by: "bea".into()
            }]
        );
        assert_eq!(
            desk.on_chat(&who("bea", Role::Writer), "@ghost reject 1", 0),
            vec![Action::Reject {
                id: 1,
                by: "bea".into()
            }]
        );
    }

    #[test]
    fn a_ghost_with_a_read_link_only_explains() {
        let mut desk = Desk::new(Limits::default());
        let a = desk.on_chat(&who("ada", Role::Writer), "@ghost write fix f", 0);
        assert!(matches!(&a[..], [Action::Say(s)] if s.contains("writer link")));
        desk.set_own_role(Role::Writer);
        let a = desk.on_chat(&who("ada", Role::Writer), "@ghost write fix f", 0);
        assert!(matches!(&a[1], Action::Start { mode: Mode::Write, prompt, .. } if prompt == "fix f"));
    }

    #[test]
    fn a_request_is_announced_with_who_asked_then_started() {
        let mut desk = Desk::new(Limits::default());
        let actions = desk.on_chat(&who("ada", Role::Writer), "@ghost what does f do?", 0);
        assert_eq!(actions[0], Action::Say("Request #1 from ada: working on it.".into()));
        assert_eq!(started(&actions), Some(1));
        assert_eq!(desk.going(), 1);
    }

    #[test]
    fn readers_may_ask_for_explanations() {
        let mut desk = Desk::new(Limits::default());
        let actions = desk.on_chat(&who("rob", Role::Reader), "@ghost what is f?", 0);
        assert!(matches!(
            &actions[1],
            Action::Start {
                mode: Mode::Explain,
                ..
            }
        ));
    }

    #[test]
    fn a_reader_cannot_cancel_but_any_writer_can() {
        let mut desk = Desk::new(Limits::default());
        desk.on_chat(&who("ada", Role::Writer), "@ghost f?", 0);
        let refused = desk.on_chat(&who("rob", Role::Reader), "@ghost cancel", 1);
        assert!(matches!(&refused[..], [Action::Say(s)] if s.contains("only writers")));
        assert_eq!(desk.going(), 1);
        let done = desk.on_chat(&who("bea", Role::Writer), "@ghost cancel", 2);
        assert_eq!(done[0], Action::Cancel(1));
        assert_eq!(desk.going(), 0);
    }

    #[test]
    fn a_room_has_one_request_going_at_a_time_by_default() {
        let mut desk = Desk::new(Limits::default());
        desk.on_chat(&who("ada", Role::Writer), "@ghost one", 0);
        let second = desk.on_chat(&who("bea", Role::Writer), "@ghost two", 1);
        assert_eq!(started(&second), None);
        assert!(matches!(&second[..], [Action::Say(s)] if s.contains("still working on request #1")));
        desk.finished(1);
        assert_eq!(
            started(&desk.on_chat(&who("bea", Role::Writer), "@ghost two", 2)),
            Some(2)
        );
    }

    #[test]
    fn the_hourly_budget_is_enforced_and_renews() {
        let mut desk = Desk::new(Limits {
            requests_per_window: 2,
            ..Limits::default()
        });
        for i in 0..2 {
            let id = started(&desk.on_chat(&who("ada", Role::Writer), "@ghost q", i)).unwrap();
            desk.finished(id);
        }
        let refused = desk.on_chat(&who("ada", Role::Writer), "@ghost q", 10);
        assert!(matches!(&refused[..], [Action::Say(s)] if s.contains("used its 2 requests")));
        let hour = REQUEST_WINDOW.as_millis() as u64;
        assert!(started(&desk.on_chat(&who("ada", Role::Writer), "@ghost q", hour)).is_some());
    }

    #[test]
    fn someone_not_in_the_room_is_ignored() {
        let mut desk = Desk::new(Limits::default());
        let gone = Asker {
            name: "x".into(),
            conn_id: 9,
            role: None,
        };
        assert!(desk.on_chat(&gone, "@ghost q", 0).is_empty());
    }

    #[test]
    fn typed_commands_follow_the_same_policy_as_chat_and_carry_the_selection() {
        let mut desk = Desk::new(Limits::default());
        desk.set_own_role(Role::Writer);
        let a = desk.on_typed(
            &who("rob", Role::Reader),
            GhostCommand::Ask {
                text: "fix".into(),
                mode: Some(Mode::Write),
                selection: None,
            },
            0,
        );
        assert!(matches!(&a[..], [Action::Say(s)] if s.contains("readers can ask for explanations only")));
        let a = desk.on_typed(&who("rob", Role::Reader), GhostCommand::Undo, 0);
        assert!(matches!(&a[..], [Action::Say(s)] if s.contains("only writers can undo")));
        let selection = GhostSelection {
            path: "calc.py".into(),
            start_line: 1,
            end_line: 2,
            text: "def add".into(),
        };
        let a = desk.on_typed(
            &who("ada", Role::Writer),
            GhostCommand::Ask {
                text: " why? ".into(),
                mode: None,
                selection: Some(selection.clone()),
            },
            0,
        );
        assert_eq!(
            a[1],
            Action::Start {
                id: 1,
                prompt: "why?".into(),
                mode: Mode::Suggest,
                asker: "ada".into(),
                selection: Some(selection)
            }
        );
        assert_eq!(
            desk.on_typed(&who("ada", Role::Writer), GhostCommand::Cancel { request: None }, 1)[0],
            Action::Cancel(1)
        );
        assert_eq!(
            desk.on_typed(&who("ada", Role::Writer), GhostCommand::Accept { suggestion: 4 }, 1),
            vec![Action::Accept {
                id: 4,
                by: "ada".into()
            }]
        );
    }

    #[test]
    fn an_empty_request_says_how_to_ask() {
        let mut desk = Desk::new(Limits::default());
        let a = desk.on_chat(&who("ada", Role::Writer), "@ghost", 0);
        assert!(matches!(&a[..], [Action::Say(s)] if s.contains("tell me what to do")));
    }

    #[test]
    fn a_long_request_is_cut_to_the_limit() {
        let long = format!("@ghost {}", "é".repeat(MAX_PROMPT_CHARS + 50));
        let Some(Command::Ask { prompt, .. }) = parse(&long) else {
            panic!()
        };
        assert_eq!(prompt.chars().count(), MAX_PROMPT_CHARS);
    }
}
