//! A scripted editor: spawns a real `mesh-proxy lsp` and speaks LSP to it over stdio, like
//! an editor would. It keeps its buffers, applies `workspace/applyEdit` when the version
//! matches (and refuses it otherwise), answers `mesh/documentHash`, and records the
//! notifications it receives.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{oneshot, Mutex as AsyncMutex, Notify};

use crate::EVENT_TIMEOUT;

/// The `mesh-proxy` binary: `$MESH_PROXY_BIN`, else the one cargo built beside the test.
pub fn proxy_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("MESH_PROXY_BIN") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("current exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>")
        .join("mesh-proxy")
}

/// The `mesh-ghost` binary: `$MESH_GHOST_BIN`, else the one cargo built beside the test
/// (`cargo build --workspace --bins` builds it).
pub fn ghost_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("MESH_GHOST_BIN") {
        return p.into();
    }
    proxy_bin().with_file_name("mesh-ghost")
}

/// One open buffer of the scripted editor.
#[derive(Debug, Clone)]
pub struct Buffer {
    /// The text.
    pub text: String,
    /// The version last reported.
    pub version: i32,
}

#[derive(Default)]
struct State {
    buffers: HashMap<String, Buffer>,
    /// Each notification with the moment it arrived.
    notifications: Vec<(String, Value, std::time::Instant)>,
    pending: HashMap<u64, oneshot::Sender<Value>>,
    /// How many applyEdit requests were applied.
    applied_edits: u64,
    /// When each applied edit arrived, with the text it inserted (for latency benchmarks).
    applied_log: Vec<(std::time::Instant, String)>,
    /// While the editor lags: `workspace/applyEdit` requests waiting, unanswered.
    held: Option<Vec<Value>>,
}

/// A scripted editor connected to its own `mesh-proxy lsp`.
pub struct LspClient {
    child: Child,
    stdin: Arc<AsyncMutex<ChildStdin>>,
    state: Arc<Mutex<State>>,
    notify: Arc<Notify>,
    next_id: Mutex<u64>,
    /// The workspace folder.
    pub root: PathBuf,
    /// The display name it runs as.
    pub name: String,
}

async fn write_msg(stdin: &AsyncMutex<ChildStdin>, msg: &Value) -> anyhow::Result<()> {
    let mut w = stdin.lock().await;
    write_locked(&mut w, msg).await
}

async fn write_locked(w: &mut ChildStdin, msg: &Value) -> anyhow::Result<()> {
    let body = serde_json::to_vec(msg)?;
    w.write_all(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes())
        .await?;
    w.write_all(&body).await?;
    w.flush().await?;
    Ok(())
}

/// The file URI of a path.
pub fn uri_of(path: &Path) -> String {
    url::Url::from_file_path(path).expect("absolute path").to_string()
}

fn utf16_to_byte(line: &str, units: u32) -> usize {
    let mut n = 0u32;
    for (i, ch) in line.char_indices() {
        if n >= units {
            return i;
        }
        n += ch.len_utf16() as u32;
    }
    line.len()
}

/// Byte offset of an LSP position (UTF-16) in `text`.
pub fn offset(text: &str, line: u32, character: u32) -> usize {
    let mut start = 0usize;
    for _ in 0..line {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => return text.len(),
        }
    }
    let end = text[start..].find('\n').map(|i| start + i).unwrap_or(text.len());
    start + utf16_to_byte(&text[start..end], character)
}

/// The LSP position (UTF-16) of a byte offset.
pub fn position(text: &str, byte: usize) -> (u32, u32) {
    let before = &text[..byte];
    let line = before.matches('\n').count() as u32;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    (line, text[line_start..byte].encode_utf16().count() as u32)
}

fn apply_edits(text: &str, edits: &[Value]) -> String {
    let mut spans: Vec<(usize, usize, String)> = edits
        .iter()
        .map(|e| {
            let r = &e["range"];
            let a = offset(
                text,
                r["start"]["line"].as_u64().unwrap() as u32,
                r["start"]["character"].as_u64().unwrap() as u32,
            );
            let b = offset(
                text,
                r["end"]["line"].as_u64().unwrap() as u32,
                r["end"]["character"].as_u64().unwrap() as u32,
            );
            (a, b, e["newText"].as_str().unwrap().to_string())
        })
        .collect();
    spans.sort_by_key(|s| std::cmp::Reverse(s.0));
    let mut out = text.to_string();
    for (a, b, t) in spans {
        out.replace_range(a..b.max(a), &t);
    }
    out
}

