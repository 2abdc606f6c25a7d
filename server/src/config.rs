//! Configuration: defaults, then a TOML file, then `MESH_*` environment variables, then
//! command-line flags — each later source overriding the earlier ones.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

use crate::client_addr::{ForwardedHeader, TrustedProxies};
use crate::store::sqlite::Durability;

/// The default address: loopback only, so a first start exposes nothing to the network.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7420";

/// How long join links stay valid by default: a working week.
pub const DEFAULT_TOKEN_TTL_HOURS: u64 = 7 * 24;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Command-line flags of `mesh-server`. Each also reads a `MESH_*` variable.
#[derive(Debug, Default, Parser)]
#[command(
    name = "mesh-server",
    version,
    about = "The mesh sync server: collaborative rooms over the Yjs protocol."
)]
pub struct Args {
    /// A TOML configuration file (keys as the long flags, with underscores).
    #[arg(long, env = "MESH_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:7420]; use port 0 for any free port.
    #[arg(long, env = "MESH_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Directory for the SQLite database [default: the XDG data dir, e.g. ~/.local/share/mesh].
    #[arg(long, env = "MESH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Where rooms are stored: `sqlite` (one file in the data directory) or a Postgres URL,
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE`, shared by every server given it (prefer
    /// the variable or the config file for a URL with a password: a flag shows in the
    /// process list) [default: sqlite].
    #[arg(long, env = "MESH_STORE", value_name = "sqlite|URL", hide_env_values = true)]
    pub store: Option<String>,
    /// The bus between nodes that share a room: a Redis URL, `redis://[USER:PASSWORD@]HOST:PORT`
    /// (needs a Postgres store, shared by every node given it) [default: none, one node].
    #[arg(long, env = "MESH_BUS", value_name = "URL", hide_env_values = true)]
    pub bus: Option<String>,
    /// The URL clients reach this server at, used in join links [default: http://LISTEN].
    #[arg(long, env = "MESH_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// What a committed update survives [default: process].
    #[arg(long, env = "MESH_DURABILITY", value_enum)]
    pub durability: Option<Durability>,
    /// Milliseconds: under load, the SQLite store commits at most once per this interval and
    /// the appends arriving meanwhile share the commit (an update is still stored before
    /// anyone sees it); an idle store commits at once; 0 commits as soon as it can
    /// [default: 10].
    #[arg(long, env = "MESH_COMMIT_INTERVAL_MS")]
    pub commit_interval_ms: Option<u64>,
    /// Threads that run connections and rooms [default: the machine's cores less one, at
    /// least 1; the SQLite store's own thread, which also writes what each commit releases,
    /// has the core left].
    #[arg(long, env = "MESH_WORKERS")]
    pub workers: Option<usize>,
    /// How long issued tokens stay valid, in hours [default: 168].
    #[arg(long, env = "MESH_TOKEN_TTL_HOURS")]
    pub token_ttl_hours: Option<u64>,
    /// A token that lets `GET /api/sessions` list every room. Without it, only clients on
    /// loopback may list rooms.
    #[arg(long, env = "MESH_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
    /// Log format [default: text].
    #[arg(long, env = "MESH_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// Which images runs use: `public` (pulled from a registry) or `local` (built by
    /// scripts/build-images) [default: public].
    #[arg(long, env = "MESH_RUN_IMAGES", value_enum)]
    pub run_images: Option<RunImages>,
    /// Warm containers kept ready per language once it has run (0 turns the pool off)
    /// [default: 1].
    #[arg(long, env = "MESH_RUN_POOL")]
    pub run_pool: Option<usize>,
    /// Languages to keep warm from the start, e.g. `python,c` [default: none; a language
    /// is warmed after its first run].
    #[arg(long, env = "MESH_RUN_WARM", value_delimiter = ',')]
    pub run_warm: Option<Vec<String>>,
    /// Docker engines runs go to, each sandbox to the least loaded one that answers:
    /// `unix:///path/docker.sock` or `tcp://HOST:PORT` (over TLS, see `--docker-tls-dir`)
    /// [default: `DOCKER_HOST`, else the local socket].
    #[arg(long, env = "MESH_DOCKER_HOSTS", value_delimiter = ',')]
    pub docker_host: Option<Vec<String>>,
    /// The directory with `ca.pem`, `cert.pem` and `key.pem` for the `tcp://` engines
    /// (mutual TLS, Docker's own layout).
    #[arg(long, env = "MESH_DOCKER_TLS_DIR")]
    pub docker_tls_dir: Option<PathBuf>,
    /// A language registry file used instead of the one built in (the format of
    /// images/languages.toml) [default: the built-in registry].
    #[arg(long, env = "MESH_LANGUAGES")]
    pub languages: Option<PathBuf>,
    /// Reverse proxies (IP addresses or CIDR blocks, comma-separated) whose forwarded header
    /// names the client [default: none; every peer is its own client].
    #[arg(long, env = "MESH_TRUSTED_PROXY", value_delimiter = ',')]
    pub trusted_proxy: Option<Vec<String>>,
    /// The header trusted proxies write the client address in [default: x-forwarded-for].
    #[arg(long, env = "MESH_FORWARDED_HEADER", value_enum)]
    pub forwarded_header: Option<ForwardedHeader>,
    /// Seconds a client has to send a request's headers, from connecting or from the previous
    /// response [default: 10].
    #[arg(long, env = "MESH_HEADER_READ_TIMEOUT_SECS")]
    pub header_read_timeout_secs: Option<u64>,
    /// Seconds a REST request may take, its body included [default: 30].
    #[arg(long, env = "MESH_REQUEST_TIMEOUT_SECS")]
    pub request_timeout_secs: Option<u64>,
    /// Seconds from accepting a connection until it must have become a WebSocket; a plain
    /// HTTP connection is closed after its current request then [default: 30].
    #[arg(long, env = "MESH_UPGRADE_TIMEOUT_SECS")]
    pub upgrade_timeout_secs: Option<u64>,
    /// Open connections on the whole server [default: 10000].
    #[arg(long, env = "MESH_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Milliseconds: a connection written less than this long ago gets what the room sends
    /// meanwhile in one write, at most this much later; 0 writes every turn at once
    /// [default: 20].
    #[arg(long, env = "MESH_WRITE_SPACING_MS")]
    pub write_spacing_ms: Option<u64>,
    /// Open connections per client address [default: 2000].
    #[arg(long, env = "MESH_MAX_CONNECTIONS_PER_ADDRESS")]
    pub max_connections_per_address: Option<usize>,
    /// Room socket joins per second per client address [default: 50].
    #[arg(long, env = "MESH_JOIN_RATE")]
    pub join_rate: Option<f64>,
    /// Room socket joins per client address allowed at once above the rate [default: 1000].
    #[arg(long, env = "MESH_JOIN_BURST")]
    pub join_burst: Option<f64>,
    /// Rooms created per second per client address [default: 0.5].
    #[arg(long, env = "MESH_CREATE_RATE")]
    pub create_rate: Option<f64>,
    /// Rooms one client address may create at once above the rate [default: 60].
    #[arg(long, env = "MESH_CREATE_BURST")]
    pub create_burst: Option<f64>,
    /// Rooms created per second on the whole server [default: 20].
    #[arg(long, env = "MESH_CREATE_RATE_GLOBAL")]
    pub create_rate_global: Option<f64>,
    /// Rooms the whole server may create at once above the rate [default: 1000].
    #[arg(long, env = "MESH_CREATE_BURST_GLOBAL")]
    pub create_burst_global: Option<f64>,
    /// The most rooms the server holds; creating more is refused until rooms are deleted
    /// [default: 0, no cap].
    #[arg(long, env = "MESH_MAX_ROOMS")]
    pub max_rooms: Option<u64>,
    /// A token that `POST /api/sessions` must carry (`Authorization: Bearer ...`) to create a
    /// room [default: unset; anyone who reaches the server may create rooms].
    #[arg(long, env = "MESH_CREATE_TOKEN", hide_env_values = true)]
    pub create_token: Option<String>,
    /// Runs at once on this server; more wait in the queue (0 turns runs off) [default: 16].
    #[arg(long, env = "MESH_MAX_RUNS")]
    pub max_runs: Option<usize>,
    /// Debug sessions at once on this server; more wait in the queue [default: 4].
    #[arg(long, env = "MESH_MAX_DEBUG_SESSIONS")]
    pub max_debug_sessions: Option<usize>,
    /// Runs at once in one room; more wait [default: 4].
    #[arg(long, env = "MESH_MAX_RUNS_PER_ROOM")]
    pub max_runs_per_room: Option<usize>,
    /// Runs at once per person (a connection, or a token over REST); more wait [default: 1].
    #[arg(long, env = "MESH_MAX_RUNS_PER_PERSON")]
    pub max_runs_per_person: Option<usize>,
    /// Runs and debug sessions that may wait for a free sandbox on this server; past that
    /// they are refused [default: 64].
    #[arg(long, env = "MESH_RUN_QUEUE")]
    pub run_queue: Option<usize>,
    /// Runs and debug sessions at once across every node of the bus; each node's own caps
    /// still apply, and a sandbox past this waits for a slot (needs `--bus`) [default: no
    /// cluster cap].
    #[arg(long, env = "MESH_CLUSTER_MAX_SANDBOXES")]
    pub cluster_max_sandboxes: Option<usize>,
    /// End a debug session nobody has been attached to for this many seconds [default: 120].
    #[arg(long, env = "MESH_DEBUG_IDLE_SECONDS")]
    pub debug_idle_seconds: Option<u64>,
    /// On SIGTERM, keep serving the open rooms this many seconds while `/readyz` answers 503
    /// "draining" and new joins are refused, so a load balancer stops sending here before
    /// the rooms close and their clients reconnect elsewhere [default: 3].
    #[arg(long, env = "MESH_DRAIN_SECONDS")]
    pub drain_seconds: Option<u64>,
    /// The largest document a room may hold, in bytes of encoded updates [default: 64 MiB].
    #[arg(long, env = "MESH_MAX_DOC_BYTES")]
    pub max_doc_bytes: Option<usize>,
    /// The most files a room may hold [default: 10000].
    #[arg(long, env = "MESH_MAX_FILES")]
    pub max_files: Option<usize>,
    /// Awareness (cursor) updates per second one connection may send [default: 60].
    #[arg(long, env = "MESH_AWARENESS_RATE")]
    pub awareness_rate: Option<f64>,
    /// Awareness updates one connection may send at once above the rate [default: 240].
    #[arg(long, env = "MESH_AWARENESS_BURST")]
    pub awareness_burst: Option<f64>,
    /// Joiners that may wait in one room's lobby for the host's approval [default: 32].
    #[arg(long, env = "MESH_MAX_LOBBY")]
    pub max_lobby: Option<usize>,
    /// Seconds a joiner waits for the host's approval before it is refused [default: 600].
    #[arg(long, env = "MESH_LOBBY_TIMEOUT_SECS")]
    pub lobby_timeout_secs: Option<u64>,
    /// Links one room keeps (working, expired and revoked) [default: 100].
    #[arg(long, env = "MESH_MAX_LINKS")]
    pub max_links: Option<usize>,
    /// Serve TLS (https://, wss://) with this PEM certificate chain; needs --tls-key
    /// [default: unset; plain HTTP, e.g. behind a TLS-terminating reverse proxy].
    #[arg(long, env = "MESH_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, env = "MESH_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Turn accounts on: people sign in with this OpenID Connect provider (its issuer URL;
    /// needs --oidc-client-id and --oidc-client-secret, and --public-url for the redirect URI)
    /// [default: unset; no accounts, names unverified].
    #[arg(long, env = "MESH_OIDC_ISSUER", value_name = "URL")]
    pub oidc_issuer: Option<String>,
    /// This server's client id at the OpenID Connect provider.
    #[arg(long, env = "MESH_OIDC_CLIENT_ID", value_name = "ID")]
    pub oidc_client_id: Option<String>,
    /// This server's client secret at the OpenID Connect provider (prefer the variable or the
    /// config file: a flag shows in the process list).
    #[arg(long, env = "MESH_OIDC_CLIENT_SECRET", value_name = "SECRET", hide_env_values = true)]
    pub oidc_client_secret: Option<String>,
}

