//! The room's runs, from the room task's side: ask the server's admission for a sandbox,
//! start the run or keep it queued (telling the room its place as it moves), feed it, stop
//! it, and turn its notices into messages for the room. The policy itself (caps, queue) is
//! in [`crate::admission`]; this file only carries out its decisions.

use mesh_protocol::messages::Role;
use mesh_protocol::rest::{QueuePlace, StartedRun};
use mesh_protocol::{ErrorCode, ServerMessage};
use tokio::sync::{mpsc, oneshot};

use super::{merge, Actor, Command};
use crate::admission::{Decision, Event, Kind, Limit, Person, Request, Ticket};
use crate::room::core::{ConnId, Effects, RunRequest, Target};
use crate::store::sqlite::now_ms;

/// How much of a run's output its history keeps, per stream.
const HISTORY_OUTPUT_BYTES: usize = 64 * 1024;

/// The `by` of a run asked for over REST (no connection).
const REST_CALLER: ConnId = 0;

/// A run in progress.
pub(super) struct ActiveRun {
    by: ConnId,
    stop: Option<oneshot::Sender<()>>,
    stdin: Option<mpsc::Sender<bytes::Bytes>>,
    /// For the history.
    record: mesh_protocol::rest::RunRecord,
}

/// A run waiting for the server's admission. The files are read when it starts, so it
/// runs the room's text as it is then.
pub(super) struct QueuedRun {
    ticket: Ticket,
    by: ConnId,
    /// The asker's id of its `run` request.
    request: Option<u64>,
    by_name: String,
    path: String,
    language: String,
    /// A REST call's whole stdin, given once the run starts.
    stdin: Option<String>,
    position: u32,
    waiting_for: Limit,
}

/// Appends to a history buffer, up to its cap, on a character boundary.
fn keep(buf: &mut String, data: &str) {
    let room = HISTORY_OUTPUT_BYTES.saturating_sub(buf.len());
    let mut end = data.len().min(room);
    while !data.is_char_boundary(end) {
        end -= 1;
    }
    buf.push_str(&data[..end]);
}

/// Runs: admitted, started, fed and stopped here, reported back as [`Command::Run`].
impl Actor {
    /// A participant's `run`.
    pub(super) fn start_run(&mut self, fx: &mut Effects, req: RunRequest) {
        let (conn, request) = (req.conn, req.request);
        let by = self.name_of(conn);
        if let Err((code, message)) = self.try_start_run(fx, req, by, Person::Conn(conn), None) {
            merge(fx, self.error_to(conn, request, code, message));
        }
    }

    fn name_of(&self, conn: ConnId) -> String {
        self.core
            .participants()
            .into_iter()
            .find(|p| p.conn_id == conn)
            .map(|p| p.name)
            .unwrap_or_default()
    }

    /// A REST caller's run: the same checks and caps as a participant's, the caller
    /// counted by its token.
    pub(super) fn rest_run(
        &mut self,
        fx: &mut Effects,
        request: mesh_protocol::rest::StartRun,
        role: Role,
        person: Person,
    ) -> Result<StartedRun, (ErrorCode, String)> {
        if !role.can_write() {
            return Err((ErrorCode::Forbidden, "readers may watch runs but not start them".into()));
        }
        let files = self.core.file_texts();
        if !files.iter().any(|(p, _)| *p == request.path) {
            return Err((ErrorCode::NotFound, format!("no file {:?} in this room", request.path)));
        }
        let req = RunRequest {
            conn: REST_CALLER,
            request: None,
            role,
            path: request.path,
            language: request.language,
            files,
        };
        self.try_start_run(fx, req, "REST".into(), person, request.stdin)
    }

