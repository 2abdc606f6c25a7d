//! mesh's LSP extensions (`mesh/*`), as documented in `docs/lsp-extensions.md`. One
//! definition per method; the editor plugins mirror these.

use mesh_protocol::messages::RunStream;
use serde::{Deserialize, Serialize};
use tower_lsp_server::lsp_types::{notification::Notification, request::Request, Position, Range};

/// A selection: where it started and where the caret is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// Where the selection started.
    pub anchor: Position,
    /// The caret.
    pub head: Position,
}

/// A participant as editors see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Participant {
    /// Connection id.
    pub conn_id: u64,
    /// Display name.
    pub name: String,
    /// Colour, `#rrggbb`.
    pub color: String,
    /// `host`, `writer` or `reader`.
    pub role: String,
    /// Kind of client.
    pub client: String,
    /// Whether this is the editor's own connection.
    pub you: bool,
    /// Their seat (decision 011): what host requests (`mesh/setRole`, `mesh/kick`) name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seat: Option<String>,
    /// Whether the name is verified (signed in); without accounts never.
    #[serde(default)]
    pub verified: bool,
    /// The id of the link their seat came in by: what a host revokes so that they cannot come
    /// back with it (`mesh/revokeLink`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

impl Participant {
    /// A room participant as editors see it; `me` is our own connection.
    pub fn of(p: &mesh_protocol::messages::Participant, me: Option<u64>) -> Self {
        Participant {
            conn_id: p.conn_id,
            name: p.name.clone(),
            color: p.color.clone(),
            role: role_name(p.role).into(),
            client: p.client.clone(),
            you: Some(p.conn_id) == me,
            seat: Some(p.seat.clone()),
            verified: p.verified,
            link: p.link.clone(),
        }
    }
}

/// Connection state and room, for status bars.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// `idle`, `connecting`, `lobby` (waiting for the host to let us in), `connected` or
    /// `offline`.
    pub state: String,
    /// What the lobby says while `state` is `lobby`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lobby: Option<String>,
    /// Our seat, once the room gave us one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seat: Option<String>,
    /// Whether joiners wait for the host's approval.
    #[serde(default)]
    pub approval: bool,
    /// Join requests waiting for the host (hosts only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub join_requests: Vec<JoinRequestParams>,
    /// Room id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// Join link (writer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Read-only link, when known (the host has it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read_link: Option<String>,
    /// Our role.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Server base URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Our connection id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub you: Option<u64>,
    /// Everyone in the room.
    pub participants: Vec<Participant>,
    /// Room paths in conflict: the local text is kept, the room's version is in
    /// `.mesh/conflicts/<path>`, and the path is out of sync until `mesh/resolve`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<String>,
}

/// `mesh/share` params.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ShareParams {
    /// Server base URL; defaults to the configured one.
    #[serde(default)]
    pub server: Option<String>,
    /// Room name; defaults to the folder's name.
    #[serde(default)]
    pub name: Option<String>,
}

/// `mesh/share` result.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShareResult {
    /// Room id.
    pub room: String,
    /// Writer link to send to colleagues.
    pub link: String,
    /// Reader link.
    pub read_link: String,
}

/// `mesh/join` params.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinParams {
    /// The join link.
    pub link: String,
}

/// `mesh/join` result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JoinResult {
    /// Room id.
    pub room: String,
    /// How many files the room has.
    pub files: usize,
    /// Local files that differ from the room and were left alone.
    pub conflicts: Vec<String>,
}

/// `mesh/chat` params.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatParams {
    /// The message.
    pub text: String,
}

/// `mesh/ghostAsk` params: a question for the room's ghost, with the editor's selection.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GhostAskParams {
    /// What to ask.
    pub text: String,
    /// `explain`, `suggest` or `write`; absent: the role's default (suggest for writers,
    /// explain for readers).
    #[serde(default)]
    pub mode: Option<mesh_protocol::ghost::GhostMode>,
    /// The file the question is about, as the editor names it.
    #[serde(default)]
    pub uri: Option<String>,
    /// The first selected line, 1-based.
    #[serde(default)]
    pub start_line: Option<u32>,
    /// The last selected line, 1-based, inclusive.
    #[serde(default)]
    pub end_line: Option<u32>,
    /// The selected text.
    #[serde(default)]
    pub selection: Option<String>,
}

