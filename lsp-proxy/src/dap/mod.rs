//! `mesh-proxy dap`: the Debug Adapter an editor starts. It speaks DAP on stdin/stdout and
//! bridges the editor into the room's shared debug session over the room's WebSocket.
//!
//! - `codec`: the Content-Length framing (sans-IO, resynchronises after bad input).
//! - `paths`: local ↔ room ↔ container paths, applied to every `Source` of a message.
//! - `capabilities`: what is announced before the room's adapter is known.
//! - `bridge`: the sans-IO rules (what to answer, what to forward, when to end).
//!
//! This module is the IO around them: one task reads stdin, one writes stdout, the room
//! connection is `crate::room`, and one loop `select!`s over a closed [`Event`] enum. Logs go
//! to stderr or a file, never stdout: stdout is the DAP channel.
//! See `docs/debugging.md` for the behaviour the editor sees.

pub mod bridge;
pub mod capabilities;
pub use mesh_protocol::dap as codec;

/// How the debug adapter's room connection introduces itself. It belongs to a person who is
/// in the room through their editor already, so it says it is a companion connection.
pub const CLIENT: &str = "mesh-proxy dap";
pub mod paths;

use std::path::Path;
use std::time::Duration;

use mesh_protocol::codec::Frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::config;
use crate::link::RoomTarget;
use crate::room::{self, Outgoing, RoomConn, RoomEvent};
use bridge::{Bridge, Input, Output};
use paths::Folder;

/// How long the hub may take to answer the editor's `disconnect` before the proxy answers
/// it itself and ends; editors wait on that answer to close the session.
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How much of stdin is read at once.
const STDIN_CHUNK_BYTES: usize = 64 * 1024;

/// Chunks of stdin read ahead of the bridge; the reader waits beyond that (back-pressure on
/// an editor that floods us).
const STDIN_QUEUE: usize = 16;

/// How long the last messages to the editor may take to leave before the process ends.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// What the loop waits for.
enum Event {
    /// A chunk of the editor's input; `None` when the editor closed stdin.
    Stdin(Option<Vec<u8>>),
    /// Something from the room connection.
    Room(RoomEvent),
    /// The editor's `disconnect` went unanswered for [`DISCONNECT_TIMEOUT`].
    DisconnectTimeout,
}

/// Serves DAP on stdin/stdout for the shared folder that contains `dir`, as `name`, trusting
/// the servers `tls` trusts. Returns when the editor disconnects or closes stdin.
pub async fn serve(dir: &Path, name: String, tls: crate::tls::Tls) -> anyhow::Result<()> {
    let (folder, target) = match room_of(dir) {
        Ok((folder, target)) => (Ok(folder), Some(target)),
        Err(e) => (Err(e), None),
    };
    let mut bridge = Bridge::new(folder);
    let (room_tx, mut room_rx) = mpsc::unbounded_channel();
    let mut link = RoomLink::new(target, name, tls, room_tx);
    let mut stdin = spawn_reader();
    let (stdout, writer) = spawn_writer();
    let mut decoder = codec::Decoder::default();
    let mut deadline: Option<Instant> = None;
    loop {
        let event = tokio::select! {
            chunk = stdin.recv() => Event::Stdin(chunk),
            Some(ev) = room_rx.recv() => Event::Room(ev),
            () = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                Event::DisconnectTimeout
            }
        };
        let inputs = match event {
            Event::Stdin(None) => break,
            Event::Stdin(Some(chunk)) => {
                decoder.push(&chunk);
                decoder.by_ref().map(Input::Editor).collect()
            }
            Event::Room(ev) => link.event(ev),
            Event::DisconnectTimeout => {
                deadline = None;
                vec![Input::DisconnectTimeout]
            }
        };
        for input in inputs {
            for output in bridge.handle(input) {
                match output {
                    Output::Editor(msg) => {
                        let _ = stdout.send(codec::encode(&msg));
                    }
                    Output::Room(msg) => link.send(msg),
                    Output::Exit => return flush(stdout, writer).await,
                }
            }
        }
        if bridge.awaits_disconnect() && deadline.is_none() {
            deadline = Some(Instant::now() + DISCONNECT_TIMEOUT);
        }
    }
    tracing::info!("the editor closed the debug adapter's input");
    flush(stdout, writer).await
}

