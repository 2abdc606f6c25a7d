//! The debug hub: one upstream DAP session (the adapter in the container) fanned out to the
//! room's participants. Sans-IO: it takes DAP messages and returns what to send where, so
//! every rule below is unit-tested without Docker.
//!
//! - The hub owns the upstream `initialize` and `launch` (or `attach`, to a prestarted
//!   program); a participant is attached once the adapter has sent `initialized` (a late
//!   joiner at once), and gets that event then.
//! - Requests keep the participant's `seq` on the way back: each upstream request gets the
//!   hub's own `seq`, and the response's `request_seq` is rewritten to the participant's.
//!   Every message to a participant carries that participant's own `seq` counter.
//! - Events go to every attached participant. The last `stopped` is kept (until the program
//!   continues) and replayed to a late joiner after its `configurationDone`.
//! - The program starts on the starter's `configurationDone`, once its breakpoints are set:
//!   someone who joined at once and configured first is answered and waits with the rest
//!   (else the program could run past the starter's breakpoints before they arrive). If the
//!   starter leaves before configuring, the first who configured starts it.
//! - Breakpoints (conditions, hit counts and logpoints included) are kept per participant
//!   and source; upstream gets the union per source, one per line merged as
//!   [`super::breakpoints`] says, and each participant's response holds the results for its
//!   own breakpoints only, with a note where theirs was merged with someone else's.
//! - Exception filters and function breakpoints are kept per participant too; upstream gets
//!   everyone's merged ([`super::filters`]), and leaving removes only yours.
//! - Restart is the hub's own (whatever the adapter supports): it asks for a fresh program
//!   ([`Out::Restart`]); once the new adapter is initialized it sets everyone's breakpoints
//!   and exception filters again, starts the program, and answers the request. Participants
//!   stay attached throughout.
//! - Roles: writers may do anything; readers may inspect (threads, stack, scopes, variables,
//!   source...) and get a clear error for anything that would change the program's course.
//!   Only the starter or the host ends the session; others detach.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use mesh_protocol::messages::Role;
use serde_json::{json, Value};

use super::breakpoints::{merge_line, merge_note, or_operator, SourceBreakpoint};
use super::filters::{ExceptionFilters, FunctionBreakpoint};

/// A participant's connection id.
pub type ConnId = u64;

/// How long a participant's request may wait for the adapter.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Breakpoints one participant may set in one file.
pub const MAX_BREAKPOINTS_PER_FILE: usize = 500;

/// What a reader may send: it reads the program's state and changes nothing.
const READER_COMMANDS: &[&str] = &[
    "threads",
    "stackTrace",
    "scopes",
    "variables",
    "source",
    "loadedSources",
    "modules",
    "exceptionInfo",
    "disassemble",
    "readMemory",
];
/// Requests that set the program going again; a success clears the kept stop.
const RESUMING: &[&str] = &[
    "continue",
    "next",
    "stepIn",
    "stepOut",
    "stepBack",
    "reverseContinue",
    "goto",
    "restartFrame",
];

/// What the hub wants done.
#[derive(Debug, Clone, PartialEq)]
pub enum Out {
    /// A DAP message to the adapter.
    Adapter(Value),
    /// A DAP message to one participant.
    Client(ConnId, Value),
    /// This participant is attached now (send it `DebugJoined`, with the adapter's
    /// capabilities, before its next message).
    Joined(ConnId, Value),
    /// The union of the breakpoints in this container path changed: these lines.
    Breakpoints(String, Vec<u32>),
    /// Program output, for the room's run view.
    Output {
        /// From stderr.
        stderr: bool,
        /// The text.
        text: String,
    },
    /// A participant's message is refused (not even a request we can answer).
    Refused(ConnId, String),
    /// The session cannot go on (the adapter refused to launch).
    Fatal(String),
    /// Replace the adapter and program with fresh ones (same files), then call
    /// [`Hub::restarted`]; the old adapter's messages must not reach the hub any more.
    Restart,
}

