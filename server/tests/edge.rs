//! The HTTP edge against a real server process: slow and half-sent requests are cut off at
//! their timeouts, connections are capped per address and in total, room creation is limited
//! and can require a token, and the client address comes from a forwarded header only when
//! the peer is a trusted proxy. Meanwhile honest clients keep editing.
//!
//! Loopback is a whole /8 on Linux: binding client sockets to 127.0.0.2, 127.0.0.3, ... gives
//! the server distinct client addresses without any network setup.

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use mesh_testkit::{Session, TestServer, YClient, EVENT_TIMEOUT};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// A TCP connection to the server from a chosen loopback address.
async fn tcp_from(from: &str, port: u16) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(from.parse().unwrap(), 0)).unwrap();
    socket.connect(SocketAddr::from(([127, 0, 0, 1], port))).await.unwrap()
}

/// Reads until the server closes the connection; returns what it sent, or `None` when it
/// did not close within `limit`.
async fn read_to_close(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let mut out = Vec::new();
    let closed = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    closed.ok().map(|()| String::from_utf8_lossy(&out).into_owned())
}

/// One `Connection: close` request from `from`; the status and the whole answer.
async fn request_from(from: &str, port: u16, request: &str) -> (u16, String) {
    let mut stream = tcp_from(from, port).await;
    stream.write_all(request.as_bytes()).await.unwrap();
    let answer = read_to_close(&mut stream, EVENT_TIMEOUT)
        .await
        .expect("the server answers and closes");
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    (status, answer)
}

const LIVEZ: &str = "GET /livez HTTP/1.1\r\nhost: mesh\r\nconnection: close\r\n\r\n";

async fn writer(server: &TestServer, session: &Session) -> YClient {
    let c = YClient::connect(&server.ws_url(session, &session.created.writer_token))
        .await
        .unwrap();
    c.wait_synced().await.unwrap();
    c
}

/// Two honest writers of one room, measuring how long each edit takes to reach the other.
struct Honest {
    a: YClient,
    b: YClient,
}

impl Honest {
    async fn join(server: &TestServer, session: &Session) -> Honest {
        Honest {
            a: writer(server, session).await,
            b: writer(server, session).await,
        }
    }

    /// Types `edits` markers with A, each awaited at B; returns the latencies.
    async fn type_and_measure(&self, edits: usize) -> Vec<Duration> {
        let mut latencies = Vec::with_capacity(edits);
        for i in 0..edits {
            let marker = format!("<{i}>");
            let at = self.a.len("notes.txt");
            let t0 = Instant::now();
            self.a.insert("notes.txt", at, &marker);
            self.b
                .wait_for("the honest edit", |b| {
                    b.text("notes.txt").is_some_and(|t| t.contains(&marker))
                })
                .await
                .unwrap();
            latencies.push(t0.elapsed());
        }
        latencies
    }

    /// Asserts every edit arrived in both replicas, and prints the latencies.
    fn report(&self, what: &str, latencies: &mut [Duration]) {
        let text = self.b.text("notes.txt").unwrap_or_default();
        for i in 0..latencies.len() {
            assert!(text.contains(&format!("<{i}>")), "edit {i} is missing");
        }
        latencies.sort();
        let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize];
        println!(
            "{what}: every edit arrived ({} edits); round trip p50 {:?}, p99 {:?}, max {:?}",
            latencies.len(),
            pct(0.5),
            pct(0.99),
            latencies[latencies.len() - 1]
        );
    }
}

#[tokio::test]
async fn half_sent_requests_are_closed_at_the_header_timeout_while_others_keep_editing() {
    let server = TestServer::start_with(&["--header-read-timeout-secs", "1"]).unwrap();
    let session = server.create_session("slowloris").await.unwrap();
    let honest = Honest::join(&server, &session).await;

    // 200 requests whose headers never end, 50 connections that never say anything.
    let t0 = Instant::now();
    let mut attackers = Vec::new();
    for i in 0..250 {
        let mut s = tcp_from("127.0.0.2", server.port).await;
        if i < 200 {
            s.write_all(b"GET /livez HTTP/1.1\r\nhost: mesh\r\nx-slow: ")
                .await
                .unwrap();
        }
        attackers.push(s);
    }
    let opened = t0.elapsed();
    let mut latencies = honest.type_and_measure(100).await;
    honest.report("while 250 connections dangle", &mut latencies);

    let mut last_close = Duration::ZERO;
    for (i, s) in attackers.iter_mut().enumerate() {
        let answer = read_to_close(s, Duration::from_secs(10)).await;
        assert!(
            answer.is_some(),
            "connection {i} was still open 10 s after its last byte"
        );
        last_close = last_close.max(t0.elapsed());
    }
    println!("250 dangling connections opened in {opened:?}, all closed by {last_close:?} (timeout 1 s)");
    assert!(
        last_close >= Duration::from_millis(900),
        "closed before the timeout: {last_close:?}"
    );
    assert!(
        last_close < opened + Duration::from_secs(5),
        "the header timeout took too long: {last_close:?}"
    );
    // The server is fine afterwards.
    assert_eq!(request_from("127.0.0.2", server.port, LIVEZ).await.0, 200);
}

