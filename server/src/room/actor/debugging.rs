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
    /// Who asked to join and is not attached yet: their `debug_start` request id, named
    /// in their `debug_joined`.
    joining: std::collections::HashMap<ConnId, u64>,
}

/// The room's debug session while it waits for the server's admission (the server's
/// `max_debug_sessions` are busy). Others who ask to debug meanwhile join it once it starts.
pub(super) struct PendingDebug {
    pub(super) id: String,
    pub(super) ticket: Ticket,
    starter: ConnId,
    path: String,
    language: String,
    /// Who asked to join it meanwhile, in order, with their request ids.
    joiners: Vec<(ConnId, Option<u64>)>,
    /// The starter's request id.
    request: Option<u64>,
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
                request,
                role,
                path,
                language,
                files,
            } => {
                if let Some(p) = &mut self.pending_debug {
                    // It waits for admission: join it once it starts.
                    if p.starter != conn && !p.joiners.iter().any(|(c, _)| *c == conn) {
                        p.joiners.push((conn, request));
                    }
                    let p = &*p;
                    queued_message(
                        fx,
                        &p.id,
                        &p.path,
                        &p.language,
                        (p.starter, conn, request),
                        p.position,
                        p.waiting_for,
                        true,
                    );
                    return;
                }
                if let Some(d) = &mut self.debug {
                    // One session per room: a second start joins it.
                    if d.input.try_send(crate::debug::Input::Join(conn)).is_err() {
                        merge(
                            fx,
                            self.error_to(
                                conn,
                                request,
                                ErrorCode::Unavailable,
                                "the debug session is busy; try again".into(),
                            ),
                        );
                    } else if let Some(r) = request {
                        d.joining.insert(conn, r);
                    }
                    return;
                }
                let join = mesh_protocol::ClientMessage::DebugStart {
                    path: path.clone(),
                    language: language.clone(),
                };
                if self.forward_debug_join(conn, request, join) {
                    return;
                }
                if let Err((code, message)) = self.start_debug(fx, (conn, request), role, path, language, files) {
                    merge(fx, self.error_to(conn, request, code, message));
                }
            }
            DebugRequest::Dap {
                conn,
                request,
                role,
                debug_id,
                message,
            } => {
                let local = self.debug.as_ref().is_some_and(|d| d.id == debug_id);
                if !local {
                    let dap = mesh_protocol::ClientMessage::Dap {
                        debug_id: debug_id.clone(),
                        message: message.clone(),
                    };
                    if self.forward(conn, request, dap, &debug_id) {
                        return;
                    }
                }
                let result = match &self.debug {
                    Some(d) if d.id == debug_id => d
                        .input
                        .try_send(crate::debug::Input::Dap(conn, role, message, request))
                        .map_err(|_| {
                            (
                                ErrorCode::Unavailable,
                                "the debug session is busy; try again".to_owned(),
                            )
                        }),
                    _ => Err((ErrorCode::NotFound, format!("no debug session {debug_id} in this room"))),
                };
                if let Err((code, message)) = result {
                    merge(fx, self.error_to(conn, request, code, message));
                }
            }
        }
    }

    fn start_debug(
        &mut self,
        fx: &mut Effects,
        (conn, request): (ConnId, Option<u64>),
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
        let admission = Request {
            kind: Kind::Debug,
            room: self.id,
            person: Person::Conn(conn),
        };
        match service.gate.request(admission, &self.me) {
            Decision::Start(ticket) => self.launch_debug(fx, ticket, debug_id, (conn, request), path, &lang.id, files),
            Decision::Queued {
                ticket,
                position,
                waiting_for,
            } => {
                tracing::info!(room = %self.id, debug = %debug_id, position, limit = waiting_for.key(), "debug session queued");
                queued_message(
                    fx,
                    &debug_id,
                    &path,
                    &lang.id,
                    (conn, conn, request),
                    position,
                    waiting_for,
                    true,
                );
                self.pending_debug = Some(PendingDebug {
                    id: debug_id,
                    ticket,
                    starter: conn,
                    request,
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
        (conn, request): (ConnId, Option<u64>),
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
        self.core.record_run(conn, &path, true, crate::store::sqlite::now_ms());
        metrics::counter!("mesh_debug_sessions_total", "language" => lang.id.clone()).increment(1);
        let started = ServerMessage::DebugStarted {
            debug_id: debug_id.clone(),
            path: path.clone(),
            language: lang.id.clone(),
            by: conn,
        };
        fx.to(Target::Room, mesh_protocol::encode_mesh(&started));
        // The program's output reaches the room's run view too. Its answer to the request
        // is `debug_joined`, so this announcement names none.
        let run = ServerMessage::RunStarted {
            run_id: debug_id.clone(),
            path: path.clone(),
            language: lang.id.clone(),
            by: conn,
            responding_to: None,
        };
        fx.to(Target::Room, mesh_protocol::encode_mesh(&run));
        self.debug = Some(ActiveDebug {
            id: debug_id,
            input: input_tx,
            path,
            language: lang.id,
            by: conn,
            aliases,
            joining: request.map(|r| (conn, r)).into_iter().collect(),
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
                (p.starter, p.request),
                p.path.clone(),
                &p.language,
                files,
            )
        };
        match started {
            Ok(()) => {
                if let Some(d) = &mut self.debug {
                    for (conn, request) in p.joiners {
                        if d.input.try_send(crate::debug::Input::Join(conn)).is_ok() {
                            if let Some(r) = request {
                                d.joining.insert(conn, r);
                            }
                        }
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
            queued_message(
                fx,
                &p.id,
                &p.path,
                &p.language,
                (p.starter, p.starter, None),
                position,
                waiting_for,
                true,
            );
        }
    }

    /// `stop` of the queued debug session: withdrawn from the queue.
    pub(super) fn stop_pending_debug(&mut self, fx: &mut Effects, conn: ConnId, request: Option<u64>, host: bool) {
        let Some(p) = self.pending_debug.take_if(|p| p.starter == conn || host) else {
            merge(
                fx,
                self.error_to(
                    conn,
                    request,
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
        p.joiners.retain(|(c, _)| *c != conn);
        if p.starter != conn {
            return;
        }
        if !p.joiners.is_empty() {
            (p.starter, p.request) = p.joiners.remove(0);
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
        fx.to(Target::Room, mesh_protocol::encode_mesh(&ended));
    }

    pub(super) fn on_debug_notice(&mut self, fx: &mut Effects, debug_id: String, notice: crate::debug::Notice) {
        use crate::debug::hub::Out;
        use crate::debug::Notice;
        let Some(d) = self.debug.as_mut().filter(|d| d.id == debug_id) else {
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
                    responding_to: d.joining.remove(&conn),
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
                (Target::Room, ServerMessage::DebugBreakpoints { debug_id, path, lines })
            }
            Notice::Hub(Out::Output { stderr, text }) => (
                Target::Room,
                output(if stderr { RunStream::Stderr } else { RunStream::Stdout }, text),
            ),
            Notice::Refused { conn, request, message } => (
                Target::One(conn),
                ServerMessage::Error {
                    code: ErrorCode::BadRequest,
                    message,
                    responding_to: request,
                },
            ),
            Notice::Hub(Out::Refused(conn, message)) => (
                Target::One(conn),
                ServerMessage::Error {
                    code: ErrorCode::BadRequest,
                    message,
                    responding_to: None,
                },
            ),
            Notice::Hub(Out::Adapter(_) | Out::Fatal(_) | Out::Restart) => return,
            Notice::Build { compile, text } => (
                Target::Room,
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
                fx.to(Target::Room, mesh_protocol::encode_mesh(&exited));
                (
                    Target::Room,
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
