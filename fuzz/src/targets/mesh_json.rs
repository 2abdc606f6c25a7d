//! `mesh_json`: mesh's extension messages (tag 100, JSON inside) as `decode_frame` parses
//! them, for both directions: `Request` (a `ClientMessage` with its id: what the server reads) and `ServerMessage`
//! (what mesh-proxy reads). The input is tried as the JSON payload of a tag-100 message and
//! as a whole frame.
//!
//! Invariant checked beyond "no crash": every message that decodes encodes back to a frame
//! that decodes to the same message.

use mesh_protocol::codec::{encode_mesh, Frame, FrameError};
use mesh_protocol::{decode_frame, Request, ServerMessage, MESH_MESSAGE_TAG};
use serde::de::DeserializeOwned;
use serde::Serialize;
use yrs::sync::Message;
use yrs::updates::encoder::Encode;

use super::{Features, Shape, Target, JSON_TOKENS};

/// The target.
pub const TARGET: Target = Target {
    name: "mesh_json",
    about: "mesh messages (tag 100 JSON) through decode_frame as Request and ServerMessage",
    run,
    shape: Shape::Raw,
    dictionary: JSON_TOKENS,
    max_len: 8 * 1024,
};

fn run(input: &[u8], fx: &mut Features) {
    let framed = Message::Custom(MESH_MESSAGE_TAG, input.to_vec()).encode_v1();
    for bytes in [framed.as_slice(), input] {
        check::<Request>("client", bytes, fx);
        check::<ServerMessage>("server", bytes, fx);
    }
}

fn check<M>(side: &str, bytes: &[u8], fx: &mut Features)
where
    M: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    match decode_frame::<M>(bytes) {
        Ok(frames) => {
            fx.count(&format!("{side}:frames"), frames.len());
            for frame in frames {
                match frame {
                    Frame::Mesh(message) => {
                        let json = serde_json::to_value(&message).expect("a decoded message serialises");
                        fx.hit(&format!("{side}:mesh:{}", json["type"]));
                        let again = decode_frame::<M>(&encode_mesh(&message));
                        assert_eq!(
                            again,
                            Ok(vec![Frame::Mesh(message)]),
                            "a mesh message does not round-trip"
                        );
                    }
                    Frame::Yjs(_) => fx.hit(&format!("{side}:yjs")),
                }
            }
        }
        Err(e) => fx.hit(&format!("{side}:{}", error_kind(&e))),
    }
}

fn error_kind(e: &FrameError) -> &'static str {
    match e {
        FrameError::TooLarge { .. } => "too-large",
        FrameError::Empty => "empty",
        FrameError::TooManyMessages => "too-many",
        FrameError::Malformed(_) => "malformed",
        FrameError::UnknownTag(_) => "unknown-tag",
        FrameError::MeshTooLarge(_) => "mesh-too-large",
        FrameError::BadMesh(_) => "bad-mesh",
    }
}
