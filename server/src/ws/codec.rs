//! The WebSocket framing of the room socket, sans IO: [`Decoder`] turns the bytes a client
//! sends into messages, and [`header`] frames what the server sends.
//!
//! The server reads and writes the socket itself (see [`super::socket`]) instead of through a
//! WebSocket library's stream, so that a frame the room encodes once is written to every
//! connection straight from the shared bytes (a header of a few bytes and the payload, one
//! vectored write), and so that an idle connection holds no buffers. Frame headers are
//! parsed and formatted by `tungstenite` (already the WebSocket library of the server's
//! dependencies and of its clients); what is here is the message level: masking,
//! fragments, control frames and the size limit, which is checked on each frame's header
//! before its payload is kept.

use std::io::Cursor;

use bytes::{Buf, Bytes, BytesMut};
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

/// Opcodes of the frames the server writes.
pub const BINARY: u8 = 0x2;
/// See [`BINARY`].
pub const CLOSE: u8 = 0x8;
/// See [`BINARY`].
pub const PING: u8 = 0x9;
/// See [`BINARY`].
pub const PONG: u8 = 0xA;

/// The longest frame header the server writes: 2 bytes, then an 8-byte length (server
/// frames are not masked).
pub const MAX_HEADER_BYTES: usize = 10;

/// The longest payload of a control frame (RFC 6455, 5.5).
const MAX_CONTROL_PAYLOAD: u64 = 125;

/// A message a client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A binary message: the room protocol.
    Binary(Bytes),
    /// A text message (not part of the protocol; only its size is kept).
    Text(usize),
    /// A ping: the server answers it with a pong carrying the same payload.
    Ping(Bytes),
    /// A pong (the answer to the server's ping).
    Pong,
    /// The client is closing, with the code it gave (1005 when it gave none).
    Close(u16),
}

/// Why the stream cannot be read on: the connection is closed with [`WsError::close_code`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WsError {
    /// A message over the limit (its header said so; its payload was not kept).
    #[error("message exceeds {limit} bytes")]
    TooBig {
        /// The limit.
        limit: usize,
    },
    /// A frame RFC 6455 does not allow from a client.
    #[error("websocket protocol error: {0}")]
    Protocol(&'static str),
}

impl WsError {
    /// The close code the connection ends with.
    pub fn close_code(&self) -> u16 {
        match self {
            WsError::TooBig { .. } => 1009,
            WsError::Protocol(_) => 1002,
        }
    }
}

/// Decodes what a client sends. Bytes go in with [`Decoder::push`]; complete messages come
/// out of [`Decoder::next_message`]. It keeps only the bytes of an unfinished frame and the
/// fragments of an unfinished message, so an idle connection's decoder holds nothing.
#[derive(Debug)]
pub struct Decoder {
    limit: usize,
    /// Bytes received and not yet decoded.
    input: BytesMut,
    /// The fragments so far of a fragmented data message, and whether it is text.
    fragments: Option<(bool, BytesMut)>,
    /// An error was returned: the stream is not read on.
    failed: bool,
}

impl Decoder {
    /// A decoder for messages of at most `limit` bytes.
    pub fn new(limit: usize) -> Decoder {
        Decoder {
            limit,
            input: BytesMut::new(),
            fragments: None,
            failed: false,
        }
    }

    /// Adds bytes read from the socket.
    pub fn push(&mut self, bytes: &[u8]) {
        if !self.failed {
            self.input.extend_from_slice(bytes);
        }
    }

    /// Bytes held: of an unfinished frame, and the fragments of an unfinished message.
    pub fn held_bytes(&self) -> usize {
        self.input.len() + self.fragments.as_ref().map_or(0, |(_, f)| f.len())
    }

    /// Whether bytes of an unfinished frame or message are held.
    pub fn is_holding(&self) -> bool {
        !self.input.is_empty() || self.fragments.is_some()
    }

    /// The next complete message, `Ok(None)` when more bytes are needed, or the error that
    /// ends the stream (returned once; afterwards the decoder yields nothing).
    pub fn next_message(&mut self) -> Result<Option<Message>, WsError> {
        if self.failed {
            return Ok(None);
        }
        let result = self.decode();
        if result.is_err() {
            self.failed = true;
            self.input = BytesMut::new();
            self.fragments = None;
        }
        result
    }