/// `mesh/ghost` params: a decision about the ghost's work, sent as the typed `ghost` message
/// (asking goes through `mesh/ghostAsk`, which names the file by URI). Writers only; the
/// server checks the role again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum GhostDecisionParams {
    /// Apply the pending suggestion `suggestion`.
    Accept {
        /// The suggestion's id.
        suggestion: u64,
    },
    /// Drop the pending suggestion `suggestion`.
    Reject {
        /// The suggestion's id.
        suggestion: u64,
    },
    /// Stop request `request`, or the newest going one when absent.
    Cancel {
        /// The request's number.
        #[serde(default)]
        request: Option<u64>,
    },
    /// Undo the ghost's newest change.
    Undo,
}

impl From<GhostDecisionParams> for mesh_protocol::ghost::GhostCommand {
    fn from(d: GhostDecisionParams) -> Self {
        use mesh_protocol::ghost::GhostCommand;
        match d {
            GhostDecisionParams::Accept { suggestion } => GhostCommand::Accept { suggestion },
            GhostDecisionParams::Reject { suggestion } => GhostCommand::Reject { suggestion },
            GhostDecisionParams::Cancel { request } => GhostCommand::Cancel { request },
            GhostDecisionParams::Undo => GhostCommand::Undo,
        }
    }
}

/// `mesh/ghostState` params: every ghost of the room with its requests and pending
/// suggestions, the full set on every change (an empty list: no ghost publishes).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GhostStateParams {
    /// The publishers, by connection id.
    pub ghosts: Vec<GhostView>,
}

/// One ghost as the editor shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GhostView {
    /// The publishing connection.
    pub conn_id: u64,
    /// Its display name (`ghost (MODEL)`), or `connection N` when it is not listed.
    pub name: String,
    /// Requests going and recently finished, oldest first.
    pub requests: Vec<GhostRequestView>,
    /// Suggestions waiting for a writer, oldest first.
    pub suggestions: Vec<GhostSuggestionView>,
}

/// One request of a ghost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GhostRequestView {
    /// Its number in the room.
    pub id: u64,
    /// Who asked.
    pub asker: String,
    /// `explain`, `suggest` or `write`.
    pub mode: mesh_protocol::ghost::GhostMode,
    /// What was asked.
    pub text: String,
    /// `working`, `done`, `failed` or `cancelled`.
    pub status: mesh_protocol::ghost::GhostRequestStatus,
    /// Characters of the answer received so far.
    pub received_chars: u64,
    /// Why it failed, or who cancelled it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// A pending suggestion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GhostSuggestionView {
    /// Its id (accept and reject name it).
    pub id: u64,
    /// Who asked for it.
    pub asker: String,
    /// The files it changes.
    pub files: Vec<GhostFile>,
    /// Its edits, in order; empty when `omitted`.
    pub edits: Vec<GhostEditView>,
    /// The edits were too large to publish; the answer is in chat.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub omitted: bool,
}

/// A file a suggestion names: its room path, and its URI in the shared folder when it has
/// one (a suggestion may create a file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GhostFile {
    /// The room path.
    pub path: String,
    /// The file in the local folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
}

/// One search/replace edit: the first occurrence of `search` in the file becomes
/// `replace`; an empty `search` appends `replace` at the end of the file, or creates the file
/// when the room lacks it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GhostEditView {
    /// The room path.
    pub path: String,
    /// The file in the local folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// The text replaced, exactly as in the file.
    pub search: String,
    /// The text put in its place.
    pub replace: String,
}

/// A chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatEntry {
    /// Unique id.
    pub id: String,
    /// Author's name.
    pub author: String,
    /// Author's connection id.
    pub conn_id: u64,
    /// Text.
    pub text: String,
    /// Milliseconds since the Unix epoch.
    pub ts: u64,
}

/// `mesh/chatHistory` result.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatHistory {
    /// Oldest first.
    pub messages: Vec<ChatEntry>,
}

/// `mesh/resolve` (request) params: the file in conflict, by `uri` or by room `path`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResolveParams {
    /// The file's URI.
    #[serde(default)]
    pub uri: Option<String>,
    /// Its room path.
    #[serde(default)]
    pub path: Option<String>,
}

/// `mesh/follow` (request) params.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FollowParams {
    /// Whom to follow; `null` stops.
    pub conn_id: Option<u64>,
}

/// `mesh/cursor` params.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CursorParams {
    /// The document.
    pub uri: String,
    /// Its selections (the first is primary).
    pub selections: Vec<Selection>,
}

