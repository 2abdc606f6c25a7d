//! The seed corpus, generated from real code: `mesh-fuzz corpus` writes it to
//! `corpus/TARGET/`. Seeds are what real sessions send: a yrs client (the Yjs implementation
//! mesh-proxy uses) typing, deleting, pasting and formatting; awareness states shaped as
//! mesh-proxy publishes them; every mesh message; a debug session's DAP traffic; an editor's
//! LSP traffic; REST bodies and answers; a runner job and its compiler's stderr. Client ids
//! are fixed, so the seeds are stable enough to commit (key order in yrs maps may vary).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use mesh_protocol::codec::{encode_mesh, encode_yjs};
use mesh_protocol::ghost::{
    GhostCommand, GhostEdit, GhostMode, GhostRequest, GhostRequestStatus, GhostSelection, GhostState, GhostSuggestion,
};
use mesh_protocol::messages::{ChatEntry, Participant, Role, RunStream};
use mesh_protocol::rest::*;
use mesh_protocol::{doc as shape, ClientMessage, ErrorCode, RoomId, ServerMessage, PROTOCOL_VERSION};
use serde_json::json;
use yrs::block::ClientID;
use yrs::sync::{Awareness, Message, SyncMessage};
use yrs::types::Attrs;
use yrs::updates::decoder::Decode;
use yrs::{
    Any, Array, ArrayPrelim, ArrayRef, Doc, GetString, Map, MapPrelim, MapRef, Options, ReadTxn, StateVector, Text,
    TextPrelim, TextRef, Transact, TransactionMut, Update, XmlElementPrelim, XmlFragment, XmlFragmentRef,
    XmlTextPrelim,
};

use crate::framing::join;
use crate::targets::{rest, runner_control};

/// Who sends a room record (its first byte): see the `room` target.
const WRITER: u8 = 0;
const READER: u8 = 1;
const HOST: u8 = 2;

/// A seed: its file name and bytes.
type Seed = (String, Vec<u8>);

/// Writes every target's seeds under `dir/corpus/`; returns (target, seeds written).
pub fn generate(dir: &Path) -> anyhow::Result<Vec<(&'static str, usize)>> {
    let sets: Vec<(&'static str, Vec<Seed>)> = vec![
        ("room", room()),
        ("mesh_json", mesh_json()),
        ("dap", dap()),
        ("debug_hub", debug_hub()),
        ("lsp", lsp()),
        ("rest", rest()),
        ("runner_control", runner()),
        ("provider_stream", provider_stream()),
        ("mcp_edit", mcp_edit()),
        ("websocket", websocket()),
        ("bus", bus()),
    ];
    let mut out = Vec::new();
    for (target, seeds) in sets {
        let d = dir.join("corpus").join(target);
        std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
        for (name, bytes) in &seeds {
            std::fs::write(d.join(name), bytes).with_context(|| format!("writing seed {name}"))?;
        }
        out.push((target, seeds.len()));
    }
    Ok(out)
}

// ----- room ---------------------------------------------------------------------------

/// A Yjs client as mesh-proxy runs one: a UTF-16 document with a fixed client id, whose every
/// transaction becomes one `Update` frame.
struct Client {
    doc: Doc,
    roots: Roots,
    sender: u8,
    awareness: Awareness,
}

/// The root types a seed edits, taken before any transaction (yrs cannot create a root type
/// while a transaction is open).
struct Roots {
    files: MapRef,
    meta: MapRef,
    comments: MapRef,
    list: ArrayRef,
    xml: XmlFragmentRef,
    subdocs: MapRef,
}

impl Client {
    fn new(id: u64, sender: u8) -> Client {
        let doc = Doc::with_options(Options {
            offset_kind: yrs::OffsetKind::Utf16,
            ..Options::with_client_id(ClientID::new(id))
        });
        let roots = Roots {
            files: doc.get_or_insert_map(shape::FILES),
            meta: doc.get_or_insert_map(shape::META),
            comments: doc.get_or_insert_map(shape::COMMENTS),
            list: doc.get_or_insert_array("list"),
            xml: doc.get_or_insert_xml_fragment("prosemirror"),
            subdocs: doc.get_or_insert_map("subdocs"),
        };
        Client {
            awareness: Awareness::new(doc.clone()),
            doc,
            roots,
            sender,
        }
    }

    /// Runs an edit in one transaction; returns its update as a record of this sender.
    fn edit(&self, f: impl FnOnce(&Roots, &mut TransactionMut)) -> Vec<u8> {
        let mut txn = self.doc.transact_mut();
        f(&self.roots, &mut txn);
        let update = txn.encode_update_v1();
        self.record(&Message::Sync(SyncMessage::Update(update)))
    }

    fn record(&self, msg: &Message) -> Vec<u8> {
        let mut r = vec![self.sender];
        r.extend(encode_yjs(msg));
        r
    }

    fn mesh(&self, msg: &ClientMessage) -> Vec<u8> {
        let mut r = vec![self.sender];
        r.extend(encode_mesh(msg));
        r
    }

    /// The opening of a y-websocket client: sync step 1 with its state vector, then its state.
    fn handshake(&self) -> Vec<Vec<u8>> {
        let txn = self.doc.transact();
        vec![
            self.record(&Message::Sync(SyncMessage::SyncStep1(txn.state_vector()))),
            self.record(&Message::Sync(SyncMessage::SyncStep2(
                txn.encode_state_as_update_v1(&StateVector::default()),
            ))),
        ]
    }

    fn hello(&self, name: &str) -> Vec<u8> {
        self.mesh(&ClientMessage::Hello {
            version: PROTOCOL_VERSION,
            name: name.into(),
            color: Some("#4363d8".into()),
            client: Some("mesh-proxy".into()),
            doc_client_id: Some(self.doc.client_id().get()),
            companion: false,
        })
    }

