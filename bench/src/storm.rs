//! The join storm: many clients join one large room at the same moment, as when a class or
//! a meeting opens the same link. Each server gets the same room (a `Y.Text` of the given
//! size, typed in by one seeding client that stays connected, so servers that unload idle
//! documents keep it) and the same storm: every client opens its socket at once, sends its
//! empty state vector and waits for the server's SyncStep2. Measured: time from the storm's
//! start to each client's SyncStep2 (p50, p99, max), the server's RSS before and at its
//! peak during the storm, and the server CPU the storm cost.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Barrier;
use tokio::time::{sleep, timeout, Instant};
use tokio_tungstenite::connect_async_with_config;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use yrs::{Doc, GetString, ReadTxn, StateVector, Text, Transact};

use crate::procstat;
use crate::servers::{Programs, Room, ServerKind, ServerProcess};
use crate::wire::Incoming;

/// The seeding client types the room's text in updates of this many bytes: well under every
/// server's message limit, and few enough messages for a quick seed.
const SEED_CHUNK: usize = 64 * 1024;
/// Longest wait for the seeded room to reach its size on the server.
const SEED_TIMEOUT: Duration = Duration::from_secs(60);
/// Longest wait for one storm client to be synced: the storm fails past it.
const SYNC_TIMEOUT: Duration = Duration::from_secs(60);
/// Interval between two readings of the server's RSS during the storm.
const RSS_POLL: Duration = Duration::from_millis(5);
/// What the room's text is made of (ASCII: one byte, one Yjs clock per character).
const LINE: &str = "fn storm() { let joined = everyone_at_once(); assert!(joined); }\n";

/// What one server did in the storm.
#[derive(Debug, serde::Serialize)]
pub struct StormReport {
    /// The server.
    pub server: &'static str,
    /// Clients that joined.
    pub clients: usize,
    /// Bytes of the room's document as a new client receives it (its SyncStep2's update).
    pub state_bytes: usize,
    /// Time to synced, milliseconds: p50, p99, max.
    pub synced_ms: [f64; 3],
    /// Server RSS before the storm and at its highest during it, MiB.
    pub rss_mib: [f64; 2],
    /// Server CPU time the storm took, milliseconds.
    pub cpu_ms: f64,
}

/// Runs the storm against `kind`: `clients` joiners into a room of `room_bytes`.
pub async fn run(
    kind: ServerKind,
    programs: &Programs,
    clients: usize,
    room_bytes: usize,
) -> anyhow::Result<StormReport> {
    let server = ServerProcess::start(kind, programs).await?;
    let room = server.create_rooms(1).await?.remove(0);
    let figures = through(&[&server], &room, clients, room_bytes).await?;
    let node = &figures.nodes[0];
    Ok(StormReport {
        server: kind.name(),
        clients,
        state_bytes: figures.state_bytes,
        synced_ms: figures.synced_ms(None),
        rss_mib: [node.rss_before_kib as f64 / 1024.0, node.peak_kib as f64 / 1024.0],
        cpu_ms: node.cpu.as_secs_f64() * 1000.0,
    })
}

/// What one node did in a storm.
pub(crate) struct NodeStorm {
    /// RSS when the storm started.
    pub rss_before_kib: u64,
    /// The highest RSS during the storm: polled, and the kernel's high-water mark (reset
    /// when the storm starts).
    pub peak_kib: u64,
    /// CPU time the node used from the storm's start to the last client synced.
    pub cpu: Duration,
}

/// What a storm measured, node by node.
pub(crate) struct StormFigures {
    /// Bytes of the room's state as a new client receives it.
    pub state_bytes: usize,
    /// Per client: the node it joined through, its time to synced in milliseconds, and the
    /// bytes of state it received.
    pub synced: Vec<(usize, f64, usize)>,
    /// Per node, in the order given.
    pub nodes: Vec<NodeStorm>,
    /// CPU time the bench (its joining clients) used over the same time as the nodes'.
    pub bench_cpu: Duration,
}

impl StormFigures {
    /// Time to synced (p50, p99, max) of every client, or of those of one node.
    pub fn synced_ms(&self, node: Option<usize>) -> [f64; 3] {
        let times: Vec<f64> = self
            .synced
            .iter()
            .filter(|(n, _, _)| node.is_none_or(|node| *n == node))
            .map(|(_, ms, _)| *ms)
            .collect();
        [
            mesh_bench::percentile(&times, 0.5),
            mesh_bench::percentile(&times, 0.99),
            mesh_bench::percentile(&times, 1.0),
        ]
    }
}

