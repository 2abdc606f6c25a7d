//! The Postgres store's access records: a room's links, seats, approval setting, owner and
//! audit trail, read in one consistent view and written in one transaction.

use futures_util::future::BoxFuture;
use mesh_protocol::RoomId;

use super::{i64_of, u64_of, PostgresStore};
use crate::store::{AccessChange, AccessState, LinkRecord, SeatRecord, StoreError, StoreResult, MAX_AUDIT_ENTRIES};

/// An enum's documented string (its serde name), for a TEXT column.
fn enum_text<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        other => unreachable!("enums stored as text serialise to strings, not {other:?}"),
    }
}

/// The enum a TEXT column names; a value this code does not know fails the read.
fn text_enum<T: serde::de::DeserializeOwned>(column: &str, text: String) -> StoreResult<T> {
    serde_json::from_value(serde_json::Value::String(text.clone())).map_err(|_| {
        StoreError::Database(format!(
            "unknown {column} {text:?} in the store; is a newer mesh-server writing to it?"
        ))
    })
}

/// The statements [`PostgresStore::write_access_rows`] uses, prepared once per pooled
/// connection (a statement given as text is parsed by the server on every call: a round
/// trip of its own).
const LOCK_ROOM: &str = "SELECT 1 FROM rooms WHERE id = $1 FOR UPDATE";
const NEXT_AUDIT: &str = "SELECT coalesce(max(seq), 0) + 1 FROM room_audit WHERE room_id = $1";
const PUT_LINK: &str = "INSERT INTO room_links
     (room_id, id, role, created_at, expires_at, max_uses, uses, revoked_at, created_by, for_user)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
     ON CONFLICT (room_id, id) DO UPDATE SET role = excluded.role,
       created_at = excluded.created_at, expires_at = excluded.expires_at,
       max_uses = excluded.max_uses, uses = GREATEST(room_links.uses, excluded.uses),
       revoked_at = excluded.revoked_at,
       created_by = excluded.created_by, for_user = excluded.for_user";
const USE_LINK: &str = "UPDATE room_links SET uses = uses + 1 WHERE room_id = $1 AND id = $2";
const PUT_SEAT: &str = "INSERT INTO room_seats (room_id, id, name, role, link, created_at, kicked, user_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (room_id, id) DO UPDATE SET name = excluded.name, role = excluded.role,
       link = excluded.link, created_at = excluded.created_at, kicked = excluded.kicked,
       user_id = excluded.user_id";
const DROP_SEAT: &str = "DELETE FROM room_seats WHERE room_id = $1 AND id = $2";
const SET_APPROVAL: &str = "UPDATE rooms SET approval = $2 WHERE id = $1";
const SET_OWNER: &str = "UPDATE rooms SET owner = $2 WHERE id = $1";
const PUT_AUDIT: &str = "INSERT INTO room_audit (room_id, seq, ts, kind, actor, subject, detail)
     VALUES ($1, $2, $3, $4, $5, $6, $7)";
const TRIM_AUDIT: &str = "DELETE FROM room_audit WHERE room_id = $1 AND seq <= $2";

impl PostgresStore {
    pub(super) async fn load_access_rows(&self, id: RoomId) -> StoreResult<AccessState> {
        let mut client = self.client().await?;
        let key = id.to_string();
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(|e| self.err(e))?;
        // The four reads go out together (tokio-postgres pipelines requests polled at once),
        // as prepared statements: another node's change makes every node holding the room
        // read its access again, in the room's turn, and a join storm makes many changes.
        let (room, links, seats, audit) = {
            let (room, links, seats, audit) = futures_util::try_join!(
                tx.prepare_cached("SELECT approval, owner FROM rooms WHERE id = $1"),
                tx.prepare_cached(
                    "SELECT id, role, created_at, expires_at, max_uses, uses, revoked_at, created_by, for_user
                     FROM room_links WHERE room_id = $1"
                ),
                tx.prepare_cached(
                    "SELECT id, name, role, link, created_at, kicked, user_id FROM room_seats WHERE room_id = $1"
                ),
                tx.prepare_cached(
                    "SELECT ts, kind, actor, subject, detail FROM room_audit WHERE room_id = $1 ORDER BY seq"
                ),
            )
            .map_err(|e| self.err(e))?;
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&key];
            futures_util::try_join!(
                tx.query_opt(&room, &params),
                tx.query(&links, &params),
                tx.query(&seats, &params),
                tx.query(&audit, &params),
            )
            .map_err(|e| self.err(e))?
        };
        let (approval, owner) = room.map_or((false, None), |r| (r.get(0), r.get(1)));
        let link_rows = links;
        let mut links = Vec::with_capacity(link_rows.len());
        for r in link_rows {
            links.push(LinkRecord {
                id: r.get(0),
                role: text_enum("role", r.get(1))?,
                created_at: u64_of(r.get(2)),
                expires_at: u64_of(r.get(3)),
                max_uses: r.get::<_, Option<i64>>(4).map(|n| n.clamp(0, u32::MAX as i64) as u32),
                uses: r.get::<_, i64>(5).clamp(0, u32::MAX as i64) as u32,
                revoked_at: r.get::<_, Option<i64>>(6).map(u64_of),
                created_by: r.get(7),
                for_user: r.get(8),
            });
        }
        let seat_rows = seats;
        let mut seats = Vec::with_capacity(seat_rows.len());
        for r in seat_rows {
            seats.push(SeatRecord {
                id: r.get(0),
                name: r.get(1),
                role: text_enum("role", r.get(2))?,
                link: r.get(3),
                created_at: u64_of(r.get(4)),
                kicked: r.get(5),
                user: r.get(6),
            });
        }
        let audit_rows = audit;
        let mut audit = Vec::with_capacity(audit_rows.len());
        for r in audit_rows {
            audit.push(mesh_protocol::messages::AuditEntry {
                ts: u64_of(r.get(0)),
                kind: text_enum("audit kind", r.get(1))?,
                actor: r.get(2),
                subject: r.get(3),
                detail: r.get(4),
            });
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(AccessState {
            links,
            seats,
            approval,
            audit,
            owner,
        })
    }