    fn decode(&mut self) -> Result<Option<Message>, WsError> {
        loop {
            let mut cursor = Cursor::new(&self.input[..]);
            let (header, len) = match FrameHeader::parse(&mut cursor) {
                Ok(Some(parsed)) => parsed,
                Ok(None) => {
                    self.release_if_empty();
                    return Ok(None);
                }
                Err(_) => return Err(WsError::Protocol("reserved opcode")),
            };
            let header_len = cursor.position() as usize;
            let Some(mask) = header.mask else {
                return Err(WsError::Protocol("client frames must be masked"));
            };
            if header.rsv1 || header.rsv2 || header.rsv3 {
                return Err(WsError::Protocol("reserved bits set without an extension"));
            }
            if let OpCode::Control(_) = header.opcode {
                if !header.is_final {
                    return Err(WsError::Protocol("fragmented control frame"));
                }
                if len > MAX_CONTROL_PAYLOAD {
                    return Err(WsError::Protocol("control frame over 125 bytes"));
                }
            }
            // The size check comes before the payload is waited for, let alone kept.
            let so_far = self.fragments.as_ref().map_or(0, |(_, f)| f.len()) as u64;
            if let OpCode::Data(_) = header.opcode {
                if so_far.saturating_add(len) > self.limit as u64 {
                    return Err(WsError::TooBig { limit: self.limit });
                }
            }
            let len = len as usize;
            if self.input.len() - header_len < len {
                // The frame is not all here yet: room for the rest, once.
                self.input.reserve(header_len + len - self.input.len());
                return Ok(None);
            }
            self.input.advance(header_len);
            let mut payload = self.input.split_to(len);
            unmask(&mut payload, mask);
            self.release_if_empty();
            match header.opcode {
                OpCode::Control(Control::Ping) => return Ok(Some(Message::Ping(payload.freeze()))),
                OpCode::Control(Control::Pong) => return Ok(Some(Message::Pong)),
                OpCode::Control(Control::Close) => return close_code(&payload).map(|c| Some(Message::Close(c))),
                OpCode::Control(Control::Reserved(_)) | OpCode::Data(Data::Reserved(_)) => {
                    return Err(WsError::Protocol("reserved opcode"))
                }
                OpCode::Data(Data::Continue) => {
                    let Some((_, fragments)) = self.fragments.as_mut() else {
                        return Err(WsError::Protocol("continuation without a message to continue"));
                    };
                    fragments.extend_from_slice(&payload);
                    if header.is_final {
                        let (text, whole) = self.fragments.take().unwrap_or_default();
                        return Ok(Some(data(text, whole)));
                    }
                }
                OpCode::Data(kind) => {
                    if self.fragments.is_some() {
                        return Err(WsError::Protocol("a new message before the last one ended"));
                    }
                    let text = kind == Data::Text;
                    if header.is_final {
                        return Ok(Some(data(text, payload)));
                    }
                    self.fragments = Some((text, payload));
                }
            }
        }
    }

    /// Gives back the input buffer's memory once nothing is in it: a connection that sent
    /// one large message does not keep its size for the rest of its life.
    fn release_if_empty(&mut self) {
        if self.input.is_empty() && self.input.capacity() > 0 {
            self.input = BytesMut::new();
        }
    }
}

fn data(text: bool, payload: BytesMut) -> Message {
    if text {
        Message::Text(payload.len())
    } else {
        Message::Binary(payload.freeze())
    }
}

/// The code of a close frame's payload: none (1005), or two bytes of a code a peer may send.
fn close_code(payload: &[u8]) -> Result<u16, WsError> {
    match payload {
        [] => Ok(1005),
        [_] => Err(WsError::Protocol("close frame with a one-byte payload")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            let allowed = matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999);
            if !allowed {
                return Err(WsError::Protocol("close code a peer may not send"));
            }
            if std::str::from_utf8(reason).is_err() {
                return Err(WsError::Protocol("close reason is not UTF-8"));
            }
            Ok(code)
        }
    }
}

fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

