//! The bench client's view of the wire: y-protocols messages (`varuint tag` + payload), one
//! WebSocket frame each, optionally prefixed by a document name (Hocuspocus).
//!
//! Parsing is zero-copy: the update bytes handed to the caller borrow from the frame, so the
//! hot receive path allocates only what `yrs::Update::decode_v1` needs.

use std::sync::Arc;

use yrs::sync::{Message, SyncMessage};
use yrs::updates::encoder::Encode;
use yrs::StateVector;

/// y-protocols tag of sync messages.
const TAG_SYNC: u64 = 0;
/// y-protocols tag of awareness updates (payload: one varbuf).
const TAG_AWARENESS: u64 = 1;
/// y-protocols tag of auth messages (sub-tag, then a reason string when denied).
const TAG_AUTH: u64 = 2;
/// y-protocols tag of awareness queries (no payload).
const TAG_QUERY_AWARENESS: u64 = 3;
/// Hocuspocus' "SyncReply": a sync message sent in answer to the client's SyncStep1.
const TAG_HOCUSPOCUS_SYNC_REPLY: u64 = 4;
/// y-protocols auth sub-tag meaning "permission denied" (a reason string follows).
const AUTH_PERMISSION_DENIED: u64 = 0;
/// Sync sub-tag of SyncStep1 (payload: a state vector).
const SYNC_STEP1: u64 = 0;
/// Sync sub-tag of SyncStep2 (payload: an update).
const SYNC_STEP2: u64 = 1;
/// Sync sub-tag of Update (payload: an update).
const SYNC_UPDATE: u64 = 2;
/// Hocuspocus auth sub-tag of the client's token message.
const HOCUSPOCUS_AUTH_TOKEN: u64 = 0;
/// Bytes reserved in an update frame besides the update: prefix aside, tag, sub-tag and a
/// length of up to 5 bytes fit in 8.
const UPDATE_FRAME_OVERHEAD: usize = 8;

/// A sync message the bench client reacts to; everything else is skipped.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming<'a> {
    /// The server's state vector (encoded); the client answers with SyncStep2.
    SyncStep1(&'a [u8]),
    /// The server's answer to the client's SyncStep1 (an update, possibly empty).
    SyncStep2(&'a [u8]),
    /// An update relayed from another client.
    Update(&'a [u8]),
}

/// How a server frames messages on its socket.
#[derive(Debug, Clone)]
pub enum Framing {
    /// Stock y-websocket framing: each frame is y-protocols messages back to back.
    Plain,
    /// Hocuspocus framing: each frame is one message, prefixed by the document name as a
    /// varstring (the encoded prefix is stored here, shared: clients clone the framing).
    DocPrefixed(Arc<[u8]>),
}

impl Framing {
    /// Hocuspocus framing for the document `name`.
    pub fn doc_prefixed(name: &str) -> Self {
        let mut prefix = Vec::with_capacity(name.len() + 2);
        write_var(&mut prefix, name.len() as u64);
        prefix.extend_from_slice(name.as_bytes());
        Framing::DocPrefixed(prefix.into())
    }

    fn prefix(&self) -> &[u8] {
        match self {
            Framing::Plain => &[],
            Framing::DocPrefixed(prefix) => prefix,
        }
    }

    fn message(&self, msg: &Message) -> Vec<u8> {
        let body = msg.encode_v1();
        let mut frame = Vec::with_capacity(self.prefix().len() + body.len());
        frame.extend_from_slice(self.prefix());
        frame.extend_from_slice(&body);
        frame
    }

    /// The frames a client sends right after the handshake, before anything else.
    pub fn hello(&self) -> Option<Vec<u8>> {
        match self {
            Framing::Plain => None,
            // Hocuspocus waits for an auth message before it sets up the document
            // connection; with no auth hook configured any token (here: empty) passes.
            Framing::DocPrefixed(prefix) => {
                let mut frame = prefix.to_vec();
                write_var(&mut frame, TAG_AUTH);
                write_var(&mut frame, HOCUSPOCUS_AUTH_TOKEN);
                write_var(&mut frame, 0);
                Some(frame)
            }
        }
    }

    /// A SyncStep1 frame carrying `sv`.
    pub fn sync_step1(&self, sv: StateVector) -> Vec<u8> {
        self.message(&Message::Sync(SyncMessage::SyncStep1(sv)))
    }

    /// A SyncStep2 frame carrying `update`.
    pub fn sync_step2(&self, update: Vec<u8>) -> Vec<u8> {
        self.message(&Message::Sync(SyncMessage::SyncStep2(update)))
    }

    /// An Update frame carrying `update`, encoded by hand: this is the hot send path and
    /// needs exactly one allocation.
    pub fn update(&self, update: &[u8]) -> Vec<u8> {
        let prefix = self.prefix();
        let mut frame = Vec::with_capacity(prefix.len() + UPDATE_FRAME_OVERHEAD + update.len());
        frame.extend_from_slice(prefix);
        write_var(&mut frame, TAG_SYNC);
        write_var(&mut frame, SYNC_UPDATE);
        write_var(&mut frame, update.len() as u64);
        frame.extend_from_slice(update);
        frame
    }

    /// The length of the update in a SyncStep2 at the head of a frame (`head`: its first
    /// bytes), or `None` when the frame does not begin with one.
    pub fn step2_len(&self, head: &[u8]) -> Option<usize> {
        let mut rest = head;
        let hocuspocus = match self {
            Framing::Plain => false,
            Framing::DocPrefixed(_) => {
                read_buf(&mut rest)?;
                true
            }
        };
        let tag = read_var(&mut rest)?;
        let sync = tag == TAG_SYNC || (hocuspocus && tag == TAG_HOCUSPOCUS_SYNC_REPLY);
        if !sync || read_var(&mut rest)? != SYNC_STEP2 {
            return None;
        }
        usize::try_from(read_var(&mut rest)?).ok()
    }

    /// Calls `on_message` for each sync message in `frame`, in order. Awareness and other
    /// messages are skipped; parsing stops at the first message it cannot delimit (an unknown
    /// tag in Hocuspocus framing, or a malformed message).
    pub fn parse<'a>(&self, frame: &'a [u8], mut on_message: impl FnMut(Incoming<'a>)) {
        let mut rest = frame;
        match self {
            Framing::Plain => {
                while !rest.is_empty() {
                    if parse_one(&mut rest, false, &mut on_message).is_none() {
                        return;
                    }
                }
            }
            Framing::DocPrefixed(_) => {
                // One message per frame; the document name is checked only for being there:
                // each socket carries one document.
                if read_buf(&mut rest).is_some() {
                    let _ = parse_one(&mut rest, true, &mut on_message);
                }
            }
        }
    }
}

/// Parses one message off the front of `rest`. Returns `None` when the rest of the frame
/// cannot be delimited.
fn parse_one<'a>(rest: &mut &'a [u8], hocuspocus: bool, on_message: &mut impl FnMut(Incoming<'a>)) -> Option<()> {
    let tag = read_var(rest)?;
    match tag {
        TAG_SYNC => parse_sync(rest, on_message),
        TAG_HOCUSPOCUS_SYNC_REPLY if hocuspocus => parse_sync(rest, on_message),
        TAG_AWARENESS => read_buf(rest).map(drop),
        TAG_QUERY_AWARENESS => Some(()),
        TAG_AUTH if !hocuspocus => {
            if read_var(rest)? == AUTH_PERMISSION_DENIED {
                read_buf(rest)?;
            }
            Some(())
        }
        // Hocuspocus' other messages (auth replies, sync status, stateless) have their own
        // layouts; they are alone in their frame, so stopping here skips exactly them.
        _ if hocuspocus => None,
        // Any other tag in stock framing is a custom message with a varbuf payload (mesh's
        // extension messages use tag 100 this way).
        _ => read_buf(rest).map(drop),
    }
}

fn parse_sync<'a>(rest: &mut &'a [u8], on_message: &mut impl FnMut(Incoming<'a>)) -> Option<()> {
    let sub = read_var(rest)?;
    let payload = read_buf(rest)?;
    match sub {
        SYNC_STEP1 => on_message(Incoming::SyncStep1(payload)),
        SYNC_STEP2 => on_message(Incoming::SyncStep2(payload)),
        SYNC_UPDATE => on_message(Incoming::Update(payload)),
        _ => return None,
    }
    Some(())
}

/// Reads a lib0 varuint (unsigned LEB128).
fn read_var(rest: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (i, &byte) in rest.iter().enumerate().take(10) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *rest = &rest[i + 1..];
            return Some(value);
        }
    }
    None
}