/// How the hub starts the program: the DAP request (`launch` or `attach`) and its arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct Start {
    /// `launch` or `attach`.
    pub command: &'static str,
    /// Its arguments.
    pub arguments: Value,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// `initialize` sent.
    Initializing,
    /// `launch` sent, waiting for the `initialized` event.
    Launching,
    /// Participants may talk to the adapter.
    Ready,
}

/// The restart a participant asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Restarting {
    /// Who asked, and their `seq`.
    conn: ConnId,
    seq: i64,
    /// The fresh adapter is up ([`Hub::restarted`] was called).
    fresh: bool,
}

struct Client {
    /// Attached: it has been told `initialized`.
    ready: bool,
    /// It has been sent the current stop (live or replayed).
    saw_stop: bool,
    /// Its next `seq`.
    seq: i64,
}

enum Pending {
    Client {
        conn: ConnId,
        seq: i64,
        command: String,
        sent: Instant,
    },
    Initialize,
    Launch,
    /// The hub's own request whose answer changes nothing.
    Quiet,
    /// The hub's `disconnect` after `terminated`.
    Disconnect,
    Breakpoints {
        /// What was sent upstream, in order (the response's results follow this order).
        sent: Vec<SourceBreakpoint>,
        /// Who asked, their seq and breakpoints; `None` for a merge after someone left.
        reply: Option<(ConnId, i64, Vec<SourceBreakpoint>)>,
    },
    /// The merged exception filters; who asked and their seq, if someone did.
    Exceptions {
        reply: Option<(ConnId, i64)>,
    },
    /// The merged function breakpoints, as [`Pending::Breakpoints`] for lines.
    Functions {
        sent: Vec<FunctionBreakpoint>,
        reply: Option<(ConnId, i64, Vec<FunctionBreakpoint>)>,
    },
}

/// The hub of one debug session.
pub struct Hub {
    next_seq: i64,
    pending: HashMap<i64, Pending>,
    clients: BTreeMap<ConnId, Client>,
    starter: ConnId,
    phase: Phase,
    capabilities: Value,
    start: Start,
    /// The language's "or", for merging conditions.
    or: &'static str,
    /// The registry's language id, which is the adapter's id in `initialize`.
    language: String,
    /// A restart under way.
    restarting: Option<Restarting>,
    /// Each participant's exception filters ([`super::filters`]).
    exception_filters: BTreeMap<ConnId, ExceptionFilters>,
    /// Each participant's function breakpoints.
    function_breakpoints: BTreeMap<ConnId, Vec<FunctionBreakpoint>>,
    configuration_done: bool,
    /// Participants who sent `configurationDone` before the starter did: answered, and the
    /// program waits for the starter's.
    configured_early: BTreeSet<ConnId>,
    stopped: Option<Value>,
    exit_code: Option<i64>,
    /// The adapter said the session is over (`terminated`).
    terminated: bool,
    /// The adapter answered the hub's `disconnect` after `terminated`: it has said all it
    /// will (Delve tells the exit status only on the way there).
    disconnected: bool,
    /// Container path → participant → their breakpoints.
    breakpoints: BTreeMap<String, BTreeMap<ConnId, Vec<SourceBreakpoint>>>,
    /// Container paths of the room's files: the only places a breakpoint may go.
    files: BTreeSet<String>,
}

impl Hub {
    /// A hub for a session started by `starter`; the first output is the upstream
    /// `initialize`. `start` is how the program starts; `files` the container paths a
    /// breakpoint may name; `language` the registry's id (the adapter's id too).
    pub fn new(starter: ConnId, start: Start, files: BTreeSet<String>, language: &str) -> (Hub, Vec<Out>) {
        let mut hub = Hub {
            next_seq: 1,
            pending: HashMap::new(),
            clients: BTreeMap::new(),
            starter,
            phase: Phase::Initializing,
            capabilities: json!({}),
            start,
            or: or_operator(language),
            language: language.to_owned(),
            restarting: None,
            exception_filters: BTreeMap::new(),
            function_breakpoints: BTreeMap::new(),
            configuration_done: false,
            configured_early: BTreeSet::new(),
            stopped: None,
            exit_code: None,
            terminated: false,
            disconnected: false,
            breakpoints: BTreeMap::new(),
            files,
        };
        let out = hub.initialize();
        (hub, vec![out])
    }

