//! The update guard: every document update a client sends is parsed here, by mesh's own
//! bounded reader, and checked against the room's document *before* yrs decodes or
//! integrates it. Sans-IO: bytes and the room's state in, a verdict out.
//!
//! Why: yrs integrates updates through unsafe block pointers and assumes well-formed input.
//! A corrupted update has crashed it (segfaults in `Update::integrate`, `integrate_item`,
//! `missing_dependency` and `TransactionMut::delete`; panics in the block store that end in
//! an abort while a transaction unwinds), and an `Any` nested a few thousand levels deep
//! overflows the stack while it is decoded. Each of those needs an update that no honest
//! Yjs client sends. The guard refuses them by rule (see `docs/decisions/` on the update
//! guard), so yrs only ever sees updates that integrate completely:
//!
//! - Everything is bounded before it is allocated: counts by the bytes left, `Any` and JSON
//!   nesting by [`MAX_VALUE_DEPTH`], clocks by [`MAX_CLOCK`] (yrs computes with `i32`).
//! - Each client appears once, its blocks are contiguous, and they start at or below the
//!   room's clock for that client (no gap, so yrs never creates skips or pending updates);
//!   a block either is wholly known (a duplicate yrs drops) or wholly new.
//! - Every origin, right origin and parent a new block names exists: in the room, or in a
//!   block of the same update that can be integrated before it (an order is found, so
//!   cycles are refused). A parent named by id must be a shared type.
//! - Subdocuments, moves and weak links (which mesh does not use), skip blocks, empty
//!   blocks and legacy JSON content are refused.
//! - Every deleted range lies inside what the room holds once the update is in.

use std::collections::{HashMap, HashSet};

use yrs::encoding::read::{Cursor, Read};
use yrs::updates::decoder::{Decoder, DecoderV1};
use yrs::StateVector;

/// Deepest nesting of an `Any` or JSON value inside an update. Real documents nest a few
/// levels (a chat entry is one map); the bound keeps recursion far from the stack's end.
pub const MAX_VALUE_DEPTH: usize = 64;

/// The highest clock (per client) an update may reach. yrs does clock arithmetic in `i32`;
/// a document with 2^30 operations from one client is far past every size limit anyway.
pub const MAX_CLOCK: u32 = 1 << 30;

pub use mesh_protocol::codec::MAX_CLIENT_ID;

/// The most blocks one update may carry: a large paste is one block; a whole project's
/// first upload is a few per file.
pub const MAX_BLOCKS_PER_UPDATE: usize = 1 << 20;

/// Why an update was refused. The text is sent to the client: it names the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The bytes are not a well-formed update.
    #[error("malformed update: {0}")]
    Malformed(String),
    /// The update uses something mesh does not accept.
    #[error("unsupported update: {0}")]
    Unsupported(String),
    /// The update depends on something the room does not have.
    #[error("the update depends on content this room does not have ({0}); resync and send it again")]
    MissingDependency(String),
    /// The update contradicts itself or the room.
    #[error("inconsistent update: {0}")]
    Inconsistent(String),
    /// The update would take the room over a limit.
    #[error("{0}")]
    Limit(String),
}

type Id = (u64, u32);

/// Where a new item goes, as the update names it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Parent {
    /// A root type by name.
    Named(String),
    /// A type by the id of the item that holds it.
    Id(Id),
    /// Taken from the origin or right origin.
    Neighbour,
}

#[derive(Debug, Clone)]
struct Item {
    origin: Option<Id>,
    right_origin: Option<Id>,
    parent: Parent,
    parent_sub: Option<String>,
    /// The item holds a shared type (a possible parent of later items).
    is_type: bool,
}

#[derive(Debug, Clone)]
struct Block {
    clock: u32,
    len: u32,
    /// `None` for a GC block.
    item: Option<Item>,
}

