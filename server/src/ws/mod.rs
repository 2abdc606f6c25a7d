//! The room socket: `GET /ws/{room}?token=...` upgrades to a WebSocket that speaks the Yjs
//! sync and awareness protocol plus mesh's extension messages. The token may also come as an
//! `Authorization: Bearer` header, or, when neither is there, as a first `auth {token}`
//! message (browsers cannot set headers on a WebSocket, and a URL lands in access logs).
//!
//! Each connection is one task, which reads and decodes the client's frames and hands them
//! to the room, and writes what the room queued when the socket could not take it at once
//! (see [`outbox`]: most frames are written by whoever queued them). The WebSocket layer is
//! the server's own ([`codec`], [`socket`]) so that one encoded frame is written to every
//! connection without a copy per connection and an idle connection holds no buffers
//! (decision 016).

pub mod codec;
pub mod liveness;
pub mod outbox;
mod socket;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use mesh_protocol::codec::{decode_frame, Frame};
use mesh_protocol::{ClientMessage, ErrorCode, Request, RoomId, MAX_FRAME_BYTES};
use serde::Deserialize;

use self::codec::Message;

pub use self::outbox::{channel, Outbound, OutboundRx, OutboundTx, TrySendError};
use self::socket::{Conn, Next};
use crate::api::{api_error, bearer};
use crate::app::AppState;
use crate::auth::Grant;
use crate::client_addr::ClientAddr;
use crate::limits::Budget;
use crate::room::actor::{Command, RoomHandle};

/// The first connection id of this process. Alone, 1. On a bus, the node's id picks one of
/// 2^20 prefixes and connections count up from `prefix << 32`: ids stay unique across the
/// nodes of a room (two of three nodes share a prefix about once in 350,000 starts), so a
/// participant's id means the same person everywhere, and they stay below 2^53, which
/// JavaScript clients read exactly.
pub fn first_conn_id(node: Option<crate::bus::NodeId>) -> u64 {
    match node {
        None => 1,
        Some(node) => ((node.0 & 0xF_FFFF) << 32) | 1,
    }
}

/// Outgoing frames queued per connection before the client counts as too slow and is
/// dropped (it resyncs when it reconnects).
const OUTBOUND_CAPACITY: usize = 4096;

/// Undecodable frames tolerated per connection before it is closed: a buggy client gets a
/// few clear errors, a hostile one does not get to loop forever.
const MAX_BAD_FRAMES: u32 = 16;

/// Per connection, frames per second a client may send on average, and the burst above it.
/// Over it, the server stops reading the socket until the budget refills: nothing is lost
/// (TCP pushes back on the client) but one connection cannot monopolise its room's task.
/// A person types tens of frames a second; the benchmark's busiest client sends about 800.
const FRAME_RATE: f64 = 2000.0;
const FRAME_BURST: f64 = 4000.0;
/// The same for bytes: a paste of a few MiB passes at once, a stream of them is slowed.
const BYTE_RATE: f64 = 8.0 * 1024.0 * 1024.0;
const BYTE_BURST: f64 = 32.0 * 1024.0 * 1024.0;

/// How long a connection that broke the protocol is held open after its close frame, unread:
/// the peer must get to read the close frame before the socket goes, or the reset that
/// dropping a socket with unread input sends discards it (the peer then sees 1006, not why).
/// Half a second was not enough on a loaded two-core machine; the held socket costs nothing
/// but its slot under the connection caps.
const ERROR_CLOSE_HOLD: Duration = Duration::from_secs(2);

/// How long the server waits for the peer to answer its close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// How long a connection that presented no token may take to send its `auth` message: a
/// browser sends it as soon as the socket opens; a silent socket holds no room for long.
pub const AUTH_TIMEOUT: Duration = Duration::from_secs(10);

/// Query string of the upgrade request.
#[derive(Debug, Deserialize)]
pub struct WsQuery {
    token: Option<String>,
}

