//! The sans-IO heart of `mesh-proxy dap`: it takes what the editor and the room say and
//! returns what to send where. No sockets, no clock: the caller feeds [`Input`]s and carries
//! out the [`Output`]s, which makes every rule below a unit test.
//!
//! The editor sees an ordinary debug adapter. `initialize` is answered here; `launch` and
//! `attach` become one `DebugStart` and are answered once the room's hub says `DebugJoined`;
//! every other request goes to the hub with its `Source` paths mapped to the container, and
//! what the hub sends back comes to the editor with paths mapped to this machine and the
//! proxy's own `seq`.

use std::collections::BTreeMap;

use mesh_protocol::messages::Role;
use mesh_protocol::{ClientMessage, Request, ServerMessage, MAX_MESH_MESSAGE_BYTES};
use serde_json::{json, Map, Value};

use super::capabilities;
use super::codec::DecodeError;
use super::paths::{Folder, PathMap};

/// How many requests may wait while the session starts. Editors send a handful
/// (breakpoints, threads); more means something is looping.
pub const MAX_HELD_REQUESTS: usize = 256;

/// Something that happened.
#[derive(Debug)]
pub enum Input {
    /// A message from the editor, or why some of its input was not one.
    Editor(Result<Value, DecodeError>),
    /// A mesh message from the room.
    Room(ServerMessage),
    /// The connection to the room dropped; `fatal` when it will not come back.
    RoomLost {
        /// Why, for the user.
        reason: String,
        /// The server refused us for good.
        fatal: bool,
    },
    /// The editor's `disconnect` went unanswered for too long.
    DisconnectTimeout,
}

/// Something to do.
#[derive(Debug, PartialEq)]
pub enum Output {
    /// Send this DAP message to the editor.
    Editor(Value),
    /// Send this mesh message to the room. Its id is the `seq` of the editor's request it
    /// carries, so the room's refusal names that request.
    Room(Request),
    /// All is said: flush what was sent to the editor and end.
    Exit,
}

/// A request of the editor that waits for an answer.
#[derive(Debug, Clone)]
struct Pending {
    seq: i64,
    command: String,
}

/// Where the editor's debug session stands.
#[derive(Debug)]
enum Phase {
    /// No `launch` or `attach` yet.
    Idle,
    /// `DebugStart` is sent; the `launch` or `attach` waits for `DebugJoined`.
    Starting(Pending),
    /// Attached to the room's session.
    Attached { debug_id: String, paths: PathMap },
    /// The session ended for this editor; only `disconnect` is left to answer.
    Ended,
}

/// The bridge between one editor and the room's debug session.
#[derive(Debug)]
pub struct Bridge {
    /// The shared folder, or why this folder cannot debug in a room.
    folder: Result<Folder, String>,
    phase: Phase,
    /// The `seq` of the next message to the editor.
    next_seq: i64,
    /// Requests sent to the hub, by the editor's `seq`.
    pending: BTreeMap<i64, String>,
    /// Requests that arrived while the session started.
    held: Vec<Value>,
    /// The editor's `disconnect`, once sent to the hub.
    disconnect: Option<i64>,
    /// Whether the editor was told `exited` (by the adapter or by the proxy).
    exited: bool,
    /// Whether the editor was told `terminated`.
    terminated: bool,
    /// This participant's connection id and role, from the room's welcome.
    me: Option<(u64, Role)>,
}

impl Bridge {
    /// A bridge for the shared folder, or for a folder that is not in a room (`Err` says
    /// why; `launch` then fails with that message).
    pub fn new(folder: Result<Folder, String>) -> Bridge {
        Bridge {
            folder,
            phase: Phase::Idle,
            next_seq: 1,
            pending: BTreeMap::new(),
            held: Vec::new(),
            disconnect: None,
            exited: false,
            terminated: false,
            me: None,
        }
    }

    /// Whether the editor's `disconnect` waits for the hub (the caller arms a timeout).
    pub fn awaits_disconnect(&self) -> bool {
        self.disconnect.is_some()
    }

