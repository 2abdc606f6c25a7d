//! One room typed into through several nodes: the clients of `run::run_server`'s typing
//! phase (same client, same ledger), each connected to the node a placement gives it. The
//! fan-out and hop scenarios are both this run with different placements.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::{sleep, sleep_until, Instant};

use super::cluster::{Cluster, CpuReading};
use crate::client::{self, ClientConfig, Control};
use crate::ledger::{Ledger, Phase};
use crate::run::{self, CONNECTED_SETTLE, DRAIN_POLL_INTERVAL, DRAIN_TIMEOUT};
use crate::servers::{Room, ServerProcess};
use crate::wire::Framing;

/// Who connects where, and who types.
#[derive(Debug, Clone)]
pub struct Placement {
    /// Per client, the index of its node.
    pub node_of: Vec<usize>,
    /// The first this many clients type; the others watch.
    pub writers: usize,
}

impl Placement {
    /// `clients` spread round-robin over `nodes` (client `i` on node `i % nodes`), the
    /// first `writers` typing: writers are spread as evenly as watchers.
    pub fn round_robin(clients: usize, writers: usize, nodes: usize) -> Placement {
        Placement {
            node_of: (0..clients).map(|i| i % nodes).collect(),
            writers,
        }
    }

    /// One writer on node 0, then `observers` watchers on node 0 and as many on node 1.
    pub fn hop(observers: usize) -> Placement {
        let mut node_of = vec![0; 1 + observers];
        node_of.extend(std::iter::repeat_n(1, observers));
        Placement { node_of, writers: 1 }
    }

    fn clients(&self) -> usize {
        self.node_of.len()
    }
}

/// How the clients type.
#[derive(Debug, Clone, Copy)]
pub struct Typing {
    /// Updates per second per writer.
    pub rate: f64,
    /// Seconds of typing.
    pub duration_secs: f64,
    /// Seed of the writers' start offsets.
    pub seed: u64,
}

/// What the clients of one node received, and what the node cost.
#[derive(Debug, Clone, Default)]
pub struct NodeTyping {
    /// Clients connected through the node.
    pub clients: usize,
    /// Receipts the node's clients should have had: every update by every other client.
    pub expected: u64,
    /// Receipts they had by the end of the drain.
    pub received: u64,
    /// Send-to-receipt latency of each receipt, microseconds.
    pub latencies_us: Vec<u32>,
    /// The node's CPU time over the typing and the drain.
    pub cpu: Duration,
}

/// The results of one typing run.
#[derive(Debug, Clone)]
pub struct TypingFigures {
    /// Updates sent.
    pub sent: u64,
    /// Per node, in order.
    pub nodes: Vec<NodeTyping>,
    /// CPU used over the typing and the drain (nodes, Redis, Postgres, bench).
    pub cpu: CpuReading,
    /// Wall time of the typing and the drain.
    pub wall: Duration,
    /// Clients whose socket closed before the end.
    pub disconnected: usize,
    /// Received updates that did not decode.
    pub undecodable: u64,
}

impl TypingFigures {
    /// Receipts over all nodes.
    pub fn received(&self) -> u64 {
        self.nodes.iter().map(|n| n.received).sum()
    }

    /// Receipts missing over all nodes.
    pub fn lost(&self) -> u64 {
        self.nodes.iter().map(|n| n.expected.saturating_sub(n.received)).sum()
    }
}

