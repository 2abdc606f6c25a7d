//! An in-memory [`Store`] for tests of the room core. Not durable, by design.

use std::collections::HashMap;
use std::sync::Mutex;

use mesh_protocol::RoomId;

use super::{
    AccessChange, AccessState, BoxFuture, RoomRecord, RoomState, RunRecord, Store, StoreResult, MAX_AUDIT_ENTRIES,
};

#[derive(Default)]
struct Room {
    record: Option<RoomRecord>,
    snapshot: Option<Vec<u8>>,
    log: Vec<(u64, Vec<u8>)>,
    last_seq: u64,
    runs: Vec<RunRecord>,
    access: AccessState,
}

/// Keeps everything in a map. The lock is never held across an `.await`.
#[derive(Default)]
pub struct MemoryStore {
    rooms: Mutex<HashMap<RoomId, Room>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<RoomId, Room>) -> T) -> T {
        // A poisoned lock means a test panicked mid-update; the data is still usable.
        let mut rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut rooms)
    }
}

impl Store for MemoryStore {
    fn create_room(&self, room: RoomRecord) -> BoxFuture<'_, StoreResult<()>> {
        self.with(|rooms| {
            let id = room.id;
            rooms.entry(id).or_default().record = Some(room);
        });
        Box::pin(async move { Ok(()) })
    }

    fn get_room(&self, id: RoomId) -> BoxFuture<'_, StoreResult<Option<RoomRecord>>> {
        let out = self.with(|rooms| rooms.get(&id).and_then(|r| r.record.clone()));
        Box::pin(async move { Ok(out) })
    }

    fn list_rooms(&self) -> BoxFuture<'_, StoreResult<Vec<RoomRecord>>> {
        let mut out: Vec<RoomRecord> = self.with(|rooms| rooms.values().filter_map(|r| r.record.clone()).collect());
        out.sort_by_key(|r| std::cmp::Reverse(r.created_at));
        Box::pin(async move { Ok(out) })
    }

    fn delete_room(&self, id: RoomId) -> BoxFuture<'_, StoreResult<bool>> {
        let out = self.with(|rooms| rooms.remove(&id).is_some_and(|r| r.record.is_some()));
        Box::pin(async move { Ok(out) })
    }

    fn load(&self, id: RoomId) -> BoxFuture<'_, StoreResult<RoomState>> {
        let out = self.with(|rooms| {
            rooms
                .get(&id)
                .map(|r| RoomState {
                    snapshot: r.snapshot.clone(),
                    updates: r.log.iter().map(|(_, u)| u.clone()).collect(),
                    last_seq: r.last_seq,
                })
                .unwrap_or_default()
        });
        Box::pin(async move { Ok(out) })
    }

    fn append(&self, id: RoomId, updates: Vec<Vec<u8>>) -> BoxFuture<'_, StoreResult<u64>> {
        let out = self.with(|rooms| {
            let room = rooms.entry(id).or_default();
            for u in updates {
                room.last_seq += 1;
                room.log.push((room.last_seq, u));
            }
            room.last_seq
        });
        Box::pin(async move { Ok(out) })
    }

    fn compact(
        &self,
        id: RoomId,
        snapshot: Vec<u8>,
        upto_seq: u64,
        keep: Vec<Vec<u8>>,
    ) -> BoxFuture<'_, StoreResult<u64>> {
        let out = self.with(|rooms| {
            let room = rooms.entry(id).or_default();
            room.snapshot = Some(snapshot);
            room.log.retain(|(seq, _)| *seq > upto_seq);
            for u in keep {
                room.last_seq += 1;
                room.log.push((room.last_seq, u));
            }
            room.last_seq
        });
        Box::pin(async move { Ok(out) })
    }

    fn put_run(&self, id: RoomId, run: RunRecord) -> BoxFuture<'_, StoreResult<()>> {
        self.with(|rooms| rooms.entry(id).or_default().runs.push(run));
        Box::pin(async move { Ok(()) })
    }

    fn load_access(&self, id: RoomId) -> BoxFuture<'_, StoreResult<AccessState>> {
        let out = self.with(|rooms| rooms.get(&id).map(|r| r.access.clone()).unwrap_or_default());
        Box::pin(async move { Ok(out) })
    }

    fn write_access(&self, id: RoomId, changes: Vec<AccessChange>) -> BoxFuture<'_, StoreResult<()>> {
        self.with(|rooms| {
            let access = &mut rooms.entry(id).or_default().access;
            for change in changes {
                match change {
                    AccessChange::Link(mut link) => {
                        if let Some(old) = access.links.iter().find(|l| l.id == link.id) {
                            link.uses = link.uses.max(old.uses);
                        }
                        access.links.retain(|l| l.id != link.id);
                        access.links.push(link);
                    }
                    AccessChange::LinkUsed(id) => {
                        if let Some(l) = access.links.iter_mut().find(|l| l.id == id) {
                            l.uses += 1;
                        }
                    }
                    AccessChange::Seat(seat) => {
                        access.seats.retain(|s| s.id != seat.id);
                        access.seats.push(seat);
                    }
                    AccessChange::DropSeat(seat) => access.seats.retain(|s| s.id != seat),
                    AccessChange::Approval(on) => access.approval = on,
                    AccessChange::Audit(entry) => {
                        access.audit.push(entry);
                        let over = access.audit.len().saturating_sub(MAX_AUDIT_ENTRIES);
                        access.audit.drain(..over);
                    }
                    AccessChange::Owner(user) => access.owner = Some(user),
                }
            }
        });
        Box::pin(async move { Ok(()) })
    }

    fn list_runs(&self, id: RoomId, limit: usize) -> BoxFuture<'_, StoreResult<Vec<RunRecord>>> {
        let out = self.with(|rooms| {
            rooms
                .get(&id)
                .map(|r| r.runs.iter().rev().take(limit).cloned().collect())
                .unwrap_or_default()
        });
        Box::pin(async move { Ok(out) })
    }
}