    /// Handles one input.
    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::Editor(Ok(msg)) => self.editor(msg, &mut out),
            Input::Editor(Err(e)) => self.say(&mut out, format!("mesh-proxy ignored input from the editor: {e}")),
            Input::Room(msg) => self.room(msg, &mut out),
            Input::RoomLost { reason, fatal } => self.room_lost(reason, fatal, &mut out),
            Input::DisconnectTimeout => {
                if let Some(seq) = self.disconnect.take() {
                    self.respond(&mut out, seq, "disconnect", Ok(Value::Null));
                    out.push(Output::Exit);
                }
            }
        }
        out
    }

    // ---- From the editor ----

    fn editor(&mut self, mut msg: Value, out: &mut Vec<Output>) {
        let kind = msg.get("type").and_then(Value::as_str).map(str::to_string);
        let command = msg.get("command").and_then(Value::as_str).map(str::to_string);
        let Some(seq) = msg.get("seq").and_then(Value::as_i64) else {
            return self.say(out, "mesh-proxy ignored a DAP message: it has no integer `seq`".into());
        };
        let checked = match (kind.as_deref(), &command) {
            (Some("request"), Some(command)) => normalise_arguments(&mut msg).map(|()| command.clone()),
            (Some("request"), None) => Err("a request needs a `command`".to_string()),
            (Some("response"), _) => {
                // The hub answers the adapter's reverse requests itself; a response of the
                // editor has nowhere to go.
                return tracing::debug!(?msg, "dropped a response from the editor");
            }
            (kind, _) => Err(format!(
                "expected a request, not {}",
                kind.unwrap_or("a message without `type`")
            )),
        };
        match checked {
            Ok(command) => self.request(Pending { seq, command }, msg, out),
            Err(problem) => {
                let e = format!("mesh-proxy refused this DAP message: {problem}");
                self.respond(out, seq, &command.unwrap_or_default(), Err(e));
            }
        }
    }

    fn request(&mut self, req: Pending, msg: Value, out: &mut Vec<Output>) {
        match req.command.as_str() {
            "initialize" => self.respond(out, req.seq, &req.command, Ok(capabilities::initial())),
            "launch" | "attach" => self.launch(req, &msg["arguments"], out),
            "disconnect" => self.disconnect(req, msg, out),
            _ => self.forward(req, msg, out),
        }
    }

    fn launch(&mut self, req: Pending, args: &Value, out: &mut Vec<Output>) {
        if !matches!(self.phase, Phase::Idle) {
            let e = "this editor already has a debug session of the room; disconnect it first";
            return self.respond(out, req.seq, &req.command, Err(e.into()));
        }
        match self.start_message(&req.command, args) {
            Ok(start) => {
                let start = Request {
                    id: u64::try_from(req.seq).ok(),
                    message: start,
                };
                self.phase = Phase::Starting(req);
                out.push(Output::Room(start));
            }
            Err(e) => self.fail_start(req, e, out),
        }
    }

    /// The `DebugStart` for a `launch` or `attach`: the program must be a file of the shared
    /// folder; `attach` may leave it out to join the session that is going.
    fn start_message(&self, command: &str, args: &Value) -> Result<ClientMessage, String> {
        let folder = self.folder.as_ref().map_err(Clone::clone)?;
        let language = args.get("language").and_then(Value::as_str).map(str::to_string);
        let path = match args.get("program").and_then(Value::as_str) {
            Some(program) => folder.room_path(program).ok_or_else(|| {
                format!(
                    "{program} is not in the shared folder {}: only files of the room can be debugged",
                    folder.root().display()
                )
            })?,
            None if command == "attach" => String::new(),
            None => {
                return Err("launch needs a `program`: the file to debug, in the shared folder \
                            (in VS Code: \"program\": \"${file}\")"
                    .into())
            }
        };
        Ok(ClientMessage::DebugStart { path, language })
    }

    fn disconnect(&mut self, req: Pending, msg: Value, out: &mut Vec<Output>) {
        if matches!(self.phase, Phase::Attached { .. }) {
            self.disconnect = Some(req.seq);
            return self.forward(req, msg, out);
        }
        // Nothing upstream to tell: dropping the room connection detaches this editor.
        self.respond(out, req.seq, &req.command, Ok(Value::Null));
        out.push(Output::Exit);
    }

    fn forward(&mut self, req: Pending, mut msg: Value, out: &mut Vec<Output>) {
        let Phase::Attached { debug_id, paths } = &self.phase else {
            return self.not_attached(req, msg, out);
        };
        if req.command == "setBreakpoints" {
            if let Some(body) = breakpoints_outside(paths, &msg["arguments"]) {
                return self.respond(out, req.seq, &req.command, Ok(body));
            }
        }
        paths.to_container(&mut msg);
        let dap = ClientMessage::Dap {
            debug_id: debug_id.clone(),
            message: msg,
        };
        let size = serde_json::to_vec(&dap).map_or(usize::MAX, |b| b.len());
        if size > MAX_MESH_MESSAGE_BYTES {
            let e = format!(
                "this request is {size} bytes; the room carries debug messages of at most {MAX_MESH_MESSAGE_BYTES} bytes"
            );
            return self.respond(out, req.seq, &req.command, Err(e));
        }
        self.pending.insert(req.seq, req.command);
        out.push(Output::Room(Request {
            id: u64::try_from(req.seq).ok(),
            message: dap,
        }));
    }

    fn not_attached(&mut self, req: Pending, msg: Value, out: &mut Vec<Output>) {
        let e = match self.phase {
            Phase::Starting(_) if self.held.len() < MAX_HELD_REQUESTS => return self.held.push(msg),
            Phase::Starting(_) => "too many requests while the debug session starts",
            Phase::Idle => "no debug session yet: send `launch` or `attach` first",
            Phase::Ended | Phase::Attached { .. } => "the debug session has ended",
        };
        self.respond(out, req.seq, &req.command, Err(e.into()));
    }

    // ---- From the room ----

    fn room(&mut self, msg: ServerMessage, out: &mut Vec<Output>) {
        match msg {
            ServerMessage::Welcome { conn_id, role, .. } => self.me = Some((conn_id, role)),
            ServerMessage::DebugJoined {
                debug_id,
                capabilities,
                work_dir,
                aliases,
                by,
                ..
            } => {
                // Only the starter or the host may end the session for everyone: anyone else's
                // Stop button must send `disconnect` (which detaches), not `terminate`.
                let may_end = self.me.is_none_or(|(conn, role)| conn == by || role == Role::Host);
                let mut capabilities = capabilities;
                if let Some(caps) = capabilities.as_object_mut().filter(|_| !may_end) {
                    caps.insert("supportsTerminateRequest".into(), Value::Bool(false));
                }
                self.joined(debug_id, &capabilities, &work_dir, aliases, out)
            }
            ServerMessage::Dap { debug_id, message } if self.is_ours(&debug_id) => self.hub_message(message, out),
            // The room's debug session waits for a free sandbox: say where in line, in the
            // debug console, each time it moves (the launch stays pending meanwhile).
            ServerMessage::RunQueued {
                position,
                limit,
                debug: true,
                ..
            } if matches!(self.phase, Phase::Starting(_)) => {
                self.say(out, mesh_protocol::messages::queued_text(position, &limit))
            }
            ServerMessage::DebugEnded {
                debug_id,
                exit_code,
                error,
            } if self.is_ours(&debug_id) || matches!(self.phase, Phase::Starting(_)) => {
                self.ended(exit_code, error, out)
            }
            ServerMessage::Error {
                message, responding_to, ..
            } => self.mesh_error(message, responding_to, out),
            _ => {}
        }
    }

    fn is_ours(&self, id: &str) -> bool {
        matches!(&self.phase, Phase::Attached { debug_id, .. } if debug_id == id)
    }

    fn joined(
        &mut self,
        debug_id: String,
        adapter: &Value,
        work_dir: &str,
        aliases: BTreeMap<String, String>,
        out: &mut Vec<Output>,
    ) {
        let (Phase::Starting(req), Ok(folder)) = (&self.phase, &self.folder) else {
            return;
        };
        let req = req.clone();
        let paths = PathMap::new(folder.clone(), work_dir, aliases);
        self.phase = Phase::Attached { debug_id, paths };
        if let Some(body) = capabilities::correction(&capabilities::initial(), adapter) {
            self.event(out, "capabilities", body);
        }
        self.respond(out, req.seq, &req.command, Ok(Value::Null));
        for msg in std::mem::take(&mut self.held) {
            self.editor(msg, out);
        }
    }

    fn hub_message(&mut self, mut msg: Value, out: &mut Vec<Output>) {
        let Phase::Attached { paths, .. } = &self.phase else {
            return;
        };
        paths.to_local(&mut msg);
        let mut finished = false;
        match msg.get("type").and_then(Value::as_str) {
            Some("response") => {
                let answered = msg.get("request_seq").and_then(Value::as_i64);
                if let Some(seq) = answered {
                    self.pending.remove(&seq);
                    finished = self.disconnect == Some(seq);
                }
            }
            Some("event") => match msg.get("event").and_then(Value::as_str) {
                Some("exited") => self.exited = true,
                Some("terminated") => self.terminated = true,
                _ => {}
            },
            _ => {}
        }
        msg["seq"] = json!(self.take_seq());
        out.push(Output::Editor(msg));
        if finished {
            self.disconnect = None;
            out.push(Output::Exit);
        }
    }

    fn ended(&mut self, exit_code: Option<i64>, error: Option<String>, out: &mut Vec<Output>) {
        if let Phase::Starting(req) = &self.phase {
            let req = req.clone();
            let e = error.unwrap_or_else(|| "the debug session ended before it started".into());
            return self.fail_start(req, e, out);
        }
        if let Some(e) = error {
            self.say(out, format!("The debug session ended: {e}"));
        }
        self.end(exit_code, out);
    }

    /// The room refused a message: the answer to the editor's request it names (the mesh
    /// request's id is the request's `seq`); shown to the user when it names none of them.
    fn mesh_error(&mut self, message: String, responding_to: Option<u64>, out: &mut Vec<Output>) {
        let named = responding_to.and_then(|id| i64::try_from(id).ok());
        if let Phase::Starting(req) = &self.phase {
            if named == Some(req.seq) {
                let req = req.clone();
                return self.fail_start(req, message, out);
            }
        }
        let answered = named.and_then(|seq| self.pending.remove(&seq).map(|command| (seq, command)));
        match answered {
            Some((seq, command)) if self.disconnect == Some(seq) => {
                // The hub could not pass the disconnect on: this editor leaves all the same.
                self.disconnect = None;
                self.respond(out, seq, &command, Ok(Value::Null));
                out.push(Output::Exit);
            }
            Some((seq, command)) => self.respond(out, seq, &command, Err(message)),
            None => self.say(out, format!("mesh: {message}")),
        }
    }

    fn room_lost(&mut self, reason: String, fatal: bool, out: &mut Vec<Output>) {
        if fatal {
            self.folder = Err(reason.clone());
        }
        match &self.phase {
            Phase::Starting(req) => {
                let req = req.clone();
                self.fail_start(req, format!("cannot reach the room: {reason}"), out);
            }
            Phase::Attached { .. } => {
                self.say(
                    out,
                    format!("Lost the connection to the room ({reason}); this editor left the debug session."),
                );
                self.end(None, out);
            }
            Phase::Idle | Phase::Ended => {}
        }
    }

    // ---- Endings ----

    /// `launch`/`attach` failed: its error response, then `terminated` so every editor
    /// closes the session.
    fn fail_start(&mut self, req: Pending, error: String, out: &mut Vec<Output>) {
        self.phase = Phase::Ended;
        self.respond(out, req.seq, &req.command, Err(error));
        for msg in std::mem::take(&mut self.held) {
            self.editor(msg, out);
        }
        self.terminate(out);
    }

    /// The session is over for this editor: waiting requests fail, the editor is told
    /// `exited` (when the program's exit code is known and the adapter did not say it) and
    /// `terminated`, and a `disconnect` in flight is answered.
    fn end(&mut self, exit_code: Option<i64>, out: &mut Vec<Output>) {
        self.phase = Phase::Ended;
        let disconnect = self.disconnect.take();
        for (seq, command) in std::mem::take(&mut self.pending) {
            if Some(seq) != disconnect {
                self.respond(out, seq, &command, Err("the debug session has ended".into()));
            }
        }
        if let (Some(code), false) = (exit_code, self.exited) {
            self.exited = true;
            self.event(out, "exited", json!({ "exitCode": code }));
        }
        self.terminate(out);
        if let Some(seq) = disconnect {
            self.respond(out, seq, "disconnect", Ok(Value::Null));
            out.push(Output::Exit);
        }
    }

    fn terminate(&mut self, out: &mut Vec<Output>) {
        if !self.terminated {
            self.terminated = true;
            self.event(out, "terminated", json!({}));
        }
    }

    // ---- To the editor ----

    fn take_seq(&mut self) -> i64 {
        self.next_seq += 1;
        self.next_seq - 1
    }

    fn respond(&mut self, out: &mut Vec<Output>, request_seq: i64, command: &str, result: Result<Value, String>) {
        let mut msg = json!({
            "seq": self.take_seq(),
            "type": "response",
            "request_seq": request_seq,
            "command": command,
            "success": result.is_ok(),
        });
        match result {
            Ok(Value::Null) => {}
            Ok(body) => msg["body"] = body,
            Err(message) => msg["message"] = json!(message),
        }
        out.push(Output::Editor(msg));
    }

    fn event(&mut self, out: &mut Vec<Output>, event: &str, body: Value) {
        let seq = self.take_seq();
        out.push(Output::Editor(
            json!({"seq": seq, "type": "event", "event": event, "body": body}),
        ));
    }

    /// Tells the user something in the editor's debug console, where it cannot be missed.
    fn say(&mut self, out: &mut Vec<Output>, text: String) {
        self.event(
            out,
            "output",
            json!({"category": "important", "output": format!("{text}\n")}),
        );
    }
}

