//! The server terminating TLS itself (`--tls-cert`, `--tls-key`), against a real process and
//! a test CA: REST and join links over https, handshakes that never finish dropped at the
//! header timeout while an honest client is served, plain HTTP on the TLS port told to use
//! https, and refusals delivered inside TLS.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mesh_testkit::tls::{TestCa, Validity};
use mesh_testkit::{TestServer, EVENT_TIMEOUT};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

struct Tls {
    server: TestServer,
    connector: TlsConnector,
    _dir: tempfile::TempDir,
}

/// A server with a certificate for 127.0.0.1 from a fresh test CA, and a client that
/// trusts that CA only.
fn tls_server(extra: &[&str]) -> Tls {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("mesh test CA").unwrap();
    let cert = ca
        .issue(dir.path(), "server", &["127.0.0.1"], Validity::Current)
        .unwrap();
    let mut args = vec![
        "--tls-cert",
        cert.cert.to_str().unwrap(),
        "--tls-key",
        cert.key.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let server = TestServer::start_with(&args).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca.pem().as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Tls {
        server,
        connector: TlsConnector::from(Arc::new(config)),
        _dir: dir,
    }
}

impl Tls {
    async fn tcp(&self) -> TcpStream {
        TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], self.server.port)))
            .await
            .unwrap()
    }

    /// One `Connection: close` request over TLS; the status and the whole answer.
    async fn request(&self, request: &str) -> (u16, String) {
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let mut stream = self
            .connector
            .connect(name, self.tcp().await)
            .await
            .expect("TLS handshake");
        stream.write_all(request.as_bytes()).await.unwrap();
        answer(&mut stream).await
    }
}

/// Reads until the server closes; the status and the whole answer.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> (u16, String) {
    let mut out = Vec::new();
    tokio::time::timeout(EVENT_TIMEOUT, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the server answers and closes");
    let answer = String::from_utf8_lossy(&out).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    (status, answer)
}

/// Whether the server closes `stream` within `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    tokio::time::timeout(limit, async {
        let mut buf = [0u8; 1024];
        while let Ok(n) = stream.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    })
    .await
    .is_ok()
}