/// A WebSocket upgrade request, checked (RFC 6455, 4.2.1), with the connection hyper hands
/// over once the response is sent.
pub struct Handshake {
    accept: HeaderValue,
    on_upgrade: hyper::upgrade::OnUpgrade,
}

impl<S: Send + Sync> FromRequestParts<S> for Handshake {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        let refuse = |status: StatusCode, message: &str| {
            let mut r = api_error(ErrorCode::BadRequest, message.to_owned());
            *r.status_mut() = status;
            r
        };
        let has_token = |name: header::HeaderName, token: &str| {
            parts.headers.get_all(name).iter().any(|v| {
                v.to_str()
                    .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            })
        };
        if parts.method != Method::GET {
            return Err(refuse(
                StatusCode::METHOD_NOT_ALLOWED,
                "a WebSocket upgrade is a GET request",
            ));
        }
        if !has_token(header::CONNECTION, "upgrade") || !has_token(header::UPGRADE, "websocket") {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "this is the room socket: connect with a WebSocket client (Connection: upgrade, Upgrade: websocket)",
            ));
        }
        if parts
            .headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .map(HeaderValue::as_bytes)
            != Some(b"13")
        {
            let mut r = refuse(StatusCode::UPGRADE_REQUIRED, "WebSocket version 13 is required");
            r.headers_mut()
                .insert(header::SEC_WEBSOCKET_VERSION, HeaderValue::from_static("13"));
            return Err(r);
        }
        let Some(key) = parts.headers.get(header::SEC_WEBSOCKET_KEY) else {
            return Err(refuse(StatusCode::BAD_REQUEST, "Sec-WebSocket-Key is missing"));
        };
        let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
        let Some(on_upgrade) = parts.extensions.remove::<hyper::upgrade::OnUpgrade>() else {
            return Err(refuse(StatusCode::BAD_REQUEST, "this connection cannot be upgraded"));
        };
        Ok(Handshake {
            // The key is 24 base64 characters: its digest is a valid header value.
            accept: HeaderValue::from_str(&accept).map_err(|_| refuse(StatusCode::BAD_REQUEST, "bad key"))?,
            on_upgrade,
        })
    }
}

impl Handshake {
    /// Answers the upgrade and serves the connection once hyper hands it over.
    fn accept(self, start: Box<Start>) -> Response {
        let on_upgrade = self.on_upgrade;
        let sockets = start.app.sockets.clone();
        // What the task holds for the connection's life is kept small (decision 016): the
        // start's state is one box, freed once the connection has joined.
        let task = async move {
            let Ok(upgraded) = on_upgrade.await else { return };
            let (socket, early) = crate::edge::raw_socket(upgraded);
            let pacer = start.app.pacer.clone();
            let mut conn = Conn::new(socket, early, MAX_FRAME_BYTES, OUTBOUND_CAPACITY, pacer);
            start.app.liveness.watch(conn.outbox());
            serve(&mut conn, start).await;
        };
        sockets.spawn(task);
        let mut response = StatusCode::SWITCHING_PROTOCOLS.into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, self.accept);
        response
    }
}

/// What a connection needs until it has joined its room.
struct Start {
    app: AppState,
    room: RoomId,
    grant: Option<Grant>,
    user: Option<crate::accounts::identity::Verified>,
    peer: SocketAddr,
}

