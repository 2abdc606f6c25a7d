//! The store's rules, one body each, run against every store: SQLite (a file in a temporary
//! directory) and Postgres (a real server started by the test, see `mesh_testkit::postgres`).
//! The rules several nodes sharing one Postgres depend on (numbering under concurrent
//! appends, compaction that never drops another node's rows, outages) follow, for Postgres.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mesh_protocol::messages::{AuditEntry, AuditKind, Role};
use mesh_protocol::RoomId;
use mesh_server::store::postgres::{PostgresStore, PostgresUrl};
use mesh_server::store::sqlite::{Durability, SqliteStore};
use mesh_server::store::{
    AccessChange, AccessState, LinkRecord, RoomRecord, RoomState, RunRecord, SeatRecord, Store, UserRecord,
    UserSession, MAX_AUDIT_ENTRIES,
};
use mesh_testkit::TestPostgres;
use yrs::updates::decoder::Decode;
use yrs::{GetString, ReadTxn, Text, Transact, Update};

/// Where a rule's store lives; [`Backend::open`] opens it again as a restarted server would.
enum Backend {
    Sqlite(tempfile::TempDir),
    Postgres(TestPostgres),
}

impl Backend {
    fn sqlite() -> Backend {
        Backend::Sqlite(tempfile::tempdir().unwrap())
    }

    fn postgres() -> Backend {
        Backend::Postgres(TestPostgres::start().unwrap())
    }

    async fn open(&self) -> Arc<dyn Store> {
        match self {
            Backend::Sqlite(dir) => {
                Arc::new(SqliteStore::open(&dir.path().join("mesh.db"), Durability::Process).unwrap())
            }
            Backend::Postgres(pg) => Arc::new(pg_store(&pg.url()).await),
        }
    }
}

async fn pg_store(url: &str) -> PostgresStore {
    PostgresStore::connect(&url.parse::<PostgresUrl>().unwrap())
        .await
        .unwrap()
}

async fn new_room(store: &dyn Store, created_at: u64) -> RoomId {
    let id = RoomId::random();
    store
        .create_room(RoomRecord {
            id,
            name: format!("room {created_at}"),
            created_at,
        })
        .await
        .unwrap();
    id
}

/// A document typing into text `t`, one update per call.
struct Typist(yrs::Doc);

impl Typist {
    fn new(client: u64) -> Typist {
        Typist(yrs::Doc::with_client_id(client))
    }

    fn type_text(&self, text: &str) -> Vec<u8> {
        let before = self.0.transact().state_vector();
        let t = self.0.get_or_insert_text("t");
        let mut txn = self.0.transact_mut();
        let len = t.len(&txn);
        t.insert(&mut txn, len, text);
        drop(txn);
        self.0.transact().encode_diff_v1(&before)
    }

    fn state(&self) -> Vec<u8> {
        self.0.transact().encode_diff_v1(&yrs::StateVector::default())
    }
}

/// The text a loaded room holds once `extra` updates are applied after it.
fn text_of(state: &RoomState, extra: &[Vec<u8>]) -> String {
    let doc = yrs::Doc::new();
    {
        let mut txn = doc.transact_mut();
        let all = state.snapshot.iter().chain(state.updates.iter()).chain(extra.iter());
        for u in all {
            txn.apply_update(Update::decode_v1(u).unwrap()).unwrap();
        }
    }
    let t = doc.get_or_insert_text("t");
    let out = t.get_string(&doc.transact());
    out
}

// --- the rules every store keeps -----------------------------------------------------------

async fn appends_are_numbered_in_order_and_survive_a_reopen(backend: Backend) {
    let store = backend.open().await;
    let id = new_room(&*store, 1).await;
    assert_eq!(store.append(id, vec![vec![1], vec![2]]).await.unwrap(), 2);
    assert_eq!(store.append(id, vec![vec![3]]).await.unwrap(), 3);
    assert_eq!(
        store.append(id, Vec::new()).await.unwrap(),
        3,
        "nothing appended, nothing numbered"
    );
    let (tx, rx) = std::sync::mpsc::channel();
    let seq = store
        .append_then(id, vec![vec![4]], Box::new(move || tx.send(()).unwrap()))
        .await
        .unwrap();
    assert_eq!(seq, 4);
    rx.try_recv().expect("on_durable ran before the append answered");
    drop(store);
    let store = backend.open().await;
    let want = RoomState {
        snapshot: None,
        updates: vec![vec![1], vec![2], vec![3], vec![4]],
        last_seq: 4,
    };
    assert_eq!(store.load(id).await.unwrap(), want);
    assert_eq!(
        store.append(id, vec![vec![5]]).await.unwrap(),
        5,
        "numbers continue after a reopen"
    );
}

