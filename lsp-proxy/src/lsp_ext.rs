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
}

/// Connection state and room, for status bars.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// `idle`, `connecting`, `connected` or `offline`.
    pub state: String,
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