/// The storm through one server or several nodes of a cluster sharing the room: seeds
/// `room` (whose URL names the first node) to `room_bytes` through the first node, makes
/// sure every node holds it (a client stays on each, so none unloads it), then `clients`
/// join at once, client `i` through node `i % nodes.len()`.
pub(crate) async fn through(
    nodes: &[&ServerProcess],
    room: &Room,
    clients: usize,
    room_bytes: usize,
) -> anyhow::Result<StormFigures> {
    let first = nodes.first().context("a storm needs a server")?;
    let _seeder = seed(room, room_bytes).await.context("seeding the room")?;
    let mut keepers = Vec::with_capacity(nodes.len());
    let mut state_bytes = 0;
    for node in nodes {
        let (socket, size) = wait_for_size(&room.at(node.addr()), room_bytes)
            .await
            .with_context(|| format!("checking the seeded room through {}", node.addr()))?;
        keepers.push(socket);
        state_bytes = state_bytes.max(size);
    }
    eprintln!(
        "[{}] room of {} KiB ready on {} node(s); {clients} clients join at once",
        first.kind().name(),
        state_bytes / 1024,
        nodes.len()
    );
    sleep(Duration::from_millis(500)).await;
    let mut figures = Vec::with_capacity(nodes.len());
    let mut cpu_before = Vec::with_capacity(nodes.len());
    for node in nodes {
        // From here the kernel's high-water mark counts the storm only, not the seeding or
        // the room's load.
        procstat::reset_peak(node.pid())?;
        let rss = node.memory()?.rss_kib;
        figures.push(NodeStorm {
            rss_before_kib: rss,
            peak_kib: rss,
            cpu: Duration::ZERO,
        });
        cpu_before.push(node.cpu_time()?);
    }

    let bench_before = procstat::cpu_time(None)?;
    let start = Arc::new(Barrier::new(clients + 1));
    let mut joins = tokio::task::JoinSet::new();
    for i in 0..clients {
        let node = i % nodes.len();
        let (room, start) = (room.at(nodes[node].addr()), start.clone());
        joins.spawn(async move {
            start.wait().await;
            let began = Instant::now();
            let (socket, size) = timeout(SYNC_TIMEOUT, join(&room))
                .await
                .context("no SyncStep2 in time")??;
            Ok::<_, anyhow::Error>((node, began.elapsed(), size, socket))
        });
    }
    start.wait().await;
    let mut synced = Vec::with_capacity(clients);
    // Sockets stay open until every client is in: a server holds what it holds for them.
    let mut sockets = Vec::with_capacity(clients);
    loop {
        tokio::select! {
            joined = joins.join_next() => match joined {
                Some(result) => {
                    let (node, took, size, socket) = result.context("a storm client panicked")??;
                    synced.push((node, took.as_secs_f64() * 1000.0, size));
                    sockets.push(socket);
                }
                None => break,
            },
            _ = sleep(RSS_POLL) => {
                for (node, f) in nodes.iter().zip(&mut figures) {
                    f.peak_kib = f.peak_kib.max(node.memory()?.rss_kib);
                }
            }
        }
    }
    for ((node, f), before) in nodes.iter().zip(&mut figures).zip(cpu_before) {
        // The kernel's high-water mark catches a peak between two readings.
        f.peak_kib = f.peak_kib.max(node.memory()?.peak_kib);
        f.cpu = node.cpu_time()?.saturating_sub(before);
    }
    let bench_cpu = procstat::cpu_time(None)?.saturating_sub(bench_before);
    drop(sockets);
    Ok(StormFigures {
        state_bytes,
        synced,
        nodes: figures,
        bench_cpu,
    })
}

/// How much of a large frame a joiner reads at a time. A joiner looks at the head of the
/// state it receives and reads the rest through this much buffer, instead of holding the
/// whole message: 150 joiners each assembling 4 MiB cost the bench more (fresh pages for
/// 600 MiB, faulted in and freed) than the servers under test spent on the storm, on the
/// same two cores.
const JOIN_CHUNK: usize = 64 * 1024;
/// The most bytes a message header (document name, tags, length) takes at the head of a
/// frame.
const HEAD_BYTES: usize = 128;

