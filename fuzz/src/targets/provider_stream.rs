//! `provider_stream`: the ghost's reader of a provider's answer (`mesh_ghost::sse`), the
//! server-sent events of an OpenAI-compatible chat-completions stream, fed in arbitrary
//! chunkings (the first byte of the input picks the chunking). The provider is outside input:
//! a hosted service or whatever answers at the configured URL.
//!
//! Invariant checked beyond "no crash": the chunking never changes the outcome. The same
//! bytes fed at once and fed in pieces give the same text, the same end and the same error.

use mesh_ghost::sse::{Chunk, SseParser};

use super::{Features, Shape, Target};
use crate::framing::chunks;

/// The target.
pub const TARGET: Target = Target {
    name: "provider_stream",
    about: "the ghost's reader of a provider's chat-completions event stream (agent/src/sse.rs) in arbitrary chunkings",
    run,
    shape: Shape::Stream,
    dictionary: &[
        b"data: ",
        b"data:",
        b"[DONE]",
        b"\n\n",
        b"\r\n",
        b": keep-alive\n",
        b"event: x\n",
        b"{\"choices\":[{\"delta\":{\"content\":\"",
        b"\"}}]}",
        b"{\"error\":{\"message\":\"x\"}}",
        b"\xff",
    ],
    max_len: 16 * 1024,
};

/// Everything a stream came to: its text, whether it ended, and its error.
fn outcome<'a>(pieces: impl Iterator<Item = &'a [u8]>, fx: Option<&mut Features>) -> (String, bool, Option<String>) {
    let mut parser = SseParser::new();
    let mut text = String::new();
    let mut done = false;
    let mut deltas = 0;
    for piece in pieces {
        match parser.feed(piece) {
            Ok(chunks) => {
                for c in chunks {
                    match c {
                        Chunk::Delta(t) => {
                            deltas += 1;
                            text.push_str(&t);
                        }
                        Chunk::Done => done = true,
                    }
                }
            }
            Err(e) => {
                if let Some(fx) = fx {
                    fx.hit(&format!("error:{}", e.to_string().split(':').next().unwrap_or("")));
                }
                return (text, done, Some(e.to_string()));
            }
        }
    }
    if let Some(fx) = fx {
        fx.count("deltas", deltas);
        if done {
            fx.hit("done");
        }
    }
    (text, done, None)
}

fn run(input: &[u8], fx: &mut Features) {
    let body = input.get(1..).unwrap_or(&[]);
    let whole = outcome(std::iter::once(body), None);
    let pieces = outcome(chunks(input).into_iter(), Some(fx));
    // On an error, the pieces before it were already handed out when fed in pieces and were
    // not when fed at once (the ghost drops the whole answer either way): compare the error.
    if whole.2.is_some() || pieces.2.is_some() {
        assert_eq!(whole.2, pieces.2, "the chunking changed the error");
        return;
    }
    assert_eq!(whole, pieces, "the chunking changed what the stream says");
}
