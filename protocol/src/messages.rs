//! mesh's extension messages: the closed sets of what a client may say and what the server
//! may answer. They travel as JSON inside a y-protocols custom message
//! ([`crate::MESH_MESSAGE_TAG`]); see [`crate::codec`].

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::ghost::{GhostCommand, GhostState};

/// A participant's role in a room. The server checks it on every message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// May read the room and chat, not edit.
    Reader,
    /// May edit files, chat and (later) run.
    Writer,
    /// Holds the room (its creator, or whom the host handed the role to): may do all a
    /// writer does, change roles, admit and kick, manage links, and delete the room. A room
    /// has one host.
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
    /// The room token, for clients that cannot put it in the URL or a header (a browser's
    /// WebSocket cannot set headers). Only as the first message of a connection that
    /// presented no token, within the server's auth timeout; anywhere else it is refused.
    Auth {
        /// A link token or a seat token of this room.
        token: String,
    },
    /// Host only: give a seat another role. Every connection of the seat has the new role
    /// from its next message on; giving `host` makes the current host a writer.
    SetRole {
        /// The seat (a participant's `seat`).
        seat: String,
        /// Its new role.
        role: Role,
    },
    /// Host only: remove a seat from the room. Its connections get
    /// [`ServerMessage::Kicked`] and are closed (4403); its seat token stops working.
    Kick {
        /// The seat.
        seat: String,
    },
    /// Host only: let a waiting joiner in (see [`ServerMessage::JoinRequest`]).
    Admit {
        /// The waiting seat.
        seat: String,
    },
    /// Host only: turn a waiting joiner away.
    Refuse {
        /// The waiting seat.
        seat: String,
    },
    /// Host only: require (or stop requiring) the host's approval for new joiners.
    SetApproval {
        /// Whether joiners wait in the lobby.
        on: bool,
    },
    /// Host only: create a join link (answered with [`ServerMessage::Links`]).
    CreateLink {
        /// The role it grants: `reader` or `writer`.
        role: Role,
        /// How long it works, in seconds; by default the server's token lifetime.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires_in_secs: Option<u64>,
        /// How many seats it may create; unlimited when absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_uses: Option<u32>,
        /// An invitation for one signed-in user, named by email or by the provider's
        /// subject: only that user can use it (servers with accounts only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        for_user: Option<String>,
    },
    /// Host only: the room's links (answered with [`ServerMessage::Links`]).
    ListLinks,
    /// Host only: end a link; the connections whose seats it created are closed (answered
    /// with [`ServerMessage::Links`]). The field is `link`, not `id`: `id` is the request id
    /// every message may carry.
    RevokeLink {
        /// The link's id.
        link: String,
    },
    /// Host only: the room's audit trail, newest first (answered with
    /// [`ServerMessage::AuditLog`]).
    Audit {
        /// At most this many entries; by default all the room keeps.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// Something for the room's ghost (an AI participant): ask, accept, reject, cancel or
    /// undo. The server checks the role (writers only, except asking for an explanation)
    /// and the bounds, then relays it to everyone as [`ServerMessage::Ghost`].
    Ghost {
        /// What is asked.
        command: GhostCommand,
    },
    /// A ghost publishes its requests and pending suggestions. The server checks the
    /// bounds, keeps the newest per connection (for joiners) and relays it to everyone as
    /// [`ServerMessage::GhostState`].
    GhostState {
        /// The ghost's state; replaces its previous one.
        state: GhostState,
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
    /// The seat this connection holds: a person's place in the room, which keeps its role
    /// across reconnects. A person's companion connections share it. Host messages
    /// (`set_role`, `kick`) name seats.
    pub seat: String,
    /// Whether the name was verified by sign-in. Without accounts it is always false: the
    /// name is what the client said (made unique in the room).
    #[serde(default)]
    pub verified: bool,
    /// The id (not the token) of the link the seat came through, so the host can revoke it
    /// with a kick.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
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

/// A seat and the token that reconnects to it (sent in [`ServerMessage::Welcome`]). Clients
/// keep the token and present it instead of the link's on their next connection, as do a
/// person's companion connections, so the seat keeps its role and one link use is one person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SeatToken {
    /// The seat's id.
    pub id: String,
    /// A room token bound to this seat.
    pub token: String,
}

/// One join link of a room, as the host sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LinkInfo {
    /// The link's id.
    pub id: String,
    /// The role it grants.
    pub role: Role,
    /// The join link (`.../join/ROOM?token=...`).
    pub url: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at: u64,
    /// When it stops working, milliseconds since the Unix epoch.
    pub expires_at: u64,
    /// How many seats it may create; unlimited when absent.
    pub max_uses: Option<u32>,
    /// How many seats it created.
    pub uses: u32,
    /// Whether the host revoked it.
    pub revoked: bool,
    /// The one signed-in user it is for (`email:...`, `sub:...`, or `user:ID` for the
    /// room owner's own link); anyone with the link when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_user: Option<String>,
}

