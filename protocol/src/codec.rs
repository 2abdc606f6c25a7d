//! Framing of the room socket. Each WebSocket binary frame holds y-protocols messages
//! (`varuint tag` + payload); mesh's own messages use tag [`MESH_MESSAGE_TAG`] with a JSON
//! payload, so stock Yjs clients can share the socket protocol unchanged.

use serde::de::DeserializeOwned;
use serde::Serialize;
use yrs::encoding::read::Cursor;
use yrs::sync::Message;
use yrs::updates::decoder::{Decode, Decoder, DecoderV1};
use yrs::updates::encoder::Encode;

use crate::{MAX_FRAME_BYTES, MAX_MESH_MESSAGE_BYTES, MESH_MESSAGE_TAG};

/// The most y-protocols messages one frame may pack. Stock clients send one per frame.
pub const MAX_MESSAGES_PER_FRAME: usize = 64;

/// One decoded message of a frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame<M> {
    /// A standard y-protocols message (sync, awareness, auth, query-awareness).
    Yjs(Message),
    /// A mesh extension message.
    Mesh(M),
}

/// Why a frame was refused. The text is meant for the peer: it names the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The frame is larger than the limit (for clients' frames, [`MAX_FRAME_BYTES`]).
    #[error("frame of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The frame's size.
        size: usize,
        /// The limit it passed.
        limit: usize,
    },
    /// The frame has no message in it.
    #[error("empty frame")]
    Empty,
    /// The frame packs more than [`MAX_MESSAGES_PER_FRAME`] messages.
    #[error("frame packs more than {MAX_MESSAGES_PER_FRAME} messages")]
    TooManyMessages,
    /// The y-protocols encoding is broken.
    #[error("malformed y-protocols message: {0}")]
    Malformed(String),
    /// A custom tag that is not mesh's.
    #[error("unknown message tag {0}")]
    UnknownTag(u8),
    /// A mesh message over [`MAX_MESH_MESSAGE_BYTES`].
    #[error("mesh message of {0} bytes exceeds the limit of {MAX_MESH_MESSAGE_BYTES} bytes")]
    MeshTooLarge(usize),
    /// A mesh message whose JSON does not match any known message.
    #[error("invalid mesh message: {0}")]
    BadMesh(String),
}

impl FrameError {
    /// The wire error code for this problem.
    pub fn code(&self) -> crate::ErrorCode {
        match self {
            FrameError::TooLarge { .. } | FrameError::MeshTooLarge(_) => crate::ErrorCode::TooLarge,
            FrameError::UnknownTag(_) => crate::ErrorCode::UnknownMessage,
            _ => crate::ErrorCode::BadRequest,
        }
    }
}

/// Decodes a frame into its messages. Mesh messages are parsed into `M` (the server parses
/// [`crate::ClientMessage`], clients parse [`crate::ServerMessage`]).
pub fn decode_frame<M: DeserializeOwned>(bytes: &[u8]) -> Result<Vec<Frame<M>>, FrameError> {
    decode_frame_up_to(bytes, MAX_FRAME_BYTES)
}

/// [`decode_frame`] with another size limit: clients accept the server's whole-room sync
/// step 2, which may be larger than a client's frames may be.
pub fn decode_frame_up_to<M: DeserializeOwned>(bytes: &[u8], limit: usize) -> Result<Vec<Frame<M>>, FrameError> {
    if bytes.len() > limit {
        return Err(FrameError::TooLarge {
            size: bytes.len(),
            limit,
        });
    }
    if bytes.is_empty() {
        return Err(FrameError::Empty);
    }
    let mut rest = bytes;
    let mut out = Vec::with_capacity(1);
    while !rest.is_empty() {
        if out.len() == MAX_MESSAGES_PER_FRAME {
            return Err(FrameError::TooManyMessages);
        }
        precheck_counts(rest)?;
        let mut decoder = DecoderV1::new(Cursor::new(rest));
        let msg = Message::decode(&mut decoder).map_err(|e| FrameError::Malformed(e.to_string()))?;
        let remaining = decoder
            .read_to_end()
            .map_err(|e| FrameError::Malformed(e.to_string()))?
            .len();
        rest = &rest[rest.len() - remaining..];
        out.push(match msg {
            Message::Custom(MESH_MESSAGE_TAG, payload) => Frame::Mesh(decode_mesh(&payload)?),
            Message::Custom(tag, _) => return Err(FrameError::UnknownTag(tag)),
            other => Frame::Yjs(other),
        });
    }
    Ok(out)
}

/// yrs reserves room for a state vector's or an awareness update's entries by the count the
/// message declares, before reading them: a few bytes could ask for gigabytes. Each entry
/// takes at least two bytes (a state vector's) or three (an awareness entry's), so a count
/// larger than the bytes allow is refused here, before yrs sees it.
/// The largest client id: 2^53 - 1, the largest integer JavaScript represents exactly.
pub const MAX_CLIENT_ID: u64 = (1 << 53) - 1;

