//! mesh's extension messages: the closed sets of what a client may say and what the server
//! may answer. They travel as JSON inside a y-protocols custom message
//! ([`crate::MESH_MESSAGE_TAG`]); see [`crate::codec`].

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;

/// A participant's role in a room. The server checks it on every message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// May read the room and chat, not edit.
    Reader,
    /// May edit files, chat and (later) run.
    Writer,
    /// Created the room: may do all a writer does, and delete the room.
    Host,
}

impl Role {
    /// Whether this role may change the room's document.
    pub fn can_write(self) -> bool {
        matches!(self, Role::Writer | Role::Host)
    }
}

/// Messages a client sends to the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMessage {
    /// The first mesh message of a mesh client: announces its protocol version and who it is.
    /// Clients that never send it (stock Yjs clients) still sync, as anonymous participants.
    Hello {
        /// The [`crate::PROTOCOL_VERSION`] the client speaks.
        version: u32,
        /// Display name.
        name: String,
        /// Colour as `#rrggbb`; the server picks one when absent.
        #[serde(default)]
        color: Option<String>,
        /// What kind of client this is (`mesh-proxy`, `neovim`, `vscode`...), for display.
        #[serde(default)]
        client: Option<String>,
        /// The Yjs client id this connection's document uses, so that awareness states can be
        /// tied to a participant.
        #[serde(default)]
        doc_client_id: Option<u64>,
        /// A second connection of someone already in the room (their debug adapter), which
        /// editors do not list as another person.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        companion: bool,
    },
    /// A chat message to everyone in the room.
    Chat {
        /// The text, at most [`crate::MAX_CHAT_BYTES`] bytes.
        text: String,
    },
    /// Asks for the current participant list (answered with [`ServerMessage::Participants`]).
    ListParticipants,
    /// A liveness check, answered with [`ServerMessage::Pong`] carrying the same nonce.
    Ping {
        /// Echoed back.
        nonce: u64,
    },
    /// Run the room's program whose entry file is `path` (the language follows from its
    /// extension unless given). Everyone in the room sees the output.
    Run {
        /// The entry file, a path of the room.
        path: String,
        /// A registry language id, to override the extension.
        #[serde(default)]
        language: Option<String>,
    },
    /// Text for the program's stdin.
    Input {
        /// The run.
        run_id: String,
        /// The text (UTF-8).
        data: String,
        /// Close stdin after this text.
        #[serde(default)]
        eof: bool,
    },
    /// Stop a run.
    Stop {
        /// The run.
        run_id: String,
    },
    /// Start the room's debug session for the program whose entry file is `path`, or join
    /// the one that is going (a room has at most one). Answered with
    /// [`ServerMessage::DebugJoined`] once the debug adapter is ready, or an error.
    DebugStart {
        /// The entry file, a path of the room (ignored when joining).
        path: String,
        /// A registry language id, to override the extension.
        #[serde(default)]
        language: Option<String>,
    },
    /// A Debug Adapter Protocol message from this participant's editor to the session: a
    /// request whose `seq` is the editor's own; the answer comes back with `request_seq`
    /// set to it.
    Dap {
        /// The debug session.
        debug_id: String,
        /// The DAP message (an object with `type: "request"`).
        message: serde_json::Value,
    },
}

/// A client message and the id the client gave it. On the wire the id is one more field
/// of the message's JSON object (`{"type": "run", "id": 7, "path": "main.py"}`); the
/// server's answers to it (an [`ServerMessage::Error`], or the acknowledgement the message
/// names) carry it back as `responding_to`, so a client with several requests in flight
/// never guesses which one an error is about. Clients that send no id (stock clients, old
/// proxies) get answers without `responding_to`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// The client's id of this request: any number, unique among its requests waiting for
    /// an answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    /// The message.
    #[serde(flatten)]
    pub message: ClientMessage,
}

impl Request {
    /// `message` with the id `id`.
    pub fn new(id: u64, message: ClientMessage) -> Self {
        Request { id: Some(id), message }
    }
}

impl From<ClientMessage> for Request {
    fn from(message: ClientMessage) -> Self {
        Request { id: None, message }
    }
}

/// Which stream a piece of run output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStream {
    /// The compiler's output.
    Compile,
    /// The program's stdout.
    Stdout,
    /// The program's stderr.
    Stderr,
}

