//! `lsp`: the guard in front of mesh-proxy's LSP library (`mesh_proxy::lsp::guard_stdin`),
//! which reads the editor's stdin and drops malformed frames, fed in arbitrary chunkings.
//!
//! Invariants checked beyond "no crash, no hang": the guard reads the editor's stdin to its
//! end (it promises that one bad message never ends the session), and what it passes on is
//! only whole `Content-Length` frames whose bodies are JSON objects (read back with the DAP
//! codec, which is the same framing).

use std::cell::RefCell;

use mesh_protocol::dap::Decoder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{Features, Shape, Target};
use crate::framing::chunks;

/// The target.
pub const TARGET: Target = Target {
    name: "lsp",
    about: "mesh-proxy's LSP stdin guard (lsp-proxy/src/lsp.rs) in arbitrary chunkings",
    run,
    shape: Shape::Stream,
    dictionary: &[
        b"Content-Length: ",
        b"content-length:",
        b"\r\n",
        b"\r\n\r\n",
        b"\n",
        b"Content-Type: x\r\n",
        b"4294967296",
        b"18446744073709551616",
        b"{\"jsonrpc\":\"2.0\"}",
        b"{",
        b"}",
        b"\"",
        b"-1",
        b"\xff",
        b"\xc3",
    ],
    max_len: 16 * 1024,
};

/// Buffer of the pipe from the editor to the guard: tiny, so that a guard that stops
/// reading early makes the editor's writes fail (all but the last few bytes of input).
const STDIN_PIPE_BYTES: usize = 64;

/// Buffer of the pipe from the guard to the LSP library: small, so that back-pressure is
/// exercised too.
const PIPE_BYTES: usize = 4 * 1024;

thread_local! {
    /// One runtime per child process: building one per input would dominate the run time.
    static RUNTIME: RefCell<tokio::runtime::Runtime> = RefCell::new(
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime builds"),
    );
}

fn run(input: &[u8], fx: &mut Features) {
    let (all_read, forwarded) = RUNTIME.with(|rt| {
        rt.borrow().block_on(async {
            let (mut editor, stdin) = tokio::io::duplex(STDIN_PIPE_BYTES);
            let (guarded, feed) = tokio::io::duplex(PIPE_BYTES);
            let write = async move {
                for chunk in chunks(input) {
                    if editor.write_all(chunk).await.is_err() {
                        return false;
                    }
                }
                // Dropping the writer is the editor closing stdin.
                true
            };
            let read = async move {
                let mut guarded = guarded;
                let mut out = Vec::new();
                let _ = guarded.read_to_end(&mut out).await;
                out
            };
            let ((), all_read, out) = tokio::join!(mesh_proxy::lsp::guard_stdin(stdin, feed), write, read);
            (all_read, out)
        })
    });
    assert!(
        all_read,
        "the guard stopped reading the editor's stdin before it closed"
    );
    let mut decoder = Decoder::default();
    decoder.push(&forwarded);
    let mut frames = 0;
    for result in decoder.by_ref() {
        assert!(result.is_ok(), "the guard passed on a malformed frame: {result:?}");
        frames += 1;
    }
    assert!(decoder.next().is_none());
    fx.count("forwarded", frames);
}