    /// The awareness frame mesh-proxy publishes for a cursor (`publish_awareness`).
    fn cursor(&mut self, name: &str, path: &str, anchor: u32, head: u32) -> Vec<u8> {
        let state = json!({
            "user": { "name": name, "color": "#3cb44b" },
            "cursor": { "path": path, "anchor": anchor, "head": head, "selections": [[anchor, head]] },
            "view": { "path": path, "start_line": 0, "end_line": 40 },
        });
        self.awareness.set_local_state(state).expect("a JSON state");
        let update = self
            .awareness
            .update_with_clients([self.awareness.client_id()])
            .expect("our own state encodes");
        self.record(&Message::Awareness(update))
    }

    /// The awareness frame of a client that leaves (its state set to null).
    fn goodbye(&mut self) -> Vec<u8> {
        self.awareness.clean_local_state();
        let update = self
            .awareness
            .update_with_clients([self.awareness.client_id()])
            .expect("our own state encodes");
        self.record(&Message::Awareness(update))
    }

    /// Applies another client's update record, as a client applies what the server relays.
    fn receive(&self, record: &[u8]) {
        if let Ok(frames) = mesh_protocol::decode_frame::<ClientMessage>(&record[1..]) {
            for f in frames {
                if let mesh_protocol::Frame::Yjs(Message::Sync(SyncMessage::Update(u))) = f {
                    let update = Update::decode_v1(&u).expect("our own update decodes");
                    self.doc
                        .transact_mut()
                        .apply_update(update)
                        .expect("our own update applies");
                }
            }
        }
    }
}

fn file(roots: &Roots, txn: &mut TransactionMut, path: &str) -> TextRef {
    match roots.files.get(txn, path) {
        Some(yrs::Out::YText(t)) => t,
        _ => roots.files.insert(txn, path, TextPrelim::new("")),
    }
}

/// Types `text` into `path` at `at`, one keystroke per update, as an editor does.
fn type_text(c: &Client, path: &str, mut at: u32, text: &str) -> Vec<Vec<u8>> {
    text.chars()
        .map(|ch| {
            let r = c.edit(|doc, txn| {
                let t = file(doc, txn, path);
                t.insert(txn, at, &ch.to_string());
            });
            at += ch.len_utf16() as u32;
            r
        })
        .collect()
}