/// Joins `room` as a storm client: a WebSocket handshake over plain TCP, the framing's hello
/// and an empty state vector, then frames read until the SyncStep2; returns the socket
/// (held open by the caller) and the size of the state received. Frames up to
/// [`JOIN_CHUNK`] are read whole and parsed as any client would; a larger one is parsed
/// from its head (a SyncStep2 names its length there) and the rest read through the chunk.
async fn join(room: &Room) -> anyhow::Result<(TcpStream, usize)> {
    let rest = room.url.strip_prefix("ws://").context("a storm joins over ws://")?;
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    let mut tcp = TcpStream::connect(host).await?;
    tcp.set_nodelay(true)?;
    let key: [u8; 16] = rand::random();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        base64_of(&key)
    );
    tcp.write_all(request.as_bytes()).await?;
    // The response head, byte by byte: nothing after it may be taken from the socket here.
    let mut head = Vec::with_capacity(256);
    while !head.ends_with(b"\r\n\r\n") {
        anyhow::ensure!(head.len() < 16 * 1024, "the upgrade response head is too long");
        head.push(tcp.read_u8().await?);
    }
    let status = String::from_utf8_lossy(&head);
    anyhow::ensure!(
        status.starts_with("HTTP/1.1 101"),
        "the server refused the upgrade: {}",
        status.lines().next().unwrap_or_default()
    );
    if let Some(hello) = room.framing.hello() {
        write_frame(&mut tcp, &hello).await?;
    }
    write_frame(&mut tcp, &room.framing.sync_step1(StateVector::default())).await?;
    let mut chunk = vec![0u8; JOIN_CHUNK];
    loop {
        let (opcode, len) = read_frame_header(&mut tcp).await?;
        if opcode == 0x8 {
            bail!("the server closed the socket before the SyncStep2");
        }
        if len > JOIN_CHUNK {
            let head_len = HEAD_BYTES.min(len);
            tcp.read_exact(&mut chunk[..head_len]).await?;
            let step2 = room.framing.step2_len(&chunk[..head_len]);
            let mut left = len - head_len;
            while left > 0 {
                let n = left.min(JOIN_CHUNK);
                tcp.read_exact(&mut chunk[..n]).await?;
                left -= n;
            }
            match step2 {
                Some(size) => return Ok((tcp, size)),
                None => continue,
            }
        }
        tcp.read_exact(&mut chunk[..len]).await?;
        if opcode != 0x2 {
            // Pings and the like: a storm is over before any server expects a pong.
            continue;
        }
        let (mut step2, mut asked) = (None, false);
        room.framing.parse(&chunk[..len], |m| match m {
            Incoming::SyncStep2(update) => step2 = Some(update.len()),
            Incoming::SyncStep1(_) => asked = true,
            Incoming::Update(_) => {}
        });
        if asked {
            let empty = Doc::new().transact().encode_state_as_update_v1(&StateVector::default());
            write_frame(&mut tcp, &room.framing.sync_step2(empty)).await?;
        }
        if let Some(size) = step2 {
            return Ok((tcp, size));
        }
    }
}

/// Reads a server frame's header (unmasked, FIN assumed: the servers send whole messages):
/// its opcode and payload length.
async fn read_frame_header(tcp: &mut TcpStream) -> anyhow::Result<(u8, usize)> {
    let mut two = [0u8; 2];
    tcp.read_exact(&mut two).await?;
    anyhow::ensure!(two[1] & 0x80 == 0, "a server frame is masked");
    let len = match two[1] & 0x7f {
        126 => usize::from(tcp.read_u16().await?),
        127 => usize::try_from(tcp.read_u64().await?)?,
        n => usize::from(n),
    };
    Ok((two[0] & 0x0f, len))
}

/// Writes `payload` as one masked binary frame (a client's frames are masked).
async fn write_frame(tcp: &mut TcpStream, payload: &[u8]) -> anyhow::Result<()> {
    tcp.write_all(&mesh_testkit::wsframe::client_frame(true, 0x2, payload, rand::random()))
        .await?;
    Ok(())
}