/// `arguments` of `null` is taken as `{}`, as a missing one is left missing; anything but an
/// object is refused.
fn normalise_arguments(msg: &mut Value) -> Result<(), String> {
    match msg.get("arguments") {
        None | Some(Value::Object(_)) => Ok(()),
        Some(Value::Null) => {
            msg["arguments"] = Value::Object(Map::new());
            Ok(())
        }
        Some(_) => Err("`arguments` must be an object".into()),
    }
}

/// The answer to a `setBreakpoints` for a file outside the shared folder: every breakpoint
/// unverified, saying why. `None` for files of the room (and sources without a path).
fn breakpoints_outside(paths: &PathMap, args: &Value) -> Option<Value> {
    let path = args["source"]["path"].as_str()?;
    if paths.container_path(path).is_some() {
        return None;
    }
    let message = format!(
        "{path} is not in the shared folder {}; only files of the room can have breakpoints",
        paths.folder().root().display()
    );
    let lines: Vec<Value> = match args["breakpoints"].as_array() {
        Some(bps) => bps.iter().map(|b| b["line"].clone()).collect(),
        None => args["lines"].as_array().cloned().unwrap_or_default(),
    };
    let breakpoints: Vec<Value> = lines
        .into_iter()
        .map(|line| json!({"verified": false, "line": line, "message": message}))
        .collect();
    Some(json!({ "breakpoints": breakpoints }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use mesh_protocol::ErrorCode;

    const ROOT: &str = "/home/ada/proj";

    fn bridge() -> Bridge {
        Bridge::new(Ok(Folder::new(ROOT.into())))
    }

    fn request(seq: i64, command: &str, arguments: Value) -> Input {
        Input::Editor(Ok(
            json!({"seq": seq, "type": "request", "command": command, "arguments": arguments}),
        ))
    }

    fn joined(capabilities: Value) -> Input {
        Input::Room(ServerMessage::DebugJoined {
            debug_id: "d1".into(),
            path: "src/app.py".into(),
            language: "python".into(),
            by: 1,
            capabilities,
            work_dir: "/work".into(),
            aliases: BTreeMap::from([("/work/main.py".into(), "src/app.py".into())]),
            responding_to: None,
        })
    }

    fn hub(message: Value) -> Input {
        Input::Room(ServerMessage::Dap {
            debug_id: "d1".into(),
            message,
        })
    }

    fn to_editor(out: &[Output]) -> Vec<Value> {
        out.iter()
            .filter_map(|o| match o {
                Output::Editor(v) => Some(v.clone()),
                _ => None,
            })
            .collect()
    }

    /// A bridge attached to session `d1` after `initialize` (seq 1) and `launch` (seq 2).
    fn attached() -> Bridge {
        let mut b = bridge();
        b.handle(request(1, "initialize", json!({"adapterID": "mesh"})));
        b.handle(request(2, "launch", json!({"program": format!("{ROOT}/src/app.py")})));
        b.handle(joined(capabilities::initial()));
        b
    }

    #[test]
    fn initialize_is_answered_at_once() {
        let out = bridge().handle(request(1, "initialize", json!({})));
        assert_eq!(
            out,
            vec![Output::Editor(json!({"seq": 1, "type": "response", "request_seq": 1,
                "command": "initialize", "success": true, "body": capabilities::initial()}))]
        );
    }

    #[test]
    fn launch_starts_the_rooms_session_and_is_answered_once_joined() {
        let mut b = bridge();
        let out = b.handle(request(
            5,
            "launch",
            json!({"program": format!("{ROOT}/src/app.py"), "language": "python"}),
        ));
        assert_eq!(
            out,
            vec![Output::Room(Request::new(
                5,
                ClientMessage::DebugStart {
                    path: "src/app.py".into(),
                    language: Some("python".into())
                }
            ))]
        );
        // A request that comes early waits for the session.
        assert_eq!(b.handle(request(6, "threads", json!({}))), vec![]);
        let mut adapter = capabilities::initial();
        adapter["supportsModulesRequest"] = json!(true);
        let out = b.handle(joined(adapter));
        assert_eq!(
            to_editor(&out),
            vec![
                json!({"seq": 1, "type": "event", "event": "capabilities",
                    "body": {"capabilities": {"supportsModulesRequest": true}}}),
                json!({"seq": 2, "type": "response", "request_seq": 5, "command": "launch", "success": true}),
            ]
        );
        assert_eq!(
            out.last(),
            Some(&Output::Room(Request::new(
                6,
                ClientMessage::Dap {
                    debug_id: "d1".into(),
                    message: json!({"seq": 6, "type": "request", "command": "threads", "arguments": {}})
                }
            )))
        );
    }

    #[test]
    fn launch_and_attach_name_a_file_of_the_folder() {
        let out = bridge().handle(request(1, "attach", Value::Null));
        assert_eq!(
            out,
            vec![Output::Room(Request::new(
                1,
                ClientMessage::DebugStart {
                    path: String::new(),
                    language: None
                }
            ))]
        );
        let out = bridge().handle(request(1, "launch", json!({"program": "src/app.py"})));
        assert!(
            matches!(&out[..], [Output::Room(Request { message: ClientMessage::DebugStart { path, .. }, .. })] if path == "src/app.py")
        );
        for (args, error) in [
            (json!({}), "launch needs a `program`"),
            (
                json!({"program": "/etc/passwd"}),
                "/etc/passwd is not in the shared folder /home/ada/proj",
            ),
        ] {
            let msgs = to_editor(&bridge().handle(request(1, "launch", args)));
            assert!(msgs[0]["message"].as_str().unwrap().starts_with(error), "{msgs:?}");
            assert_eq!(msgs[1]["event"], "terminated");
        }
        let mut no_room = Bridge::new(Err("/tmp/x is not in a room".into()));
        let msgs = to_editor(&no_room.handle(request(1, "launch", json!({"program": "a.py"}))));
        assert_eq!(msgs[0]["message"], "/tmp/x is not in a room");
    }

    #[test]
    fn requests_and_answers_are_mapped_between_editor_and_container() {
        let mut b = attached();
        let args =
            json!({"source": {"path": format!("{ROOT}/src/app.py")}, "breakpoints": [{"line": 3}], "x-extra": 1});
        let out = b.handle(request(7, "setBreakpoints", args));
        let [Output::Room(Request {
            message: ClientMessage::Dap { message, .. },
            ..
        })] = &out[..]
        else {
            panic!("{out:?}")
        };
        assert_eq!(message["arguments"]["source"]["path"], "/work/main.py");
        assert_eq!(message["arguments"]["x-extra"], 1);
        let out = b.handle(hub(
            json!({"seq": 90, "type": "response", "request_seq": 7, "command": "setBreakpoints",
            "success": true, "body": {"breakpoints": [{"verified": true, "line": 3,
            "source": {"path": "/work/main.py"}}]}}),
        ));
        let msgs = to_editor(&out);
        assert_eq!(msgs[0]["seq"], 3, "the proxy numbers its own messages");
        assert_eq!(msgs[0]["request_seq"], 7);
        assert_eq!(
            msgs[0]["body"]["breakpoints"][0]["source"]["path"],
            format!("{ROOT}/src/app.py")
        );
        let out = b.handle(hub(
            json!({"seq": 91, "type": "event", "event": "stopped", "body": {"threadId": 1}}),
        ));
        assert_eq!(to_editor(&out)[0]["seq"], 4);
    }

    #[test]
    fn arguments_may_be_null_or_missing_and_unknown_requests_pass_untouched() {
        let mut b = attached();
        let forwarded = |out: Vec<Output>| match &out[..] {
            [Output::Room(Request {
                message: ClientMessage::Dap { message, .. },
                ..
            })] => message.clone(),
            other => panic!("{other:?}"),
        };
        let msg = forwarded(b.handle(request(7, "threads", Value::Null)));
        assert_eq!(msg["arguments"], json!({}));
        let bare = json!({"seq": 8, "type": "request", "command": "threads"});
        assert_eq!(forwarded(b.handle(Input::Editor(Ok(bare.clone())))), bare);
        let custom =
            json!({"seq": 9, "type": "request", "command": "x-custom", "arguments": {"a": [1]}, "extra": true});
        assert_eq!(forwarded(b.handle(Input::Editor(Ok(custom.clone())))), custom);
    }

    #[test]
    fn breakpoints_outside_the_folder_are_refused_here() {
        let mut b = attached();
        let out = b.handle(request(
            7,
            "setBreakpoints",
            json!({"source": {"path": "/tmp/other.py"},
            "breakpoints": [{"line": 3}, {"line": 9}]}),
        ));
        let msgs = to_editor(&out);
        assert_eq!(msgs.len(), 1);
        let bps = msgs[0]["body"]["breakpoints"].as_array().unwrap();
        assert_eq!(bps.len(), 2);
        assert_eq!((&bps[1]["verified"], &bps[1]["line"]), (&json!(false), &json!(9)));
        assert!(bps[0]["message"].as_str().unwrap().contains("not in the shared folder"));
    }

    #[test]
    fn malformed_messages_are_answered_never_fatal() {
        let mut b = attached();
        let cases = [
            (json!({"type": "request", "command": "threads"}), None),
            (json!({"seq": 8, "type": "request"}), Some("needs a `command`")),
            (
                json!({"seq": 9, "type": "event", "event": "x"}),
                Some("expected a request, not event"),
            ),
            (
                json!({"seq": 10, "type": "request", "command": "next", "arguments": "x"}),
                Some("must be an object"),
            ),
        ];
        for (msg, error) in cases {
            let msgs = to_editor(&b.handle(Input::Editor(Ok(msg.clone()))));
            match error {
                Some(e) => {
                    assert_eq!(msgs[0]["request_seq"], msg["seq"]);
                    assert!(msgs[0]["message"].as_str().unwrap().contains(e), "{msgs:?}");
                }
                None => assert_eq!(msgs[0]["body"]["category"], "important"),
            }
        }
        let msgs = to_editor(&b.handle(Input::Editor(Err(DecodeError::NotObject))));
        assert!(msgs[0]["body"]["output"]
            .as_str()
            .unwrap()
            .contains("not a JSON object"));
    }

    #[test]
    fn oversized_requests_are_refused() {
        let mut b = attached();
        let big = "x".repeat(MAX_MESH_MESSAGE_BYTES);
        let msgs = to_editor(&b.handle(request(7, "evaluate", json!({"expression": big}))));
        assert!(
            msgs[0]["message"].as_str().unwrap().contains("at most 65536 bytes"),
            "{msgs:?}"
        );
    }

    #[test]
    fn a_queued_session_shows_its_place_and_keeps_the_launch_waiting() {
        let mut b = bridge();
        b.handle(request(2, "launch", json!({"program": "a.py"})));
        let queued = |position| {
            Input::Room(ServerMessage::RunQueued {
                run_id: "d1".into(),
                path: "a.py".into(),
                language: "python".into(),
                by: 1,
                position,
                limit: "max_debug_sessions".into(),
                debug: true,
                responding_to: Some(2),
            })
        };
        let msgs = to_editor(&b.handle(queued(2)));
        assert_eq!(msgs.len(), 1, "no answer to the launch yet: {msgs:?}");
        assert_eq!(msgs[0]["event"], "output");
        let text = msgs[0]["body"]["output"].as_str().unwrap();
        assert!(text.starts_with("queued: 2nd in line"), "{text}");
        assert!(text.contains("max_debug_sessions"), "{text}");
        let msgs = to_editor(&b.handle(queued(1)));
        assert!(msgs[0]["body"]["output"].as_str().unwrap().starts_with("queued: 1st"));
    }

    #[test]
    fn a_refused_start_fails_the_launch() {
        let mut b = bridge();
        b.handle(request(2, "launch", json!({"program": "a.py"})));
        // A refusal of something else is not the launch's answer.
        let out = b.handle(Input::Room(ServerMessage::Error {
            code: ErrorCode::BadRequest,
            message: "chat too long".into(),
            responding_to: None,
        }));
        assert_eq!(to_editor(&out)[0]["event"], "output");
        let out = b.handle(Input::Room(ServerMessage::Error {
            code: ErrorCode::Forbidden,
            message: "readers may not start a debug session".into(),
            responding_to: Some(2),
        }));
        let msgs = to_editor(&out);
        assert_eq!(
            (&msgs[0]["success"], &msgs[0]["message"]),
            (&json!(false), &json!("readers may not start a debug session"))
        );
        assert_eq!(msgs[1]["event"], "terminated");
        // The editor then disconnects; the proxy answers and ends.
        let out = b.handle(request(3, "disconnect", json!({})));
        assert_eq!(out.last(), Some(&Output::Exit));
    }

    #[test]
    fn the_sessions_end_is_told_then_disconnect_ends_the_proxy() {
        let mut b = attached();
        b.handle(request(7, "continue", json!({"threadId": 1})));
        let out = b.handle(Input::Room(ServerMessage::DebugEnded {
            debug_id: "d1".into(),
            exit_code: Some(3),
            error: None,
        }));
        let msgs = to_editor(&out);
        assert_eq!(
            (&msgs[0]["request_seq"], &msgs[0]["success"]),
            (&json!(7), &json!(false))
        );
        assert_eq!(msgs[1]["body"], json!({"exitCode": 3}));
        assert_eq!(msgs[2]["event"], "terminated");
        let out = b.handle(request(8, "disconnect", json!({})));
        assert_eq!(to_editor(&out)[0]["success"], true);
        assert_eq!(out.last(), Some(&Output::Exit));
    }

    #[test]
    fn disconnect_goes_to_the_hub_and_its_answer_ends_the_proxy() {
        let mut b = attached();
        let out = b.handle(request(7, "disconnect", json!({"terminateDebuggee": true})));
        assert!(matches!(
            &out[..],
            [Output::Room(Request {
                id: Some(7),
                message: ClientMessage::Dap { .. }
            })]
        ));
        assert!(b.awaits_disconnect());
        let out = b.handle(hub(json!({"seq": 1, "type": "response", "request_seq": 7,
            "command": "disconnect", "success": true})));
        assert_eq!(out.last(), Some(&Output::Exit));

        let mut b = attached();
        b.handle(request(7, "disconnect", json!({})));
        let out = b.handle(Input::DisconnectTimeout);
        assert_eq!(to_editor(&out)[0]["request_seq"], 7);
        assert_eq!(out.last(), Some(&Output::Exit));
    }

    #[test]
    fn a_lost_room_ends_the_session_for_this_editor() {
        let mut b = attached();
        let msgs = to_editor(&b.handle(Input::RoomLost {
            reason: "connection closed".into(),
            fatal: false,
        }));
        assert!(msgs[0]["body"]["output"]
            .as_str()
            .unwrap()
            .contains("connection closed"));
        assert_eq!(msgs[1]["event"], "terminated");
        let msgs = to_editor(&b.handle(request(9, "threads", Value::Null)));
        assert_eq!(msgs[0]["message"], "the debug session has ended");
    }

    #[test]
    fn only_the_starter_or_the_host_is_offered_terminate() {
        let welcome = |conn_id, role| {
            Input::Room(ServerMessage::Welcome {
                version: 1,
                conn_id,
                role,
                participants: vec![],
                seat: mesh_protocol::messages::SeatToken {
                    id: "s".into(),
                    token: "t".into(),
                },
                name: "ada".into(),
                approval: false,
            })
        };
        let terminate_offered = |me: u64, role: Role| {
            let mut b = bridge();
            b.handle(welcome(me, role));
            b.handle(request(1, "initialize", json!({})));
            b.handle(request(2, "launch", json!({"program": format!("{ROOT}/src/app.py")})));
            let out = b.handle(joined(capabilities::initial()));
            !to_editor(&out)
                .iter()
                .any(|m| m["event"] == "capabilities" && m["body"]["capabilities"]["supportsTerminateRequest"] == false)
        };
        assert!(terminate_offered(1, Role::Writer), "the starter (by = 1)");
        assert!(terminate_offered(2, Role::Host), "the host");
        assert!(!terminate_offered(2, Role::Writer), "another writer detaches instead");
    }
}