/// `mesh/activeEditor` params.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActiveEditorParams {
    /// The focused document, if any.
    pub uri: Option<String>,
    /// Its visible lines.
    #[serde(default)]
    pub visible_range: Option<Range>,
}

/// One remote cursor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemoteCursor {
    /// Whose (connection id, or the Yjs client id for clients that did not say hello).
    pub conn_id: u64,
    /// Display name.
    pub name: String,
    /// Colour.
    pub color: String,
    /// Selections in the editor's text.
    pub selections: Vec<Selection>,
}

/// `mesh/cursors` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CursorsParams {
    /// The document.
    pub uri: String,
    /// Every remote cursor in it.
    pub cursors: Vec<RemoteCursor>,
}

/// `mesh/follow` (notification) params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FollowUpdate {
    /// Who moved.
    pub conn_id: u64,
    /// Their name.
    pub name: String,
    /// The document they look at.
    pub uri: String,
    /// What they see.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub visible_range: Option<Range>,
    /// Their selections.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selections: Option<Vec<Selection>>,
}

/// `mesh/notify` params.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NotifyParams {
    /// `info`, `warning` or `error`.
    pub level: String,
    /// For humans.
    pub message: String,
}

/// `mesh/documentHash` params.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DocumentHashParams {
    /// The document.
    pub uri: String,
}

/// `mesh/documentHash` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentHashResult {
    /// The version the editor last reported.
    pub version: i32,
    /// SHA-256 of the text as UTF-8, lower-case hex.
    pub sha256: String,
}

/// `mesh/run` params: which file of the room to run. `uri` (a file of the shared folder) or
/// `path` (a room path, relative to the folder) names it; `uri` wins when both are given.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunParams {
    /// The file, as the editor names it.
    #[serde(default)]
    pub uri: Option<String>,
    /// The file, as the room names it.
    #[serde(default)]
    pub path: Option<String>,
    /// A registry language id, to override the file's extension.
    #[serde(default)]
    pub language: Option<String>,
}

/// `mesh/run` result: the run the server started, or queued (its caps are reached).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunResult {
    /// The run's id, as in the `mesh/run*` notifications.
    pub run_id: String,
    /// Set when the run waits for a free sandbox: its 1-based place in the server's queue
    /// (`mesh/runQueued` follows as it moves, then `mesh/runStarted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued: Option<u32>,
}

/// `mesh/runInput` params.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunInputParams {
    /// The run.
    pub run_id: String,
    /// Text for the program's stdin.
    pub data: String,
    /// Close stdin after this text.
    #[serde(default)]
    pub eof: bool,
}

/// `mesh/runStop` params.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunStopParams {
    /// The run.
    pub run_id: String,
}

/// `mesh/runStarted` params: someone in the room (maybe you) started a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunStartedParams {
    /// The run's id.
    pub run_id: String,
    /// The entry file, as the room names it.
    pub path: String,
    /// The entry file in the local folder, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// The language id.
    pub language: String,
    /// Who started it (connection id; 0 for a run started through the REST API).
    pub by: u64,
    /// Their name.
    pub by_name: String,
    /// Whether this editor's own connection started it.
    pub you: bool,
    /// The program of the room's debug session (`run_id` is the session's id): its output
    /// also reaches the debugger's console, so editors show it beside the debugger, not as a
    /// run of its own; its input is typed here all the same.
    #[serde(default)]
    pub debug: bool,
}

/// `mesh/runQueued` params: a run (or, with `debug`, a debug session) of the room waits for
/// a free sandbox; sent again each time it moves. `mesh/runStarted` follows with the same
/// id, or `mesh/runExited` if it is stopped while it waits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunQueuedParams {
    /// The run's id.
    pub run_id: String,
    /// The entry file, as the room names it.
    pub path: String,
    /// The entry file in the local folder, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// The language id.
    pub language: String,
    /// Who asked for it (connection id; 0 for a run asked for through the REST API).
    pub by: u64,
    /// Their name.
    pub by_name: String,
    /// Whether this editor's own connection asked for it.
    pub you: bool,
    /// 1-based place in the server's queue.
    pub position: u32,
    /// The cap it waits on (`max_runs`, `max_runs_per_room`, `max_runs_per_person`,
    /// `max_debug_sessions`).
    pub limit: String,
    /// A debug session, not a run.
    pub debug: bool,
    /// What to show, e.g. `queued: 2nd in line, waiting for a free run slot on this server
    /// (max_runs)`.
    pub message: String,
}

