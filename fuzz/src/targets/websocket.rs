//! `websocket`: the room socket's WebSocket framing (`mesh_server::ws::codec::Decoder`), fed
//! what a client may send in arbitrary chunkings (the first byte picks the chunking, and
//! whether the decoder has the server's size limit or a tiny one, so that refusing an
//! oversized message from its header is reached too).
//!
//! Invariants checked beyond "no crash": no message is over the limit; the decoder never
//! holds more than one frame's worth of bytes past the limit; every message that decodes,
//! framed again as a client frame, decodes to the same message; after an error nothing more
//! comes out.

use mesh_protocol::MAX_FRAME_BYTES;
use mesh_server::ws::codec::{Decoder, Message, WsError};

use super::{Features, Shape, Target};
use crate::framing::chunks;

/// The target.
pub const TARGET: Target = Target {
    name: "websocket",
    about: "the room socket's WebSocket framing (server/src/ws/codec.rs) in arbitrary chunkings",
    run,
    shape: Shape::Stream,
    dictionary: &[
        // Frame starts: final binary, text, continuation, close, ping, pong (masked lengths).
        &[0x82, 0x85],
        &[0x81, 0x82],
        &[0x02, 0x81],
        &[0x80, 0x81],
        &[0x88, 0x82, 0, 0, 0, 0, 0x03, 0xE8],
        &[0x89, 0x80, 0, 0, 0, 0],
        &[0x8A, 0x80, 0, 0, 0, 0],
        // 16- and 64-bit lengths, unmasked and reserved bits.
        &[0x82, 0xFE, 0xFF, 0xFF],
        &[0x82, 0xFF, 0, 0, 0, 1, 0, 0, 0, 0],
        &[0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
        &[0x82, 0x05],
        &[0xC2, 0x81],
        &[0x8B, 0x80],
        &[0, 0, 0, 0],
    ],
    max_len: 16 * 1024,
};

/// The tiny size limit the other half of the inputs is decoded with.
const TINY_LIMIT: usize = 32;

/// The longest header a client frame has (2 bytes, an 8-byte length, a 4-byte mask).
const MAX_CLIENT_HEADER: usize = 14;

/// The longest control frame payload.
const MAX_CONTROL: usize = 125;

fn run(input: &[u8], fx: &mut Features) {
    let limit = match input.first() {
        Some(b) if b & 0x80 != 0 => TINY_LIMIT,
        _ => MAX_FRAME_BYTES,
    };
    let mut decoder = Decoder::new(limit);
    let mut messages = 0;
    let mut failed = false;
    for chunk in chunks(input) {
        decoder.push(chunk);
        loop {
            match decoder.next_message() {
                Ok(Some(m)) => {
                    assert!(!failed, "a message after an error");
                    messages += 1;
                    fx.hit(kind(&m));
                    if let Message::Binary(b) = &m {
                        assert!(b.len() <= limit, "a message over the limit");
                    }
                    round_trip(&m, limit);
                }
                Ok(None) => {
                    // At most one unfinished frame and the fragments before it.
                    let bound = limit + limit.max(MAX_CONTROL) + MAX_CLIENT_HEADER;
                    assert!(
                        decoder.held_bytes() <= bound,
                        "the decoder holds {} bytes",
                        decoder.held_bytes()
                    );
                    break;
                }
                Err(e) => {
                    assert!(!failed, "a second error");
                    failed = true;
                    fx.hit(error_kind(&e));
                }
            }
        }
    }
    fx.count("messages", messages);
}

/// Frames `m` as a client would (masked) and checks it decodes to itself.
fn round_trip(m: &Message, limit: usize) {
    let (opcode, payload): (u8, Vec<u8>) = match m {
        Message::Binary(b) => (0x2, b.to_vec()),
        Message::Ping(b) => (0x9, b.to_vec()),
        Message::Pong => (0xA, Vec::new()),
        Message::Close(1005) => (0x8, Vec::new()),
        Message::Close(code) => (0x8, code.to_be_bytes().to_vec()),
        // Only a text message's size is kept.
        Message::Text(n) => (0x1, vec![b'x'; *n]),
    };
    let frame = mesh_testkit::wsframe::client_frame(true, opcode, &payload, [0xA5, 0x5A, 0x3C, 0xC3]);
    let mut again = Decoder::new(limit);
    again.push(&frame);
    assert_eq!(
        again.next_message(),
        Ok(Some(m.clone())),
        "a message does not round-trip"
    );
    assert!(!again.is_holding(), "bytes left after one whole frame");
}

fn kind(m: &Message) -> &'static str {
    match m {
        Message::Binary(_) => "binary",
        Message::Text(_) => "text",
        Message::Ping(_) => "ping",
        Message::Pong => "pong",
        Message::Close(_) => "close",
    }
}

fn error_kind(e: &WsError) -> &'static str {
    match e {
        WsError::TooBig { .. } => "too-big",
        WsError::Protocol(p) => p,
    }
}