    /// Checks a run, asks the server's admission, and starts it or queues it.
    fn try_start_run(
        &mut self,
        fx: &mut Effects,
        req: RunRequest,
        by_name: String,
        person: Person,
        stdin: Option<String>,
    ) -> Result<StartedRun, (ErrorCode, String)> {
        let Some(service) = self.runs.clone() else {
            return Err((ErrorCode::Unavailable, "this server does not run programs".into()));
        };
        let lang = service
            .language_for(&req.path, req.language.as_deref())
            .map_err(|e| (ErrorCode::BadRequest, e))?
            .id
            .clone();
        let run_id = format!("{:016x}", rand::random::<u64>());
        let request = Request {
            kind: Kind::Run,
            room: self.id,
            person,
        };
        match service.gate.request(request, &self.me) {
            Decision::Start(ticket) => {
                self.launch_run(
                    fx,
                    ticket,
                    run_id.clone(),
                    (req.conn, req.request),
                    by_name,
                    req.path,
                    &lang,
                    req.files,
                )?;
                if let Some(stdin) = stdin {
                    self.run_input(fx, REST_CALLER, None, run_id.clone(), stdin, true);
                }
                Ok(StartedRun { run_id, queued: None })
            }
            Decision::Queued {
                ticket,
                position,
                waiting_for,
            } => {
                tracing::info!(room = %self.id, run = %run_id, position, limit = waiting_for.key(), "run queued");
                let queued = QueuedRun {
                    ticket,
                    by: req.conn,
                    request: req.request,
                    by_name,
                    path: req.path,
                    language: lang,
                    stdin,
                    position,
                    waiting_for,
                };
                announce_queued(fx, &run_id, &queued, false);
                self.queued.insert(run_id.clone(), queued);
                Ok(StartedRun {
                    run_id,
                    queued: Some(QueuePlace {
                        position,
                        limit: waiting_for.key().into(),
                    }),
                })
            }
            Decision::Refused(why) => Err((ErrorCode::RateLimited, why.to_string())),
        }
    }

    /// Starts an admitted run; its task holds the admission slot until the container is gone.
    #[allow(clippy::too_many_arguments)]
    fn launch_run(
        &mut self,
        fx: &mut Effects,
        ticket: Ticket,
        run_id: String,
        (by, request): (ConnId, Option<u64>),
        by_name: String,
        path: String,
        language: &str,
        files: Vec<(String, String)>,
    ) -> Result<(), (ErrorCode, String)> {
        let (Some(service), Some(me)) = (self.runs.clone(), self.me.upgrade()) else {
            if let Some(service) = &self.runs {
                service.gate.finish(ticket);
            }
            return Err((ErrorCode::Unavailable, "the room is closing".into()));
        };
        let slot = service.gate.slot(ticket);
        let lang = service
            .language_for(&path, Some(language))
            .map_err(|e| (ErrorCode::BadRequest, e))?
            .clone();
        let (stdin_tx, stdin_rx) = mpsc::channel(crate::runs::STDIN_QUEUE);
        let (stop_tx, stop_rx) = oneshot::channel();
        let job = service.job(&lang, &path, files, stdin_rx);
        let record = mesh_protocol::rest::RunRecord {
            run_id: run_id.clone(),
            path: path.clone(),
            language: lang.id.clone(),
            by: by_name,
            started_at: now_ms(),
            stage: String::new(),
            code: None,
            duration_ms: 0,
            limit: None,
            error: None,
            stdout: String::new(),
            stderr: String::new(),
        };
        self.active.insert(
            run_id.clone(),
            ActiveRun {
                by,
                stop: Some(stop_tx),
                stdin: Some(stdin_tx),
                record,
            },
        );
        tracing::info!(room = %self.id, run = %run_id, language = %lang.id, %path, "run started");
        self.core.record_run(by, &path, false, now_ms());
        metrics::counter!("mesh_runs_total", "language" => lang.id.clone()).increment(1);
        fx.announce_everywhere(by, request, |responding_to| ServerMessage::RunStarted {
            run_id: run_id.clone(),
            path: path.clone(),
            language: lang.id.clone(),
            by,
            responding_to,
        });
        let (notice_tx, mut notice_rx) = mpsc::channel(crate::runs::STDIN_QUEUE);
        tokio::spawn(async move {
            service.run(job, notice_tx, stop_rx).await;
            // The container is gone: the next in line may start.
            drop(slot);
        });
        tokio::spawn(async move {
            // Hands the run's notices to the room, in order.
            while let Some(notice) = notice_rx.recv().await {
                let cmd = Command::Run {
                    run_id: run_id.clone(),
                    notice,
                };
                if me.send(cmd).await.is_err() {
                    break;
                }
            }
        });
        Ok(())
    }

