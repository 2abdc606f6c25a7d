//! The HTTP edge: accepting connections and serving HTTP/1.1 on them with every bound a
//! client could otherwise stretch.
//!
//! - **Connection caps.** Each connection holds a [`ConnectionPermit`] for as long as its
//!   socket is open (also after it became a WebSocket): one place in the server's total and
//!   one for its client address. A connection from a trusted proxy carries many clients, so
//!   it counts in the total only, and each WebSocket upgraded through it counts for the
//!   client the proxy names ([`admit_join`]). Over a cap, the connection is answered with a
//!   short JSON error and closed.
//! - **Header read timeout.** A request's headers must arrive within
//!   `header_read_timeout` of the connection opening or of the previous response (hyper's
//!   `header_read_timeout`, which also ends idle keep-alive connections).
//! - **Upgrade timeout.** From accept, a connection has `upgrade_timeout` to become a
//!   WebSocket; a connection still speaking plain HTTP then is closed after its current
//!   request, which gets [`CLOSE_GRACE`] to finish. This bounds clients that never read our
//!   answers, which no read timeout catches.
//! - **Request timeout.** A REST request, its body included, has `request_timeout`
//!   ([`request_deadline`]).
//! - **TLS** (`--tls-cert`, `--tls-key`). The handshake runs in the connection's own task,
//!   within `header_read_timeout` of accepting (as the first request's headers would) and
//!   inside the upgrade deadline, so a client that never finishes it is dropped. A plain HTTP
//!   request on the TLS port is answered in plain HTTP with an error that says to use
//!   `https://`. Refused connections get their error inside TLS too.
//!
//! HTTP/1.1 only: WebSockets upgrade over it, and HTTP/2 without TLS (h2c) is not something
//! browsers or the reverse proxies the README names speak to a backend.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use mesh_protocol::rest::ApiError;
use mesh_protocol::ErrorCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::api::api_error;
use crate::app::AppState;
use crate::client_addr::ClientAddr;
use crate::config::EdgeSettings;
use crate::limits::{ConnectionLimiter, ConnectionPermit, ConnectionRefusal};

/// How long a connection that was asked to close (upgrade timeout, shutdown) may take to
/// finish the request it is in before it is dropped.
pub const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Refused connections being answered at once. Answering is cheap, but a flood of refused
/// connections must not become a flood of tasks: past this, refused connections are closed
/// without a word.
const MAX_REFUSALS_IN_FLIGHT: usize = 256;

/// How long a refused connection is kept to deliver its error before it is closed.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// Request bytes read (and dropped) from a refused connection while its error is delivered,
/// so closing does not reset the connection before the client has read the answer.
const REFUSAL_DRAIN_BYTES: usize = 16 * 1024;

/// How long the accept loop pauses after an error such as running out of file descriptors,
/// so it does not spin while nothing can be accepted.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` (over TLS when `tls` is given) until `shutdown` resolves,
/// then stops accepting, asks every connection still speaking HTTP to close after its
/// current request, and waits for them. Upgraded sockets are not waited for: they belong to
/// their own tasks.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    settings: EdgeSettings,
    conns: Arc<ConnectionLimiter>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let settings = Arc::new(settings);
    let tracker = TaskTracker::new();
    let (stop_tx, stop_rx) = watch::channel(false);
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT));
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    // Per-connection failures (the peer reset before we accepted) are
                    // nothing; the rest (EMFILE, ENOBUFS) clear up when connections close.
                    if !is_connection_error(&e) {
                        tracing::warn!(error = %e, "cannot accept connections");
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    }
                    continue;
                }
            },
        };
        let peer_ip = peer.ip().to_canonical();
        let proxied = settings.proxies.is_trusted(peer_ip);
        let permit = match conns.acquire(true, (!proxied).then_some(peer_ip)) {
            Ok(p) => p,
            Err(refusal) => {
                metrics::counter!("mesh_connections_refused_total", "limit" => refusal_label(refusal)).increment(1);
                tracing::debug!(%peer, ?refusal, "connection refused");
                refuse(tcp, tls.clone(), refusal, &refusals);
                continue;
            }
        };
        // Small frames (keystrokes) must not wait for Nagle's algorithm and delayed ACKs.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        tracker.spawn(serve_connection(
            tcp,
            tls.clone(),
            peer,
            permit,
            router.clone(),
            settings.clone(),
            stop_rx.clone(),
        ));
    }
    // New connections are refused from here on, not left waiting in the backlog.
    drop(listener);
    let _ = stop_tx.send(true);
    tracker.close();
    tracker.wait().await;
}

fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionRefused | ConnectionAborted | ConnectionReset)
}

fn refusal_label(refusal: ConnectionRefusal) -> &'static str {
    match refusal {
        ConnectionRefusal::Total(_) => "total",
        ConnectionRefusal::PerAddress(_) => "per_address",
    }
}

/// The error a refused connection gets.
fn refusal_error(refusal: ConnectionRefusal) -> ApiError {
    match refusal {
        ConnectionRefusal::Total(max) => ApiError {
            code: ErrorCode::Unavailable,
            message: format!(
                "the server holds its maximum of {max} open connections (max_connections); retry in a few seconds"
            ),
        },
        ConnectionRefusal::PerAddress(max) => ApiError {
            code: ErrorCode::RateLimited,
            message: format!(
                "your address holds its maximum of {max} open connections (max_connections_per_address); close some and retry"
            ),
        },
    }
}

/// Answers a refused connection with its error and closes it, in the background (inside
/// TLS on a TLS listener, so the client can read it).
fn refuse(tcp: TcpStream, tls: Option<TlsAcceptor>, refusal: ConnectionRefusal, slots: &Arc<Semaphore>) {
    let Ok(slot) = slots.clone().try_acquire_owned() else {
        return;
    };
    tokio::spawn(async move {
        let _slot = slot;
        let _ = tokio::time::timeout(REFUSAL_LINGER, async {
            match tls {
                None => answer_and_close(tcp, refusal_error(refusal)).await,
                Some(acceptor) => answer_and_close(acceptor.accept(tcp).await?, refusal_error(refusal)).await,
            }
        })
        .await;
    });
}

/// Writes `error` as a one-shot HTTP/1.1 response, closes our side, and reads (and drops) a
/// little of the request so closing does not reset the connection before the client has
/// read the answer.
async fn answer_and_close<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, error: ApiError) -> std::io::Result<()> {
    let body = serde_json::to_string(&error).unwrap_or_default();
    let status = StatusCode::from_u16(error.code.http_status()).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    let head = format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await?;
    let mut buf = [0u8; 1024];
    let mut drained = 0;
    while drained < REFUSAL_DRAIN_BYTES {
        match stream.read(&mut buf).await? {
            0 => break,
            n => drained += n,
        }
    }
    Ok(())
}

/// The answer to plain HTTP on the TLS port.
fn plain_http_on_tls_port() -> ApiError {
    ApiError {
        code: ErrorCode::BadRequest,
        message: "this server speaks TLS: use https:// (and wss:// for the room socket); a join link from this server already says https://".into(),
    }
}

/// Where an upgrade through a trusted proxy keeps its client's connection permit: beside the
/// socket, so the place is held exactly as long as the socket is open.
#[derive(Clone, Default)]
pub struct ClientSlot(Arc<Mutex<Option<ConnectionPermit>>>);

impl ClientSlot {
    pub(crate) fn hold(&self, permit: ConnectionPermit) {
        *self.0.lock().expect("client slot lock") = Some(permit);
    }

    fn clear(&self) {
        self.0.lock().expect("client slot lock").take();
    }
}

/// A TCP stream with its places in the connection counts, released when the stream is
/// dropped — by the HTTP connection, or by the WebSocket it became.
struct CountedStream {
    tcp: TcpStream,
    _permit: ConnectionPermit,
    _client: ClientSlot,
}

impl AsyncRead for CountedStream {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for CountedStream {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.tcp.is_write_vectored()
    }
}

async fn serve_connection(
    tcp: TcpStream,
    tls: Option<TlsAcceptor>,
    peer: SocketAddr,
    permit: ConnectionPermit,
    router: Router,
    settings: Arc<EdgeSettings>,
    mut stop: watch::Receiver<bool>,
) {
    // The upgrade deadline counts from accept: a TLS handshake spends from it too.
    let upgrade_deadline = Instant::now() + settings.upgrade_timeout;
    let slot = ClientSlot::default();
    let stream = CountedStream {
        tcp,
        _permit: permit,
        _client: slot.clone(),
    };
    let Some(acceptor) = tls else {
        return serve_http(stream, peer, slot, router, settings, stop, upgrade_deadline).await;
    };
    let handshake = tokio::time::timeout(settings.header_read_timeout, accept_tls(stream, acceptor));
    let stream = tokio::select! {
        done = handshake => match done {
            Ok(Some(stream)) => stream,
            Ok(None) => return,
            Err(_) => {
                metrics::counter!("mesh_connections_timed_out_total", "limit" => "tls_handshake").increment(1);
                tracing::debug!(%peer, "TLS handshake did not finish within header_read_timeout; dropping the connection");
                return;
            }
        },
        Ok(_) = stop.wait_for(|stop| *stop) => return,
    };
    serve_http(stream, peer, slot, router, settings, stop, upgrade_deadline).await;
}

