//! The connection to a room: one task that keeps a WebSocket open, reconnecting with
//! exponential backoff and jitter, and reports what it receives as [`RoomEvent`]s. It knows
//! nothing of documents: the session owns the replica and decides what to send.
//!
//! The token travels in the upgrade's `Authorization: Bearer` header, never in the URL, so it
//! does not land in a proxy's access log (decision 011). Once the room gives this connection a
//! seat, the session hands the seat token over ([`Outgoing::Credentials`]) and every
//! reconnect shows that instead of the link's token: the seat, not the link, holds the role.
//!
//! A refusal that a retry cannot change ends the task with [`RoomEvent::Fatal`]: a bad
//! token or a deleted room, and a TLS failure (a certificate this machine does not trust,
//! one for another name, an expired one, a server that does not speak TLS).

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use mesh_protocol::codec::{decode_frame_up_to, Frame};
use mesh_protocol::ServerMessage;
use rand::Rng;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::{header::AUTHORIZATION, HeaderValue};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message as WsMessage};

use crate::link::RoomTarget;
use crate::tls::Tls;

/// First reconnect delay; doubled per failed attempt.
const BACKOFF_START: Duration = Duration::from_millis(100);

/// Longest reconnect delay after a failure the server saw (a timeout, a refused upgrade, a
/// room that fails right after its handshake).
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Longest delay after a refused TCP connection (nothing listens: the server is restarting):
/// such an attempt costs the server nothing, so a server back from a restart is found within
/// this, however long it was away, rather than within [`BACKOFF_MAX`].
const REFUSED_RETRY_MAX: Duration = Duration::from_millis(250);

/// The spread of each delay (a factor drawn from this range), so that a room's people do not
/// all knock at the same instant.
const JITTER: std::ops::Range<f64> = 0.75..1.25;

/// A connection that stayed up this long resets the backoff; one that ends sooner (a room
/// that fails right after its handshake) keeps growing it, so a failure that repeats does
/// not pull the room again several times a second.
const STABLE_CONNECTION: Duration = Duration::from_secs(10);

/// The largest message the proxy accepts from the server: the sync step 2 of a whole room
/// at the server's default document limit (64 MiB), with room to spare. Frames may be as
/// large (the server sends each message as one frame).
const MAX_SERVER_MESSAGE_BYTES: usize = 128 * 1024 * 1024;

/// How long a connection attempt may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A server that sends nothing (it pings every 20 s) for this long is presumed gone.
const READ_TIMEOUT: Duration = Duration::from_secs(45);

/// What the connection reports.
#[derive(Debug)]
pub enum RoomEvent {
    /// The socket is open: send the handshake now.
    Connected,
    /// The socket closed; a reconnect is scheduled.
    Disconnected {
        /// Why, for humans.
        reason: String,
    },
    /// Decoded messages of one frame.
    Frames(Vec<Frame<ServerMessage>>),
    /// The server refused us for good (bad token, deleted room): no more retries.
    Fatal(String),
}

/// What the session sends to the connection.
#[derive(Debug)]
pub enum Outgoing {
    /// A frame; dropped while disconnected (the resync on reconnect covers it).
    Frame(Vec<u8>),
    /// The token to show from the next connection on (the seat token `welcome` gave).
    Credentials(Credentials),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials(..)")
    }
}

/// The token a connection shows (a secret: its `Debug` leaves it out).
pub struct Credentials(pub String);

impl Credentials {
    /// The upgrade request for `target` with this token in the `Authorization` header.
    fn request(
        &self,
        target: &RoomTarget,
    ) -> Result<tokio_tungstenite::tungstenite::handshake::client::Request, WsError> {
        let mut request = target.ws_url_without_token().into_client_request()?;
        let value = HeaderValue::from_str(&format!("Bearer {}", self.0)).map_err(|_| {
            WsError::Url(tokio_tungstenite::tungstenite::error::UrlError::UnableToConnect(
                "the token has characters a header cannot carry; ask the host for a new link".into(),
            ))
        })?;
        request.headers_mut().insert(AUTHORIZATION, value);
        // Signed in to this server (mesh-proxy login): who we are travels beside the room's
        // token, so the room shows our verified name.
        if let Some(user) = crate::account::user_token(&target.server) {
            if let Ok(value) = HeaderValue::from_str(&user) {
                request
                    .headers_mut()
                    .insert(mesh_protocol::rest::USER_TOKEN_HEADER, value);
            }
        }
        Ok(request)
    }
}