    fn initialize(&mut self) -> Out {
        let init = json!({
            "clientID": "mesh",
            "clientName": "mesh debug hub",
            "adapterID": self.language,
            "locale": "en",
            "linesStartAt1": true,
            "columnsStartAt1": true,
            "pathFormat": "path",
            "supportsVariableType": true,
            "supportsVariablePaging": true,
            "supportsRunInTerminalRequest": false,
            "supportsProgressReporting": false,
        });
        self.upstream("initialize", init, Pending::Initialize)
    }

    /// The capabilities participants are told: the adapter's, plus restart, which the hub
    /// does itself (empty until the adapter answered `initialize`).
    pub fn capabilities(&self) -> Value {
        let mut caps = self.capabilities.clone();
        if let Some(m) = caps.as_object_mut() {
            m.insert("supportsRestartRequest".into(), Value::Bool(true));
        }
        caps
    }

    /// Who started the session.
    pub fn starter(&self) -> ConnId {
        self.starter
    }

    /// The program's exit code, once the adapter reported it.
    pub fn exit_code(&self) -> Option<i64> {
        self.exit_code
    }

    /// Whether the adapter is initialized.
    pub fn is_ready(&self) -> bool {
        self.phase == Phase::Ready
    }

    /// Whether the adapter has said the session is over.
    pub fn is_terminated(&self) -> bool {
        self.terminated
    }

    /// Whether the adapter has also answered the hub's `disconnect`: the exit code is
    /// known by now if it will ever be.
    pub fn is_finished(&self) -> bool {
        self.disconnected
    }

    /// Whether nobody is in the session (attached or attaching).
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Whether this participant is in the session.
    pub fn has(&self, conn: ConnId) -> bool {
        self.clients.contains_key(&conn)
    }

    /// A participant joins (the starter too); attached at once when the adapter is ready.
    pub fn join(&mut self, conn: ConnId) -> Vec<Out> {
        self.clients.entry(conn).or_insert(Client {
            ready: false,
            saw_stop: false,
            seq: 1,
        });
        if self.phase == Phase::Ready {
            self.attach(conn)
        } else {
            Vec::new()
        }
    }

    /// A participant leaves (detaches, or left the room): its breakpoints go too.
    pub fn leave(&mut self, conn: ConnId) -> Vec<Out> {
        if self.clients.remove(&conn).is_none() {
            return Vec::new();
        }
        self.configured_early.remove(&conn);
        let mut out = Vec::new();
        if conn == self.starter && !self.configuration_done && !self.configured_early.is_empty() {
            // The starter left before configuring: someone else is waiting, so the program
            // starts now.
            self.configuration_done = true;
            out.push(self.upstream("configurationDone", json!({}), Pending::Quiet));
        }
        self.pending
            .retain(|_, p| !matches!(p, Pending::Client { conn: c, .. } if *c == conn));
        let paths: Vec<String> = self
            .breakpoints
            .iter_mut()
            .filter_map(|(path, by)| by.remove(&conn).map(|_| path.clone()))
            .collect();
        for path in paths {
            out.extend(self.merge_upstream(&path, None));
        }
        if self.exception_filters.remove(&conn).is_some() {
            out.push(self.merge_exception_filters(None));
        }
        if self.function_breakpoints.remove(&conn).is_some() {
            out.push(self.merge_function_breakpoints(None));
        }
        out
    }

