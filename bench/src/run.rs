//! One run against one server: start it, open the rooms, connect every client, run the
//! typing phase and then the saturation phase, collect the results, kill the server.
//!
//! # The two phases
//!
//! **Typing** is open loop: every client types one character every `1/rate` seconds,
//! whatever the server does, like a person would; clients start at random offsets within
//! one period (seeded) so they do not type in lockstep. It measures the latency a user sees
//! at a realistic load.
//!
//! **Saturation** is closed loop with a window: every client keeps up to `window` updates in
//! flight, where "in flight" means "not yet received by all of its room-mates" (the ledger
//! knows, because every client lives in this process). A client sends whenever it has room
//! in its window, as fast as it can. This is fair to servers of different speeds:
//! - the offered load adapts to what each server actually delivers, so a server cannot
//!   score throughput by buffering updates it has not delivered, and a slow server is not
//!   buried under an ever-growing backlog that would measure the bench's queue instead of
//!   the server;
//! - every server sees the same bound on concurrency (clients × window), so latency under
//!   load is comparable: it is the queueing delay of at most that many updates;
//! - delivery, not acknowledgement, opens the window, which every Yjs server provides in
//!   the same way (there is no protocol-level ack to rely on).
//!
//! After each phase's load stops, a drain period lets in-flight updates arrive; what has
//! not arrived by its end is reported as lost.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{sleep, sleep_until, timeout_at, Instant};

use crate::client::{self, ClientConfig, ClientOutcome, Control};
use crate::ledger::{Ledger, Phase, PHASES};
use crate::procstat;
use crate::report::{Latency, MemoryReport, PhaseReport, ServerReport};
use crate::servers::{Programs, ServerKind, ServerProcess};

/// Handshakes in progress at once: enough to connect hundreds of clients in seconds,
/// few enough not to overflow a server's accept backlog.
pub const CONNECT_CONCURRENCY: usize = 8;
/// Time for all clients to connect and sync (each also has its own timeout).
pub(crate) const CONNECT_PHASE_TIMEOUT: Duration = Duration::from_secs(120);
/// Pause after start before the idle memory reading, so start-up allocation has settled.
const IDLE_SETTLE: Duration = Duration::from_millis(500);
/// Pause after all clients synced before the connected memory reading, for the same reason.
pub(crate) const CONNECTED_SETTLE: Duration = Duration::from_secs(1);
/// Longest wait after a phase's load for in-flight updates; what is missing then is lost.
pub(crate) const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Interval between two checks whether the drain is complete.
pub(crate) const DRAIN_POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Time for all clients to close and report after the run.
pub(crate) const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);
/// Slack on top of the sum of the above in [`budget`], for settling and start-up.
const BUDGET_SLACK: Duration = Duration::from_secs(30);

/// The load applied to every server, identically.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Load {
    /// Rooms.
    pub rooms: usize,
    /// Clients per room.
    pub clients: usize,
    /// Clients per room that type; the others only receive.
    pub writers: usize,
    /// Seconds of load per phase.
    pub duration_secs: f64,
    /// Typing phase: updates per second per client.
    pub rate: f64,
    /// Saturation phase: undelivered updates allowed per client.
    pub window: u64,
    /// Seed of the typing start offsets.
    pub seed: u64,
}

impl Load {
    fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.duration_secs)
    }

    /// Total client connections.
    pub fn connections(&self) -> usize {
        self.rooms * self.clients
    }
}

/// The longest one server's run can take; the caller enforces it.
pub fn budget(load: &Load) -> Duration {
    crate::servers::START_TIMEOUT
        + CONNECT_PHASE_TIMEOUT
        + (load.duration() + DRAIN_TIMEOUT) * PHASES as u32
        + IDLE_SETTLE
        + CONNECTED_SETTLE
        + CLOSE_TIMEOUT
        + BUDGET_SLACK
}