/// Which container images runs use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum RunImages {
    /// The public images named in the registry.
    Public,
    /// Images built locally from Debian packages.
    Local,
}

/// The same settings as read from a TOML file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    store: Option<String>,
    bus: Option<String>,
    public_url: Option<String>,
    durability: Option<Durability>,
    commit_interval_ms: Option<u64>,
    workers: Option<usize>,
    token_ttl_hours: Option<u64>,
    admin_token: Option<String>,
    log_format: Option<LogFormat>,
    run_images: Option<RunImages>,
    run_pool: Option<usize>,
    run_warm: Option<Vec<String>>,
    docker_host: Option<Vec<String>>,
    docker_tls_dir: Option<PathBuf>,
    languages: Option<PathBuf>,
    trusted_proxy: Option<Vec<String>>,
    forwarded_header: Option<ForwardedHeader>,
    header_read_timeout_secs: Option<u64>,
    request_timeout_secs: Option<u64>,
    upgrade_timeout_secs: Option<u64>,
    max_connections: Option<usize>,
    write_spacing_ms: Option<u64>,
    max_connections_per_address: Option<usize>,
    join_rate: Option<f64>,
    join_burst: Option<f64>,
    create_rate: Option<f64>,
    create_burst: Option<f64>,
    create_rate_global: Option<f64>,
    create_burst_global: Option<f64>,
    max_rooms: Option<u64>,
    create_token: Option<String>,
    max_runs: Option<usize>,
    max_debug_sessions: Option<usize>,
    max_runs_per_room: Option<usize>,
    max_runs_per_person: Option<usize>,
    run_queue: Option<usize>,
    cluster_max_sandboxes: Option<usize>,
    debug_idle_seconds: Option<u64>,
    drain_seconds: Option<u64>,
    max_doc_bytes: Option<usize>,
    max_files: Option<usize>,
    awareness_rate: Option<f64>,
    awareness_burst: Option<f64>,
    max_lobby: Option<usize>,
    lobby_timeout_secs: Option<u64>,
    max_links: Option<usize>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    oidc_issuer: Option<String>,
    oidc_client_id: Option<String>,
    oidc_client_secret: Option<String>,
}