    /// A DAP message from a participant, with the role it has now.
    pub fn from_client(&mut self, conn: ConnId, role: Role, msg: Value) -> Vec<Out> {
        if !self.clients.get(&conn).is_some_and(|c| c.ready) {
            return vec![Out::Refused(
                conn,
                "not attached to this debug session yet; wait for debug_joined".into(),
            )];
        }
        let (seq, command, args) = match parse_request(&msg) {
            Ok(r) => r,
            Err(problem) => return vec![Out::Refused(conn, format!("bad DAP message: {problem}"))],
        };
        if self.terminated {
            let result = if command == "disconnect" {
                Ok(json!({}))
            } else {
                Err("the debug session has ended")
            };
            return vec![self.respond(conn, seq, &command, result)];
        }
        let can_write = role.can_write();
        let may_end = conn == self.starter || role == Role::Host;
        if self.restarting.is_some() && !matches!(command.as_str(), "disconnect" | "terminate") {
            return vec![self.respond(
                conn,
                seq,
                &command,
                Err("the program is restarting; try again in a moment"),
            )];
        }
        match command.as_str() {
            "initialize" => {
                let caps = self.capabilities();
                vec![self.respond(conn, seq, &command, Ok(caps))]
            }
            "restart" if can_write => self.restart(conn, seq),
            "launch" | "attach" => vec![self.respond(conn, seq, &command, Ok(json!({})))],
            "configurationDone" => self.configuration_done(conn, seq, msg),
            "setBreakpoints" => self.set_breakpoints(conn, seq, can_write, &args),
            "setExceptionBreakpoints" | "setFunctionBreakpoints" | "setDataBreakpoints" | "setInstructionBreakpoints"
                if !can_write =>
            {
                vec![self.respond(conn, seq, &command, Ok(json!({ "breakpoints": [] })))]
            }
            "disconnect" if !(may_end && args.get("terminateDebuggee") != Some(&Value::Bool(false))) => {
                let mut out = vec![self.respond(conn, seq, &command, Ok(json!({})))];
                out.extend(self.leave(conn));
                out
            }
            "terminate" if !may_end => vec![self.respond(
                conn,
                seq,
                &command,
                Err("only the participant who started this debug session, or the host, can end it; disconnect to leave it"),
            )],
            c if !can_write && c != "disconnect" && c != "terminate" && !READER_COMMANDS.contains(&c) => {
                vec![self.respond(
                    conn,
                    seq,
                    &command,
                    Err("readers may inspect the program but not control it; ask the host for write access"),
                )]
            }
            "setExceptionBreakpoints" => self.set_exception_filters(conn, seq, &args),
            "setFunctionBreakpoints" => self.set_function_breakpoints(conn, seq, &args),
            _ => vec![self.forward(conn, seq, command, msg)],
        }
    }

    /// A writer's `restart`: the session asks for a fresh program; participants see the
    /// program run on (`continued`) until it stops again.
    fn restart(&mut self, conn: ConnId, seq: i64) -> Vec<Out> {
        self.restarting = Some(Restarting {
            conn,
            seq,
            fresh: false,
        });
        self.stopped = None;
        self.exit_code = None;
        let mut out = vec![Out::Restart];
        // The old adapter will not answer: what waits for it is answered now.
        let waiting: Vec<i64> = self.pending.keys().copied().collect();
        for up in waiting {
            let (conn, seq, command) = match self.pending.remove(&up) {
                Some(Pending::Client { conn, seq, command, .. }) => (conn, seq, command),
                Some(Pending::Breakpoints {
                    reply: Some((conn, seq, _)),
                    ..
                }) => (conn, seq, "setBreakpoints".to_owned()),
                Some(Pending::Exceptions {
                    reply: Some((conn, seq)),
                }) => (conn, seq, "setExceptionBreakpoints".to_owned()),
                Some(Pending::Functions {
                    reply: Some((conn, seq, _)),
                    ..
                }) => (conn, seq, "setFunctionBreakpoints".to_owned()),
                _ => continue,
            };
            if self.clients.contains_key(&conn) {
                let why = "the program restarted before the debug adapter answered";
                out.push(self.respond(conn, seq, &command, Err(why)));
            }
        }
        let continued =
            json!({"type": "event", "event": "continued", "body": {"threadId": 0, "allThreadsContinued": true}});
        out.extend(self.send_to_attached(&continued));
        out
    }

