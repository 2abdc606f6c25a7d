//! The Debug Adapter Protocol's framing: `Content-Length: N\r\n\r\n` and N bytes of JSON.
//! Shared by `mesh-proxy dap` (DAP with editors) and the server (DAP with debug adapters).
//!
//! [`Decoder`] is sans-IO: it takes chunks of any size as they arrive and yields whole
//! messages (it is an iterator over what was pushed so far). Header names are case-insensitive;
//! headers other than `Content-Length`, and any text before it in the header block, are
//! ignored.
//!
//! Bad input never stops the decoder; it reports an error and resynchronises:
//! - a header block without a usable `Content-Length` is dropped up to its blank line;
//! - a header block that does not end within [`MAX_HEADER_BYTES`] is dropped up to the next
//!   `Content-Length` (or entirely, when there is none);
//! - a message longer than the size limit is skipped by its declared length, without
//!   buffering it, so the next message is read in step;
//! - a body that is not UTF-8 JSON, or not an object, is reported and dropped: the framing
//!   around it was sound, so the stream stays in step.

use serde_json::Value;

/// The largest DAP message accepted. Variables and stack traces of real programs stay far
/// below this; anything larger is a runaway or an attack.
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;

/// The longest header block. Real ones are one line of about 25 bytes.
pub const MAX_HEADER_BYTES: usize = 4 * 1024;

const SEPARATOR: &[u8] = b"\r\n\r\n";
const LENGTH_HEADER: &[u8] = b"content-length";

/// Why some input was not a message. The text names the problem for the editor's console.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A header block without `Content-Length`.
    #[error("a DAP message header has no Content-Length")]
    MissingLength,
    /// A `Content-Length` that is not a number.
    #[error("a DAP message header has an invalid Content-Length: {0:?}")]
    BadLength(String),
    /// A header block longer than [`MAX_HEADER_BYTES`].
    #[error("a DAP message header is longer than {MAX_HEADER_BYTES} bytes; skipped to the next Content-Length")]
    HeaderTooLong,
    /// A message over the size limit.
    #[error("a DAP message of {0} bytes exceeds the limit of {limit} bytes; skipped", limit = MAX_MESSAGE_BYTES)]
    TooLarge(usize),
    /// The body is not UTF-8 JSON.
    #[error("a DAP message is not valid JSON: {0}")]
    BadJson(String),
    /// The body is JSON but not an object.
    #[error("a DAP message is not a JSON object")]
    NotObject,
}

/// What the decoder is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// A header block.
    Header,
    /// A body of this many bytes.
    Body(usize),
    /// This many more bytes of an oversized body to drop.
    Skip(usize),
}

/// The incremental decoder: [`Decoder::push`] bytes, then iterate until it returns `None`.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    state: State,
    max_message: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(MAX_MESSAGE_BYTES)
    }
}

impl Decoder {
    /// A decoder that refuses messages over `max_message` bytes.
    pub fn new(max_message: usize) -> Decoder {
        Decoder {
            buf: Vec::new(),
            state: State::Header,
            max_message,
        }
    }

    /// Appends a chunk of input.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// Consumes one header block: its declared length, an error, or `None` for more input.
    fn header(&mut self) -> Option<Result<usize, DecodeError>> {
        let Some(end) = find(&self.buf, SEPARATOR) else {
            if self.buf.len() <= MAX_HEADER_BYTES {
                return None;
            }
            self.resync();
            return Some(Err(DecodeError::HeaderTooLong));
        };
        if end > MAX_HEADER_BYTES {
            self.resync();
            return Some(Err(DecodeError::HeaderTooLong));
        }
        let block: Vec<u8> = self.buf.drain(..end + SEPARATOR.len()).collect();
        Some(content_length(&block[..end]))
    }

    /// Drops input up to the next `Content-Length` after the first byte (all of it if none).
    fn resync(&mut self) {
        let lower = self.buf.to_ascii_lowercase();
        let next = find(&lower[1..], LENGTH_HEADER).map(|i| i + 1);
        match next {
            Some(i) => drop(self.buf.drain(..i)),
            // Keep a tail that may be the start of a `Content-Length` split across chunks.
            None => drop(
                self.buf
                    .drain(..self.buf.len() - LENGTH_HEADER.len().min(self.buf.len())),
            ),
        }
    }
}

/// Yields what the input pushed so far holds; `None` means "push more", not the end.
impl Iterator for Decoder {
    type Item = Result<Value, DecodeError>;

    /// The next message or error, or `None` when more input is needed.
    fn next(&mut self) -> Option<Result<Value, DecodeError>> {
        loop {
            match self.state {
                State::Header => match self.header()? {
                    Ok(len) if len > self.max_message => {
                        self.state = State::Skip(len);
                        return Some(Err(DecodeError::TooLarge(len)));
                    }
                    Ok(len) => self.state = State::Body(len),
                    Err(e) => return Some(Err(e)),
                },
                State::Body(len) => {
                    if self.buf.len() < len {
                        return None;
                    }
                    let body: Vec<u8> = self.buf.drain(..len).collect();
                    self.state = State::Header;
                    return Some(parse(&body));
                }
                State::Skip(left) => {
                    let n = left.min(self.buf.len());
                    self.buf.drain(..n);
                    if n < left {
                        self.state = State::Skip(left - n);
                        return None;
                    }
                    self.state = State::Header;
                }
            }
        }
    }
}

