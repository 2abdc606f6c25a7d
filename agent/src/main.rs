//! `mesh-ghost`: joins a room by its link and answers `@ghost ...` in its chat.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use mesh_ghost::config::{self, Limits, ProviderConfig};
use mesh_ghost::ghost::{self, Settings};
use mesh_ghost::room::{parse_link, Room};

/// The environment variable the API key is read from when no key file is given.
const KEY_ENV: &str = "MESH_GHOST_API_KEY";

/// mesh's ghost: an AI participant in a room. It joins by a link like anyone and answers
/// "@ghost ..." in the room's chat from an OpenAI-compatible provider: explanations, suggested
/// changes ("@ghost accept N" applies one), or with "@ghost write ..." a change typed into the
/// files live. Writers may "@ghost cancel" and "@ghost undo". A writer link lets it change files.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// The room's join link (http://HOST:PORT/join/ROOM?token=TOKEN). A read link is enough
    /// for answers in chat; a writer link lets it change files.
    #[arg(long, env = "MESH_GHOST_LINK", hide_env_values = true)]
    link: String,
    /// The provider's OpenAI-compatible API base URL (`/chat/completions` is appended), e.g.
    /// https://api.openai.com/v1 or http://127.0.0.1:11434/v1 for Ollama.
    #[arg(long, env = "MESH_GHOST_PROVIDER_URL")]
    provider_url: String,
    /// The model name the provider knows.
    #[arg(long, env = "MESH_GHOST_MODEL")]
    model: String,
    /// A file that holds the API key (read once at start). Without it the key comes from
    /// $MESH_GHOST_API_KEY; with neither, no key is sent (local providers).
    #[arg(long)]
    api_key_file: Option<PathBuf>,
    /// Requests a room may have going at once.
    #[arg(long, default_value_t = config::DEFAULT_CONCURRENT_PER_ROOM)]
    concurrent_requests: usize,
    /// Requests a room may make per hour.
    #[arg(long, default_value_t = config::DEFAULT_REQUESTS_PER_WINDOW)]
    requests_per_hour: u32,
    /// Tokens one answer may use.
    #[arg(long, default_value_t = config::DEFAULT_MAX_TOKENS)]
    max_tokens: u32,
    /// Seconds one answer may take.
    #[arg(long, default_value_t = config::DEFAULT_TIMEOUT.as_secs())]
    timeout_secs: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MESH_LOG").unwrap_or_else(|_| "mesh_ghost=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let key = config::read_key(args.api_key_file.as_deref(), std::env::var(KEY_ENV).ok())?;
    let settings = Settings {
        provider: ProviderConfig {
            base_url: args.provider_url,
            model: args.model,
            key,
        },
        limits: Limits {
            concurrent_per_room: args.concurrent_requests.max(1),
            requests_per_window: args.requests_per_hour,
            max_tokens: args.max_tokens,
            timeout: Duration::from_secs(args.timeout_secs.max(1)),
        },
    };
    let target = parse_link(&args.link)?;
    let name = ghost::display_name(&settings.provider.model);
    let (room, events) = Room::connect(&target, &name, ghost::COLOR)
        .await
        .context("joining the room")?;
    tracing::info!(
        room = %target.ws_url,
        provider = %settings.provider.endpoint(),
        model = %settings.provider.model,
        "ghost joined the room"
    );
    let why = ghost::run(room, events, settings).await;
    anyhow::bail!("the room connection ended: {why}")
}
