//! `mesh-proxy mcp`: a Model Context Protocol server on stdin/stdout through which an
//! external coding agent joins a room as a participant of its own (name, colour, cursor,
//! the link's role). It drives the same session as an editor's `mesh-proxy lsp`: edits are
//! operations on the proxy's replica of the room, runs go through the room's run service.
//!
//! The protocol side is `rmcp`, the protocol's official Rust SDK: its stdio transport, its
//! handshake and the JSON Schemas of the tools' parameters, derived from the types below.

pub mod tools;

use std::path::PathBuf;
use std::time::Duration;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::{schemars, tool, tool_handler, tool_router, ErrorData, ServerHandler, ServiceExt};
use serde::Deserialize;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::lsp_ext::{RunExitedParams, RunInputParams, RunOutputParams, RunParams};
use crate::session::{self, AgentEdit, EditorOut, Event, Identity, Request};

/// How long to wait for the room at start (connected, and its files known).
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `run_file` waits for the program to end before answering with what it has; the
/// server's own run limits end most programs long before.
const RUN_WAIT: Duration = Duration::from_secs(300);
/// The most chat messages `read_chat` returns (each is at most 4 KiB).
const MAX_CHAT_READ: usize = 100;
/// How many run notifications may wait for a slow `run_file` before the oldest are lost
/// (a run's output arrives in chunks; this is many chunks).
const RUN_EVENTS_CAPACITY: usize = 4096;
/// The exit code when the room ended the session (kicked, the link revoked), as for `join`.
const EXIT_ENDED: i32 = 3;

/// A run notification, as the session tells an editor.
#[derive(Clone, Debug)]
enum RunEvent {
    Output(RunOutputParams),
    Exited(RunExitedParams),
}

/// The MCP server: tools over one room session.
#[derive(Clone)]
pub struct MeshMcp {
    events: mpsc::UnboundedSender<Event>,
    runs: broadcast::Sender<RunEvent>,
    tool_router: ToolRouter<Self>,
}

/// `list_files` parameters.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ListParams {
    /// Only the files under this folder (a room path such as `src`).
    #[serde(default)]
    pub under: Option<String>,
}

/// `read_file` parameters.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ReadParams {
    /// The room path of the file, as `list_files` names it.
    pub path: String,
    /// The first line to return, 1-based (default 1).
    #[serde(default)]
    pub start_line: Option<usize>,
    /// How many lines to return (default and most: 2000).
    #[serde(default)]
    pub max_lines: Option<usize>,
}

/// `search` parameters.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SearchParams {
    /// What to look for, line by line.
    pub query: String,
    /// Whether `query` is a regular expression (Rust `regex` syntax); otherwise a plain
    /// substring.
    #[serde(default)]
    pub regex: bool,
    /// Only the files under this folder.
    #[serde(default)]
    pub under: Option<String>,
}

/// `edit_file` parameters.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct EditParams {
    /// The room path of the file.
    pub path: String,
    /// Text that occurs exactly once in the file now, whitespace included: the place to change.
    pub old_text: String,
    /// What it becomes.
    pub new_text: String,
}

/// `create_file` parameters.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct CreateParams {
    /// The room path of the new file (relative, `/` between folders).
    pub path: String,
    /// Its text.
    pub text: String,
}

/// `run_file` parameters.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct RunFileParams {
    /// The room path of the file to run.
    pub path: String,
    /// A language id to use instead of the one the file's extension says.
    #[serde(default)]
    pub language: Option<String>,
    /// Text for the program's standard input (closed after it).
    #[serde(default)]
    pub stdin: Option<String>,
}

/// `read_chat` parameters.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct ReadChatParams {
    /// How many of the latest messages (default 20, at most 100).
    #[serde(default)]
    pub last: Option<usize>,
}

/// `post_chat` parameters.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct PostChatParams {
    /// The message (at most 4 KiB).
    pub text: String,
}

fn ok(text: impl Into<String>) -> Result<CallToolResult, ErrorData> {
    Ok(CallToolResult::success(vec![ContentBlock::text(text)]))
}

/// A refusal the agent reads and acts on (a tool error, not a protocol error).
fn refused(text: impl Into<String>) -> Result<CallToolResult, ErrorData> {
    Ok(CallToolResult::error(vec![ContentBlock::text(text)]))
}

impl MeshMcp {
    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Request) -> Result<T, String> {
        let (tx, rx) = oneshot::channel();
        self.events
            .send(Event::Request(make(tx)))
            .map_err(|_| "the room session has ended".to_string())?;
        rx.await.map_err(|_| "the room session has ended".to_string())
    }

    async fn files(&self) -> Result<Vec<(String, String)>, String> {
        self.ask(Request::RoomFiles).await?
    }
}

#[tool_router]
impl MeshMcp {
    /// Starts the tools over a session whose run notifications arrive on `runs`.
    fn new(events: mpsc::UnboundedSender<Event>, runs: broadcast::Sender<RunEvent>) -> Self {
        MeshMcp {
            events,
            runs,
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "List the room's files (room paths, with their line counts).")]
    async fn list_files(&self, Parameters(p): Parameters<ListParams>) -> Result<CallToolResult, ErrorData> {
        match self.files().await {
            Ok(files) => ok(tools::list(&files, p.under.as_deref())),
            Err(e) => refused(e),
        }
    }