async fn compaction_replaces_the_head_and_keeps_the_tail(backend: Backend) {
    let store = backend.open().await;
    let id = new_room(&*store, 1).await;
    let ada = Typist::new(1);
    let updates: Vec<Vec<u8>> = ["one ", "two ", "three"].iter().map(|t| ada.type_text(t)).collect();
    store.append(id, updates[..2].to_vec()).await.unwrap();
    let head = {
        let doc = Typist::new(1);
        doc.type_text("one ");
        doc.type_text("two ");
        doc.state()
    };
    store.append(id, updates[2..].to_vec()).await.unwrap();
    assert_eq!(store.compact(id, head, 2, Vec::new()).await.unwrap(), 3);
    let state = store.load(id).await.unwrap();
    assert!(state.snapshot.is_some());
    assert_eq!(
        state.updates,
        vec![updates[2].clone()],
        "the row after the snapshot stays as it was"
    );
    assert_eq!(state.last_seq, 3);
    assert_eq!(text_of(&state, &[]), "one two three");
    drop(store);
    let store = backend.open().await;
    assert_eq!(text_of(&store.load(id).await.unwrap(), &[]), "one two three");
    assert_eq!(store.append(id, vec![ada.type_text("!")]).await.unwrap(), 4);
    assert_eq!(text_of(&store.load(id).await.unwrap(), &[]), "one two three!");
}

async fn updates_kept_at_compaction_follow_the_snapshot(backend: Backend) {
    let store = backend.open().await;
    let id = new_room(&*store, 1).await;
    let ada = Typist::new(1);
    let first = ada.type_text("first ");
    // Bob types after Ada's text, so his words follow hers.
    let bob = Typist::new(2);
    bob.0
        .transact_mut()
        .apply_update(Update::decode_v1(&first).unwrap())
        .unwrap();
    let missing = bob.type_text("missing ");
    let waiting = bob.type_text("waiting");
    // Bob's second update arrives without his first: it cannot integrate yet.
    store.append(id, vec![first.clone(), waiting.clone()]).await.unwrap();
    let last = store
        .compact(
            id,
            Typist::state(&{
                let t = Typist::new(1);
                t.type_text("first ");
                t
            }),
            2,
            vec![waiting],
        )
        .await
        .unwrap();
    assert_eq!(last, 3, "the kept update gets the next number");
    let state = store.load(id).await.unwrap();
    assert_eq!((state.updates.len(), state.last_seq), (1, 3));
    assert_eq!(
        text_of(&state, &[]),
        "first ",
        "the waiting update is not in the text yet"
    );
    drop(store);
    let store = backend.open().await;
    let state = store.load(id).await.unwrap();
    assert_eq!(
        text_of(&state, &[missing]),
        "first missing waiting",
        "it integrates once its dependency comes"
    );
}

async fn rooms_are_listed_newest_first_and_deleted_with_everything(backend: Backend) {
    let store = backend.open().await;
    let old = new_room(&*store, 1).await;
    let new = new_room(&*store, 2).await;
    let listed: Vec<RoomId> = store.list_rooms().await.unwrap().iter().map(|r| r.id).collect();
    assert_eq!(listed, vec![new, old]);
    assert_eq!(store.get_room(old).await.unwrap().unwrap().name, "room 1");
    assert_eq!(store.get_room(RoomId::random()).await.unwrap(), None);
    store.append(old, vec![vec![1]]).await.unwrap();
    store.put_run(old, run("r1", 10)).await.unwrap();
    store
        .write_access(old, vec![AccessChange::Link(link("l1")), AccessChange::Approval(true)])
        .await
        .unwrap();
    assert!(store.delete_room(old).await.unwrap());
    assert!(!store.delete_room(old).await.unwrap(), "a second delete finds nothing");
    assert_eq!(store.get_room(old).await.unwrap(), None);
    assert_eq!(store.load(old).await.unwrap(), RoomState::default());
    assert_eq!(store.load_access(old).await.unwrap(), AccessState::default());
    assert!(store.list_runs(old, 10).await.unwrap().is_empty());
    let listed: Vec<RoomId> = store.list_rooms().await.unwrap().iter().map(|r| r.id).collect();
    assert_eq!(listed, vec![new]);
}

