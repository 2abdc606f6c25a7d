//! The ghost's room connection: the public protocol, as any mesh client speaks it. A WebSocket
//! with the link's token in the `Authorization` header, `hello`, Yjs sync into the ghost's
//! own replica, its awareness state (name and colour), and mesh messages in and out.

use anyhow::{bail, Context as _};
use futures_util::{SinkExt, StreamExt};
use mesh_protocol::codec::{decode_frame, encode_mesh, encode_yjs, Frame};
use mesh_protocol::{doc as shape, ClientMessage, ServerMessage, PROTOCOL_VERSION};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::sync::{Awareness, Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, ReadTxn, Transact, Update};

/// How many mesh messages may wait for the ghost's loop: a burst of run output; past it the
/// reader waits, which back-pressures the socket instead of growing memory.
pub const INBOX: usize = 1024;

/// What the connection reports to the ghost's loop.
#[derive(Debug)]
pub enum RoomEvent {
    /// A mesh message from the server.
    Mesh(Box<ServerMessage>),
    /// The socket dropped; the connection tries again with backoff, and the ghost's replica
    /// keeps what it types meanwhile (sent by the resync on reconnect).
    Disconnected(String),
    /// Connected again: `hello` and the resync are sent; the ghost re-announces itself.
    Reconnected,
    /// The connection ended for good (the room refused the ghost, or it is gone), and why.
    Closed(String),
}

/// The first wait before reconnecting: a server restart takes about this long.
pub const BACKOFF_START: std::time::Duration = std::time::Duration::from_millis(250);

/// The longest wait between reconnection attempts: a room that comes back is rejoined within
/// this, and a server that stays down costs one attempt per interval.
pub const BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(10);

/// How many mesh messages (chat, state) wait for the socket while it is down; older ones are
/// dropped. Document updates do not wait here: the resync carries them.
pub const OFFLINE_QUEUE: usize = 64;

/// Whether a close code means the room will not take the ghost back: unauthorized (a revoked
/// link or seat), forbidden (kicked), not found (the room was deleted), a protocol mismatch.
pub fn is_fatal_close(code: u16) -> bool {
    matches!(code, 4401 | 4403 | 4404 | 4426)
}

/// A join link, read: the room socket and the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// `ws(s)://HOST[:PORT][/PREFIX]/ws/ROOM`.
    pub ws_url: String,
    /// The link's token (never logged).
    pub token: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("ws_url", &self.ws_url)
            .finish_non_exhaustive()
    }
}

/// Reads a join link `http(s)://HOST[:PORT]/join/ROOM?token=TOKEN`.
pub fn parse_link(link: &str) -> anyhow::Result<Target> {
    let url =
        url::Url::parse(link.trim()).context("not a URL; a link looks like http://HOST:PORT/join/ROOM?token=TOKEN")?;
    let scheme = match url.scheme() {
        "http" => "ws",
        "https" => "wss",
        other => bail!("unsupported scheme {other}; a link starts with http:// or https://"),
    };
    let segments: Vec<&str> = url
        .path_segments()
        .map(|s| s.filter(|p| !p.is_empty()).collect())
        .unwrap_or_default();
    let [prefix @ .., "join", room] = segments.as_slice() else {
        bail!("the link's path should end in /join/ROOM");
    };
    let token = url
        .query_pairs()
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .filter(|t| !t.is_empty())
        .context("the link has no token")?;
    let host = url.host_str().context("the link has no host")?;
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let prefix: String = prefix.iter().map(|p| format!("/{p}")).collect();
    Ok(Target {
        ws_url: format!("{scheme}://{host}{port}{prefix}/ws/{room}"),
        token,
    })
}

/// The origin of transactions that apply the server's updates: they are not sent back.
const REMOTE: &str = "remote";

/// A connected room.
pub struct Room {
    /// The ghost's replica of the room's document. Every local transaction on it is sent to
    /// the server as an update (the server checks the ghost's role like anyone's).
    pub doc: Doc,
    awareness: Awareness,
    name: String,
    color: String,
    out: mpsc::UnboundedSender<WsMessage>,
}