fn room() -> Vec<Seed> {
    let mut seeds = Vec::new();

    // One person opens a file and types a small program, with a cursor.
    let mut ada = Client::new(101, WRITER);
    let mut s = ada.handshake();
    s.push(ada.hello("ada"));
    s.push(ada.edit(|doc, txn| {
        file(doc, txn, "main.py");
    }));
    s.extend(type_text(&ada, "main.py", 0, "def hi():\n    print('hello')\n"));
    s.push(ada.cursor("ada", "main.py", 30, 30));
    s.extend(type_text(&ada, "main.py", 30, "hi()\n"));
    s.push(ada.edit(|doc, txn| {
        let t = file(doc, txn, "main.py");
        t.remove_range(txn, 4, 2);
    }));
    s.push(ada.goodbye());
    seeds.push(("typing-one-writer".to_string(), join(&s)));

    // Two people type at the same spot, each seeing the other's keystrokes.
    let ada = Client::new(201, WRITER);
    let bob = Client::new(202, HOST);
    let mut s = vec![ada.hello("ada"), bob.hello("bob")];
    let first = ada.edit(|doc, txn| {
        file(doc, txn, "notes.md").insert(txn, 0, "# notes\n");
    });
    bob.receive(&first);
    s.push(first);
    for (a, b) in "aaaa".chars().zip("bbbb".chars()) {
        let ra = ada.edit(|doc, txn| file(doc, txn, "notes.md").insert(txn, 8, &a.to_string()));
        let rb = bob.edit(|doc, txn| file(doc, txn, "notes.md").insert(txn, 8, &b.to_string()));
        ada.receive(&rb);
        bob.receive(&ra);
        s.push(ra);
        s.push(rb);
    }
    seeds.push(("typing-two-writers-same-spot".to_string(), join(&s)));

    // Multibyte text, deletes across it, a paste, formatting and an embed.
    let ada = Client::new(301, WRITER);
    let mut s = vec![ada.edit(|doc, txn| {
        file(doc, txn, "é/ü.txt").insert(txn, 0, "héllo 👋 wörld — ✓\n");
    })];
    s.push(ada.edit(|doc, txn| file(doc, txn, "é/ü.txt").remove_range(txn, 5, 4)));
    s.push(ada.edit(|doc, txn| {
        file(doc, txn, "é/ü.txt").insert(txn, 0, &"pasted line of text\n".repeat(20));
    }));
    s.push(ada.edit(|doc, txn| {
        let attrs: Attrs = HashMap::from([(Arc::from("bold"), Any::Bool(true))]);
        file(doc, txn, "é/ü.txt").format(txn, 0, 6, attrs);
    }));
    s.push(ada.edit(|doc, txn| {
        let attrs: Attrs = HashMap::from([(Arc::from("comment"), Any::from("look here"))]);
        file(doc, txn, "é/ü.txt").insert_with_attributes(txn, 3, "x", attrs);
    }));
    s.push(ada.edit(|doc, txn| {
        let nested = Any::from(HashMap::from([(
            "a".to_string(),
            Any::from(vec![
                Any::from(1.5),
                Any::Null,
                Any::from(HashMap::from([("b".to_string(), Any::from(vec![Any::from("c")]))])),
            ]),
        )]));
        file(doc, txn, "é/ü.txt").insert_embed(txn, 1, nested);
    }));
    seeds.push(("multibyte-delete-paste-format-embed".to_string(), join(&s)));

    // A project: several files, a rename (delete + insert), other shared types a bot may use.
    let bot = Client::new(401, HOST);
    let mut s = bot.handshake();
    for (path, text) in [
        ("src/lib.rs", "pub fn f() {}\n"),
        ("README.md", "# x\n"),
        ("a/b/c/d.py", "x = 1\n"),
    ] {
        s.push(bot.edit(|doc, txn| {
            file(doc, txn, path).insert(txn, 0, text);
        }));
    }
    s.push(bot.edit(|doc, txn| {
        let files = &doc.files;
        let text = match files.get(txn, "README.md") {
            Some(yrs::Out::YText(t)) => t.get_string(txn),
            _ => String::new(),
        };
        files.remove(txn, "README.md");
        files.insert(txn, "README.txt", TextPrelim::new(text));
    }));
    s.push(bot.edit(|doc, txn| {
        let meta = &doc.meta;
        meta.insert(txn, "name", "fuzz room");
        meta.insert(txn, "language", "python");
        let comments = &doc.comments;
        comments.insert(
            txn,
            "c1",
            MapPrelim::from([
                ("path", Any::from("src/lib.rs")),
                ("line", Any::from(3.0)),
                ("text", Any::from("why?")),
            ]),
        );
        let arr = &doc.list;
        arr.push_back(
            txn,
            ArrayPrelim::from([Any::from(1.0), Any::from("two"), Any::Bool(false)]),
        );
        arr.push_back(txn, Any::Buffer(Arc::from(&b"\x00\x01\x02"[..])));
        arr.insert(txn, 0, MapPrelim::from([("k", Any::from(u64::MAX as f64))]));
    }));
    s.push(bot.edit(|doc, txn| {
        let p = doc.xml.insert(txn, 0, XmlElementPrelim::empty("paragraph"));
        p.insert(txn, 0, XmlTextPrelim::new("rich text"));
        doc.subdocs.insert(txn, "child", Doc::with_client_id(402));
    }));
    s.push(bot.edit(|doc, txn| {
        let arr = &doc.list;
        arr.remove_range(txn, 0, 2);
    }));
    seeds.push(("project-files-rename-shared-types".to_string(), join(&s)));

    // Updates that arrive out of order: the later ones wait for a missing dependency.
    let ada = Client::new(501, WRITER);
    let keys = type_text(&ada, "late.txt", 0, "out of order");
    let mut s: Vec<Vec<u8>> = keys[6..].to_vec();
    s.extend_from_slice(&keys[..6]);
    seeds.push(("updates-out-of-order".to_string(), join(&s)));

    // A reader: syncs, moves a cursor, chats, tries to edit and to run.
    let mut rita = Client::new(601, READER);
    let mut s = rita.handshake();
    s.push(rita.hello("rita"));
    s.push(rita.cursor("rita", "main.py", 0, 4));
    s.push(rita.mesh(&ClientMessage::Chat {
        text: "may I edit?".into(),
    }));
    s.push(rita.edit(|doc, txn| {
        file(doc, txn, "main.py").insert(txn, 0, "nope");
    }));
    s.push(rita.mesh(&ClientMessage::Run {
        path: "main.py".into(),
        language: None,
    }));
    s.push(rita.record(&Message::AwarenessQuery));
    s.push(rita.goodbye());
    seeds.push(("reader-cursor-chat-edit-run".to_string(), join(&s)));

    // Every mesh message a writer sends, around a file to run.
    let ada = Client::new(701, WRITER);
    let mut s = vec![ada.hello("ada")];
    s.push(ada.edit(|doc, txn| {
        file(doc, txn, "main.py").insert(txn, 0, "print(input())\n");
    }));
    for m in client_messages() {
        s.push(ada.mesh(&m));
    }
    s.push(ada.record(&Message::Auth(None)));
    s.push(
        ada.record(&Message::Sync(SyncMessage::SyncStep1(StateVector::from_iter([
            (ClientID::new(701), 3),
            (ClientID::new(9), 1),
        ])))),
    );
    seeds.push(("mesh-messages-writer".to_string(), join(&s)));

    // A stock Yjs client (no hello) whose awareness names it, and a frame packing two messages.
    let mut yjs = Client::new(801, WRITER);
    let mut s = yjs.handshake();
    let cursor = yjs.cursor("stock yjs", "main.py", 0, 0);
    let typed = type_text(&yjs, "main.py", 0, "hey");
    let mut packed = vec![WRITER];
    packed.extend_from_slice(&cursor[1..]);
    packed.extend_from_slice(&typed[0][1..]);
    s.push(packed);
    s.extend_from_slice(&typed[1..]);
    seeds.push(("stock-yjs-client-packed-frame".to_string(), join(&s)));

    seeds
}

