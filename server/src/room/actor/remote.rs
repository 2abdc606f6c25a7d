//! The room's side of the bus (`--bus`): what it publishes after its own turns, and what it
//! does with what other nodes publish. The rules live in the sans-IO parts
//! (`bus::seqs::SeqTracker` for the numbering, `RoomCore`'s remote methods for the
//! document and awareness); this file only wires them to the store and the stream.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{merge, Actor, Command, Stop};
use crate::bus::seqs::{SeqTracker, Verdict};
use crate::bus::{Bus, BusEntry, BusEvent};
use crate::room::core::{Effects, RemoteRefusal};
use crate::store::sqlite::now_ms;
use mesh_protocol::RoomId;

/// How often a room publishes its own people's awareness again, so the other nodes keep it
/// (they drop states not renewed within `REMOTE_AWARENESS_TTL_MS`, 30 s: a dead node's):
/// a third of that, so one lost renewal does not make a cursor blink out.
pub const AWARENESS_RENEW_MS: u64 = 10_000;

/// A loaded room's link to the bus.
pub(super) struct RoomBus {
    bus: Arc<Bus>,
    seqs: SeqTracker,
    reader: tokio::task::JoinHandle<()>,
    /// When this room's people's awareness is published again.
    renew_at_ms: u64,
    /// The version of this node's participant list last published (`None`: never).
    people_published: Option<u64>,
}

/// What a turn's bus input asks of the store, done once after the turn's commands.
#[derive(Default)]
pub(super) struct BusWork {
    /// Bring the document up to the store's copy.
    resync: bool,
    /// Reload the room's links and seats.
    reload_access: bool,
    /// Tell the other nodes who is here (a node came back to the stream).
    announce: bool,
}

impl RoomBus {
    /// Starts following the room's stream from `start` (taken before the load), the room
    /// being loaded up to `loaded_upto`.
    pub(super) fn follow(
        bus: Arc<Bus>,
        id: RoomId,
        start: Option<String>,
        loaded_upto: u64,
        me: mpsc::WeakSender<Command>,
    ) -> RoomBus {
        let reader = bus.follow(id, start, me);
        RoomBus {
            bus,
            seqs: SeqTracker::new(loaded_upto),
            reader,
            renew_at_ms: now_ms() + AWARENESS_RENEW_MS,
            people_published: None,
        }
    }

    /// This node's id.
    pub(super) fn node(&self) -> crate::bus::NodeId {
        self.bus.node()
    }

    /// Publishes one entry on the room's stream.
    pub(super) fn publish_entry(&self, room: RoomId, entry: BusEntry) {
        self.bus.publish(room, entry);
    }

    /// Stops the reader (the room is unloading).
    pub(super) fn stop(&self) {
        self.reader.abort();
    }

    /// Publishes this node's connections' awareness updates.
    pub(super) fn publish_awareness(&self, room: RoomId, updates: Vec<Vec<u8>>) {
        for update in updates {
            self.bus.publish(
                room,
                BusEntry::Awareness {
                    node: self.bus.node(),
                    update,
                },
            );
        }
    }
}