/// Reads a lib0 varbuf (varuint length, then that many bytes).
fn read_buf<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let len = usize::try_from(read_var(rest)?).ok()?;
    if rest.len() < len {
        return None;
    }
    let (buf, tail) = rest.split_at(len);
    *rest = tail;
    Some(buf)
}

/// Writes a lib0 varuint (unsigned LEB128).
fn write_var(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::sync::awareness::AwarenessUpdate;

    fn parse_all(framing: &Framing, frame: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        framing.parse(frame, |m| out.push(format!("{m:?}")));
        out
    }

    #[test]
    fn update_frames_match_yrs_encoding() {
        let update = vec![7u8; 300];
        let expected = Message::Sync(SyncMessage::Update(update.clone())).encode_v1();
        assert_eq!(Framing::Plain.update(&update), expected);
    }

    #[test]
    fn plain_frames_with_several_messages_are_all_read() {
        let mut frame = Message::Awareness(AwarenessUpdate {
            clients: Default::default(),
        })
        .encode_v1();
        frame.extend(Message::Custom(100, b"{}".to_vec()).encode_v1());
        frame.extend(Message::Sync(SyncMessage::Update(vec![1, 2])).encode_v1());
        frame.extend(Message::Sync(SyncMessage::SyncStep2(vec![3])).encode_v1());
        assert_eq!(parse_all(&Framing::Plain, &frame), ["Update([1, 2])", "SyncStep2([3])"]);
    }

    #[test]
    fn hocuspocus_frames_carry_the_document_name() {
        let framing = Framing::doc_prefixed("room-1");
        let frame = framing.update(&[9, 9]);
        assert_eq!(&frame[..7], b"\x06room-1");
        assert_eq!(parse_all(&framing, &frame), ["Update([9, 9])"]);
        // A SyncReply (tag 4) is a sync message; a sync status (tag 8) is skipped.
        let mut reply = b"\x06room-1\x04".to_vec();
        reply.extend(SyncMessage::SyncStep1(StateVector::default()).encode_v1());
        assert_eq!(parse_all(&framing, &reply), ["SyncStep1([0])"]);
        assert!(parse_all(&framing, b"\x06room-1\x08\x01").is_empty());
    }

    #[test]
    fn malformed_frames_stop_parsing() {
        assert!(parse_all(&Framing::Plain, &[0, 2, 50, 1]).is_empty());
        assert!(parse_all(&Framing::Plain, &[0xff]).is_empty());
    }
}