#[tokio::test]
async fn a_slow_body_gets_408_naming_the_request_timeout() {
    let server = TestServer::start_with(&["--request-timeout-secs", "1"]).unwrap();
    let mut s = tcp_from("127.0.0.1", server.port).await;
    let t0 = Instant::now();
    s.write_all(
        b"POST /api/sessions HTTP/1.1\r\nhost: mesh\r\ncontent-type: application/json\r\n\
          content-length: 100\r\nconnection: close\r\n\r\n{\"name\":",
    )
    .await
    .unwrap();
    let answer = read_to_close(&mut s, EVENT_TIMEOUT).await.expect("an answer");
    let took = t0.elapsed();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_timeout_secs"), "{answer}");
    assert!(
        took >= Duration::from_millis(900),
        "answered before the timeout: {took:?}"
    );
    println!(
        "a stalled body was answered after {took:?}: {}",
        answer.lines().last().unwrap_or("")
    );
}

#[tokio::test]
async fn plain_http_connections_end_at_the_upgrade_timeout_but_websockets_stay() {
    let server = TestServer::start_with(&["--upgrade-timeout-secs", "2"]).unwrap();
    let session = server.create_session("upgrade").await.unwrap();
    let honest = Honest::join(&server, &session).await;
    let joined = Instant::now();

    // A keep-alive connection that keeps asking, each request well within the header timeout.
    let mut s = tcp_from("127.0.0.1", server.port).await;
    let t0 = Instant::now();
    let mut answers = 0;
    let closed_after = loop {
        let keep_alive = "GET /livez HTTP/1.1\r\nhost: mesh\r\n\r\n";
        if s.write_all(keep_alive.as_bytes()).await.is_err() {
            break t0.elapsed();
        }
        let mut buf = [0u8; 1024];
        match tokio::time::timeout(EVENT_TIMEOUT, s.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break t0.elapsed(),
            Ok(Ok(_)) => answers += 1,
            Err(_) => panic!("no answer"),
        }
        // A client that reads slowly: a few requests a second.
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    println!("a plain HTTP connection was closed after {closed_after:?} and {answers} answers");
    assert!(answers >= 2, "{answers}");
    assert!(
        closed_after >= Duration::from_millis(1800) && closed_after < Duration::from_secs(8),
        "closed after {closed_after:?}, the upgrade timeout is 2 s"
    );
    // The WebSockets upgraded before it are past the same timeout and still work.
    assert!(joined.elapsed() > Duration::from_secs(2));
    let mut latencies = honest.type_and_measure(20).await;
    honest.report("websockets past the upgrade timeout", &mut latencies);
    assert!(honest.a.closed().is_none() && honest.b.closed().is_none());
}

#[tokio::test]
async fn connections_are_capped_per_address_and_in_total() {
    let server = TestServer::start_with(&["--max-connections-per-address", "3", "--max-connections", "5"]).unwrap();
    let port = server.port;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(tcp_from("127.0.0.2", port).await);
    }
    let (status, answer) = request_from("127.0.0.2", port, LIVEZ).await;
    assert_eq!(status, 429, "{answer}");
    assert!(answer.contains("max_connections_per_address"), "{answer}");
    // Another address has its own share...
    for _ in 0..2 {
        held.push(tcp_from("127.0.0.3", port).await);
    }
    // ...until the server as a whole is full.
    let (status, answer) = request_from("127.0.0.4", port, LIVEZ).await;
    assert_eq!(status, 503, "{answer}");
    assert!(answer.contains("max_connections"), "{answer}");
    println!("refused: {}", answer.lines().last().unwrap_or(""));
    // A closed connection frees its place (once the server has seen it close).
    drop(held.remove(0));
    wait_until_answered("127.0.0.4", port).await;
}

