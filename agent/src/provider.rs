//! The provider client: one streaming chat-completions call to an OpenAI-compatible
//! endpoint, with a timeout and cancellation. The bytes go through [`crate::sse::SseParser`];
//! the text comes out through a callback as it arrives.

use std::time::Duration;

use serde::Serialize;
use tokio::sync::watch;

use crate::config::{Limits, ProviderConfig};
use crate::sse::{Chunk, SseParser, StreamError};

/// How much of an HTTP error's body is quoted in the error: enough for the provider's own
/// explanation ("model not found"), not a whole HTML page.
pub const MAX_ERROR_BODY_CHARS: usize = 300;

/// The most text one answer may bring: far more than `max_tokens` allows any real model
/// (2048 tokens are about 8 KiB), so only a broken or hostile provider reaches it, and the
/// ghost never holds more.
pub const MAX_ANSWER_BYTES: usize = 256 * 1024;

/// How long connecting to the provider may take: a local server answers at once, a hosted
/// one within seconds; past this the URL is probably wrong.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One message of the conversation sent to the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: &'static str,
    /// The text.
    pub content: String,
}

#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: &'a [ChatMessage],
    stream: bool,
    max_tokens: u32,
}

/// Why an answer did not come.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The provider could not be reached.
    #[error("cannot reach the provider at {url}: {reason}; check --provider-url and that the provider is running")]
    Connect {
        /// The endpoint.
        url: String,
        /// Why.
        reason: String,
    },
    /// The provider answered with an HTTP error.
    #[error("the provider answered HTTP {status}: {body}")]
    Http {
        /// The status code.
        status: u16,
        /// The start of its body.
        body: String,
    },
    /// The answer took longer than the limit.
    #[error("the provider did not finish within {0:?}; try again, ask for less, or raise --timeout-secs")]
    Timeout(Duration),
    /// The stream was not a chat-completions stream.
    #[error("{0}")]
    Stream(#[from] StreamError),
    /// The answer went over [`MAX_ANSWER_BYTES`].
    #[error("the provider's answer went over {MAX_ANSWER_BYTES} bytes; lower --max-tokens or check the provider")]
    TooLong,
    /// The connection ended before `[DONE]`.
    #[error("the provider's stream ended before the answer was complete; try again")]
    Truncated,
    /// Someone cancelled the request.
    #[error("cancelled")]
    Cancelled,
}

/// Streams one answer: calls `on_text` with each piece of text as it arrives. Returns when the
/// provider says `[DONE]`, or with an error; `cancel` turning `true` stops it at once.
pub async fn stream_chat(
    http: &reqwest::Client,
    config: &ProviderConfig,
    limits: &Limits,
    messages: &[ChatMessage],
    mut cancel: watch::Receiver<bool>,
    mut on_text: impl FnMut(&str),
) -> Result<(), ProviderError> {
    let work = async {
        let url = config.endpoint();
        let mut req = http.post(&url).json(&Body {
            model: &config.model,
            messages,
            stream: true,
            max_tokens: limits.max_tokens,
        });
        if let Some(key) = &config.key {
            req = req.bearer_auth(key.expose());
        }
        // reqwest's errors name the URL, never headers, so they cannot carry the key.
        let mut resp = req.send().await.map_err(|e| ProviderError::Connect {
            url: url.clone(),
            reason: e.without_url().to_string(),
        })?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            return Err(ProviderError::Http {
                status: status.as_u16(),
                body: body.chars().take(MAX_ERROR_BODY_CHARS).collect(),
            });
        }
        let mut parser = SseParser::new();
        let mut total = 0usize;
        while let Some(bytes) = resp.chunk().await.map_err(|e| ProviderError::Connect {
            url: url.clone(),
            reason: e.without_url().to_string(),
        })? {
            for chunk in parser.feed(&bytes)? {
                match chunk {
                    Chunk::Delta(text) => {
                        total += text.len();
                        if total > MAX_ANSWER_BYTES {
                            return Err(ProviderError::TooLong);
                        }
                        on_text(&text)
                    }
                    Chunk::Done => return Ok(()),
                }
            }
        }
        Err(ProviderError::Truncated)
    };
    tokio::select! {
        result = tokio::time::timeout(limits.timeout, work) => {
            result.unwrap_or(Err(ProviderError::Timeout(limits.timeout)))
        }
        _ = async {
            // A dropped sender means no one can cancel any more, not "cancelled".
            if cancel.wait_for(|c| *c).await.is_err() {
                std::future::pending::<()>().await;
            }
        } => Err(ProviderError::Cancelled),
    }
}

/// The HTTP client the ghost uses for its provider.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .build()
        .expect("a client with a connect timeout builds")
}
