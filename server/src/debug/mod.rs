//! Debug sessions: the language's debug adapter in a hardened container (a `mesh-runner`
//! job in [`Mode::Debug`]: the same sandbox and limits as a run, the adapter's stdin and
//! stdout carrying DAP), and the [`hub::Hub`] that shares it with the room.
//!
//! A session is a task of its own, like a run. The room's task sends it participants'
//! joins, DAP requests and departures ([`Input`]); it reports back what to send whom
//! ([`Notice`]), in order, and [`Notice::Ended`] once: when the adapter says the session
//! terminated, or when the container ends, whichever is first (the container is removed in
//! the background, after the adapter's own exit or a grace period).

pub mod breakpoints;
pub mod filters;
pub mod hub;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use mesh_protocol::dap::{encode, Decoder};
use mesh_protocol::messages::Role;
use mesh_runner::{Language, Mode, RunEvent, Stage};
use serde_json::Value;
use tokio::sync::mpsc;

use self::hub::{ConnId, Hub, Out, Start, REQUEST_TIMEOUT};
use crate::runs::RunService;

/// How long the adapter may take from the end of the build to `initialized`.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the adapter may take to exit after the session terminated.
const EXIT_GRACE: Duration = Duration::from_secs(3);
/// How long a debug session may go on with nobody attached by default: long enough for a
/// reconnect or a restarted editor, short enough that a session everyone left does not hold
/// its container (up to 512 MiB) until its 30-minute wall clock.
pub const DEFAULT_DEBUG_IDLE: Duration = Duration::from_secs(120);
/// Inputs queued for a session before the room waits.
pub const INPUT_QUEUE: usize = 256;

/// What the room sends a session.
#[derive(Debug)]
pub enum Input {
    /// A participant joins (the starter first).
    Join(ConnId),
    /// A participant's DAP request, with its role now and the id of the mesh message that
    /// carried it (named if the session refuses it).
    Dap(ConnId, Role, Value, Option<u64>),
    /// A participant left the room.
    Leave(ConnId),
    /// Input for the debugged program (typed by a writer); `true` closes it after.
    Stdin(String, bool),
}

/// What a session reports to its room.
#[derive(Debug)]
pub enum Notice {
    /// The hub's output for participants.
    Hub(Out),
    /// The hub refused a participant's DAP message, which came in the mesh request `request`.
    Refused {
        /// Who sent it.
        conn: ConnId,
        /// The id of the mesh message that carried it.
        request: Option<u64>,
        /// Why.
        message: String,
    },
    /// Output of the build or of the adapter itself (compile, stderr).
    Build {
        /// From the compiler (else the adapter's stderr).
        compile: bool,
        /// The text.
        text: String,
    },
    /// The session is over and its container removed.
    Ended {
        /// The program's exit code, if it exited.
        exit_code: Option<i64>,
        /// Why it ended, when not by the program's exit.
        error: Option<String>,
    },
}

/// Everything a session needs to start.
pub struct Plan {
    /// The language (it has a `[debug]` table).
    pub language: Language,
    /// The job: its language, files and limits (each container of the session, a restart's
    /// too, gets a fresh copy in `Mode::Debug` with its own stdin).
    pub job: mesh_runner::Job,
    /// Who started it.
    pub starter: ConnId,
    /// Container paths of the room's files.
    pub files: BTreeSet<String>,
    /// How long it may go on with nobody attached (`debug_idle_seconds`).
    pub idle: Duration,
}

/// Container paths that stand for another room path: the entry file runs as the
/// language's main file.
pub fn aliases(lang: &Language, entry: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    if entry != lang.main_file {
        map.insert(
            format!("{}/{}", mesh_runner::sandbox::WORK_DIR, lang.main_file),
            entry.to_owned(),
        );
    }
    map
}

/// One container of a session: the adapter's run and the channel to its stdin. A restart
/// replaces it.
struct Sandbox {
    run: mesh_runner::Run,
    /// The cluster slot and the engine count the container holds, given back with it.
    _holds: crate::runs::Holds,
    stdin: mpsc::Sender<Bytes>,
    decoder: Decoder,
}