/// Handle to the connection task; dropping it ends the task.
pub struct RoomConn {
    /// Frames to send.
    pub tx: mpsc::UnboundedSender<Outgoing>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RoomConn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the connection task; `tls` says whom to trust when the server is `https://`.
pub fn connect(target: RoomTarget, tls: Tls, events: mpsc::UnboundedSender<RoomEvent>) -> RoomConn {
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(run(target, tls, events, rx));
    RoomConn { tx, task }
}

/// For one-shot commands (`mesh-proxy run`, `mesh-proxy ask`): connects and waits until the
/// socket is open, at most `timeout`; returns the connection and its events.
pub async fn connect_once(
    target: RoomTarget,
    tls: Tls,
    timeout: std::time::Duration,
) -> anyhow::Result<(RoomConn, mpsc::UnboundedReceiver<RoomEvent>)> {
    let (events_tx, mut events) = mpsc::unbounded_channel();
    let conn = connect(target, tls, events_tx);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(RoomEvent::Connected)) => return Ok((conn, events)),
            Ok(Some(RoomEvent::Fatal(e))) => anyhow::bail!(e),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => anyhow::bail!("cannot reach the room"),
        }
    }
}

async fn run(
    target: RoomTarget,
    tls: Tls,
    events: mpsc::UnboundedSender<RoomEvent>,
    mut rx: mpsc::UnboundedReceiver<Outgoing>,
) {
    let mut retry = Retry::new();
    let mut credentials = Credentials(target.token.clone());
    loop {
        // Drop what queued up while offline: the handshake resyncs everything. A new token
        // is kept.
        while let Ok(out) = rx.try_recv() {
            if let Outgoing::Credentials(c) = out {
                credentials = c;
            }
        }
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_SERVER_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_SERVER_MESSAGE_BYTES));
        let request = match credentials.request(&target) {
            Ok(r) => r,
            Err(e) => {
                let _ = events.send(RoomEvent::Fatal(format!("cannot open the room: {e}")));
                return;
            }
        };
        let attempt = tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio_tungstenite::connect_async_tls_with_config(request, Some(config), true, Some(tls.connector())),
        )
        .await;
        let mut failure = Failure::Other;
        let reason = match attempt {
            Err(_) => "connection attempt timed out".to_string(),
            Ok(Err(WsError::Http(resp))) if matches!(resp.status().as_u16(), 400 | 401 | 403 | 404) => {
                let body = resp
                    .body()
                    .as_ref()
                    .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok());
                let message = body
                    .and_then(|b| b["message"].as_str().map(String::from))
                    .unwrap_or_default();
                let _ = events.send(RoomEvent::Fatal(format!(
                    "the server refused to open the room ({}): {message}",
                    resp.status()
                )));
                return;
            }
            Ok(Err(e)) => match tls.explain_ws(&e, &target.server) {
                // The same certificate would be presented again: retrying cannot help.
                Some(problem) => {
                    let _ = events.send(RoomEvent::Fatal(problem));
                    return;
                }
                None => {
                    failure = Failure::of(&e);
                    format!("cannot reach {}: {e}", target.server)
                }
            },
            Ok(Ok((ws, _))) => {
                if events.send(RoomEvent::Connected).is_err() {
                    return;
                }
                let connected = tokio::time::Instant::now();
                let ended = serve(ws, &events, &mut rx, &mut credentials).await;
                if connected.elapsed() >= STABLE_CONNECTION {
                    retry.stable();
                }
                match ended {
                    Ended::Fatal(reason) => {
                        let _ = events.send(RoomEvent::Fatal(reason));
                        return;
                    }
                    Ended::SessionGone => return,
                    Ended::Retry(reason) => reason,
                }
            }
        };
        if events.send(RoomEvent::Disconnected { reason }).is_err() {
            return;
        }
        let jitter = rand::rng().random_range(JITTER);
        tokio::time::sleep(retry.next_delay(failure, jitter)).await;
    }
}

/// How a connection attempt or a connection ended, as far as when to retry goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Failure {
    /// Nothing listens at the server's address (TCP connection refused).
    Refused,
    /// Anything else: the server (or something in front of it) saw the attempt.
    Other,
}

impl Failure {
    fn of(e: &WsError) -> Failure {
        match e {
            WsError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => Failure::Refused,
            _ => Failure::Other,
        }
    }
}

/// When to try the room again (sans-IO): exponential backoff for failures the server saw,
/// a short fixed period while nothing listens at its address.
#[derive(Debug)]
struct Retry {
    /// The next delay after a failure the server saw (before jitter).
    backoff: Duration,
}

impl Retry {
    fn new() -> Retry {
        Retry { backoff: BACKOFF_START }
    }

    /// A connection stayed up long enough ([`STABLE_CONNECTION`]): start over.
    fn stable(&mut self) {
        self.backoff = BACKOFF_START;
    }

    /// The delay before the next attempt, after one that ended with `failure`; `jitter` is a
    /// factor drawn from [`JITTER`].
    fn next_delay(&mut self, failure: Failure, jitter: f64) -> Duration {
        let base = match failure {
            Failure::Refused => self.backoff.min(REFUSED_RETRY_MAX),
            Failure::Other => self.backoff,
        };
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        base.mul_f64(jitter)
    }
}

