//! A Yjs client over a real WebSocket, with mesh's extension messages. It keeps its own
//! `yrs::Doc`, sends local changes as updates, applies remote ones, and records the mesh
//! messages and the close frame it receives.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use mesh_protocol::codec::{decode_frame, encode_mesh, encode_yjs, Frame};
use mesh_protocol::{doc as shape, ClientMessage, ServerMessage, PROTOCOL_VERSION};
use tokio::sync::{mpsc, Notify};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::sync::{Awareness, Message, SyncMessage};
use yrs::updates::decoder::Decode;
use yrs::{Doc, GetString, Map, MapRef, Origin, ReadTxn, Text, TextPrelim, TextRef, Transact, Update};

use crate::EVENT_TIMEOUT;

/// Origin of transactions that apply remote updates, so they are not sent back.
const REMOTE: &str = "remote";

#[derive(Default)]
struct Shared {
    mesh: Vec<ServerMessage>,
    closed: Option<(u16, String)>,
    frames_in: u64,
    synced: bool,
}

/// How [`YClient::connect_with`] connects.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// Say `hello` with this name (a mesh client); `None`: a stock Yjs client.
    pub name: Option<String>,
    /// The kind of client it says it is (`testkit` by default).
    pub client: Option<String>,
    /// Send the token as an `Authorization: Bearer` header on the upgrade.
    pub bearer: Option<String>,
    /// Send the token as a first `auth {token}` message (as browsers do).
    pub auth_message: Option<String>,
    /// A second connection of someone already in the room.
    pub companion: bool,
    /// A signed-in user's mesh token, sent in the `mesh-user-token` header.
    pub user_token: Option<String>,
}

/// A connected client.
pub struct YClient {
    /// The client's replica of the room.
    pub doc: Doc,
    /// The client's awareness (remote states arrive here).
    pub awareness: Arc<Mutex<Awareness>>,
    out: mpsc::UnboundedSender<WsMessage>,
    shared: Arc<Mutex<Shared>>,
    notify: Arc<Notify>,
}

impl YClient {
    /// Connects as a stock Yjs client (no `Hello`).
    pub async fn connect(url: &str) -> anyhow::Result<YClient> {
        Self::connect_inner(url, None).await
    }

    /// Connects and says `Hello` with a display name, as mesh clients do.
    pub async fn connect_mesh(url: &str, name: &str) -> anyhow::Result<YClient> {
        Self::connect_inner(url, Some(name)).await
    }

    async fn connect_inner(url: &str, name: Option<&str>) -> anyhow::Result<YClient> {
        Self::connect_with(
            url,
            ConnectOptions {
                name: name.map(String::from),
                ..ConnectOptions::default()
            },
        )
        .await
    }

    /// Connects as `options` say (token in a header or a first message, companion...).
    pub async fn connect_with(url: &str, options: ConnectOptions) -> anyhow::Result<YClient> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = url.into_client_request().context("websocket url")?;
        if let Some(token) = &options.bearer {
            request
                .headers_mut()
                .insert("authorization", format!("Bearer {token}").parse()?);
        }
        if let Some(token) = &options.user_token {
            request
                .headers_mut()
                .insert(mesh_protocol::rest::USER_TOKEN_HEADER, token.parse()?);
        }
        let (ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .with_context(|| "websocket connect")?;
        Self::start(ws, options)
    }

