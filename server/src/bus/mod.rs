//! The bus between nodes (`--bus redis://...`): one Redis stream per room carries what one
//! node accepted to the others (`docs/decisions/017-redis-bus.md`). The store stays the
//! source of truth; the bus is the fast path. Every update entry carries the store's
//! sequence numbers, so a node that misses one (a gap, a Redis outage, a trimmed read
//! position) notices and resyncs the room from the store.
//!
//! Without `--bus` nothing here runs: a room's turn checks one `Option` and does no more.

pub mod entry;
pub mod seqs;
pub mod slots;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use mesh_protocol::RoomId;
use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Value};
use tokio::sync::mpsc;

pub use entry::{BusEntry, NodeId};

use crate::room::actor::Command;

/// Entries a node may queue for publishing before it drops new ones (and the other nodes
/// resync by the gap they see): a burst of every loaded room's turns fits.
pub const PUBLISH_QUEUE: usize = 8192;

/// Entries one `XREAD` returns at most: one read stays bounded in memory and time.
pub const READ_COUNT: usize = 256;

/// How long one `XREAD` blocks waiting for entries: short enough that a reader notices its
/// room unloaded, long enough to cost Redis nothing while idle.
pub const READ_BLOCK: Duration = Duration::from_secs(2);

/// How long a command may wait for Redis's answer (beyond a read's block): Redis answers in
/// well under a millisecond on a private network; more means it is gone.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long connecting to Redis may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// How long a reader waits before connecting again after Redis went away (first attempt);
/// doubled up to [`RECONNECT_MAX`].
pub const RECONNECT_FIRST: Duration = Duration::from_millis(100);

/// The longest wait between two reconnection attempts.
pub const RECONNECT_MAX: Duration = Duration::from_secs(2);

/// Entries a stream keeps at most (`XADD ... MAXLEN ~`): a hard bound on what one room can
/// make Redis hold whatever the compaction does; a node behind by more resyncs from the
/// store.
pub const STREAM_MAX_LEN: usize = 10_000;

/// How long entries stay in a stream after the room compacted (`XTRIM MINID ~`): a node
/// reading the stream is never that far behind unless it is resyncing anyway.
pub const STREAM_RETAIN: Duration = Duration::from_secs(60);

/// How long a stream nobody writes to lives (`PEXPIRE`): deleted and idle rooms leave
/// nothing behind in Redis.
pub const STREAM_IDLE_TTL: Duration = Duration::from_secs(24 * 3600);

/// A Redis URL (`redis://[USER:PASSWORD@]HOST:PORT[/DB]`), parsed once. `Display` and
/// `Debug` never show the password.
#[derive(Clone)]
pub struct BusUrl {
    info: redis::ConnectionInfo,
    shown: String,
}

impl BusUrl {
    /// Whether a setting names Redis.
    pub fn is_redis(text: &str) -> bool {
        text.trim().to_ascii_lowercase().starts_with("redis://")
    }
}

impl FromStr for BusUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        if !Self::is_redis(text) {
            return Err("the bus must be a redis://[USER:PASSWORD@]HOST:PORT URL".into());
        }
        // The client's own parse error may quote the input (and its password).
        let info: redis::ConnectionInfo = redis::IntoConnectionInfo::into_connection_info(text).map_err(|_| {
            "the bus URL is not a valid Redis URL; write it as redis://[USER:PASSWORD@]HOST:PORT".to_string()
        })?;
        let host = match info.addr() {
            redis::ConnectionAddr::Tcp(host, port) => format!("{host}:{port}"),
            _ => return Err("the bus URL must name a TCP host and port: redis://HOST:PORT".into()),
        };
        let redis = info.redis_settings();
        let user = redis.username().map(str::to_string).unwrap_or_default();
        let secret = if redis.password().is_some() { ":***" } else { "" };
        let who = if user.is_empty() && secret.is_empty() {
            String::new()
        } else {
            format!("{user}{secret}@")
        };
        let db = match redis.db() {
            0 => String::new(),
            n => format!("/{n}"),
        };
        let shown = format!("redis://{who}{host}{db}");
        Ok(BusUrl { info, shown })
    }
}

impl fmt::Display for BusUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Debug for BusUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The password is a secret: only the redacted form is ever printed.
        f.debug_tuple("BusUrl").field(&self.shown).finish()
    }
}