    /// The fresh adapter of a restart is running: initialize it like the first one.
    pub fn restarted(&mut self) -> Vec<Out> {
        let Some(r) = self.restarting.as_mut() else {
            return Vec::new();
        };
        r.fresh = true;
        self.phase = Phase::Initializing;
        vec![self.initialize()]
    }

    /// The fresh adapter sent `initialized`: everyone's breakpoints and the last filters go
    /// in again, the program starts, and the restart is answered.
    fn finish_restart(&mut self, r: Restarting) -> Vec<Out> {
        let mut out = Vec::new();
        let paths: Vec<String> = self.breakpoints.keys().cloned().collect();
        for path in paths {
            out.extend(self.merge_upstream(&path, None));
        }
        if !self.exception_filters.is_empty() {
            out.push(self.merge_exception_filters(None));
        }
        if !self.function_breakpoints.is_empty() {
            out.push(self.merge_function_breakpoints(None));
        }
        out.push(self.upstream("configurationDone", json!({}), Pending::Quiet));
        if self.clients.contains_key(&r.conn) {
            out.push(self.respond(r.conn, r.seq, "restart", Ok(json!({}))));
        }
        out
    }

    /// Sends a copy of `msg` to every attached participant.
    fn send_to_attached(&mut self, msg: &Value) -> Vec<Out> {
        let ready: Vec<ConnId> = self
            .clients
            .iter()
            .filter(|(_, c)| c.ready)
            .map(|(id, _)| *id)
            .collect();
        ready
            .into_iter()
            .map(|conn| self.for_client(conn, msg.clone()))
            .collect()
    }

    /// A DAP message from the adapter.
    pub fn from_adapter(&mut self, msg: Value) -> Vec<Out> {
        match msg.get("type").and_then(Value::as_str) {
            Some("response") => self.on_response(msg),
            Some("event") => self.on_event(msg),
            Some("request") => {
                // Reverse requests (runInTerminal, startDebugging): nothing here can do them.
                let seq = msg.get("seq").and_then(Value::as_i64).unwrap_or(0);
                let command = msg.get("command").cloned().unwrap_or(Value::Null);
                let out = json!({
                    "seq": self.take_seq(), "type": "response", "request_seq": seq, "command": command,
                    "success": false, "message": "mesh's debug hub does not support reverse requests",
                });
                vec![Out::Adapter(out)]
            }
            _ => {
                tracing::warn!("the debug adapter sent a message without a known type");
                Vec::new()
            }
        }
    }

    /// Answers participants' requests the adapter has not answered within `limit`.
    pub fn expire(&mut self, now: Instant, limit: Duration) -> Vec<Out> {
        let late: Vec<i64> = self
            .pending
            .iter()
            .filter(|(_, p)| matches!(p, Pending::Client { sent, .. } if now.duration_since(*sent) >= limit))
            .map(|(s, _)| *s)
            .collect();
        let mut out = Vec::new();
        for s in late {
            if let Some(Pending::Client { conn, seq, command, .. }) = self.pending.remove(&s) {
                let message = format!("the debug adapter did not answer {command} within {}s", limit.as_secs());
                out.push(self.respond(conn, seq, &command, Err(&message)));
            }
        }
        out
    }

    fn attach(&mut self, conn: ConnId) -> Vec<Out> {
        let Some(c) = self.clients.get_mut(&conn) else {
            return Vec::new();
        };
        if c.ready {
            return Vec::new();
        }
        c.ready = true;
        let event = json!({ "type": "event", "event": "initialized" });
        vec![Out::Joined(conn, self.capabilities()), self.for_client(conn, event)]
    }

