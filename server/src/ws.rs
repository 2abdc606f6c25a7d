//! The room socket: `GET /ws/{room}?token=...` upgrades to a WebSocket that speaks the Yjs
//! sync and awareness protocol plus mesh's extension messages. The token may also come as an
//! `Authorization: Bearer` header, or, when neither is there, as a first `auth {token}`
//! message (browsers cannot set headers on a WebSocket, and a URL lands in access logs).
//!
//! Each connection is two tasks: the reader decodes frames and hands them to the room; the
//! writer drains the connection's bounded outbound queue and keeps the socket alive.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use mesh_protocol::codec::{decode_frame, Frame};
use mesh_protocol::{ClientMessage, ErrorCode, Request, RoomId, MAX_FRAME_BYTES};
use serde::Deserialize;
use tokio::sync::mpsc;

use crate::api::{api_error, bearer};
use crate::app::AppState;
use crate::auth::Grant;
use crate::client_addr::ClientAddr;
use crate::limits::Budget;
use crate::room::actor::{Command, Outbound, RoomHandle};

/// Outgoing frames queued per connection before the client counts as too slow and is
/// dropped (it resyncs when it reconnects).
const OUTBOUND_CAPACITY: usize = 4096;

/// Initial read buffer per socket. Keystroke frames are tens of bytes; the buffer grows for
/// the rare large frame, so a small start keeps memory per idle connection low.
const READ_BUFFER_BYTES: usize = 1024;

/// Frames already queued for a connection are written together up to this many bytes: one
/// syscall for a turn's update and cursor, yet a join's large sync does not wait behind a
/// burst of small frames for long.
const WRITE_BATCH_BYTES: usize = 64 * 1024;

/// How often the server pings an idle client, so dead peers and NATs are noticed.
const PING_INTERVAL: Duration = Duration::from_secs(20);

/// A connection that sends nothing (not even a pong) for this long is closed.
const READ_TIMEOUT: Duration = Duration::from_secs(60);

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

/// The longest close reason a WebSocket control frame can carry.
const MAX_CLOSE_REASON_BYTES: usize = 123;

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

/// The upgrade handler.
pub async fn upgrade(
    State(app): State<AppState>,
    Path(room): Path<String>,
    Query(query): Query<WsQuery>,
    client: ClientAddr,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
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
    // Frames wait in the socket's buffer until the writer flushes (after taking everything
    // queued for the connection) or it holds WRITE_BATCH_BYTES: one write per turn.
    ws.read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BATCH_BYTES)
        .max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| {
            let sockets = app.sockets.clone();
            sockets.track_future(serve(socket, app, room, grant, user, peer))
        })
        .into_response()
}

async fn serve(
    socket: WebSocket,
    app: AppState,
    room: RoomId,
    grant: Option<Grant>,
    user: Option<crate::accounts::identity::Verified>,
    peer: SocketAddr,
) {
    let conn = app.next_conn.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = mpsc::channel(OUTBOUND_CAPACITY);
    let (sink, mut stream) = socket.split();
    let (closing_tx, closing) = tokio::sync::oneshot::channel();
    let writer = tokio::spawn(write_loop(sink, rx, closing_tx));
    let refuse = |code: u16, reason: String| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(Outbound::Close(code, reason)).await;
        }
    };
    let (grant, early) = match grant {
        Some(grant) => (grant, Vec::new()),
        None => match first_auth(&mut stream, &app, room, user.as_ref().map(|u| u.id.as_str())).await {
            Ok(found) => found,
            Err(reason) => {
                tracing::info!(%room, %peer, %reason, "room socket refused");
                refuse(ErrorCode::Unauthorized.close_code(), reason).await;
                drop(tx);
                let _ = writer.await;
                // Let the peer read the close frame before the socket goes.
                drain_until_close(&mut stream).await;
                return;
            }
        },
    };
    let handle = match app
        .rooms
        .join(room, conn, crate::auth::Pass { grant, user }, tx.clone())
        .await
    {
        Ok(h) => h,
        Err(refusal) => {
            tracing::info!(%room, %peer, message = %refusal.message, "room socket refused");
            refuse(refusal.code.close_code(), refusal.message).await;
            drop(tx);
            let _ = writer.await;
            drain_until_close(&mut stream).await;
            return;
        }
    };
    // What came with the `auth` message, in the same frame.
    if !early.is_empty() {
        let _ = handle.send(Command::Frames { conn, frames: early }).await;
    }
    // From here on the room holds the only strong sender: when it drops this connection, the
    // writer sees its queue end and closes the socket.
    let weak = tx.downgrade();
    drop(tx);
    metrics::gauge!("mesh_ws_connections").increment(1);
    tracing::debug!(%room, conn, %peer, "joined");
    tokio::select! {
        () = read_loop(&mut stream, &handle, &weak, conn) => {}
        // We sent a close frame: give the peer a moment to answer it, then hang up.
        Ok(()) = closing => drain_until_close(&mut stream).await,
    }
    let _ = handle.send(Command::Leave { conn }).await;
    let _ = writer.await;
    metrics::gauge!("mesh_ws_connections").decrement(1);
    tracing::debug!(%room, conn, "left");
}