/// What the coordinator measured around one phase.
struct PhaseWindow {
    start: Instant,
    /// Receipts counted when the drain ended; later ones are not "received".
    receipts: u64,
    end: Instant,
    server_cpu: Duration,
    bench_cpu: Duration,
    rss_after_kib: u64,
}

/// Runs both phases against `kind`. The server is killed when this returns or is dropped.
pub async fn run_server(kind: ServerKind, programs: &Programs, load: &Load) -> anyhow::Result<ServerReport> {
    let server = ServerProcess::start(kind, programs).await?;
    progress(kind, "started");
    sleep(IDLE_SETTLE).await;
    let idle = server.memory()?;
    let rooms = server.create_rooms(load.rooms).await?;

    let ledger = Arc::new(Ledger::new(load.rooms, load.clients));
    let (control_tx, control_rx) = watch::channel(Control::Idle);
    let (ready_tx, mut ready_rx) = mpsc::channel(load.connections());
    let connect_slots = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let typing_period = Duration::from_secs_f64(1.0 / load.rate);
    let mut rng = StdRng::seed_from_u64(load.seed);
    // Dropping the set (on any early return) aborts every client task.
    let mut clients = JoinSet::new();
    for index in 0..load.connections() {
        let room = &rooms[index / load.clients];
        let config = ClientConfig {
            index,
            clients_per_room: load.clients,
            writes: index % load.clients < load.writers,
            url: room.url.clone(),
            framing: room.framing.clone(),
            typing_period,
            typing_offset: typing_period.mul_f64(rng.random::<f64>()),
            window: load.window,
        };
        clients.spawn(client::run(
            config,
            ledger.clone(),
            control_rx.clone(),
            ready_tx.clone(),
            connect_slots.clone(),
        ));
    }
    drop(ready_tx);

    let connect_times = await_ready(&mut ready_rx, load.connections()).await?;
    progress(kind, &format!("{} clients connected and synced", connect_times.len()));
    sleep(CONNECTED_SETTLE).await;
    let connected = server.memory()?;

    let mut windows = Vec::with_capacity(PHASES);
    for phase in Phase::ALL {
        windows.push(run_phase(&server, &ledger, &control_tx, phase, load).await?);
    }
    control_tx.send(Control::Close).context("all clients ended early")?;
    let outcomes = collect(&mut clients).await?;
    let peak_kib = server.memory()?.peak_kib;
    drop(server);

    let connections = load.connections();
    let memory = MemoryReport {
        idle_kib: idle.rss_kib,
        connected_kib: connected.rss_kib,
        per_connection_kib: connected.rss_kib.saturating_sub(idle.rss_kib) as f64 / connections as f64,
        peak_kib,
    };
    let phases = Phase::ALL
        .iter()
        .zip(&windows)
        .map(|(&phase, window)| phase_report(phase, window, &ledger, &outcomes, load))
        .collect();
    Ok(ServerReport {
        server: kind.name(),
        connections,
        connect: Latency::from_micros(connect_times.iter().map(|d| micros(*d)).collect()),
        memory,
        phases,
        disconnected_clients: outcomes.iter().filter(|o| o.disconnected).count(),
        undecodable_updates: outcomes.iter().map(|o| o.undecodable).sum(),
    })
}

/// Waits until every client has connected and synced; fails on the first that could not.
pub(crate) async fn await_ready(
    ready_rx: &mut mpsc::Receiver<client::Ready>,
    count: usize,
) -> anyhow::Result<Vec<Duration>> {
    let deadline = Instant::now() + CONNECT_PHASE_TIMEOUT;
    let mut connect_times = Vec::with_capacity(count);
    while connect_times.len() < count {
        match timeout_at(deadline, ready_rx.recv()).await {
            Ok(Some((_, Ok(connect_time)))) => connect_times.push(connect_time),
            Ok(Some((index, Err(e)))) => bail!("client {index} could not connect and sync: {e}"),
            Ok(None) => bail!("clients ended before all were ready"),
            Err(_) => bail!(
                "only {} of {count} clients synced within {CONNECT_PHASE_TIMEOUT:?}",
                connect_times.len()
            ),
        }
    }
    Ok(connect_times)
}