    fn configuration_done(&mut self, conn: ConnId, seq: i64, msg: Value) -> Vec<Out> {
        if !self.configuration_done {
            if conn != self.starter && self.clients.contains_key(&self.starter) {
                // The program waits for the starter's breakpoints.
                self.configured_early.insert(conn);
                return vec![self.respond(conn, seq, "configurationDone", Ok(json!({})))];
            }
            // The starter's configurationDone starts the program; breakpoints set before it
            // (everyone's so far) are in place.
            self.configuration_done = true;
            return vec![self.forward(conn, seq, "configurationDone".into(), msg)];
        }
        let mut out = vec![self.respond(conn, seq, "configurationDone", Ok(json!({})))];
        let unseen = self
            .clients
            .get_mut(&conn)
            .is_some_and(|c| !std::mem::replace(&mut c.saw_stop, true));
        if let Some(stopped) = self.stopped.clone().filter(|_| unseen) {
            out.push(self.for_client(conn, stopped));
        }
        out
    }

    fn set_breakpoints(&mut self, conn: ConnId, seq: i64, can_write: bool, args: &Value) -> Vec<Out> {
        let Some(path) = args.pointer("/source/path").and_then(Value::as_str).map(str::to_owned) else {
            return vec![self.respond(conn, seq, "setBreakpoints", Err("setBreakpoints needs source.path"))];
        };
        let raw: Vec<Value> = match args.get("breakpoints") {
            Some(Value::Array(a)) => a.clone(),
            _ => args
                .get("lines")
                .and_then(Value::as_array)
                .map(|lines| lines.iter().map(|l| json!({ "line": l })).collect())
                .unwrap_or_default(),
        };
        let unverified = |message: &str| {
            let list: Vec<Value> = raw
                .iter()
                .map(|b| json!({ "verified": false, "line": b.get("line"), "message": message }))
                .collect();
            Ok(json!({ "breakpoints": list }))
        };
        if !can_write {
            let body = unverified("readers' breakpoints are not set (they would stop everyone's program)");
            return vec![self.respond(conn, seq, "setBreakpoints", body)];
        }
        if !self.files.contains(&path) {
            let body = unverified(&format!("{path} is not a file of this room's program"));
            return vec![self.respond(conn, seq, "setBreakpoints", body)];
        }
        if raw.len() > MAX_BREAKPOINTS_PER_FILE {
            let message = format!("at most {MAX_BREAKPOINTS_PER_FILE} breakpoints per file");
            return vec![self.respond(conn, seq, "setBreakpoints", Err(&message))];
        }
        let asked = match raw.iter().map(SourceBreakpoint::parse).collect::<Result<Vec<_>, _>>() {
            Ok(asked) => asked,
            Err(problem) => {
                let message = format!("breakpoints not set: {problem}");
                return vec![self.respond(conn, seq, "setBreakpoints", Err(&message))];
            }
        };
        let by = self.breakpoints.entry(path.clone()).or_default();
        if asked.is_empty() {
            by.remove(&conn);
        } else {
            by.insert(conn, asked.clone());
        }
        self.merge_upstream(&path, Some((conn, seq, asked)))
    }

    /// Sends the union of everyone's breakpoints in `path` upstream, one per line.
    fn merge_upstream(&mut self, path: &str, reply: Option<(ConnId, i64, Vec<SourceBreakpoint>)>) -> Vec<Out> {
        let mut by_line: BTreeMap<u32, Vec<&SourceBreakpoint>> = BTreeMap::new();
        if let Some(by) = self.breakpoints.get(path) {
            for bps in by.values() {
                for b in bps {
                    by_line.entry(b.line).or_default().push(b);
                }
            }
        }
        let sent: Vec<SourceBreakpoint> = by_line.values().map(|asked| merge_line(asked, self.or)).collect();
        let lines: Vec<u32> = sent.iter().map(|b| b.line).collect();
        let args = json!({
            "source": { "path": path, "name": path.rsplit('/').next().unwrap_or(path) },
            "breakpoints": sent.iter().map(SourceBreakpoint::to_dap).collect::<Vec<_>>(),
            "sourceModified": false,
        });
        let pending = Pending::Breakpoints { sent, reply };
        vec![
            self.upstream("setBreakpoints", args, pending),
            Out::Breakpoints(path.to_owned(), lines),
        ]
    }