/// Retries `GET /livez` from `from` until it is answered 200: a freed place is free once the
/// server has read the other connection's close, which nothing signals to us.
async fn wait_until_answered(from: &str, port: u16) {
    let deadline = Instant::now() + EVENT_TIMEOUT;
    loop {
        let (status, answer) = request_from(from, port, LIVEZ).await;
        if status == 200 {
            return;
        }
        assert!(Instant::now() < deadline, "still refused: {answer}");
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn a_websocket_holds_its_place_until_it_closes() {
    let server = TestServer::start_with(&["--max-connections-per-address", "2"]).unwrap();
    // Created from another address: the REST client's pooled connection holds a place too.
    let (status, _, body) = create_from(&client_from("127.0.0.2"), &server, None).await;
    assert_eq!(status, 201);
    let session = Session {
        created: serde_json::from_value(body).unwrap(),
    };
    let honest = Honest::join(&server, &session).await;
    let (status, answer) = request_from("127.0.0.1", server.port, LIVEZ).await;
    assert_eq!(status, 429, "two open websockets fill the address's share: {answer}");
    honest.b.close();
    honest.b.wait_closed().await.unwrap();
    wait_until_answered("127.0.0.1", server.port).await;
}

async fn create_from(
    http: &reqwest::Client,
    server: &TestServer,
    token: Option<&str>,
) -> (u16, Option<String>, serde_json::Value) {
    let mut req = http
        .post(format!("{}/api/sessions", server.url))
        .json(&serde_json::json!({}));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (status, retry, resp.json().await.unwrap_or_default())
}

fn client_from(ip: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(ip.parse::<IpAddr>().unwrap())
        .build()
        .unwrap()
}

#[tokio::test]
async fn room_creation_is_limited_per_address_and_on_the_whole_server() {
    let server = TestServer::start_with(&[
        "--create-burst",
        "3",
        "--create-rate",
        "0.01",
        "--create-burst-global",
        "5",
        "--create-rate-global",
        "0.01",
    ])
    .unwrap();
    let (a, b, c) = (
        client_from("127.0.0.2"),
        client_from("127.0.0.3"),
        client_from("127.0.0.4"),
    );
    let t0 = Instant::now();
    let mut created = 0;
    for _ in 0..3 {
        assert_eq!(create_from(&a, &server, None).await.0, 201);
        created += 1;
    }
    let (status, retry, body) = create_from(&a, &server, None).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["code"], "rate_limited");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("create_rate") && message.contains("retry in"),
        "{message}"
    );
    assert!(
        retry.is_some_and(|r| r.parse::<u64>().unwrap() >= 1),
        "Retry-After is set"
    );
    // Another address is not limited by the first one's budget...
    for _ in 0..2 {
        assert_eq!(create_from(&b, &server, None).await.0, 201);
        created += 1;
    }
    // ...but the server's budget is shared by everyone.
    let (status, _, body) = create_from(&c, &server, None).await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("create_rate_global"),
        "{body}"
    );
    println!(
        "{created} rooms created, then refused within {:?}: {}",
        t0.elapsed(),
        body["message"]
    );
}

#[tokio::test]
async fn the_room_cap_refuses_until_a_room_is_deleted() {
    let server = TestServer::start_with(&["--max-rooms", "2"]).unwrap();
    let first = server.create_session("one").await.unwrap();
    server.create_session("two").await.unwrap();
    let http = reqwest::Client::new();
    let (status, _, body) = create_from(&http, &server, None).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["message"].as_str().unwrap().contains("max_rooms"), "{body}");
    let deleted = http
        .delete(format!("{}/api/sessions/{}", server.url, first.id()))
        .bearer_auth(&first.created.host_token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    assert_eq!(create_from(&http, &server, None).await.0, 201);
}

#[tokio::test]
async fn room_creation_can_require_a_token() {
    let server = TestServer::start_with(&["--create-token", "let-me-in"]).unwrap();
    let http = reqwest::Client::new();
    let (status, _, body) = create_from(&http, &server, None).await;
    assert_eq!(status, 401, "{body}");
    assert!(body["message"].as_str().unwrap().contains("create_token"), "{body}");
    assert_eq!(create_from(&http, &server, Some("let-me-out")).await.0, 401);
    let (status, _, body) = create_from(&http, &server, Some("let-me-in")).await;
    assert_eq!(status, 201, "{body}");
    // The room it made works as any other.
    let session = Session {
        created: serde_json::from_value(body).unwrap(),
    };
    let c = writer(&server, &session).await;
    assert!(c.synced());
}