impl LspClient {
    /// Starts `mesh-proxy lsp --stdio` for a workspace folder and initialises it.
    pub async fn start(root: &Path, name: &str, server: &str) -> anyhow::Result<LspClient> {
        let state_home = root.parent().unwrap_or(root).join(format!(".state-{name}"));
        let mut child = Command::new(proxy_bin())
            .args(["lsp", "--stdio"])
            .env("MESH_SERVER", server)
            .env("MESH_NAME", name)
            .env("XDG_STATE_HOME", &state_home)
            .env("XDG_CONFIG_HOME", &state_home)
            .env("MESH_LOG", std::env::var("MESH_LOG").unwrap_or_else(|_| "warn".into()))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", proxy_bin().display()))?;
        let stdin = Arc::new(AsyncMutex::new(child.stdin.take().context("stdin")?));
        let stdout = child.stdout.take().context("stdout")?;
        let state = Arc::new(Mutex::new(State::default()));
        let notify = Arc::new(Notify::new());
        let (st, n, w) = (state.clone(), notify.clone(), stdin.clone());
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout);
            loop {
                let mut len = 0usize;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        n.notify_waiters();
                        return;
                    }
                    let line = line.trim();
                    if line.is_empty() {
                        break;
                    }
                    if let Some(v) = line.strip_prefix("Content-Length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                }
                let mut body = vec![0u8; len];
                if reader.read_exact(&mut body).await.is_err() {
                    return;
                }
                let msg: Value = serde_json::from_slice(&body).expect("the proxy wrote invalid JSON");
                handle(&msg, &st, &w).await;
                n.notify_waiters();
            }
        });
        let client = LspClient {
            child,
            stdin,
            state,
            notify,
            next_id: Mutex::new(0),
            root: root.to_path_buf(),
            name: name.to_string(),
        };
        let init = client
            .request(
                "initialize",
                json!({
                    "processId": null,
                    "rootUri": uri_of(root),
                    "workspaceFolders": [{ "uri": uri_of(root), "name": "ws" }],
                    "capabilities": { "workspace": { "applyEdit": true }, "general": { "positionEncodings": ["utf-16"] } }
                }),
            )
            .await?;
        if init["capabilities"]["positionEncoding"] != "utf-16" {
            bail!("unexpected initialize result: {init}");
        }
        client.notify_server("initialized", json!({})).await?;
        Ok(client)
    }

    /// Sends a request and waits for its result (an error becomes `Err`).
    pub async fn request(&self, method: &str, params: Value) -> anyhow::Result<Value> {
        let id = {
            let mut n = self.next_id.lock().unwrap();
            *n += 1;
            *n
        };
        let (tx, rx) = oneshot::channel();
        self.state.lock().unwrap().pending.insert(id, tx);
        write_msg(
            &self.stdin,
            &json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }),
        )
        .await?;
        let resp = tokio::time::timeout(EVENT_TIMEOUT, rx)
            .await
            .context("request timed out")??;
        if let Some(err) = resp.get("error") {
            bail!("{}", err["message"].as_str().unwrap_or("error"));
        }
        Ok(resp["result"].clone())
    }

    /// Sends a notification.
    pub async fn notify_server(&self, method: &str, params: Value) -> anyhow::Result<()> {
        write_msg(
            &self.stdin,
            &json!({ "jsonrpc": "2.0", "method": method, "params": params }),
        )
        .await
    }

    /// Opens a file of the workspace with its text on disk.
    pub async fn open(&self, rel: &str) -> anyhow::Result<String> {
        let path = self.root.join(rel);
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        self.open_with(rel, &text).await
    }

    /// Opens a file with the given buffer text.
    pub async fn open_with(&self, rel: &str, text: &str) -> anyhow::Result<String> {
        let uri = uri_of(&self.root.join(rel));
        self.state.lock().unwrap().buffers.insert(
            uri.clone(),
            Buffer {
                text: text.to_string(),
                version: 1,
            },
        );
        self.notify_server(
            "textDocument/didOpen",
            json!({ "textDocument": { "uri": uri, "languageId": "plaintext", "version": 1, "text": text } }),
        )
        .await?;
        Ok(uri)
    }

    /// The user replaces the bytes `start..end` of a buffer with `text` (one keystroke or
    /// paste), and the editor reports it.
    pub async fn edit(&self, uri: &str, start: usize, end: usize, text: &str) -> anyhow::Result<()> {
        self.edit_seen(uri, start, end, text).await.map(|_| ())
    }

    /// [`LspClient::edit`], returning what the user saw: the buffer's text before the edit and
    /// the byte range the edit replaced in it (the offsets kept inside the buffer and on
    /// character boundaries, as the buffer may have changed since the caller chose them).
    pub async fn edit_seen(
        &self,
        uri: &str,
        start: usize,
        end: usize,
        text: &str,
    ) -> anyhow::Result<(String, usize, usize)> {
        // Hold the pipe while the version is taken, so notifications leave in version
        // order even when a remote edit is being applied at the same moment.
        let mut w = self.stdin.lock().await;
        let (msg, seen) = {
            let mut st = self.state.lock().unwrap();
            let buf = st.buffers.get_mut(uri).context("not open")?;
            let floor = |t: &str, mut i: usize| {
                i = i.min(t.len());
                while !t.is_char_boundary(i) {
                    i -= 1;
                }
                i
            };
            let (start, end) = (floor(&buf.text, start), floor(&buf.text, end));
            let end = end.max(start);
            let seen = (buf.text.clone(), start, end);
            let (sl, sc) = position(&buf.text, start);
            let (el, ec) = position(&buf.text, end);
            buf.text.replace_range(start..end, text);
            buf.version += 1;
            let msg = json!({
                "jsonrpc": "2.0", "method": "textDocument/didChange",
                "params": {
                    "textDocument": { "uri": uri, "version": buf.version },
                    "contentChanges": [{ "range": { "start": { "line": sl, "character": sc }, "end": { "line": el, "character": ec } }, "text": text }]
                }
            });
            (msg, seen)
        };
        write_locked(&mut w, &msg).await?;
        Ok(seen)
    }

    /// Makes the editor lag (`true`): `workspace/applyEdit` requests wait unanswered until it
    /// catches up (`false`), then are handled in order (a stale version is refused).
    pub async fn lag(&self, lagging: bool) {
        let waiting = {
            let mut st = self.state.lock().unwrap();
            if lagging {
                st.held.get_or_insert_with(Vec::new);
                Vec::new()
            } else {
                st.held.take().unwrap_or_default()
            }
        };
        for msg in waiting {
            handle(&msg, &self.state, &self.stdin).await;
        }
        self.notify.notify_waiters();
    }

    /// The `workspace/applyEdit` requests waiting while the editor lags.
    pub fn held_edits(&self) -> Vec<Value> {
        self.state.lock().unwrap().held.clone().unwrap_or_default()
    }

    /// A buffer's text.
    pub fn text(&self, uri: &str) -> Option<String> {
        self.state.lock().unwrap().buffers.get(uri).map(|b| b.text.clone())
    }

    /// A buffer.
    pub fn buffer(&self, uri: &str) -> Option<Buffer> {
        self.state.lock().unwrap().buffers.get(uri).cloned()
    }

    /// Notifications received, oldest first.
    pub fn notifications(&self, method: &str) -> Vec<Value> {
        self.notifications_at(method).into_iter().map(|(_, p)| p).collect()
    }

    /// The notifications of one method with the moment each arrived (for benchmarks that
    /// time what the proxy reports, such as its connection state).
    pub fn notifications_at(&self, method: &str) -> Vec<(std::time::Instant, Value)> {
        self.state
            .lock()
            .unwrap()
            .notifications
            .iter()
            .filter(|(m, _, _)| m == method)
            .map(|(_, p, at)| (*at, p.clone()))
            .collect()
    }

    /// The proxy's process id (for benchmarks that read its CPU time and memory).
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// When each applied remote edit arrived and what it inserted.
    pub fn applied_log(&self) -> Vec<(std::time::Instant, String)> {
        self.state.lock().unwrap().applied_log.clone()
    }

    /// How many remote edit batches this editor applied.
    pub fn applied_edits(&self) -> u64 {
        self.state.lock().unwrap().applied_edits
    }

    /// Waits until `cond` holds, re-checking whenever the proxy says something.
    pub async fn wait_for(&self, what: &str, mut cond: impl FnMut(&LspClient) -> bool) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
        loop {
            let notified = self.notify.notified();
            if cond(self) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("{}: timed out waiting for {what}", self.name);
            }
            let _ = tokio::time::timeout(Duration::from_millis(50), notified).await;
        }
    }

    /// Sends `shutdown` and `exit`, then waits for the process to end.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        let _ = self.request("shutdown", Value::Null).await;
        let _ = self.notify_server("exit", Value::Null).await;
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        Ok(())
    }
}