enum Ended {
    Retry(String),
    Fatal(String),
    SessionGone,
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn serve(
    ws: Ws,
    events: &mpsc::UnboundedSender<RoomEvent>,
    rx: &mut mpsc::UnboundedReceiver<Outgoing>,
    credentials: &mut Credentials,
) -> Ended {
    let (mut sink, mut stream) = ws.split();
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(Outgoing::Frame(bytes)) => {
                    if let Err(e) = sink.send(WsMessage::Binary(bytes.into())).await {
                        return Ended::Retry(format!("send failed: {e}"));
                    }
                }
                Some(Outgoing::Credentials(c)) => *credentials = c,
                None => {
                    let _ = sink.close().await;
                    return Ended::SessionGone;
                }
            },
            msg = tokio::time::timeout(READ_TIMEOUT, stream.next()) => match msg {
                Err(_) => return Ended::Retry("the server stopped answering".into()),
                Ok(None) => return Ended::Retry("connection closed".into()),
                Ok(Some(Err(e))) => return Ended::Retry(format!("connection lost: {e}")),
                Ok(Some(Ok(WsMessage::Binary(bytes)))) => match decode_frame_up_to::<ServerMessage>(&bytes, MAX_SERVER_MESSAGE_BYTES) {
                    Ok(frames) => {
                        if events.send(RoomEvent::Frames(frames)).is_err() {
                            return Ended::SessionGone;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "ignored an undecodable frame from the server"),
                },
                Ok(Some(Ok(WsMessage::Close(frame)))) => {
                    let (code, reason) = frame.map(|f| (u16::from(f.code), f.reason.to_string())).unwrap_or((1005, String::new()));
                    // Keep reading until the close handshake completes.
                    let _ = tokio::time::timeout(Duration::from_secs(1), async { while stream.next().await.is_some() {} }).await;
                    return match code {
                        4401 | 4403 | 4404 | 4426 => Ended::Fatal(format!("the server closed the room connection: {reason} ({code})")),
                        _ => Ended::Retry(format!("the server closed the connection: {reason} ({code})")),
                    };
                }
                Ok(Some(Ok(_))) => {}
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The delays of `failures` in a row, without jitter.
    fn delays(retry: &mut Retry, failures: &[Failure]) -> Vec<Duration> {
        failures.iter().map(|&f| retry.next_delay(f, 1.0)).collect()
    }

    #[test]
    fn a_server_away_for_long_is_retried_within_the_refused_period_once_nothing_listens() {
        let mut retry = Retry::new();
        // Thirty seconds of a server that is down: every attempt refused.
        let waits = delays(&mut retry, &[Failure::Refused; 40]);
        assert_eq!(waits[0], BACKOFF_START, "the first retry is as prompt as ever");
        assert!(waits.iter().all(|w| *w <= REFUSED_RETRY_MAX), "{waits:?}");
        // With the most jitter, the server back from a restart is still found within this.
        assert!(retry.next_delay(Failure::Refused, JITTER.end) <= REFUSED_RETRY_MAX.mul_f64(JITTER.end));
    }

    #[test]
    fn failures_the_server_saw_back_off_exponentially_up_to_the_maximum() {
        let mut retry = Retry::new();
        let waits = delays(&mut retry, &[Failure::Other; 8]);
        assert_eq!(waits[..3], [BACKOFF_START, BACKOFF_START * 2, BACKOFF_START * 4]);
        assert_eq!(*waits.last().unwrap(), BACKOFF_MAX);
        // A server that answers again after refusing keeps the grown backoff: a failure that
        // repeats does not knock several times a second.
        let mut retry = Retry::new();
        delays(&mut retry, &[Failure::Refused; 10]);
        assert_eq!(retry.next_delay(Failure::Other, 1.0), BACKOFF_MAX);
    }

    #[test]
    fn a_stable_connection_starts_the_backoff_over() {
        let mut retry = Retry::new();
        delays(&mut retry, &[Failure::Other; 6]);
        retry.stable();
        assert_eq!(retry.next_delay(Failure::Other, 1.0), BACKOFF_START);
    }

    #[test]
    fn only_a_refused_tcp_connection_counts_as_nothing_listening() {
        let refused = WsError::Io(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert_eq!(Failure::of(&refused), Failure::Refused);
        let reset = WsError::Io(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert_eq!(Failure::of(&reset), Failure::Other);
        assert_eq!(Failure::of(&WsError::ConnectionClosed), Failure::Other);
    }

    #[test]
    fn the_token_travels_in_the_authorization_header_never_in_the_url_nor_the_logs() {
        let room = mesh_protocol::RoomId::random();
        let target = RoomTarget::parse(&format!("http://127.0.0.1:7420/join/{room}?token=link-token")).unwrap();
        let request = Credentials("seat-token".into()).request(&target).unwrap();
        assert_eq!(request.uri().to_string(), format!("ws://127.0.0.1:7420/ws/{room}"));
        assert_eq!(request.headers()[AUTHORIZATION], "Bearer seat-token");
        let shown = format!("{:?}", Outgoing::Credentials(Credentials("seat-token".into())));
        assert!(!shown.contains("seat-token"), "{shown}");
    }
}