/// The `Content-Length` of a header block (without its blank line). Text before the last
/// `Content-Length` is ignored: other headers, or the rest of a broken message, which is how
/// the decoder gets back in step.
fn content_length(block: &[u8]) -> Result<usize, DecodeError> {
    let lower = block.to_ascii_lowercase();
    let at = rfind(&lower, LENGTH_HEADER).ok_or(DecodeError::MissingLength)?;
    let rest = String::from_utf8_lossy(&block[at + LENGTH_HEADER.len()..]);
    let line = rest.split("\r\n").next().unwrap_or_default();
    let value = line
        .trim_start()
        .strip_prefix(':')
        .ok_or_else(|| DecodeError::BadLength(line.trim().to_string()))?
        .trim();
    value.parse().map_err(|_| DecodeError::BadLength(value.to_string()))
}

fn parse(body: &[u8]) -> Result<Value, DecodeError> {
    let text = std::str::from_utf8(body).map_err(|e| DecodeError::BadJson(e.to_string()))?;
    match serde_json::from_str(text) {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(DecodeError::NotObject),
        Err(e) => Err(DecodeError::BadJson(e.to_string())),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).rposition(|w| w == needle)
}

/// Frames one message.
pub fn encode(msg: &Value) -> Vec<u8> {
    let body = msg.to_string();
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn frame(body: &str) -> Vec<u8> {
        format!("Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
    }

    fn drain(d: &mut Decoder) -> Vec<Result<Value, DecodeError>> {
        d.by_ref().collect()
    }

    #[test]
    fn encode_then_decode_round_trips() {
        let msg = json!({"seq": 1, "type": "request", "command": "évaluer", "arguments": {"x": "👋"}});
        let mut d = Decoder::default();
        d.push(&encode(&msg));
        assert_eq!(drain(&mut d), vec![Ok(msg)]);
    }

    #[test]
    fn messages_split_at_every_byte_are_whole() {
        let a = json!({"seq": 1, "type": "request", "command": "threads"});
        let b = json!({"seq": 2, "type": "request", "command": "évaluer"});
        let bytes = [encode(&a), encode(&b)].concat();
        let mut d = Decoder::default();
        let mut got = Vec::new();
        for byte in &bytes {
            d.push(std::slice::from_ref(byte));
            got.extend(drain(&mut d));
        }
        assert_eq!(got, vec![Ok(a), Ok(b)]);
    }

    #[test]
    fn several_messages_in_one_chunk() {
        let msgs: Vec<Value> = (1..=3).map(|i| json!({"seq": i})).collect();
        let mut d = Decoder::default();
        d.push(&msgs.iter().flat_map(encode).collect::<Vec<u8>>());
        assert_eq!(drain(&mut d), msgs.into_iter().map(Ok).collect::<Vec<_>>());
    }

    #[test]
    fn headers_are_case_insensitive_and_extra_ones_ignored() {
        let mut d = Decoder::default();
        d.push(b"content-type: application/vscode-jsonrpc\r\nCONTENT-LENGTH:  2 \r\n\r\n{}");
        assert_eq!(drain(&mut d), vec![Ok(json!({}))]);
    }

    #[test]
    fn bad_lengths_are_named_and_the_next_message_is_read() {
        let mut d = Decoder::default();
        d.push(b"Content-Length: abc\r\n\r\n");
        d.push(b"X-Other: 1\r\n\r\n");
        d.push(&frame("{\"seq\":7}"));
        assert_eq!(
            drain(&mut d),
            vec![
                Err(DecodeError::BadLength("abc".into())),
                Err(DecodeError::MissingLength),
                Ok(json!({"seq": 7}))
            ]
        );
    }

    #[test]
    fn a_body_shorter_than_declared_costs_its_neighbour_then_step_is_found() {
        let mut d = Decoder::default();
        d.push(b"Content-Length: 12\r\n\r\n{\"seq\":1}");
        d.push(&frame("{\"seq\":2}"));
        d.push(&frame("{\"seq\":3}"));
        let got = drain(&mut d);
        assert!(matches!(&got[0], Err(DecodeError::BadJson(_))), "{got:?}");
        assert_eq!(got[1..], [Err(DecodeError::MissingLength), Ok(json!({"seq": 3}))]);
    }

    #[test]
    fn oversized_messages_are_skipped_without_losing_step() {
        let mut d = Decoder::new(8);
        d.push(b"Content-Length: 20\r\n\r\n0123456789");
        assert_eq!(drain(&mut d), vec![Err(DecodeError::TooLarge(20))]);
        d.push(b"0123456789");
        d.push(&frame("{}"));
        assert_eq!(drain(&mut d), vec![Ok(json!({}))]);
    }

    #[test]
    fn endless_headers_resynchronise_at_the_next_content_length() {
        let mut d = Decoder::default();
        d.push(&vec![b'x'; MAX_HEADER_BYTES + 10]);
        assert_eq!(drain(&mut d), vec![Err(DecodeError::HeaderTooLong)]);
        d.push(b"garbage ");
        d.push(&frame("{\"seq\":1}"));
        // The garbage before the header becomes part of a header line that is ignored.
        assert_eq!(drain(&mut d), vec![Ok(json!({"seq": 1}))]);
    }

    #[test]
    fn bodies_that_are_not_json_objects_are_named() {
        let mut d = Decoder::default();
        d.push(&frame("{\"seq\":"));
        d.push(b"Content-Length: 2\r\n\r\n\xff\xfe");
        d.push(&frame("[1]"));
        d.push(&frame("{\"seq\":3}"));
        let got = drain(&mut d);
        assert!(matches!(&got[0], Err(DecodeError::BadJson(_))), "{got:?}");
        assert!(
            matches!(&got[1], Err(DecodeError::BadJson(m)) if m.contains("utf-8")),
            "{got:?}"
        );
        assert_eq!(got[2..], [Err(DecodeError::NotObject), Ok(json!({"seq": 3}))]);
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(
            DecodeError::TooLarge(20_000_000).to_string(),
            "a DAP message of 20000000 bytes exceeds the limit of 16777216 bytes; skipped"
        );
    }
}