/// The settings the server runs with.
#[derive(Clone)]
pub struct Settings {
    /// Listen address.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Where rooms are stored.
    pub store: StoreLocation,
    /// The bus between nodes, if any.
    pub bus: Option<crate::bus::BusUrl>,
    /// Sandboxes at once across the nodes of the bus, if capped.
    pub cluster_max_sandboxes: Option<usize>,
    /// Public URL, without a trailing slash; `None` means "derive from the bound address".
    pub public_url: Option<String>,
    /// Store durability.
    pub durability: Durability,
    /// Under load, at most one SQLite commit per this interval.
    pub commit_interval: Duration,
    /// Threads of the async runtime.
    pub workers: usize,
    /// Token lifetime.
    pub token_ttl: Duration,
    /// Admin token for listing rooms.
    pub admin_token: Option<String>,
    /// Log format.
    pub log_format: LogFormat,
    /// Which images runs use.
    pub run_images: RunImages,
    /// Warm containers per language (0: no pool).
    pub run_pool: usize,
    /// Languages warmed from the start.
    pub run_warm: Vec<String>,
    /// The Docker engines runs go to (empty: the default one).
    pub docker_hosts: Vec<crate::engines::EngineAddress>,
    /// The language registry file, when not the built-in one.
    pub languages: Option<PathBuf>,
    /// The HTTP edge: client addresses, timeouts, connection caps, join and creation limits.
    pub edge: EdgeSettings,
    /// Caps on runs and debug sessions, and their queue.
    pub run_limits: crate::admission::Limits,
    /// How long a debug session may go on with nobody attached.
    pub debug_idle: Duration,
    /// How long a SIGTERM'd server goes on serving its rooms while it says "draining".
    pub drain_grace: Duration,
    /// What a room may be made to hold: document size, files, awareness rate.
    pub room_limits: crate::room::core::RoomLimits,
    /// The certificate and key when the server terminates TLS itself.
    pub tls: Option<crate::tls::TlsFiles>,
    /// The OpenID Connect provider, when accounts are on.
    pub oidc: Option<crate::accounts::OidcSettings>,
}