/// `mesh/debugStarted` params: someone in the room (maybe you) started a debug session,
/// which other editors may offer to join.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DebugStartedParams {
    /// The session's id.
    pub debug_id: String,
    /// The entry file, as the room names it.
    pub path: String,
    /// The entry file in the local folder, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// The language id.
    pub language: String,
    /// Who started it (connection id).
    pub by: u64,
    /// Their name.
    pub by_name: String,
    /// Whether this editor's own connection started it.
    pub you: bool,
}

/// `mesh/debugBreakpoints` params: the room's breakpoints in one file of a debug session,
/// everyone's merged; the full set for that file (an empty list clears it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DebugBreakpointsParams {
    /// The session's id.
    pub debug_id: String,
    /// The file, as the room names it.
    pub path: String,
    /// The file in the local folder, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// 1-based lines with a breakpoint.
    pub lines: Vec<u32>,
}

/// `mesh/debugEnded` params: a debug session in the room ended, for everyone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DebugEndedParams {
    /// The session's id.
    pub debug_id: String,
    /// The program's exit code, when it exited.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    /// Why it ended, when it was not the program's own exit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `mesh/runOutput` params: output of a run, as produced (ANSI escapes kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunOutputParams {
    /// The run.
    pub run_id: String,
    /// `compile`, `stdout` or `stderr`.
    pub stream: RunStream,
    /// The text.
    pub data: String,
}

/// `mesh/runExited` params: a run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunExitedParams {
    /// The run.
    pub run_id: String,
    /// `compile` (it ended while compiling) or `run`.
    pub stage: String,
    /// Exit status, when there is one (128 + signal when killed).
    pub code: Option<i64>,
    /// Wall-clock time of the last step, in milliseconds.
    pub duration_ms: u64,
    /// The limit that ended it: `time`, `memory`, `output` or `pids`.
    pub limit: Option<String>,
    /// Set when the run could not be carried out or followed (not the program's fault).
    pub error: Option<String>,
}

/// `mesh/presence` params: someone joined, left, changed role, or started or stopped
/// following you. `message` is the sentence to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceParams {
    /// `joined`, `left`, `roleChanged`, `kicked`, `followed` or `unfollowed`.
    pub kind: String,
    /// Their connection id (0 when not connected).
    pub conn_id: u64,
    /// Their seat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seat: Option<String>,
    /// Their name.
    pub name: String,
    /// Their role (the new one for `roleChanged`).
    pub role: String,
    /// It is about you (your own role changed).
    pub you: bool,
    /// What to show, e.g. `Bob is now a reader by Ada`.
    pub message: String,
}

/// `mesh/lobby` params: the room waits for the host to let us in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LobbyParams {
    /// The lobby's message, e.g. `waiting for the host to let you in`.
    pub message: String,
}

/// `mesh/joinRequest` params (hosts only): someone waits in the lobby; answer with
/// `mesh/admit` or `mesh/refuse`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequestParams {
    /// The seat they would take.
    pub seat: String,
    /// Their name: the one they gave, or their provider's when they signed in.
    pub name: String,
    /// Their kind of client.
    pub client: String,
    /// Whether the name was verified by sign-in.
    #[serde(default)]
    pub verified: bool,
}

/// `mesh/joinRequestClosed` params: a join request was answered (or expired).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequestClosedParams {
    /// The seat.
    pub seat: String,
    /// Their name.
    pub name: String,
    /// Whether they were let in.
    pub admitted: bool,
    /// Who answered, when a person did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

/// `mesh/ended` params: the room ended this session for good; the folder leaves the room and
/// its seat is forgotten.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndedParams {
    /// `kicked`, `refused` or `revoked` (the link or seat is no longer accepted).
    pub reason: String,
    /// What to show.
    pub message: String,
}

/// `mesh/setRole` params (host): give `seat` the role `role` (`reader`, `writer`, or `host`,
/// which makes you a writer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetRoleParams {
    /// The seat.
    pub seat: String,
    /// `reader`, `writer` or `host`.
    pub role: String,
}

/// `mesh/kick` params (host). The server does not say which link a seat came through, so
/// revoking it too is a second step the editors offer (`mesh/links`, `mesh/revokeLink`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KickParams {
    /// The seat.
    pub seat: String,
}

/// `mesh/admit` and `mesh/refuse` params (host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatParams {
    /// The waiting seat.
    pub seat: String,
}