    fn forward(&mut self, conn: ConnId, seq: i64, command: String, mut msg: Value) -> Out {
        let up = self.take_seq();
        msg["seq"] = json!(up);
        self.pending.insert(
            up,
            Pending::Client {
                conn,
                seq,
                command,
                sent: Instant::now(),
            },
        );
        Out::Adapter(msg)
    }

    fn upstream(&mut self, command: &str, arguments: Value, pending: Pending) -> Out {
        let seq = self.take_seq();
        self.pending.insert(seq, pending);
        Out::Adapter(json!({ "seq": seq, "type": "request", "command": command, "arguments": arguments }))
    }

    fn on_response(&mut self, mut msg: Value) -> Vec<Out> {
        let Some(pending) = msg
            .get("request_seq")
            .and_then(Value::as_i64)
            .and_then(|s| self.pending.remove(&s))
        else {
            return Vec::new();
        };
        let success = msg.get("success").and_then(Value::as_bool).unwrap_or(false);
        match pending {
            Pending::Initialize => {
                if !success {
                    return vec![Out::Fatal(format!(
                        "the debug adapter refused to initialize: {}",
                        message_of(&msg)
                    ))];
                }
                self.capabilities = msg.get("body").cloned().unwrap_or_else(|| json!({}));
                self.phase = Phase::Launching;
                let (command, args) = (self.start.command, self.start.arguments.clone());
                vec![self.upstream(command, args, Pending::Launch)]
            }
            Pending::Launch if !success => {
                vec![Out::Fatal(format!(
                    "the debug adapter could not launch the program: {}",
                    message_of(&msg)
                ))]
            }
            Pending::Launch | Pending::Quiet => Vec::new(),
            Pending::Disconnect => {
                self.disconnected = true;
                Vec::new()
            }
            Pending::Client { conn, seq, command, .. } => {
                if success && RESUMING.contains(&command.as_str()) {
                    self.stopped = None;
                }
                if !self.clients.contains_key(&conn) {
                    return Vec::new();
                }
                msg["request_seq"] = json!(seq);
                vec![self.for_client(conn, msg)]
            }
            Pending::Exceptions { reply } => self.answer_exception_filters(reply, &msg),
            Pending::Functions { sent, reply } => self.answer_function_breakpoints(sent, reply, &msg),
            Pending::Breakpoints { sent, reply } => {
                let Some((conn, seq, asked)) = reply else {
                    return Vec::new();
                };
                if !self.clients.contains_key(&conn) {
                    return Vec::new();
                }
                let results = msg.pointer("/body/breakpoints").and_then(Value::as_array);
                let mine: Vec<Value> = asked
                    .iter()
                    .map(|b| {
                        let Some(i) = sent.iter().position(|s| s.line == b.line) else {
                            return json!({ "verified": false, "line": b.line, "message": message_of(&msg) });
                        };
                        let mut result = results.and_then(|r| r.get(i)).cloned().unwrap_or_else(
                            || json!({ "verified": false, "line": b.line, "message": message_of(&msg) }),
                        );
                        if let (Some(note), Some(r)) = (merge_note(b, &sent[i]), result.as_object_mut()) {
                            r.insert("message".into(), json!(note));
                        }
                        result
                    })
                    .collect();
                let failure = message_of(&msg);
                let body = if success {
                    Ok(json!({ "breakpoints": mine }))
                } else {
                    Err(failure.as_str())
                };
                vec![self.respond(conn, seq, "setBreakpoints", body)]
            }
        }
    }

