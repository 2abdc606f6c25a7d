//! `bus`: stream entries as another node (or anyone who reaches Redis) could write them,
//! through `BusEntry::from_fields` and then the room's remote paths
//! (`RoomCore::apply_remote_update`, `apply_remote_awareness`) and a resync, as the room
//! actor applies them; a participant list (`RoomCore::apply_remote_people`); a relayed frame and a forwarded request through the decoders the
//! room reads them with. Each pair of records of the input is one field (name, value).
//!
//! Invariants checked beyond "no crash": an entry that decodes encodes back to the same
//! entry; a snapshot of the room after the entries loads again.

use mesh_protocol::codec::decode_frame_up_to;
use mesh_protocol::{Request, ServerMessage};
use mesh_server::bus::entry::MAX_RELAY_BYTES;
use mesh_server::bus::{BusEntry, NodeId};
use mesh_server::room::core::RoomCore;

use super::{Features, Shape, Target};
use crate::framing::records;

/// The target.
pub const TARGET: Target = Target {
    name: "bus",
    about:
        "Redis stream entries through BusEntry::from_fields and the room's remote update, awareness and resync paths",
    run,
    shape: Shape::Sequence,
    dictionary: &[
        b"k",
        b"n",
        b"a",
        b"b",
        b"d",
        b"update",
        b"seen",
        b"awareness",
        b"access",
        b"people",
        br##"[{"conn_id":1,"seat":"s","name":"n","color":"#000000","role":"writer","client":"c"}]"##,
        b"relay",
        b"forward",
        b"reply",
        b"left",
        b"t",
        b"c",
        b"r",
        b"writer",
        b"host",
        br#"{"type":"stop","run_id":"a"}"#,
        b"0123456789abcdef",
        b"1",
        b"2",
        &[0, 0],
        &[1, 0, 0, 0],
    ],
    max_len: 64 * 1024,
};

fn run(input: &[u8], fx: &mut Features) {
    let recs = records(input);
    let fields: Vec<(&[u8], &[u8])> = recs.chunks_exact(2).map(|p| (p[0], p[1])).collect();
    let entry = match BusEntry::from_fields(fields) {
        Ok(entry) => entry,
        Err(e) => {
            fx.hit(&format!("bad:{e}"));
            return;
        }
    };
    let again = entry.to_fields();
    assert_eq!(
        BusEntry::from_fields(again.iter().map(|(k, v)| (k.as_bytes(), v.as_slice()))).as_ref(),
        Ok(&entry),
        "a bus entry does not round-trip"
    );
    let (mut room, _) = RoomCore::load(None, &[]);
    match entry {
        BusEntry::Update { updates, .. } => {
            fx.count("update", updates.len());
            let mut applied = Vec::new();
            for u in updates {
                match room.apply_remote_update(u.clone()) {
                    Ok(_) => {
                        fx.hit("update:applied");
                        applied.push(u);
                    }
                    Err(e) => fx.hit(&format!("update:{e:?}").chars().take(40).collect::<String>()),
                }
            }
            // A resync from a store that holds what applied changes nothing it should not.
            let _ = room.resync_from(None, &applied);
        }
        BusEntry::Awareness { update, .. } => {
            let out = room.apply_remote_awareness(NodeId(1), &update, 0);
            fx.count("awareness:frames", out.send.len());
            let _ = room.expire_remote_awareness(u64::MAX / 2);
        }
        BusEntry::Seen { .. } => fx.hit("seen"),
        BusEntry::Access { .. } => fx.hit("access"),
        // What a room does with these before anything else: the relayed frame is read for
        // the sessions it announces, the forwarded request is parsed as a client's.
        BusEntry::Relay { frame, .. } | BusEntry::Reply { frame, .. } => {
            match decode_frame_up_to::<ServerMessage>(&frame, MAX_RELAY_BYTES) {
                Ok(messages) => fx.count("relay:messages", messages.len()),
                Err(e) => fx.hit(&format!("relay:{e}").chars().take(40).collect::<String>()),
            }
        }
        BusEntry::Forward { request, .. } => match serde_json::from_slice::<Request>(&request) {
            Ok(r) => fx.hit(&format!("forward:{:?}", r.message).chars().take(24).collect::<String>()),
            Err(_) => fx.hit("forward:bad"),
        },
        BusEntry::Left { .. } => fx.hit("left"),
        BusEntry::People { people, .. } => {
            let out = room.apply_remote_people(NodeId(1), &people, 0);
            fx.count("people:frames", out.send.len());
            fx.count("people:listed", room.participants().len());
            let _ = room.expire_remote_people(u64::MAX / 2);
        }
    }
    let snap = room.snapshot();
    let (_, bad) = RoomCore::load(Some(&snap.state), &snap.pending);
    assert_eq!(bad, 0, "a snapshot taken after bus entries does not load");
}