/// The upgrade handler.
pub async fn upgrade(
    State(app): State<AppState>,
    Path(room): Path<String>,
    Query(query): Query<WsQuery>,
    client: ClientAddr,
    headers: HeaderMap,
    ws: Handshake,
) -> Response {
    let room: RoomId = match room.parse() {
        Ok(id) => id,
        Err(e) => return api_error(ErrorCode::BadRequest, format!("{e}")),
    };
    // The client's own address (behind a trusted proxy, the one it forwarded) from here on.
    let peer = client.socket_addr();
    if let Err(refusal) = crate::edge::admit_join(&app, &client) {
        return refusal.into_response();
    }
    // Who the connection is, when it signed in (mesh-proxy's user token, or the browser's
    // session cookie from this server's own page).
    let user = match crate::accounts::routes::user_of(&app, &headers).await {
        Ok(user) => user,
        Err(e) => {
            tracing::info!(%room, %peer, error = %e.1, "room socket refused");
            return e.into_response();
        }
    };
    let uid = user.as_ref().map(|u| u.id.clone());
    let token = query.token.or_else(|| bearer(&headers));
    // Without a token in the URL or a header, the first message must carry it.
    let grant = match token.as_deref().map(|t| app.auth.check(Some(t), room, uid.as_deref())) {
        None => None,
        Some(Ok(grant)) => Some(grant),
        Some(Err(e)) => {
            tracing::info!(%room, %peer, error = %e, "room socket refused");
            return api_error(ErrorCode::Unauthorized, e.to_string());
        }
    };
    match app.store.get_room(room).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return api_error(
                ErrorCode::NotFound,
                format!("room {room} does not exist (was it deleted?)"),
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "store failed");
            return api_error(ErrorCode::Internal, "storage failed; try again".into());
        }
    }
    // The record the token names (revoked, expired, used up, kicked) refuses it as plain
    // HTTP where it can; the room checks again when the socket joins.
    if let Some(grant) = &grant {
        let pass = crate::auth::Pass {
            grant: grant.clone(),
            user: user.clone(),
        };
        if let Err(refusal) = app.rooms.check(room, pass).await {
            tracing::info!(%room, %peer, message = %refusal.message, "room socket refused");
            return api_error(refusal.code, refusal.message);
        }
    }
    ws.accept(Box::new(Start {
        app,
        room,
        grant,
        user,
        peer,
    }))
}

async fn serve(conn: &mut Conn, start: Box<Start>) {
    let room = start.room;
    // The rarely used steps (the first `auth` message, the join) are boxed: the connection's
    // task keeps only the size of its read loop for the rest of its life.
    let Some((handle, id)) = Box::pin(join(conn, start)).await else {
        // Refused: the peer reads the close frame before the socket goes.
        Box::pin(finish(conn, Finish::Drain)).await;
        return;
    };
    metrics::gauge!("mesh_ws_connections").increment(1);
    tracing::debug!(%room, conn = id, "joined");
    read_loop(conn, &handle, id).await;
    let _ = Box::pin(handle.send(Command::Leave { conn: id })).await;
    metrics::gauge!("mesh_ws_connections").decrement(1);
    tracing::debug!(%room, conn = id, "left");
}

/// Authenticates the connection (by its first message when the request had no token) and
/// joins it to the room; `None` when refused (a close frame saying why is queued).
async fn join(conn: &mut Conn, start: Box<Start>) -> Option<(RoomHandle, u64)> {
    let Start {
        app,
        room,
        grant,
        user,
        peer,
    } = *start;
    let id = app.next_conn.fetch_add(1, Ordering::Relaxed);
    let (grant, early) = match grant {
        Some(grant) => (grant, Vec::new()),
        None => match first_auth(conn, &app, room, user.as_ref().map(|u| u.id.as_str())).await {
            Ok(found) => found,
            Err(reason) => {
                tracing::info!(%room, %peer, %reason, "room socket refused");
                conn.outbox().close(ErrorCode::Unauthorized.close_code(), &reason);
                return None;
            }
        },
    };
    // Our own handle stays until the answer is in, so a refusal's close frame is the one sent
    // (the room letting go of its handles would otherwise close with 1013 first).
    let tx = OutboundTx::new(conn.outbox().clone());
    let joined = app
        .rooms
        .join(room, id, crate::auth::Pass { grant, user }, tx.clone())
        .await;
    let handle = match joined {
        Ok(h) => h,
        Err(refusal) => {
            tracing::info!(%room, %peer, message = %refusal.message, "room socket refused");
            conn.outbox().close(refusal.code.close_code(), &refusal.message);
            return None;
        }
    };
    // What came with the `auth` message, in the same frame.
    if !early.is_empty() {
        let _ = handle
            .send(Command::Frames {
                conn: id,
                frames: early,
            })
            .await;
    }
    // From here on the room holds the only handles: when it lets the connection go, the
    // outbox closes the socket after what is queued.
    drop(tx);
    tracing::debug!(%room, conn = id, %peer, "authenticated");
    Some((handle, id))
}