impl Actor {
    /// When the room must look at the bus again without input: a hole's grace ends, or a
    /// remote person's awareness expires.
    pub(super) fn bus_deadline(&self) -> Option<u64> {
        let bus = self.bus.as_ref()?;
        [
            bus.seqs.deadline_ms(),
            self.core.next_remote_expiry(),
            self.core.next_people_expiry(),
            self.across.next_silence(),
            Some(bus.renew_at_ms),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// What other nodes published, or the reader came back.
    pub(super) fn on_bus(&mut self, fx: &mut Effects, event: BusEvent, work: &mut BusWork) {
        let Some(bus) = self.bus.as_mut() else { return };
        let now = now_ms();
        match event {
            BusEvent::Reconnected => {
                work.resync = true;
                work.announce = true;
            }
            BusEvent::Entries(entries) => {
                let me = bus.bus.node();
                let mut across = Vec::new();
                for entry in entries {
                    self.across.heard(entry.node(), now);
                    match entry {
                        BusEntry::Update { first, updates, .. } => {
                            let last = first + updates.len() as u64 - 1;
                            for (i, update) in updates.into_iter().enumerate() {
                                if bus.seqs.seen(first + i as u64) {
                                    continue;
                                }
                                match self.core.apply_remote_update(update) {
                                    Ok(out) => merge(fx, out),
                                    Err(RemoteRefusal::NeedsResync) => work.resync = true,
                                    Err(e @ RemoteRefusal::Invalid(_)) => {
                                        metrics::counter!("mesh_bus_bad_entries_total").increment(1);
                                        tracing::warn!(room = %self.id, error = %e, "bus: an update was refused; resyncing from the store");
                                        work.resync = true;
                                    }
                                }
                            }
                            self.last_seq = self.last_seq.max(last);
                            if bus.seqs.mark(first, last, now) == Verdict::Resync {
                                work.resync = true;
                            }
                        }
                        BusEntry::Seen { first, last, .. } => {
                            if bus.seqs.mark(first, last, now) == Verdict::Resync {
                                work.resync = true;
                            }
                        }
                        BusEntry::Awareness { node, update } => {
                            merge(fx, self.core.apply_remote_awareness(node, &update, now));
                        }
                        BusEntry::Access { .. } => work.reload_access = true,
                        BusEntry::People { node, people } => {
                            // A node new to this room hears who is here (and their cursors).
                            work.announce |= !self.core.lists_people_of(node) && people.as_slice() != b"[]";
                            merge(fx, self.core.apply_remote_people(node, &people, now));
                        }
                        BusEntry::Relay { .. } => across.push(entry),
                        BusEntry::Forward { to, .. } | BusEntry::Left { to, .. } if to == me => across.push(entry),
                        BusEntry::Reply { to, .. } if to.node == me => across.push(entry),
                        // For another node.
                        BusEntry::Forward { .. } | BusEntry::Left { .. } | BusEntry::Reply { .. } => {}
                    }
                }
                for entry in across {
                    self.on_across(fx, entry);
                }
            }
        }
    }

    /// An entry about runs and debug sessions across nodes (see `across`).
    fn on_across(&mut self, fx: &mut Effects, entry: BusEntry) {
        use crate::bus::entry::RemoteConn;
        match entry {
            BusEntry::Relay { node, skip, frame } => self.on_relay(fx, node, skip, frame),
            BusEntry::Forward {
                node,
                conn,
                role,
                request,
                ..
            } => self.on_forward(fx, RemoteConn { node, conn }, role, &request),
            BusEntry::Reply { to, frame, .. } => self.on_reply(fx, to, frame),
            BusEntry::Left { node, conn, .. } => self.on_left(fx, RemoteConn { node, conn }),
            _ => {}
        }
    }

    /// The room's own timer: a hole that outlived its grace, remote states that expired.
    pub(super) fn on_bus_tick(&mut self, fx: &mut Effects, work: &mut BusWork) {
        let Some(bus) = self.bus.as_mut() else { return };
        let now = now_ms();
        if bus.seqs.verdict(now) == Verdict::Resync {
            work.resync = true;
        }
        if now >= bus.renew_at_ms {
            bus.renew_at_ms = now + AWARENESS_RENEW_MS;
            work.announce = true;
        }
        merge(fx, self.core.expire_remote_awareness(now));
        merge(fx, self.core.expire_remote_people(now));
        self.forget_silent_nodes(fx, now);
    }

    /// Publishes this node's participants when they changed since last time, or always
    /// (`renew`: the awareness renewal, or a node came back to the stream).
    pub(super) fn publish_people(&mut self, renew: bool) {
        let version = self.core.people_version();
        let Some(bus) = self.bus.as_mut() else { return };
        if !renew && bus.people_published == Some(version) {
            return;
        }
        bus.people_published = Some(version);
        let people = self.core.local_people();
        bus.bus.publish(
            self.id,
            BusEntry::People {
                node: bus.bus.node(),
                people,
            },
        );
    }

    /// The room unloads here: the other nodes drop this node's people at once.
    pub(super) fn leave_bus(&self) {
        if let Some(bus) = &self.bus {
            bus.bus.publish(
                self.id,
                BusEntry::People {
                    node: bus.bus.node(),
                    people: b"[]".to_vec(),
                },
            );
            bus.stop();
        }
    }

    /// The turn's updates are durable as `..=last`: tell the other nodes.
    pub(super) fn published(&mut self, last: u64, updates: Vec<Vec<u8>>) {
        let Some(bus) = self.bus.as_mut() else { return };
        if updates.is_empty() {
            return;
        }
        let first = last + 1 - updates.len() as u64;
        bus.seqs.mark(first, last, now_ms());
        // Entries are bounded in count; a larger turn goes out in several.
        let mut next = first;
        let mut rest = updates;
        while !rest.is_empty() {
            let tail = rest.split_off(rest.len().min(crate::bus::entry::MAX_UPDATES_PER_ENTRY));
            let n = rest.len() as u64;
            bus.bus.publish(
                self.id,
                BusEntry::Update {
                    node: bus.bus.node(),
                    first: next,
                    updates: rest,
                },
            );
            next += n;
            rest = tail;
        }
    }

    /// The room's links or seats were written: the other nodes reload theirs.
    pub(super) fn access_changed(&self) {
        if let Some(bus) = &self.bus {
            bus.bus.publish(self.id, BusEntry::Access { node: bus.bus.node() });
        }
    }

    /// A compaction appended `kept` waiting updates again as `..=last`: the others mark those
    /// numbers seen (they carry nothing new), and the stream is trimmed.
    pub(super) fn compacted_bus(&mut self, kept: u64, last: u64) {
        let Some(bus) = self.bus.as_mut() else { return };
        if kept > 0 && last >= kept {
            let first = last + 1 - kept;
            bus.seqs.mark(first, last, now_ms());
            bus.bus.publish(
                self.id,
                BusEntry::Seen {
                    node: bus.bus.node(),
                    first,
                    last,
                },
            );
        }
        bus.bus.trim(self.id);
    }

    /// Does what the turn's bus input asked of the store.
    pub(super) async fn bus_turn(&mut self, fx: &mut Effects, work: BusWork) -> Result<(), Stop> {
        if self.bus.is_none() {
            return Ok(());
        }
        if work.resync {
            match self.store.load(self.id).await {
                Ok(state) => {
                    merge(fx, self.core.resync_from(state.snapshot.as_deref(), &state.updates));
                    if let Some(bus) = self.bus.as_mut() {
                        bus.seqs.resynced(state.last_seq);
                    }
                    self.last_seq = self.last_seq.max(state.last_seq);
                    metrics::counter!("mesh_bus_resyncs_total").increment(1);
                    tracing::info!(room = %self.id, upto = state.last_seq, "bus: resynced the room from the store");
                }
                Err(e) => {
                    tracing::error!(room = %self.id, error = %e, "bus: cannot resync the room from the store; closing the room");
                    metrics::counter!("mesh_store_errors_total").increment(1);
                    return Err(Stop::StoreFailed);
                }
            }
        }
        if work.reload_access {
            // What this room recorded itself is written first, so the reload keeps it.
            self.persist_access().await?;
            match self.store.load_access(self.id).await {
                Ok(access) => merge(fx, self.core.reload_access(access, now_ms())),
                Err(e) => tracing::warn!(room = %self.id, error = %e, "bus: cannot reload the room's links and seats"),
            }
        }
        if work.announce {
            if let (Some(bus), Some(update)) = (&self.bus, self.core.local_awareness()) {
                bus.publish_awareness(self.id, vec![update]);
            }
            self.publish_people(true);
        }
        Ok(())
    }
}