/// A person (or bot) connected to a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Participant {
    /// The server's id of this connection, unique within the server's lifetime.
    pub conn_id: u64,
    /// Display name (`anonymous` for stock Yjs clients).
    pub name: String,
    /// Colour as `#rrggbb`.
    pub color: String,
    /// The participant's role.
    pub role: Role,
    /// The kind of client, as it announced itself (`yjs` for clients that did not).
    pub client: String,
    /// The Yjs client id of the participant's document, when announced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub doc_client_id: Option<u64>,
    /// A second connection of someone already in the room (see `hello`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub companion: bool,
}

/// One chat message, as kept in the room (the shared `chat` array holds the same fields).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChatEntry {
    /// Unique id of the message within the room.
    pub id: String,
    /// The author's display name.
    pub author: String,
    /// The author's connection id.
    pub conn_id: u64,
    /// The text.
    pub text: String,
    /// When the server accepted it, in milliseconds since the Unix epoch.
    pub ts: u64,
}

/// Messages the server sends to mesh clients (those that said `Hello`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMessage {
    /// The answer to `Hello`.
    Welcome {
        /// The server's [`crate::PROTOCOL_VERSION`].
        version: u32,
        /// This connection's id.
        conn_id: u64,
        /// The role the client's token grants.
        role: Role,
        /// Everyone in the room, this client included.
        participants: Vec<Participant>,
    },
    /// Someone joined.
    ParticipantJoined {
        /// Who.
        participant: Participant,
    },
    /// Someone left.
    ParticipantLeft {
        /// Their connection id.
        conn_id: u64,
    },
    /// The answer to `ListParticipants`.
    Participants {
        /// Everyone in the room.
        participants: Vec<Participant>,
    },
    /// A new chat message (history reaches joiners through the document's `chat` array).
    Chat {
        /// The message.
        entry: ChatEntry,
    },
    /// The answer to `Ping`.
    Pong {
        /// The nonce of the ping.
        nonce: u64,
    },
    /// A run started.
    RunStarted {
        /// Its id.
        run_id: String,
        /// The entry file.
        path: String,
        /// The language id.
        language: String,
        /// Who started it (connection id).
        by: u64,
        /// The id of the `run` request this answers (only in the copy sent to who asked).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        responding_to: Option<u64>,
    },
    /// A run (or, with `debug`, the room's debug session) waits for a free sandbox: the
    /// server's caps are reached. Sent when it is queued and again each time it moves; then
    /// `run_started` follows with the same id, or `run_exited` if it is stopped while it
    /// waits.
    RunQueued {
        /// The run's id (a debug session's id when `debug`).
        run_id: String,
        /// The entry file.
        path: String,
        /// The language id.
        language: String,
        /// Who asked for it (connection id; 0 for a REST call).
        by: u64,
        /// Its place in the server's queue: 1 is next.
        position: u32,
        /// The cap it waits on, as its configuration key (`max_runs`, `max_runs_per_room`,
        /// `max_runs_per_person`, `max_debug_sessions`).
        limit: String,
        /// It is a debug session, not a run.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        debug: bool,
        /// The id of the `run` or `debug_start` request this answers (only in the copy sent
        /// to who asked).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        responding_to: Option<u64>,
    },
    /// Output of a run, as produced (ANSI escapes kept; invalid UTF-8 replaced).
    RunOutput {
        /// The run.
        run_id: String,
        /// Which stream.
        stream: RunStream,
        /// The text.
        data: String,
    },
    /// A run ended.
    RunExited {
        /// The run.
        run_id: String,
        /// `compile` (a compile error or a limit while compiling) or `run`.
        stage: String,
        /// Exit status, when there is one (128 + signal when killed).
        code: Option<i64>,
        /// Wall-clock time of the last step, in milliseconds.
        duration_ms: u64,
        /// The limit that ended it: `time`, `memory`, `output` or `pids`.
        limit: Option<String>,
        /// Set when the run service itself failed (not the program).
        error: Option<String>,
    },
    /// A debug session started in the room (everyone is told, so editors can offer to join).
    DebugStarted {
        /// Its id.
        debug_id: String,
        /// The entry file.
        path: String,
        /// The language id.
        language: String,
        /// Who started it (connection id).
        by: u64,
    },
    /// The answer to `DebugStart`: this participant is attached; DAP messages follow.
    DebugJoined {
        /// The session.
        debug_id: String,
        /// The entry file (a room path).
        path: String,
        /// The language id.
        language: String,
        /// Who started it.
        by: u64,
        /// The adapter's capabilities (the body of its `initialize` response).
        capabilities: serde_json::Value,
        /// The program's work dir in the container; a DAP path under it is a room path
        /// below it, unless `aliases` names it.
        work_dir: String,
        /// Container paths that stand for another room path (the entry file is copied to
        /// the language's main file name): container path → room path.
        aliases: std::collections::BTreeMap<String, String>,
        /// The id of the `debug_start` request this answers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        responding_to: Option<u64>,
    },
    /// A DAP message from the session to this participant: a response to one of its
    /// requests (`request_seq` is its own) or an event every attached participant gets.
    Dap {
        /// The session.
        debug_id: String,
        /// The DAP message.
        message: serde_json::Value,
    },
    /// The breakpoints of one file changed (all participants' together), for editors to show.
    DebugBreakpoints {
        /// The session.
        debug_id: String,
        /// The room path of the file.
        path: String,
        /// 1-based lines with a breakpoint.
        lines: Vec<u32>,
    },
    /// The debug session ended, for everyone.
    DebugEnded {
        /// The session.
        debug_id: String,
        /// The program's exit code, when it exited.
        exit_code: Option<i64>,
        /// Why it ended, when it was not the program's own exit.
        error: Option<String>,
    },
    /// Something the client sent was refused. The connection stays open unless the server
    /// also closes it.
    Error {
        /// What went wrong.
        code: ErrorCode,
        /// What happened and what to do, for humans.
        message: String,
        /// The id of the request refused, when it had one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        responding_to: Option<u64>,
    },
}