impl Room {
    /// Connects, says `hello` as `name` and publishes the ghost's awareness state; events
    /// arrive on the returned receiver. The first connection must succeed; after that the
    /// connection reconnects by itself with backoff, with the seat token the server gave.
    pub async fn connect(
        target: &Target,
        name: &str,
        color: &str,
    ) -> anyhow::Result<(Room, mpsc::Receiver<RoomEvent>)> {
        let doc = shape::new_doc();
        let mut awareness = Awareness::new(doc.clone());
        awareness.set_local_state(serde_json::json!({"user": {"name": name, "color": color}}))?;
        let (out, out_rx) = mpsc::unbounded_channel::<WsMessage>();
        let (events, events_rx) = mpsc::channel(INBOX);
        let tx = out.clone();
        doc.observe_update_v1("mesh-ghost-send", move |txn, e| {
            if txn.origin() != Some(&yrs::Origin::from(REMOTE)) {
                let frame = encode_yjs(&Message::Sync(SyncMessage::Update(e.update.clone())));
                let _ = tx.send(WsMessage::Binary(frame.into()));
            }
        })
        .map_err(|e| anyhow::anyhow!("cannot watch the replica: {e:?}"))?;
        let link = Link {
            target: target.clone(),
            seat_token: None,
            name: name.into(),
            color: color.into(),
            doc: doc.clone(),
        };
        let mut link = link;
        let ws = link.open().await?;
        let first_awareness = awareness.update()?;
        tokio::spawn(link.supervise(ws, first_awareness, out_rx, events));
        Ok((
            Room {
                doc,
                awareness,
                name: name.into(),
                color: color.into(),
                out,
            },
            events_rx,
        ))
    }

    /// Publishes the ghost's awareness state again, after a reconnect: the server cleared the
    /// old connection's state (at the next clock), so the state goes out at a newer clock.
    pub fn reannounce(&mut self) {
        let state = self
            .awareness
            .local_state::<serde_json::Value>()
            .unwrap_or_else(|| serde_json::json!({"user": {"name": self.name, "color": self.color}}));
        // Twice: the first bump reaches the clock at which the server cleared the state.
        for _ in 0..2 {
            if self.awareness.set_local_state(state.clone()).is_err() {
                return;
            }
        }
        if let Ok(update) = self.awareness.update_with_clients([self.doc.client_id()]) {
            let _ = self
                .out
                .send(WsMessage::Binary(encode_yjs(&Message::Awareness(update)).into()));
        }
    }

    /// Sends a mesh message.
    pub fn send(&self, msg: &ClientMessage) {
        let _ = self.out.send(WsMessage::Binary(encode_mesh(msg).into()));
    }

    /// Publishes where the ghost's cursor is (`None`: no cursor), in mesh's awareness shape.
    pub fn set_cursor(&mut self, at: Option<(&str, u32)>) {
        let mut state = serde_json::json!({"user": {"name": self.name, "color": self.color}});
        if let Some((path, offset)) = at {
            state["cursor"] = serde_json::json!({"path": path, "anchor": offset, "head": offset});
        }
        if self.awareness.set_local_state(state).is_err() {
            return;
        }
        if let Ok(update) = self.awareness.update_with_clients([self.doc.client_id()]) {
            let _ = self
                .out
                .send(WsMessage::Binary(encode_yjs(&Message::Awareness(update)).into()));
        }
    }

    /// A handle that can post chat messages from another task.
    pub fn sender(&self) -> ChatSender {
        ChatSender(self.out.clone())
    }

    /// The room's files and their texts, sorted by path.
    pub fn files(&self) -> Vec<(String, String)> {
        use yrs::Map;
        let txn = self.doc.transact();
        let Some(files) = txn.get_map(shape::FILES) else {
            return Vec::new();
        };
        let mut out: Vec<(String, String)> = files
            .iter(&txn)
            .filter_map(|(path, value)| match value {
                yrs::Out::YText(text) => Some((path.to_string(), text.get_string(&txn))),
                _ => None,
            })
            .collect();
        out.sort();
        out
    }
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The ghost's way into its room: the link, the seat token once the server gave one, and the
/// replica to resync.
struct Link {
    target: Target,
    seat_token: Option<String>,
    name: String,
    color: String,
    doc: Doc,
}

/// How one connection ended.
enum Ended {
    /// Try again.
    Retry(String),
    /// The room will not take the ghost back.
    Fatal(String),
    /// The ghost's loop is gone.
    Stopped,
}

impl Link {
    /// Opens the socket with the seat token (or the link's, the first time) and sends
    /// `hello` and sync step 1 of the replica, so the server answers with what the ghost
    /// lacks and asks for what it lacks (step 2 of the ghost's own edits made offline).
    async fn open(&mut self) -> anyhow::Result<Socket> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let token = self.seat_token.as_deref().unwrap_or(&self.target.token);
        let mut request = self
            .target
            .ws_url
            .as_str()
            .into_client_request()
            .context("room socket URL")?;
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse()?);
        let (mut ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .with_context(|| format!("cannot connect to {}", self.target.ws_url))?;
        let hello = ClientMessage::Hello {
            version: PROTOCOL_VERSION,
            name: self.name.clone(),
            color: Some(self.color.clone()),
            client: Some("mesh-ghost".into()),
            doc_client_id: Some(self.doc.client_id().get()),
            companion: false,
        };
        ws.send(WsMessage::Binary(encode_mesh(&hello).into())).await?;
        let sv = self.doc.transact().state_vector();
        ws.send(WsMessage::Binary(
            encode_yjs(&Message::Sync(SyncMessage::SyncStep1(sv))).into(),
        ))
        .await?;
        Ok(ws)
    }