fn client_messages() -> Vec<ClientMessage> {
    vec![
        ClientMessage::Hello {
            version: PROTOCOL_VERSION,
            name: "ada lovelace".into(),
            color: Some("#ff8800".into()),
            client: Some("neovim".into()),
            doc_client_id: Some(7),
            companion: true,
        },
        ClientMessage::Chat {
            text: "héllo 👋".into(),
        },
        ClientMessage::ListParticipants,
        ClientMessage::Ping { nonce: 42 },
        ClientMessage::Run {
            path: "main.py".into(),
            language: Some("python".into()),
        },
        ClientMessage::Input {
            run_id: "r1".into(),
            data: "3\n".into(),
            eof: true,
        },
        ClientMessage::Stop { run_id: "r1".into() },
        ClientMessage::DebugStart {
            path: "main.py".into(),
            language: None,
        },
        ClientMessage::Dap {
            debug_id: "d1".into(),
            message: json!({"seq": 3, "type": "request", "command": "setBreakpoints",
                "arguments": {"source": {"path": "/work/main.py"}, "breakpoints": [{"line": 2}]}}),
        },
        ClientMessage::Ghost {
            command: GhostCommand::Ask {
                text: "why does main.py fail?".into(),
                mode: Some(GhostMode::Explain),
                selection: Some(GhostSelection {
                    path: "main.py".into(),
                    start_line: 1,
                    end_line: 2,
                    text: "print(total)".into(),
                }),
            },
        },
        ClientMessage::Ghost {
            command: GhostCommand::Accept { suggestion: 1 },
        },
        ClientMessage::Ghost {
            command: GhostCommand::Cancel { request: None },
        },
        ClientMessage::Ghost {
            command: GhostCommand::Undo,
        },
        ClientMessage::GhostState { state: ghost_state() },
    ]
}

// ----- mesh_json ----------------------------------------------------------------------

fn mesh_json() -> Vec<Seed> {
    let ada = Participant {
        conn_id: 1,
        seat: "5eat0001".into(),
        verified: false,
        link: None,
        name: "ada".into(),
        color: "#e6194b".into(),
        role: Role::Host,
        client: "mesh-proxy".into(),
        doc_client_id: Some(101),
        companion: false,
    };
    let server = vec![
        ServerMessage::Welcome {
            version: PROTOCOL_VERSION,
            conn_id: 1,
            role: Role::Writer,
            participants: vec![ada.clone()],
            seat: mesh_protocol::messages::SeatToken {
                id: "5eat0001".into(),
                token: "seat-token".into(),
            },
            name: "ada".into(),
            approval: false,
        },
        ServerMessage::ParticipantJoined { participant: ada },
        ServerMessage::ParticipantLeft { conn_id: 2 },
        ServerMessage::Chat {
            entry: ChatEntry {
                id: "18c-1-1".into(),
                author: "ada".into(),
                conn_id: 1,
                text: "hi".into(),
                ts: 1_700_000_000_000,
            },
        },
        ServerMessage::Pong { nonce: 9 },
        ServerMessage::RunStarted {
            run_id: "r1".into(),
            path: "main.py".into(),
            language: "python".into(),
            by: 1,
            responding_to: Some(3),
        },
        ServerMessage::RunOutput {
            run_id: "r1".into(),
            stream: RunStream::Stderr,
            data: "\u{1b}[31mTraceback\u{1b}[0m\n".into(),
        },
        ServerMessage::RunExited {
            run_id: "r1".into(),
            stage: "run".into(),
            code: Some(137),
            duration_ms: 2000,
            limit: Some("memory".into()),
            error: None,
        },
        ServerMessage::DebugJoined {
            debug_id: "d1".into(),
            path: "main.py".into(),
            language: "python".into(),
            by: 1,
            capabilities: json!({"supportsConfigurationDoneRequest": true}),
            work_dir: "/work".into(),
            aliases: BTreeMap::from([("/work/main.py".to_string(), "src/app.py".to_string())]),
            responding_to: None,
        },
        ServerMessage::DebugBreakpoints {
            debug_id: "d1".into(),
            path: "main.py".into(),
            lines: vec![2, 5],
        },
        ServerMessage::DebugEnded {
            debug_id: "d1".into(),
            exit_code: Some(0),
            error: None,
        },
        ServerMessage::Error {
            code: ErrorCode::Forbidden,
            message: "readers may not edit".into(),
            responding_to: Some(7),
        },
        ServerMessage::Ghost {
            from: 1,
            name: "ada".into(),
            role: Role::Writer,
            command: GhostCommand::Reject { suggestion: 2 },
            responding_to: Some(4),
        },
        ServerMessage::GhostState {
            from: 3,
            state: ghost_state(),
        },
    ];
    let mut seeds: Vec<Seed> = client_messages()
        .iter()
        .map(|m| {
            (
                format!("client-{}", kind_of(m)),
                serde_json::to_vec(m).expect("serialises"),
            )
        })
        .collect();
    seeds.extend(server.iter().map(|m| {
        (
            format!("server-{}", kind_of(m)),
            serde_json::to_vec(m).expect("serialises"),
        )
    }));
    // Whole frames too: a mesh message as the socket carries it.
    seeds.push((
        "frame-chat".into(),
        encode_mesh(&ClientMessage::Chat { text: "x".into() }),
    ));
    seeds
}

/// A ghost's state as it publishes it: a request going and one suggestion.
fn ghost_state() -> GhostState {
    GhostState {
        requests: vec![GhostRequest {
            id: 1,
            asker: "ada".into(),
            mode: GhostMode::Suggest,
            text: "fix add".into(),
            status: GhostRequestStatus::Working,
            received_chars: 40,
            message: None,
        }],
        suggestions: vec![GhostSuggestion {
            id: 1,
            asker: "ada".into(),
            files: vec!["calc.py".into()],
            edits: vec![GhostEdit {
                path: "calc.py".into(),
                search: "a - b".into(),
                replace: "a + b 😀".into(),
            }],
            omitted: false,
        }],
    }
}

fn kind_of<M: serde::Serialize>(m: &M) -> String {
    serde_json::to_value(m).expect("serialises")["type"]
        .as_str()
        .unwrap_or("message")
        .to_string()
}

// ----- mcp_edit -----------------------------------------------------------------------