/// Where rooms are stored (`--store`).
#[derive(Debug, Clone, Default)]
pub enum StoreLocation {
    /// One SQLite file in the data directory: the embedded default.
    #[default]
    Sqlite,
    /// A Postgres database, shared by every server given the same URL. Its `Debug` and
    /// `Display` never show the password.
    Postgres(Box<crate::store::postgres::PostgresUrl>),
}

impl StoreLocation {
    /// Parses `sqlite` or a `postgres://` URL; the error names the setting and never echoes
    /// the URL (it may hold a password).
    pub fn parse(text: &str) -> anyhow::Result<StoreLocation> {
        let text = text.trim();
        if text.is_empty() || text.eq_ignore_ascii_case("sqlite") {
            return Ok(StoreLocation::Sqlite);
        }
        if crate::store::postgres::PostgresUrl::is_postgres(text) {
            return text
                .parse()
                .map(|url| StoreLocation::Postgres(Box::new(url)))
                .map_err(|e| anyhow::anyhow!("store: {e}"));
        }
        anyhow::bail!("store must be `sqlite` or a postgres://USER:PASSWORD@HOST:PORT/DATABASE URL")
    }
}

/// Settings of the HTTP edge (see `edge.rs`, `client_addr.rs` and `limits.rs`).
#[derive(Clone)]
pub struct EdgeSettings {
    /// Proxies whose forwarded header names the client.
    pub proxies: TrustedProxies,
    /// Time to send a request's headers.
    pub header_read_timeout: Duration,
    /// Time for a whole REST request.
    pub request_timeout: Duration,
    /// Time from accept until a connection must be a WebSocket.
    pub upgrade_timeout: Duration,
    /// Open connections in total.
    pub max_connections: usize,
    /// How long frames for a connection written a moment ago may wait to share one write.
    pub write_spacing: Duration,
    /// Open connections per client address.
    pub max_connections_per_address: usize,
    /// Joins per second per address.
    pub join_rate: f64,
    /// Join burst per address.
    pub join_burst: f64,
    /// Rooms created per second per address.
    pub create_rate: f64,
    /// Creation burst per address.
    pub create_burst: f64,
    /// Rooms created per second on the server.
    pub create_rate_global: f64,
    /// Creation burst on the server.
    pub create_burst_global: f64,
    /// The most rooms the server holds (`None`: no cap).
    pub max_rooms: Option<u64>,
    /// The token room creation needs, if any (a secret: never printed).
    pub create_token: Option<String>,
}

/// Time to send a request's headers: an honest client sends them in one packet; ten seconds
/// covers a slow mobile link, and a half-sent request holds a connection no longer.
pub const DEFAULT_HEADER_READ_TIMEOUT_SECS: u64 = 10;
/// Time for a whole REST request: the largest body (128 KiB) arrives in it at 4 KiB/s.
pub const DEFAULT_REQUEST_TIMEOUT_SECS: u64 = 30;
/// Time from accept until a connection is a WebSocket (or is done with plain HTTP): an
/// upgrade takes one round trip; a client that does not read our answer cannot hold the
/// connection longer than this.
pub const DEFAULT_UPGRADE_TIMEOUT_SECS: u64 = 30;

impl std::fmt::Debug for EdgeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The creation token is a secret: never print it.
        f.debug_struct("EdgeSettings")
            .field("proxies", &self.proxies)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("upgrade_timeout", &self.upgrade_timeout)
            .field("max_connections", &self.max_connections)
            .field("write_spacing", &self.write_spacing)
            .field("max_connections_per_address", &self.max_connections_per_address)
            .field("join", &(self.join_rate, self.join_burst))
            .field("create", &(self.create_rate, self.create_burst))
            .field("create_global", &(self.create_rate_global, self.create_burst_global))
            .field("max_rooms", &self.max_rooms)
            .field("create_token", &self.create_token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

/// Default pacing of busy connections' writes (see `ws::outbox::Pacer`): one write per
/// connection per frame of a 50 Hz display at most, below what a person notices in someone
/// else's typing. People typing at their own pace are not held back (their keystrokes are
/// further apart); the spacing binds when a room is busy, where it halves the writes.
const DEFAULT_WRITE_SPACING_MS: u64 = 20;
/// The longest pacing accepted: beyond it remote edits would visibly lag.
const MAX_WRITE_SPACING_MS: u64 = 100;

/// Default interval between two SQLite commits under load (see `store::sqlite`).
const DEFAULT_COMMIT_INTERVAL_MS: u64 = 10;
/// The longest commit interval accepted: every update waits up to this long to be stored.
const MAX_COMMIT_INTERVAL_MS: u64 = 100;

fn commit_interval(ms: Option<u64>) -> anyhow::Result<Duration> {
    bounded_ms(
        "commit_interval_ms",
        ms,
        DEFAULT_COMMIT_INTERVAL_MS,
        MAX_COMMIT_INTERVAL_MS,
        "commits as soon as it can",
    )
}

/// The most runtime threads accepted.
const MAX_WORKERS: usize = 1024;

/// Runtime threads: as asked, or the cores less one. Each thread more than the work needs
/// costs wake-ups: a worker that finds a second task ready wakes a parked one to take it,
/// which on a quiet server mostly goes back to sleep. On two cores with the store's thread
/// busy, one worker spent 12-19% less CPU per delivered update at typing rates than two,
/// with the same throughput and latency (decision 016).
fn workers(asked: Option<usize>) -> anyhow::Result<usize> {
    match asked {
        Some(0) => anyhow::bail!("workers must be at least 1"),
        Some(n) if n > MAX_WORKERS => anyhow::bail!("workers must be at most {MAX_WORKERS} (got {n})"),
        Some(n) => Ok(n),
        None => Ok(std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))),
    }
}