/// A parsed, bounded view of an update: enough to check it, nothing yrs needs.
#[derive(Debug, Default)]
pub struct Parsed {
    clients: Vec<(u64, Vec<Block>)>,
    deletes: Vec<(u64, u32, u32)>,
}

impl Parsed {
    /// Whether the update carries nothing (the empty sync step 2 of an up-to-date client).
    pub fn is_empty(&self) -> bool {
        self.clients.is_empty() && self.deletes.is_empty()
    }

    /// Ids of the items holding shared types, so later updates may name them as parents.
    pub fn type_items(&self) -> impl Iterator<Item = Id> + '_ {
        self.clients.iter().flat_map(|(client, blocks)| {
            blocks
                .iter()
                .filter(|b| b.item.as_ref().is_some_and(|i| i.is_type))
                .map(move |b| (*client, b.clock))
        })
    }

    /// Keys the update sets directly in the root map `root` (new entries name their parent).
    pub fn keys_set_in_root<'a>(&'a self, root: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.clients.iter().flat_map(move |(_, blocks)| {
            blocks.iter().filter_map(move |b| {
                let item = b.item.as_ref()?;
                match (&item.parent, &item.parent_sub) {
                    (Parent::Named(name), Some(key)) if name == root => Some(key.as_str()),
                    _ => None,
                }
            })
        })
    }
}

fn malformed(e: impl std::fmt::Display) -> Refusal {
    Refusal::Malformed(e.to_string())
}

/// Parses an update (lib0 v1 encoding, as Yjs and `y-websocket` send) with every count,
/// length and nesting bounded. Uses yrs's own primitive readers, so a byte means the same
/// here as it will to yrs.
pub fn parse(bytes: &[u8]) -> Result<Parsed, Refusal> {
    let mut d = DecoderV1::new(Cursor::new(bytes));
    let mut parsed = Parsed::default();
    let clients_len: u32 = d.read_var().map_err(malformed)?;
    // Every client entry takes at least three bytes; a count beyond that is a lie.
    if clients_len as usize > bytes.len() / 3 {
        return Err(Refusal::Malformed(format!(
            "{clients_len} clients in {} bytes",
            bytes.len()
        )));
    }
    let mut seen = HashSet::new();
    let mut total_blocks = 0usize;
    for _ in 0..clients_len {
        let blocks_len: u32 = d.read_var().map_err(malformed)?;
        // Read as a plain number: yrs's own client reader asserts the 53-bit bound.
        let client: u64 = d.read_var().map_err(malformed)?;
        let mut clock: u32 = d.read_var().map_err(malformed)?;
        if client > MAX_CLIENT_ID {
            return Err(Refusal::Unsupported(format!("client id {client} is above 2^53")));
        }
        if !seen.insert(client) {
            return Err(Refusal::Inconsistent(format!("client {client} appears twice")));
        }
        total_blocks += blocks_len as usize;
        if total_blocks > MAX_BLOCKS_PER_UPDATE || blocks_len as usize > bytes.len() {
            return Err(Refusal::Limit(format!(
                "an update may carry at most {MAX_BLOCKS_PER_UPDATE} blocks"
            )));
        }
        let mut blocks = Vec::new();
        for _ in 0..blocks_len {
            let block = parse_block(&mut d, clock)?;
            clock = clock
                .checked_add(block.len)
                .filter(|c| *c <= MAX_CLOCK)
                .ok_or_else(|| Refusal::Unsupported(format!("client {client}'s clock passes {MAX_CLOCK}")))?;
            blocks.push(block);
        }
        if !blocks.is_empty() {
            parsed.clients.push((client, blocks));
        }
    }
    // The delete set: clients, then ranges of (clock, length) each.
    let ds_clients: u32 = d.read_var().map_err(malformed)?;
    if ds_clients as usize > bytes.len() {
        return Err(Refusal::Malformed(format!(
            "{ds_clients} delete-set clients in {} bytes",
            bytes.len()
        )));
    }
    let mut ds_seen = HashSet::new();
    for _ in 0..ds_clients {
        let client: u64 = d.read_var().map_err(malformed)?;
        if client > MAX_CLIENT_ID {
            return Err(Refusal::Unsupported(format!("client id {client} is above 2^53")));
        }
        if !ds_seen.insert(client) {
            return Err(Refusal::Inconsistent(format!(
                "client {client} appears twice in the delete set"
            )));
        }
        let ranges: u32 = d.read_var().map_err(malformed)?;
        if ranges as usize > bytes.len() {
            return Err(Refusal::Malformed(format!(
                "{ranges} deleted ranges in {} bytes",
                bytes.len()
            )));
        }
        for _ in 0..ranges {
            let start: u32 = d.read_ds_clock().map_err(malformed)?;
            let len: u32 = d.read_ds_len().map_err(malformed)?;
            if len == 0 {
                return Err(Refusal::Malformed("an empty deleted range".into()));
            }
            if start.checked_add(len).is_none_or(|end| end > MAX_CLOCK) {
                return Err(Refusal::Unsupported(format!(
                    "a deleted range passes clock {MAX_CLOCK}"
                )));
            }
            parsed.deletes.push((client, start, len));
        }
    }
    // Yjs ignores bytes after the delete set; so does yrs. Nothing is hidden there from us.
    Ok(parsed)
}