async fn handle(msg: &Value, st: &Mutex<State>, w: &AsyncMutex<ChildStdin>) {
    let method = msg.get("method").and_then(Value::as_str);
    let id = msg.get("id").cloned();
    match (method, id) {
        (Some("workspace/applyEdit"), Some(id)) => {
            if let Some(held) = st.lock().unwrap().held.as_mut() {
                // Lagging: answered once the editor catches up.
                held.push(msg.clone());
                return;
            }
            let arrived = std::time::Instant::now();
            // Like an editor: apply when the version matches, report the change first, then answer.
            let change = &msg["params"]["edit"]["documentChanges"][0];
            let uri = change["textDocument"]["uri"].as_str().unwrap_or_default().to_string();
            let version = change["textDocument"]["version"].as_i64().unwrap_or(-1) as i32;
            let edits = change["edits"].as_array().cloned().unwrap_or_default();
            let mut pipe = w.lock().await;
            let (did_change, applied) = {
                let mut s = st.lock().unwrap();
                match s.buffers.get_mut(&uri) {
                    Some(buf) if buf.version == version => {
                        let mut sorted = edits.clone();
                        sorted.sort_by_key(|e| {
                            std::cmp::Reverse((
                                e["range"]["start"]["line"].as_u64(),
                                e["range"]["start"]["character"].as_u64(),
                            ))
                        });
                        buf.text = apply_edits(&buf.text, &edits);
                        buf.version += 1;
                        let v = buf.version;
                        s.applied_edits += 1;
                        let inserted: String = edits.iter().filter_map(|e| e["newText"].as_str()).collect();
                        s.applied_log.push((arrived, inserted));
                        let changes: Vec<Value> = sorted
                            .iter()
                            .map(|e| json!({ "range": e["range"], "text": e["newText"] }))
                            .collect();
                        (
                            Some(
                                json!({ "jsonrpc": "2.0", "method": "textDocument/didChange", "params": { "textDocument": { "uri": uri, "version": v }, "contentChanges": changes } }),
                            ),
                            true,
                        )
                    }
                    _ => (None, false),
                }
            };
            if let Some(dc) = did_change {
                let _ = write_locked(&mut pipe, &dc).await;
            }
            let _ = write_locked(
                &mut pipe,
                &json!({ "jsonrpc": "2.0", "id": id, "result": { "applied": applied } }),
            )
            .await;
        }
        (Some("mesh/documentHash"), Some(id)) => {
            let uri = msg["params"]["uri"].as_str().unwrap_or_default().to_string();
            let result = {
                let s = st.lock().unwrap();
                s.buffers
                    .get(&uri)
                    .map(|b| json!({ "version": b.version, "sha256": hex::encode(Sha256::digest(b.text.as_bytes())) }))
            };
            let reply = match result {
                Some(r) => json!({ "jsonrpc": "2.0", "id": id, "result": r }),
                None => {
                    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": -32602, "message": "unknown document" } })
                }
            };
            let _ = write_msg(w, &reply).await;
        }
        (Some(m), Some(id)) => {
            let _ = write_msg(w, &json!({ "jsonrpc": "2.0", "id": id, "error": { "code": -32601, "message": format!("unsupported {m}") } })).await;
        }
        (Some(m), None) => {
            st.lock()
                .unwrap()
                .notifications
                .push((m.to_string(), msg["params"].clone(), std::time::Instant::now()));
        }
        (None, Some(id)) => {
            if let Some(tx) = st.lock().unwrap().pending.remove(&id.as_u64().unwrap_or(0)) {
                let _ = tx.send(msg.clone());
            }
        }
        (None, None) => {}
    }
}

/// Corrupts a buffer behind the proxy's back (to test the hash check).
impl LspClient {
    /// Changes a buffer without telling the proxy.
    pub fn corrupt(&self, uri: &str, text: &str) {
        if let Some(b) = self.state.lock().unwrap().buffers.get_mut(uri) {
            b.text = text.to_string();
        }
    }
}
