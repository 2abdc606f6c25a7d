//! Request and response bodies of the REST API (`/api/...`). The server documents them as
//! OpenAPI; the CLI uses the same types to read the answers.

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode;
use crate::messages::{Participant, Role};

pub use crate::messages::{AuditEntry, AuditKind, LinkInfo};
use crate::room_id::RoomId;

/// The body of every REST error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiError {
    /// What went wrong, machine-readable.
    pub code: ErrorCode,
    /// What went wrong and what to do, for humans.
    pub message: String,
}

/// `POST /api/sessions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    /// A human name for the room (at most 100 characters); defaults to "untitled".
    #[serde(default)]
    pub name: Option<String>,
    /// Whether joiners wait for the host's approval (default: no). The host changes it later
    /// with `PUT /api/sessions/{id}/approval` or `set_approval`.
    #[serde(default)]
    pub approval: Option<bool>,
}

/// The answer to `POST /api/sessions`: the new room and the tokens that open it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct CreatedSession {
    /// The room id.
    #[schema(value_type = String)]
    pub id: RoomId,
    /// The room's name.
    pub name: String,
    /// A link that lets a colleague join as a writer (it carries a writer token).
    pub join_link: String,
    /// A link that lets someone join as a reader.
    pub read_link: String,
    /// The WebSocket URL of the room (add `?token=`).
    pub ws_url: String,
    /// Token of the host's link: keep it. The first connection with it takes the host's seat;
    /// it also authorises the host's REST calls and deletes the room.
    pub host_token: String,
    /// Token with the writer role (the one in `join_link`).
    pub writer_token: String,
    /// Token with the reader role (the one in `read_link`).
    pub reader_token: String,
}

/// One file of a room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FileInfo {
    /// Relative path with `/` separators.
    pub path: String,
    /// Length in UTF-16 code units.
    pub len_utf16: u32,
}

/// `GET /api/sessions/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionInfo {
    /// The room id.
    #[schema(value_type = String)]
    pub id: RoomId,
    /// The room's name.
    pub name: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at: u64,
    /// The role of the token used to ask.
    pub your_role: Role,
    /// Who is connected now.
    pub participants: Vec<Participant>,
    /// The room's files, sorted by path.
    pub files: Vec<FileInfo>,
}

/// One line of `GET /api/sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SessionSummary {
    /// The room id.
    #[schema(value_type = String)]
    pub id: RoomId,
    /// The room's name.
    pub name: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at: u64,
    /// How many participants are connected now (0 when the room is not loaded).
    pub participants: u32,
}

/// A language that runs can use (`GET /api/languages`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LanguageInfo {
    /// Registry key, e.g. `python`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// File extensions that select this language.
    pub extensions: Vec<String>,
}

/// `GET /livez` and `GET /readyz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`, or what is wrong.
    pub status: String,
}

/// `POST /api/sessions/{id}/runs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRun {
    /// The entry file, a path of the room.
    pub path: String,
    /// A registry language id; by default the file's extension decides.
    #[serde(default)]
    pub language: Option<String>,
    /// The program's whole stdin (at most 64 KiB), closed after it; without it, participants
    /// in the room may type the input.
    #[serde(default)]
    pub stdin: Option<String>,
}

/// The most stdin a REST run may carry.
pub const MAX_REST_STDIN_BYTES: usize = 64 * 1024;

/// The answer to `POST /api/sessions/{id}/runs`: the run started (or, with `queued`, waits
/// for a free sandbox); its output streams to the room (where participants can type its
/// input), and `GET .../runs/{run}` has it once it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StartedRun {
    /// The run's id.
    pub run_id: String,
    /// Set when the run waits for a free sandbox (the server's caps are reached) instead of
    /// starting now: its place in the queue. The room hears `run_queued` as it moves and
    /// `run_started` when it starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued: Option<QueuePlace>,
}

/// A run's place in the server's queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QueuePlace {
    /// 1 is next.
    pub position: u32,
    /// The cap it waits on, as its configuration key (e.g. `max_runs_per_person`).
    pub limit: String,
}

