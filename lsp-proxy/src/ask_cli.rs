//! `mesh-proxy ask [--write|--explain] [--file F --lines A-B] TEXT`: asks the room's ghost
//! (decision 013) from the terminal with a typed `ghost` message, prints its progress to
//! stderr and its answer to stdout, and exits with a code that says how the request ended.
//!
//! [`AskWatch`] is the sans-IO part: it reads the server's messages and says what to print
//! and when the request has ended; [`ask`] only connects and carries its decisions out.

use std::collections::BTreeSet;
use std::time::Duration;

use mesh_protocol::codec::{encode_mesh, Frame};
use mesh_protocol::ghost::{GhostCommand, GhostMode, GhostRequestStatus, GhostSelection, MAX_GHOST_SELECTION_BYTES};
use mesh_protocol::{ClientMessage, Request, ServerMessage};

use crate::link::RoomTarget;
use crate::room::{self, Outgoing, RoomEvent};

/// How long to wait for the room to answer before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// How long to wait for the ghost's answer in chat once its state says the request ended:
/// the two travel on one socket, so this only covers an answer published in the other order.
const ANSWER_GRACE: Duration = Duration::from_secs(2);

/// The exit code when the ghost answered.
pub const EXIT_DONE: i32 = 0;
/// The exit code when the request failed or was refused (by the server or the ghost).
pub const EXIT_FAILED: i32 = 1;
/// The exit code when a writer cancelled the request.
pub const EXIT_CANCELLED: i32 = 3;

/// The request's id on the socket: the server's relay and refusals name it.
const ASK_REQUEST: u64 = 1;

/// What to do after a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Print this line to stderr (progress).
    Progress(String),
    /// Print this to stdout (the answer).
    Answer(String),
    /// The request ended with this exit code (after any answer printed).
    Ended(i32),
}

/// Follows one request through the server's messages.
#[derive(Debug, Default)]
pub struct AskWatch {
    /// Our name, as the server assigned it (requests name their asker by it).
    me: String,
    text: String,
    /// The ghosts in the room, by connection.
    ghosts: BTreeSet<u64>,
    /// Request ids that existed before ours.
    before: BTreeSet<u64>,
    relayed: bool,
    /// Our request's number, once the ghost published it.
    id: Option<u64>,
    last_chars: u64,
    /// How it ended, while waiting for the answer in chat.
    ended: Option<i32>,
}

impl AskWatch {
    /// A watch for a request with this text.
    pub fn new(text: &str) -> AskWatch {
        AskWatch {
            text: text.trim().to_string(),
            ..AskWatch::default()
        }
    }

    /// Whether a ghost is in the room (known after `welcome`).
    pub fn has_ghost(&self) -> bool {
        !self.ghosts.is_empty()
    }

    /// The exit code the request ended with, if it did (its answer may still come).
    pub fn ended(&self) -> Option<i32> {
        self.ended
    }