/// What an audit entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditKind {
    /// A seat's first connection entered the room.
    Join,
    /// A seat's last connection left.
    Leave,
    /// The host changed a seat's role (`detail` is the new role).
    RoleChanged,
    /// The host removed a seat.
    Kicked,
    /// The host let a waiting joiner in.
    Admitted,
    /// The host turned a waiting joiner away, or nobody answered in time.
    Refused,
    /// A link was created (`detail` is its role).
    LinkCreated,
    /// A link was revoked.
    LinkRevoked,
    /// Approval was turned on or off (`detail` is `on` or `off`).
    ApprovalChanged,
    /// A run or debug session started (`detail` is the entry file).
    RunStarted,
}

/// One entry of a room's audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEntry {
    /// When, milliseconds since the Unix epoch.
    pub ts: u64,
    /// What happened.
    pub kind: AuditKind,
    /// Who did it: a display name with the seat in brackets, or `rest` for a REST call.
    pub actor: String,
    /// Whom or what it was done to: a seat or link id, or empty.
    pub subject: String,
    /// More about it (a role, a path, `on`/`off`).
    pub detail: String,
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
        /// The role of this connection's seat.
        role: Role,
        /// Everyone in the room, this client included.
        participants: Vec<Participant>,
        /// This connection's seat, with the token to reconnect to it.
        seat: SeatToken,
        /// The name as assigned: the one asked for, with ` (2)` (3, ...) appended when
        /// someone on another seat has it.
        name: String,
        /// Whether the room requires the host's approval for new joiners.
        approval: bool,
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
    /// A seat's role changed (to everyone).
    RoleChanged {
        /// The seat.
        seat: String,
        /// Its role now.
        role: Role,
        /// Who changed it (display name).
        by: String,
        /// The id of the `set_role` request this answers (only in the asker's copy).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        responding_to: Option<u64>,
    },
    /// This connection's seat was removed by the host; the connection is closed (4403) next.
    Kicked {
        /// Who removed it (display name).
        by: String,
    },
    /// A seat was removed by the host (to everyone else; the kicked get
    /// [`ServerMessage::Kicked`]).
    SeatKicked {
        /// The seat.
        seat: String,
        /// Who removed it (display name).
        by: String,
        /// The id of the `kick` request this answers (only in the asker's copy).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        responding_to: Option<u64>,
    },
    /// This connection waits for the host's approval: nothing of the room arrives until it
    /// is let in (`welcome` and the sync follow) or turned away ([`ServerMessage::Refused`]).
    Lobby {
        /// What is going on, for humans.
        message: String,
    },
    /// Someone waits to join (to the host's connections): answer with `admit` or `refuse`.
    JoinRequest {
        /// The seat they would take.
        seat: String,
        /// Their name: the one they gave, or their provider's when they signed in.
        name: String,
        /// Their kind of client.
        client: String,
        /// Whether the name was verified by sign-in (see [`Participant::verified`]).
        #[serde(default)]
        verified: bool,
    },
    /// A join request was answered (to the host's connections), or timed out, or the
    /// joiner left.
    JoinRequestClosed {
        /// The seat.
        seat: String,
        /// Whether they were let in.
        admitted: bool,
        /// Who answered (display name); `timeout` or `left` when nobody did.
        by: String,
        /// The id of the `admit` or `refuse` request this answers (only in the asker's copy).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        responding_to: Option<u64>,
    },
    /// The host turned this waiting connection away; it is closed (4403) next.
    Refused {
        /// Why, for humans.
        message: String,
    },
    /// The room's approval setting changed (to everyone).
    ApprovalChanged {
        /// Whether joiners wait for the host's approval now.
        on: bool,
        /// Who changed it (display name).
        by: String,
        /// The id of the `set_approval` request this answers (only in the asker's copy).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        responding_to: Option<u64>,
    },
    /// The room's links (the answer to `list_links`, `create_link` and `revoke_link`).
    Links {
        /// Every link of the room, newest first.
        links: Vec<LinkInfo>,
        /// The id of the request this answers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        responding_to: Option<u64>,
    },
    /// The room's audit trail, newest first (the answer to `audit`).
    AuditLog {
        /// The entries.
        entries: Vec<AuditEntry>,
        /// The id of the request this answers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        responding_to: Option<u64>,
    },
    /// Someone's command for the ghost (to every mesh client, so everyone sees who asked
    /// what). An `ask` always names its mode here: the server fills in the role's default.
    Ghost {
        /// Who sent it (connection id).
        from: u64,
        /// Their display name.
        name: String,
        /// Their role when they sent it.
        role: Role,
        /// The command.
        command: GhostCommand,
        /// The id of the `ghost` request this relays (only in the sender's copy).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        responding_to: Option<u64>,
    },
    /// A ghost's requests and suggestions (sent when it publishes them, and to joiners);
    /// it replaces the previous state of the same connection, and goes with it when that
    /// connection leaves.
    GhostState {
        /// The publishing connection (the ghost).
        from: u64,
        /// Its state.
        state: GhostState,
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
mod host_control_tests {
    use super::*;
    use serde_json::json;

    fn json_of<T: Serialize>(v: &T) -> serde_json::Value {
        serde_json::to_value(v).unwrap()
    }

    #[test]
    fn host_messages_are_tagged_as_decision_011_names_them() {
        let cases = [
            (
                ClientMessage::Auth { token: "t".into() },
                json!({"type": "auth", "token": "t"}),
            ),
            (
                ClientMessage::SetRole {
                    seat: "s1".into(),
                    role: Role::Writer,
                },
                json!({"type": "set_role", "seat": "s1", "role": "writer"}),
            ),
            (
                ClientMessage::Kick { seat: "s1".into() },
                json!({"type": "kick", "seat": "s1"}),
            ),
            (
                ClientMessage::Admit { seat: "s1".into() },
                json!({"type": "admit", "seat": "s1"}),
            ),
            (
                ClientMessage::Refuse { seat: "s1".into() },
                json!({"type": "refuse", "seat": "s1"}),
            ),
            (
                ClientMessage::SetApproval { on: true },
                json!({"type": "set_approval", "on": true}),
            ),
            (
                ClientMessage::CreateLink {
                    role: Role::Reader,
                    expires_in_secs: Some(60),
                    max_uses: None,
                    for_user: None,
                },
                json!({"type": "create_link", "role": "reader", "expires_in_secs": 60}),
            ),
            (ClientMessage::ListLinks, json!({"type": "list_links"})),
            (
                ClientMessage::RevokeLink { link: "l1".into() },
                json!({"type": "revoke_link", "link": "l1"}),
            ),
            (ClientMessage::Audit { limit: None }, json!({"type": "audit"})),
        ];
        for (msg, want) in cases {
            assert_eq!(json_of(&msg), want);
            let back: Request = serde_json::from_value(want).unwrap();
            assert_eq!(back.message, msg);
        }
        let with_id: Request = serde_json::from_value(json!({"type": "kick", "seat": "s", "id": 4})).unwrap();
        assert_eq!(with_id, Request::new(4, ClientMessage::Kick { seat: "s".into() }));
    }

    #[test]
    fn server_host_messages_have_the_recorded_shapes() {
        let welcome = ServerMessage::Welcome {
            version: 1,
            conn_id: 3,
            role: Role::Writer,
            participants: vec![Participant {
                conn_id: 3,
                seat: "s1".into(),
                verified: false,
                link: None,
                name: "ada (2)".into(),
                color: "#e6194b".into(),
                role: Role::Writer,
                client: "vscode".into(),
                doc_client_id: None,
                companion: false,
            }],
            seat: SeatToken {
                id: "s1".into(),
                token: "tok".into(),
            },
            name: "ada (2)".into(),
            approval: false,
        };
        assert_eq!(
            json_of(&welcome),
            json!({"type": "welcome", "version": 1, "conn_id": 3, "role": "writer",
                "participants": [{"conn_id": 3, "seat": "s1", "verified": false, "name": "ada (2)",
                    "color": "#e6194b", "role": "writer", "client": "vscode"}],
                "seat": {"id": "s1", "token": "tok"}, "name": "ada (2)", "approval": false})
        );
        let cases = [
            (
                ServerMessage::RoleChanged {
                    seat: "s1".into(),
                    role: Role::Reader,
                    by: "host".into(),
                    responding_to: None,
                },
                json!({"type": "role_changed", "seat": "s1", "role": "reader", "by": "host"}),
            ),
            (
                ServerMessage::Kicked { by: "host".into() },
                json!({"type": "kicked", "by": "host"}),
            ),
            (
                ServerMessage::SeatKicked {
                    seat: "s1".into(),
                    by: "host".into(),
                    responding_to: Some(2),
                },
                json!({"type": "seat_kicked", "seat": "s1", "by": "host", "responding_to": 2}),
            ),
            (
                ServerMessage::Lobby { message: "wait".into() },
                json!({"type": "lobby", "message": "wait"}),
            ),
            (
                ServerMessage::JoinRequest {
                    seat: "s2".into(),
                    name: "bob".into(),
                    client: "neovim".into(),
                    verified: true,
                },
                json!({"type": "join_request", "seat": "s2", "name": "bob", "client": "neovim", "verified": true}),
            ),
            (
                ServerMessage::JoinRequestClosed {
                    seat: "s2".into(),
                    admitted: true,
                    by: "host".into(),
                    responding_to: None,
                },
                json!({"type": "join_request_closed", "seat": "s2", "admitted": true, "by": "host"}),
            ),
            (
                ServerMessage::Refused { message: "no".into() },
                json!({"type": "refused", "message": "no"}),
            ),
            (
                ServerMessage::ApprovalChanged {
                    on: true,
                    by: "host".into(),
                    responding_to: None,
                },
                json!({"type": "approval_changed", "on": true, "by": "host"}),
            ),
            (
                ServerMessage::Links {
                    links: vec![LinkInfo {
                        id: "l1".into(),
                        role: Role::Reader,
                        url: "http://x/join/r?token=t".into(),
                        created_at: 1,
                        expires_at: 2,
                        max_uses: Some(3),
                        uses: 0,
                        revoked: false,
                        for_user: None,
                    }],
                    responding_to: Some(9),
                },
                json!({"type": "links", "links": [{"id": "l1", "role": "reader",
                    "url": "http://x/join/r?token=t", "created_at": 1, "expires_at": 2,
                    "max_uses": 3, "uses": 0, "revoked": false}], "responding_to": 9}),
            ),
            (
                ServerMessage::AuditLog {
                    entries: vec![AuditEntry {
                        ts: 5,
                        kind: AuditKind::RoleChanged,
                        actor: "ada [s1]".into(),
                        subject: "s2".into(),
                        detail: "writer".into(),
                    }],
                    responding_to: None,
                },
                json!({"type": "audit_log", "entries": [{"ts": 5, "kind": "role_changed",
                    "actor": "ada [s1]", "subject": "s2", "detail": "writer"}]}),
            ),
        ];
        for (msg, want) in cases {
            assert_eq!(json_of(&msg), want);
            assert_eq!(serde_json::from_value::<ServerMessage>(want).unwrap(), msg);
        }
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