/// A run in the room's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RunRecord {
    /// The run's id.
    pub run_id: String,
    /// The entry file.
    pub path: String,
    /// The language id.
    pub language: String,
    /// Who started it (display name).
    pub by: String,
    /// Start time, milliseconds since the Unix epoch.
    pub started_at: u64,
    /// `compile` or `run`.
    pub stage: String,
    /// Exit status, if any.
    pub code: Option<i64>,
    /// Wall-clock time of the last step, in milliseconds.
    pub duration_ms: u64,
    /// The limit that ended it, if any.
    pub limit: Option<String>,
    /// A failure of the run service (not the program), or `stopped`.
    pub error: Option<String>,
    /// Standard output (the first 64 KiB).
    pub stdout: String,
    /// Standard error and compiler output (the first 64 KiB).
    pub stderr: String,
}

/// `POST /api/sessions/{id}/links`: a new join link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateLink {
    /// The role it grants: `reader` or `writer`.
    pub role: Role,
    /// How long it works, in seconds; by default the server's token lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_secs: Option<u64>,
    /// How many seats it may create; unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_uses: Option<u32>,
    /// An invitation for one signed-in user, by email or by the provider's subject: only
    /// that user can use it (servers with accounts only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_user: Option<String>,
}

/// `PUT /api/sessions/{id}/seats/{seat}/role`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetRole {
    /// The seat's new role; `host` hands the host role over (the old host becomes a writer).
    pub role: Role,
}

/// `PUT /api/sessions/{id}/approval`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetApproval {
    /// Whether joiners wait for the host's approval.
    pub on: bool,
}

/// Someone in the lobby, waiting for the host's approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WaitingJoiner {
    /// The seat they would take (what `admit` and `refuse` name).
    pub seat: String,
    /// Their name: the one they gave, or their provider's when they signed in.
    pub name: String,
    /// Their kind of client.
    pub client: String,
    /// Whether the name was verified by sign-in.
    #[serde(default)]
    pub verified: bool,
    /// When they started waiting, milliseconds since the Unix epoch.
    pub since: u64,
}

/// `GET /api/sessions/{id}/participants` (host only).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RoomParticipants {
    /// Who is connected, one entry per connection.
    pub participants: Vec<Participant>,
    /// Who waits in the lobby.
    pub waiting: Vec<WaitingJoiner>,
    /// Whether joiners wait for the host's approval.
    pub approval: bool,
}

/// The header that carries a signed-in user's mesh token (from `mesh-proxy login`) on the
/// room socket's upgrade and on REST calls. The `Authorization` header already carries the
/// room's token (a link's or a seat's), and a request needs both: the room token says where
/// you may go, this one who you are (docs/decisions/012-accounts-oidc.md).
pub const USER_TOKEN_HEADER: &str = "mesh-user-token";

/// The cookie that holds a browser's session id after sign-in (HttpOnly, SameSite=Lax).
pub const SESSION_COOKIE: &str = "mesh_session";

/// A signed-in user, as the provider named them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UserInfo {
    /// mesh's id of the user (stable across sign-ins).
    pub id: String,
    /// The name everyone sees: the provider's `name`, else `preferred_username`, else email.
    pub name: String,
    /// The email the provider gave, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The provider's subject (`sub`) of the user.
    pub subject: String,
}

/// `GET /auth/me`: whether this server has accounts, and who the caller is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Me {
    /// Whether sign-in is on (`--oidc-issuer`); without it names are unverified.
    pub accounts: bool,
    /// The signed-in user, if the request carried a valid session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<UserInfo>,
}

/// `POST /auth/device`: a device-code sign-in started at the provider; show the user the
/// URL and code, then poll `POST /auth/device/poll` with `handle`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeviceStart {
    /// What to send to `/auth/device/poll` (not a secret of the provider's).
    pub handle: String,
    /// Where the user signs in.
    pub verification_uri: String,
    /// The same with the code filled in, when the provider offers it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_uri_complete: Option<String>,
    /// The code the user types there.
    pub user_code: String,
    /// Seconds until the code stops working.
    pub expires_in: u64,
    /// Seconds to wait between polls.
    pub interval: u64,
}

/// `POST /auth/device/poll` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DevicePoll {
    /// The handle `/auth/device` gave.
    pub handle: String,
}

/// `POST /auth/device/poll` answer: `pending` until the user finished at the provider, then
/// `done` with the user's mesh token (once), or a 4xx [`ApiError`] that says what went wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum DeviceState {
    /// The user has not finished signing in yet: poll again after the interval.
    Pending,
    /// Signed in: `token` goes in the [`USER_TOKEN_HEADER`] of later requests.
    Done {
        /// The user's mesh token (a secret: keep it private).
        token: String,
        /// Who signed in.
        user: UserInfo,
        /// When the token stops working, milliseconds since the Unix epoch.
        expires_at: u64,
    },
}