/// The shared folder that contains `dir` and its room, or why there is none (for the user).
fn room_of(dir: &Path) -> Result<(Folder, RoomTarget), String> {
    let rec = config::session_for(dir).ok_or_else(|| {
        format!(
            "{} is not in a room: run `mesh-proxy share` or `mesh-proxy join` for it first",
            dir.display()
        )
    })?;
    let target = rec
        .target()
        .map_err(|e| format!("the room of {}: {e}", rec.dir.display()))?;
    Ok((Folder::new(rec.dir), target))
}

/// Waits for what was sent to the editor to leave.
async fn flush(stdout: mpsc::UnboundedSender<Vec<u8>>, writer: tokio::task::JoinHandle<()>) -> anyhow::Result<()> {
    drop(stdout);
    if tokio::time::timeout(FLUSH_TIMEOUT, writer).await.is_err() {
        tracing::warn!("the editor did not read the last messages");
    }
    Ok(())
}

/// Reads stdin in chunks; the channel closes at end of input.
fn spawn_reader() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(STDIN_QUEUE);
    tokio::spawn(async move {
        let mut stdin = tokio::io::stdin();
        let mut buf = vec![0u8; STDIN_CHUNK_BYTES];
        loop {
            match stdin.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the editor's input");
                    break;
                }
            }
        }
    });
    rx
}

/// Writes frames to stdout in order. The loop never waits on the editor.
fn spawn_writer() -> (mpsc::UnboundedSender<Vec<u8>>, tokio::task::JoinHandle<()>) {
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    let task = tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some(bytes) = rx.recv().await {
            if stdout.write_all(&bytes).await.is_err() || stdout.flush().await.is_err() {
                tracing::warn!("the editor closed the debug adapter's output");
                break;
            }
        }
    });
    (tx, task)
}

/// The room connection, opened at the first message for the room. Messages wait until the
/// socket is open and `Hello` is said; a dropped connection drops them (the bridge fails the
/// requests they carried).
struct RoomLink {
    target: Option<RoomTarget>,
    name: String,
    tls: crate::tls::Tls,
    events: mpsc::UnboundedSender<RoomEvent>,
    conn: Option<RoomConn>,
    ready: bool,
    queue: Vec<mesh_protocol::Request>,
}

impl RoomLink {
    fn new(
        target: Option<RoomTarget>,
        name: String,
        tls: crate::tls::Tls,
        events: mpsc::UnboundedSender<RoomEvent>,
    ) -> RoomLink {
        RoomLink {
            target,
            name,
            tls,
            events,
            conn: None,
            ready: false,
            queue: Vec::new(),
        }
    }

    fn send(&mut self, msg: mesh_protocol::Request) {
        match (&self.conn, self.ready) {
            (Some(conn), true) => {
                let _ = conn.tx.send(Outgoing::Frame(mesh_protocol::encode_mesh(&msg)));
            }
            (Some(_), false) => self.queue.push(msg),
            (None, _) => match &self.target {
                Some(target) => {
                    self.conn = Some(room::connect(target.clone(), self.tls.clone(), self.events.clone()));
                    self.queue.push(msg);
                }
                None => tracing::warn!(?msg, "no room to send to"),
            },
        }
    }

    /// Turns a connection event into the bridge's inputs.
    fn event(&mut self, ev: RoomEvent) -> Vec<Input> {
        match ev {
            RoomEvent::Connected => {
                let Some(conn) = &self.conn else { return Vec::new() };
                let hello = crate::run_cli::hello(self.name.clone(), CLIENT, true);
                let _ = conn.tx.send(Outgoing::Frame(hello));
                for msg in self.queue.drain(..) {
                    let _ = conn.tx.send(Outgoing::Frame(mesh_protocol::encode_mesh(&msg)));
                }
                self.ready = true;
                Vec::new()
            }
            RoomEvent::Frames(frames) => frames
                .into_iter()
                .filter_map(|f| match f {
                    Frame::Mesh(msg) => Some(Input::Room(msg)),
                    Frame::Yjs(_) => None,
                })
                .collect(),
            RoomEvent::Disconnected { reason } => {
                self.ready = false;
                self.queue.clear();
                vec![Input::RoomLost { reason, fatal: false }]
            }
            RoomEvent::Fatal(reason) => {
                self.conn = None;
                self.target = None;
                self.queue.clear();
                vec![Input::RoomLost { reason, fatal: true }]
            }
        }
    }
}