/// The TLS handshake of one connection; `None` when it failed (logged) or the client spoke
/// plain HTTP (answered with [`plain_http_on_tls_port`]).
async fn accept_tls(
    stream: CountedStream,
    acceptor: TlsAcceptor,
) -> Option<tokio_rustls::server::TlsStream<CountedStream>> {
    let mut first = [0u8; 1];
    match stream.tcp.peek(&mut first).await {
        Ok(0) | Err(_) => return None,
        Ok(_) if first[0] != crate::tls::TLS_HANDSHAKE_RECORD => {
            let _ = tokio::time::timeout(REFUSAL_LINGER, answer_and_close(stream, plain_http_on_tls_port())).await;
            return None;
        }
        Ok(_) => {}
    }
    match acceptor.accept(stream).await {
        Ok(stream) => Some(stream),
        Err(e) => {
            // A client that distrusts our certificate says so with an alert: worth a line
            // when debugging a deployment, not a warning.
            metrics::counter!("mesh_tls_handshakes_failed_total").increment(1);
            tracing::debug!(error = %e, "TLS handshake failed");
            None
        }
    }
}

/// Serves HTTP/1.1 on one connection (plain or TLS) until it ends, is past its upgrade
/// deadline, or the server stops.
async fn serve_http<S>(
    stream: S,
    peer: SocketAddr,
    slot: ClientSlot,
    router: Router,
    settings: Arc<EdgeSettings>,
    mut stop: watch::Receiver<bool>,
    upgrade_deadline: Instant,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(stream);
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        req.extensions_mut().insert(slot.clone());
        let router = router.clone();
        let slot = slot.clone();
        async move {
            let response = router.oneshot(req.map(Body::new)).await?;
            // A client's place is only held by a socket that became its WebSocket: a proxy's
            // keep-alive connection goes on to carry other clients' requests.
            if response.status() != StatusCode::SWITCHING_PROTOCOLS {
                slot.clear();
            }
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(settings.header_read_timeout);
    let conn = builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    let upgrade_deadline = tokio::time::sleep_until(upgrade_deadline);
    tokio::pin!(upgrade_deadline);
    let mut closing: Option<Instant> = None;
    loop {
        let grace_over = sleep_until_opt(closing.map(|t| t + CLOSE_GRACE));
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    if e.is_timeout() {
                        metrics::counter!("mesh_connections_timed_out_total", "limit" => "header_read").increment(1);
                    }
                    tracing::debug!(%peer, error = %e, "connection ended");
                }
                return;
            }
            () = &mut upgrade_deadline, if closing.is_none() => {
                metrics::counter!("mesh_connections_timed_out_total", "limit" => "upgrade").increment(1);
                tracing::debug!(%peer, "connection is past the upgrade timeout; closing it");
                conn.as_mut().graceful_shutdown();
                closing = Some(Instant::now());
            }
            Ok(_) = stop.wait_for(|stop| *stop), if closing.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing = Some(Instant::now());
            }
            () = grace_over => {
                tracing::debug!(%peer, "connection did not finish its request in time; dropping it");
                return;
            }
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Middleware on the room socket's route: a draining node (`drain.rs`) refuses new joins
/// with 503 `unavailable`, which every client retries, so the proxy in front sends the
/// retry to a node that is ready.
pub async fn refuse_joins_while_draining(State(app): State<AppState>, req: Request, next: Next) -> Response {
    if app.drain.is_draining() {
        metrics::counter!("mesh_joins_refused_draining_total").increment(1);
        return api_error(ErrorCode::Unavailable, crate::drain::DRAINING_MESSAGE.into());
    }
    next.run(req).await
}

