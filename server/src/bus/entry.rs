//! What travels between nodes on a room's stream, and its checked decoding. Bus input is
//! less trusted than memory (anyone who reaches Redis can write it), so every entry is
//! parsed into a closed enum with bounded sizes before the room sees it, and a bad entry is
//! counted and skipped, never fatal.

use std::fmt;

/// Largest payload one entry may carry: a large paste (the room socket takes frames of this
/// size too) fits; a forged entry cannot make a node allocate more.
pub const MAX_PAYLOAD_BYTES: usize = 32 * 1024 * 1024;

/// Most updates one entry may carry: one room turn's updates (a turn takes up to 256
/// commands, each a frame of a few updates at most).
pub const MAX_UPDATES_PER_ENTRY: usize = 4096;

/// Largest awareness update one entry may carry: one connection's state (16 KiB at most)
/// or the removal of its few client ids.
pub const MAX_AWARENESS_BYTES: usize = 64 * 1024;

/// Largest mesh frame one entry may relay or reply with: a mesh message's own limit and its
/// framing, many times over (a run's output comes in chunks far below it).
pub const MAX_RELAY_BYTES: usize = 4 * mesh_protocol::MAX_MESH_MESSAGE_BYTES;

/// Largest request one entry may forward: one mesh message.
pub const MAX_FORWARD_BYTES: usize = mesh_protocol::MAX_MESH_MESSAGE_BYTES;

/// Largest participant list one entry may carry: a room's people on one node as JSON, a
/// few hundred bytes each.
pub const MAX_PEOPLE_BYTES: usize = 2 * 1024 * 1024;

/// Fields of a stream entry (short names: they are repeated in every entry).
pub mod field {
    /// The kind of entry.
    pub const KIND: &str = "k";
    /// The publishing node's id.
    pub const NODE: &str = "n";
    /// The first store sequence number the entry carries.
    pub const FIRST: &str = "a";
    /// The last store sequence number the entry carries.
    pub const LAST: &str = "b";
    /// The payload.
    pub const DATA: &str = "d";
    /// The node an entry is for (a forwarded request, a reply), or the node of a
    /// connection a relayed frame skips.
    pub const TO: &str = "t";
    /// A connection on the node named by [`TO`].
    pub const CONN: &str = "c";
    /// The role of a forwarded request's sender.
    pub const ROLE: &str = "r";
}

/// A connection on another node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RemoteConn {
    /// Its node.
    pub node: NodeId,
    /// Its id there.
    pub conn: u64,
}

/// A node's id: random per process, so a restarted node is a new node (its old awareness
/// times out on the others).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub u64);

