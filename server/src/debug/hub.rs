//! The debug hub: one upstream DAP session (the adapter in the container) fanned out to the
//! room's participants. Sans-IO: it takes DAP messages and returns what to send where, so
//! every rule below is unit-tested without Docker.
//!
//! - The hub owns the upstream `initialize` and `launch`; a participant is attached once the
//!   adapter has sent `initialized` (a late joiner at once), and gets that event then.
//! - Requests keep the participant's `seq` on the way back: each upstream request gets the
//!   hub's own `seq`, and the response's `request_seq` is rewritten to the participant's.
//!   Every message to a participant carries that participant's own `seq` counter.
//! - Events go to every attached participant. The last `stopped` is kept (until the program
//!   continues) and replayed to a late joiner after its `configurationDone`.
//! - The program starts on the starter's `configurationDone`, once its breakpoints are set:
//!   someone who joined at once and configured first is answered and waits with the rest
//!   (else the program could run past the starter's breakpoints before they arrive). If the
//!   starter leaves before configuring, the first who configured starts it.
//! - Breakpoints are kept per participant and source; upstream gets the union per source,
//!   each participant's response holds the results for its own breakpoints only.
//! - Roles: writers may do anything; readers may inspect (threads, stack, scopes, variables,
//!   source...) and get a clear error for anything that would change the program's course.
//!   Only the starter or the host ends the session; others detach.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use mesh_protocol::messages::Role;
use serde_json::{json, Value};

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
    Breakpoints {
        /// Lines sent upstream, in order (the response's results follow this order).
        sent: Vec<u32>,
        /// Who asked, their seq and breakpoints; `None` for a merge after someone left.
        reply: Option<(ConnId, i64, Vec<Value>)>,
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
    launch: Value,
    configuration_done: bool,
    /// Participants who sent `configurationDone` before the starter did: answered, and the
    /// program waits for the starter's.
    configured_early: BTreeSet<ConnId>,
    stopped: Option<Value>,
    exit_code: Option<i64>,
    /// The adapter said the session is over (`terminated`).
    terminated: bool,
    /// Container path → participant → their breakpoints (DAP `SourceBreakpoint`s).
    breakpoints: BTreeMap<String, BTreeMap<ConnId, Vec<Value>>>,
    /// Container paths of the room's files: the only places a breakpoint may go.
    files: BTreeSet<String>,
}

impl Hub {
    /// A hub for a session started by `starter`; the first output is the upstream
    /// `initialize`. `launch` is the `launch` request's arguments; `files` the container
    /// paths a breakpoint may name.
    pub fn new(starter: ConnId, launch: Value, files: BTreeSet<String>, adapter_id: &str) -> (Hub, Vec<Out>) {
        let mut hub = Hub {
            next_seq: 1,
            pending: HashMap::new(),
            clients: BTreeMap::new(),
            starter,
            phase: Phase::Initializing,
            capabilities: json!({}),
            launch,
            configuration_done: false,
            configured_early: BTreeSet::new(),
            stopped: None,
            exit_code: None,
            terminated: false,
            breakpoints: BTreeMap::new(),
            files,
        };
        let init = json!({
            "clientID": "mesh",
            "clientName": "mesh debug hub",
            "adapterID": adapter_id,
            "locale": "en",
            "linesStartAt1": true,
            "columnsStartAt1": true,
            "pathFormat": "path",
            "supportsVariableType": true,
            "supportsVariablePaging": true,
            "supportsRunInTerminalRequest": false,
            "supportsProgressReporting": false,
        });
        let out = hub.upstream("initialize", init, Pending::Initialize);
        (hub, vec![out])
    }