fn run(id: &str, started_at: u64) -> RunRecord {
    RunRecord {
        run_id: id.into(),
        path: "main.py".into(),
        language: "python".into(),
        by: "ada".into(),
        started_at,
        stage: "run".into(),
        code: Some(0),
        duration_ms: 12,
        limit: None,
        error: None,
        stdout: format!("out of {id}\n"),
        stderr: String::new(),
    }
}

fn link(id: &str) -> LinkRecord {
    LinkRecord {
        id: id.into(),
        role: Role::Writer,
        created_at: 1,
        expires_at: 2,
        max_uses: Some(3),
        uses: 1,
        revoked_at: None,
        created_by: "server".into(),
        for_user: Some("email:ada@example.test".into()),
    }
}

async fn runs_are_listed_newest_first_up_to_the_limit(backend: Backend) {
    let store = backend.open().await;
    let id = new_room(&*store, 1).await;
    for (i, at) in [30, 10, 20].iter().enumerate() {
        store.put_run(id, run(&format!("r{i}"), *at)).await.unwrap();
    }
    // A finished run replaces what was recorded when it started.
    let mut done = run("r1", 10);
    done.code = Some(3);
    store.put_run(id, done.clone()).await.unwrap();
    drop(store);
    let store = backend.open().await;
    let runs = store.list_runs(id, 10).await.unwrap();
    let ids: Vec<&str> = runs.iter().map(|r| r.run_id.as_str()).collect();
    assert_eq!(ids, ["r0", "r2", "r1"]);
    assert_eq!(runs[2], done);
    assert_eq!(store.list_runs(id, 2).await.unwrap().len(), 2);
}

/// Seats made through one link on two nodes at once each count, and a node's older copy of
/// the link (a revocation written from it) does not take a use back.
async fn a_link_counts_every_seat_made_through_it_whatever_node_wrote(backend: Backend) {
    let store = backend.open().await;
    let id = new_room(&*store, 1).await;
    let mut l = link("l1");
    l.uses = 0;
    store
        .write_access(id, vec![AccessChange::Link(l.clone())])
        .await
        .unwrap();
    // Two nodes, each having seen 0 uses, each seat someone.
    let (a, b) = (
        store.write_access(id, vec![AccessChange::LinkUsed("l1".into())]),
        store.write_access(id, vec![AccessChange::LinkUsed("l1".into())]),
    );
    let (a, b) = tokio::join!(a, b);
    a.unwrap();
    b.unwrap();
    // One of them revokes the link from its copy, which says 1 use.
    l.uses = 1;
    l.revoked_at = Some(5);
    store.write_access(id, vec![AccessChange::Link(l)]).await.unwrap();
    // A use of a link the room no longer has changes nothing.
    store
        .write_access(id, vec![AccessChange::LinkUsed("gone".into())])
        .await
        .unwrap();
    drop(store);
    let store = backend.open().await;
    let links = store.load_access(id).await.unwrap().links;
    assert_eq!(links.len(), 1);
    assert_eq!((links[0].uses, links[0].revoked_at), (2, Some(5)));
}