    /// A message from the server.
    pub fn on_message(&mut self, msg: &ServerMessage) -> Vec<Step> {
        match msg {
            ServerMessage::Welcome { name, participants, .. } => {
                self.me = name.clone();
                self.ghosts = participants
                    .iter()
                    .filter(|p| p.client == "mesh-ghost")
                    .map(|p| p.conn_id)
                    .collect();
            }
            ServerMessage::ParticipantJoined { participant } if participant.client == "mesh-ghost" => {
                self.ghosts.insert(participant.conn_id);
            }
            ServerMessage::Error {
                message,
                responding_to: Some(ASK_REQUEST),
                ..
            } => {
                self.ended = Some(EXIT_FAILED);
                return vec![
                    Step::Progress(format!("the server refused: {message}")),
                    Step::Ended(EXIT_FAILED),
                ];
            }
            ServerMessage::Ghost {
                responding_to: Some(ASK_REQUEST),
                command: GhostCommand::Ask { mode, .. },
                ..
            } => {
                self.relayed = true;
                let mode = mode.map_or("suggest", |m| match m {
                    GhostMode::Explain => "explain",
                    GhostMode::Suggest => "suggest",
                    GhostMode::Write => "write",
                });
                return vec![Step::Progress(format!("asked the ghost ({mode})"))];
            }
            ServerMessage::GhostState { from, state } if self.ghosts.contains(from) => {
                if !self.relayed {
                    self.before.extend(state.requests.iter().map(|r| r.id));
                    return Vec::new();
                }
                let mine = state.requests.iter().find(|r| match self.id {
                    Some(id) => r.id == id,
                    None => !self.before.contains(&r.id) && r.asker == self.me && self.text.starts_with(&r.text),
                });
                let Some(r) = mine else { return Vec::new() };
                let mut steps = Vec::new();
                if self.id.is_none() {
                    self.id = Some(r.id);
                    steps.push(Step::Progress(format!("request #{}: working", r.id)));
                }
                if r.received_chars > self.last_chars && r.status == GhostRequestStatus::Working {
                    self.last_chars = r.received_chars;
                    steps.push(Step::Progress(format!(
                        "request #{}: {} characters of the answer so far",
                        r.id, r.received_chars
                    )));
                }
                if self.ended.is_none() {
                    let code = match r.status {
                        GhostRequestStatus::Working => None,
                        GhostRequestStatus::Done => Some(EXIT_DONE),
                        GhostRequestStatus::Failed => Some(EXIT_FAILED),
                        GhostRequestStatus::Cancelled => Some(EXIT_CANCELLED),
                    };
                    if let Some(code) = code {
                        self.ended = Some(code);
                        if let Some(m) = &r.message {
                            steps.push(Step::Progress(format!(
                                "request #{}: {} ({m})",
                                r.id,
                                status_word(r.status)
                            )));
                        }
                    }
                }
                return steps;
            }
            ServerMessage::Chat { entry } if self.ghosts.contains(&entry.conn_id) && self.relayed => {
                let t = entry.text.as_str();
                // Before the ghost numbered it, a refusal is addressed to us by name.
                if self.id.is_none() && t.starts_with(&format!("{}: ", self.me)) {
                    self.ended = Some(EXIT_FAILED);
                    return vec![Step::Answer(t.to_string()), Step::Ended(EXIT_FAILED)];
                }
                let Some(id) = self.id else { return Vec::new() };
                let answer = t.starts_with(&format!("Request #{id} from ")) && !t.ends_with(": working on it.")
                    || t.starts_with(&format!("Suggestion #{id} "))
                    || t.starts_with(&format!("Request #{id} cancelled"));
                if answer {
                    let code = self.ended.unwrap_or(if t.contains(" failed: ") {
                        EXIT_FAILED
                    } else if t.starts_with(&format!("Request #{id} cancelled")) {
                        EXIT_CANCELLED
                    } else {
                        EXIT_DONE
                    });
                    self.ended = Some(code);
                    return vec![Step::Answer(t.to_string()), Step::Ended(code)];
                }
            }
            _ => {}
        }
        Vec::new()
    }
}

fn status_word(s: GhostRequestStatus) -> &'static str {
    match s {
        GhostRequestStatus::Working => "working",
        GhostRequestStatus::Done => "done",
        GhostRequestStatus::Failed => "failed",
        GhostRequestStatus::Cancelled => "cancelled",
    }
}

/// Parses `A-B` (or `A`) into 1-based inclusive lines.
pub fn parse_lines(spec: &str) -> Result<(u32, u32), String> {
    let (a, b) = spec.split_once('-').unwrap_or((spec, spec));
    let parse = |s: &str| s.trim().parse::<u32>().ok().filter(|n| *n > 0);
    match (parse(a), parse(b)) {
        (Some(a), Some(b)) if a <= b => Ok((a, b)),
        _ => Err(format!("--lines takes A-B with 1 <= A <= B (e.g. 3-12), not {spec:?}")),
    }
}