/// Reads the `auth {token}` message a connection without a token must send first. Returns
/// what its token grants and the messages that followed it in the same frame, or the reason
/// to close.
async fn first_auth(
    stream: &mut futures_util::stream::SplitStream<WebSocket>,
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
        let bytes = match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) | Ok(None) | Ok(Some(Err(_))) => return Err(missing()),
            Ok(Some(Ok(WsMessage::Binary(bytes)))) => bytes,
            Ok(Some(Ok(WsMessage::Ping(_) | WsMessage::Pong(_)))) => continue,
            Ok(Some(Ok(_))) => return Err(missing()),
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

async fn read_loop(
    stream: &mut futures_util::stream::SplitStream<WebSocket>,
    handle: &RoomHandle,
    tx: &mpsc::WeakSender<Outbound>,
    conn: u64,
) {
    let mut bad = 0u32;
    let mut frames_budget = Budget::new(FRAME_RATE, FRAME_BURST);
    let mut bytes_budget = Budget::new(BYTE_RATE, BYTE_BURST);
    loop {
        let msg = match tokio::time::timeout(READ_TIMEOUT, stream.next()).await {
            Err(_) => {
                close(tx, Outbound::Close(1001, "idle timeout".into()));
                return;
            }
            Ok(None) => return,
            Ok(Some(Err(e))) => {
                // Oversized frames and protocol violations end here; tell the peer if we can.
                let text = e.to_string();
                let (code, reason) = if text.contains("too long") || text.contains("Space limit") {
                    (1009, format!("frame exceeds {MAX_FRAME_BYTES} bytes"))
                } else {
                    (1002, "websocket protocol error".to_string())
                };
                metrics::counter!("mesh_rejected_frames_total", "reason" => "transport").increment(1);
                tracing::info!(conn, error = %text, "socket error");
                close(tx, Outbound::Close(code, reason));
                // The stream cannot be read past this error. Hold the connection open a
                // moment without reading, so the peer receives the close frame before the
                // socket goes (closing now would reset it with the rest of its frame unread).
                tokio::time::sleep(ERROR_CLOSE_HOLD).await;
                return;
            }
            Ok(Some(Ok(m))) => m,
        };
        let size = match &msg {
            WsMessage::Binary(b) => b.len(),
            WsMessage::Text(t) => t.len(),
            _ => 0,
        };
        let slowed = frames_budget.take(1.0).await | bytes_budget.take(size as f64).await;
        if slowed {
            metrics::counter!("mesh_rate_limited_frames_total").increment(1);
        }
        let frames = match msg {
            WsMessage::Binary(bytes) => decode_frame::<Request>(&bytes),
            WsMessage::Text(_) => Err(mesh_protocol::FrameError::Malformed(
                "text frames are not part of the protocol; send binary frames".into(),
            )),
            WsMessage::Close(_) => return,
            WsMessage::Ping(_) | WsMessage::Pong(_) => continue,
        };
        let cmd = match frames {
            Ok(frames) => Command::Frames { conn, frames },
            Err(e) => {
                bad += 1;
                metrics::counter!("mesh_rejected_frames_total", "reason" => "decode").increment(1);
                tracing::info!(conn, error = %e, "refused a frame");
                if bad > MAX_BAD_FRAMES {
                    close(
                        tx,
                        Outbound::Close(e.code().close_code(), format!("too many invalid frames; last: {e}")),
                    );
                    drain_until_close(stream).await;
                    return;
                }
                Command::Refuse {
                    conn,
                    code: e.code(),
                    message: e.to_string(),
                }
            }
        };
        if handle.send(cmd).await.is_err() {
            close(
                tx,
                Outbound::Close(ErrorCode::Unavailable.close_code(), "the room closed; reconnect".into()),
            );
            return;
        }
    }
}

