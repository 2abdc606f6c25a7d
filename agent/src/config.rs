//! The ghost's configuration: which provider, which model, the key, and the limits.
//!
//! The key is a [`Secret`]: it prints as `[redacted]` in `Debug` and `Display`, so no log line,
//! chat message or error can carry it by accident. Only [`Secret::expose`] reads it, and the
//! provider client is the one caller (for the `Authorization` header).

use std::path::Path;
use std::time::Duration;

/// How long one answer may take, start to end, unless configured. Long enough for a local
/// model on a laptop to write a screen of text; short enough that a hung provider is noticed.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// How many tokens one answer may use unless configured: a long explanation or a few
/// function-sized changes.
pub const DEFAULT_MAX_TOKENS: u32 = 2048;

/// How many requests one room may have going at once unless configured: one, so answers do
/// not interleave in chat and one person cannot queue up the room's budget.
pub const DEFAULT_CONCURRENT_PER_ROOM: usize = 1;

/// How many requests one room may make in a row of [`REQUEST_WINDOW`] unless configured.
pub const DEFAULT_REQUESTS_PER_WINDOW: u32 = 30;

/// The window the per-room request count is taken over: an hour, the unit providers bill
/// and rate-limit by.
pub const REQUEST_WINDOW: Duration = Duration::from_secs(3600);

/// The largest key file read: keys are tens to hundreds of bytes, so anything bigger is the
/// wrong file.
pub const MAX_KEY_FILE_BYTES: u64 = 16 * 1024;

/// A value that must never be printed: an API key.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a key.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The key itself, for the one place that sends it to the provider.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Where the ghost's answers come from.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// The base URL of an OpenAI-compatible API (`https://api.openai.com/v1`,
    /// `http://127.0.0.1:11434/v1` for Ollama); `/chat/completions` is appended.
    pub base_url: String,
    /// The model name the provider knows.
    pub model: String,
    /// The API key, when the provider needs one (local servers usually do not).
    pub key: Option<Secret>,
}

impl ProviderConfig {
    /// The chat-completions endpoint.
    pub fn endpoint(&self) -> String {
        format!("{}/chat/completions", self.base_url.trim_end_matches('/'))
    }
}

/// What the ghost may spend.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Requests one room may have going at once.
    pub concurrent_per_room: usize,
    /// Requests one room may make per [`REQUEST_WINDOW`].
    pub requests_per_window: u32,
    /// Tokens one answer may use (sent as `max_tokens`).
    pub max_tokens: u32,
    /// How long one answer may take.
    pub timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            concurrent_per_room: DEFAULT_CONCURRENT_PER_ROOM,
            requests_per_window: DEFAULT_REQUESTS_PER_WINDOW,
            max_tokens: DEFAULT_MAX_TOKENS,
            timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// Why the key could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be read.
    #[error("cannot read the API key file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is too big to be a key.
    #[error("the API key file {path} is over {MAX_KEY_FILE_BYTES} bytes: point --api-key-file at a file that holds only the key")]
    TooBig {
        /// The file.
        path: String,
    },
    /// The file is empty.
    #[error(
        "the API key file {path} is empty: put the key in it, or leave --api-key-file out for a provider without keys"
    )]
    Empty {
        /// The file.
        path: String,
    },
}

/// The key: from the file when one is given, else from the environment variable's value
/// (`None` when neither holds one). Surrounding whitespace (a trailing newline) is dropped.
pub fn read_key(file: Option<&Path>, env_value: Option<String>) -> Result<Option<Secret>, KeyError> {
    if let Some(path) = file {
        let shown = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|source| KeyError::Read {
            path: shown.clone(),
            source,
        })?;
        if meta.len() > MAX_KEY_FILE_BYTES {
            return Err(KeyError::TooBig { path: shown });
        }
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
            path: shown.clone(),
            source,
        })?;
        let key = text.trim();
        if key.is_empty() {
            return Err(KeyError::Empty { path: shown });
        }
        return Ok(Some(Secret::new(key)));
    }
    Ok(env_value
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .map(Secret::new))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_never_prints() {
        let config = ProviderConfig {
            base_url: "http://x".into(),
            model: "m".into(),
            key: Some(Secret::new("sk-very-secret")),
        };
        let shown = format!("{config:?} {}", config.key.as_ref().unwrap());
        assert!(!shown.contains("sk-very-secret"), "{shown}");
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn the_file_wins_over_the_environment_and_is_trimmed() {
        let dir = std::env::temp_dir().join(format!("mesh-ghost-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("key");
        std::fs::write(&file, "sk-from-file\n").unwrap();
        let key = read_key(Some(&file), Some("sk-env".into())).unwrap().unwrap();
        assert_eq!(key.expose(), "sk-from-file");
        std::fs::write(&file, "  \n").unwrap();
        assert!(matches!(read_key(Some(&file), None), Err(KeyError::Empty { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_empty_environment_value_is_no_key() {
        assert!(read_key(None, Some(" ".into())).unwrap().is_none());
        assert_eq!(read_key(None, Some("k".into())).unwrap().unwrap().expose(), "k");
    }

    #[test]
    fn the_endpoint_is_the_base_plus_chat_completions() {
        let c = ProviderConfig {
            base_url: "http://127.0.0.1:11434/v1/".into(),
            model: "m".into(),
            key: None,
        };
        assert_eq!(c.endpoint(), "http://127.0.0.1:11434/v1/chat/completions");
    }
}