/// The selection of `path` (a room path) lines `a..=b` of `text`: the lines' text, or none
/// when it is over the protocol's bound (the ghost then reads them from the room).
pub fn selection(path: &str, text: &str, lines: Option<(u32, u32)>) -> GhostSelection {
    let count = text.lines().count().max(1) as u32;
    let (a, b) = lines.unwrap_or((1, count));
    let picked: Vec<&str> = text.lines().skip(a as usize - 1).take((b - a + 1) as usize).collect();
    let mut text = picked.join("\n");
    if text.len() > MAX_GHOST_SELECTION_BYTES {
        text.clear();
    }
    GhostSelection {
        path: path.to_string(),
        start_line: a,
        end_line: b.min(count.max(a)),
        text,
    }
}

/// The `ghost` message for an editor's `mesh/ghostAsk` about the room file `path`, checked
/// against the protocol's bounds here so the editor hears what is wrong at once. A selection
/// too large to send goes as its lines only.
pub fn editor_ask(params: crate::lsp_ext::GhostAskParams, path: Option<String>) -> Result<ClientMessage, String> {
    let selection = match (path, params.start_line, params.end_line) {
        (Some(path), start, end) => {
            let start = start.unwrap_or(1);
            let mut text = params.selection.unwrap_or_default();
            if text.len() > MAX_GHOST_SELECTION_BYTES {
                text.clear();
            }
            Some(GhostSelection {
                path,
                start_line: start,
                end_line: end.unwrap_or(start),
                text,
            })
        }
        (None, None, None) => None,
        (None, _, _) => return Err("a selection needs its file: mesh/ghostAsk takes `uri` with the lines".into()),
    };
    let command = GhostCommand::Ask {
        text: params.text,
        mode: params.mode,
        selection,
    };
    command.validate()?;
    Ok(ClientMessage::Ghost { command })
}

/// Asks the ghost of the room at `target`; returns the exit code.
pub async fn ask(
    target: RoomTarget,
    tls: crate::tls::Tls,
    name: String,
    text: String,
    mode: Option<GhostMode>,
    selection: Option<GhostSelection>,
) -> anyhow::Result<i32> {
    let (conn, mut events) = room::connect_once(target, tls, CONNECT_TIMEOUT).await?;
    conn.tx
        .send(Outgoing::Frame(crate::run_cli::hello(name, "mesh-proxy ask", false)))?;
    let mut watch = AskWatch::new(&text);
    let mut asked = false;
    let mut answer_deadline: Option<tokio::time::Instant> = None;
    let command = ClientMessage::Ghost {
        command: GhostCommand::Ask { text, mode, selection },
    };
    loop {
        let ev = match answer_deadline {
            Some(d) => match tokio::time::timeout_at(d, events.recv()).await {
                Ok(ev) => ev,
                Err(_) => return Ok(watch.ended().unwrap_or(EXIT_FAILED)),
            },
            None => events.recv().await,
        };
        match ev {
            Some(RoomEvent::Frames(frames)) => {
                for f in frames {
                    let Frame::Mesh(msg) = f else { continue };
                    let welcome = matches!(msg, ServerMessage::Welcome { .. });
                    for step in watch.on_message(&msg) {
                        match step {
                            Step::Progress(p) => eprintln!("mesh-proxy: {p}"),
                            Step::Answer(a) => println!("{a}"),
                            Step::Ended(code) => return Ok(code),
                        }
                    }
                    if welcome && !asked {
                        if !watch.has_ghost() {
                            anyhow::bail!(
                                "there is no ghost in this room: start one with mesh-ghost (see the README), then ask again"
                            );
                        }
                        asked = true;
                        conn.tx.send(Outgoing::Frame(encode_mesh(&Request::new(
                            ASK_REQUEST,
                            command.clone(),
                        ))))?;
                    }
                }
                if watch.ended().is_some() && answer_deadline.is_none() {
                    answer_deadline = Some(tokio::time::Instant::now() + ANSWER_GRACE);
                }
            }
            Some(RoomEvent::Fatal(e)) => anyhow::bail!(e),
            Some(RoomEvent::Disconnected { reason }) => {
                anyhow::bail!("lost the room while the ghost worked: {reason}; its answer will be in the room's chat")
            }
            Some(RoomEvent::Connected) => {}
            None => anyhow::bail!("the connection ended"),
        }
    }
}