    #[tool(
        description = "Read a file of the room as everyone sees it now, exactly (no line numbers), up to 2000 lines at a time; a closing note says where to read on."
    )]
    async fn read_file(&self, Parameters(p): Parameters<ReadParams>) -> Result<CallToolResult, ErrorData> {
        let files = match self.files().await {
            Ok(f) => f,
            Err(e) => return refused(e),
        };
        let Some((_, text)) = files.iter().find(|(path, _)| *path == p.path) else {
            return refused(format!(
                "{} is not in the room: list_files shows the room's files",
                p.path
            ));
        };
        match tools::read_window(text, p.start_line, p.max_lines) {
            Ok(window) => ok(window),
            Err(e) => refused(e),
        }
    }

    #[tool(
        description = "Search the room's files line by line for a substring (or a regular expression with regex: true); answers path:line: text, at most 200 matches."
    )]
    async fn search(&self, Parameters(p): Parameters<SearchParams>) -> Result<CallToolResult, ErrorData> {
        let pattern = match tools::Pattern::new(&p.query, p.regex) {
            Ok(pattern) => pattern,
            Err(e) => return refused(e),
        };
        match self.files().await {
            Ok(files) => ok(tools::search(&files, &pattern, p.under.as_deref())),
            Err(e) => refused(e),
        }
    }

    #[tool(
        description = "Edit a file of the room: replace old_text, which must occur exactly once in the file now, by new_text. Everyone sees the change and your cursor at once; what others type meanwhile is kept. Read the file first and copy old_text exactly."
    )]
    async fn edit_file(&self, Parameters(p): Parameters<EditParams>) -> Result<CallToolResult, ErrorData> {
        let edit = AgentEdit::Replace {
            path: p.path,
            old_text: p.old_text,
            new_text: p.new_text,
        };
        match self.ask(|tx| Request::Agent(edit, tx)).await {
            Ok(Ok(done)) => ok(format!("edited {} at line {}", done.path, done.line)),
            Ok(Err(e)) | Err(e) => refused(e),
        }
    }

    #[tool(description = "Add a new file to the room.")]
    async fn create_file(&self, Parameters(p): Parameters<CreateParams>) -> Result<CallToolResult, ErrorData> {
        let edit = AgentEdit::Create {
            path: p.path,
            text: p.text,
        };
        match self.ask(|tx| Request::Agent(edit, tx)).await {
            Ok(Ok(done)) => ok(format!("created {}", done.path)),
            Ok(Err(e)) | Err(e) => refused(e),
        }
    }

    #[tool(
        description = "Run a file of the room in the room's sandbox (everyone in the room sees the run) and answer its output and exit code once it ends (output bounded to 64 KiB)."
    )]
    async fn run_file(&self, Parameters(p): Parameters<RunFileParams>) -> Result<CallToolResult, ErrorData> {
        // Listen before asking: the output may follow the answer at once.
        let mut runs = self.runs.subscribe();
        let params = RunParams {
            uri: None,
            path: Some(p.path.clone()),
            language: p.language,
        };
        let run_id = match self.ask(|tx| Request::Run(params, tx)).await {
            Ok(Ok(r)) => r.run_id,
            Ok(Err(e)) | Err(e) => return refused(format!("cannot run {}: {e}", p.path)),
        };
        if let Some(data) = p.stdin {
            let input = RunInputParams {
                run_id: run_id.clone(),
                data,
                eof: true,
            };
            if let Ok(Err(e)) | Err(e) = self.ask(|tx| Request::RunInput(input, tx)).await {
                return refused(format!("the run started but its input could not be sent: {e}"));
            }
        }
        let mut output = tools::RunOutput::default();
        let deadline = tokio::time::Instant::now() + RUN_WAIT;
        loop {
            match tokio::time::timeout_at(deadline, runs.recv()).await {
                Ok(Ok(RunEvent::Output(o))) if o.run_id == run_id => output.push(&o.data),
                Ok(Ok(RunEvent::Exited(x))) if x.run_id == run_id => {
                    let text = output.finish();
                    let end = match (&x.error, &x.limit, x.code) {
                        (Some(e), _, _) => format!("the run failed: {e}"),
                        (None, Some(limit), code) => format!("stopped by its {limit} limit (exit code {code:?})"),
                        (None, None, Some(code)) if x.stage == "compile" => format!("compile error (exit code {code})"),
                        (None, None, Some(code)) => format!("exit code {code}"),
                        (None, None, None) => "ended without an exit code".to_string(),
                    };
                    return ok(format!("{text}\n[mesh: {end}; run {run_id}]"));
                }
                Ok(Ok(_)) => {}
                Ok(Err(broadcast::error::RecvError::Lagged(n))) => {
                    output.push(&format!("\n[mesh: {n} chunks of output were missed]\n"));
                }
                Ok(Err(broadcast::error::RecvError::Closed)) => return refused("the room session has ended"),
                Err(_) => {
                    return refused(format!(
                        "{}\n[mesh: still running after {}s; run {run_id} goes on in the room]",
                        output.finish(),
                        RUN_WAIT.as_secs()
                    ))
                }
            }
        }
    }

    #[tool(description = "Read the room's chat: the latest messages, oldest first, as `name: text`.")]
    async fn read_chat(&self, Parameters(p): Parameters<ReadChatParams>) -> Result<CallToolResult, ErrorData> {
        let last = p.last.unwrap_or(20).clamp(1, MAX_CHAT_READ);
        match self.ask(Request::ChatHistory).await {
            Ok(history) => {
                let skip = history.messages.len().saturating_sub(last);
                let lines: Vec<String> = history
                    .messages
                    .iter()
                    .skip(skip)
                    .map(|m| format!("{}: {}", m.author, m.text))
                    .collect();
                ok(if lines.is_empty() {
                    "no messages yet".to_string()
                } else {
                    lines.join("\n")
                })
            }
            Err(e) => refused(e),
        }
    }

    #[tool(description = "Post a message to the room's chat, under your name.")]
    async fn post_chat(&self, Parameters(p): Parameters<PostChatParams>) -> Result<CallToolResult, ErrorData> {
        if p.text.trim().is_empty() {
            return refused("the message is empty");
        }
        if p.text.len() > mesh_protocol::MAX_CHAT_BYTES {
            return refused(format!(
                "the message is {} bytes; the room takes at most {}: split it",
                p.text.len(),
                mesh_protocol::MAX_CHAT_BYTES
            ));
        }
        match self.ask(|tx| Request::Chat(p.text, tx)).await {
            Ok(Ok(())) => ok("posted"),
            Ok(Err(e)) | Err(e) => refused(e),
        }
    }

    #[tool(description = "Who is in the room, with their roles, and your own role (reader, writer or host).")]
    async fn room_info(&self) -> Result<CallToolResult, ErrorData> {
        match self.ask(Request::Status).await {
            Ok(status) => {
                let mut out = format!(
                    "room {} ({}); your role: {}\n",
                    status.room.unwrap_or_default(),
                    status.state,
                    status.role.unwrap_or_else(|| "unknown".into())
                );
                for p in status.participants {
                    let you = if p.you { " (you)" } else { "" };
                    out.push_str(&format!("- {}{you}: {} via {}\n", p.name, p.role, p.client));
                }
                ok(out)
            }
            Err(e) => refused(e),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for MeshMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("mesh-proxy", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "You are a participant of a mesh room: a project that people edit together live. \
                 Everyone sees your edits and your cursor as you make them, and your runs and chat \
                 messages. Read a file before editing it; edit_file changes one exact, unique \
                 piece of text, so copy old_text from what read_file returned.",
            )
    }
}

