//! `dap`: the DAP `Content-Length` codec of `mesh_protocol::dap`, fed in arbitrary chunkings
//! (the first byte of the input picks the chunking, and whether the decoder has the default
//! size limit or a tiny one, so that skipping oversized bodies is reached too).
//!
//! Invariant checked beyond "no crash": every message that decodes encodes back to a frame
//! that decodes to the same message.

use mesh_protocol::dap::{encode, DecodeError, Decoder, MAX_MESSAGE_BYTES};

use super::{Features, Shape, Target};
use crate::framing::chunks;

/// The target.
pub const TARGET: Target = Target {
    name: "dap",
    about: "the DAP Content-Length codec (protocol/src/dap.rs) in arbitrary chunkings",
    run,
    shape: Shape::Stream,
    dictionary: &[
        b"Content-Length: ",
        b"content-length:",
        b"\r\n",
        b"\r\n\r\n",
        b"Content-Type: x\r\n",
        b"4294967296",
        b"18446744073709551616",
        b"{\"seq\":1}",
        b"{",
        b"}",
        b"\"",
        b"-1",
        b"+1",
    ],
    max_len: 16 * 1024,
};

/// The tiny size limit the other half of the inputs is decoded with.
const TINY_LIMIT: usize = 64;

fn run(input: &[u8], fx: &mut Features) {
    let limit = match input.first() {
        Some(b) if b & 0x80 != 0 => TINY_LIMIT,
        _ => MAX_MESSAGE_BYTES,
    };
    let mut decoder = Decoder::new(limit);
    let mut messages = 0;
    for chunk in chunks(input) {
        decoder.push(chunk);
        for result in decoder.by_ref() {
            match result {
                Ok(value) => {
                    messages += 1;
                    let mut again = Decoder::default();
                    again.push(&encode(&value));
                    assert_eq!(again.next(), Some(Ok(value)), "a DAP message does not round-trip");
                }
                Err(e) => fx.hit(error_kind(&e)),
            }
        }
    }
    fx.count("messages", messages);
}

fn error_kind(e: &DecodeError) -> &'static str {
    match e {
        DecodeError::MissingLength => "missing-length",
        DecodeError::BadLength(_) => "bad-length",
        DecodeError::HeaderTooLong => "header-too-long",
        DecodeError::TooLarge(_) => "too-large",
        DecodeError::BadJson(_) => "bad-json",
        DecodeError::NotObject => "not-object",
    }
}