fn mcp_edit() -> Vec<Seed> {
    let calc = "def total(items):\n    # note 😀\n    return sum(items)\n\nprint(total([1, 2, 3]))\n";
    [
        ("unique-anchor", calc, "return sum(items)", "return sum(items) * 2"),
        ("ambiguous-anchor", calc, "items", "xs"),
        ("missing-anchor", calc, "return max(items)", "x"),
        ("delete", calc, "    # note 😀\n", ""),
        ("regex-like", calc, "total\\(", "sum("),
        ("crlf", "a\r\nb\r\n", "a\r\n", "c\r\n"),
    ]
    .iter()
    .map(|(name, text, old, new)| {
        (
            name.to_string(),
            [text.as_bytes(), b"\0", old.as_bytes(), b"\0", new.as_bytes()].concat(),
        )
    })
    .collect()
}

// ----- dap ----------------------------------------------------------------------------

/// A debug session's traffic both ways (debugpy's shapes), framed.
fn dap_session() -> Vec<serde_json::Value> {
    vec![
        json!({"seq": 1, "type": "request", "command": "initialize", "arguments": {"clientID": "vscode", "adapterID": "mesh", "linesStartAt1": true, "columnsStartAt1": true, "pathFormat": "path", "supportsRunInTerminalRequest": false}}),
        json!({"seq": 1, "type": "response", "request_seq": 1, "success": true, "command": "initialize", "body": {"supportsConfigurationDoneRequest": true, "supportsConditionalBreakpoints": true, "exceptionBreakpointFilters": [{"filter": "raised", "label": "Raised Exceptions", "default": false}]}}),
        json!({"seq": 2, "type": "request", "command": "launch", "arguments": {"program": "/work/main.py", "cwd": "/work", "justMyCode": true}}),
        json!({"seq": 2, "type": "event", "event": "initialized"}),
        json!({"seq": 3, "type": "request", "command": "setBreakpoints", "arguments": {"source": {"path": "/work/main.py"}, "breakpoints": [{"line": 2}, {"line": 5, "condition": "i > 3"}]}}),
        json!({"seq": 3, "type": "response", "request_seq": 3, "success": true, "command": "setBreakpoints", "body": {"breakpoints": [{"verified": true, "line": 2}, {"verified": true, "line": 5}]}}),
        json!({"seq": 4, "type": "request", "command": "configurationDone", "arguments": {}}),
        json!({"seq": 4, "type": "event", "event": "stopped", "body": {"reason": "breakpoint", "threadId": 1, "allThreadsStopped": true}}),
        json!({"seq": 5, "type": "request", "command": "stackTrace", "arguments": {"threadId": 1, "startFrame": 0, "levels": 20}}),
        json!({"seq": 5, "type": "response", "request_seq": 5, "success": true, "command": "stackTrace", "body": {"stackFrames": [{"id": 2, "name": "<module>", "line": 2, "column": 1, "source": {"path": "/work/main.py", "name": "main.py"}}], "totalFrames": 1}}),
        json!({"seq": 6, "type": "request", "command": "variables", "arguments": {"variablesReference": 3}}),
        json!({"seq": 6, "type": "response", "request_seq": 6, "success": true, "command": "variables", "body": {"variables": [{"name": "s", "value": "'héllo 👋'", "type": "str", "variablesReference": 0}]}}),
        json!({"seq": 7, "type": "event", "event": "output", "body": {"category": "stdout", "output": "hello\n"}}),
        json!({"seq": 8, "type": "request", "command": "continue", "arguments": null}),
        json!({"seq": 9, "type": "event", "event": "terminated"}),
    ]
}

fn dap() -> Vec<Seed> {
    let stream: Vec<u8> = dap_session().iter().flat_map(mesh_protocol::dap::encode).collect();
    let mut seeds: Vec<Seed> = [0u8, 1, 2, 3, 4, 0x80]
        .iter()
        .map(|&how| (format!("session-chunking-{how}"), [&[how][..], &stream].concat()))
        .collect();
    // Headers as some adapters write them: other headers first, odd case.
    let body = br#"{"seq":1,"type":"event","event":"initialized"}"#;
    let mut odd = format!(
        "Content-Type: application/vscode-jsonrpc; charset=utf-8\r\ncontent-LENGTH:{}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    odd.extend_from_slice(body);
    seeds.push(("other-headers".into(), [&[3u8][..], &odd].concat()));
    seeds
}

// ----- websocket -----------------------------------------------------------------------

/// What a browser sends on the room socket: masked frames of a sync, keystrokes, a message
/// in fragments with a ping between them, a pong and a close; and a frame over the limit.
fn websocket() -> Vec<Seed> {
    fn frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        mesh_testkit::wsframe::client_frame(fin, opcode, payload, [0x37, 0xFA, 0x21, 0x3D])
    }
    // The room frames of a person joining and typing (each record is a role byte, then the
    // frame the socket carries).
    let ada = Client::new(107, WRITER);
    let mut records = ada.handshake();
    records.extend(type_text(&ada, "main.py", 0, "print('hi')\n"));
    let mut session = Vec::new();
    for r in &records {
        session.extend(frame(true, 2, &r[1..]));
    }
    let big = vec![b'a'; 3000];
    let mut fragmented = frame(false, 2, &big[..1000]);
    fragmented.extend(frame(true, 9, b"ping"));
    fragmented.extend(frame(false, 0, &big[1000..2000]));
    fragmented.extend(frame(true, 0, &big[2000..]));
    fragmented.extend(frame(true, 0xA, b""));
    fragmented.extend(frame(true, 8, &[0x03, 0xE8, b'b', b'y', b'e']));
    let mut seeds: Vec<Seed> = [0u8, 1, 2, 3, 4]
        .iter()
        .map(|&how| (format!("session-chunking-{how}"), [&[how][..], &session].concat()))
        .collect();
    seeds.push(("fragments-and-control".into(), [&[2u8][..], &fragmented].concat()));
    // Over the tiny limit the other half of the inputs is decoded with.
    seeds.push((
        "over-the-limit".into(),
        [&[0x80u8][..], &frame(true, 2, &big[..100])].concat(),
    ));
    seeds
}

