//! `mcp_edit`: what `mesh-proxy mcp` does with an agent's text: the anchor edit
//! (`session::replace_op`, a room text, `old_text` and `new_text` from the agent), the search
//! pattern (substring and regex) and the read window.
//!
//! Invariants checked beyond "no crash": an edit that is accepted changes the text exactly as
//! replacing the one occurrence of `old_text` would, and puts the cursor inside the result;
//! an anchor that occurs twice or never is refused; search and read stay within their bounds.

use mesh_proxy::mcp::tools::{self, Pattern, MAX_MATCHES};
use mesh_proxy::session::replace_op;
use mesh_proxy::sync::apply_ops;

use super::{Features, Shape, Target};

/// The target.
pub const TARGET: Target = Target {
    name: "mcp_edit",
    about: "mesh-proxy mcp's anchor edits, search patterns and read windows (lsp-proxy/src/mcp/)",
    run,
    shape: Shape::Raw,
    dictionary: &[
        b"\0",
        b"\n",
        b"\r\n",
        b"(",
        b")",
        b"*",
        b".*",
        b"\\",
        b"\xf0\x9f\x98\x80",
        b"\xc3\xa9",
        b"[^a]+",
        b"{1000}",
    ],
    max_len: 8 * 1024,
};

fn run(input: &[u8], fx: &mut Features) {
    // Three parts split at NUL bytes: the room's text, old_text, new_text.
    let mut parts = input.splitn(3, |b| *b == 0).map(String::from_utf8_lossy);
    let text = parts.next().unwrap_or_default().into_owned();
    let old = parts.next().unwrap_or_default().into_owned();
    let new = parts.next().unwrap_or_default().into_owned();
    match replace_op(&text, &old, &new) {
        Ok((op, cursor, _line)) => {
            fx.hit("edit-ok");
            let got = apply_ops(&text, &[op]);
            assert_eq!(
                got,
                text.replacen(&old, &new, 1),
                "an anchor edit changed more than its anchor"
            );
            assert!(
                cursor <= got.encode_utf16().count() as u64,
                "the agent's cursor is past the end of the text"
            );
            assert_eq!(occurrences(&text, &old), 1, "an ambiguous anchor was accepted");
        }
        Err(e) => {
            fx.hit(if e.contains("times") {
                "edit-ambiguous"
            } else {
                "edit-refused"
            });
            assert!(
                old.is_empty() || occurrences(&text, &old) != 1,
                "a unique anchor was refused: {e}"
            );
        }
    }
    let files = vec![("f".to_string(), text.clone())];
    for is_regex in [false, true] {
        match Pattern::new(&old, is_regex) {
            Ok(p) => {
                let out = tools::search(&files, &p, None);
                fx.hit("search-ok");
                assert!(out.lines().count() <= MAX_MATCHES + 1, "search went past its bound");
            }
            Err(_) => fx.hit("search-refused"),
        }
    }
    let start = new.len() % 7;
    if let Ok(window) = tools::read_window(&text, Some(start), Some(3)) {
        fx.hit("read-ok");
        assert!(window.len() <= text.len() + 100, "a read window grew the text");
    }
}

/// Where `needle` starts in `text`, overlapping occurrences included.
fn occurrences(text: &str, needle: &str) -> usize {
    text.char_indices()
        .filter(|(i, _)| text[*i..].starts_with(needle))
        .count()
}