const LIVEZ: &str = "GET /livez HTTP/1.1\r\nhost: mesh\r\nconnection: close\r\n\r\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_and_join_links_are_served_over_https() {
    let tls = tls_server(&[]);
    assert!(tls.server.url.starts_with("https://127.0.0.1:"), "{}", tls.server.url);
    assert_eq!(tls.request(LIVEZ).await.0, 200);
    let body = r#"{"name":"tls"}"#;
    let create = format!(
        "POST /api/sessions HTTP/1.1\r\nhost: mesh\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, answer) = tls.request(&create).await;
    assert_eq!(status, 201, "{answer}");
    assert!(
        answer.contains(&format!("\"join_link\":\"{}/join/", tls.server.url)),
        "{answer}"
    );
    assert!(answer.contains("\"ws_url\":\"wss://127.0.0.1:"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshakes_that_never_finish_are_dropped_at_the_header_timeout() {
    let tls = tls_server(&["--header-read-timeout-secs", "1"]);
    // 20 connections that say nothing, 20 that start a ClientHello and stall in it.
    let t0 = Instant::now();
    let mut stalled = Vec::new();
    for i in 0..40 {
        let mut s = tls.tcp().await;
        if i % 2 == 1 {
            // A TLS record header promising 512 bytes of handshake, then silence.
            s.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]).await.unwrap();
        }
        stalled.push(s);
    }
    // An honest client is served meanwhile.
    assert_eq!(tls.request(LIVEZ).await.0, 200);
    for (i, s) in stalled.iter_mut().enumerate() {
        assert!(
            closed_within(s, Duration::from_secs(10)).await,
            "stalled handshake {i} was still open 10 s later"
        );
    }
    let took = t0.elapsed();
    println!("40 stalled handshakes all dropped by {took:?} (header timeout 1 s)");
    assert!(
        took >= Duration::from_millis(900),
        "dropped before the timeout: {took:?}"
    );
    assert_eq!(tls.request(LIVEZ).await.0, 200, "the server is fine afterwards");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_on_the_tls_port_is_told_to_use_https() {
    let tls = tls_server(&[]);
    let mut plain = tls.tcp().await;
    plain.write_all(LIVEZ.as_bytes()).await.unwrap();
    let (status, answer) = answer(&mut plain).await;
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("this server speaks TLS: use https://"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_reads_its_error_inside_tls() {
    let tls = tls_server(&["--max-connections-per-address", "1"]);
    let _held = tls.tcp().await;
    let (status, answer) = tls.request(LIVEZ).await;
    assert_eq!(status, 429, "{answer}");
    assert!(answer.contains("max_connections_per_address"), "{answer}");
}

/// A socket to the room over TLS, as a browser on an https page opens it.
async fn wss(tls: &Tls, url: &str) -> tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>> {
    let stream = tls
        .connector
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tls.tcp().await)
        .await
        .unwrap();
    tokio_tungstenite::client_async(url, stream).await.unwrap().0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn room_sockets_over_tls_sync_and_carry_large_updates_both_ways() {
    use futures_util::{SinkExt, StreamExt};
    use mesh_protocol::codec::{decode_frame, encode_yjs, Frame};
    use mesh_protocol::ServerMessage;
    use tokio_tungstenite::tungstenite::Message as WsMessage;
    use yrs::sync::{Message, SyncMessage};
    use yrs::{GetString, StateVector, Text, Transact};

    let tls = tls_server(&[]);
    let body = r#"{"name":"wss"}"#;
    let create = format!(
        "POST /api/sessions HTTP/1.1\r\nhost: mesh\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let (status, answer) = tls.request(&create).await;
    assert_eq!(status, 201, "{answer}");
    let created: mesh_protocol::rest::CreatedSession =
        serde_json::from_str(answer.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    let url = format!("{}?token={}", created.ws_url, created.writer_token);
    let (mut a, mut b) = (wss(&tls, &url).await, wss(&tls, &url).await);
    let step1 = encode_yjs(&Message::Sync(SyncMessage::SyncStep1(StateVector::default())));
    for s in [&mut a, &mut b] {
        s.send(WsMessage::binary(step1.clone())).await.unwrap();
    }

    // A paste of 3 MiB (more than a TLS record or a socket buffer takes at once), then a
    // keystroke behind it: both arrive, whole and in order.
    let doc = yrs::Doc::new();
    let text = doc.get_or_insert_text("over-tls");
    let paste = "tls ".repeat(3 * 1024 * 1024 / 4);
    let mut updates = Vec::new();
    for piece in [paste.as_str(), "!"] {
        let mut txn = doc.transact_mut();
        let end = text.len(&txn);
        text.insert(&mut txn, end, piece);
        updates.push(txn.encode_update_v1());
    }
    for u in &updates {
        a.send(WsMessage::binary(encode_yjs(&Message::Sync(SyncMessage::Update(
            u.clone(),
        )))))
        .await
        .unwrap();
    }
    let replica = yrs::Doc::new();
    let seen = replica.get_or_insert_text("over-tls");
    let want = format!("{paste}!");
    tokio::time::timeout(EVENT_TIMEOUT, async {
        while seen.get_string(&replica.transact()) != want {
            let Some(Ok(WsMessage::Binary(bytes))) = b.next().await else {
                continue;
            };
            for f in decode_frame::<ServerMessage>(&bytes).unwrap_or_default() {
                if let Frame::Yjs(Message::Sync(SyncMessage::Update(u) | SyncMessage::SyncStep2(u))) = f {
                    use yrs::updates::decoder::Decode;
                    replica
                        .transact_mut()
                        .apply_update(yrs::Update::decode_v1(&u).unwrap())
                        .unwrap();
                }
            }
        }
    })
    .await
    .expect("the paste and the keystroke reach the other socket over TLS");
    assert_eq!(seen.get_string(&replica.transact()).len(), want.len());
}