    /// Connects over a stream the caller opened (a TLS stream to a reverse proxy, say):
    /// the WebSocket handshake for `url` runs on it, then as [`YClient::connect_with`].
    pub async fn connect_over<S>(stream: S, url: &str, options: ConnectOptions) -> anyhow::Result<YClient>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = url.into_client_request().context("websocket url")?;
        if let Some(token) = &options.bearer {
            request
                .headers_mut()
                .insert("authorization", format!("Bearer {token}").parse()?);
        }
        let (ws, _) = tokio_tungstenite::client_async(request, stream)
            .await
            .with_context(|| "websocket connect")?;
        Self::start(ws, options)
    }

    /// Runs the client over an open WebSocket: says hello, syncs, and keeps reading.
    fn start<S>(ws: tokio_tungstenite::WebSocketStream<S>, options: ConnectOptions) -> anyhow::Result<YClient>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let name = options.name.as_deref();
        let (mut sink, mut stream) = ws.split();
        let doc = shape::new_doc();
        let awareness = Arc::new(Mutex::new(Awareness::new(doc.clone())));
        let (out, mut out_rx) = mpsc::unbounded_channel::<WsMessage>();
        let shared = Arc::new(Mutex::new(Shared::default()));
        let notify = Arc::new(Notify::new());

        let tx = out.clone();
        doc.observe_update_v1("send", move |txn, e| {
            let remote = txn.origin().is_some_and(|o| *o == Origin::from(REMOTE));
            if !remote {
                let frame = encode_yjs(&Message::Sync(SyncMessage::Update(e.update.clone())));
                let _ = tx.send(WsMessage::Binary(frame.into()));
            }
        })
        .map_err(|e| anyhow::anyhow!("observe: {e:?}"))?;

        if let Some(token) = options.auth_message {
            out.send(WsMessage::Binary(encode_mesh(&ClientMessage::Auth { token }).into()))?;
        }
        if let Some(name) = name {
            let hello = ClientMessage::Hello {
                version: PROTOCOL_VERSION,
                name: name.into(),
                color: None,
                client: Some(options.client.clone().unwrap_or_else(|| "testkit".into())),
                doc_client_id: Some(doc.client_id().get()),
                companion: options.companion,
            };
            out.send(WsMessage::Binary(encode_mesh(&hello).into()))?;
        }
        let sv = doc.transact().state_vector();
        out.send(WsMessage::Binary(
            encode_yjs(&Message::Sync(SyncMessage::SyncStep1(sv))).into(),
        ))?;

        tokio::spawn(async move {
            while let Some(msg) = out_rx.recv().await {
                if sink.send(msg).await.is_err() {
                    break;
                }
            }
            let _ = sink.close().await;
        });

        let (doc2, aw2, sh2, n2, out2) = (
            doc.clone(),
            awareness.clone(),
            shared.clone(),
            notify.clone(),
            out.clone(),
        );
        tokio::spawn(async move {
            while let Some(msg) = stream.next().await {
                match msg {
                    Ok(WsMessage::Binary(bytes)) => {
                        handle_frame(&bytes, &doc2, &aw2, &sh2, &out2);
                    }
                    Ok(WsMessage::Close(frame)) => {
                        let f = frame
                            .map(|f| (u16::from(f.code), f.reason.to_string()))
                            .unwrap_or((1005, String::new()));
                        sh2.lock().unwrap().closed = Some(f);
                        // Keep polling so the close handshake completes.
                        continue;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        sh2.lock().unwrap().closed = Some((1006, format!("connection lost: {e}")));
                        break;
                    }
                }
                n2.notify_waiters();
            }
            let mut sh = sh2.lock().unwrap();
            if sh.closed.is_none() {
                sh.closed = Some((1006, "connection lost".into()));
            }
            drop(sh);
            n2.notify_waiters();
        });
        Ok(YClient {
            doc,
            awareness,
            out,
            shared,
            notify,
        })
    }

    /// Sends raw bytes as one binary frame (for bad-input tests).
    pub fn send_raw(&self, bytes: Vec<u8>) {
        let _ = self.out.send(WsMessage::Binary(bytes.into()));
    }

    /// Sends a text frame (not part of the protocol).
    pub fn send_text(&self, text: &str) {
        let _ = self.out.send(WsMessage::Text(text.into()));
    }

    /// Sends a mesh message.
    pub fn send_mesh<M: serde::Serialize>(&self, msg: &M) {
        self.send_raw(encode_mesh(msg));
    }

    /// Sends a mesh message with a request id, and waits for the first answer that names it
    /// (`responding_to`): an acknowledgement or an error.
    pub async fn request(&self, id: u64, msg: ClientMessage) -> anyhow::Result<ServerMessage> {
        self.send_mesh(&mesh_protocol::Request::new(id, msg));
        self.wait_mesh(&format!("the answer to request {id}"), |m| responding_to(m) == Some(id))
            .await
    }

    /// The `welcome` this client got, once it came.
    pub async fn welcome(&self) -> anyhow::Result<Welcome> {
        match self
            .wait_mesh("welcome", |m| matches!(m, ServerMessage::Welcome { .. }))
            .await?
        {
            ServerMessage::Welcome {
                conn_id,
                role,
                seat,
                name,
                approval,
                ..
            } => Ok(Welcome {
                conn_id,
                role,
                seat: seat.id,
                seat_token: seat.token,
                name,
                approval,
            }),
            _ => unreachable!("matched above"),
        }
    }

    /// Publishes an awareness state.
    pub fn set_awareness(&self, state: serde_json::Value) -> anyhow::Result<()> {
        let update = {
            let mut aw = self.awareness.lock().unwrap();
            aw.set_local_state(state).map_err(|e| anyhow::anyhow!("{e}"))?;
            aw.update_with_clients([aw.client_id()])
                .map_err(|e| anyhow::anyhow!("{e}"))?
        };
        self.send_raw(encode_yjs(&Message::Awareness(update)));
        Ok(())
    }

    /// Closes the socket.
    pub fn close(&self) {
        let _ = self.out.send(WsMessage::Close(None));
    }

    /// The `files` map.
    pub fn files(&self) -> MapRef {
        self.doc.get_or_insert_map(shape::FILES)
    }

    /// The text of a file, creating it empty if it does not exist.
    pub fn file(&self, path: &str) -> TextRef {
        let files = self.files();
        let mut txn = self.doc.transact_mut();
        if let Some(yrs::Out::YText(t)) = files.get(&txn, path) {
            return t;
        }
        files.insert(&mut txn, path, TextPrelim::new(""))
    }

    /// The file's text if it exists.
    pub fn text(&self, path: &str) -> Option<String> {
        let txn = self.doc.transact();
        match txn.get_map(shape::FILES)?.get(&txn, path) {
            Some(yrs::Out::YText(t)) => Some(t.get_string(&txn)),
            _ => None,
        }
    }

    /// Inserts text into a file at a UTF-16 offset.
    pub fn insert(&self, path: &str, index: u32, chunk: &str) {
        let text = self.file(path);
        let mut txn = self.doc.transact_mut();
        text.insert(&mut txn, index, chunk);
    }

    /// Length of a file in UTF-16 code units (the document's offset kind).
    pub fn len(&self, path: &str) -> u32 {
        let text = self.file(path);
        let txn = self.doc.transact();
        text.len(&txn)
    }

    /// Deletes a range of a file.
    pub fn remove(&self, path: &str, index: u32, len: u32) {
        let text = self.file(path);
        let mut txn = self.doc.transact_mut();
        text.remove_range(&mut txn, index, len);
    }

    /// Mesh messages received so far.
    pub fn mesh_messages(&self) -> Vec<ServerMessage> {
        self.shared.lock().unwrap().mesh.clone()
    }

    /// What run `run_id` wrote to `stream` so far, as this client received it.
    pub fn run_output(&self, run_id: &str, stream: mesh_protocol::messages::RunStream) -> String {
        self.shared
            .lock()
            .unwrap()
            .mesh
            .iter()
            .filter_map(|m| match m {
                ServerMessage::RunOutput {
                    run_id: r,
                    stream: s,
                    data,
                } if r == run_id && *s == stream => Some(data.as_str()),
                _ => None,
            })
            .collect()
    }

    /// The close frame, once the connection ended.
    pub fn closed(&self) -> Option<(u16, String)> {
        self.shared.lock().unwrap().closed.clone()
    }

    /// Whether the server answered our sync step 1.
    pub fn synced(&self) -> bool {
        self.shared.lock().unwrap().synced
    }

    /// Waits until `cond` holds, re-checking whenever something arrives.
    pub async fn wait_for(&self, what: &str, mut cond: impl FnMut(&YClient) -> bool) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
        loop {
            let notified = self.notify.notified();
            if cond(self) {
                return Ok(());
            }
            // The periodic re-check also covers local changes, which notify nobody.
            match tokio::time::timeout_at(
                deadline.min(tokio::time::Instant::now() + Duration::from_millis(50)),
                notified,
            )
            .await
            {
                _ if tokio::time::Instant::now() >= deadline => {
                    if cond(self) {
                        return Ok(());
                    }
                    bail!("timed out waiting for {what}");
                }
                _ => {}
            }
        }
    }

    /// Waits until the server answered the initial sync.
    pub async fn wait_synced(&self) -> anyhow::Result<()> {
        self.wait_for("initial sync", |c| c.synced()).await
    }

    /// Waits for a mesh message matching `pred` and returns it.
    pub async fn wait_mesh(&self, what: &str, pred: impl Fn(&ServerMessage) -> bool) -> anyhow::Result<ServerMessage> {
        self.wait_for(what, |c| c.mesh_messages().iter().any(&pred)).await?;
        Ok(self.mesh_messages().into_iter().find(|m| pred(m)).expect("just seen"))
    }

    /// Waits until the connection is closed and returns the close frame.
    pub async fn wait_closed(&self) -> anyhow::Result<(u16, String)> {
        self.wait_for("close", |c| c.closed().is_some()).await?;
        Ok(self.closed().expect("just seen"))
    }
}