// ----- debug_hub ----------------------------------------------------------------------

/// Participants and the adapter of one shared session, as `debug_hub` records: breakpoints
/// with conditions, hit counts and logpoints from two writers, a reader, a stop, a restart;
/// both writers' exception filters and function breakpoints.
fn debug_hub() -> Vec<Seed> {
    const ADAPTER: u8 = 0xFF;
    let (ada, bob, rita) = (0u8, 1u8, 4 + 2u8);
    let rec = |who: u8, v: serde_json::Value| [vec![who], v.to_string().into_bytes()].concat();
    let src = json!({"path": "/work/main.py"});
    let session = vec![
        vec![0xFE, bob],
        vec![0xFE, 2],
        rec(
            ada,
            json!({"seq": 1, "type": "request", "command": "setBreakpoints", "arguments": {"source": src, "breakpoints": [{"line": 2, "condition": "i > 3"}, {"line": 5, "logMessage": "i={i}"}]}}),
        ),
        rec(
            ADAPTER,
            json!({"seq": 3, "type": "response", "request_seq": 3, "success": true, "command": "setBreakpoints", "body": {"breakpoints": [{"verified": true, "line": 2}, {"verified": true, "line": 5}]}}),
        ),
        rec(
            bob,
            json!({"seq": 1, "type": "request", "command": "setBreakpoints", "arguments": {"source": src, "breakpoints": [{"line": 2, "condition": "j == 1"}, {"line": 5}, {"line": 7, "hitCondition": "3"}]}}),
        ),
        rec(
            rita,
            json!({"seq": 1, "type": "request", "command": "setBreakpoints", "arguments": {"source": src, "breakpoints": [{"line": 9}]}}),
        ),
        rec(
            bob,
            json!({"seq": 2, "type": "request", "command": "setExceptionBreakpoints", "arguments": {"filters": ["raised"]}}),
        ),
        rec(
            ada,
            json!({"seq": 4, "type": "request", "command": "setExceptionBreakpoints", "arguments": {"filters": [], "filterOptions": [{"filterId": "raised", "condition": "ValueError"}]}}),
        ),
        rec(
            ada,
            json!({"seq": 5, "type": "request", "command": "setFunctionBreakpoints", "arguments": {"breakpoints": [{"name": "square", "condition": "n > 3"}, {"name": "main", "hitCondition": "2"}]}}),
        ),
        rec(
            bob,
            json!({"seq": 5, "type": "request", "command": "setFunctionBreakpoints", "arguments": {"breakpoints": [{"name": "square", "condition": "n == 1"}]}}),
        ),
        rec(
            ada,
            json!({"seq": 2, "type": "request", "command": "configurationDone", "arguments": null}),
        ),
        rec(
            ADAPTER,
            json!({"seq": 5, "type": "event", "event": "stopped", "body": {"reason": "breakpoint", "threadId": 1}}),
        ),
        rec(
            bob,
            json!({"seq": 3, "type": "request", "command": "evaluate", "arguments": {"expression": "i", "context": "watch", "frameId": 2}}),
        ),
        rec(
            rita,
            json!({"seq": 2, "type": "request", "command": "stackTrace", "arguments": {"threadId": 1}}),
        ),
        rec(
            ada,
            json!({"seq": 3, "type": "request", "command": "restart", "arguments": {}}),
        ),
        rec(
            ADAPTER,
            json!({"seq": 1, "type": "response", "request_seq": 9, "success": true, "command": "initialize", "body": {}}),
        ),
        rec(ADAPTER, json!({"seq": 2, "type": "event", "event": "initialized"})),
        rec(
            bob,
            json!({"seq": 4, "type": "request", "command": "pause", "arguments": {"threadId": 1}}),
        ),
        vec![0xFD, bob],
        rec(
            ADAPTER,
            json!({"seq": 9, "type": "event", "event": "exited", "body": {"exitCode": 3}}),
        ),
        rec(ADAPTER, json!({"seq": 10, "type": "event", "event": "terminated"})),
        vec![0xFC],
    ];
    let mut seeds = vec![("session".to_owned(), join(&session))];
    for (i, r) in session.iter().enumerate().filter(|(_, r)| r.len() > 2) {
        seeds.push((format!("record-{i:02}"), join(std::slice::from_ref(r))));
    }
    seeds
}

// ----- provider_stream ------------------------------------------------------------------

/// An answer as OpenAI-compatible providers stream it (a role chunk, text, `[DONE]`), in
/// every chunking, and the shapes of a provider's failures.
fn provider_stream() -> Vec<Seed> {
    let chunk = |text: &str| {
        format!(
            "data: {}\n\n",
            json!({"choices": [{"index": 0, "delta": {"content": text}}]})
        )
    };
    let answer = format!(
        ": keep-alive\r\ndata: {}\r\n\r\n{}{}data: [DONE]\n\n",
        json!({"choices": [{"index": 0, "delta": {"role": "assistant"}}]}),
        chunk("Hé, `total` "),
        chunk("is never set 🙂"),
    );
    let mut seeds: Vec<Seed> = [0u8, 1, 2, 3, 4]
        .iter()
        .map(|&how| {
            (
                format!("answer-chunking-{how}"),
                [&[how][..], answer.as_bytes()].concat(),
            )
        })
        .collect();
    seeds.push((
        "error-in-stream".into(),
        b"\x02data: {\"error\":{\"message\":\"overloaded\"}}\n\n".to_vec(),
    ));
    seeds.push(("not-json".into(), b"\x03data: {oops\n\n".to_vec()));
    seeds
}

