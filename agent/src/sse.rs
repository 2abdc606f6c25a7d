//! The provider's answer stream, sans-IO: server-sent events from an OpenAI-compatible
//! `chat/completions` call with `stream: true`, turned into text deltas.
//!
//! Bytes go in as they arrive (split anywhere, even inside a UTF-8 character); what comes out
//! is the text the model produced, in order, then [`Chunk::Done`]. Anything that is not such a
//! stream is a [`StreamError`] that says what was wrong, never a panic: the provider is
//! outside input.

use serde::Deserialize;

/// The longest line the parser holds. A provider's chunk is one short JSON object per line;
/// a line longer than this is a broken or hostile stream, not an answer.
pub const MAX_LINE_BYTES: usize = 256 * 1024;

/// What one piece of the stream means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// Text the model produced.
    Delta(String),
    /// The provider said the answer is complete (`data: [DONE]`).
    Done,
}

/// Why the stream is not a chat-completions stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// A line longer than [`MAX_LINE_BYTES`].
    #[error("the provider sent a line of more than {MAX_LINE_BYTES} bytes: is the URL an OpenAI-compatible chat-completions endpoint?")]
    LineTooLong,
    /// A line that is not UTF-8.
    #[error("the provider's stream is not UTF-8 text")]
    NotUtf8,
    /// A `data:` line that is not a chat-completion chunk.
    #[error("the provider sent data that is not a chat-completion chunk ({0}): check that the URL is an OpenAI-compatible endpoint with streaming")]
    NotAChunk(String),
    /// The provider reported an error inside the stream.
    #[error("the provider reported an error: {0}")]
    Provider(String),
}

#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    error: Option<ProviderError>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    delta: Delta,
}

#[derive(Deserialize, Default)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct ProviderError {
    #[serde(default)]
    message: String,
}

/// The parser: feed it bytes, it returns the chunks those bytes completed.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    done: bool,
}

impl SseParser {
    /// A parser at the start of a stream.
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// Whether `data: [DONE]` was seen.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Takes the next bytes of the stream; returns the chunks completed by them.
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Chunk>, StreamError> {
        let mut out = Vec::new();
        for &b in bytes {
            if self.done {
                break;
            }
            if b == b'\n' {
                let line = std::mem::take(&mut self.line);
                if let Some(chunk) = self.line_done(&line)? {
                    out.push(chunk);
                }
            } else {
                if self.line.len() >= MAX_LINE_BYTES {
                    return Err(StreamError::LineTooLong);
                }
                self.line.push(b);
            }
        }
        Ok(out)
    }

    fn line_done(&mut self, line: &[u8]) -> Result<Option<Chunk>, StreamError> {
        let line = std::str::from_utf8(line).map_err(|_| StreamError::NotUtf8)?;
        let line = line.strip_suffix('\r').unwrap_or(line);
        // Blank lines end events; `:` lines are comments (keep-alives); `event:`, `id:` and
        // `retry:` carry nothing chat completions use.
        let Some(data) = line.strip_prefix("data:") else {
            return Ok(None);
        };
        let data = data.strip_prefix(' ').unwrap_or(data);
        if data == "[DONE]" {
            self.done = true;
            return Ok(Some(Chunk::Done));
        }
        let parsed: Completion = serde_json::from_str(data).map_err(|e| StreamError::NotAChunk(e.to_string()))?;
        if let Some(err) = parsed.error {
            return Err(StreamError::Provider(err.message));
        }
        let text: String = parsed.choices.into_iter().filter_map(|c| c.delta.content).collect();
        Ok((!text.is_empty()).then_some(Chunk::Delta(text)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(text: &str) -> String {
        format!(
            "data: {}\n\n",
            serde_json::json!({"choices": [{"index": 0, "delta": {"content": text}}]})
        )
    }

    #[test]
    fn deltas_come_out_in_order_then_done() {
        let mut p = SseParser::new();
        let stream = format!("{}{}data: [DONE]\n\n", chunk("Hel"), chunk("lo"));
        let got = p.feed(stream.as_bytes()).unwrap();
        assert_eq!(
            got,
            vec![Chunk::Delta("Hel".into()), Chunk::Delta("lo".into()), Chunk::Done]
        );
        assert!(p.is_done());
    }

    #[test]
    fn bytes_split_anywhere_give_the_same_text() {
        let stream = format!("{}{}data: [DONE]\n\n", chunk("héllo ✓"), chunk(" 🙂 wörld"));
        for split in 0..stream.len() {
            let mut p = SseParser::new();
            let mut got = p.feed(&stream.as_bytes()[..split]).unwrap();
            got.extend(p.feed(&stream.as_bytes()[split..]).unwrap());
            let text: String = got
                .iter()
                .filter_map(|c| match c {
                    Chunk::Delta(t) => Some(t.as_str()),
                    Chunk::Done => None,
                })
                .collect();
            assert_eq!(text, "héllo ✓ 🙂 wörld", "split at {split}");
            assert_eq!(got.last(), Some(&Chunk::Done));
        }
    }

    #[test]
    fn comments_roles_and_crlf_are_not_text() {
        let mut p = SseParser::new();
        let stream = ": keep-alive\r\nevent: message\r\ndata: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\r\n\r\ndata: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\r\n\r\n";
        assert_eq!(p.feed(stream.as_bytes()).unwrap(), vec![Chunk::Delta("x".into())]);
    }

    #[test]
    fn data_that_is_not_a_chunk_is_an_error_that_names_it() {
        let mut p = SseParser::new();
        let err = p.feed(b"data: {not json\n\n").unwrap_err();
        assert!(matches!(err, StreamError::NotAChunk(_)));
        assert!(err.to_string().contains("OpenAI-compatible"));
    }

    #[test]
    fn an_error_inside_the_stream_is_reported() {
        let mut p = SseParser::new();
        let err = p
            .feed(b"data: {\"error\":{\"message\":\"model overloaded\"}}\n\n")
            .unwrap_err();
        assert_eq!(err, StreamError::Provider("model overloaded".into()));
    }

    #[test]
    fn a_line_over_the_limit_is_refused_without_holding_it() {
        let mut p = SseParser::new();
        let big = vec![b'a'; MAX_LINE_BYTES + 1];
        assert_eq!(p.feed(&big).unwrap_err(), StreamError::LineTooLong);
        assert!(p.line.len() <= MAX_LINE_BYTES);
    }

    #[test]
    fn nothing_after_done_is_read() {
        let mut p = SseParser::new();
        let got = p.feed(b"data: [DONE]\n\ndata: {garbage\n\n").unwrap();
        assert_eq!(got, vec![Chunk::Done]);
    }

    #[test]
    fn invalid_utf8_is_an_error() {
        let mut p = SseParser::new();
        assert_eq!(p.feed(b"data: \xff\xfe\n").unwrap_err(), StreamError::NotUtf8);
    }
}