/// The header of a final, unmasked server frame of `opcode` carrying `len` bytes: the buffer
/// and how many of its bytes are the header.
pub fn header(opcode: u8, len: usize) -> ([u8; MAX_HEADER_BYTES], usize) {
    let mut out = [0u8; MAX_HEADER_BYTES];
    let header = FrameHeader {
        is_final: true,
        opcode: OpCode::from(opcode),
        ..FrameHeader::default()
    };
    let mut cursor = Cursor::new(&mut out[..]);
    // Ten bytes hold any unmasked header; formatting into them cannot fail.
    let _ = header.format(len as u64, &mut cursor);
    let n = cursor.position() as usize;
    (out, n)
}

/// The length of the header [`header`] writes for a payload of `len` bytes.
pub fn header_len(len: usize) -> usize {
    match len {
        0..=125 => 2,
        126..=65535 => 4,
        _ => 10,
    }
}

/// A close frame's payload: the code, then the reason cut to fit a control frame.
pub fn close_payload(code: u16, reason: &str) -> Bytes {
    let mut end = reason.len().min(MAX_CONTROL_PAYLOAD as usize - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = Vec::with_capacity(2 + end);
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(&reason.as_bytes()[..end]);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame: masked, as browsers send them.
    fn client(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let header = FrameHeader {
            is_final: fin,
            opcode: OpCode::from(opcode),
            mask: Some(mask),
            ..FrameHeader::default()
        };
        let mut out = Vec::new();
        header.format(payload.len() as u64, &mut out).unwrap();
        let mut body = payload.to_vec();
        unmask(&mut body, mask);
        out.extend_from_slice(&body);
        out
    }

    fn decode_all(limit: usize, bytes: &[u8]) -> Vec<Result<Message, WsError>> {
        let mut d = Decoder::new(limit);
        d.push(bytes);
        let mut out = Vec::new();
        loop {
            match d.next_message() {
                Ok(Some(m)) => out.push(Ok(m)),
                Ok(None) => return out,
                Err(e) => {
                    out.push(Err(e));
                    return out;
                }
            }
        }
    }

    #[test]
    fn a_binary_message_is_unmasked() {
        let got = decode_all(1024, &client(true, 2, b"hello"));
        assert_eq!(got, vec![Ok(Message::Binary(Bytes::from_static(b"hello")))]);
    }

    #[test]
    fn bytes_arriving_one_at_a_time_make_the_same_messages() {
        let mut wire = client(true, 2, &[7u8; 300]);
        wire.extend(client(true, 9, b"p"));
        let mut d = Decoder::new(1024);
        let mut got = Vec::new();
        for b in &wire {
            d.push(&[*b]);
            while let Some(m) = d.next_message().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(
            got,
            vec![
                Message::Binary(Bytes::from(vec![7u8; 300])),
                Message::Ping(Bytes::from_static(b"p"))
            ]
        );
        assert!(!d.is_holding());
    }

    #[test]
    fn fragments_make_one_message_and_control_frames_may_come_between_them() {
        let mut wire = client(false, 2, b"ab");
        wire.extend(client(true, 9, b""));
        wire.extend(client(false, 0, b"cd"));
        wire.extend(client(true, 0, b"e"));
        assert_eq!(
            decode_all(1024, &wire),
            vec![
                Ok(Message::Ping(Bytes::new())),
                Ok(Message::Binary(Bytes::from_static(b"abcde")))
            ]
        );
    }

    #[test]
    fn an_unmasked_client_frame_is_a_protocol_error() {
        let mut out = Vec::new();
        FrameHeader {
            opcode: OpCode::from(2),
            ..FrameHeader::default()
        }
        .format(1, &mut out)
        .unwrap();
        out.push(0);
        assert_eq!(decode_all(1024, &out)[0].as_ref().unwrap_err().close_code(), 1002);
    }

    #[test]
    fn a_message_over_the_limit_is_refused_from_its_header_before_its_payload_arrives() {
        let wire = client(true, 2, &[0u8; 2000]);
        // Only the header (and a few bytes) is here: the refusal does not wait for the rest.
        let got = decode_all(1024, &wire[..20]);
        assert_eq!(got, vec![Err(WsError::TooBig { limit: 1024 })]);
    }

    #[test]
    fn fragments_count_together_against_the_limit() {
        let mut wire = client(false, 2, &[0u8; 600]);
        wire.extend(client(true, 0, &[0u8; 600]));
        assert_eq!(decode_all(1024, &wire), vec![Err(WsError::TooBig { limit: 1024 })]);
    }

    #[test]
    fn control_frames_must_be_short_and_final() {
        assert_eq!(
            decode_all(1024, &client(true, 9, &[0u8; 126]))[0]
                .as_ref()
                .unwrap_err()
                .close_code(),
            1002
        );
        assert_eq!(
            decode_all(1024, &client(false, 9, b""))[0]
                .as_ref()
                .unwrap_err()
                .close_code(),
            1002
        );
    }

    #[test]
    fn a_continuation_needs_a_message_and_a_message_needs_the_last_one_finished() {
        assert!(decode_all(1024, &client(true, 0, b"x"))[0].is_err());
        let mut wire = client(false, 2, b"a");
        wire.extend(client(true, 2, b"b"));
        assert!(decode_all(1024, &wire)[0].is_err());
    }

    #[test]
    fn reserved_bits_and_opcodes_are_protocol_errors() {
        let mut wire = client(true, 2, b"x");
        wire[0] |= 0x40;
        assert!(decode_all(1024, &wire)[0].is_err());
        assert!(decode_all(1024, &client(true, 3, b"x"))[0].is_err());
        assert!(decode_all(1024, &client(true, 0xB, b"x"))[0].is_err());
    }

    #[test]
    fn close_codes_are_read_and_checked() {
        assert_eq!(decode_all(1024, &client(true, 8, b"")), vec![Ok(Message::Close(1005))]);
        assert_eq!(
            decode_all(1024, &client(true, 8, &[0x03, 0xE8, b'o', b'k'])),
            vec![Ok(Message::Close(1000))]
        );
        // 1005 and 1006 are for reporting, never sent; a one-byte payload has no code.
        assert!(decode_all(1024, &client(true, 8, &[0x03, 0xED]))[0].is_err());
        assert!(decode_all(1024, &client(true, 8, &[0x03]))[0].is_err());
        assert!(decode_all(1024, &client(true, 8, &[0x03, 0xE8, 0xFF]))[0].is_err());
    }

    #[test]
    fn text_messages_are_reported_by_size() {
        assert_eq!(decode_all(1024, &client(true, 1, b"hi")), vec![Ok(Message::Text(2))]);
    }

    #[test]
    fn after_an_error_nothing_more_is_decoded() {
        let mut d = Decoder::new(1024);
        d.push(&client(true, 3, b"x"));
        assert!(d.next_message().is_err());
        d.push(&client(true, 2, b"x"));
        assert_eq!(d.next_message(), Ok(None));
        assert!(!d.is_holding());
    }

    #[test]
    fn an_idle_decoder_holds_no_memory() {
        let mut d = Decoder::new(1 << 20);
        d.push(&client(true, 2, &[1u8; 100_000]));
        assert!(matches!(d.next_message(), Ok(Some(Message::Binary(_)))));
        assert_eq!(d.input.capacity(), 0);
    }

    #[test]
    fn server_headers_use_the_shortest_length() {
        assert_eq!(header(BINARY, 5).1, 2);
        assert_eq!(header(BINARY, 126).1, 4);
        assert_eq!(header(BINARY, 70_000).1, 10);
        for len in [0, 125, 126, 65535, 65536, 1 << 40] {
            assert_eq!(header(BINARY, len).1, header_len(len), "{len}");
        }
        let (h, n) = header(BINARY, 70_000);
        let (parsed, len) = FrameHeader::parse(&mut Cursor::new(&h[..n])).unwrap().unwrap();
        assert_eq!((parsed.opcode, len, parsed.mask), (OpCode::from(BINARY), 70_000, None));
    }

    #[test]
    fn a_close_reason_is_cut_at_a_character_to_fit_a_control_frame() {
        let long = "é".repeat(100);
        let p = close_payload(4000, &long);
        assert!(p.len() <= 125);
        assert!(std::str::from_utf8(&p[2..]).is_ok());
    }
}