/// Opens the room socket from `from` with extra headers; the HTTP status when refused.
async fn ws_from(
    server: &TestServer,
    session: &Session,
    from: &str,
    headers: &[(&str, &str)],
) -> Result<tokio_tungstenite::WebSocketStream<TcpStream>, u16> {
    let mut req = server
        .ws_url(session, &session.created.writer_token)
        .into_client_request()
        .unwrap();
    for (k, v) in headers {
        let name = tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap();
        req.headers_mut().insert(name, HeaderValue::from_str(v).unwrap());
    }
    let stream = tcp_from(from, server.port).await;
    match tokio_tungstenite::client_async(req, stream).await {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => Err(resp.status().as_u16()),
        Err(e) => panic!("unexpected websocket error: {e}"),
    }
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    // 127.0.0.1 plays the reverse proxy; 127.0.0.2 is a client that talks to us directly.
    let server = TestServer::start_with(&[
        "--trusted-proxy",
        "127.0.0.1",
        "--join-burst",
        "2",
        "--join-rate",
        "0.01",
    ])
    .unwrap();
    let session = server.create_session("proxied").await.unwrap();
    let xff = |ip: &'static str| [("x-forwarded-for", ip)];

    // Through the proxy, each forwarded client has its own join budget.
    let mut open = Vec::new();
    for _ in 0..2 {
        open.push(
            ws_from(&server, &session, "127.0.0.1", &xff("203.0.113.1"))
                .await
                .unwrap(),
        );
    }
    assert_eq!(
        ws_from(&server, &session, "127.0.0.1", &xff("203.0.113.1")).await.err(),
        Some(429),
        "the forwarded client's budget is spent"
    );
    open.push(
        ws_from(&server, &session, "127.0.0.1", &xff("203.0.113.2"))
            .await
            .unwrap(),
    );
    // A client that sends its own X-Forwarded-For through the proxy is the address the
    // proxy appended (203.0.113.3), not the one it claims (203.0.113.1, whose budget is spent).
    open.push(
        ws_from(&server, &session, "127.0.0.1", &xff("203.0.113.1, 203.0.113.3"))
            .await
            .unwrap(),
    );

    // A direct client cannot pick its address with the header: every fake address draws
    // on the same budget, its own.
    for fake in ["198.51.100.1", "198.51.100.2"] {
        open.push(ws_from(&server, &session, "127.0.0.2", &xff(fake)).await.unwrap());
    }
    assert_eq!(
        ws_from(&server, &session, "127.0.0.2", &xff("198.51.100.3"))
            .await
            .err(),
        Some(429),
        "a spoofed header from an untrusted peer is ignored"
    );

    // Listing rooms is open to loopback clients only: the proxy itself is on loopback, the
    // client it forwards for is not.
    let list = "GET /api/sessions HTTP/1.1\r\nhost: mesh\r\nconnection: close\r\n";
    let (status, _) = request_from("127.0.0.1", server.port, &format!("{list}\r\n")).await;
    assert_eq!(status, 200);
    let (status, answer) = request_from(
        "127.0.0.1",
        server.port,
        &format!("{list}x-forwarded-for: 203.0.113.9\r\n\r\n"),
    )
    .await;
    assert_eq!(status, 401, "{answer}");
}