const BLOCK_GC: u8 = 0;
const CONTENT_DELETED: u8 = 1;
const CONTENT_JSON: u8 = 2;
const CONTENT_BINARY: u8 = 3;
const CONTENT_STRING: u8 = 4;
const CONTENT_EMBED: u8 = 5;
const CONTENT_FORMAT: u8 = 6;
const CONTENT_TYPE: u8 = 7;
const CONTENT_ANY: u8 = 8;
const CONTENT_DOC: u8 = 9;
const BLOCK_SKIP: u8 = 10;
const HAS_ORIGIN: u8 = 0b1000_0000;
const HAS_RIGHT_ORIGIN: u8 = 0b0100_0000;
const HAS_PARENT_SUB: u8 = 0b0010_0000;

fn parse_block(d: &mut DecoderV1<'_>, clock: u32) -> Result<Block, Refusal> {
    let info = d.read_info().map_err(malformed)?;
    match info {
        BLOCK_GC => {
            let len = d.read_len().map_err(malformed)?;
            if len == 0 {
                return Err(Refusal::Malformed("an empty block".into()));
            }
            return Ok(Block { clock, len, item: None });
        }
        BLOCK_SKIP => return Err(Refusal::Unsupported("skip blocks (send updates in order)".into())),
        _ => {}
    }
    let read_id = |d: &mut DecoderV1<'_>| -> Result<Id, Refusal> {
        let client: u64 = d.read_var().map_err(malformed)?;
        let clock: u32 = d.read_var().map_err(malformed)?;
        if client > MAX_CLIENT_ID {
            return Err(Refusal::Unsupported(format!("client id {client} is above 2^53")));
        }
        Ok((client, clock))
    };
    let origin = if info & HAS_ORIGIN != 0 {
        Some(read_id(d)?)
    } else {
        None
    };
    let right_origin = if info & HAS_RIGHT_ORIGIN != 0 {
        Some(read_id(d)?)
    } else {
        None
    };
    let names_parent = info & (HAS_ORIGIN | HAS_RIGHT_ORIGIN) == 0;
    let parent = if names_parent {
        if d.read_parent_info().map_err(malformed)? {
            Parent::Named(d.read_string().map_err(malformed)?.to_string())
        } else {
            Parent::Id(read_id(d)?)
        }
    } else {
        Parent::Neighbour
    };
    let parent_sub = if names_parent && info & HAS_PARENT_SUB != 0 {
        Some(d.read_string().map_err(malformed)?.to_string())
    } else {
        None
    };
    let mut is_type = false;
    let len = match info & 0b1_1111 {
        CONTENT_DELETED => d.read_len().map_err(malformed)?,
        CONTENT_BINARY => {
            d.read_buf().map_err(malformed)?;
            1
        }
        CONTENT_STRING => {
            let s = d.read_string().map_err(malformed)?;
            u32::try_from(s.encode_utf16().count()).map_err(|_| Refusal::Limit("a string block is too long".into()))?
        }
        CONTENT_EMBED => {
            check_json(d.read_string().map_err(malformed)?)?;
            1
        }
        CONTENT_FORMAT => {
            d.read_string().map_err(malformed)?;
            check_json(d.read_string().map_err(malformed)?)?;
            1
        }
        CONTENT_TYPE => {
            match d.read_type_ref().map_err(malformed)? {
                // Array, map, text, XML fragment, XML hook, XML text, undefined.
                0 | 1 | 2 | 4 | 5 | 6 | 15 => {}
                // An XML element carries its tag name.
                3 => {
                    d.read_key().map_err(malformed)?;
                }
                7 => return Err(Refusal::Unsupported("weak links".into())),
                9 => return Err(Refusal::Unsupported("subdocuments".into())),
                other => return Err(Refusal::Malformed(format!("unknown type ref {other}"))),
            }
            is_type = true;
            1
        }
        CONTENT_ANY => {
            let n: u32 = d.read_len().map_err(malformed)?;
            for _ in 0..n {
                skip_any(d, 0)?;
            }
            n
        }
        CONTENT_JSON => return Err(Refusal::Unsupported("legacy JSON content (use Any)".into())),
        CONTENT_DOC => return Err(Refusal::Unsupported("subdocuments".into())),
        other => return Err(Refusal::Unsupported(format!("content kind {other}"))),
    };
    if len == 0 {
        // yrs silently drops empty items, which would shift the clocks we count.
        return Err(Refusal::Malformed("an empty block".into()));
    }
    Ok(Block {
        clock,
        len,
        item: Some(Item {
            origin,
            right_origin,
            parent,
            parent_sub,
            is_type,
        }),
    })
}