async fn access_records_round_trip_and_the_audit_trail_is_capped(backend: Backend) {
    let store = backend.open().await;
    let id = new_room(&*store, 1).await;
    let seat = SeatRecord {
        id: "s1".into(),
        name: "ada".into(),
        role: Role::Host,
        link: "l1".into(),
        created_at: 1,
        kicked: false,
        user: Some("u1".into()),
    };
    let entry = |ts| AuditEntry {
        ts,
        kind: AuditKind::Join,
        actor: "ada [s1]".into(),
        subject: "s1".into(),
        detail: String::new(),
    };
    let mut changes = vec![
        AccessChange::Link(link("l1")),
        AccessChange::Seat(seat.clone()),
        AccessChange::Seat(SeatRecord {
            id: "s2".into(),
            ..seat.clone()
        }),
        AccessChange::DropSeat("s2".into()),
        AccessChange::Approval(true),
        AccessChange::Owner("u1".into()),
    ];
    changes.extend((0..MAX_AUDIT_ENTRIES as u64 + 5).map(|ts| AccessChange::Audit(entry(ts))));
    store.write_access(id, changes).await.unwrap();
    // A link replaced (revoked) keeps one record.
    let revoked = LinkRecord {
        revoked_at: Some(5),
        uses: 2,
        ..link("l1")
    };
    store
        .write_access(id, vec![AccessChange::Link(revoked.clone())])
        .await
        .unwrap();
    drop(store);
    let store = backend.open().await;
    let access = store.load_access(id).await.unwrap();
    assert_eq!(
        (access.links, access.seats, access.approval),
        (vec![revoked], vec![seat], true)
    );
    assert_eq!(access.owner.as_deref(), Some("u1"));
    assert_eq!(access.audit.len(), MAX_AUDIT_ENTRIES, "the oldest entries are dropped");
    assert_eq!(access.audit[0].ts, 5);
    assert_eq!(access.audit.last().unwrap().ts, MAX_AUDIT_ENTRIES as u64 + 4);
}

async fn users_are_kept_by_issuer_and_subject_and_sessions_until_they_expire(backend: Backend) {
    let store = backend.open().await;
    let user = |id: &str, name: &str| UserRecord {
        id: id.into(),
        issuer: "https://id.example.test".into(),
        subject: "ada".into(),
        name: name.into(),
        email: Some("ada@example.test".into()),
        created_at: 1,
    };
    let first = store.put_user(user("u1", "Ada")).await.unwrap();
    let again = store.put_user(user("u2", "Ada Lovelace")).await.unwrap();
    assert_eq!(again.id, "u1", "the same person at the same provider keeps their id");
    assert_eq!((first.name.as_str(), again.name.as_str()), ("Ada", "Ada Lovelace"));
    let session = UserSession {
        digest: "d1".into(),
        user: "u1".into(),
        kind: "device".into(),
        created_at: 10,
        expires_at: 100,
    };
    store.put_session(session.clone()).await.unwrap();
    drop(store);
    let store = backend.open().await;
    let (s, u) = store.get_session("d1".into(), 50).await.unwrap().unwrap();
    assert_eq!((s, u.name.as_str()), (session, "Ada Lovelace"));
    assert_eq!(store.get_session("d1".into(), 100).await.unwrap(), None, "expired");
    assert_eq!(store.get_session("other".into(), 50).await.unwrap(), None);
    assert!(store.delete_session("d1".into()).await.unwrap());
    assert!(!store.delete_session("d1".into()).await.unwrap());
    assert_eq!(store.get_session("d1".into(), 50).await.unwrap(), None);
}

async fn a_closed_store_refuses_later_calls(backend: Backend) {
    let store = backend.open().await;
    let id = new_room(&*store, 1).await;
    store.close().await.unwrap();
    assert!(matches!(
        store.load(id).await,
        Err(mesh_server::store::StoreError::Closed)
    ));
}

/// One test per rule and store: `sqlite::RULE` and `postgres::RULE`.
macro_rules! conformance {
    ($($rule:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test] async fn $rule() { super::$rule(super::Backend::sqlite()).await })*
        }
        mod postgres {
            $(#[tokio::test] async fn $rule() { super::$rule(super::Backend::postgres()).await })*
        }
    };
}

conformance!(
    appends_are_numbered_in_order_and_survive_a_reopen,
    compaction_replaces_the_head_and_keeps_the_tail,
    updates_kept_at_compaction_follow_the_snapshot,
    rooms_are_listed_newest_first_and_deleted_with_everything,
    runs_are_listed_newest_first_up_to_the_limit,
    access_records_round_trip_and_the_audit_trail_is_capped,
    a_link_counts_every_seat_made_through_it_whatever_node_wrote,
    users_are_kept_by_issuer_and_subject_and_sessions_until_they_expire,
    a_closed_store_refuses_later_calls,
);

// --- several nodes on one Postgres ---------------------------------------------------------