    /// The server's admission says a queued run (or debug session) may start, or moved.
    pub(super) fn on_admission(&mut self, fx: &mut Effects, event: Event) {
        match event {
            Event::Start { ticket, .. } => {
                if let Some(run_id) = self.queued_run(ticket) {
                    let q = self.queued.remove(&run_id).expect("found above");
                    let files = self.core.file_texts();
                    let started = if files.iter().any(|(p, _)| *p == q.path) {
                        self.launch_run(
                            fx,
                            ticket,
                            run_id.clone(),
                            (q.by, q.request),
                            q.by_name,
                            q.path,
                            &q.language,
                            files,
                        )
                    } else {
                        if let Some(service) = &self.runs {
                            service.gate.finish(ticket);
                        }
                        Err((
                            ErrorCode::NotFound,
                            format!("{} was deleted while the run waited", q.path),
                        ))
                    };
                    match started {
                        Ok(()) => {
                            if let Some(stdin) = q.stdin {
                                self.run_input(fx, REST_CALLER, None, run_id, stdin, true);
                            }
                        }
                        Err((_, message)) => exited_unstarted(fx, run_id, message),
                    }
                } else if self.pending_debug.as_ref().is_some_and(|d| d.ticket == ticket) {
                    self.start_pending_debug(fx);
                } else if let Some(service) = &self.runs {
                    // Withdrawn meanwhile: pass the slot on.
                    service.gate.finish(ticket);
                }
            }
            Event::Moved {
                ticket,
                position,
                waiting_for,
                ..
            } => {
                if let Some(run_id) = self.queued_run(ticket) {
                    let q = self.queued.get_mut(&run_id).expect("found above");
                    (q.position, q.waiting_for) = (position, waiting_for);
                    announce_queued(fx, &run_id, q, false);
                } else {
                    self.pending_debug_moved(fx, ticket, position, waiting_for);
                }
            }
        }
    }

    fn queued_run(&self, ticket: Ticket) -> Option<String> {
        self.queued
            .iter()
            .find(|(_, q)| q.ticket == ticket)
            .map(|(id, _)| id.clone())
    }

    pub(super) fn run_input(
        &mut self,
        fx: &mut Effects,
        conn: ConnId,
        request: Option<u64>,
        run_id: String,
        data: String,
        eof: bool,
    ) {
        if let Some(d) = self.debug.as_ref().filter(|d| d.id == run_id) {
            // A debug session's program reads its input like a run's.
            if d.input.try_send(crate::debug::Input::Stdin(data, eof)).is_err() {
                merge(
                    fx,
                    self.error_to(
                        conn,
                        request,
                        ErrorCode::Unavailable,
                        "the debug session is busy; type again".into(),
                    ),
                );
            }
            return;
        }
        if self.queued.contains_key(&run_id) {
            merge(
                fx,
                self.error_to(
                    conn,
                    request,
                    ErrorCode::BadRequest,
                    format!("run {run_id} is still queued; type its input once it has started"),
                ),
            );
            return;
        }
        if !self.active.contains_key(&run_id) {
            let message = mesh_protocol::ClientMessage::Input {
                run_id: run_id.clone(),
                data: data.clone(),
                eof,
            };
            if self.forward(conn, request, message, &run_id) {
                return;
            }
        }
        let Some(run) = self.active.get_mut(&run_id) else {
            merge(
                fx,
                self.error_to(conn, request, ErrorCode::NotFound, format!("no run {run_id} is going")),
            );
            return;
        };
        let refused = match &run.stdin {
            Some(tx) => !data.is_empty() && tx.try_send(bytes::Bytes::from(data)).is_err(),
            None => false,
        };
        if eof {
            run.stdin = None;
        }
        if refused {
            let slow = "the program is not reading its input fast enough".to_owned();
            merge(fx, self.error_to(conn, request, ErrorCode::RateLimited, slow));
        }
    }

