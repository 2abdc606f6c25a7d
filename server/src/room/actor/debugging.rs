//! The room's debug session, from the room task's side: start or join it, hand it
//! participants' DAP requests, and turn its notices into messages for the room.

use mesh_protocol::messages::{Role, RunStream};
use mesh_protocol::{ErrorCode, ServerMessage};
use tokio::sync::mpsc;

use super::running::{exited_unstarted, queued_message};
use super::{merge, Actor, Command};
use crate::admission::{Decision, Kind, Limit, Person, Request, Ticket};
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

/// The room's debug session while it waits for the server's admission (the server's
/// `max_debug_sessions` are busy). Others who ask to debug meanwhile join it once it starts.
pub(super) struct PendingDebug {
    pub(super) id: String,
    pub(super) ticket: Ticket,
    starter: ConnId,
    path: String,
    language: String,
    /// Who asked to join it meanwhile, in order.
    joiners: Vec<ConnId>,
    position: u32,
    waiting_for: Limit,
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
                if let Some(p) = &mut self.pending_debug {
                    // It waits for admission: join it once it starts.
                    if p.starter != conn && !p.joiners.contains(&conn) {
                        p.joiners.push(conn);
                    }
                    let p = &*p;
                    queued_message(
                        fx,
                        &p.id,
                        &p.path,
                        &p.language,
                        p.starter,
                        p.position,
                        p.waiting_for,
                        true,
                    );
                    return;
                }
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
        let debug_id = format!("{:016x}", rand::random::<u64>());
        let request = Request {
            kind: Kind::Debug,
            room: self.id,
            person: Person::Conn(conn),
        };
        match service.gate.request(request, &self.me) {
            Decision::Start(ticket) => self.launch_debug(fx, ticket, debug_id, conn, path, &lang.id, files),
            Decision::Queued {
                ticket,
                position,
                waiting_for,
            } => {
                tracing::info!(room = %self.id, debug = %debug_id, position, limit = waiting_for.key(), "debug session queued");
                queued_message(fx, &debug_id, &path, &lang.id, conn, position, waiting_for, true);
                self.pending_debug = Some(PendingDebug {
                    id: debug_id,
                    ticket,
                    starter: conn,
                    path,
                    language: lang.id,
                    joiners: Vec::new(),
                    position,
                    waiting_for,
                });
                Ok(())
            }
            Decision::Refused(why) => Err((ErrorCode::RateLimited, why.to_string())),
        }
    }

    /// Starts an admitted debug session; its task holds the admission slot until the
    /// container is gone.
    #[allow(clippy::too_many_arguments)]
    fn launch_debug(
        &mut self,
        fx: &mut Effects,
        ticket: Ticket,
        debug_id: String,
        conn: ConnId,
        path: String,
        language: &str,
        files: Vec<(String, String)>,
    ) -> Result<(), (ErrorCode, String)> {
        let Some(service) = self.runs.clone() else {
            return Err((ErrorCode::Unavailable, "this server does not run programs".into()));
        };
        let slot = service.gate.slot(ticket);
        let lang = service
            .language_for(&path, Some(language))
            .map_err(|e| (ErrorCode::BadRequest, e))?
            .clone();
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
        let (input_tx, input_rx) = mpsc::channel(crate::debug::INPUT_QUEUE);
        let (notice_tx, mut notice_rx) = mpsc::channel(crate::debug::INPUT_QUEUE);
        let plan = crate::debug::Plan {
            language: lang.clone(),
            job,
            starter: conn,
            files: known,
            idle: service.debug_idle,
        };
        tokio::spawn(async move {
            crate::debug::run(service, plan, input_rx, notice_tx).await;
            // The container is gone: the next in line may start.
            drop(slot);
        });
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

    /// The queued debug session was admitted: start it, and attach whoever asked meanwhile.
    pub(super) fn start_pending_debug(&mut self, fx: &mut Effects) {
        let Some(p) = self.pending_debug.take() else { return };
        let files = self.core.file_texts();
        let started = if !files.iter().any(|(f, _)| *f == p.path) {
            if let Some(service) = &self.runs {
                service.gate.finish(p.ticket);
            }
            Err((
                ErrorCode::NotFound,
                format!("{} was deleted while the debug session waited", p.path),
            ))
        } else {
            self.launch_debug(
                fx,
                p.ticket,
                p.id.clone(),
                p.starter,
                p.path.clone(),
                &p.language,
                files,
            )
        };
        match started {
            Ok(()) => {
                if let Some(d) = &self.debug {
                    for conn in p.joiners {
                        let _ = d.input.try_send(crate::debug::Input::Join(conn));
                    }
                }
            }
            Err((_, message)) => self.pending_debug_ended(fx, p.id, message),
        }
    }

    /// The queued debug session moved in the server's queue.
    pub(super) fn pending_debug_moved(&mut self, fx: &mut Effects, ticket: Ticket, position: u32, waiting_for: Limit) {
        if let Some(p) = self.pending_debug.as_mut().filter(|p| p.ticket == ticket) {
            (p.position, p.waiting_for) = (position, waiting_for);
            queued_message(fx, &p.id, &p.path, &p.language, p.starter, position, waiting_for, true);
        }
    }

    /// `stop` of the queued debug session: withdrawn from the queue.
    pub(super) fn stop_pending_debug(&mut self, fx: &mut Effects, conn: ConnId, host: bool) {
        let Some(p) = self.pending_debug.take_if(|p| p.starter == conn || host) else {
            merge(
                fx,
                self.core.error_to(
                    conn,
                    ErrorCode::Forbidden,
                    "only who started a debug session (or the host) may stop it".into(),
                ),
            );
            return;
        };
        if let Some(service) = &self.runs {
            service.gate.finish(p.ticket);
        }
        tracing::info!(room = %self.id, debug = %p.id, "queued debug session withdrawn");
        self.pending_debug_ended(fx, p.id, "stopped".into());
    }

    /// A participant left: the session hears it; a queued session passes to the next who
    /// asked for it, or leaves the queue when nobody is left to debug.
    pub(super) fn debug_leave(&mut self, fx: &mut Effects, conn: ConnId) {
        if let Some(d) = &self.debug {
            let _ = d.input.try_send(crate::debug::Input::Leave(conn));
        }
        let Some(p) = &mut self.pending_debug else { return };
        p.joiners.retain(|c| *c != conn);
        if p.starter != conn {
            return;
        }
        if !p.joiners.is_empty() {
            p.starter = p.joiners.remove(0);
            return;
        }
        let p = self.pending_debug.take().expect("checked above");
        if let Some(service) = &self.runs {
            service.gate.finish(p.ticket);
        }
        self.pending_debug_ended(fx, p.id, "everyone who asked for it left".into());
    }

    /// Tells the room a debug session that never started is over (as a run and a debug
    /// session, as a started one would be).
    fn pending_debug_ended(&mut self, fx: &mut Effects, debug_id: String, error: String) {
        exited_unstarted(fx, debug_id.clone(), error.clone());
        let ended = ServerMessage::DebugEnded {
            debug_id,
            exit_code: None,
            error: Some(error),
        };
        fx.to(Target::MeshClients, mesh_protocol::encode_mesh(&ended));
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