/// Reads past one `Any` value (lib0's binary JSON), refusing deep nesting. Each value takes
/// at least one byte, so counts are bounded by the bytes left.
fn skip_any(d: &mut DecoderV1<'_>, depth: usize) -> Result<(), Refusal> {
    if depth >= MAX_VALUE_DEPTH {
        return Err(Refusal::Limit(format!(
            "values may nest at most {MAX_VALUE_DEPTH} levels"
        )));
    }
    match d.read_u8().map_err(malformed)? {
        // undefined, null, true, false
        127 | 126 | 121 | 120 => {}
        125 => {
            d.read_var_signed::<i64>().map_err(malformed)?;
        }
        124 => {
            d.read_f32().map_err(malformed)?;
        }
        123 => {
            d.read_f64().map_err(malformed)?;
        }
        122 => {
            d.read_i64().map_err(malformed)?;
        }
        119 => {
            d.read_string().map_err(malformed)?;
        }
        118 => {
            let n: u64 = d.read_var().map_err(malformed)?;
            for _ in 0..n {
                d.read_string().map_err(malformed)?;
                skip_any(d, depth + 1)?;
            }
        }
        117 => {
            let n: u64 = d.read_var().map_err(malformed)?;
            for _ in 0..n {
                skip_any(d, depth + 1)?;
            }
        }
        116 => {
            d.read_buf().map_err(malformed)?;
        }
        other => return Err(Refusal::Malformed(format!("unknown value tag {other}"))),
    }
    Ok(())
}

