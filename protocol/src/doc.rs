//! The shape of a room's shared document: the names of its root types. Every client that
//! wants to interoperate (the proxy, a browser page, a bot) uses these names.
//!
//! - `files`: `Y.Map<path, Y.Text>` — the project's text files, keyed by a relative path with
//!   `/` separators. Offsets in the texts are UTF-16 code units.
//! - `chat`: `Y.Array<{id, author, conn_id, text, ts}>` — the newest
//!   [`crate::CHAT_HISTORY_LEN`] chat messages; the server appends and trims it.
//! - `meta`: `Y.Map` — room metadata (name, language).
//! - `comments`, `breakpoints`: `Y.Map`s reserved for review comments and shared breakpoints.
//!
//! Awareness states of mesh clients are JSON objects of the form
//! `{"user": {"name", "color"}, "cursor": {"path", "anchor", "head"}}` where `anchor`/`head`
//! are UTF-16 offsets into the file's text.

/// Root map of file texts.
pub const FILES: &str = "files";
/// Root array of chat messages.
pub const CHAT: &str = "chat";
/// Root map of room metadata.
pub const META: &str = "meta";
/// Root map of review comments.
pub const COMMENTS: &str = "comments";
/// Root map of shared breakpoints.
pub const BREAKPOINTS: &str = "breakpoints";

/// A new document set up the way every mesh replica must be: offsets in UTF-16 code units
/// (what LSP and Yjs in browsers use), with a random client id.
pub fn new_doc() -> yrs::Doc {
    yrs::Doc::with_options(yrs::Options {
        offset_kind: yrs::OffsetKind::Utf16,
        ..Default::default()
    })
}