/// Standard base64 (with padding) of `bytes`, for the handshake's key.
fn base64_of(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= group.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 0x3f) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens a socket to `room`, sends an empty state vector and waits for the SyncStep2;
/// returns the socket with the size of the state received.
async fn sync(room: &Room) -> anyhow::Result<(Socket, usize)> {
    let (mut socket, _) = connect_async_with_config(room.url.as_str(), None, true).await?;
    if let Some(hello) = room.framing.hello() {
        socket.feed(WsMessage::binary(hello)).await?;
    }
    socket
        .send(WsMessage::binary(room.framing.sync_step1(StateVector::default())))
        .await?;
    loop {
        let Some(msg) = socket.next().await else {
            bail!("the server closed the socket before the SyncStep2");
        };
        if let WsMessage::Binary(bytes) = msg? {
            let (mut step2, mut asked) = (None, false);
            room.framing.parse(&bytes, |m| match m {
                Incoming::SyncStep2(update) => step2 = Some(update.len()),
                Incoming::SyncStep1(_) => asked = true,
                Incoming::Update(_) => {}
            });
            if asked {
                // Our document is empty: the answer is the empty update.
                let empty = Doc::new().transact().encode_state_as_update_v1(&StateVector::default());
                socket.send(WsMessage::binary(room.framing.sync_step2(empty))).await?;
            }
            if let Some(size) = step2 {
                return Ok((socket, size));
            }
        }
    }
}

/// Types `room_bytes` of text into the room's `Y.Text` (the bench's root) from one client,
/// which is returned: it stays connected so no server unloads the document meanwhile.
async fn seed(room: &Room, room_bytes: usize) -> anyhow::Result<Socket> {
    let (mut socket, _) = sync(room).await?;
    let doc = Doc::new();
    let text = doc.get_or_insert_text(crate::client::TEXT_ROOT);
    let content = LINE.repeat(room_bytes / LINE.len() + 1);
    let mut typed = 0;
    while typed < room_bytes {
        let end = (typed + SEED_CHUNK).min(room_bytes);
        let mut txn = doc.transact_mut();
        text.insert(&mut txn, typed as u32, &content[typed..end]);
        let update = txn.encode_update_v1();
        drop(txn);
        socket.send(WsMessage::binary(room.framing.update(&update))).await?;
        typed = end;
    }
    debug_assert_eq!(text.get_string(&doc.transact()).len(), room_bytes);
    Ok(socket)
}

/// Waits until a new client of `room` receives at least `room_bytes` of state; returns that
/// client's socket and the size it received.
async fn wait_for_size(room: &Room, room_bytes: usize) -> anyhow::Result<(Socket, usize)> {
    let deadline = Instant::now() + SEED_TIMEOUT;
    loop {
        let (socket, size) = timeout(SYNC_TIMEOUT, sync(room)).await.context("no SyncStep2")??;
        if size >= room_bytes {
            return Ok((socket, size));
        }
        if Instant::now() > deadline {
            bail!("the room holds {size} bytes after {SEED_TIMEOUT:?}, not {room_bytes}");
        }
        sleep(Duration::from_millis(200)).await;
    }
}

/// The storm's table, servers side by side.
pub fn render(reports: &[Result<StormReport, String>], markdown: bool) -> String {
    let head = [
        "server",
        "clients",
        "state KiB",
        "synced p50 ms",
        "synced p99 ms",
        "synced max ms",
        "RSS before MiB",
        "RSS peak MiB",
        "server CPU ms",
    ];
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| match r {
            Ok(r) => vec![
                r.server.to_string(),
                r.clients.to_string(),
                (r.state_bytes / 1024).to_string(),
                format!("{:.0}", r.synced_ms[0]),
                format!("{:.0}", r.synced_ms[1]),
                format!("{:.0}", r.synced_ms[2]),
                format!("{:.1}", r.rss_mib[0]),
                format!("{:.1}", r.rss_mib[1]),
                format!("{:.0}", r.cpu_ms),
            ],
            Err(e) => vec![format!("failed: {e}")],
        })
        .collect();
    let mut out = String::new();
    if markdown {
        out.push_str(&format!(
            "| {} |\n|{}\n",
            head.join(" | "),
            " ---: |".repeat(head.len())
        ));
        for r in &rows {
            out.push_str(&format!("| {} |\n", r.join(" | ")));
        }
    } else {
        let widths: Vec<usize> = (0..head.len())
            .map(|i| {
                rows.iter()
                    .filter_map(|r| r.get(i))
                    .map(String::len)
                    .chain([head[i].len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for r in std::iter::once(head.iter().map(|s| s.to_string()).collect::<Vec<_>>()).chain(rows) {
            let cells: Vec<String> = r
                .iter()
                .enumerate()
                .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
    }
    out
}