/// Embedded JSON (text embeds and formatting attributes): yrs parses it with serde_json; we
/// bound its nesting first, so the parse cannot go deep.
fn check_json(text: &str) -> Result<(), Refusal> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for b in text.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_VALUE_DEPTH {
                    return Err(Refusal::Limit(format!(
                        "values may nest at most {MAX_VALUE_DEPTH} levels"
                    )));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map(|_| ())
        .map_err(|e| Refusal::Malformed(format!("embedded JSON: {e}")))
}

/// What the guard knows of a room's document beyond its state vector: which items hold
/// shared types (the only valid parents by id). Built from every update the room applies.
#[derive(Debug, Default)]
pub struct TypeIndex {
    types: HashSet<Id>,
}

impl TypeIndex {
    /// Records the shared types an applied update created.
    pub fn record(&mut self, parsed: &Parsed) {
        self.types.extend(parsed.type_items());
    }

    /// Records the shared types of an update from the room's own store or its own
    /// transactions (trusted bytes; unparsable ones add nothing).
    pub fn record_bytes(&mut self, bytes: &[u8]) {
        if let Ok(parsed) = parse(bytes) {
            self.record(&parsed);
        }
    }

    /// How many shared types the room has.
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// Whether the room has no shared type held by an item (only root types).
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }
}