fn write_spacing(ms: Option<u64>) -> anyhow::Result<Duration> {
    bounded_ms(
        "write_spacing_ms",
        ms,
        DEFAULT_WRITE_SPACING_MS,
        MAX_WRITE_SPACING_MS,
        "turns pacing off",
    )
}

/// A milliseconds setting `name`: `ms` or `default`, refused above `max`; `zero` says what 0
/// does, for the error.
fn bounded_ms(name: &str, ms: Option<u64>, default: u64, max: u64, zero: &str) -> anyhow::Result<Duration> {
    let ms = ms.unwrap_or(default);
    anyhow::ensure!(ms <= max, "{name} is {ms}; at most {max} (0 {zero})");
    Ok(Duration::from_millis(ms))
}

impl EdgeSettings {
    fn resolve(args: &mut Args, file: &mut FileConfig) -> anyhow::Result<EdgeSettings> {
        let nets = args
            .trusted_proxy
            .take()
            .or(file.trusted_proxy.take())
            .unwrap_or_default()
            .iter()
            .filter(|n| !n.trim().is_empty())
            .map(|n| TrustedProxies::parse_net(n).map_err(|e| anyhow::anyhow!("trusted_proxy: {e}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let header = args.forwarded_header.or(file.forwarded_header).unwrap_or_default();
        let secs = |name: &str, flag: Option<u64>, file: Option<u64>, default: u64| {
            let v = flag.or(file).unwrap_or(default);
            if v == 0 {
                anyhow::bail!("{name} must be at least 1 second");
            }
            Ok(Duration::from_secs(v))
        };
        let rate = |name: &str, flag: Option<f64>, file: Option<f64>, default: f64, min: f64| {
            let v = flag.or(file).unwrap_or(default);
            if !v.is_finite() || v < min || v <= 0.0 {
                // Rates are per second and may be fractions; bursts are whole requests.
                if min > 0.0 {
                    anyhow::bail!("{name} must be at least {min} (got {v})");
                }
                anyhow::bail!("{name} must be a positive number per second (got {v})");
            }
            Ok(v)
        };
        let count = |name: &str, flag: Option<usize>, file: Option<usize>, default: usize| {
            let v = flag.or(file).unwrap_or(default);
            if v == 0 {
                anyhow::bail!("{name} must be at least 1");
            }
            Ok(v)
        };
        use crate::limits as l;
        Ok(EdgeSettings {
            proxies: TrustedProxies::new(nets, header),
            header_read_timeout: secs(
                "header_read_timeout_secs",
                args.header_read_timeout_secs,
                file.header_read_timeout_secs,
                DEFAULT_HEADER_READ_TIMEOUT_SECS,
            )?,
            request_timeout: secs(
                "request_timeout_secs",
                args.request_timeout_secs,
                file.request_timeout_secs,
                DEFAULT_REQUEST_TIMEOUT_SECS,
            )?,
            upgrade_timeout: secs(
                "upgrade_timeout_secs",
                args.upgrade_timeout_secs,
                file.upgrade_timeout_secs,
                DEFAULT_UPGRADE_TIMEOUT_SECS,
            )?,
            max_connections: count(
                "max_connections",
                args.max_connections,
                file.max_connections,
                l::MAX_CONNECTIONS,
            )?,
            write_spacing: write_spacing(args.write_spacing_ms.or(file.write_spacing_ms))?,
            max_connections_per_address: count(
                "max_connections_per_address",
                args.max_connections_per_address,
                file.max_connections_per_address,
                l::MAX_CONNECTIONS_PER_ADDRESS,
            )?,
            join_rate: rate("join_rate", args.join_rate, file.join_rate, l::JOIN_RATE, 0.0)?,
            join_burst: rate("join_burst", args.join_burst, file.join_burst, l::JOIN_BURST, 1.0)?,
            create_rate: rate("create_rate", args.create_rate, file.create_rate, l::CREATE_RATE, 0.0)?,
            create_burst: rate(
                "create_burst",
                args.create_burst,
                file.create_burst,
                l::CREATE_BURST,
                1.0,
            )?,
            create_rate_global: rate(
                "create_rate_global",
                args.create_rate_global,
                file.create_rate_global,
                l::CREATE_RATE_GLOBAL,
                0.0,
            )?,
            create_burst_global: rate(
                "create_burst_global",
                args.create_burst_global,
                file.create_burst_global,
                l::CREATE_BURST_GLOBAL,
                1.0,
            )?,
            max_rooms: args.max_rooms.or(file.max_rooms).filter(|&n| n > 0),
            create_token: args
                .create_token
                .take()
                .or(file.create_token.take())
                .filter(|t| !t.is_empty()),
        })
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The admin token is a secret: never print it.
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("store", &self.store)
            .field("bus", &self.bus)
            .field("public_url", &self.public_url)
            .field("durability", &self.durability)
            .field("commit_interval", &self.commit_interval)
            .field("workers", &self.workers)
            .field("token_ttl", &self.token_ttl)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "<set>"))
            .field("edge", &self.edge)
            .field("drain_grace", &self.drain_grace)
            .field("tls", &self.tls)
            .field("oidc", &self.oidc)
            .finish()
    }
}

impl Settings {
    /// Settings from flags (and env) over a config file over defaults.
    pub fn resolve(mut args: Args) -> anyhow::Result<Settings> {
        let mut file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let edge = EdgeSettings::resolve(&mut args, &mut file)?;
        let data_dir = args.data_dir.or(file.data_dir).unwrap_or_else(default_data_dir);
        let store = match args.store.take().or(file.store.take()) {
            Some(text) => StoreLocation::parse(&text)?,
            None => StoreLocation::Sqlite,
        };
        let bus = match args.bus.take().or(file.bus.take()) {
            Some(text) if !text.trim().is_empty() => Some(
                text.parse::<crate::bus::BusUrl>()
                    .map_err(|e| anyhow::anyhow!("bus: {e}"))?,
            ),
            _ => None,
        };
        if bus.is_some() && matches!(store, StoreLocation::Sqlite) {
            anyhow::bail!(
                "bus: nodes on one bus must share one store; give every node the same --store postgres://USER:PASSWORD@HOST:PORT/DATABASE"
            );
        }
        let cluster_max_sandboxes = args.cluster_max_sandboxes.or(file.cluster_max_sandboxes);
        match (cluster_max_sandboxes, &bus) {
            (Some(0), _) => anyhow::bail!("cluster_max_sandboxes must be at least 1; leave it unset for no cluster cap"),
            (Some(_), None) => anyhow::bail!(
                "cluster_max_sandboxes: the nodes count their sandboxes on the bus; give every node --bus redis://HOST:PORT"
            ),
            _ => {}
        }
        let docker_tls_dir = args.docker_tls_dir.take().or(file.docker_tls_dir.take());
        let docker_hosts = args
            .docker_host
            .take()
            .or(file.docker_host.take())
            .unwrap_or_default()
            .iter()
            .filter(|h| !h.trim().is_empty())
            .map(|h| crate::engines::EngineAddress::parse(h, docker_tls_dir.as_ref()))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let run_pool = args.run_pool.or(file.run_pool).unwrap_or(DEFAULT_RUN_POOL);
        if run_pool > MAX_RUN_POOL {
            anyhow::bail!("run_pool {run_pool} is over the limit of {MAX_RUN_POOL} warm containers per language");
        }
        let room_limits = {
            let d = crate::room::core::RoomLimits::default();
            let limits = crate::room::core::RoomLimits {
                max_doc_bytes: args.max_doc_bytes.or(file.max_doc_bytes).unwrap_or(d.max_doc_bytes),
                max_files: args.max_files.or(file.max_files).unwrap_or(d.max_files),
                awareness_rate: args.awareness_rate.or(file.awareness_rate).unwrap_or(d.awareness_rate),
                awareness_burst: args
                    .awareness_burst
                    .or(file.awareness_burst)
                    .unwrap_or(d.awareness_burst),
                max_lobby: args.max_lobby.or(file.max_lobby).unwrap_or(d.max_lobby),
                lobby_timeout_ms: args
                    .lobby_timeout_secs
                    .or(file.lobby_timeout_secs)
                    .map_or(d.lobby_timeout_ms, |s| s.saturating_mul(1000)),
                max_links: args.max_links.or(file.max_links).unwrap_or(d.max_links),
                accounts: false,
            };
            if limits.max_links < 1 || limits.lobby_timeout_ms == 0 {
                anyhow::bail!("max_links must be at least 1 and lobby_timeout_secs above 0");
            }
            if !(limits.awareness_rate > 0.0 && limits.awareness_burst >= 1.0) {
                anyhow::bail!("awareness_rate must be above 0 and awareness_burst at least 1");
            }
            limits
        };
        let tls = match (args.tls_cert.or(file.tls_cert), args.tls_key.or(file.tls_key)) {
            (Some(cert), Some(key)) => Some(crate::tls::TlsFiles { cert, key }),
            (None, None) => None,
            _ => anyhow::bail!(
                "tls_cert and tls_key go together: give both to serve TLS, or neither to serve plain HTTP (behind a TLS-terminating proxy)"
            ),
        };
        let oidc = {
            let nonempty = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
            match (
                nonempty(args.oidc_issuer.take().or(file.oidc_issuer.take())),
                nonempty(args.oidc_client_id.take().or(file.oidc_client_id.take())),
                nonempty(args.oidc_client_secret.take().or(file.oidc_client_secret.take())),
            ) {
                (Some(issuer), Some(client_id), Some(client_secret)) => Some(crate::accounts::OidcSettings {
                    issuer: issuer.trim().to_string(),
                    client_id,
                    client_secret,
                }),
                (None, None, None) => None,
                _ => anyhow::bail!(
                    "oidc_issuer, oidc_client_id and oidc_client_secret go together: give all three to turn accounts on, or none to run without accounts"
                ),
            }
        };
        let room_limits = crate::room::core::RoomLimits {
            accounts: oidc.is_some(),
            ..room_limits
        };
        Ok(Settings {
            oidc,
            tls,
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default")),
            data_dir,
            store,
            bus,
            cluster_max_sandboxes,
            public_url: args
                .public_url
                .or(file.public_url)
                .map(|u| u.trim_end_matches('/').to_string()),
            durability: args.durability.or(file.durability).unwrap_or(Durability::Process),
            commit_interval: commit_interval(args.commit_interval_ms.or(file.commit_interval_ms))?,
            workers: workers(args.workers.or(file.workers))?,
            token_ttl: Duration::from_secs(
                3600 * args
                    .token_ttl_hours
                    .or(file.token_ttl_hours)
                    .unwrap_or(DEFAULT_TOKEN_TTL_HOURS),
            ),
            admin_token: args.admin_token.or(file.admin_token).filter(|t| !t.is_empty()),
            log_format: args.log_format.or(file.log_format).unwrap_or(LogFormat::Text),
            run_images: args.run_images.or(file.run_images).unwrap_or(RunImages::Public),
            run_pool,
            run_warm: args.run_warm.or(file.run_warm).unwrap_or_default(),
            docker_hosts,
            languages: args.languages.or(file.languages),
            edge,
            run_limits: {
                let d = crate::admission::Limits::default();
                crate::admission::Limits {
                    runs: args.max_runs.or(file.max_runs).unwrap_or(d.runs),
                    debug_sessions: args
                        .max_debug_sessions
                        .or(file.max_debug_sessions)
                        .unwrap_or(d.debug_sessions),
                    runs_per_room: args
                        .max_runs_per_room
                        .or(file.max_runs_per_room)
                        .unwrap_or(d.runs_per_room),
                    runs_per_person: args
                        .max_runs_per_person
                        .or(file.max_runs_per_person)
                        .unwrap_or(d.runs_per_person),
                    queue: args.run_queue.or(file.run_queue).unwrap_or(d.queue),
                }
            },
            debug_idle: args
                .debug_idle_seconds
                .or(file.debug_idle_seconds)
                .map_or(crate::debug::DEFAULT_DEBUG_IDLE, Duration::from_secs),
            drain_grace: args
                .drain_seconds
                .or(file.drain_seconds)
                .map_or(crate::drain::DEFAULT_DRAIN_GRACE, Duration::from_secs),
            room_limits,
        })
    }
}

/// Warm containers per language: one covers runs seconds apart; a busy server raises it.
const DEFAULT_RUN_POOL: usize = 1;
/// The most warm containers per language a setting may ask for.
const MAX_RUN_POOL: usize = 32;

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", path.display()))?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("invalid config file {}: {e}", path.display()))
}