/// How a queued run's place reads for people: `queued: 2nd (waiting for max_runs)`.
/// `mesh-proxy run` prints it and `mesh-proxy lsp` hands it to editors, so every client says
/// the same.
pub fn queued_text(position: u32, limit: &str) -> String {
    let suffix = match (position % 10, position % 100) {
        (1, n) if n != 11 => "st",
        (2, n) if n != 12 => "nd",
        (3, n) if n != 13 => "rd",
        _ => "th",
    };
    let why = match limit {
        "max_runs" => "a free run slot on this server (max_runs)",
        "max_debug_sessions" => "a free debug slot on this server (max_debug_sessions)",
        "max_runs_per_room" => "one of this room's runs to end (max_runs_per_room)",
        "max_runs_per_person" => "the other run of whoever asked to end (max_runs_per_person)",
        other => other,
    };
    format!("queued: {position}{suffix} in line, waiting for {why}")
}

#[cfg(test)]
mod queued_text_tests {
    use super::queued_text;

    #[test]
    fn queue_places_read_as_ordinals_with_the_limit_named() {
        assert_eq!(
            queued_text(2, "max_runs"),
            "queued: 2nd in line, waiting for a free run slot on this server (max_runs)"
        );
        let ordinals: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111]
            .iter()
            .map(|&n| queued_text(n, "x").split_whitespace().nth(1).unwrap().to_owned())
            .collect();
        assert_eq!(
            ordinals,
            ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"]
        );
    }
}

#[cfg(test)]
mod request_tests {
    use super::{ClientMessage, Request};

    #[test]
    fn a_request_s_id_is_one_more_field_and_may_be_left_out() {
        let run = ClientMessage::Run {
            path: "main.py".into(),
            language: None,
        };
        let json = serde_json::to_string(&Request::new(7, run.clone())).unwrap();
        assert_eq!(json, r#"{"id":7,"type":"run","path":"main.py","language":null}"#);
        let back: Request = serde_json::from_str(r#"{"type":"run","path":"main.py","id":7}"#).unwrap();
        assert_eq!(back, Request::new(7, run.clone()));
        let plain: Request = serde_json::from_str(r#"{"type":"run","path":"main.py"}"#).unwrap();
        assert_eq!(plain, Request::from(run));
        let unit: Request = serde_json::from_str(r#"{"type":"list_participants","id":3}"#).unwrap();
        assert_eq!(unit, Request::new(3, ClientMessage::ListParticipants));
    }

    #[test]
    fn unknown_fields_and_bad_ids_are_still_refused() {
        for bad in [
            r#"{"type":"run","path":"main.py","nope":1}"#,
            r#"{"type":"run","path":"main.py","id":"7"}"#,
            r#"{"type":"run","path":"main.py","id":-1}"#,
            r#"{"type":"nope","id":1}"#,
        ] {
            assert!(serde_json::from_str::<Request>(bad).is_err(), "{bad}");
        }
    }
}
