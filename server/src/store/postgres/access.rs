//! The Postgres store's access records: a room's links, seats, approval setting, owner and
//! audit trail, read in one consistent view and written in one transaction.

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
        let (approval, owner) = tx
            .query_opt("SELECT approval, owner FROM rooms WHERE id = $1", &[&key])
            .await
            .map_err(|e| self.err(e))?
            .map_or((false, None), |r| (r.get(0), r.get(1)));
        let mut links = Vec::new();
        for r in tx
            .query(
                "SELECT id, role, created_at, expires_at, max_uses, uses, revoked_at, created_by, for_user
                 FROM room_links WHERE room_id = $1",
                &[&key],
            )
            .await
            .map_err(|e| self.err(e))?
        {
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
        let mut seats = Vec::new();
        for r in tx
            .query(
                "SELECT id, name, role, link, created_at, kicked, user_id FROM room_seats WHERE room_id = $1",
                &[&key],
            )
            .await
            .map_err(|e| self.err(e))?
        {
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
        let mut audit = Vec::new();
        for r in tx
            .query(
                "SELECT ts, kind, actor, subject, detail FROM room_audit WHERE room_id = $1 ORDER BY seq",
                &[&key],
            )
            .await
            .map_err(|e| self.err(e))?
        {
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
        // room closed (two nodes' joins at once, found by mesh-bench --nodes).
        tx.query_opt("SELECT 1 FROM rooms WHERE id = $1 FOR UPDATE", &[&key])
            .await
            .map_err(|e| self.err(e))?;
        for change in changes {
            let result = match change {
                AccessChange::Link(l) => {
                    tx.execute(
                        "INSERT INTO room_links
                         (room_id, id, role, created_at, expires_at, max_uses, uses, revoked_at, created_by, for_user)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                         ON CONFLICT (room_id, id) DO UPDATE SET role = excluded.role,
                           created_at = excluded.created_at, expires_at = excluded.expires_at,
                           max_uses = excluded.max_uses, uses = GREATEST(room_links.uses, excluded.uses),
                           revoked_at = excluded.revoked_at,
                           created_by = excluded.created_by, for_user = excluded.for_user",
                        &[
                            &key,
                            &l.id,
                            &enum_text(&l.role),
                            &i64_of(l.created_at),
                            &i64_of(l.expires_at),
                            &l.max_uses.map(i64::from),
                            &i64::from(l.uses),
                            &l.revoked_at.map(i64_of),
                            &l.created_by,
                            &l.for_user,
                        ],
                    )
                    .await
                }
                AccessChange::LinkUsed(link) => {
                    tx.execute(
                        "UPDATE room_links SET uses = uses + 1 WHERE room_id = $1 AND id = $2",
                        &[&key, &link],
                    )
                    .await
                }
                AccessChange::Seat(s) => {
                    tx.execute(
                        "INSERT INTO room_seats (room_id, id, name, role, link, created_at, kicked, user_id)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                         ON CONFLICT (room_id, id) DO UPDATE SET name = excluded.name, role = excluded.role,
                           link = excluded.link, created_at = excluded.created_at, kicked = excluded.kicked,
                           user_id = excluded.user_id",
                        &[
                            &key,
                            &s.id,
                            &s.name,
                            &enum_text(&s.role),
                            &s.link,
                            &i64_of(s.created_at),
                            &s.kicked,
                            &s.user,
                        ],
                    )
                    .await
                }
                AccessChange::DropSeat(seat) => {
                    tx.execute("DELETE FROM room_seats WHERE room_id = $1 AND id = $2", &[&key, &seat])
                        .await
                }
                AccessChange::Approval(on) => {
                    tx.execute("UPDATE rooms SET approval = $2 WHERE id = $1", &[&key, &on])
                        .await
                }
                AccessChange::Owner(user) => {
                    tx.execute("UPDATE rooms SET owner = $2 WHERE id = $1", &[&key, &user])
                        .await
                }
                AccessChange::Audit(e) => {
                    // The room's row is locked first, so two nodes auditing at once number
                    // their entries one after the other.
                    let locked = tx
                        .query_opt("SELECT 1 FROM rooms WHERE id = $1 FOR UPDATE", &[&key])
                        .await
                        .map_err(|e| self.err(e))?;
                    if locked.is_none() {
                        continue;
                    }
                    let seq: i64 = tx
                        .query_one(
                            "SELECT coalesce(max(seq), 0) + 1 FROM room_audit WHERE room_id = $1",
                            &[&key],
                        )
                        .await
                        .map_err(|e| self.err(e))?
                        .get(0);
                    tx.execute(
                        "INSERT INTO room_audit (room_id, seq, ts, kind, actor, subject, detail)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)",
                        &[
                            &key,
                            &seq,
                            &i64_of(e.ts),
                            &enum_text(&e.kind),
                            &e.actor,
                            &e.subject,
                            &e.detail,
                        ],
                    )
                    .await
                    .map_err(|e| self.err(e))?;
                    tx.execute(
                        "DELETE FROM room_audit WHERE room_id = $1 AND seq <= $2",
                        &[&key, &(seq - MAX_AUDIT_ENTRIES as i64)],
                    )
                    .await
                }
            };
            result.map_err(|e| self.err(e))?;
        }
        tx.commit().await.map_err(|e| self.err(e))
    }
}