    fn on_event(&mut self, msg: Value) -> Vec<Out> {
        let event = msg.get("event").and_then(Value::as_str).unwrap_or_default().to_owned();
        let mut out = Vec::new();
        match event.as_str() {
            "initialized" => {
                self.phase = Phase::Ready;
                if let Some(r) = self.restarting.take_if(|r| r.fresh) {
                    // Participants are attached already; they were told `initialized` once.
                    return self.finish_restart(r);
                }
                let waiting: Vec<ConnId> = self
                    .clients
                    .iter()
                    .filter(|(_, c)| !c.ready)
                    .map(|(id, _)| *id)
                    .collect();
                for conn in waiting {
                    out.extend(self.attach(conn));
                }
                return out;
            }
            "stopped" => {
                self.stopped = Some(msg.clone());
                for c in self.clients.values_mut() {
                    c.saw_stop = c.ready;
                }
            }
            "continued" => self.stopped = None,
            "exited" => self.exit_code = msg.pointer("/body/exitCode").and_then(Value::as_i64),
            "terminated" if !self.terminated => {
                // The adapter waits for a `disconnect` before it exits; the hub sends it, so
                // the session ends even if no participant's editor does.
                self.terminated = true;
                self.stopped = None;
                let args = json!({ "terminateDebuggee": true });
                out.push(self.upstream("disconnect", args, Pending::Disconnect));
            }
            "output" => {
                let category = msg
                    .pointer("/body/category")
                    .and_then(Value::as_str)
                    .unwrap_or("console");
                if matches!(category, "stdout" | "stderr") {
                    if let Some(text) = msg.pointer("/body/output").and_then(Value::as_str) {
                        out.push(Out::Output {
                            stderr: category == "stderr",
                            text: text.to_owned(),
                        });
                    }
                }
            }
            _ => {}
        }
        out.extend(self.send_to_attached(&msg));
        out
    }

    fn respond(&mut self, conn: ConnId, request_seq: i64, command: &str, result: Result<Value, &str>) -> Out {
        let msg = match result {
            Ok(body) => json!({
                "type": "response", "request_seq": request_seq, "command": command, "success": true, "body": body,
            }),
            // The message alone: editors show it as is (a `body.error.format` would be a
            // template, with `{...}` taken for placeholders).
            Err(message) => json!({
                "type": "response", "request_seq": request_seq, "command": command, "success": false,
                "message": message,
            }),
        };
        self.for_client(conn, msg)
    }

    /// Stamps the participant's next `seq` on a message for it.
    fn for_client(&mut self, conn: ConnId, mut msg: Value) -> Out {
        if let Some(c) = self.clients.get_mut(&conn) {
            msg["seq"] = json!(c.seq);
            c.seq += 1;
        }
        Out::Client(conn, msg)
    }

    fn take_seq(&mut self) -> i64 {
        let s = self.next_seq;
        self.next_seq += 1;
        s
    }
}

/// A request's `seq`, command and arguments (`{}` when absent or null).
fn parse_request(msg: &Value) -> Result<(i64, String, Value), String> {
    if msg.get("type").and_then(Value::as_str) != Some("request") {
        return Err("only requests may be sent to a debug session".into());
    }
    let seq = msg
        .get("seq")
        .and_then(Value::as_i64)
        .ok_or("`seq` must be an integer")?;
    let command = msg
        .get("command")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty() && c.len() <= 64)
        .ok_or("`command` must be a short string")?;
    let args = match msg.get("arguments") {
        None | Some(Value::Null) => json!({}),
        Some(a @ Value::Object(_)) => a.clone(),
        Some(_) => return Err("`arguments` must be an object".into()),
    };
    Ok((seq, command.to_owned(), args))
}

fn message_of(msg: &Value) -> String {
    msg.get("message")
        .and_then(Value::as_str)
        .unwrap_or("no reason given")
        .to_owned()
}

mod filters;
#[cfg(test)]
mod tests;