/// What a `welcome` told a client about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Welcome {
    /// Its connection id.
    pub conn_id: u64,
    /// Its seat's role.
    pub role: mesh_protocol::messages::Role,
    /// Its seat.
    pub seat: String,
    /// The token that reconnects to the seat.
    pub seat_token: String,
    /// Its name as assigned.
    pub name: String,
    /// Whether the room requires approval.
    pub approval: bool,
}

/// The request id a server message answers, if it names one.
pub fn responding_to(msg: &ServerMessage) -> Option<u64> {
    match msg {
        ServerMessage::Error { responding_to, .. }
        | ServerMessage::RunStarted { responding_to, .. }
        | ServerMessage::RunQueued { responding_to, .. }
        | ServerMessage::DebugJoined { responding_to, .. }
        | ServerMessage::RoleChanged { responding_to, .. }
        | ServerMessage::SeatKicked { responding_to, .. }
        | ServerMessage::JoinRequestClosed { responding_to, .. }
        | ServerMessage::ApprovalChanged { responding_to, .. }
        | ServerMessage::Links { responding_to, .. }
        | ServerMessage::AuditLog { responding_to, .. } => *responding_to,
        _ => None,
    }
}

fn handle_frame(
    bytes: &[u8],
    doc: &Doc,
    awareness: &Mutex<Awareness>,
    shared: &Mutex<Shared>,
    out: &mpsc::UnboundedSender<WsMessage>,
) {
    let frames = match decode_frame::<ServerMessage>(bytes) {
        Ok(f) => f,
        Err(e) => panic!("server sent an undecodable frame: {e}"),
    };
    shared.lock().unwrap().frames_in += 1;
    for frame in frames {
        match frame {
            Frame::Yjs(Message::Sync(SyncMessage::SyncStep1(sv))) => {
                let diff = doc.transact().encode_state_as_update_v1(&sv);
                let _ = out.send(WsMessage::Binary(
                    encode_yjs(&Message::Sync(SyncMessage::SyncStep2(diff))).into(),
                ));
            }
            Frame::Yjs(Message::Sync(SyncMessage::SyncStep2(u))) => {
                apply(doc, &u);
                shared.lock().unwrap().synced = true;
            }
            Frame::Yjs(Message::Sync(SyncMessage::Update(u))) => apply(doc, &u),
            Frame::Yjs(Message::Awareness(u)) => {
                let _ = awareness.lock().unwrap().apply_update(u);
            }
            Frame::Yjs(_) => {}
            Frame::Mesh(m) => shared.lock().unwrap().mesh.push(m),
        }
    }
}

fn apply(doc: &Doc, update: &[u8]) {
    let update = Update::decode_v1(update).expect("server sent an undecodable update");
    let mut txn = doc.transact_mut_with(REMOTE);
    txn.apply_update(update)
        .expect("server sent an update that does not apply");
}