async fn write_loop(
    mut sink: futures_util::stream::SplitSink<WebSocket, WsMessage>,
    mut rx: mpsc::Receiver<Outbound>,
    closing: tokio::sync::oneshot::Sender<()>,
) {
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.tick().await;
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(Outbound::Frame(bytes)) => {
                    // What else the room queued meanwhile goes in the same write: a turn
                    // that sends a connection an update and a cursor costs one syscall.
                    let mut batch = bytes.len();
                    if sink.feed(WsMessage::Binary(bytes)).await.is_err() {
                        return;
                    }
                    let mut then = None;
                    while batch < WRITE_BATCH_BYTES {
                        match rx.try_recv() {
                            Ok(Outbound::Frame(more)) => {
                                batch += more.len();
                                if sink.feed(WsMessage::Binary(more)).await.is_err() {
                                    return;
                                }
                            }
                            Ok(close) => {
                                then = Some(close);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    if sink.flush().await.is_err() {
                        return;
                    }
                    if let Some(Outbound::Close(code, reason)) = then {
                        send_close(&mut sink, code, &reason, closing).await;
                        return;
                    }
                }
                Some(Outbound::Close(code, reason)) => {
                    send_close(&mut sink, code, &reason, closing).await;
                    return;
                }
                None => {
                    // The room dropped us (too slow, or it stopped) without a word.
                    let frame = CloseFrame { code: 1013, reason: "dropped by the room (too slow or unloading); reconnect".into() };
                    let _ = sink.send(WsMessage::Close(Some(frame))).await;
                    let _ = closing.send(());
                    return;
                }
            },
            _ = ping.tick() => {
                if sink.send(WsMessage::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// Sends a close frame and tells the reader the socket is closing.
async fn send_close(
    sink: &mut futures_util::stream::SplitSink<WebSocket, WsMessage>,
    code: u16,
    reason: &str,
    closing: tokio::sync::oneshot::Sender<()>,
) {
    let reason = truncate_reason(reason);
    let _ = sink
        .send(WsMessage::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })))
        .await;
    let _ = closing.send(());
}

/// After the server sent a close frame, reads (and discards) until the peer answers it, so
/// the socket is not reset with unread data and the peer actually sees our close reason.
async fn drain_until_close(stream: &mut futures_util::stream::SplitStream<WebSocket>) {
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(Ok(msg)) = stream.next().await {
            if matches!(msg, WsMessage::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// A close reason must fit a control frame (125 bytes including the 2-byte code).
fn truncate_reason(reason: &str) -> &str {
    let mut end = reason.len().min(MAX_CLOSE_REASON_BYTES);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    &reason[..end]
}

fn close(tx: &mpsc::WeakSender<Outbound>, out: Outbound) {
    if let Some(tx) = tx.upgrade() {
        let _ = tx.try_send(out);
    }
}