impl Sandbox {
    /// Starts the session's container: a fresh one with the job's files each time.
    async fn start(service: &RunService, plan: &Plan) -> Result<Sandbox, String> {
        let (stdin, stdin_rx) = mpsc::channel::<Bytes>(INPUT_QUEUE);
        let job = mesh_runner::Job::new(plan.job.language.clone(), plan.job.files.clone())
            .mode(Mode::Debug)
            .limits(plan.job.limits)
            .stdin(mesh_runner::Stdin::Channel(stdin_rx));
        let (run, holds) = service
            .start(job)
            .await
            .map_err(|e| format!("the debug session could not start: {e}"))?;
        Ok(Sandbox {
            run,
            _holds: holds,
            stdin,
            decoder: Decoder::default(),
        })
    }
}

/// Runs a session to its end.
pub async fn run(
    service: Arc<RunService>,
    plan: Plan,
    mut inputs: mpsc::Receiver<Input>,
    notices: mpsc::Sender<Notice>,
) {
    let send = |n: Notice| {
        let notices = notices.clone();
        async move {
            let _ = notices.send(n).await;
        }
    };
    let mut sandbox = match Sandbox::start(&service, &plan).await {
        Ok(s) => s,
        Err(e) => {
            return send(Notice::Ended {
                exit_code: None,
                error: Some(e),
            })
            .await
        }
    };
    let start = match plan.language.debug.as_ref() {
        Some(d) => Start {
            command: d.request.command(),
            arguments: Value::Object(d.launch.clone()),
        },
        None => Start {
            command: "launch",
            arguments: Value::Object(Default::default()),
        },
    };
    let (mut hub, first) = Hub::new(plan.starter, start, plan.files.clone(), &plan.language.id);
    let mut startup_deadline = Instant::now() + STARTUP_TIMEOUT;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut outs = first;
    let mut error = None;
    let mut terminated_at: Option<Instant> = None;
    // Since when nobody is in the session (the starter joins first, so not from the start).
    let mut alone_since: Option<Instant> = None;
    // The room is told the session ended once: when the adapter says so (`terminated`), or
    // when the container ends, whichever comes first. A new session may start from then on.
    let mut reported = false;
    loop {
        let mut restart = false;
        for out in outs.drain(..) {
            match out {
                Out::Adapter(msg) => {
                    if sandbox.stdin.send(Bytes::from(encode(&msg))).await.is_err() {
                        break;
                    }
                }
                Out::Fatal(why) => error = Some(why),
                Out::Restart => restart = true,
                other => {
                    if let Out::Client(conn, msg) = &other {
                        tracing::debug!(
                            conn,
                            kind = ?msg.get("type"),
                            what = ?msg.get("command").or_else(|| msg.get("event")),
                            request_seq = ?msg.get("request_seq"),
                            "dap to a participant"
                        );
                    }
                    send(Notice::Hub(other)).await
                }
            }
        }
        if restart {
            // The old container goes (dropping its run removes it); nothing it still says
            // reaches the hub.
            match Sandbox::start(&service, &plan).await {
                Ok(fresh) => {
                    sandbox = fresh;
                    startup_deadline = Instant::now() + STARTUP_TIMEOUT;
                    outs.extend(hub.restarted());
                    continue;
                }
                Err(e) => error = Some(e),
            }
        }
        if error.is_some() {
            break;
        }
        // Reported once the adapter answered the hub's `disconnect` (or the container
        // ended, or the grace period passed): some adapters tell the exit code late.
        if hub.is_finished() && !reported {
            reported = true;
            send(Notice::Ended {
                exit_code: hub.exit_code(),
                error: None,
            })
            .await;
        }
        tokio::select! {
            ev = sandbox.run.next_event() => match ev {
                Some(RunEvent::Stdout(b)) => {
                    sandbox.decoder.push(&b);
                    for item in sandbox.decoder.by_ref() {
                        match item {
                            Ok(m) => {
                                tracing::debug!(
                                    kind = ?m.get("type"),
                                    what = ?m.get("command").or_else(|| m.get("event")),
                                    request_seq = ?m.get("request_seq"),
                                    "dap from the adapter"
                                );
                                outs.extend(hub.from_adapter(m));
                            }
                            // The decoder resynchronises; the session goes on.
                            Err(e) => tracing::warn!(error = %e, "the debug adapter sent a bad DAP message"),
                        }
                    }
                }
                Some(RunEvent::Compile(b)) => send(Notice::Build { compile: true, text: text(&b) }).await,
                Some(RunEvent::Stderr(b)) => send(Notice::Build { compile: false, text: text(&b) }).await,
                Some(RunEvent::Compiled { .. }) => startup_deadline = Instant::now() + STARTUP_TIMEOUT,
                Some(RunEvent::Exited(exit)) => {
                    let why = if exit.stage == Stage::Compile {
                        Some("the program did not compile".to_owned())
                    } else if exit.limit_hit.is_some() {
                        Some(format!("the debug session hit a limit: {:?}", exit.limit_hit))
                    } else if !hub.is_ready() {
                        Some(format!("the debug adapter exited before it was ready (code {:?})", exit.code))
                    } else if !hub.is_terminated() {
                        Some(format!("the debug adapter stopped unexpectedly (code {:?})", exit.code))
                    } else {
                        None
                    };
                    error = why;
                    break;
                }
                Some(RunEvent::Failed(e)) => {
                    error = Some(e);
                    break;
                }
                None => {
                    error = Some("the debug session ended without a verdict".into());
                    break;
                }
            },
            input = inputs.recv() => match input {
                Some(Input::Join(conn)) => outs.extend(hub.join(conn)),
                Some(Input::Dap(conn, role, msg, request)) => {
                    tracing::debug!(conn, command = ?msg.get("command"), seq = ?msg.get("seq"), "dap from a participant");
                    for out in hub.from_client(conn, role, msg) {
                        match out {
                            Out::Refused(conn, message) => send(Notice::Refused { conn, request, message }).await,
                            other => outs.push(other),
                        }
                    }
                }
                Some(Input::Leave(conn)) => outs.extend(hub.leave(conn)),
                Some(Input::Stdin(data, eof)) => {
                    let mut frames = Vec::new();
                    if !data.is_empty() {
                        frames.push(mesh_runner::sandbox::debug_stdin_frame(data.as_bytes()));
                    }
                    if eof {
                        frames.push(mesh_runner::sandbox::debug_stdin_frame(b""));
                    }
                    for f in frames {
                        if sandbox.stdin.send(Bytes::from(f)).await.is_err() {
                            break;
                        }
                    }
                }
                // The room is gone: dropping the run removes the container.
                None => return,
            },
            _ = tick.tick() => {
                let late = hub.expire(Instant::now(), REQUEST_TIMEOUT);
                if !late.is_empty() {
                    tracing::warn!(requests = late.len(), "the debug adapter did not answer in time; the participants were told");
                }
                outs.extend(late);
                if !hub.is_ready() && Instant::now() > startup_deadline {
                    error = Some(format!("the debug adapter did not get ready within {}s", STARTUP_TIMEOUT.as_secs()));
                }
                alone_since = if hub.is_empty() { alone_since.or(Some(Instant::now())) } else { None };
                if alone_since.is_some_and(|t| t.elapsed() > plan.idle) {
                    error = Some(format!(
                        "nobody was attached for {} s, so the session was ended (debug_idle_seconds); start it again to debug",
                        plan.idle.as_secs()
                    ));
                }
                if hub.is_terminated() {
                    let at = *terminated_at.get_or_insert_with(Instant::now);
                    if at.elapsed() > EXIT_GRACE {
                        // The adapter lingers: the session is over anyway.
                        break;
                    }
                }
            }
        }
    }
    // Dropping the run kills and removes the container (if it is still there).
    drop(sandbox);
    if !reported {
        send(Notice::Ended {
            exit_code: hub.exit_code(),
            error,
        })
        .await;
    }
}

fn text(b: &Bytes) -> String {
    String::from_utf8_lossy(b).into_owned()
}