    pub(super) async fn write_access_rows(&self, id: RoomId, changes: Vec<AccessChange>) -> StoreResult<()> {
        let mut client = self.client().await?;
        let key = id.to_string();
        let tx = client.transaction().await.map_err(|e| self.err(e))?;
        // The room's row is locked before anything else, so two nodes writing one room's
        // access records run one after the other. Without it each insert's foreign key
        // check holds a share lock on that row and an audit entry then waits for the other
        // node's share lock to go: Postgres broke the cycle with "deadlock detected" and the
        // room closed (two nodes' joins at once, found by mesh-bench --nodes). With the lock
        // held, audit entries are numbered from one reading of the room's last one.
        let lock = tx.prepare_cached(LOCK_ROOM).await.map_err(|e| self.err(e))?;
        let exists = tx.query_opt(&lock, &[&key]).await.map_err(|e| self.err(e))?.is_some();
        let audits = changes.iter().filter(|c| matches!(c, AccessChange::Audit(_))).count();
        let mut next_seq: i64 = 0;
        if exists && audits > 0 {
            let next = tx.prepare_cached(NEXT_AUDIT).await.map_err(|e| self.err(e))?;
            next_seq = tx.query_one(&next, &[&key]).await.map_err(|e| self.err(e))?.get(0);
        }
        // Every write is sent before the first answer is awaited: tokio-postgres sends a
        // request when its future is first polled and `try_join_all` polls them in order, so
        // the database runs them in the changes' order, in one round trip for the batch
        // instead of one per change (150 people joining at once were 900 round trips, one
        // after the other, in their room's turns).
        let mut writes: Vec<BoxFuture<'_, Result<u64, tokio_postgres::Error>>> = Vec::with_capacity(changes.len() + 1);
        let t = &tx;
        let key = key.as_str();
        for change in changes {
            let sql = match &change {
                AccessChange::Link(_) => PUT_LINK,
                AccessChange::LinkUsed(_) => USE_LINK,
                AccessChange::Seat(_) => PUT_SEAT,
                AccessChange::DropSeat(_) => DROP_SEAT,
                AccessChange::Approval(_) => SET_APPROVAL,
                AccessChange::Owner(_) => SET_OWNER,
                // A room deleted meanwhile has no trail to add to.
                AccessChange::Audit(_) if !exists => continue,
                AccessChange::Audit(_) => PUT_AUDIT,
            };
            let stmt = tx.prepare_cached(sql).await.map_err(|e| self.err(e))?;
            writes.push(match change {
                AccessChange::Link(l) => Box::pin(async move {
                    let role = enum_text(&l.role);
                    let (created, expires) = (i64_of(l.created_at), i64_of(l.expires_at));
                    let (max_uses, uses) = (l.max_uses.map(i64::from), i64::from(l.uses));
                    let revoked = l.revoked_at.map(i64_of);
                    t.execute(
                        &stmt,
                        &[
                            &key,
                            &l.id,
                            &role,
                            &created,
                            &expires,
                            &max_uses,
                            &uses,
                            &revoked,
                            &l.created_by,
                            &l.for_user,
                        ],
                    )
                    .await
                }),
                AccessChange::LinkUsed(link) => Box::pin(async move { t.execute(&stmt, &[&key, &link]).await }),
                AccessChange::Seat(s) => Box::pin(async move {
                    let (role, created) = (enum_text(&s.role), i64_of(s.created_at));
                    t.execute(
                        &stmt,
                        &[&key, &s.id, &s.name, &role, &s.link, &created, &s.kicked, &s.user],
                    )
                    .await
                }),
                AccessChange::DropSeat(seat) => Box::pin(async move { t.execute(&stmt, &[&key, &seat]).await }),
                AccessChange::Approval(on) => Box::pin(async move { t.execute(&stmt, &[&key, &on]).await }),
                AccessChange::Owner(user) => Box::pin(async move { t.execute(&stmt, &[&key, &user]).await }),
                AccessChange::Audit(e) => {
                    let seq = next_seq;
                    next_seq += 1;
                    Box::pin(async move {
                        let (ts, kind) = (i64_of(e.ts), enum_text(&e.kind));
                        t.execute(&stmt, &[&key, &seq, &ts, &kind, &e.actor, &e.subject, &e.detail])
                            .await
                    })
                }
            });
        }
        if exists && audits > 0 {
            // The trail keeps its newest entries only.
            let trim = tx.prepare_cached(TRIM_AUDIT).await.map_err(|e| self.err(e))?;
            let oldest_dropped = next_seq - 1 - MAX_AUDIT_ENTRIES as i64;
            writes.push(Box::pin(
                async move { t.execute(&trim, &[&key, &oldest_dropped]).await },
            ));
        }
        futures_util::future::try_join_all(writes)
            .await
            .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))
    }
}