/// Connects the placement's clients to `room` through `nodes`, lets the writers type, waits
/// for everything to arrive (or the drain to time out) and reports node by node.
pub async fn run(
    cluster: &Cluster,
    nodes: &[ServerProcess],
    room: &Room,
    placement: &Placement,
    typing: Typing,
) -> anyhow::Result<TypingFigures> {
    let clients = placement.clients();
    ensure!(clients >= 2, "a typing run needs at least two clients");
    ensure!(
        placement.node_of.iter().all(|&n| n < nodes.len()),
        "the placement names a node that is not running"
    );
    ensure!(matches!(room.framing, Framing::Plain), "mesh rooms use plain framing");
    let ledger = Arc::new(Ledger::new(1, clients));
    let (control_tx, control_rx) = watch::channel(Control::Idle);
    let (ready_tx, mut ready_rx) = mpsc::channel(clients);
    let connect_slots = Arc::new(Semaphore::new(run::CONNECT_CONCURRENCY));
    let typing_period = Duration::from_secs_f64(1.0 / typing.rate);
    let mut rng = StdRng::seed_from_u64(typing.seed);
    // Dropping the set (on any early return) aborts every client task.
    let mut tasks = JoinSet::new();
    for (index, &node) in placement.node_of.iter().enumerate() {
        let at = room.at(nodes[node].addr());
        let config = ClientConfig {
            index,
            clients_per_room: clients,
            writes: index < placement.writers,
            url: at.url,
            framing: at.framing,
            typing_period,
            typing_offset: typing_period.mul_f64(rng.random::<f64>()),
            // The saturation phase is not run here.
            window: 1,
        };
        tasks.spawn(client::run(
            config,
            ledger.clone(),
            control_rx.clone(),
            ready_tx.clone(),
            connect_slots.clone(),
        ));
    }
    drop(ready_tx);
    run::await_ready(&mut ready_rx, clients).await?;
    sleep(CONNECTED_SETTLE).await;

    let before = CpuReading::take(cluster, nodes)?;
    let start = Instant::now();
    let until = start + Duration::from_secs_f64(typing.duration_secs);
    control_tx
        .send(Control::Load {
            phase: Phase::Typing,
            until,
        })
        .context("all clients ended early")?;
    sleep_until(until).await;
    let drain_deadline = until + DRAIN_TIMEOUT;
    while ledger.receipts(Phase::Typing) < ledger.expected_receipts(Phase::Typing) && Instant::now() < drain_deadline {
        sleep(DRAIN_POLL_INTERVAL).await;
    }
    let wall = start.elapsed();
    let cpu = CpuReading::take(cluster, nodes)?.since(&before);
    control_tx.send(Control::Close).context("all clients ended early")?;
    let outcomes = run::collect(&mut tasks).await?;
    // `collect` returns outcomes in the order tasks ended: find each client's by its index.
    let mut by_index: Vec<Option<client::ClientOutcome>> = (0..clients).map(|_| None).collect();
    for outcome in outcomes {
        let index = outcome.index;
        by_index[index] = Some(outcome);
    }

    let typed = Phase::Typing.index();
    let sent: u64 = by_index.iter().flatten().map(|o| o.phases[typed].sent).sum();
    let mut per_node = vec![NodeTyping::default(); nodes.len()];
    for (index, outcome) in by_index.iter().enumerate() {
        let outcome = outcome
            .as_ref()
            .with_context(|| format!("client {index} did not report"))?;
        let node = &mut per_node[placement.node_of[index]];
        let stats = &outcome.phases[typed];
        node.clients += 1;
        node.expected += sent - stats.sent;
        node.received += stats.receipts;
        node.latencies_us.extend_from_slice(&stats.latencies_us);
    }
    for (node, used) in per_node.iter_mut().zip(&cpu.nodes) {
        node.cpu = *used;
    }
    Ok(TypingFigures {
        sent,
        nodes: per_node,
        disconnected: by_index.iter().flatten().filter(|o| o.disconnected).count(),
        undecodable: by_index.iter().flatten().map(|o| o.undecodable).sum(),
        cpu,
        wall,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_spreads_writers_and_watchers_over_every_node() {
        let p = Placement::round_robin(60, 6, 2);
        let on = |node: usize, range: std::ops::Range<usize>| p.node_of[range].iter().filter(|&&n| n == node).count();
        assert_eq!((on(0, 0..6), on(1, 0..6)), (3, 3));
        assert_eq!((on(0, 0..60), on(1, 0..60)), (30, 30));
        let p = Placement::round_robin(60, 6, 3);
        assert_eq!(p.node_of[..6], [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn the_hop_placement_has_one_writer_and_observers_on_both_sides() {
        let p = Placement::hop(3);
        assert_eq!(p.node_of, [0, 0, 0, 0, 1, 1, 1]);
        assert_eq!(p.writers, 1);
    }
}