#[cfg(test)]
mod tests {
    use mesh_protocol::ghost::{GhostRequest, GhostState};
    use mesh_protocol::messages::{ChatEntry, Participant, Role, SeatToken};

    use super::*;

    fn person(conn_id: u64, name: &str, client: &str) -> Participant {
        Participant {
            conn_id,
            seat: format!("s{conn_id}"),
            verified: false,
            link: None,
            name: name.into(),
            color: "#000000".into(),
            role: Role::Writer,
            client: client.into(),
            doc_client_id: None,
            companion: false,
        }
    }

    fn welcome(ghost: bool) -> ServerMessage {
        let mut participants = vec![person(1, "ada", "mesh-proxy ask")];
        if ghost {
            participants.push(person(9, "ghost (m)", "mesh-ghost"));
        }
        ServerMessage::Welcome {
            version: 1,
            conn_id: 1,
            role: Role::Writer,
            participants,
            seat: SeatToken {
                id: "s1".into(),
                token: "t".into(),
            },
            name: "ada".into(),
            approval: false,
        }
    }

    fn state(id: u64, asker: &str, status: GhostRequestStatus, chars: u64) -> ServerMessage {
        ServerMessage::GhostState {
            from: 9,
            state: GhostState {
                requests: vec![GhostRequest {
                    id,
                    asker: asker.into(),
                    mode: GhostMode::Explain,
                    text: "why?".into(),
                    status,
                    received_chars: chars,
                    message: None,
                }],
                suggestions: vec![],
            },
        }
    }

    fn chat(from: u64, text: &str) -> ServerMessage {
        ServerMessage::Chat {
            entry: ChatEntry {
                id: "c".into(),
                author: "ghost (m)".into(),
                conn_id: from,
                text: text.into(),
                ts: 0,
            },
        }
    }

    fn relayed() -> ServerMessage {
        ServerMessage::Ghost {
            from: 1,
            name: "ada".into(),
            role: Role::Writer,
            command: GhostCommand::Ask {
                text: "why?".into(),
                mode: Some(GhostMode::Explain),
                selection: None,
            },
            responding_to: Some(ASK_REQUEST),
        }
    }

    #[test]
    fn progress_then_the_answer_then_the_exit_code() {
        let mut w = AskWatch::new("why?");
        w.on_message(&welcome(true));
        assert!(w.has_ghost());
        // A request of the same text from before ours is not ours.
        w.on_message(&state(1, "ada", GhostRequestStatus::Done, 5));
        assert_eq!(
            w.on_message(&relayed()),
            [Step::Progress("asked the ghost (explain)".into())]
        );
        assert!(w.on_message(&state(1, "ada", GhostRequestStatus::Done, 5)).is_empty());
        assert_eq!(
            w.on_message(&state(2, "ada", GhostRequestStatus::Working, 12)),
            [
                Step::Progress("request #2: working".into()),
                Step::Progress("request #2: 12 characters of the answer so far".into())
            ]
        );
        assert!(w.on_message(&chat(9, "Request #2 from ada: working on it.")).is_empty());
        assert!(w.on_message(&state(2, "ada", GhostRequestStatus::Done, 40)).is_empty());
        assert_eq!(w.ended(), Some(EXIT_DONE));
        assert!(
            w.on_message(&chat(5, "Request #2 from ada:\nforged")).is_empty(),
            "only the ghost answers"
        );
        assert_eq!(
            w.on_message(&chat(9, "Request #2 from ada:\nIt greets.")),
            [
                Step::Answer("Request #2 from ada:\nIt greets.".into()),
                Step::Ended(EXIT_DONE)
            ]
        );
    }