/// How a connection ends, once its close frame is queued.
enum Finish {
    /// Write the close frame, then read until the peer answers it (or a grace period).
    Drain,
    /// Write the close frame, then hold the socket open a moment without reading: the stream
    /// cannot be read past a protocol error, and closing at once would reset the connection
    /// with the peer's frame unread, so it would never see why.
    Hold,
    /// Write the close frame (it answers the peer's).
    Answer,
    /// The close frame is out already: read until the peer answers it.
    Answered,
}

/// Ends a connection whose close frame is queued (a rare path: boxed by its callers).
async fn finish(conn: &mut Conn, how: Finish) {
    match how {
        Finish::Drain => {
            let _ = tokio::time::timeout(CLOSE_GRACE, conn.flush_close()).await;
            drain_until_close(conn).await;
        }
        Finish::Hold => {
            let _ = tokio::time::timeout(ERROR_CLOSE_HOLD, conn.flush_close()).await;
            tokio::time::sleep(ERROR_CLOSE_HOLD).await;
        }
        Finish::Answer => {
            let _ = tokio::time::timeout(CLOSE_GRACE, conn.flush_close()).await;
        }
        Finish::Answered => drain_until_close(conn).await,
    }
}

/// Reads the `auth {token}` message a connection without a token must send first. Returns
/// what its token grants and the messages that followed it in the same frame, or the reason
/// to close.
async fn first_auth(
    conn: &mut Conn,
    app: &AppState,
    room: RoomId,
    user: Option<&str>,
) -> Result<(Grant, Vec<Frame<Request>>), String> {
    let missing = || {
        format!(
            "a token is required: pass ?token=..., an Authorization: Bearer header, or send auth {{token}} as the first message within {} s",
            AUTH_TIMEOUT.as_secs()
        )
    };
    let deadline = tokio::time::Instant::now() + AUTH_TIMEOUT;
    loop {
        let bytes = match tokio::time::timeout_at(deadline, conn.next()).await {
            Ok(Next::Message(Message::Binary(bytes))) => bytes,
            Ok(Next::Message(Message::Ping(_) | Message::Pong)) => continue,
            _ => return Err(missing()),
        };
        let mut frames = decode_frame::<Request>(&bytes).map_err(|_| missing())?.into_iter();
        let Some(Frame::Mesh(Request {
            message: ClientMessage::Auth { token },
            ..
        })) = frames.next()
        else {
            return Err(missing());
        };
        let grant = app.auth.check(Some(&token), room, user).map_err(|e| e.to_string())?;
        return Ok((grant, frames.collect()));
    }
}

/// A connection's read loop: each message the client sends goes to the room, within the
/// connection's budgets. What the loop keeps between messages is small (decision 016): the
/// work on a message is done by [`on_message`], and the rare waits are boxed.
async fn read_loop(conn: &mut Conn, handle: &RoomHandle, id: u64) {
    let mut reader = Reader {
        bad: 0,
        frames: Budget::new(FRAME_RATE, FRAME_BURST),
        bytes: Budget::new(BYTE_RATE, BYTE_BURST),
    };
    loop {
        // No timer here: the liveness sweep pings a silent client and closes a dead one.
        let next = conn.next().await;
        conn.outbox().heard().mark();
        let msg = match next {
            Next::Message(m) => m,
            Next::End => return,
            // The room closed the connection: give the peer a moment to answer, then hang up.
            Next::CloseSent => return Box::pin(finish(conn, Finish::Answered)).await,
            Next::Invalid(e) => {
                // Oversized frames and protocol violations end here; tell the peer.
                metrics::counter!("mesh_rejected_frames_total", "reason" => "transport").increment(1);
                tracing::info!(conn = id, error = %e, "socket error");
                let reason = match &e {
                    codec::WsError::TooBig { .. } => format!("frame exceeds {MAX_FRAME_BYTES} bytes"),
                    codec::WsError::Protocol(_) => "websocket protocol error".to_string(),
                };
                conn.outbox().close(e.close_code(), &reason);
                return Box::pin(finish(conn, Finish::Hold)).await;
            }
        };
        // Over its budget a connection waits before the room hears it (TCP pushes back).
        if let Some(wait) = reader.charge(&msg) {
            metrics::counter!("mesh_rate_limited_frames_total").increment(1);
            Box::pin(tokio::time::sleep(wait)).await;
        }
        match reader.on_message(conn, handle, id, msg) {
            Step::Next => {}
            Step::End(how) => return Box::pin(finish(conn, how)).await,
            // The room's inbox is full: wait for it (rare, so boxed).
            Step::Wait(cmd) => {
                if Box::pin(handle.send(*cmd)).await.is_err() {
                    return Box::pin(finish(conn, room_closed(conn))).await;
                }
            }
        }
    }
}