// ----- lsp ----------------------------------------------------------------------------

fn lsp_frame(v: &serde_json::Value) -> Vec<u8> {
    let body = v.to_string();
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

fn lsp() -> Vec<Seed> {
    let uri = "file:///home/ada/project/main.py";
    let session = vec![
        json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"processId": 1234, "clientInfo": {"name": "Visual Studio Code", "version": "1.100.3"}, "rootUri": "file:///home/ada/project", "capabilities": {"general": {"positionEncodings": ["utf-16"]}, "workspace": {"applyEdit": true, "workspaceEdit": {"documentChanges": true}}, "textDocument": {"synchronization": {"didSave": true}}}, "workspaceFolders": [{"uri": "file:///home/ada/project", "name": "project"}]}}),
        json!({"jsonrpc": "2.0", "method": "initialized", "params": {}}),
        json!({"jsonrpc": "2.0", "method": "textDocument/didOpen", "params": {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": "print('hi')\n"}}}),
        json!({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"range": {"start": {"line": 0, "character": 7}, "end": {"line": 0, "character": 9}}, "text": "héllo 👋"}]}}),
        json!({"jsonrpc": "2.0", "method": "mesh/cursor", "params": {"uri": uri, "selections": [{"anchor": {"line": 0, "character": 3}, "head": {"line": 0, "character": 3}}]}}),
        json!({"jsonrpc": "2.0", "id": 1, "method": "mesh/chat", "params": {"text": "hello"}}),
        json!({"jsonrpc": "2.0", "id": 0, "result": {"applied": false}}),
        json!({"jsonrpc": "2.0", "id": 2, "method": "mesh/run", "params": {"path": "main.py"}}),
        json!({"jsonrpc": "2.0", "id": 3, "method": "shutdown"}),
        json!({"jsonrpc": "2.0", "method": "exit"}),
    ];
    let stream: Vec<u8> = session.iter().flat_map(lsp_frame).collect();
    let mut seeds: Vec<Seed> = [0u8, 1, 2, 3, 4]
        .iter()
        .map(|&how| (format!("session-chunking-{how}"), [&[how][..], &stream].concat()))
        .collect();
    // Neovim writes `\r\n` line ends and a Content-Type header some servers reject.
    let body = br#"{"jsonrpc":"2.0","method":"textDocument/didSave","params":{"textDocument":{"uri":"file:///x"}}}"#;
    let mut nvim = format!(
        "Content-Length: {}\r\nContent-Type: application/vscode-jsonrpc; charset=utf-8\r\n\r\n",
        body.len()
    )
    .into_bytes();
    nvim.extend_from_slice(body);
    seeds.push(("content-type-header".into(), [&[2u8][..], &nvim].concat()));
    seeds
}

// ----- rest ---------------------------------------------------------------------------

fn rest() -> Vec<Seed> {
    let room = RoomId::from_str(rest::FUZZ_ROOM).expect("the fuzz room id parses");
    let auth = mesh_server::auth::Auth::new(rest::FUZZ_SECRET, Duration::from_secs(3600));
    let participant = Participant {
        conn_id: 3,
        seat: "5eat0003".into(),
        verified: false,
        link: None,
        name: "bob".into(),
        color: "#3cb44b".into(),
        role: Role::Reader,
        client: "yjs".into(),
        doc_client_id: None,
        companion: false,
    };
    // Link tokens as the server signs them (decision 011), far from expiry.
    let token = |role: Role| {
        let link = mesh_server::store::LinkRecord {
            id: format!("{role:?}").to_lowercase(),
            role,
            created_at: 1_700_000_000_000,
            expires_at: 4_000_000_000_000,
            max_uses: None,
            uses: 0,
            revoked_at: None,
            created_by: "server".into(),
            for_user: None,
        };
        auth.link_token(room, &link)
    };
    let to = |v: &dyn erased::Json| v.bytes();
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        (
            "create-session",
            to(&CreateSession {
                name: Some("pairing on the parser".into()),
                approval: None,
            }),
        ),
        ("create-session-empty", b"{}".to_vec()),
        (
            "start-run",
            to(&StartRun {
                path: "main.py".into(),
                language: Some("python".into()),
                stdin: Some("1 2\n".into()),
            }),
        ),
        (
            "created-session",
            to(&CreatedSession {
                id: room,
                name: "x".into(),
                join_link: format!("http://127.0.0.1:7070/join/{room}#writer"),
                read_link: format!("http://127.0.0.1:7070/join/{room}#reader"),
                ws_url: format!("ws://127.0.0.1:7070/ws/{room}"),
                host_token: token(Role::Host),
                writer_token: token(Role::Writer),
                reader_token: token(Role::Reader),
            }),
        ),
        (
            "session-info",
            to(&SessionInfo {
                id: room,
                name: "x".into(),
                created_at: 1_700_000_000_000,
                your_role: Role::Writer,
                participants: vec![participant],
                files: vec![FileInfo {
                    path: "src/ü.rs".into(),
                    len_utf16: 12,
                }],
            }),
        ),
        (
            "sessions",
            to(&vec![SessionSummary {
                id: room,
                name: "x".into(),
                created_at: 1,
                participants: 2,
            }]),
        ),
        (
            "languages",
            to(&vec![LanguageInfo {
                id: "python".into(),
                name: "Python".into(),
                extensions: vec!["py".into()],
            }]),
        ),
        (
            "started-run",
            to(&StartedRun {
                run_id: "r1".into(),
                queued: None,
            }),
        ),
        (
            "runs",
            to(&vec![RunRecord {
                run_id: "r1".into(),
                path: "main.py".into(),
                language: "python".into(),
                by: "ada".into(),
                started_at: 1,
                stage: "run".into(),
                code: Some(0),
                duration_ms: 31,
                limit: None,
                error: None,
                stdout: "hi\n".into(),
                stderr: String::new(),
            }]),
        ),
        (
            "api-error",
            to(&mesh_protocol::rest::ApiError {
                code: ErrorCode::Unauthorized,
                message: "the token has expired; ask the host for a new link".into(),
            }),
        ),
        ("health", to(&Health { status: "ok".into() })),
        ("room-id", room.to_string().into_bytes()),
        ("token-writer", token(Role::Writer).into_bytes()),
        // Accounts (decision 012): an invitation, a device poll and what the CLI reads back.
        (
            "create-link-for-user",
            to(&CreateLink {
                role: Role::Writer,
                expires_in_secs: Some(3600),
                max_uses: Some(1),
                for_user: Some("ada@example.test".into()),
            }),
        ),
        ("device-poll", to(&DevicePoll { handle: "ab12".into() })),
        (
            "device-done",
            to(&DeviceState::Done {
                token: "t".into(),
                user: UserInfo {
                    id: "u1".into(),
                    name: "Ada Lovelace".into(),
                    email: Some("ada@example.test".into()),
                    subject: "ada".into(),
                },
                expires_at: 1,
            }),
        ),
        ("invitee-stored", b"email:ada@example.test".to_vec()),
        (
            "seat-token-of-a-user",
            auth.seat_token(room, "5eat0003", Some("u1"), 1_700_000_000_000)
                .into_bytes(),
        ),
    ];
    seeds.into_iter().map(|(n, b)| (n.to_string(), b)).collect()
}