#[tokio::test]
async fn clients_behind_a_proxy_are_capped_per_address_by_their_websockets() {
    let server =
        TestServer::start_with(&["--trusted-proxy", "127.0.0.0/8", "--max-connections-per-address", "2"]).unwrap();
    let session = server.create_session("capped").await.unwrap();
    let xff = [("x-forwarded-for", "203.0.113.1")];
    let mut first = ws_from(&server, &session, "127.0.0.1", &xff).await.unwrap();
    let _second = ws_from(&server, &session, "127.0.0.1", &xff).await.unwrap();
    assert_eq!(
        ws_from(&server, &session, "127.0.0.1", &xff).await.err(),
        Some(429),
        "the forwarded client holds its two places"
    );
    // The proxy's own connections are not capped per address: another client gets in.
    let _other = ws_from(&server, &session, "127.0.0.1", &[("x-forwarded-for", "203.0.113.2")])
        .await
        .unwrap();
    // A refused or plain request does not keep a place: REST through the proxy works.
    let (status, _) = request_from(
        "127.0.0.1",
        server.port,
        "GET /livez HTTP/1.1\r\nhost: mesh\r\nconnection: close\r\nx-forwarded-for: 203.0.113.1\r\n\r\n",
    )
    .await;
    assert_eq!(status, 200);
    // Closing a websocket frees its place.
    first.close(None).await.unwrap();
    while let Some(Ok(_)) = futures_util::StreamExt::next(&mut first).await {}
    drop(first);
    let deadline = Instant::now() + EVENT_TIMEOUT;
    loop {
        match ws_from(&server, &session, "127.0.0.1", &xff).await {
            Ok(_) => break,
            Err(status) => {
                assert_eq!(status, 429);
                assert!(Instant::now() < deadline, "the place was never freed");
                tokio::task::yield_now().await;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_creation_flood_is_held_to_the_burst_while_others_keep_editing() {
    // Default limits: 60 rooms at once per address, then one every two seconds.
    let server = TestServer::start().unwrap();
    let session = server.create_session("honest").await.unwrap();
    let honest = Honest::join(&server, &session).await;
    let attacker = client_from("127.0.0.2");
    let url = format!("{}/api/sessions", server.url);
    let t0 = Instant::now();
    let flood = tokio::spawn(async move {
        let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
        let mut pending = futures_util::stream::FuturesUnordered::new();
        for _ in 0..3000 {
            let (attacker, url) = (attacker.clone(), url.clone());
            pending.push(async move { attacker.post(url).json(&serde_json::json!({})).send().await });
            // At most 32 requests in flight, as a client pool would.
            if pending.len() >= 32 {
                let resp = futures_util::StreamExt::next(&mut pending).await.unwrap().unwrap();
                *statuses.entry(resp.status().as_u16()).or_default() += 1;
            }
        }
        while let Some(resp) = futures_util::StreamExt::next(&mut pending).await {
            *statuses.entry(resp.unwrap().status().as_u16()).or_default() += 1;
        }
        statuses
    });
    let mut latencies = honest.type_and_measure(100).await;
    let statuses = flood.await.unwrap();
    let took = t0.elapsed();
    honest.report("during a flood of 3,000 room creations", &mut latencies);
    println!("3,000 creation requests from one address in {took:?}: {statuses:?}");
    let created = statuses.get(&201).copied().unwrap_or(0);
    let allowed = 60 + (took.as_secs_f64() * 0.5).ceil() as usize;
    assert!(created <= allowed, "{created} rooms created, at most {allowed} allowed");
    assert!(created >= 60, "the burst is honoured: {created}");
    assert_eq!(created + statuses.get(&429).copied().unwrap_or(0), 3000, "{statuses:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_from_one_address_is_capped_while_others_keep_editing() {
    // A long header timeout, so the flood's silent connections stay for the whole test.
    let server = TestServer::start_with(&[
        "--max-connections-per-address",
        "500",
        "--header-read-timeout-secs",
        "60",
    ])
    .unwrap();
    let session = server.create_session("honest").await.unwrap();
    let honest = Honest::join(&server, &session).await;
    let port = server.port;
    let flood = tokio::spawn(async move {
        let mut conns = Vec::new();
        for _ in 0..600 {
            conns.push(tcp_from("127.0.0.2", port).await);
        }
        // A refused connection is answered at once; an admitted one hears nothing.
        // The answer's head and body may come in separate segments: read until the server
        // closes (a refusal says `connection: close`) or the time is up.
        let answers = futures_util::future::join_all(conns.iter_mut().map(|s| async move {
            let mut got = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut got)).await;
            (!got.is_empty()).then(|| String::from_utf8_lossy(&got).into_owned())
        }))
        .await;
        (conns, answers)
    });
    let mut latencies = honest.type_and_measure(100).await;
    let (_conns, answers) = flood.await.unwrap();
    honest.report("during a flood of 600 connections from one address", &mut latencies);
    let refused: Vec<&String> = answers.iter().flatten().collect();
    println!(
        "one address opened 600 connections: {} held, {} refused",
        600 - refused.len(),
        refused.len()
    );
    assert_eq!(refused.len(), 100);
    for answer in refused {
        assert!(
            answer.contains(" 429 ") && answer.contains("max_connections_per_address"),
            "{answer}"
        );
    }
    // Another address is unaffected.
    assert_eq!(request_from("127.0.0.1", port, LIVEZ).await.0, 200);
}

#[tokio::test]
async fn shutdown_does_not_wait_for_dangling_requests() {
    let mut server = TestServer::start_with(&["--header-read-timeout-secs", "60"]).unwrap();
    let mut dangling = tcp_from("127.0.0.1", server.port).await;
    dangling
        .write_all(b"GET /livez HTTP/1.1\r\nhost: mesh\r\n")
        .await
        .unwrap();
    // Make sure the server has the connection before it is told to stop.
    assert_eq!(request_from("127.0.0.1", server.port, LIVEZ).await.0, 200);
    let t0 = Instant::now();
    let code = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap()
        .unwrap();
    let took = t0.elapsed();
    println!("stopped in {took:?} with a half-sent request open");
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(15), "shutdown waited {took:?}");
    assert!(read_to_close(&mut dangling, Duration::from_secs(1)).await.is_some());
}