/// What a room's reader tells its room.
#[derive(Debug)]
pub enum BusEvent {
    /// Entries other nodes published, in stream order, already checked.
    Entries(Vec<BusEntry>),
    /// The reader lost Redis and is back (or never had it): what was published meanwhile
    /// may be gone, so the room resyncs from the store.
    Reconnected,
}

enum Outgoing {
    Entry(RoomId, BusEntry),
    Trim(RoomId),
}

/// This node's side of the bus.
pub struct Bus {
    node: NodeId,
    url: BusUrl,
    client: redis::Client,
    publish: mpsc::Sender<Outgoing>,
    /// The connection for short commands (position, health), opened on first use and
    /// dropped when it fails.
    conn: tokio::sync::Mutex<Option<MultiplexedConnection>>,
}

fn stream_key(room: RoomId) -> String {
    format!("mesh:room:{room}")
}

fn config(block: Duration) -> AsyncConnectionConfig {
    AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT + block))
}

impl Bus {
    /// Starts this node's publisher. Redis need not be up yet: the node starts, `/readyz`
    /// says the bus is unreachable, and rooms resync once it answers.
    pub fn start(url: BusUrl) -> anyhow::Result<Arc<Bus>> {
        let client = redis::Client::open(url.info.clone()).map_err(|e| anyhow::anyhow!("bus {url}: {e}"))?;
        let (publish, rx) = mpsc::channel(PUBLISH_QUEUE);
        let bus = Arc::new(Bus {
            node: NodeId::random(),
            url,
            client,
            publish,
            conn: tokio::sync::Mutex::new(None),
        });
        tokio::spawn(publisher(bus.client.clone(), rx));
        tracing::info!(bus = %bus.url, node = %bus.node, "bus: Redis streams, one per room");
        Ok(bus)
    }

    /// This node's id.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The URL, redacted.
    pub fn url(&self) -> &BusUrl {
        &self.url
    }

    async fn connection(&self) -> redis::RedisResult<MultiplexedConnection> {
        let mut slot = self.conn.lock().await;
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let c = self
            .client
            .get_multiplexed_async_connection_with_config(&config(Duration::ZERO))
            .await?;
        *slot = Some(c.clone());
        Ok(c)
    }

    async fn command(&self, cmd: &redis::Cmd) -> redis::RedisResult<Value> {
        let mut c = self.connection().await?;
        let result = cmd.query_async::<Value>(&mut c).await;
        if result.is_err() {
            *self.conn.lock().await = None;
        }
        result
    }

    /// Whether Redis answers (for `/readyz`).
    pub async fn ping(&self) -> Result<(), String> {
        match self.command(&redis::cmd("PING")).await {
            Ok(_) => Ok(()),
            Err(e) => Err(format!("bus unavailable ({}): {e}", self.url)),
        }
    }

    /// The id of the newest entry of a room's stream (`0-0` when it has none): taken before
    /// the room loads from the store, so its reader starts there and misses nothing
    /// published between the load and the first read.
    pub async fn position(&self, room: RoomId) -> Option<String> {
        let mut cmd = redis::cmd("XREVRANGE");
        cmd.arg(stream_key(room)).arg("+").arg("-").arg("COUNT").arg(1);
        match self.command(&cmd).await {
            Ok(value) => Some(
                parse_entries(value)
                    .last()
                    .map_or_else(|| "0-0".to_string(), |(id, _)| id.clone()),
            ),
            Err(e) => {
                tracing::warn!(room = %room, bus = %self.url, error = %e, "bus: cannot read the stream's position; the room resyncs once Redis answers");
                None
            }
        }
    }

    /// Queues an entry for the room's stream; never waits. A full queue drops it (counted):
    /// the other nodes see the gap and resync from the store.
    pub fn publish(&self, room: RoomId, entry: BusEntry) {
        if self.publish.try_send(Outgoing::Entry(room, entry)).is_err() {
            metrics::counter!("mesh_bus_publish_dropped_total").increment(1);
        }
    }

    /// Trims the room's stream to what was published in the last [`STREAM_RETAIN`]: called
    /// after the room compacted into the store.
    pub fn trim(&self, room: RoomId) {
        let _ = self.publish.try_send(Outgoing::Trim(room));
    }

    /// Starts the reader of a room's stream from `start` (its [`Bus::position`] before the
    /// load); it hands what other nodes publish to the room and stops with the room.
    pub fn follow(
        self: &Arc<Self>,
        room: RoomId,
        start: Option<String>,
        to: mpsc::WeakSender<Command>,
    ) -> tokio::task::JoinHandle<()> {
        let bus = self.clone();
        tokio::spawn(async move { bus.read_loop(room, start, to).await })
    }

