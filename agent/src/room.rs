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
    /// The connection ended, and why.
    Closed(String),
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
    /// arrive on the returned receiver.
    pub async fn connect(
        target: &Target,
        name: &str,
        color: &str,
    ) -> anyhow::Result<(Room, mpsc::Receiver<RoomEvent>)> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = target
            .ws_url
            .as_str()
            .into_client_request()
            .context("room socket URL")?;
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {}", target.token).parse()?);
        let (ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .with_context(|| format!("cannot connect to {}", target.ws_url))?;
        let (mut sink, mut stream) = ws.split();
        let doc = shape::new_doc();
        let mut awareness = Awareness::new(doc.clone());
        let (out, mut out_rx) = mpsc::unbounded_channel::<WsMessage>();
        let (events, events_rx) = mpsc::channel(INBOX);
        let tx = out.clone();
        doc.observe_update_v1("mesh-ghost-send", move |txn, e| {
            if txn.origin() != Some(&yrs::Origin::from(REMOTE)) {
                let frame = encode_yjs(&Message::Sync(SyncMessage::Update(e.update.clone())));
                let _ = tx.send(WsMessage::Binary(frame.into()));
            }
        })
        .map_err(|e| anyhow::anyhow!("cannot watch the replica: {e:?}"))?;

        let hello = ClientMessage::Hello {
            version: PROTOCOL_VERSION,
            name: name.into(),
            color: Some(color.into()),
            client: Some("mesh-ghost".into()),
            doc_client_id: Some(doc.client_id().get()),
            companion: false,
        };
        out.send(WsMessage::Binary(encode_mesh(&hello).into()))?;
        let sv = doc.transact().state_vector();
        out.send(WsMessage::Binary(
            encode_yjs(&Message::Sync(SyncMessage::SyncStep1(sv))).into(),
        ))?;
        awareness.set_local_state(serde_json::json!({"user": {"name": name, "color": color}}))?;
        let update = awareness.update()?;
        out.send(WsMessage::Binary(encode_yjs(&Message::Awareness(update)).into()))?;

        tokio::spawn(async move {
            while let Some(msg) = out_rx.recv().await {
                if sink.send(msg).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });
        let (doc2, out2) = (doc.clone(), out.clone());
        tokio::spawn(async move {
            let why = loop {
                match stream.next().await {
                    Some(Ok(WsMessage::Binary(bytes))) => {
                        for msg in handle_frame(&bytes, &doc2, &out2) {
                            if events.send(RoomEvent::Mesh(Box::new(msg))).await.is_err() {
                                return;
                            }
                        }
                    }
                    Some(Ok(WsMessage::Close(frame))) => {
                        break frame.map_or("closed".into(), |f| {
                            format!("closed ({}): {}", u16::from(f.code), f.reason)
                        });
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => break format!("connection lost: {e}"),
                    None => break "connection lost".into(),
                }
            };
            let _ = events.send(RoomEvent::Closed(why)).await;
        });
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
