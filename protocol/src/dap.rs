//! Debug Adapter Protocol framing: `Content-Length: N\r\n\r\n` then N bytes of JSON.
//!
//! Shared by the server (which speaks DAP to debug adapters in containers) and `mesh-proxy
//! dap` (which speaks it to editors). The decoder takes arbitrary chunks, ignores headers
//! other than `Content-Length` (case-insensitive), and refuses a frame over its limit
//! before buffering it.

use serde_json::Value;

/// The largest DAP message either side accepts.
pub const MAX_DAP_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// The longest header block; anything longer is not DAP.
const MAX_HEADER_BYTES: usize = 8 * 1024;

/// Why a DAP stream could not be decoded. The stream cannot be resynchronised after one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DapError {
    /// The header block is malformed.
    #[error("bad DAP header: {0}")]
    Header(String),
    /// A message is over the limit.
    #[error("a DAP message of {0} bytes is over the limit of {MAX_DAP_MESSAGE_BYTES}")]
    TooLarge(usize),
    /// A message's body is not JSON.
    #[error("a DAP message is not valid JSON: {0}")]
    Json(String),
}

/// Splits a byte stream into DAP messages.
#[derive(Debug, Default)]
pub struct DapDecoder {
    buf: Vec<u8>,
}

impl DapDecoder {
    /// Feeds a chunk; returns every complete message, or the first framing error.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<Value>, DapError> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some((header_len, body_len)) = self.frame()? {
            let end = header_len + body_len;
            if self.buf.len() < end {
                break;
            }
            let body = &self.buf[header_len..end];
            let value = serde_json::from_slice(body).map_err(|e| DapError::Json(e.to_string()));
            self.buf.drain(..end);
            out.push(value?);
        }
        Ok(out)
    }

    /// The next frame's header and body lengths, once its header is complete.
    fn frame(&self) -> Result<Option<(usize, usize)>, DapError> {
        let Some(at) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") else {
            if self.buf.len() > MAX_HEADER_BYTES {
                return Err(DapError::Header("no end of headers".into()));
            }
            return Ok(None);
        };
        let head = std::str::from_utf8(&self.buf[..at]).map_err(|_| DapError::Header("not UTF-8".into()))?;
        let mut length = None;
        for line in head.split("\r\n") {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| DapError::Header(format!("{line:?} is not a header")))?;
            if name.trim().eq_ignore_ascii_case("content-length") {
                let n: usize = value
                    .trim()
                    .parse()
                    .map_err(|_| DapError::Header(format!("Content-Length {:?} is not a number", value.trim())))?;
                length = Some(n);
            }
        }
        let n = length.ok_or_else(|| DapError::Header("no Content-Length".into()))?;
        if n > MAX_DAP_MESSAGE_BYTES {
            return Err(DapError::TooLarge(n));
        }
        Ok(Some((at + 4, n)))
    }
}

/// Frames one message.
pub fn encode_dap(message: &Value) -> Vec<u8> {
    let body = serde_json::to_vec(message).expect("a JSON value serialises");
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_split_and_joined_anyhow() {
        let a = json!({"seq": 1, "type": "request", "command": "threads", "arguments": null});
        let b = json!({"seq": 2, "type": "event", "event": "output", "body": {"output": "é\r\n\r\n"}});
        let mut stream = encode_dap(&a);
        stream.extend(b"content-length: ".iter().chain(b"".iter()));
        let body_b = serde_json::to_vec(&b).unwrap();
        stream.extend(format!("{}\r\nContent-Type: x\r\n\r\n", body_b.len()).bytes());
        stream.extend(&body_b);
        for size in [1, 3, 7, stream.len()] {
            let mut d = DapDecoder::default();
            let mut got = Vec::new();
            for chunk in stream.chunks(size) {
                got.extend(d.push(chunk).unwrap());
            }
            assert_eq!(got, vec![a.clone(), b.clone()], "chunks of {size}");
        }
    }

    #[test]
    fn bad_frames_are_errors() {
        let mut d = DapDecoder::default();
        assert!(matches!(d.push(b"Content-Length: x\r\n\r\n"), Err(DapError::Header(_))));
        let mut d = DapDecoder::default();
        assert_eq!(
            d.push(format!("Content-Length: {}\r\n\r\n", MAX_DAP_MESSAGE_BYTES + 1).as_bytes()),
            Err(DapError::TooLarge(MAX_DAP_MESSAGE_BYTES + 1))
        );
        let mut d = DapDecoder::default();
        assert!(matches!(d.push(b"Content-Length: 2\r\n\r\n{x"), Err(DapError::Json(_))));
        let mut d = DapDecoder::default();
        assert!(matches!(
            d.push(&[b'a'; MAX_HEADER_BYTES + 1]),
            Err(DapError::Header(_))
        ));
    }
}