/// Checks a parsed update against the room's state: dependencies exist, clocks continue
/// the room's, parents are types, deletes stay inside what is known.
pub fn check(parsed: &Parsed, sv: &StateVector, index: &TypeIndex) -> Result<(), Refusal> {
    // The clock the room will have per client, as blocks are integrated.
    let mut known: HashMap<u64, u32> = HashMap::new();
    let clock_of = |known: &HashMap<u64, u32>, client: u64| -> u32 {
        known
            .get(&client)
            .copied()
            .unwrap_or_else(|| sv.get(&yrs::block::ClientID::new(client)))
    };
    // New blocks per client, in order; wholly known ones are duplicates yrs drops.
    let mut queues: Vec<(u64, std::collections::VecDeque<&Block>)> = Vec::new();
    for (client, blocks) in &parsed.clients {
        let have = clock_of(&known, *client);
        let first = blocks[0].clock;
        if first > have {
            return Err(Refusal::MissingDependency(format!(
                "client {client}'s blocks start at clock {first}, the room has {have}"
            )));
        }
        let mut fresh = std::collections::VecDeque::new();
        for b in blocks {
            let end = b.clock + b.len;
            if end <= have {
                continue;
            }
            if b.clock < have {
                return Err(Refusal::Inconsistent(format!(
                    "a block of client {client} straddles the room's clock {have}"
                )));
            }
            fresh.push_back(b);
        }
        if !fresh.is_empty() {
            queues.push((*client, fresh));
        }
    }
    let mut new_types: HashSet<Id> = HashSet::new();
    let exists = |known: &HashMap<u64, u32>, id: Id| id.1 < clock_of(known, id.0);
    // Integrate in any order that satisfies every dependency; no progress means a missing
    // dependency or a cycle.
    loop {
        let mut progressed = false;
        let mut pending = false;
        for (client, queue) in queues.iter_mut() {
            while let Some(b) = queue.front() {
                let ready = match &b.item {
                    None => true,
                    Some(item) => {
                        let deps_ok = item.origin.is_none_or(|id| exists(&known, id))
                            && item.right_origin.is_none_or(|id| exists(&known, id));
                        let parent_ok = match item.parent {
                            Parent::Id(id) => exists(&known, id),
                            _ => true,
                        };
                        deps_ok && parent_ok
                    }
                };
                if !ready {
                    pending = true;
                    break;
                }
                if let Some(Item {
                    parent: Parent::Id(id), ..
                }) = &b.item
                {
                    if !index.types.contains(id) && !new_types.contains(id) {
                        return Err(Refusal::Inconsistent(format!(
                            "the parent {}:{} is not a shared type",
                            id.0, id.1
                        )));
                    }
                }
                if b.item.as_ref().is_some_and(|i| i.is_type) {
                    new_types.insert((*client, b.clock));
                }
                known.insert(*client, b.clock + b.len);
                queue.pop_front();
                progressed = true;
            }
        }
        if !pending {
            break;
        }
        if !progressed {
            let (client, queue) = queues.iter().find(|(_, q)| !q.is_empty()).expect("pending");
            let b = queue.front().expect("pending");
            return Err(Refusal::MissingDependency(format!(
                "a block of client {client} at clock {} names an item the room does not have",
                b.clock
            )));
        }
    }
    for &(client, start, len) in &parsed.deletes {
        let have = clock_of(&known, client);
        if start + len > have {
            return Err(Refusal::MissingDependency(format!(
                "deletes client {client}'s clocks {start}..{} but the room has {have}",
                start + len
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use yrs::updates::decoder::Decode;
    use yrs::{Doc, GetString, Map, ReadTxn, Text, Transact, Update};

    fn checked(doc: &Doc, index: &TypeIndex, update: &[u8]) -> Result<Parsed, Refusal> {
        let parsed = parse(update)?;
        check(&parsed, &doc.transact().state_vector(), index)?;
        Ok(parsed)
    }

    fn apply(doc: &Doc, index: &mut TypeIndex, update: &[u8]) -> Result<(), Refusal> {
        let parsed = checked(doc, index, update)?;
        index.record(&parsed);
        doc.transact_mut()
            .apply_update(Update::decode_v1(update).unwrap())
            .unwrap();
        Ok(())
    }

    #[test]
    fn honest_typing_passes_and_converges() {
        let utf16 = |client_id| {
            Doc::with_options(yrs::Options {
                client_id: yrs::block::ClientID::new(client_id),
                offset_kind: yrs::OffsetKind::Utf16,
                ..Default::default()
            })
        };
        let (alice, server) = (utf16(1), utf16(9));
        let mut index = TypeIndex::default();
        let files = alice.get_or_insert_map("files");
        let mut updates = Vec::new();
        {
            let mut txn = alice.transact_mut();
            let text = files.insert(&mut txn, "main.py", yrs::TextPrelim::new("print(1)\n"));
            text.insert(&mut txn, 0, "# héllo 👋\n");
            updates.push(txn.encode_update_v1());
        }
        for i in 0..20 {
            let mut txn = alice.transact_mut();
            let text = files.get(&txn, "main.py").unwrap().cast::<yrs::TextRef>().unwrap();
            let at = (i * 7) % text.len(&txn).max(1);
            text.insert(&mut txn, at, "x");
            if i % 3 == 0 {
                text.remove_range(&mut txn, 0, 1);
            }
            updates.push(txn.encode_update_v1());
        }
        for u in &updates {
            apply(&server, &mut index, u).unwrap();
        }
        let get = |d: &Doc| {
            let txn = d.transact();
            let f = txn.get_map("files").unwrap();
            f.get(&txn, "main.py")
                .unwrap()
                .cast::<yrs::TextRef>()
                .unwrap()
                .get_string(&txn)
        };
        assert_eq!(get(&alice), get(&server));
        assert_eq!(index.len(), 1, "the file's text is a known type");
    }

    #[test]
    fn a_deep_value_is_refused_before_any_recursion() {
        // An array nested 20,000 levels: [117, 1] repeated, as the attack sent.
        let mut any = Vec::new();
        for _ in 0..20_000 {
            any.extend([117, 1]);
        }
        any.push(126);
        // One client, one block: info = Any content with a named parent "a".
        let mut u = vec![1, 1, 5, 0, CONTENT_ANY, 1, 1, b'a', 1];
        u.extend(any);
        u.extend([0]);
        assert!(matches!(parse(&u), Err(Refusal::Limit(_))));
    }

    #[test]
    fn an_update_with_a_gap_is_refused_as_a_missing_dependency() {
        let doc = Doc::with_client_id(1);
        let text = doc.get_or_insert_text("t");
        text.insert(&mut doc.transact_mut(), 0, "ab");
        let sv_before = doc.transact().state_vector();
        text.insert(&mut doc.transact_mut(), 2, "cd");
        let mid = doc.transact().state_vector();
        text.insert(&mut doc.transact_mut(), 4, "ef");
        let late = doc.transact().encode_state_as_update_v1(&mid);
        let server = Doc::with_client_id(9);
        let first = doc.transact().encode_state_as_update_v1(&StateVector::default());
        let _ = sv_before;
        // The server has nothing: "ef" alone depends on "abcd".
        assert!(matches!(
            checked(&server, &TypeIndex::default(), &late),
            Err(Refusal::MissingDependency(_))
        ));
        assert!(checked(&server, &TypeIndex::default(), &first).is_ok());
    }

    #[test]
    fn duplicates_pass_and_change_nothing() {
        let doc = Doc::with_client_id(1);
        doc.get_or_insert_text("t").insert(&mut doc.transact_mut(), 0, "abc");
        let all = doc.transact().encode_state_as_update_v1(&StateVector::default());
        let server = Doc::with_client_id(9);
        let mut index = TypeIndex::default();
        apply(&server, &mut index, &all).unwrap();
        apply(&server, &mut index, &all).unwrap();
        assert_eq!(server.get_or_insert_text("t").get_string(&server.transact()), "abc");
    }

    #[test]
    fn a_parent_that_is_not_a_type_is_refused() {
        let doc = Doc::with_client_id(1);
        doc.get_or_insert_text("t").insert(&mut doc.transact_mut(), 0, "abc");
        let all = doc.transact().encode_state_as_update_v1(&StateVector::default());
        let server = Doc::with_client_id(9);
        let mut index = TypeIndex::default();
        apply(&server, &mut index, &all).unwrap();
        // Client 2 inserts a string whose parent is the id (1, 0): a string item, not a type.
        let u = [1, 1, 2, 0, CONTENT_STRING, 0, 1, 0, 1, b'x', 0];
        assert!(matches!(checked(&server, &index, &u), Err(Refusal::Inconsistent(_))));
    }

    #[test]
    fn deletes_beyond_the_room_are_refused() {
        let server = Doc::with_client_id(9);
        // No blocks; delete client 5's clocks 0..3, which the room never had.
        let u = [0, 1, 5, 1, 0, 3];
        assert!(matches!(
            checked(&server, &TypeIndex::default(), &u),
            Err(Refusal::MissingDependency(_))
        ));
    }

    #[test]
    fn a_dependency_cycle_is_refused() {
        // Client 1's block names client 2's as origin and the other way round.
        let u = [
            2, // clients
            1,
            1,
            0,
            HAS_ORIGIN | CONTENT_STRING,
            2,
            0,
            1,
            b'a', //
            1,
            2,
            0,
            HAS_ORIGIN | CONTENT_STRING,
            1,
            0,
            1,
            b'b', //
            0,
        ];
        let server = Doc::with_client_id(9);
        assert!(matches!(
            checked(&server, &TypeIndex::default(), &u),
            Err(Refusal::MissingDependency(_))
        ));
    }

    #[test]
    fn overflowing_clocks_and_repeated_clients_are_refused() {
        let big = [
            1,
            1,
            1,
            0xff,
            0xff,
            0xff,
            0xff,
            0x0f,
            CONTENT_STRING,
            1,
            1,
            b'a',
            1,
            b'x',
            0,
        ];
        assert!(parse(&big).is_err());
        let twice = [
            2,
            1,
            1,
            0,
            CONTENT_STRING,
            1,
            1,
            b'a',
            1,
            b'x',
            1,
            1,
            1,
            CONTENT_STRING,
            1,
            1,
            b'a',
            1,
            b'y',
            0,
        ];
        assert!(matches!(parse(&twice), Err(Refusal::Inconsistent(_))));
    }
}