    /// The adapter's capabilities (empty until it answered `initialize`).
    pub fn capabilities(&self) -> &Value {
        &self.capabilities
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
        match command.as_str() {
            "initialize" => {
                let caps = self.capabilities.clone();
                vec![self.respond(conn, seq, &command, Ok(caps))]
            }
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
            _ => vec![self.forward(conn, seq, command, msg)],
        }
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
        vec![
            Out::Joined(conn, self.capabilities.clone()),
            self.for_client(conn, event),
        ]
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
        let asked: Vec<Value> = match args.get("breakpoints") {
            Some(Value::Array(a)) => a.clone(),
            _ => args
                .get("lines")
                .and_then(Value::as_array)
                .map(|lines| lines.iter().map(|l| json!({ "line": l })).collect())
                .unwrap_or_default(),
        };
        let unverified = |message: &str| {
            let list: Vec<Value> = asked
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
        if asked.len() > MAX_BREAKPOINTS_PER_FILE || asked.iter().any(|b| line_of(b).is_none()) {
            let message = format!("at most {MAX_BREAKPOINTS_PER_FILE} breakpoints per file, each with a line ≥ 1");
            return vec![self.respond(conn, seq, "setBreakpoints", Err(&message))];
        }
        let by = self.breakpoints.entry(path.clone()).or_default();
        if asked.is_empty() {
            by.remove(&conn);
        } else {
            by.insert(conn, asked.clone());
        }
        self.merge_upstream(&path, Some((conn, seq, asked)))
    }

    /// Sends the union of everyone's breakpoints in `path` upstream.
    fn merge_upstream(&mut self, path: &str, reply: Option<(ConnId, i64, Vec<Value>)>) -> Vec<Out> {
        let mut merged: BTreeMap<u32, Value> = BTreeMap::new();
        if let Some(by) = self.breakpoints.get(path) {
            for bps in by.values() {
                for b in bps {
                    if let Some(line) = line_of(b) {
                        merged.entry(line).or_insert_with(|| b.clone());
                    }
                }
            }
        }
        let lines: Vec<u32> = merged.keys().copied().collect();
        let args = json!({
            "source": { "path": path, "name": path.rsplit('/').next().unwrap_or(path) },
            "breakpoints": merged.into_values().collect::<Vec<_>>(),
            "sourceModified": false,
        });
        let pending = Pending::Breakpoints {
            sent: lines.clone(),
            reply,
        };
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
                let launch = self.launch.clone();
                vec![self.upstream("launch", launch, Pending::Launch)]
            }
            Pending::Launch if !success => {
                vec![Out::Fatal(format!(
                    "the debug adapter could not launch the program: {}",
                    message_of(&msg)
                ))]
            }
            Pending::Launch | Pending::Quiet => Vec::new(),
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
                        let line = line_of(b);
                        sent.iter()
                            .position(|l| Some(*l) == line)
                            .and_then(|i| results.and_then(|r| r.get(i)).cloned())
                            .unwrap_or_else(|| json!({ "verified": false, "line": line, "message": message_of(&msg) }))
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
                out.push(self.upstream("disconnect", args, Pending::Quiet));
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
        let ready: Vec<ConnId> = self
            .clients
            .iter()
            .filter(|(_, c)| c.ready)
            .map(|(id, _)| *id)
            .collect();
        for conn in ready {
            out.push(self.for_client(conn, msg.clone()));
        }
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

fn line_of(b: &Value) -> Option<u32> {
    b.get("line")
        .and_then(Value::as_u64)
        .filter(|l| *l >= 1)
        .and_then(|l| u32::try_from(l).ok())
}

fn message_of(msg: &Value) -> String {
    msg.get("message")
        .and_then(Value::as_str)
        .unwrap_or("no reason given")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADA: ConnId = 1;
    const BOB: ConnId = 2;
    const RITA: ConnId = 3;

    fn adapter_msgs(out: &[Out]) -> Vec<Value> {
        out.iter()
            .filter_map(|o| match o {
                Out::Adapter(v) => Some(v.clone()),
                _ => None,
            })
            .collect()
    }

    fn to(out: &[Out], conn: ConnId) -> Vec<Value> {
        out.iter()
            .filter_map(|o| match o {
                Out::Client(c, v) if *c == conn => Some(v.clone()),
                _ => None,
            })
            .collect()
    }

    fn respond_to(req: &Value, body: Value) -> Value {
        json!({"type": "response", "seq": 900, "request_seq": req["seq"], "command": req["command"], "success": true, "body": body})
    }

    /// A hub through initialize, launch and `initialized`, with Ada (starter) and Bob attached.
    fn ready_hub() -> Hub {
        let files = BTreeSet::from(["/work/main.py".to_string(), "/work/lib.py".to_string()]);
        let (mut hub, out) = Hub::new(ADA, json!({"program": "/work/main.py"}), files, "python");
        hub.join(ADA);
        hub.join(BOB);
        let init = &adapter_msgs(&out)[0];
        assert_eq!(init["command"], "initialize");
        let out = hub.from_adapter(respond_to(init, json!({"supportsConfigurationDoneRequest": true})));
        let launch = &adapter_msgs(&out)[0];
        assert_eq!(launch["command"], "launch");
        assert_eq!(launch["arguments"]["program"], "/work/main.py");
        let out = hub.from_adapter(json!({"type": "event", "seq": 5, "event": "initialized"}));
        for c in [ADA, BOB] {
            assert!(out.contains(&Out::Joined(c, json!({"supportsConfigurationDoneRequest": true}))));
            assert_eq!(to(&out, c)[0]["event"], "initialized");
        }
        hub
    }

    fn req(seq: i64, command: &str, args: Value) -> Value {
        json!({"type": "request", "seq": seq, "command": command, "arguments": args})
    }

    #[test]
    fn request_seq_is_rewritten_per_participant() {
        let mut hub = ready_hub();
        let a = adapter_msgs(&hub.from_client(ADA, Role::Writer, req(7, "threads", Value::Null)))[0].clone();
        let b = adapter_msgs(&hub.from_client(BOB, Role::Writer, req(7, "threads", json!({}))))[0].clone();
        assert_ne!(a["seq"], b["seq"], "upstream seqs are the hub's own");
        let out = hub.from_adapter(respond_to(&b, json!({"threads": []})));
        let got = to(&out, BOB);
        assert_eq!(got[0]["request_seq"], 7);
        assert!(to(&out, ADA).is_empty(), "a response goes only to who asked");
        // Each participant's messages are numbered in its own sequence.
        let first_bob_seq = got[0]["seq"].as_i64().unwrap();
        let out = hub.from_adapter(json!({"type": "event", "seq": 77, "event": "thread", "body": {}}));
        assert_eq!(to(&out, BOB)[0]["seq"].as_i64().unwrap(), first_bob_seq + 1);
        assert_eq!(to(&out, ADA).len(), 1, "events go to everyone");
    }

    #[test]
    fn breakpoints_are_merged_and_answered_per_participant() {
        let mut hub = ready_hub();
        let src = json!({"path": "/work/main.py"});
        let out = hub.from_client(
            ADA,
            Role::Writer,
            req(
                3,
                "setBreakpoints",
                json!({"source": src, "breakpoints": [{"line": 4}]}),
            ),
        );
        let up = adapter_msgs(&out)[0].clone();
        assert_eq!(up["arguments"]["breakpoints"], json!([{"line": 4}]));
        assert!(out.contains(&Out::Breakpoints("/work/main.py".into(), vec![4])));
        hub.from_adapter(respond_to(
            &up,
            json!({"breakpoints": [{"id": 1, "verified": true, "line": 4}]}),
        ));

        let out = hub.from_client(
            BOB,
            Role::Writer,
            req(
                9,
                "setBreakpoints",
                json!({"source": src, "breakpoints": [{"line": 2}, {"line": 4}]}),
            ),
        );
        let up = adapter_msgs(&out)[0].clone();
        assert_eq!(up["arguments"]["breakpoints"], json!([{"line": 2}, {"line": 4}]));
        let out = hub.from_adapter(respond_to(
            &up,
            json!({"breakpoints": [{"id": 2, "verified": true, "line": 2}, {"id": 1, "verified": true, "line": 4}]}),
        ));
        let resp = &to(&out, BOB)[0];
        assert_eq!(resp["request_seq"], 9);
        assert_eq!(resp["body"]["breakpoints"][0]["id"], 2);
        assert_eq!(resp["body"]["breakpoints"][1]["id"], 1);

        // Bob leaves: only Ada's breakpoint stays upstream.
        let out = hub.leave(BOB);
        assert_eq!(adapter_msgs(&out)[0]["arguments"]["breakpoints"], json!([{"line": 4}]));
    }

    #[test]
    fn a_breakpoint_outside_the_room_is_unverified_and_never_sent() {
        let mut hub = ready_hub();
        let out = hub.from_client(
            ADA,
            Role::Writer,
            req(
                3,
                "setBreakpoints",
                json!({"source": {"path": "/etc/passwd"}, "breakpoints": [{"line": 1}]}),
            ),
        );
        assert!(adapter_msgs(&out).is_empty());
        let bp = &to(&out, ADA)[0]["body"]["breakpoints"][0];
        assert_eq!(bp["verified"], false);
        assert!(bp["message"].as_str().unwrap().contains("not a file of this room"));
    }

    #[test]
    fn readers_inspect_but_do_not_control() {
        let mut hub = ready_hub();
        hub.join(RITA);
        for command in ["continue", "next", "evaluate", "setVariable", "pause"] {
            let out = hub.from_client(RITA, Role::Reader, req(1, command, json!({"threadId": 1})));
            assert!(adapter_msgs(&out).is_empty(), "{command} reached the adapter");
            let resp = &to(&out, RITA)[0];
            assert_eq!(resp["success"], false);
            assert!(resp["message"].as_str().unwrap().contains("readers may inspect"));
        }
        let out = hub.from_client(RITA, Role::Reader, req(2, "stackTrace", json!({"threadId": 1})));
        assert_eq!(adapter_msgs(&out)[0]["command"], "stackTrace");
        let out = hub.from_client(RITA, Role::Reader, req(3, "terminate", json!({})));
        assert!(to(&out, RITA)[0]["message"]
            .as_str()
            .unwrap()
            .contains("only the participant who started"));
        // A reader's disconnect only detaches it.
        let out = hub.from_client(
            RITA,
            Role::Reader,
            req(4, "disconnect", json!({"terminateDebuggee": true})),
        );
        assert!(adapter_msgs(&out).is_empty());
        assert!(!hub.has(RITA));
    }

    #[test]
    fn only_the_starter_or_the_host_ends_the_session() {
        let mut hub = ready_hub();
        let out = hub.from_client(
            BOB,
            Role::Writer,
            req(5, "disconnect", json!({"terminateDebuggee": true})),
        );
        assert!(adapter_msgs(&out).is_empty(), "Bob only detaches");
        assert_eq!(to(&out, BOB)[0]["success"], true);
        let out = hub.from_client(
            ADA,
            Role::Writer,
            req(6, "disconnect", json!({"terminateDebuggee": true})),
        );
        assert_eq!(adapter_msgs(&out)[0]["command"], "disconnect");
    }

    #[test]
    fn a_late_joiner_gets_initialized_and_then_the_current_stop() {
        let mut hub = ready_hub();
        let out = hub.from_client(ADA, Role::Writer, req(1, "configurationDone", Value::Null));
        let up = adapter_msgs(&out)[0].clone();
        hub.from_adapter(respond_to(&up, json!({})));
        let stop =
            json!({"type": "event", "seq": 40, "event": "stopped", "body": {"reason": "breakpoint", "threadId": 1}});
        hub.from_adapter(stop);

        let out = hub.join(RITA);
        assert!(matches!(out[0], Out::Joined(RITA, _)));
        assert_eq!(to(&out, RITA)[0]["event"], "initialized");
        let out = hub.from_client(RITA, Role::Reader, req(1, "configurationDone", json!({})));
        assert!(adapter_msgs(&out).is_empty(), "configurationDone goes upstream once");
        let got = to(&out, RITA);
        assert_eq!(got[0]["success"], true);
        assert_eq!(got[1]["event"], "stopped");
        assert_eq!(got[1]["body"]["threadId"], 1);

        // Once someone steps, there is no stop to replay.
        let out = hub.from_client(ADA, Role::Writer, req(2, "next", json!({"threadId": 1})));
        let up = adapter_msgs(&out)[0].clone();
        hub.from_adapter(respond_to(&up, json!({})));
        hub.join(4);
        let out = hub.from_client(4, Role::Writer, req(1, "configurationDone", json!({})));
        assert_eq!(to(&out, 4).len(), 1);
    }

    #[test]
    fn bad_messages_and_silent_adapters_get_clear_answers() {
        let mut hub = ready_hub();
        let out = hub.from_client(ADA, Role::Writer, json!({"type": "event", "event": "x"}));
        assert!(matches!(&out[0], Out::Refused(ADA, m) if m.contains("only requests")));
        let out = hub.from_client(
            ADA,
            Role::Writer,
            json!({"type": "request", "seq": "x", "command": "threads"}),
        );
        assert!(matches!(&out[0], Out::Refused(ADA, m) if m.contains("seq")));
        let out = hub.from_client(9, Role::Writer, req(1, "threads", json!({})));
        assert!(matches!(&out[0], Out::Refused(9, m) if m.contains("not attached")));

        hub.from_client(ADA, Role::Writer, req(8, "threads", json!({})));
        let out = hub.expire(Instant::now() + REQUEST_TIMEOUT, REQUEST_TIMEOUT);
        let resp = &to(&out, ADA)[0];
        assert_eq!(
            (resp["request_seq"].as_i64(), resp["success"].as_bool()),
            (Some(8), Some(false))
        );
        assert!(resp["message"].as_str().unwrap().contains("did not answer threads"));
    }

    #[test]
    fn a_failed_launch_is_fatal() {
        let (mut hub, out) = Hub::new(ADA, json!({}), BTreeSet::new(), "python");
        let out = hub.from_adapter(respond_to(&adapter_msgs(&out)[0], json!({})));
        let launch = adapter_msgs(&out)[0].clone();
        let out = hub.from_adapter(
            json!({"type": "response", "request_seq": launch["seq"], "success": false, "message": "no such file"}),
        );
        assert!(matches!(&out[0], Out::Fatal(m) if m.contains("no such file")));
    }

    #[test]
    fn the_hub_disconnects_a_terminated_adapter_itself() {
        let mut hub = ready_hub();
        let out = hub.from_adapter(json!({"type": "event", "seq": 50, "event": "terminated"}));
        assert_eq!(to(&out, BOB)[0]["event"], "terminated");
        assert_eq!(adapter_msgs(&out)[0]["command"], "disconnect");
        assert!(hub.is_terminated());
        let out = hub.from_client(BOB, Role::Writer, req(3, "disconnect", json!({})));
        assert!(adapter_msgs(&out).is_empty());
        assert_eq!(to(&out, BOB)[0]["success"], true);
    }

    #[test]
    fn the_program_starts_on_the_starters_configuration_done() {
        let mut hub = ready_hub();
        // Bob joined at once and configured first: answered, but nothing starts yet.
        let out = hub.from_client(BOB, Role::Writer, req(1, "configurationDone", json!({})));
        assert!(adapter_msgs(&out).is_empty(), "the program waits for the starter");
        assert_eq!(to(&out, BOB)[0]["success"], true);
        // Ada's breakpoints go upstream, then her configurationDone starts the program.
        let bp = json!({"source": {"path": "/work/main.py"}, "breakpoints": [{"line": 3}]});
        let out = hub.from_client(ADA, Role::Writer, req(2, "setBreakpoints", bp));
        assert_eq!(adapter_msgs(&out)[0]["command"], "setBreakpoints");
        let out = hub.from_client(ADA, Role::Writer, req(3, "configurationDone", json!({})));
        assert_eq!(adapter_msgs(&out)[0]["command"], "configurationDone");
        // The stop reaches Bob live.
        let out = hub.from_adapter(json!({"type": "event", "seq": 9, "event": "stopped", "body": {"threadId": 1}}));
        assert_eq!(to(&out, BOB)[0]["event"], "stopped");
    }

    #[test]
    fn a_starter_who_leaves_before_configuring_does_not_hold_the_program() {
        let mut hub = ready_hub();
        hub.from_client(BOB, Role::Writer, req(1, "configurationDone", json!({})));
        let out = hub.leave(ADA);
        assert!(adapter_msgs(&out).iter().any(|m| m["command"] == "configurationDone"));
        // Without anyone waiting, the next one to configure starts it.
        let mut hub = ready_hub();
        hub.leave(ADA);
        let out = hub.from_client(BOB, Role::Writer, req(1, "configurationDone", json!({})));
        assert_eq!(adapter_msgs(&out)[0]["command"], "configurationDone");
    }

    #[test]
    fn a_participant_attached_at_the_stop_does_not_get_it_twice() {
        let mut hub = ready_hub();
        let up = adapter_msgs(&hub.from_client(ADA, Role::Writer, req(1, "configurationDone", json!({}))))[0].clone();
        hub.from_adapter(respond_to(&up, json!({})));
        let out = hub.from_adapter(json!({"type": "event", "seq": 9, "event": "stopped", "body": {"threadId": 1}}));
        assert_eq!(to(&out, BOB)[0]["event"], "stopped");
        let out = hub.from_client(BOB, Role::Writer, req(1, "configurationDone", json!({})));
        assert_eq!(to(&out, BOB).len(), 1, "only the response: Bob saw the stop live");
    }
}