/// Joins the room of `link` into `dir` (the agent's own folder) and serves MCP on
/// stdin/stdout until the client closes it.
pub async fn serve(identity: Identity, dir: PathBuf, link: String) -> anyhow::Result<()> {
    let (out_tx, mut out_rx) = mpsc::unbounded_channel();
    let (runs, _) = broadcast::channel(RUN_EVENTS_CAPACITY);
    let runs_tx = runs.clone();
    // stdout is the protocol: what the session would tell an editor goes to stderr, which
    // MCP clients show as the server's log.
    tokio::spawn(async move {
        while let Some(out) = out_rx.recv().await {
            let EditorOut::Notify(method, v) = out else { continue };
            match method {
                "mesh/runOutput" => {
                    if let Ok(o) = serde_json::from_value(v) {
                        let _ = runs_tx.send(RunEvent::Output(o));
                    }
                }
                "mesh/runExited" => {
                    if let Ok(x) = serde_json::from_value(v) {
                        let _ = runs_tx.send(RunEvent::Exited(x));
                    }
                }
                "mesh/notify" | "window/showMessage" | "mesh/lobby" | "mesh/presence" => {
                    eprintln!("mesh: {}", v["message"].as_str().unwrap_or(""));
                }
                "mesh/ended" => std::process::exit(EXIT_ENDED),
                _ => {}
            }
        }
    });
    let (events, _task) = session::spawn(identity, out_tx);
    events.send(Event::Initialize {
        root: Some(dir.clone()),
        encoding: crate::text::Encoding::Utf16,
        client: None,
    })?;
    let mcp = MeshMcp::new(events.clone(), runs);
    let (tx, rx) = oneshot::channel();
    events.send(Event::Request(Request::Join(link, tx)))?;
    let joined = tokio::time::timeout(JOIN_TIMEOUT, rx)
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "not in the room after {}s (a room that asks the host to let joiners in: ask the host to admit the agent)",
                JOIN_TIMEOUT.as_secs()
            )
        })??
        .map_err(anyhow::Error::msg)?;
    eprintln!(
        "mesh: joined room {} into {} ({} files)",
        joined.room,
        dir.display(),
        joined.files
    );
    let service = mcp.serve(rmcp::transport::stdio()).await?;
    service.waiting().await?;
    let _ = events.send(Event::Shutdown);
    Ok(())
}
