//! The room's debug session, from the room task's side: start or join it, hand it
//! participants' DAP requests, and turn its notices into messages for the room.

use mesh_protocol::messages::{Role, RunStream};
use mesh_protocol::{ErrorCode, ServerMessage};
use tokio::sync::mpsc;

use super::{merge, Actor, Command};
use crate::room::core::{ConnId, Effects, Target};
/// The room's debug session (at most one).
pub(super) struct ActiveDebug {
    pub(super) id: String,
    pub(super) input: mpsc::Sender<crate::debug::Input>,
    path: String,
    language: String,
    by: ConnId,
    aliases: std::collections::BTreeMap<String, String>,
}

/// Debug sessions: started here, fed with participants' DAP, reported back as
/// [`Command::Debug`].
impl Actor {
    pub(super) fn on_debug_request(&mut self, fx: &mut Effects, req: crate::room::core::DebugRequest) {
        use crate::room::core::DebugRequest;
        match req {
            DebugRequest::Start {
                conn,
                role,
                path,
                language,
                files,
            } => {
                if let Some(d) = &self.debug {
                    // One session per room: a second start joins it.
                    if d.input.try_send(crate::debug::Input::Join(conn)).is_err() {
                        merge(
                            fx,
                            self.core.error_to(
                                conn,
                                ErrorCode::Unavailable,
                                "the debug session is busy; try again".into(),
                            ),
                        );
                    }
                    return;
                }
                if let Err((code, message)) = self.start_debug(fx, conn, role, path, language, files) {
                    merge(fx, self.core.error_to(conn, code, message));
                }
            }
            DebugRequest::Dap {
                conn,
                role,
                debug_id,
                message,
            } => {
                let result = match &self.debug {
                    Some(d) if d.id == debug_id => d
                        .input
                        .try_send(crate::debug::Input::Dap(conn, role, message))
                        .map_err(|_| {
                            (
                                ErrorCode::Unavailable,
                                "the debug session is busy; try again".to_owned(),
                            )
                        }),
                    _ => Err((ErrorCode::NotFound, format!("no debug session {debug_id} in this room"))),
                };
                if let Err((code, message)) = result {
                    merge(fx, self.core.error_to(conn, code, message));
                }
            }
        }
    }

    fn start_debug(
        &mut self,
        fx: &mut Effects,
        conn: ConnId,
        role: Role,
        path: String,
        language: Option<String>,
        files: Vec<(String, String)>,
    ) -> Result<(), (ErrorCode, String)> {
        let Some(service) = self.runs.clone() else {
            return Err((ErrorCode::Unavailable, "this server does not run programs".into()));
        };
        if !role.can_write() {
            return Err((
                ErrorCode::Forbidden,
                "readers may join a debug session but not start one".into(),
            ));
        }
        if path.is_empty() {
            return Err((
                ErrorCode::NotFound,
                "no debug session is going in this room; start one on a file".into(),
            ));
        }
        if !files.iter().any(|(p, _)| *p == path) {
            return Err((ErrorCode::NotFound, format!("no file {path:?} in this room")));
        }
        let lang = service
            .language_for(&path, language.as_deref())
            .map_err(|e| (ErrorCode::BadRequest, e))?
            .clone();
        if lang.debug.is_none() {
            return Err((
                ErrorCode::BadRequest,
                format!(
                    "{} cannot be debugged here yet; its registry entry has no [debug] table",
                    lang.name
                ),
            ));
        }
        let me = self
            .me
            .upgrade()
            .ok_or((ErrorCode::Unavailable, "the room is closing".into()))?;
        let (_, no_stdin) = mpsc::channel(1);
        let job = service.job(&lang, &path, files, no_stdin);
        let work = mesh_runner::sandbox::WORK_DIR;
        let aliases = crate::debug::aliases(&lang, &path);
        let mut known: std::collections::BTreeSet<String> =
            job.files.iter().map(|f| format!("{work}/{}", f.path)).collect();
        known.extend(aliases.keys().cloned());
        let debug_id = format!("{:016x}", rand::random::<u64>());
        let (input_tx, input_rx) = mpsc::channel(crate::debug::INPUT_QUEUE);
        let (notice_tx, mut notice_rx) = mpsc::channel(crate::debug::INPUT_QUEUE);
        let plan = crate::debug::Plan {
            language: lang.clone(),
            job,
            starter: conn,
            files: known,
        };
        tokio::spawn(crate::debug::run(service, plan, input_rx, notice_tx));
        let id = debug_id.clone();
        tokio::spawn(async move {
            while let Some(notice) = notice_rx.recv().await {
                let cmd = Command::Debug {
                    debug_id: id.clone(),
                    notice,
                };
                if me.send(cmd).await.is_err() {
                    return;
                }
            }
        });
        let _ = input_tx.try_send(crate::debug::Input::Join(conn));
        tracing::info!(room = %self.id, debug = %debug_id, language = %lang.id, %path, "debug session started");
        metrics::counter!("mesh_debug_sessions_total", "language" => lang.id.clone()).increment(1);
        for msg in [
            ServerMessage::DebugStarted {
                debug_id: debug_id.clone(),
                path: path.clone(),
                language: lang.id.clone(),
                by: conn,
            },
            // The program's output reaches the room's run view too.
            ServerMessage::RunStarted {
                run_id: debug_id.clone(),
                path: path.clone(),
                language: lang.id.clone(),
                by: conn,
            },
        ] {
            fx.to(Target::MeshClients, mesh_protocol::encode_mesh(&msg));
        }
        self.debug = Some(ActiveDebug {
            id: debug_id,
            input: input_tx,
            path,
            language: lang.id,
            by: conn,
            aliases,
        });
        Ok(())
    }

