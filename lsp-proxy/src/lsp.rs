//! `mesh-proxy lsp`: the Language Server editors start. Its handlers only translate LSP
//! messages into session [`Event`]s and hand them over *before any `.await`*, so the
//! session sees `didChange`s in the order the editor sent them; the session never waits on
//! the editor (the outbox task sends its requests and posts the answers back).

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::lsp_types::notification::Notification;
use tower_lsp_server::lsp_types::*;
use tower_lsp_server::{Client, LanguageServer, LspService, Server, UriExt};

use crate::lsp_ext::*;
use crate::session::{self, EditorOut, Event, Identity, Request};
use crate::text::Encoding;

/// The LSP front of a session.
pub struct Backend {
    events: mpsc::UnboundedSender<Event>,
}

fn user_error(message: String) -> Error {
    Error {
        code: ErrorCode::ServerError(-32001),
        message: message.into(),
        data: None,
    }
}

fn gone() -> Error {
    Error {
        code: ErrorCode::InternalError,
        message: "the mesh session stopped; restart the language server".into(),
        data: None,
    }
}

impl Backend {
    fn send(&self, ev: Event) {
        // The session only stops at shutdown; a send after that has nobody to tell.
        let _ = self.events.send(ev);
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Request) -> std::result::Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.send(Event::Request(make(tx)));
        rx.await.map_err(|_| gone())
    }

    /// Asks the session to do something that answers only "done" or why not; the editor gets
    /// `{}` or the reason as an error.
    async fn act(
        &self,
        make: impl FnOnce(oneshot::Sender<std::result::Result<(), String>>) -> Request,
    ) -> Result<Value> {
        self.ask(make).await?.map_err(user_error)?;
        Ok(Value::Object(Default::default()))
    }

    async fn share(&self, params: Option<ShareParams>) -> Result<ShareResult> {
        self.ask(|tx| Request::Share(params.unwrap_or_default(), tx))
            .await?
            .map_err(user_error)
    }

    async fn join(&self, params: JoinParams) -> Result<JoinResult> {
        self.ask(|tx| Request::Join(params.link, tx)).await?.map_err(user_error)
    }

    async fn leave(&self, _params: Option<Value>) -> Result<Value> {
        self.act(Request::Leave).await
    }

    async fn status(&self, _params: Option<Value>) -> Result<Status> {
        self.ask(Request::Status).await
    }

    async fn chat(&self, params: ChatParams) -> Result<Value> {
        self.act(|tx| Request::Chat(params.text, tx)).await
    }

    async fn ghost_ask(&self, params: GhostAskParams) -> Result<Value> {
        self.act(|tx| Request::GhostAsk(params, tx)).await
    }

    async fn ghost(&self, params: GhostDecisionParams) -> Result<Value> {
        self.act(|tx| Request::Ghost(params, tx)).await
    }

    async fn chat_history(&self, _params: Option<Value>) -> Result<ChatHistory> {
        self.ask(Request::ChatHistory).await
    }

    async fn resolve(&self, params: ResolveParams) -> Result<Value> {
        self.act(|tx| Request::Resolve(params, tx)).await
    }

    async fn follow(&self, params: FollowParams) -> Result<Value> {
        self.act(|tx| Request::Follow(params.conn_id, tx)).await
    }

    async fn run(&self, params: RunParams) -> Result<RunResult> {
        self.ask(|tx| Request::Run(params, tx)).await?.map_err(user_error)
    }

    async fn run_input(&self, params: RunInputParams) -> Result<Value> {
        self.act(|tx| Request::RunInput(params, tx)).await
    }

    async fn run_stop(&self, params: RunStopParams) -> Result<Value> {
        self.act(|tx| Request::RunStop(params.run_id, tx)).await
    }

    /// A host request: the session carries it out over REST; the editor gets its answer or
    /// the server's refusal, said for humans.
    async fn host(&self, call: session::HostCall) -> Result<Value> {
        self.ask(|tx| Request::Host(call, tx)).await?.map_err(user_error)
    }

    async fn host_participants(&self, _params: Option<Value>) -> Result<Value> {
        self.host(session::HostCall::Participants).await
    }

    async fn set_role(&self, params: SetRoleParams) -> Result<Value> {
        self.host(session::HostCall::SetRole(params)).await
    }

    async fn kick(&self, params: KickParams) -> Result<Value> {
        self.host(session::HostCall::Kick(params)).await
    }

    async fn admit(&self, params: SeatParams) -> Result<Value> {
        self.host(session::HostCall::Admit(params)).await
    }

    async fn refuse(&self, params: SeatParams) -> Result<Value> {
        self.host(session::HostCall::Refuse(params)).await
    }

    async fn set_approval(&self, params: ApprovalParams) -> Result<Value> {
        self.host(session::HostCall::SetApproval(params)).await
    }

    async fn links(&self, _params: Option<Value>) -> Result<Value> {
        self.host(session::HostCall::Links).await
    }

    async fn create_link(&self, params: CreateLinkParams) -> Result<Value> {
        self.host(session::HostCall::CreateLink(params)).await
    }

    async fn revoke_link(&self, params: RevokeLinkParams) -> Result<Value> {
        self.host(session::HostCall::RevokeLink(params)).await
    }

    async fn audit(&self, params: Option<AuditParams>) -> Result<Value> {
        self.host(session::HostCall::Audit(params.unwrap_or_default())).await
    }

    async fn cursor(&self, params: CursorParams) {
        self.send(Event::Cursor(params));
    }

    async fn active_editor(&self, params: ActiveEditorParams) {
        self.send(Event::ActiveEditor(params));
    }

    async fn stop_following(&self, _params: Option<Value>) {
        self.send(Event::StopFollowing);
    }
}