impl NodeId {
    /// A fresh random id.
    pub fn random() -> Self {
        NodeId(rand::random())
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// One entry of a room's stream. Closed: an unknown `kind` is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusEntry {
    /// Updates appended to the store as `first..=last`, in order (one per number).
    Update {
        /// The publisher.
        node: NodeId,
        /// The first number.
        first: u64,
        /// The updates (v1 encoding).
        updates: Vec<Vec<u8>>,
    },
    /// Store numbers `first..=last` that carry nothing new to integrate (updates a
    /// compaction appended again after its snapshot): the others mark them seen.
    Seen {
        /// The publisher.
        node: NodeId,
        /// The first number.
        first: u64,
        /// The last number.
        last: u64,
    },
    /// An awareness update (y-protocols encoding) of the publisher's connections.
    Awareness {
        /// The publisher.
        node: NodeId,
        /// The encoded update.
        update: Vec<u8>,
    },
    /// The room's links, seats or approval changed in the store: reload them.
    Access {
        /// The publisher.
        node: NodeId,
    },
    /// The publisher's participants in the room (JSON), sent when they change and with each
    /// awareness renewal; an empty list when the room unloads there.
    People {
        /// The publisher.
        node: NodeId,
        /// The list.
        people: Vec<u8>,
    },
    /// A mesh frame for every mesh client of the room on the other nodes (a run's or a
    /// debug session's events, chat), but `skip`, who got its own copy.
    Relay {
        /// The publisher.
        node: NodeId,
        /// The asker of what the frame announces, when it is on another node.
        skip: Option<RemoteConn>,
        /// The frame, as the publisher's own clients got it.
        frame: Vec<u8>,
    },
    /// A participant's request about a run or debug session that lives on node `to`.
    Forward {
        /// The publisher, where the participant is connected.
        node: NodeId,
        /// The node that holds the session.
        to: NodeId,
        /// The participant's connection on the publisher.
        conn: u64,
        /// The participant's role, as the publisher checked it.
        role: mesh_protocol::messages::Role,
        /// The request (a `mesh_protocol::Request`, JSON), checked again by `to`.
        request: Vec<u8>,
    },
    /// A frame for one connection on another node: the answer to a forwarded request.
    Reply {
        /// The publisher.
        node: NodeId,
        /// Who it is for.
        to: RemoteConn,
        /// The frame.
        frame: Vec<u8>,
    },
    /// A participant that joined a debug session on node `to` left.
    Left {
        /// The publisher.
        node: NodeId,
        /// The node that holds the session.
        to: NodeId,
        /// The participant's connection on the publisher.
        conn: u64,
    },
}

/// Why an entry was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadEntry {
    /// A field is missing.
    #[error("the entry has no `{0}` field")]
    Missing(&'static str),
    /// A field does not parse.
    #[error("the entry's `{0}` field is malformed")]
    Malformed(&'static str),
    /// The kind is not one this node knows.
    #[error("unknown entry kind")]
    UnknownKind,
    /// Over a size bound.
    #[error("the entry is over its size limit ({0})")]
    TooLarge(&'static str),
}

impl BusEntry {
    /// The publisher.
    pub fn node(&self) -> NodeId {
        match self {
            BusEntry::Update { node, .. }
            | BusEntry::Seen { node, .. }
            | BusEntry::Awareness { node, .. }
            | BusEntry::Access { node }
            | BusEntry::People { node, .. }
            | BusEntry::Relay { node, .. }
            | BusEntry::Forward { node, .. }
            | BusEntry::Reply { node, .. }
            | BusEntry::Left { node, .. } => *node,
        }
    }

    /// The entry's fields, in order, for `XADD`.
    pub fn to_fields(&self) -> Vec<(&'static str, Vec<u8>)> {
        let node = self.node().to_string().into_bytes();
        match self {
            BusEntry::Update { first, updates, .. } => {
                let last = first + updates.len() as u64 - 1;
                let mut data = Vec::with_capacity(updates.iter().map(|u| u.len() + 4).sum());
                for u in updates {
                    data.extend_from_slice(&(u.len() as u32).to_le_bytes());
                    data.extend_from_slice(u);
                }
                vec![
                    (field::KIND, b"update".to_vec()),
                    (field::NODE, node),
                    (field::FIRST, first.to_string().into_bytes()),
                    (field::LAST, last.to_string().into_bytes()),
                    (field::DATA, data),
                ]
            }
            BusEntry::Seen { first, last, .. } => vec![
                (field::KIND, b"seen".to_vec()),
                (field::NODE, node),
                (field::FIRST, first.to_string().into_bytes()),
                (field::LAST, last.to_string().into_bytes()),
            ],
            BusEntry::Awareness { update, .. } => vec![
                (field::KIND, b"awareness".to_vec()),
                (field::NODE, node),
                (field::DATA, update.clone()),
            ],
            BusEntry::Access { .. } => vec![(field::KIND, b"access".to_vec()), (field::NODE, node)],
            BusEntry::People { people, .. } => vec![
                (field::KIND, b"people".to_vec()),
                (field::NODE, node),
                (field::DATA, people.clone()),
            ],
            BusEntry::Relay { skip, frame, .. } => {
                let mut fields = vec![(field::KIND, b"relay".to_vec()), (field::NODE, node)];
                if let Some(skip) = skip {
                    fields.push((field::TO, skip.node.to_string().into_bytes()));
                    fields.push((field::CONN, skip.conn.to_string().into_bytes()));
                }
                fields.push((field::DATA, frame.clone()));
                fields
            }
            BusEntry::Forward {
                to,
                conn,
                role,
                request,
                ..
            } => vec![
                (field::KIND, b"forward".to_vec()),
                (field::NODE, node),
                (field::TO, to.to_string().into_bytes()),
                (field::CONN, conn.to_string().into_bytes()),
                (field::ROLE, role_name(*role).as_bytes().to_vec()),
                (field::DATA, request.clone()),
            ],
            BusEntry::Reply { to, frame, .. } => vec![
                (field::KIND, b"reply".to_vec()),
                (field::NODE, node),
                (field::TO, to.node.to_string().into_bytes()),
                (field::CONN, to.conn.to_string().into_bytes()),
                (field::DATA, frame.clone()),
            ],
            BusEntry::Left { to, conn, .. } => vec![
                (field::KIND, b"left".to_vec()),
                (field::NODE, node),
                (field::TO, to.to_string().into_bytes()),
                (field::CONN, conn.to_string().into_bytes()),
            ],
        }
    }

    /// Parses an entry's fields (as Redis returned them), checking every bound first.
    pub fn from_fields<'a>(fields: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Result<BusEntry, BadEntry> {
        let (mut kind, mut node, mut first, mut last, mut data) = (None, None, None, None, None);
        let (mut to, mut conn, mut role) = (None, None, None);
        for (name, value) in fields {
            match name {
                b"k" => kind = Some(value),
                b"n" => node = Some(value),
                b"a" => first = Some(value),
                b"b" => last = Some(value),
                b"d" => data = Some(value),
                b"t" => to = Some(value),
                b"c" => conn = Some(value),
                b"r" => role = Some(value),
                // Unknown fields are ignored: a newer node may add some.
                _ => {}
            }
        }
        let node = parse_node(node.ok_or(BadEntry::Missing(field::NODE))?)?;
        let kind = kind.ok_or(BadEntry::Missing(field::KIND))?;
        match kind {
            b"update" => {
                let first = parse_seq(first, field::FIRST)?;
                let last = parse_seq(last, field::LAST)?;
                let data = data.ok_or(BadEntry::Missing(field::DATA))?;
                if data.len() > MAX_PAYLOAD_BYTES {
                    return Err(BadEntry::TooLarge("payload"));
                }
                if first == 0 || last < first || last - first >= MAX_UPDATES_PER_ENTRY as u64 {
                    return Err(BadEntry::Malformed(field::LAST));
                }
                let updates = split_updates(data)?;
                if updates.len() as u64 != last - first + 1 {
                    return Err(BadEntry::Malformed(field::DATA));
                }
                Ok(BusEntry::Update { node, first, updates })
            }
            b"seen" => {
                let first = parse_seq(first, field::FIRST)?;
                let last = parse_seq(last, field::LAST)?;
                if first == 0 || last < first {
                    return Err(BadEntry::Malformed(field::LAST));
                }
                Ok(BusEntry::Seen { node, first, last })
            }
            b"awareness" => {
                let data = data.ok_or(BadEntry::Missing(field::DATA))?;
                if data.len() > MAX_AWARENESS_BYTES {
                    return Err(BadEntry::TooLarge("awareness"));
                }
                Ok(BusEntry::Awareness {
                    node,
                    update: data.to_vec(),
                })
            }
            b"access" => Ok(BusEntry::Access { node }),
            b"people" => Ok(BusEntry::People {
                node,
                people: bounded(data, MAX_PEOPLE_BYTES, "people")?,
            }),
            b"relay" => {
                let frame = bounded(data, MAX_RELAY_BYTES, "relay")?;
                let skip = match (to, conn) {
                    (None, None) => None,
                    (to, conn) => Some(RemoteConn {
                        node: parse_node(to.ok_or(BadEntry::Missing(field::TO))?)?,
                        conn: parse_seq(conn, field::CONN)?,
                    }),
                };
                Ok(BusEntry::Relay { node, skip, frame })
            }
            b"forward" => Ok(BusEntry::Forward {
                node,
                to: parse_node(to.ok_or(BadEntry::Missing(field::TO))?)?,
                conn: parse_seq(conn, field::CONN)?,
                role: parse_role(role.ok_or(BadEntry::Missing(field::ROLE))?)?,
                request: bounded(data, MAX_FORWARD_BYTES, "forward")?,
            }),
            b"reply" => Ok(BusEntry::Reply {
                node,
                to: RemoteConn {
                    node: parse_node(to.ok_or(BadEntry::Missing(field::TO))?)?,
                    conn: parse_seq(conn, field::CONN)?,
                },
                frame: bounded(data, MAX_RELAY_BYTES, "reply")?,
            }),
            b"left" => Ok(BusEntry::Left {
                node,
                to: parse_node(to.ok_or(BadEntry::Missing(field::TO))?)?,
                conn: parse_seq(conn, field::CONN)?,
            }),
            _ => Err(BadEntry::UnknownKind),
        }
    }
}

/// The payload, present and within `limit`.
fn bounded(data: Option<&[u8]>, limit: usize, what: &'static str) -> Result<Vec<u8>, BadEntry> {
    let data = data.ok_or(BadEntry::Missing(field::DATA))?;
    if data.len() > limit {
        return Err(BadEntry::TooLarge(what));
    }
    Ok(data.to_vec())
}

fn role_name(role: mesh_protocol::messages::Role) -> &'static str {
    use mesh_protocol::messages::Role;
    match role {
        Role::Reader => "reader",
        Role::Writer => "writer",
        Role::Host => "host",
    }
}

fn parse_role(raw: &[u8]) -> Result<mesh_protocol::messages::Role, BadEntry> {
    use mesh_protocol::messages::Role;
    [Role::Reader, Role::Writer, Role::Host]
        .into_iter()
        .find(|r| role_name(*r).as_bytes() == raw)
        .ok_or(BadEntry::Malformed(field::ROLE))
}

fn parse_node(raw: &[u8]) -> Result<NodeId, BadEntry> {
    if raw.len() != 16 {
        return Err(BadEntry::Malformed(field::NODE));
    }
    let text = std::str::from_utf8(raw).map_err(|_| BadEntry::Malformed(field::NODE))?;
    u64::from_str_radix(text, 16)
        .map(NodeId)
        .map_err(|_| BadEntry::Malformed(field::NODE))
}

fn parse_seq(raw: Option<&[u8]>, name: &'static str) -> Result<u64, BadEntry> {
    let raw = raw.ok_or(BadEntry::Missing(name))?;
    // u64::MAX has 20 digits.
    if raw.is_empty() || raw.len() > 20 {
        return Err(BadEntry::Malformed(name));
    }
    std::str::from_utf8(raw)
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or(BadEntry::Malformed(name))
}

/// Splits length-prefixed updates, each length checked against what is left.
fn split_updates(mut data: &[u8]) -> Result<Vec<Vec<u8>>, BadEntry> {
    let mut out = Vec::new();
    while !data.is_empty() {
        if out.len() >= MAX_UPDATES_PER_ENTRY || data.len() < 4 {
            return Err(BadEntry::Malformed(field::DATA));
        }
        let len = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
        data = &data[4..];
        if len > data.len() {
            return Err(BadEntry::Malformed(field::DATA));
        }
        out.push(data[..len].to_vec());
        data = &data[len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(entry: &BusEntry) -> Result<BusEntry, BadEntry> {
        let fields = entry.to_fields();
        BusEntry::from_fields(fields.iter().map(|(k, v)| (k.as_bytes(), v.as_slice())))
    }

    #[test]
    fn every_kind_reads_back_as_it_was_written() {
        let node = NodeId(0x0123_4567_89ab_cdef);
        for entry in [
            BusEntry::Update {
                node,
                first: 7,
                updates: vec![vec![1, 2, 3], vec![], vec![9; 300]],
            },
            BusEntry::Seen {
                node,
                first: 3,
                last: 5,
            },
            BusEntry::Awareness {
                node,
                update: vec![1, 0],
            },
            BusEntry::Access { node },
            BusEntry::People {
                node,
                people: b"[]".to_vec(),
            },
            BusEntry::Relay {
                node,
                skip: None,
                frame: vec![4, 7],
            },
            BusEntry::Relay {
                node,
                skip: Some(RemoteConn {
                    node: NodeId(9),
                    conn: 12,
                }),
                frame: vec![],
            },
            BusEntry::Forward {
                node,
                to: NodeId(u64::MAX),
                conn: 3,
                role: mesh_protocol::messages::Role::Host,
                request: br#"{"type":"stop","run_id":"x"}"#.to_vec(),
            },
            BusEntry::Reply {
                node,
                to: RemoteConn {
                    node: NodeId(1),
                    conn: u64::MAX,
                },
                frame: vec![1; 40],
            },
            BusEntry::Left {
                node,
                to: NodeId(2),
                conn: 0,
            },
        ] {
            assert_eq!(round_trip(&entry).as_ref(), Ok(&entry));
        }
    }

    #[test]
    fn a_forged_entry_is_refused_never_trusted() {
        let node = b"0123456789abcdef".as_slice();
        type Fields<'a> = Vec<(&'a [u8], &'a [u8])>;
        let cases: Vec<(Fields, BadEntry)> = vec![
            (vec![(b"k", b"update"), (b"n", node)], BadEntry::Missing("a")),
            (vec![(b"k", b"nuke"), (b"n", node)], BadEntry::UnknownKind),
            (vec![(b"k", b"access"), (b"n", b"xyz")], BadEntry::Malformed("n")),
            (
                // A length running past the end.
                vec![
                    (b"k", b"update"),
                    (b"n", node),
                    (b"a", b"1"),
                    (b"b", b"1"),
                    (b"d", &[255, 255, 0, 0, 1]),
                ],
                BadEntry::Malformed("d"),
            ),
            (
                // Two numbers, one update.
                vec![
                    (b"k", b"update"),
                    (b"n", node),
                    (b"a", b"1"),
                    (b"b", b"2"),
                    (b"d", &[1, 0, 0, 0, 7]),
                ],
                BadEntry::Malformed("d"),
            ),
            (
                vec![
                    (b"k", b"update"),
                    (b"n", node),
                    (b"a", b"5"),
                    (b"b", b"99999999"),
                    (b"d", &[]),
                ],
                BadEntry::Malformed("b"),
            ),
            (
                vec![(b"k", b"seen"), (b"n", node), (b"a", b"-1"), (b"b", b"2")],
                BadEntry::Malformed("a"),
            ),
            (
                // A relay that names a connection but not its node.
                vec![(b"k", b"relay"), (b"n", node), (b"c", b"1"), (b"d", b"")],
                BadEntry::Missing("t"),
            ),
            (
                vec![
                    (b"k", b"forward"),
                    (b"n", node),
                    (b"t", node),
                    (b"c", b"1"),
                    (b"r", b"root"),
                    (b"d", b"{}"),
                ],
                BadEntry::Malformed("r"),
            ),
            (
                vec![(b"k", b"reply"), (b"n", node), (b"t", node), (b"d", b"")],
                BadEntry::Missing("c"),
            ),
        ];
        for (fields, want) in cases {
            assert_eq!(BusEntry::from_fields(fields.clone()), Err(want), "{fields:?}");
        }
        let big = vec![0u8; MAX_AWARENESS_BYTES + 1];
        assert_eq!(
            BusEntry::from_fields(vec![
                (b"k".as_slice(), b"awareness".as_slice()),
                (b"n", node),
                (b"d", &big)
            ]),
            Err(BadEntry::TooLarge("awareness"))
        );
        let big = vec![0u8; MAX_FORWARD_BYTES + 1];
        assert_eq!(
            BusEntry::from_fields(vec![
                (b"k".as_slice(), b"forward".as_slice()),
                (b"n", node),
                (b"t", node),
                (b"c", b"1"),
                (b"r", b"writer"),
                (b"d", &big)
            ]),
            Err(BadEntry::TooLarge("forward"))
        );
    }
}