/// `mesh/setApproval` params (host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalParams {
    /// Whether joiners wait for the host.
    pub on: bool,
}

/// `mesh/createLink` params (host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateLinkParams {
    /// `reader` or `writer`.
    pub role: String,
    /// Lifetime in seconds (the server's default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_secs: Option<u64>,
    /// How many seats it may create (unlimited when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_uses: Option<u32>,
}

/// `mesh/revokeLink` params (host).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeLinkParams {
    /// The link's id.
    pub id: String,
}

/// `mesh/audit` params (host).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditParams {
    /// The newest this many entries (the server's default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// `mesh/hostParticipants` result (host): who is in the room, who waits, and whether joiners
/// wait for approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostParticipants {
    /// Everyone connected (companion connections left out).
    pub participants: Vec<Participant>,
    /// Who waits in the lobby.
    pub waiting: Vec<JoinRequestParams>,
    /// Whether joiners wait for the host's approval.
    pub approval: bool,
}

/// One join link of the room, as `mesh/links` and `mesh/createLink` answer it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Link {
    /// The link's id (what `mesh/revokeLink` names).
    pub id: String,
    /// `reader`, `writer` or `host`.
    pub role: String,
    /// The join link to hand out.
    pub url: String,
    /// Created, milliseconds since the Unix epoch.
    pub created_at: u64,
    /// Stops working, milliseconds since the Unix epoch.
    pub expires_at: u64,
    /// How many seats it may create; unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_uses: Option<u32>,
    /// How many seats it created.
    pub uses: u32,
    /// Whether it was revoked.
    pub revoked: bool,
}

impl From<mesh_protocol::rest::LinkInfo> for Link {
    fn from(l: mesh_protocol::rest::LinkInfo) -> Self {
        Link {
            id: l.id,
            role: role_name(l.role).into(),
            url: l.url,
            created_at: l.created_at,
            expires_at: l.expires_at,
            max_uses: l.max_uses,
            uses: l.uses,
            revoked: l.revoked,
        }
    }
}

/// `mesh/links` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Links {
    /// Every link of the room, newest first.
    pub links: Vec<Link>,
}

/// `mesh/audit` result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Audit {
    /// Newest first: `ts` (milliseconds since the Unix epoch), `kind` (`join`, `leave`,
    /// `role_changed`, `kicked`, `admitted`, `refused`, `link_created`, `link_revoked`,
    /// `approval_changed`, `run_started`), `actor`, `subject`, `detail`.
    pub entries: Vec<mesh_protocol::rest::AuditEntry>,
}

/// A role as editors show it: `reader`, `writer`, `host`.
pub fn role_name(role: mesh_protocol::messages::Role) -> &'static str {
    match role {
        mesh_protocol::messages::Role::Reader => "reader",
        mesh_protocol::messages::Role::Writer => "writer",
        mesh_protocol::messages::Role::Host => "host",
    }
}

macro_rules! notification {
    ($name:ident, $method:literal, $params:ty) => {
        #[doc = concat!("`", $method, "`")]
        pub enum $name {}
        impl Notification for $name {
            type Params = $params;
            const METHOD: &'static str = $method;
        }
    };
}

notification!(StatusNotification, "mesh/status", Status);
notification!(ParticipantsNotification, "mesh/participants", ParticipantsParams);
notification!(CursorsNotification, "mesh/cursors", CursorsParams);
notification!(FollowNotification, "mesh/follow", FollowUpdate);
notification!(FollowStoppedNotification, "mesh/followStopped", FollowStopped);
notification!(ChatMessageNotification, "mesh/chatMessage", ChatMessageParams);
notification!(GhostStateNotification, "mesh/ghostState", GhostStateParams);
notification!(NotifyNotification, "mesh/notify", NotifyParams);
notification!(RunStartedNotification, "mesh/runStarted", RunStartedParams);
notification!(RunQueuedNotification, "mesh/runQueued", RunQueuedParams);
notification!(RunOutputNotification, "mesh/runOutput", RunOutputParams);
notification!(RunExitedNotification, "mesh/runExited", RunExitedParams);
notification!(DebugStartedNotification, "mesh/debugStarted", DebugStartedParams);
notification!(
    DebugBreakpointsNotification,
    "mesh/debugBreakpoints",
    DebugBreakpointsParams
);
notification!(DebugEndedNotification, "mesh/debugEnded", DebugEndedParams);
notification!(PresenceNotification, "mesh/presence", PresenceParams);
notification!(LobbyNotification, "mesh/lobby", LobbyParams);
notification!(JoinRequestNotification, "mesh/joinRequest", JoinRequestParams);
notification!(
    JoinRequestClosedNotification,
    "mesh/joinRequestClosed",
    JoinRequestClosedParams
);
notification!(EndedNotification, "mesh/ended", EndedParams);