    /// Carries frames both ways, and reconnects with backoff when the socket drops, until
    /// the room refuses the ghost or the ghost's loop stops.
    async fn supervise(
        mut self,
        first: Socket,
        awareness: yrs::sync::AwarenessUpdate,
        mut out_rx: mpsc::UnboundedReceiver<WsMessage>,
        events: mpsc::Sender<RoomEvent>,
    ) {
        use rand::Rng as _;
        let mut ws = Some(first);
        let _ = out_rx_first(&awareness, &mut ws).await;
        let mut queued: std::collections::VecDeque<WsMessage> = std::collections::VecDeque::new();
        let mut backoff = BACKOFF_START;
        loop {
            let socket = match ws.take() {
                Some(s) => s,
                None => {
                    let jitter = rand::rng().random_range(0.75..1.25);
                    let wait = backoff.mul_f64(jitter);
                    // Wait, keeping the chat the loop sends meanwhile (bounded).
                    let deadline = tokio::time::Instant::now() + wait;
                    loop {
                        match tokio::time::timeout_at(deadline, out_rx.recv()).await {
                            Ok(Some(m)) => keep_offline(&mut queued, m),
                            Ok(None) => return,
                            Err(_) => break,
                        }
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                    match self.open().await {
                        Ok(s) => {
                            backoff = BACKOFF_START;
                            if events.send(RoomEvent::Reconnected).await.is_err() {
                                return;
                            }
                            s
                        }
                        Err(e) => {
                            tracing::info!("cannot reach the room yet: {e:#}");
                            continue;
                        }
                    }
                }
            };
            match self.pump(socket, &mut queued, &mut out_rx, &events).await {
                Ended::Stopped => return,
                Ended::Fatal(why) => {
                    let _ = events.send(RoomEvent::Closed(why)).await;
                    return;
                }
                Ended::Retry(why) => {
                    tracing::warn!("lost the room: {why}; reconnecting");
                    if events.send(RoomEvent::Disconnected(why)).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// One connection's life: queued messages first, then frames both ways until it ends.
    async fn pump(
        &mut self,
        ws: Socket,
        queued: &mut std::collections::VecDeque<WsMessage>,
        out_rx: &mut mpsc::UnboundedReceiver<WsMessage>,
        events: &mpsc::Sender<RoomEvent>,
    ) -> Ended {
        let (mut sink, mut stream) = ws.split();
        while let Some(m) = queued.pop_front() {
            if sink.send(m).await.is_err() {
                return Ended::Retry("the socket closed while sending".into());
            }
        }
        loop {
            tokio::select! {
                m = out_rx.recv() => match m {
                    Some(m) => {
                        if let Err(e) = sink.send(m.clone()).await {
                            keep_offline(queued, m);
                            return Ended::Retry(format!("connection lost: {e}"));
                        }
                    }
                    None => {
                        let _ = sink.close().await;
                        return Ended::Stopped;
                    }
                },
                frame = stream.next() => match frame {
                    Some(Ok(WsMessage::Binary(bytes))) => {
                        let (tx, mut rx) = mpsc::unbounded_channel();
                        let msgs = handle_frame(&bytes, &self.doc, &tx);
                        while let Ok(reply) = rx.try_recv() {
                            if sink.send(reply).await.is_err() {
                                return Ended::Retry("the socket closed while syncing".into());
                            }
                        }
                        for msg in msgs {
                            if let ServerMessage::Welcome { seat, .. } = &msg {
                                // Later connections come back to this seat (its role, its
                                // name), without using the link again.
                                self.seat_token = Some(seat.token.clone());
                            }
                            if events.send(RoomEvent::Mesh(Box::new(msg))).await.is_err() {
                                return Ended::Stopped;
                            }
                        }
                    }
                    Some(Ok(WsMessage::Close(frame))) => {
                        let (code, why) = frame.map_or((1000, "closed".to_string()), |f| {
                            (u16::from(f.code), format!("closed ({}): {}", u16::from(f.code), f.reason))
                        });
                        if is_fatal_close(code) {
                            if self.seat_token.take().is_some() && code == 4401 {
                                // A seat token the server no longer knows (e.g. its key
                                // changed): the link may still work.
                                return Ended::Retry(why);
                            }
                            return Ended::Fatal(why);
                        }
                        return Ended::Retry(why);
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Ended::Retry(format!("connection lost: {e}")),
                    None => return Ended::Retry("connection lost".into()),
                },
            }
        }
    }
}

/// Sends the first awareness state on the first socket.
async fn out_rx_first(awareness: &yrs::sync::AwarenessUpdate, ws: &mut Option<Socket>) -> anyhow::Result<()> {
    if let Some(s) = ws.as_mut() {
        s.send(WsMessage::Binary(
            encode_yjs(&Message::Awareness(awareness.clone())).into(),
        ))
        .await?;
    }
    Ok(())
}

/// Keeps a frame the loop sent while the socket is down: mesh messages (chat, state) wait,
/// bounded; document updates and awareness do not (the resync and the re-announcement carry
/// them).
fn keep_offline(queued: &mut std::collections::VecDeque<WsMessage>, m: WsMessage) {
    let WsMessage::Binary(bytes) = &m else { return };
    let is_mesh = matches!(decode_frame::<ClientMessage>(bytes).as_deref(), Ok([Frame::Mesh(_)]));
    if !is_mesh {
        return;
    }
    if queued.len() == OFFLINE_QUEUE {
        queued.pop_front();
    }
    queued.push_back(m);
}

/// Posts chat messages into the room.
#[derive(Clone)]
pub struct ChatSender(mpsc::UnboundedSender<WsMessage>);

impl ChatSender {
    /// Posts `text`, split into messages of at most [`mesh_protocol::MAX_CHAT_BYTES`] bytes
    /// (at character boundaries).
    pub fn say(&self, text: &str) {
        for piece in split_chat(text) {
            let msg = ClientMessage::Chat {
                text: piece.to_string(),
            };
            let _ = self.0.send(WsMessage::Binary(encode_mesh(&msg).into()));
        }
    }
}

/// Splits text into pieces the server accepts as chat messages.
pub fn split_chat(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while rest.len() > mesh_protocol::MAX_CHAT_BYTES {
        let mut cut = mesh_protocol::MAX_CHAT_BYTES;
        while !rest.is_char_boundary(cut) {
            cut -= 1;
        }
        // Prefer to cut after a line, so code in an answer is not split mid-line.
        if let Some(nl) = rest[..cut].rfind('\n').filter(|&i| i > cut / 2) {
            cut = nl + 1;
        }
        pieces.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    if !rest.trim().is_empty() {
        pieces.push(rest);
    }
    pieces
}

fn handle_frame(bytes: &[u8], doc: &Doc, out: &mpsc::UnboundedSender<WsMessage>) -> Vec<ServerMessage> {
    let frames = match decode_frame::<ServerMessage>(bytes) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!("ignoring a frame the ghost cannot read: {e}");
            return Vec::new();
        }
    };
    let mut mesh = Vec::new();
    for frame in frames {
        match frame {
            Frame::Yjs(Message::Sync(SyncMessage::SyncStep1(sv))) => {
                let diff = doc.transact().encode_state_as_update_v1(&sv);
                let _ = out.send(WsMessage::Binary(
                    encode_yjs(&Message::Sync(SyncMessage::SyncStep2(diff))).into(),
                ));
            }
            Frame::Yjs(Message::Sync(SyncMessage::SyncStep2(u) | SyncMessage::Update(u))) => apply(doc, &u),
            Frame::Yjs(_) => {}
            Frame::Mesh(m) => mesh.push(m),
        }
    }
    mesh
}

fn apply(doc: &Doc, update: &[u8]) {
    match Update::decode_v1(update) {
        Ok(update) => {
            if let Err(e) = doc.transact_mut_with(REMOTE).apply_update(update) {
                tracing::warn!("an update from the server did not apply: {e}");
            }
        }
        Err(e) => tracing::warn!("ignoring an update the ghost cannot decode: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_join_link_becomes_the_room_socket_and_the_token_is_not_printed() {
        let t = parse_link("https://mesh.example:8443/pre/join/abc?token=sekrit").unwrap();
        assert_eq!(t.ws_url, "wss://mesh.example:8443/pre/ws/abc");
        assert_eq!(t.token, "sekrit");
        assert!(!format!("{t:?}").contains("sekrit"));
        assert!(parse_link("http://h/join/abc").is_err());
        assert!(parse_link("ftp://h/join/abc?token=x").is_err());
    }

    #[test]
    fn long_answers_are_split_into_messages_the_server_accepts() {
        let text = format!("{}\n{}", "é".repeat(3000), "x".repeat(5000));
        let pieces = split_chat(&text);
        assert!(pieces.iter().all(|p| p.len() <= mesh_protocol::MAX_CHAT_BYTES));
        assert_eq!(pieces.concat(), text);
    }
}