    pub(super) fn stop_run(&mut self, fx: &mut Effects, conn: ConnId, request: Option<u64>, run_id: String) {
        let host = self.role_of(conn) == Some(Role::Host);
        let forbidden = || "only who started a run (or the host) may stop it".to_owned();
        if let Some(q) = self.queued.get(&run_id) {
            if q.by != conn && !host {
                merge(fx, self.error_to(conn, request, ErrorCode::Forbidden, forbidden()));
                return;
            }
            // Stopping a queued run takes it out of the queue; those behind it move up.
            let q = self.queued.remove(&run_id).expect("found above");
            if let Some(service) = &self.runs {
                service.gate.finish(q.ticket);
            }
            tracing::info!(room = %self.id, run = %run_id, "queued run withdrawn");
            exited_unstarted(fx, run_id, "stopped".into());
            return;
        }
        if self.pending_debug.as_ref().is_some_and(|d| d.id == run_id) {
            self.stop_pending_debug(fx, conn, request, host);
            return;
        }
        if !self.active.contains_key(&run_id) {
            let message = mesh_protocol::ClientMessage::Stop { run_id: run_id.clone() };
            if self.forward(conn, request, message, &run_id) {
                return;
            }
        }
        match self.active.get_mut(&run_id) {
            Some(run) if run.by == conn || host => {
                if let Some(stop) = run.stop.take() {
                    let _ = stop.send(());
                }
            }
            Some(_) => merge(fx, self.error_to(conn, request, ErrorCode::Forbidden, forbidden())),
            None => merge(
                fx,
                self.error_to(conn, request, ErrorCode::NotFound, format!("no run {run_id} is going")),
            ),
        }
    }

    pub(super) fn on_run_notice(&mut self, fx: &mut Effects, run_id: String, notice: crate::runs::RunNotice) {
        use crate::runs::RunNotice;
        let msg = match notice {
            RunNotice::Output(stream, data) => {
                if let Some(run) = self.active.get_mut(&run_id) {
                    match stream {
                        mesh_protocol::messages::RunStream::Stdout => keep(&mut run.record.stdout, &data),
                        _ => keep(&mut run.record.stderr, &data),
                    }
                }
                ServerMessage::RunOutput { run_id, stream, data }
            }
            RunNotice::Exited {
                stage,
                code,
                duration_ms,
                limit,
                error,
            } => {
                if let Some(run) = self.active.remove(&run_id) {
                    let mut record = run.record;
                    record.stage = stage.into();
                    record.code = code;
                    record.duration_ms = duration_ms;
                    record.limit = limit.map(String::from);
                    record.error = error.clone();
                    let (store, room) = (self.store.clone(), self.id);
                    tokio::spawn(async move {
                        if let Err(e) = store.put_run(room, record).await {
                            tracing::warn!(%room, error = %e, "cannot keep the run in the history");
                        }
                    });
                }
                tracing::info!(room = %self.id, run = %run_id, ?code, ?limit, "run ended");
                ServerMessage::RunExited {
                    run_id,
                    stage: stage.into(),
                    code,
                    duration_ms,
                    limit: limit.map(String::from),
                    error,
                }
            }
        };
        fx.to(Target::Room, mesh_protocol::encode_mesh(&msg));
    }
}

/// Tells the room a run waits, and where (again each time it moves).
fn announce_queued(fx: &mut Effects, run_id: &str, q: &QueuedRun, debug: bool) {
    queued_message(
        fx,
        run_id,
        &q.path,
        &q.language,
        (q.by, q.by, q.request),
        q.position,
        q.waiting_for,
        debug,
    );
}

/// Sends `run_queued` to every mesh client of the room: `by` is whose run (or debug session)
/// it is; `asker` asked for it with request `request`, named in the asker's copy.
#[allow(clippy::too_many_arguments)]
pub(super) fn queued_message(
    fx: &mut Effects,
    run_id: &str,
    path: &str,
    language: &str,
    (by, asker, request): (ConnId, ConnId, Option<u64>),
    position: u32,
    waiting_for: Limit,
    debug: bool,
) {
    fx.announce_everywhere(asker, request, |responding_to| ServerMessage::RunQueued {
        run_id: run_id.to_owned(),
        path: path.to_owned(),
        language: language.to_owned(),
        by,
        position,
        limit: waiting_for.key().to_owned(),
        debug,
        responding_to,
    });
}

/// Ends, for the room, a run that never started (stopped while queued, or its file gone).
pub(super) fn exited_unstarted(fx: &mut Effects, run_id: String, error: String) {
    let msg = ServerMessage::RunExited {
        run_id,
        stage: "run".into(),
        code: None,
        duration_ms: 0,
        limit: None,
        error: Some(error),
    };
    fx.to(Target::Room, mesh_protocol::encode_mesh(&msg));
}