fn precheck_counts(message: &[u8]) -> Result<(), FrameError> {
    use yrs::encoding::read::Read;
    const MSG_SYNC: u8 = 0;
    const MSG_AWARENESS: u8 = 1;
    const SYNC_STEP_1: u8 = 0;
    let bad = |e: yrs::encoding::read::Error| FrameError::Malformed(e.to_string());
    let mut cursor = Cursor::new(message);
    let tag: u8 = cursor.read_var().map_err(bad)?;
    let (payload, min_entry) = match tag {
        MSG_SYNC => {
            let sub: u8 = cursor.read_var().map_err(bad)?;
            if sub != SYNC_STEP_1 {
                return Ok(());
            }
            (cursor.read_buf().map_err(bad)?, 2)
        }
        MSG_AWARENESS => (cursor.read_buf().map_err(bad)?, 3),
        _ => return Ok(()),
    };
    let mut inner = Cursor::new(payload);
    let count: u64 = inner.read_var().map_err(bad)?;
    if count > (payload.len() / min_entry) as u64 {
        return Err(FrameError::Malformed(format!(
            "the message declares {count} entries in {} bytes",
            payload.len()
        )));
    }
    // Client ids are 53-bit numbers (what JavaScript represents exactly); yrs asserts it.
    for _ in 0..count {
        let client: u64 = inner.read_var().map_err(bad)?;
        if client > MAX_CLIENT_ID {
            return Err(FrameError::Malformed(format!("client id {client} is above 2^53")));
        }
        let _clock: u32 = inner.read_var().map_err(bad)?;
        if tag == MSG_AWARENESS {
            inner.read_string().map_err(bad)?;
        }
    }
    Ok(())
}

fn decode_mesh<M: DeserializeOwned>(payload: &[u8]) -> Result<M, FrameError> {
    if payload.len() > MAX_MESH_MESSAGE_BYTES {
        return Err(FrameError::MeshTooLarge(payload.len()));
    }
    serde_json::from_slice(payload).map_err(|e| FrameError::BadMesh(e.to_string()))
}

/// Encodes one mesh message as a complete frame.
pub fn encode_mesh<M: Serialize>(msg: &M) -> Vec<u8> {
    // Serialising our own closed enums to JSON cannot fail: they hold only strings,
    // numbers and plain structs.
    let json = serde_json::to_vec(msg).expect("mesh messages always serialise");
    Message::Custom(MESH_MESSAGE_TAG, json).encode_v1()
}

/// Encodes one y-protocols message as a complete frame.
pub fn encode_yjs(msg: &Message) -> Vec<u8> {
    msg.encode_v1()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ClientMessage, ServerMessage};
    use yrs::sync::SyncMessage;
    use yrs::StateVector;

    #[test]
    fn mesh_messages_round_trip() {
        let msg = ClientMessage::Chat {
            text: "héllo 👋".into(),
        };
        let frame = encode_mesh(&msg);
        assert_eq!(frame[0], MESH_MESSAGE_TAG);
        assert_eq!(decode_frame::<ClientMessage>(&frame), Ok(vec![Frame::Mesh(msg)]));
    }

    #[test]
    fn yjs_messages_pass_through() {
        let msg = Message::Sync(SyncMessage::SyncStep1(StateVector::default()));
        let frame = encode_yjs(&msg);
        assert_eq!(decode_frame::<ClientMessage>(&frame), Ok(vec![Frame::Yjs(msg)]));
    }

    #[test]
    fn bad_frames_are_named() {
        let unknown = Message::Custom(42, vec![1, 2]).encode_v1();
        assert_eq!(decode_frame::<ClientMessage>(&unknown), Err(FrameError::UnknownTag(42)));
        assert_eq!(decode_frame::<ClientMessage>(&[]), Err(FrameError::Empty));
        assert!(matches!(
            decode_frame::<ClientMessage>(&[0, 9, 9]),
            Err(FrameError::Malformed(_))
        ));
        let bad_json = Message::Custom(MESH_MESSAGE_TAG, b"{\"type\":\"launch_missiles\"}".to_vec()).encode_v1();
        assert!(matches!(
            decode_frame::<ClientMessage>(&bad_json),
            Err(FrameError::BadMesh(_))
        ));
        let big = vec![0u8; MAX_FRAME_BYTES + 1];
        assert_eq!(
            decode_frame::<ClientMessage>(&big),
            Err(FrameError::TooLarge {
                size: MAX_FRAME_BYTES + 1,
                limit: MAX_FRAME_BYTES
            })
        );
    }

    #[test]
    fn wire_format_of_mesh_messages_is_stable() {
        let hello = ClientMessage::Hello {
            version: 1,
            name: "ada".into(),
            color: Some("#ff8800".into()),
            client: Some("mesh-proxy".into()),
            doc_client_id: Some(7),
            companion: false,
        };
        insta::assert_snapshot!(serde_json::to_string(&hello).unwrap());
        let err = ServerMessage::Error {
            code: crate::ErrorCode::Forbidden,
            message: "readers may not edit".into(),
            responding_to: None,
        };
        insta::assert_snapshot!(serde_json::to_string(&err).unwrap());
    }
}