fn default_data_dir() -> PathBuf {
    dirs::data_dir()
        .map(|d| d.join("mesh"))
        .unwrap_or_else(|| PathBuf::from(".mesh"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(file: &str, flags: &[&str]) -> anyhow::Result<Settings> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mesh.toml");
        std::fs::write(&path, file).unwrap();
        let mut argv = vec!["mesh-server", "--config", path.to_str().unwrap()];
        argv.extend_from_slice(flags);
        Settings::resolve(Args::try_parse_from(argv).unwrap())
    }

    #[test]
    fn a_cluster_cap_needs_a_bus_and_a_slot() {
        let pg = "postgres://mesh:pw@127.0.0.1:5432/mesh";
        let alone = resolve("", &["--cluster-max-sandboxes", "4"]).unwrap_err().to_string();
        assert!(alone.contains("--bus"), "{alone}");
        let zero = resolve(
            "",
            &[
                "--store",
                pg,
                "--bus",
                "redis://127.0.0.1:6379",
                "--cluster-max-sandboxes",
                "0",
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(zero.contains("at least 1"), "{zero}");
        let s = resolve(
            "cluster_max_sandboxes = 8\n",
            &["--store", pg, "--bus", "redis://127.0.0.1:6379"],
        )
        .unwrap();
        assert_eq!(s.cluster_max_sandboxes, Some(8));
    }

    #[test]
    fn edge_limits_come_from_the_file_and_flags_override_it() {
        let s = resolve(
            "trusted_proxy = [\"10.0.0.0/8\", \"192.0.2.1\"]\nforwarded_header = \"forwarded\"\n\
             create_rate = 2\ncreate_burst = 5\nmax_rooms = 100\ncreate_token = \"t\"\n\
             header_read_timeout_secs = 3\nmax_connections_per_address = 7\n",
            &["--create-rate", "0.25", "--join-burst", "10"],
        )
        .unwrap();
        let e = &s.edge;
        assert!(e.proxies.is_trusted("10.9.8.7".parse().unwrap()));
        assert!(e.proxies.is_trusted("192.0.2.1".parse().unwrap()));
        assert!(!e.proxies.is_trusted("192.0.2.2".parse().unwrap()));
        assert_eq!((e.create_rate, e.create_burst), (0.25, 5.0));
        assert_eq!((e.join_rate, e.join_burst), (crate::limits::JOIN_RATE, 10.0));
        assert_eq!(e.max_rooms, Some(100));
        assert_eq!(e.create_token.as_deref(), Some("t"));
        assert_eq!(e.header_read_timeout, Duration::from_secs(3));
        assert_eq!(e.max_connections_per_address, 7);
        assert!(
            !format!("{s:?}").contains("\"t\""),
            "the creation token is never printed"
        );
        let s = resolve(
            "tls_cert = \"/etc/mesh/cert.pem\"\ntls_key = \"/etc/mesh/key.pem\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(
            s.tls.map(|t| (t.cert, t.key)),
            Some(("/etc/mesh/cert.pem".into(), "/etc/mesh/key.pem".into()))
        );
    }

    #[test]
    fn accounts_are_off_by_default_and_the_client_secret_is_never_printed() {
        let s = resolve("", &[]).unwrap();
        assert!(s.oidc.is_none() && !s.room_limits.accounts);
        let s = resolve(
            "oidc_issuer = \"https://id.example.test\"\noidc_client_id = \"mesh\"\noidc_client_secret = \"s3cr3t-value\"\n",
            &[],
        )
        .unwrap();
        let oidc = s.oidc.as_ref().unwrap();
        assert_eq!(
            (oidc.issuer.as_str(), oidc.client_id.as_str()),
            ("https://id.example.test", "mesh")
        );
        assert!(s.room_limits.accounts);
        assert!(
            !format!("{s:?}").contains("s3cr3t-value"),
            "the client secret is never printed"
        );
        let e = resolve("", &["--oidc-issuer", "https://id.example.test"])
            .err()
            .unwrap();
        assert!(e.to_string().contains("go together"), "{e}");
    }

    #[test]
    fn the_store_is_sqlite_by_default_and_a_postgres_password_is_never_printed() {
        assert!(matches!(resolve("", &[]).unwrap().store, StoreLocation::Sqlite));
        let s = resolve("store = \"postgres://mesh:pg-s3cr3t@db.example.test:5432/mesh\"\n", &[]).unwrap();
        let StoreLocation::Postgres(url) = &s.store else {
            panic!("a postgres:// URL selects the Postgres store")
        };
        assert_eq!(url.to_string(), "postgres://mesh:***@db.example.test:5432/mesh");
        assert!(!format!("{s:?}").contains("pg-s3cr3t"), "the password is never printed");
        // The flag overrides the file.
        assert!(matches!(
            resolve("store = \"postgres://db/mesh\"\n", &["--store", "sqlite"])
                .unwrap()
                .store,
            StoreLocation::Sqlite
        ));
        let e = resolve("", &["--store", "mysql://root:pw@db/mesh"]).err().unwrap();
        assert!(
            e.to_string().contains("store must be") && !e.to_string().contains("pw"),
            "{e}"
        );
    }

    #[test]
    fn a_bus_needs_a_shared_store_and_its_password_is_never_printed() {
        assert!(resolve("", &[]).unwrap().bus.is_none(), "no bus by default: one node");
        let s = resolve(
            "store = \"postgres://mesh:pg@db/mesh\"\nbus = \"redis://:r3d1s-s3cr3t@cache:6379\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(s.bus.as_ref().unwrap().to_string(), "redis://:***@cache:6379");
        assert!(!format!("{s:?}").contains("r3d1s-s3cr3t"));
        let e = resolve("", &["--bus", "redis://:r3d1s-s3cr3t@cache:6379"])
            .err()
            .unwrap();
        assert!(
            e.to_string().contains("share one store") && !e.to_string().contains("r3d1s"),
            "{e}"
        );
        let e = resolve("store = \"postgres://db/mesh\"\n", &["--bus", "nats://cache"])
            .err()
            .unwrap();
        assert!(e.to_string().contains("redis://"), "{e}");
    }

    #[test]
    fn bad_edge_settings_are_refused_by_name() {
        let e = resolve("trusted_proxy = [\"proxy.local\"]\n", &[]).err().unwrap();
        assert!(e.to_string().contains("trusted_proxy"), "{e}");
        let e = resolve("", &["--header-read-timeout-secs", "0"]).err().unwrap();
        assert!(e.to_string().contains("header_read_timeout_secs"), "{e}");
        let e = resolve("", &["--create-rate", "0"]).err().unwrap();
        assert!(e.to_string().contains("create_rate"), "{e}");
        let e = resolve("", &["--max-connections", "0"]).err().unwrap();
        assert!(e.to_string().contains("max_connections"), "{e}");
        let e = resolve("", &["--tls-cert", "cert.pem"]).err().unwrap();
        assert!(e.to_string().contains("tls_key"), "{e}");
        // Zero rooms means "no cap", as the README says.
        assert_eq!(resolve("", &["--max-rooms", "0"]).unwrap().edge.max_rooms, None);
    }
}