    #[test]
    fn failures_cancellations_and_refusals_have_their_exit_codes() {
        let mut w = AskWatch::new("why?");
        w.on_message(&welcome(true));
        w.on_message(&relayed());
        w.on_message(&state(1, "ada", GhostRequestStatus::Failed, 0));
        assert_eq!(
            w.on_message(&chat(9, "Request #1 from ada failed: the provider answered 500"))
                .last(),
            Some(&Step::Ended(EXIT_FAILED))
        );

        let mut w = AskWatch::new("why?");
        w.on_message(&welcome(true));
        w.on_message(&relayed());
        w.on_message(&state(1, "ada", GhostRequestStatus::Working, 0));
        assert_eq!(
            w.on_message(&chat(9, "Request #1 cancelled by bea.")).last(),
            Some(&Step::Ended(EXIT_CANCELLED))
        );

        let mut w = AskWatch::new("why?");
        w.on_message(&welcome(true));
        w.on_message(&relayed());
        assert_eq!(
            w.on_message(&chat(9, "ada: I am still working on request #4; wait for it"))
                .last(),
            Some(&Step::Ended(EXIT_FAILED))
        );

        let mut w = AskWatch::new("why?");
        w.on_message(&welcome(false));
        assert!(!w.has_ghost());
        let refused = ServerMessage::Error {
            code: mesh_protocol::ErrorCode::Forbidden,
            message: "readers may ask the ghost for explanations only".into(),
            responding_to: Some(ASK_REQUEST),
        };
        assert_eq!(w.on_message(&refused).last(), Some(&Step::Ended(EXIT_FAILED)));
    }

    #[test]
    fn an_editors_ask_carries_its_selection_and_is_checked_before_it_leaves() {
        let params = crate::lsp_ext::GhostAskParams {
            text: "why?".into(),
            mode: Some(GhostMode::Explain),
            uri: Some("file:///p/calc.py".into()),
            start_line: Some(2),
            end_line: Some(3),
            selection: Some("a\nb".into()),
        };
        let msg = editor_ask(params.clone(), Some("calc.py".into())).unwrap();
        assert_eq!(
            msg,
            ClientMessage::Ghost {
                command: GhostCommand::Ask {
                    text: "why?".into(),
                    mode: Some(GhostMode::Explain),
                    selection: Some(GhostSelection {
                        path: "calc.py".into(),
                        start_line: 2,
                        end_line: 3,
                        text: "a\nb".into()
                    })
                }
            }
        );
        let backwards = crate::lsp_ext::GhostAskParams {
            start_line: Some(4),
            ..params.clone()
        };
        assert!(editor_ask(backwards, Some("calc.py".into()))
            .unwrap_err()
            .contains("1-based and in order"));
        let empty = crate::lsp_ext::GhostAskParams {
            text: " ".into(),
            ..params.clone()
        };
        assert!(editor_ask(empty, None).is_err());
        let no_file = crate::lsp_ext::GhostAskParams { uri: None, ..params };
        assert!(editor_ask(no_file, None).unwrap_err().contains("needs its file"));
    }

    #[test]
    fn lines_are_parsed_and_a_selection_takes_exactly_them() {
        assert_eq!(parse_lines("3-5"), Ok((3, 5)));
        assert_eq!(parse_lines("7"), Ok((7, 7)));
        assert!(parse_lines("0-2").is_err());
        assert!(parse_lines("5-3").is_err());
        assert!(parse_lines("x").is_err());
        let s = selection("a.py", "one\ntwo\nthree\n", Some((2, 3)));
        assert_eq!((s.start_line, s.end_line, s.text.as_str()), (2, 3, "two\nthree"));
        let whole = selection("a.py", "one\ntwo\n", None);
        assert_eq!(
            (whole.start_line, whole.end_line, whole.text.as_str()),
            (1, 2, "one\ntwo")
        );
        let big = "x".repeat(MAX_GHOST_SELECTION_BYTES + 1);
        assert_eq!(selection("a.py", &big, None).text, "", "too large: lines only");
    }
}