/// Serialising seeds of different types through one helper.
mod erased {
    /// A value that serialises to JSON.
    pub trait Json {
        /// Its JSON bytes.
        fn bytes(&self) -> Vec<u8>;
    }
    impl<T: serde::Serialize> Json for T {
        fn bytes(&self) -> Vec<u8> {
            serde_json::to_vec(self).expect("REST types serialise")
        }
    }
}

// ----- runner_control -----------------------------------------------------------------

fn runner() -> Vec<Seed> {
    let job = |path: &str, contents: &str| [&[0u8][..], path.as_bytes(), b"\0", contents.as_bytes()].concat();
    let stderr = |text: &str| [&[1u8][..], text.as_bytes()].concat();
    let marker = |status: i32| format!("\n{} compiled {status}\n", runner_control::NONCE);
    let ok = marker(0);
    let (ok_a, ok_b) = ok.split_at(7);
    vec![
        (
            "python-job".into(),
            join(&[
                job("main.py", "import util\nprint(util.x)\n"),
                job("util.py", "x = 1\n"),
            ]),
        ),
        (
            "c-job-compiled".into(),
            join(&[
                job("main.c", "#include \"lib/x.h\"\nint main(void){return X;}\n"),
                job("lib/x.h", "#define X 0\n"),
                stderr("main.c: In function 'main':\n"),
                stderr(ok_a),
                stderr(ok_b),
                stderr("program output after the marker\n"),
            ]),
        ),
        (
            "c-job-compile-error".into(),
            join(&[
                job("main.c", "int main(void){return y;}\n"),
                stderr("main.c:1:24: error: 'y' undeclared (first use in this function)\n"),
                stderr(&marker(1)),
            ]),
        ),
        (
            "deep-unicode-paths".into(),
            join(&[
                job("a/b/c/d/e/f/g/h/ünïcödé 文件.txt", "x"),
                job(&format!("{}/long.py", "d".repeat(120)), "pass\n"),
                job(".env", "A=1\n"),
            ]),
        ),
        (
            "marker-like-output".into(),
            join(&[
                job("main.go", "package main\nfunc main(){}\n"),
                stderr("\nfuzznonc compiled 0\n\nfuzznonce compil"),
                stderr("ed 0"),
                stderr("\n"),
            ]),
        ),
    ]
}

// ----- bus ----------------------------------------------------------------------------

/// Stream entries of every kind, each field a pair of records.
fn bus() -> Vec<Seed> {
    use mesh_server::bus::{BusEntry, NodeId};
    let node = NodeId(0x0123_4567_89ab_cdef);
    let doc = mesh_protocol::doc::new_doc();
    let text = doc.get_or_insert_text("t");
    let edits: Vec<Vec<u8>> = ["a", "é🙂"]
        .iter()
        .map(|s| {
            let mut txn = doc.transact_mut();
            let len = text.len(&txn);
            text.insert(&mut txn, len, s);
            txn.encode_update_v1()
        })
        .collect();
    let entries = [
        (
            "update",
            BusEntry::Update {
                node,
                first: 1,
                updates: edits,
            },
        ),
        (
            "seen",
            BusEntry::Seen {
                node,
                first: 3,
                last: 4,
            },
        ),
        (
            "awareness",
            BusEntry::Awareness {
                node,
                update: vec![1, 42, 1, 2, b'{', b'}'],
            },
        ),
        ("access", BusEntry::Access { node }),
    ];
    entries
        .into_iter()
        .map(|(name, entry)| {
            let recs: Vec<Vec<u8>> = entry
                .to_fields()
                .into_iter()
                .flat_map(|(k, v)| [k.as_bytes().to_vec(), v])
                .collect();
            (name.to_string(), join(&recs))
        })
        .collect()
}
