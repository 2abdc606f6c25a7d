//! The wire of mesh: room ids, the framing of the room socket (the standard Yjs sync and
//! awareness protocol plus mesh's own extension messages), error codes and the REST types.
//!
//! Invariant: this crate does no IO. It takes bytes and returns values, or takes values and
//! returns bytes, so that the server, the proxy and the tests agree on one definition.

pub mod awareness;
pub mod codec;
pub mod dap;
pub mod doc;
pub mod error;
pub mod ghost;
pub mod messages;
pub mod rest;
pub mod room_id;

pub use codec::{decode_frame, encode_mesh, Frame, FrameError};
pub use error::ErrorCode;
pub use messages::{ClientMessage, Request, ServerMessage};
pub use room_id::RoomId;

/// Version of mesh's extension messages. A client announces the version it speaks in
/// [`ClientMessage::Hello`]; the server answers with its own in [`ServerMessage::Welcome`] and
/// refuses a client whose major version differs.
pub const PROTOCOL_VERSION: u32 = 1;

/// The y-protocols message tag that carries mesh's extension messages. Tags 0-3 belong to
/// y-protocols (sync, awareness, auth, query-awareness); stock Yjs clients never receive this
/// tag because the server sends mesh messages only to clients that said `Hello`.
pub const MESH_MESSAGE_TAG: u8 = 100;

/// The largest frame a client may send on the room socket. A whole 1 MB file pasted at once,
/// plus the initial sync of a large project, fits with room to spare.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// The largest mesh extension message (JSON) a client may send; chat and control messages
/// are small, so anything bigger is a bug or an attack.
pub const MAX_MESH_MESSAGE_BYTES: usize = 64 * 1024;

/// The longest chat message, in bytes of UTF-8.
pub const MAX_CHAT_BYTES: usize = 4 * 1024;

/// How many chat messages a room keeps; older ones are dropped from the shared document.
pub const CHAT_HISTORY_LEN: u32 = 200;

/// The longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