    pub(super) fn on_debug_notice(&mut self, fx: &mut Effects, debug_id: String, notice: crate::debug::Notice) {
        use crate::debug::hub::Out;
        use crate::debug::Notice;
        let Some(d) = self.debug.as_ref().filter(|d| d.id == debug_id) else {
            return;
        };
        let output = |stream, data| ServerMessage::RunOutput {
            run_id: debug_id.clone(),
            stream,
            data,
        };
        let (target, msg) = match notice {
            Notice::Hub(Out::Client(conn, message)) => (Target::One(conn), ServerMessage::Dap { debug_id, message }),
            Notice::Hub(Out::Joined(conn, capabilities)) => (
                Target::One(conn),
                ServerMessage::DebugJoined {
                    debug_id,
                    path: d.path.clone(),
                    language: d.language.clone(),
                    by: d.by,
                    capabilities,
                    work_dir: mesh_runner::sandbox::WORK_DIR.to_owned(),
                    aliases: d.aliases.clone(),
                },
            ),
            Notice::Hub(Out::Breakpoints(container_path, lines)) => {
                let work = format!("{}/", mesh_runner::sandbox::WORK_DIR);
                let path = d
                    .aliases
                    .get(&container_path)
                    .cloned()
                    .or_else(|| container_path.strip_prefix(&work).map(str::to_owned))
                    .unwrap_or(container_path);
                (
                    Target::MeshClients,
                    ServerMessage::DebugBreakpoints { debug_id, path, lines },
                )
            }
            Notice::Hub(Out::Output { stderr, text }) => (
                Target::MeshClients,
                output(if stderr { RunStream::Stderr } else { RunStream::Stdout }, text),
            ),
            Notice::Hub(Out::Refused(conn, message)) => (
                Target::One(conn),
                ServerMessage::Error {
                    code: ErrorCode::BadRequest,
                    message,
                },
            ),
            Notice::Hub(Out::Adapter(_) | Out::Fatal(_)) => return,
            Notice::Build { compile, text } => (
                Target::MeshClients,
                output(if compile { RunStream::Compile } else { RunStream::Stderr }, text),
            ),
            Notice::Ended { exit_code, error } => {
                tracing::info!(room = %self.id, debug = %debug_id, ?exit_code, ?error, "debug session ended");
                self.debug = None;
                let exited = ServerMessage::RunExited {
                    run_id: debug_id.clone(),
                    stage: "run".into(),
                    code: exit_code,
                    duration_ms: 0,
                    limit: None,
                    error: error.clone(),
                };
                fx.to(Target::MeshClients, mesh_protocol::encode_mesh(&exited));
                (
                    Target::MeshClients,
                    ServerMessage::DebugEnded {
                        debug_id,
                        exit_code,
                        error,
                    },
                )
            }
        };
        fx.to(target, mesh_protocol::encode_mesh(&msg));
    }
}