/// Postgres numbers and appends in one statement: a room that is gone updates no sequence
/// row, so the append is refused with words a person can act on, and nothing is written.
#[tokio::test]
async fn an_append_to_a_room_gone_from_postgres_is_refused_and_writes_nothing() {
    let pg = TestPostgres::start().unwrap();
    let store = pg_store(&pg.url()).await;
    let id = new_room(&store, 1).await;
    assert!(store.delete_room(id).await.unwrap());
    let e = store.append(id, vec![vec![1]]).await.unwrap_err();
    assert!(e.to_string().contains("not in the store"), "{e}");
    assert_eq!(store.load(id).await.unwrap(), RoomState::default());
}

/// Appends from two nodes (two pools, as two servers have) to one room at once, several
/// tasks each: every update gets one number, each append's updates are consecutive, and the
/// log holds every update exactly once, in number order.
#[tokio::test]
async fn two_nodes_appending_to_one_room_number_every_update_once() {
    let pg = TestPostgres::start().unwrap();
    let (a, b) = (Arc::new(pg_store(&pg.url()).await), Arc::new(pg_store(&pg.url()).await));
    let id = new_room(&*a, 1).await;
    const TASKS_PER_NODE: u32 = 6;
    const APPENDS_PER_TASK: u32 = 40;
    let mut tasks = Vec::new();
    let started = Instant::now();
    for (node, store) in [(0u32, a.clone()), (1, b.clone())] {
        for task in 0..TASKS_PER_NODE {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut done = Vec::new();
                for i in 0..APPENDS_PER_TASK {
                    // One to three updates an append, each naming (node, task, append, part).
                    let batch: Vec<Vec<u8>> = (0..1 + i % 3)
                        .map(|part| format!("{node}/{task}/{i}/{part}").into_bytes())
                        .collect();
                    let last = store.append(id, batch.clone()).await.unwrap();
                    done.push((last, batch));
                }
                done
            }));
        }
    }
    let mut appends = Vec::new();
    for t in tasks {
        appends.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed();
    let total: usize = appends.iter().map(|(_, b)| b.len()).sum();
    println!(
        "{} appends ({total} updates) from {} tasks on 2 nodes to one room in {elapsed:?}: {:.0} appends/s",
        appends.len(),
        2 * TASKS_PER_NODE,
        appends.len() as f64 / elapsed.as_secs_f64()
    );
    let state = b.load(id).await.unwrap();
    assert_eq!(state.last_seq as usize, total);
    assert_eq!(state.updates.len(), total, "every update is in the log once");
    for (last, batch) in &appends {
        let first = *last as usize - batch.len();
        assert_eq!(
            &state.updates[first..*last as usize],
            batch.as_slice(),
            "append ending at {last}"
        );
    }
    let mut lasts: Vec<u64> = appends.iter().map(|(l, _)| *l).collect();
    lasts.sort();
    lasts.dedup();
    assert_eq!(lasts.len(), appends.len(), "no two appends share a number");
}

