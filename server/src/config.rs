//! Configuration: defaults, then a TOML file, then `MESH_*` environment variables, then
//! command-line flags — each later source overriding the earlier ones.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;

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
    /// The URL clients reach this server at, used in join links [default: http://LISTEN].
    #[arg(long, env = "MESH_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// What a committed update survives [default: process].
    #[arg(long, env = "MESH_DURABILITY", value_enum)]
    pub durability: Option<Durability>,
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
    /// End a debug session nobody has been attached to for this many seconds [default: 120].
    #[arg(long, env = "MESH_DEBUG_IDLE_SECONDS")]
    pub debug_idle_seconds: Option<u64>,
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
    public_url: Option<String>,
    durability: Option<Durability>,
    token_ttl_hours: Option<u64>,
    admin_token: Option<String>,
    log_format: Option<LogFormat>,
    run_images: Option<RunImages>,
    run_pool: Option<usize>,
    run_warm: Option<Vec<String>>,
    max_runs: Option<usize>,
    max_debug_sessions: Option<usize>,
    max_runs_per_room: Option<usize>,
    max_runs_per_person: Option<usize>,
    run_queue: Option<usize>,
    debug_idle_seconds: Option<u64>,
}

/// The settings the server runs with.
#[derive(Clone)]
pub struct Settings {
    /// Listen address.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Public URL, without a trailing slash; `None` means "derive from the bound address".
    pub public_url: Option<String>,
    /// Store durability.
    pub durability: Durability,
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
    /// Caps on runs and debug sessions, and their queue.
    pub run_limits: crate::admission::Limits,
    /// How long a debug session may go on with nobody attached.
    pub debug_idle: Duration,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The admin token is a secret: never print it.
        f.debug_struct("Settings")
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("public_url", &self.public_url)
            .field("durability", &self.durability)
            .field("token_ttl", &self.token_ttl)
            .field("admin_token", &self.admin_token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl Settings {
    /// Settings from flags (and env) over a config file over defaults.
    pub fn resolve(args: Args) -> anyhow::Result<Settings> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let data_dir = args.data_dir.or(file.data_dir).unwrap_or_else(default_data_dir);
        let run_pool = args.run_pool.or(file.run_pool).unwrap_or(DEFAULT_RUN_POOL);
        if run_pool > MAX_RUN_POOL {
            anyhow::bail!("run_pool {run_pool} is over the limit of {MAX_RUN_POOL} warm containers per language");
        }
        Ok(Settings {
            listen: args
                .listen
                .or(file.listen)
                .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default")),
            data_dir,
            public_url: args
                .public_url
                .or(file.public_url)
                .map(|u| u.trim_end_matches('/').to_string()),
            durability: args.durability.or(file.durability).unwrap_or(Durability::Process),
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