/// `mesh/participants` params.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParticipantsParams {
    /// Everyone.
    pub participants: Vec<Participant>,
}

/// `mesh/followStopped` params.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FollowStopped {
    /// Why.
    pub reason: String,
}

/// `mesh/chatMessage` params.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChatMessageParams {
    /// The message.
    pub entry: ChatEntry,
}

/// `mesh/documentHash`, a request from the proxy to the editor.
pub enum DocumentHash {}
impl Request for DocumentHash {
    type Params = DocumentHashParams;
    type Result = DocumentHashResult;
    const METHOD: &'static str = "mesh/documentHash";
}

/// Every `mesh/*` method name, for the check against the documentation.
pub const METHODS: &[&str] = &[
    "mesh/share",
    "mesh/join",
    "mesh/leave",
    "mesh/status",
    "mesh/chat",
    "mesh/chatHistory",
    "mesh/ghostAsk",
    "mesh/ghost",
    "mesh/ghostState",
    "mesh/follow",
    "mesh/run",
    "mesh/runInput",
    "mesh/runStop",
    "mesh/cursor",
    "mesh/activeEditor",
    "mesh/stopFollowing",
    "mesh/resolve",
    "mesh/participants",
    "mesh/cursors",
    "mesh/followStopped",
    "mesh/chatMessage",
    "mesh/notify",
    "mesh/runStarted",
    "mesh/runQueued",
    "mesh/runOutput",
    "mesh/runExited",
    "mesh/debugStarted",
    "mesh/debugBreakpoints",
    "mesh/debugEnded",
    "mesh/documentHash",
    "mesh/presence",
    "mesh/lobby",
    "mesh/joinRequest",
    "mesh/joinRequestClosed",
    "mesh/ended",
    "mesh/hostParticipants",
    "mesh/setRole",
    "mesh/kick",
    "mesh/admit",
    "mesh/refuse",
    "mesh/setApproval",
    "mesh/links",
    "mesh/createLink",
    "mesh/revokeLink",
    "mesh/audit",
];

#[cfg(test)]
mod tests {
    #[test]
    fn every_documented_method_is_known_and_vice_versa() {
        let doc = include_str!("../../docs/lsp-extensions.md");
        let mut documented: Vec<&str> = doc
            .split('`')
            .filter(|s| s.starts_with("mesh/") && s.len() > 5 && s[5..].chars().all(|c| c.is_ascii_alphanumeric()))
            .collect();
        documented.sort_unstable();
        documented.dedup();
        let mut known = super::METHODS.to_vec();
        known.sort_unstable();
        assert_eq!(documented, known);
    }

    #[test]
    fn debug_started_is_camel_case_and_leaves_out_a_missing_uri() {
        let params = super::DebugStartedParams {
            debug_id: "d1".into(),
            path: "src/app.py".into(),
            uri: None,
            language: "python".into(),
            by: 7,
            by_name: "Grace".into(),
            you: false,
        };
        assert_eq!(
            serde_json::to_value(&params).unwrap(),
            serde_json::json!({
                "debugId": "d1", "path": "src/app.py", "language": "python",
                "by": 7, "byName": "Grace", "you": false,
            })
        );
    }

    #[test]
    fn debug_breakpoints_and_ended_are_camel_case_and_leave_out_what_is_missing() {
        let breakpoints = super::DebugBreakpointsParams {
            debug_id: "d1".into(),
            path: "src/app.py".into(),
            uri: Some("file:///work/src/app.py".into()),
            lines: vec![3, 12],
        };
        assert_eq!(
            serde_json::to_value(&breakpoints).unwrap(),
            serde_json::json!({
                "debugId": "d1", "path": "src/app.py", "uri": "file:///work/src/app.py", "lines": [3, 12],
            })
        );
        let ended = super::DebugEndedParams {
            debug_id: "d1".into(),
            exit_code: Some(0),
            error: None,
        };
        assert_eq!(
            serde_json::to_value(&ended).unwrap(),
            serde_json::json!({ "debugId": "d1", "exitCode": 0 })
        );
    }
}