fn negotiate(params: &InitializeParams) -> Encoding {
    let offered = params
        .capabilities
        .general
        .as_ref()
        .and_then(|g| g.position_encodings.as_ref());
    match offered {
        Some(list) if list.contains(&PositionEncodingKind::UTF8) => Encoding::Utf8,
        Some(list) if list.contains(&PositionEncodingKind::UTF32) => Encoding::Utf32,
        _ => Encoding::Utf16,
    }
}

fn workspace_root(params: &InitializeParams) -> Option<std::path::PathBuf> {
    if let Some(folder) = params.workspace_folders.as_ref().and_then(|f| f.first()) {
        return folder.uri.to_file_path().map(|p| p.into_owned());
    }
    #[allow(deprecated)]
    params
        .root_uri
        .as_ref()
        .and_then(|u| u.to_file_path().map(|p| p.into_owned()))
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        let encoding = negotiate(&params);
        let root = workspace_root(&params);
        let client = params
            .client_info
            .as_ref()
            .map(|c| c.name.clone())
            .filter(|_| std::env::var_os("MESH_CLIENT").is_none());
        self.send(Event::Initialize { root, encoding, client });
        let kind = match encoding {
            Encoding::Utf8 => PositionEncodingKind::UTF8,
            Encoding::Utf16 => PositionEncodingKind::UTF16,
            Encoding::Utf32 => PositionEncodingKind::UTF32,
        };
        Ok(InitializeResult {
            capabilities: ServerCapabilities {
                position_encoding: Some(kind),
                text_document_sync: Some(TextDocumentSyncCapability::Options(TextDocumentSyncOptions {
                    open_close: Some(true),
                    change: Some(TextDocumentSyncKind::INCREMENTAL),
                    save: Some(TextDocumentSyncSaveOptions::SaveOptions(SaveOptions {
                        include_text: Some(false),
                    })),
                    ..Default::default()
                })),
                experimental: Some(serde_json::json!({ "mesh": { "version": mesh_protocol::PROTOCOL_VERSION } })),
                ..Default::default()
            },
            server_info: Some(ServerInfo {
                name: "mesh-proxy".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
        })
    }

    async fn shutdown(&self) -> Result<()> {
        self.send(Event::Shutdown);
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let d = params.text_document;
        self.send(Event::Open {
            uri: d.uri.as_str().to_string(),
            version: d.version,
            text: d.text,
        });
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let uri = params.text_document.uri.as_str().to_string();
        let changes = params.content_changes.into_iter().map(|c| (c.range, c.text)).collect();
        self.send(Event::Change {
            uri,
            version: params.text_document.version,
            changes,
        });
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        self.send(Event::Close {
            uri: params.text_document.uri.as_str().to_string(),
        });
    }
}

/// Proxy → editor notifications with untyped params, one type per method name.
mod raw {
    use tower_lsp_server::lsp_types::notification::Notification;

    macro_rules! raw {
        ($($name:ident = $method:literal),* $(,)?) => {
            $(
                pub enum $name {}
                impl Notification for $name {
                    type Params = serde_json::Value;
                    const METHOD: &'static str = $method;
                }
            )*
        };
    }

    raw!(
        Status = "mesh/status",
        Participants = "mesh/participants",
        Cursors = "mesh/cursors",
        Follow = "mesh/follow",
        FollowStopped = "mesh/followStopped",
        ChatMessage = "mesh/chatMessage",
        GhostState = "mesh/ghostState",
        Notify = "mesh/notify",
        RunStarted = "mesh/runStarted",
        RunQueued = "mesh/runQueued",
        RunOutput = "mesh/runOutput",
        RunExited = "mesh/runExited",
        DebugStarted = "mesh/debugStarted",
        DebugBreakpoints = "mesh/debugBreakpoints",
        DebugEnded = "mesh/debugEnded",
        Presence = "mesh/presence",
        Lobby = "mesh/lobby",
        JoinRequest = "mesh/joinRequest",
        JoinRequestClosed = "mesh/joinRequestClosed",
        Ended = "mesh/ended",
    );
}

async fn send_raw(client: &Client, method: &'static str, params: Value) {
    match method {
        m if m == raw::Status::METHOD => client.send_notification::<raw::Status>(params).await,
        m if m == raw::Participants::METHOD => client.send_notification::<raw::Participants>(params).await,
        m if m == raw::Cursors::METHOD => client.send_notification::<raw::Cursors>(params).await,
        m if m == raw::Follow::METHOD => client.send_notification::<raw::Follow>(params).await,
        m if m == raw::FollowStopped::METHOD => client.send_notification::<raw::FollowStopped>(params).await,
        m if m == raw::ChatMessage::METHOD => client.send_notification::<raw::ChatMessage>(params).await,
        m if m == raw::GhostState::METHOD => client.send_notification::<raw::GhostState>(params).await,
        m if m == raw::Notify::METHOD => client.send_notification::<raw::Notify>(params).await,
        m if m == raw::RunStarted::METHOD => client.send_notification::<raw::RunStarted>(params).await,
        m if m == raw::RunQueued::METHOD => client.send_notification::<raw::RunQueued>(params).await,
        m if m == raw::RunOutput::METHOD => client.send_notification::<raw::RunOutput>(params).await,
        m if m == raw::RunExited::METHOD => client.send_notification::<raw::RunExited>(params).await,
        m if m == raw::DebugStarted::METHOD => client.send_notification::<raw::DebugStarted>(params).await,
        m if m == raw::DebugBreakpoints::METHOD => client.send_notification::<raw::DebugBreakpoints>(params).await,
        m if m == raw::DebugEnded::METHOD => client.send_notification::<raw::DebugEnded>(params).await,
        m if m == raw::Presence::METHOD => client.send_notification::<raw::Presence>(params).await,
        m if m == raw::Lobby::METHOD => client.send_notification::<raw::Lobby>(params).await,
        m if m == raw::JoinRequest::METHOD => client.send_notification::<raw::JoinRequest>(params).await,
        m if m == raw::JoinRequestClosed::METHOD => client.send_notification::<raw::JoinRequestClosed>(params).await,
        m if m == raw::Ended::METHOD => client.send_notification::<raw::Ended>(params).await,
        m if m == notification::ShowMessage::METHOD => match serde_json::from_value::<ShowMessageParams>(params) {
            Ok(p) => client.show_message(p.typ, p.message).await,
            Err(e) => tracing::error!(error = %e, "a malformed window/showMessage"),
        },
        other => tracing::error!(method = other, "no such notification"),
    }
}

/// Carries the session's requests to the editor, one task per request so that nothing
/// waits on the editor, and posts the answers back as events.
async fn outbox(client: Client, mut rx: mpsc::UnboundedReceiver<EditorOut>, events: mpsc::UnboundedSender<Event>) {
    while let Some(out) = rx.recv().await {
        match out {
            EditorOut::Notify(method, params) => send_raw(&client, method, params).await,
            EditorOut::ApplyEdit { uri, batch } => {
                let (client, events) = (client.clone(), events.clone());
                let Ok(parsed) = uri.parse::<Uri>() else { continue };
                tokio::spawn(async move {
                    let edit = WorkspaceEdit {
                        document_changes: Some(DocumentChanges::Edits(vec![TextDocumentEdit {
                            text_document: OptionalVersionedTextDocumentIdentifier {
                                uri: parsed,
                                version: Some(batch.version),
                            },
                            edits: batch.edits.into_iter().map(OneOf::Left).collect(),
                        }])),
                        ..Default::default()
                    };
                    let applied = match client.apply_edit(edit).await {
                        Ok(resp) => resp.applied,
                        Err(e) => {
                            tracing::warn!(error = %e, "applyEdit failed");
                            false
                        }
                    };
                    let _ = events.send(Event::EditAnswered {
                        uri,
                        id: batch.id,
                        applied,
                    });
                });
            }
            EditorOut::DocumentHash { uri } => {
                let (client, events) = (client.clone(), events.clone());
                tokio::spawn(async move {
                    let result = client
                        .send_request::<DocumentHash>(DocumentHashParams { uri: uri.clone() })
                        .await
                        .ok();
                    let _ = events.send(Event::HashAnswered { uri, result });
                });
            }
        }
    }
}

/// Serves LSP on stdin/stdout until the editor exits.
pub async fn serve(identity: Identity) {
    let (out_tx, out_rx) = mpsc::unbounded_channel();
    let (events, session_task) = session::spawn(identity, out_tx);
    let events_for_outbox = events.clone();
    let (service, socket) = LspService::build(move |client| {
        tokio::spawn(outbox(client, out_rx, events_for_outbox));
        Backend { events }
    })
    .custom_method("mesh/share", Backend::share)
    .custom_method("mesh/join", Backend::join)
    .custom_method("mesh/leave", Backend::leave)
    .custom_method("mesh/status", Backend::status)
    .custom_method("mesh/chat", Backend::chat)
    .custom_method("mesh/ghostAsk", Backend::ghost_ask)
    .custom_method("mesh/ghost", Backend::ghost)
    .custom_method("mesh/chatHistory", Backend::chat_history)
    .custom_method("mesh/follow", Backend::follow)
    .custom_method("mesh/resolve", Backend::resolve)
    .custom_method("mesh/run", Backend::run)
    .custom_method("mesh/runInput", Backend::run_input)
    .custom_method("mesh/runStop", Backend::run_stop)
    .custom_method("mesh/cursor", Backend::cursor)
    .custom_method("mesh/activeEditor", Backend::active_editor)
    .custom_method("mesh/stopFollowing", Backend::stop_following)
    .custom_method("mesh/hostParticipants", Backend::host_participants)
    .custom_method("mesh/setRole", Backend::set_role)
    .custom_method("mesh/kick", Backend::kick)
    .custom_method("mesh/admit", Backend::admit)
    .custom_method("mesh/refuse", Backend::refuse)
    .custom_method("mesh/setApproval", Backend::set_approval)
    .custom_method("mesh/links", Backend::links)
    .custom_method("mesh/createLink", Backend::create_link)
    .custom_method("mesh/revokeLink", Backend::revoke_link)
    .custom_method("mesh/audit", Backend::audit)
    .finish();
    // The LSP library stops reading at the first undecodable frame; a guard in front of it
    // drops malformed frames (with a log line) so one bad message never ends the session.
    let (guarded, feed) = tokio::io::duplex(GUARD_BUFFER);
    tokio::spawn(guard_stdin(tokio::io::stdin(), feed));
    Server::new(guarded, tokio::io::stdout(), socket).serve(service).await;
    session_task.abort();
}

/// Buffer between the stdin guard and the LSP library.
const GUARD_BUFFER: usize = 1 << 20;

/// The largest LSP message accepted from the editor; a whole large file in `didOpen` fits.
const MAX_LSP_MESSAGE: usize = 64 * 1024 * 1024;

/// The longest LSP header line the guard reads before dropping it (real headers are a few
/// dozen bytes).
const MAX_LSP_HEADER_LINE: u64 = 4096;

/// Copies LSP frames from `input` to `output`, dropping frames whose header or JSON body is
/// malformed or too large. Public so that the fuzz harness (`mesh-fuzz`'s `lsp` target)
/// drives the very code that reads the editor's stdin.
pub async fn guard_stdin(input: impl tokio::io::AsyncRead + Unpin, mut output: tokio::io::DuplexStream) {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    let mut reader = BufReader::new(input);
    loop {
        let mut length: Option<usize> = None;
        let mut saw_header = false;
        loop {
            // Header lines are read as bytes, bounded: a line that is not UTF-8 or never ends
            // is dropped like any malformed header, and the guard goes on reading.
            let mut raw = Vec::new();
            match (&mut reader)
                .take(MAX_LSP_HEADER_LINE)
                .read_until(b'\n', &mut raw)
                .await
            {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            let Ok(line) = std::str::from_utf8(&raw) else {
                tracing::error!("dropped an LSP header line that is not UTF-8");
                continue;
            };
            let line = line.trim_end();
            if line.is_empty() {
                if saw_header {
                    break;
                }
                continue;
            }
            saw_header = true;
            if let Some((k, v)) = line.split_once(':') {
                if k.trim().eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().ok();
                }
            }
        }
        let Some(len) = length.filter(|&l| l <= MAX_LSP_MESSAGE) else {
            tracing::error!("dropped an LSP frame without a valid Content-Length (or over {MAX_LSP_MESSAGE} bytes)");
            continue;
        };
        // The body grows as it arrives, so a large declared length costs nothing until sent.
        let mut body = Vec::new();
        match (&mut reader).take(len as u64).read_to_end(&mut body).await {
            Ok(n) if n == len => {}
            _ => return,
        }
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) if v.is_object() => {
                let header = format!("Content-Length: {}\r\n\r\n", body.len());
                if output.write_all(header.as_bytes()).await.is_err() || output.write_all(&body).await.is_err() {
                    return;
                }
            }
            _ => tracing::error!(bytes = len, "dropped a malformed LSP message (not a JSON object)"),
        }
    }
}