/// Middleware: a REST request, its body included, gets `request_timeout` to finish.
pub async fn request_deadline(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let limit = app.settings.edge.request_timeout;
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            metrics::counter!("mesh_connections_timed_out_total", "limit" => "request").increment(1);
            let error = ApiError {
                code: ErrorCode::BadRequest,
                message: format!(
                    "the request took longer than {} s (request_timeout_secs); send the body at once and retry",
                    limit.as_secs()
                ),
            };
            (StatusCode::REQUEST_TIMEOUT, axum::Json(error)).into_response()
        }
    }
}

/// A request refused by a limit: the error names the limit; a rate limit says when to retry
/// (in the message and in `Retry-After`).
#[derive(Debug)]
pub struct Refusal {
    /// The error code.
    pub code: ErrorCode,
    /// What happened and what to do.
    pub message: String,
    /// When a retry can succeed, for rate limits.
    pub retry_after: Option<Duration>,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut response = api_error(self.code, self.message);
        if let Some(wait) = self.retry_after {
            // Whole seconds, rounded up: a client retrying at once would be refused again.
            let secs = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<ConnectionRefusal> for Refusal {
    fn from(refusal: ConnectionRefusal) -> Self {
        let error = refusal_error(refusal);
        Refusal {
            code: error.code,
            message: error.message,
            retry_after: None,
        }
    }
}

/// A wait as people read it: milliseconds under ten seconds, else seconds.
pub fn describe_wait(wait: Duration) -> String {
    if wait < Duration::from_secs(10) {
        format!("{} ms", wait.as_millis().max(1))
    } else {
        format!("{} s", wait.as_secs_f64().ceil() as u64)
    }
}

/// Admits a room socket upgrade from `client`: the join rate per client address and, for a
/// client behind a trusted proxy, its place among the address's open connections (direct
/// clients took theirs when their connection was accepted). Refusals name the limit.
pub fn admit_join(app: &AppState, client: &ClientAddr) -> Result<(), Refusal> {
    if let Err(wait) = app.joins.admit(client.ip) {
        tracing::info!(client = %client.ip, "too many joins from one address");
        metrics::counter!("mesh_joins_rate_limited_total").increment(1);
        return Err(Refusal {
            code: ErrorCode::RateLimited,
            message: format!(
                "too many joins from your address (join_rate {}/s, join_burst {}); retry in {}",
                app.joins.rate(),
                app.joins.burst(),
                describe_wait(wait)
            ),
            retry_after: Some(wait),
        });
    }
    if client.proxied {
        match app.conns.acquire(false, Some(client.ip)) {
            Ok(permit) => {
                if let Some(slot) = &client.slot {
                    slot.hold(permit);
                }
            }
            Err(refusal) => {
                tracing::info!(client = %client.ip, ?refusal, "room socket refused: connection cap");
                metrics::counter!("mesh_connections_refused_total", "limit" => refusal_label(refusal)).increment(1);
                return Err(refusal.into());
            }
        }
    }
    Ok(())
}

/// A room socket's connection, taken back from hyper after the WebSocket upgrade.
pub enum RawSocket {
    /// Plain TCP, split so the room can write to it from any thread
    /// (see [`crate::ws::outbox`]).
    Tcp {
        /// The read half.
        read: tokio::net::tcp::OwnedReadHalf,
        /// The write half.
        write: tokio::net::tcp::OwnedWriteHalf,
        /// The connection's places under the caps, held as long as the socket is.
        held: HeldSlots,
    },
    /// A TLS connection (or anything else hyper served).
    Other(TokioIo<hyper::upgrade::Upgraded>),
}

/// The connection caps' places a socket holds (released when it goes).
pub struct HeldSlots {
    _permit: ConnectionPermit,
    _client: ClientSlot,
}

/// The socket under an upgraded connection, and the bytes hyper had read past the request
/// (a client may send its first frames right behind the upgrade request).
pub fn raw_socket(upgraded: hyper::upgrade::Upgraded) -> (RawSocket, bytes::Bytes) {
    match upgraded.downcast::<TokioIo<CountedStream>>() {
        Ok(parts) => {
            let CountedStream { tcp, _permit, _client } = parts.io.into_inner();
            let (read, write) = tcp.into_split();
            let held = HeldSlots { _permit, _client };
            (RawSocket::Tcp { read, write, held }, parts.read_buf)
        }
        Err(upgraded) => (RawSocket::Other(TokioIo::new(upgraded)), bytes::Bytes::new()),
    }
}