/// What a connection's read loop keeps between messages.
struct Reader {
    /// Undecodable frames so far.
    bad: u32,
    frames: Budget,
    bytes: Budget,
}

/// What the read loop does after a message.
enum Step {
    /// Reads the next one.
    Next,
    /// Ends the connection (its close frame is queued).
    End(Finish),
    /// Waits until the room can take this command.
    Wait(Box<Command>),
}

impl Reader {
    /// Charges a message to the budgets; how long to wait before the room hears it.
    fn charge(&mut self, msg: &Message) -> Option<Duration> {
        let size = match msg {
            Message::Binary(b) => b.len(),
            Message::Text(n) => *n,
            _ => 0,
        };
        match (self.frames.charge(1.0), self.bytes.charge(size as f64)) {
            (None, None) => None,
            (a, b) => a.max(b),
        }
    }

    /// Decodes a message and hands it to the room, or says why the connection ends.
    fn on_message(&mut self, conn: &mut Conn, handle: &RoomHandle, id: u64, msg: Message) -> Step {
        let frames = match msg {
            Message::Binary(bytes) => decode_frame::<Request>(&bytes),
            Message::Text(_) => Err(mesh_protocol::FrameError::Malformed(
                "text frames are not part of the protocol; send binary frames".into(),
            )),
            Message::Close(code) => {
                // The client closes: answer with its code, as the protocol asks.
                let code = if code == 1005 { 1000 } else { code };
                conn.outbox().close(code, "");
                return Step::End(Finish::Answer);
            }
            Message::Ping(_) | Message::Pong => return Step::Next,
        };
        let cmd = match frames {
            Ok(frames) => Command::Frames { conn: id, frames },
            Err(e) => {
                self.bad += 1;
                metrics::counter!("mesh_rejected_frames_total", "reason" => "decode").increment(1);
                tracing::info!(conn = id, error = %e, "refused a frame");
                if self.bad > MAX_BAD_FRAMES {
                    conn.outbox()
                        .close(e.code().close_code(), &format!("too many invalid frames; last: {e}"));
                    return Step::End(Finish::Drain);
                }
                Command::Refuse {
                    conn: id,
                    code: e.code(),
                    message: e.to_string(),
                }
            }
        };
        match handle.try_send(cmd) {
            Ok(None) => Step::Next,
            Ok(Some(cmd)) => Step::Wait(Box::new(cmd)),
            Err(_) => Step::End(room_closed(conn)),
        }
    }
}

/// The room is gone: the client is told to reconnect (which loads it again).
fn room_closed(conn: &Conn) -> Finish {
    conn.outbox()
        .close(ErrorCode::Unavailable.close_code(), "the room closed; reconnect");
    Finish::Answer
}

/// After the server's close frame went out, reads (and discards) until the peer answers it,
/// so the socket is not reset with unread data and the peer actually sees our close reason.
async fn drain_until_close(conn: &mut Conn) {
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        loop {
            match conn.next().await {
                Next::Message(Message::Close(_)) | Next::End | Next::Invalid(_) => break,
                _ => {}
            }
        }
    })
    .await;
}