    async fn read_loop(&self, room: RoomId, mut last: Option<String>, to: mpsc::WeakSender<Command>) {
        let key = stream_key(room);
        let mut backoff = RECONNECT_FIRST;
        // Whether the room must resync when the connection is (re)made.
        let mut must_resync = last.is_none();
        loop {
            let conn = self
                .client
                .get_multiplexed_async_connection_with_config(&config(READ_BLOCK))
                .await;
            let mut conn = match conn {
                Ok(c) => c,
                Err(_) => {
                    must_resync = true;
                    if to.upgrade().is_none() {
                        return;
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(RECONNECT_MAX);
                    continue;
                }
            };
            backoff = RECONNECT_FIRST;
            if must_resync {
                // Read from the newest entry now; the resync covers everything before it.
                let mut cmd = redis::cmd("XREVRANGE");
                cmd.arg(&key).arg("+").arg("-").arg("COUNT").arg(1);
                match cmd.query_async::<Value>(&mut conn).await {
                    Ok(v) => {
                        last = Some(
                            parse_entries(v)
                                .last()
                                .map_or_else(|| "0-0".into(), |(id, _)| id.clone()),
                        )
                    }
                    Err(_) => continue,
                }
                let Some(tx) = to.upgrade() else { return };
                if tx.send(Command::Bus(BusEvent::Reconnected)).await.is_err() {
                    return;
                }
            }
            loop {
                let from = last.clone().unwrap_or_else(|| "0-0".into());
                let mut cmd = redis::cmd("XREAD");
                cmd.arg("COUNT")
                    .arg(READ_COUNT)
                    .arg("BLOCK")
                    .arg(READ_BLOCK.as_millis() as u64)
                    .arg("STREAMS")
                    .arg(&key)
                    .arg(&from);
                let value = match cmd.query_async::<Value>(&mut conn).await {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::warn!(room = %room, bus = %self.url, error = %e, "bus: lost Redis; the room resyncs from the store when it is back");
                        metrics::counter!("mesh_bus_read_errors_total").increment(1);
                        must_resync = true;
                        break;
                    }
                };
                let Some(tx) = to.upgrade() else { return };
                let streams = parse_read(value);
                let mut entries = Vec::new();
                for (id, fields) in streams {
                    if let Some(ms) = id.split('-').next().and_then(|ms| ms.parse::<u64>().ok()) {
                        let lag = crate::store::sqlite::now_ms().saturating_sub(ms);
                        metrics::histogram!("mesh_bus_lag_seconds").record(lag as f64 / 1000.0);
                    }
                    last = Some(id);
                    match BusEntry::from_fields(fields.iter().map(|(k, v)| (k.as_slice(), v.as_slice()))) {
                        Ok(entry) if entry.node() == self.node => {}
                        Ok(entry) => entries.push(entry),
                        Err(e) => {
                            metrics::counter!("mesh_bus_bad_entries_total").increment(1);
                            tracing::warn!(room = %room, error = %e, "bus: an entry was refused");
                        }
                    }
                }
                if !entries.is_empty() {
                    metrics::counter!("mesh_bus_received_total").increment(entries.len() as u64);
                    if tx.send(Command::Bus(BusEvent::Entries(entries))).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// Publishes queued entries in order, each connection failure counted; entries that cannot
/// be published are dropped (the other nodes see the gap and resync).
async fn publisher(client: redis::Client, mut rx: mpsc::Receiver<Outgoing>) {
    let mut conn: Option<MultiplexedConnection> = None;
    let mut batch = Vec::new();
    while rx.recv_many(&mut batch, READ_COUNT).await > 0 {
        if conn.is_none() {
            conn = client
                .get_multiplexed_async_connection_with_config(&config(Duration::ZERO))
                .await
                .ok();
        }
        let Some(c) = conn.as_mut() else {
            metrics::counter!("mesh_bus_publish_errors_total").increment(batch.len() as u64);
            batch.clear();
            continue;
        };
        let mut pipe = redis::pipe();
        let (mut published, now) = (0u64, crate::store::sqlite::now_ms());
        for out in batch.drain(..) {
            match out {
                Outgoing::Entry(room, entry) => {
                    let key = stream_key(room);
                    let cmd = pipe
                        .cmd("XADD")
                        .arg(&key)
                        .arg("MAXLEN")
                        .arg("~")
                        .arg(STREAM_MAX_LEN)
                        .arg("*");
                    for (name, value) in entry.to_fields() {
                        cmd.arg(name).arg(value);
                    }
                    pipe.cmd("PEXPIRE")
                        .arg(&key)
                        .arg(STREAM_IDLE_TTL.as_millis() as u64)
                        .ignore();
                    published += 1;
                }
                Outgoing::Trim(room) => {
                    let min = now.saturating_sub(STREAM_RETAIN.as_millis() as u64);
                    pipe.cmd("XTRIM")
                        .arg(stream_key(room))
                        .arg("MINID")
                        .arg("~")
                        .arg(format!("{min}-0"))
                        .ignore();
                }
            }
        }
        match pipe.query_async::<Value>(c).await {
            Ok(_) => metrics::counter!("mesh_bus_published_total").increment(published),
            Err(e) => {
                tracing::warn!(error = %e, "bus: cannot publish; the other nodes resync from the store");
                metrics::counter!("mesh_bus_publish_errors_total").increment(published.max(1));
                conn = None;
            }
        }
    }
}

type RawEntry = (String, Vec<(Vec<u8>, Vec<u8>)>);

/// Entries of an `XREAD` reply (RESP2 arrays or a RESP3 map); anything malformed is skipped.
fn parse_read(value: Value) -> Vec<RawEntry> {
    match value {
        Value::Array(streams) => streams
            .into_iter()
            .flat_map(|s| match s {
                Value::Array(mut pair) if pair.len() == 2 => parse_entries(pair.pop().unwrap_or(Value::Nil)),
                _ => Vec::new(),
            })
            .collect(),
        Value::Map(streams) => streams.into_iter().flat_map(|(_, v)| parse_entries(v)).collect(),
        _ => Vec::new(),
    }
}

/// Entries of an `XRANGE`-shaped reply: `[[id, [field, value, ...]], ...]`.
fn parse_entries(value: Value) -> Vec<RawEntry> {
    let Value::Array(items) = value else { return Vec::new() };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let Value::Array(mut pair) = item else { continue };
        if pair.len() != 2 {
            continue;
        }
        let fields = pair.pop().unwrap_or(Value::Nil);
        let id = match pair.pop() {
            Some(Value::BulkString(b)) => String::from_utf8(b).ok(),
            Some(Value::SimpleString(s)) => Some(s),
            _ => None,
        };
        let Some(id) = id.filter(|id| id.len() <= 41 && id.bytes().all(|b| b.is_ascii_digit() || b == b'-')) else {
            continue;
        };
        let mut kv = Vec::new();
        match fields {
            Value::Array(flat) => {
                let mut it = flat.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    if let (Value::BulkString(k), Value::BulkString(v)) = (k, v) {
                        kv.push((k, v));
                    }
                }
            }
            Value::Map(pairs) => {
                for (k, v) in pairs {
                    if let (Value::BulkString(k), Value::BulkString(v)) = (k, v) {
                        kv.push((k, v));
                    }
                }
            }
            _ => continue,
        }
        out.push((id, kv));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bus_url_never_shows_its_password() {
        let url: BusUrl = "redis://mesh:r3d1s-pw@cache.example.test:6380/2".parse().unwrap();
        assert_eq!(url.to_string(), "redis://mesh:***@cache.example.test:6380/2");
        assert!(!format!("{url:?}").contains("r3d1s-pw"));
        let plain: BusUrl = "redis://127.0.0.1:6379".parse().unwrap();
        assert_eq!(plain.to_string(), "redis://127.0.0.1:6379");
        let e = "redis://mesh:r3d1s-pw@[bad".parse::<BusUrl>().unwrap_err();
        assert!(!e.contains("r3d1s-pw"), "{e}");
        assert!("nats://x".parse::<BusUrl>().is_err());
    }

    #[test]
    fn malformed_replies_yield_no_entries_never_a_panic() {
        assert!(parse_read(Value::Nil).is_empty());
        assert!(parse_read(Value::Array(vec![Value::Int(3)])).is_empty());
        let entry = Value::Array(vec![
            Value::BulkString(b"1-0".to_vec()),
            Value::Array(vec![Value::BulkString(b"k".to_vec())]),
        ]);
        let forged_id = Value::Array(vec![Value::BulkString(b"../x".to_vec()), Value::Array(vec![])]);
        let got = parse_entries(Value::Array(vec![entry, forged_id, Value::Okay]));
        assert_eq!(got.len(), 1, "the odd field is dropped, the forged id skipped");
        assert!(got[0].1.is_empty());
    }
}