/// Runs one phase's load, then drains.
async fn run_phase(
    server: &ServerProcess,
    ledger: &Ledger,
    control_tx: &watch::Sender<Control>,
    phase: Phase,
    load: &Load,
) -> anyhow::Result<PhaseWindow> {
    let server_cpu = server.cpu_time()?;
    let bench_cpu = procstat::cpu_time(None)?;
    let start = Instant::now();
    let until = start + load.duration();
    control_tx
        .send(Control::Load { phase, until })
        .context("all clients ended early")?;
    progress(server.kind(), &format!("{} phase", phase.name()));
    sleep_until(until).await;
    let drain_deadline = until + DRAIN_TIMEOUT;
    while ledger.receipts(phase) < ledger.expected_receipts(phase) && Instant::now() < drain_deadline {
        sleep(DRAIN_POLL_INTERVAL).await;
    }
    let end = Instant::now();
    let receipts = ledger.receipts(phase);
    control_tx.send(Control::Idle).context("all clients ended early")?;
    Ok(PhaseWindow {
        start,
        receipts,
        end,
        server_cpu: server.cpu_time()?.saturating_sub(server_cpu),
        bench_cpu: procstat::cpu_time(None)?.saturating_sub(bench_cpu),
        rss_after_kib: server.memory()?.rss_kib,
    })
}

/// Waits for every client task to close its socket and return its results.
pub(crate) async fn collect(clients: &mut JoinSet<ClientOutcome>) -> anyhow::Result<Vec<ClientOutcome>> {
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    let mut outcomes = Vec::with_capacity(clients.len());
    while let Some(joined) = timeout_at(deadline, clients.join_next())
        .await
        .with_context(|| format!("{} clients did not close within {CLOSE_TIMEOUT:?}", clients.len()))?
    {
        outcomes.push(joined.context("a client task panicked")?);
    }
    Ok(outcomes)
}

fn phase_report(
    phase: Phase,
    window: &PhaseWindow,
    ledger: &Ledger,
    outcomes: &[ClientOutcome],
    load: &Load,
) -> PhaseReport {
    let stats = || outcomes.iter().map(|o| &o.phases[phase.index()]);
    let received = window.receipts;
    let sent = ledger.sent(phase);
    let expected = ledger.expected_receipts(phase);
    let last_receipt = stats().filter_map(|s| s.last_receipt).max();
    // Throughput over the time deliveries actually took: from the start of the load to
    // the last receipt (which may fall into the drain).
    let delivery_secs = last_receipt.map_or(0.0, |t| t.duration_since(window.start).as_secs_f64());
    let wall_secs = window.end.duration_since(window.start).as_secs_f64();
    let latencies: Vec<u32> = stats().flat_map(|s| s.latencies_us.iter().copied()).collect();
    PhaseReport {
        phase: phase.name(),
        load_secs: load.duration_secs,
        sent,
        expected,
        received,
        lost: expected.saturating_sub(received),
        sent_per_sec: sent as f64 / load.duration_secs,
        delivered_per_sec: if delivery_secs > 0.0 {
            received as f64 / delivery_secs
        } else {
            0.0
        },
        latency: Latency::from_micros(latencies),
        server_cpu_percent: 100.0 * window.server_cpu.as_secs_f64() / wall_secs,
        bench_cpu_percent: 100.0 * window.bench_cpu.as_secs_f64() / wall_secs,
        server_cpu_us_per_delivery: (received > 0).then(|| micros(window.server_cpu) as f64 / received as f64),
        rss_after_kib: window.rss_after_kib,
    }
}

pub(crate) fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

/// A progress line on stderr (stdout carries the results).
fn progress(kind: ServerKind, what: &str) {
    eprintln!("[{}] {what}", kind.name());
}