/// Two nodes' rooms write the access records of people joining one room at once (a seat
/// and its join entry in one write, as a room's turn does): every write succeeds, every
/// seat is kept and every entry audited. Each write's foreign key checks once left both
/// nodes holding a share lock on the room's row that the other's audit entry waited for,
/// and Postgres answered one of them "deadlock detected", which closed the room.
#[tokio::test]
async fn two_nodes_writing_one_rooms_seats_and_audit_at_once_both_succeed() {
    let pg = TestPostgres::start().unwrap();
    let (a, b) = (Arc::new(pg_store(&pg.url()).await), Arc::new(pg_store(&pg.url()).await));
    let id = new_room(&*a, 1).await;
    const TASKS_PER_NODE: u32 = 4;
    const WRITES_PER_TASK: u32 = 15;
    let mut tasks = Vec::new();
    for (node, store) in [(0u32, a.clone()), (1, b.clone())] {
        for task in 0..TASKS_PER_NODE {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..WRITES_PER_TASK {
                    let seat = format!("s{node}-{task}-{i}");
                    let changes = vec![
                        AccessChange::Seat(SeatRecord {
                            id: seat.clone(),
                            name: seat.clone(),
                            role: Role::Writer,
                            link: "l1".into(),
                            created_at: u64::from(i),
                            kicked: false,
                            user: None,
                        }),
                        AccessChange::Audit(AuditEntry {
                            ts: u64::from(i),
                            kind: AuditKind::Join,
                            actor: seat.clone(),
                            subject: seat.clone(),
                            detail: String::new(),
                        }),
                    ];
                    store
                        .write_access(id, changes)
                        .await
                        .unwrap_or_else(|e| panic!("node {node} writing {seat}: {e}"));
                }
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    let access = b.load_access(id).await.unwrap();
    let written = (2 * TASKS_PER_NODE * WRITES_PER_TASK) as usize;
    assert_eq!(access.seats.len(), written, "every seat is kept");
    assert_eq!(
        access.audit.len(),
        written.min(MAX_AUDIT_ENTRIES),
        "every join is audited"
    );
}

/// Node A compacts with a snapshot of its own memory while node B's row (numbered between
/// A's) never reached it: B's update is still in the room afterwards.
#[tokio::test]
async fn compaction_keeps_rows_the_compacting_node_never_integrated() {
    let pg = TestPostgres::start().unwrap();
    let (a, b) = (pg_store(&pg.url()).await, pg_store(&pg.url()).await);
    let id = new_room(&a, 1).await;
    let (ada, bob) = (Typist::new(1), Typist::new(2));
    a.append(id, vec![ada.type_text("ada-1 ")]).await.unwrap();
    b.append(id, vec![bob.type_text("bob-1 ")]).await.unwrap();
    let upto = a.append(id, vec![ada.type_text("ada-2 ")]).await.unwrap();
    // A knows only its own updates.
    a.compact(id, ada.state(), upto, Vec::new()).await.unwrap();
    let text = text_of(&b.load(id).await.unwrap(), &[]);
    for marker in ["ada-1", "ada-2", "bob-1"] {
        assert!(text.contains(marker), "{marker} was lost at compaction: {text:?}");
    }
}

#[tokio::test]
async fn migrations_apply_once_when_two_nodes_start_together_and_a_newer_schema_is_refused() {
    let pg = TestPostgres::start().unwrap();
    let url = pg.create_database("fresh").unwrap();
    let (a, b) = tokio::join!(pg_store(&url), pg_store(&url));
    drop((a, b));
    assert_eq!(
        pg.sql_in("fresh", "SELECT count(*) FROM mesh_migrations")
            .unwrap()
            .trim(),
        "1"
    );
    pg.sql_in("fresh", "INSERT INTO mesh_migrations VALUES (999, 0)")
        .unwrap();
    let refused = PostgresStore::connect(&url.parse().unwrap()).await.err().unwrap();
    assert!(
        refused.to_string().contains("newer than this server knows"),
        "{refused}"
    );
}

#[tokio::test]
async fn an_unreachable_database_fails_fast_with_an_error_that_hides_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://mesh:hidden-pw@127.0.0.1:{port}/mesh");
    let started = Instant::now();
    let e = PostgresStore::connect(&url.parse().unwrap())
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        e.contains("cannot reach the Postgres store at postgres://mesh:***@127.0.0.1"),
        "{e}"
    );
    assert!(!e.contains("hidden-pw"), "{e}");
}

/// Postgres stops under a connected store: calls fail with an error (none hangs), nothing
/// committed is lost, and once Postgres is back the same store carries on.
#[tokio::test]
async fn the_store_carries_on_after_postgres_restarts() {
    let mut pg = TestPostgres::start().unwrap();
    let store = pg_store(&pg.url()).await;
    let id = new_room(&store, 1).await;
    assert_eq!(store.append(id, vec![b"before".to_vec()]).await.unwrap(), 1);
    pg.stop().unwrap();
    let started = Instant::now();
    let e = store
        .append(id, vec![b"during".to_vec()])
        .await
        .unwrap_err()
        .to_string();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    assert!(e.contains("Postgres store at postgres://mesh:***@"), "{e}");
    assert!(!e.contains(pg.password()), "{e}");
    pg.start_again().unwrap();
    // The pool replaces the connections Postgres closed; the first call may still meet one.
    let mut seq = None;
    for _ in 0..20 {
        if let Ok(s) = store.append(id, vec![b"after".to_vec()]).await {
            seq = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seq, Some(2), "the refused append took no number");
    assert_eq!(
        store.load(id).await.unwrap().updates,
        vec![b"before".to_vec(), b"after".to_vec()]
    );
}
