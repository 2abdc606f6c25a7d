//! Several mesh nodes sharing one room through the Redis bus and the Postgres store
//! (decisions 015 and 017): what a node costs as the room is spread over more of them, what
//! the hop between two nodes adds to a keystroke's delivery, and a join storm through
//! several nodes. Every scenario runs real `mesh-server` processes on one real Postgres and
//! one real Redis (`cluster`), with the same clients as the single-server runs.
//!
//! - **Fan-out** (`typing` with a round-robin placement): for each node count, one room, the
//!   clients spread round-robin over the nodes, the first few typing. Reported per node:
//!   receipts at its clients, latency, CPU and CPU per receipt delivered through it; summed
//!   over the nodes; and the ratio of a node's CPU from one node to several, as the median
//!   of interleaved rounds (`--node-rounds`) when there are several. On a 2-core
//!   machine throughput means nothing (every node, Redis, Postgres and the bench share the
//!   cores); a node's CPU for the same load is what shows whether spreading people over
//!   nodes spreads the work.
//! - **Hop**: one writer on node A, as many observers on A as on B; the difference of the
//!   latencies at B and at A is what the bus adds (both sides wait for the same commit).
//! - **Join storm** (`storm::through`): a large room, seeded through node A and held on every
//!   node, then many clients join at once, spread round-robin over the nodes.
//!
//! Invariant: nothing is lost silently; every table shows what was expected and received.

mod cluster;
mod typing;

use std::fmt::Write as _;

use anyhow::Context;

use self::cluster::{node_name, Cluster};
use self::typing::{Placement, Typing, TypingFigures};
use crate::report::{opt, Style, Table};
use crate::servers::{Programs, ServerProcess};
use crate::storm::{self, StormFigures};

/// The target for the ratio of a node's CPU from one node to two: the work of a
/// room must spread, not be repeated on every node.
const TARGET_CPU_RATIO: f64 = 1.8;
/// The target for the hop's added median latency, milliseconds.
const TARGET_HOP_P50_MS: f64 = 2.0;
/// The target for the storm's p99 time to synced through nodes, milliseconds.
const TARGET_STORM_P99_MS: f64 = 500.0;
/// Nodes of the hop scenario: the writer's and one other.
const HOP_NODES: usize = 2;

/// A node scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// CPU per node for the same fan-out load on 1, 2, 3... nodes.
    FanOut,
    /// The latency a cross-node hop adds.
    Hop,
    /// Many clients joining a large room through several nodes.
    JoinStorm,
}

/// What the node scenarios run with.
#[derive(Debug, Clone)]
pub struct NodeLoad {
    /// Node counts to compare (fan-out and join storm).
    pub counts: Vec<usize>,
    /// Fan-out: how many times the counts run, interleaved (1, 2, 1, 2...), so that the
    /// machine's drift over minutes weighs on every count alike; the ratio is the median of
    /// the rounds'.
    pub rounds: usize,
    /// Scenarios to run, in order.
    pub scenarios: Vec<Scenario>,
    /// Fan-out: clients in the room.
    pub clients: usize,
    /// Fan-out: clients that type.
    pub writers: usize,
    /// Fan-out and hop: updates per second per writer.
    pub rate: f64,
    /// Fan-out and hop: seconds of typing.
    pub duration_secs: f64,
    /// Hop: observers on each of the two nodes.
    pub hop_observers: usize,
    /// Join storm: clients.
    pub storm_clients: usize,
    /// Join storm: the room's size in bytes.
    pub room_bytes: usize,
    /// Seed of the writers' start offsets.
    pub seed: u64,
}

impl NodeLoad {
    fn typing(&self) -> Typing {
        Typing {
            rate: self.rate,
            duration_secs: self.duration_secs,
            seed: self.seed,
        }
    }
}

/// Runs the requested scenarios and returns their tables; a scenario that fails is shown
/// as failed and the others still run. The error says which failed.
pub async fn run(load: &NodeLoad, programs: &Programs, style: Style) -> (String, anyhow::Result<()>) {
    let cluster = match tokio::task::spawn_blocking(Cluster::start).await {
        Ok(Ok(cluster)) => cluster,
        Ok(Err(e)) => return (String::new(), Err(e)),
        Err(e) => return (String::new(), Err(e.into())),
    };
    let mut out = String::new();
    let mut failed = Vec::new();
    for &scenario in &load.scenarios {
        let result = match scenario {
            Scenario::FanOut => fan_out(&cluster, programs, load, style).await,
            Scenario::Hop => hop(&cluster, programs, load, style).await,
            Scenario::JoinStorm => join_storm(&cluster, programs, load, style).await,
        };
        match result {
            Ok(table) => out.push_str(&table),
            Err(e) => {
                let _ = writeln!(out, "{scenario:?}: FAILED: {e:#}\n");
                failed.push(format!("{scenario:?}"));
            }
        }
    }
    // Postgres and Redis stop (by pid) as the cluster drops, off the async threads.
    let _ = tokio::task::spawn_blocking(move || drop(cluster)).await;
    let result = if failed.is_empty() {
        Ok(())
    } else {
        Err(anyhow::anyhow!("failed: {}", failed.join(", ")))
    };
    (out, result)
}

/// Starts `count` nodes and opens one room through the first.
async fn nodes_with_room(
    cluster: &Cluster,
    programs: &Programs,
    count: usize,
) -> anyhow::Result<(Vec<ServerProcess>, crate::servers::Room)> {
    let nodes = cluster.nodes(programs, count).await?;
    let room = nodes[0].create_rooms(1).await.context("opening the room")?.remove(0);
    Ok((nodes, room))
}

fn progress(what: &str) {
    eprintln!("[nodes] {what}");
}

async fn fan_out(cluster: &Cluster, programs: &Programs, load: &NodeLoad, style: Style) -> anyhow::Result<String> {
    let mut runs = Vec::new();
    for round in 1..=load.rounds {
        for &count in &load.counts {
            let (nodes, room) = nodes_with_room(cluster, programs, count).await?;
            progress(&format!(
                "fan-out, round {round} of {}: {} clients over {count} node(s), {} typing",
                load.rounds, load.clients, load.writers
            ));
            let placement = Placement::round_robin(load.clients, load.writers, count);
            let figures = typing::run(cluster, &nodes, &room, &placement, load.typing())
                .await
                .with_context(|| format!("fan-out on {count} node(s), round {round}"))?;
            runs.push(FanOutRun { round, count, figures });
            // The nodes are killed here, before the next count starts.
        }
    }
    Ok(render_fan_out(load, &runs, style))
}

/// One fan-out run: a node count in one round.
struct FanOutRun {
    round: usize,
    count: usize,
    figures: TypingFigures,
}

fn render_fan_out(load: &NodeLoad, runs: &[FanOutRun], style: Style) -> String {
    let title = format!(
        "Fan-out through nodes: 1 room, {} clients round-robin over the nodes, {} typing {} updates/s for {} s",
        load.clients, load.writers, load.rate, load.duration_secs
    );
    let mut table = Table::new(
        &title,
        &[
            "round",
            "nodes",
            "node",
            "clients",
            "expected",
            "received",
            "lost",
            "p50 ms",
            "p99 ms",
            "CPU ms",
            "CPU %",
            "CPU us/delivery",
        ],
    );
    for FanOutRun {
        round,
        count,
        figures: f,
    } in runs
    {
        let wall = f.wall.as_secs_f64();
        for (i, n) in f.nodes.iter().enumerate() {
            let latency = crate::report::Latency::from_micros(n.latencies_us.clone());
            table.row(vec![
                round.to_string(),
                count.to_string(),
                node_name(i),
                n.clients.to_string(),
                n.expected.to_string(),
                n.received.to_string(),
                n.expected.saturating_sub(n.received).to_string(),
                opt(latency.as_ref().map(|l| l.p50_ms), 2),
                opt(latency.as_ref().map(|l| l.p99_ms), 2),
                format!("{:.0}", n.cpu.as_secs_f64() * 1000.0),
                format!("{:.1}", 100.0 * n.cpu.as_secs_f64() / wall),
                per_delivery(n.cpu.as_secs_f64(), n.received),
            ]);
        }
        let all: Vec<u32> = f.nodes.iter().flat_map(|n| n.latencies_us.iter().copied()).collect();
        let latency = crate::report::Latency::from_micros(all);
        let nodes_cpu: f64 = f.cpu.nodes.iter().map(|d| d.as_secs_f64()).sum();
        table.row(vec![
            round.to_string(),
            count.to_string(),
            "all nodes".into(),
            f.nodes.iter().map(|n| n.clients).sum::<usize>().to_string(),
            f.nodes.iter().map(|n| n.expected).sum::<u64>().to_string(),
            f.received().to_string(),
            f.lost().to_string(),
            opt(latency.as_ref().map(|l| l.p50_ms), 2),
            opt(latency.as_ref().map(|l| l.p99_ms), 2),
            format!("{:.0}", nodes_cpu * 1000.0),
            format!("{:.1}", 100.0 * nodes_cpu / wall),
            per_delivery(nodes_cpu, f.received()),
        ]);
    }
    let mut out = table.render(style);
    for FanOutRun {
        round,
        count,
        figures: f,
    } in runs
    {
        let nodes_cpu: f64 = f.cpu.nodes.iter().map(|d| d.as_secs_f64()).sum();
        let shared = f.cpu.redis.as_secs_f64() + f.cpu.postgres.as_secs_f64();
        let _ = writeln!(
            out,
            "{}round {round}, {count} node(s): Redis {:.0} ms, Postgres {:.0} ms, bench {:.0} ms of CPU over {:.1} s; \
             nodes + Redis + Postgres {} us/delivery; {} updates sent{}{}",
            line_start(style),
            f.cpu.redis.as_secs_f64() * 1000.0,
            f.cpu.postgres.as_secs_f64() * 1000.0,
            f.cpu.bench.as_secs_f64() * 1000.0,
            f.wall.as_secs_f64(),
            per_delivery(nodes_cpu + shared, f.received()),
            f.sent,
            problems(f.disconnected, f.undecodable),
            line_end(style),
        );
    }
    for &count in load.counts.iter().filter(|&&c| c > 1) {
        let ratios = round_ratios(runs, count);
        let Some(median) = median(&ratios) else { continue };
        let verdict = if count == 2 {
            format!(
                " (target >= {TARGET_CPU_RATIO}: {})",
                if median >= TARGET_CPU_RATIO { "met" } else { "NOT met" }
            )
        } else {
            String::new()
        };
        let shown = if ratios.len() == 1 {
            format!("{median:.2}x")
        } else {
            let each: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
            let (one, many) = (mean_over_rounds(runs, 1), mean_over_rounds(runs, count));
            format!(
                "{}x by round, median {median:.2}x (mean over the rounds: {:.0} ms / {:.0} ms = {:.2}x)",
                each.join(", "),
                one * 1000.0,
                many * 1000.0,
                one / many.max(f64::MIN_POSITIVE)
            )
        };
        let _ = writeln!(
            out,
            "{}a node's CPU, 1 node / {count} nodes: {shown}{verdict}{}",
            line_start(style),
            line_end(style),
        );
    }
    out.push('\n');
    out
}

/// For each round with both, a node's CPU on one node over a node's mean CPU on `count`.
fn round_ratios(runs: &[FanOutRun], count: usize) -> Vec<f64> {
    let of = |round: usize, count: usize| {
        runs.iter()
            .find(|r| r.round == round && r.count == count)
            .map(|r| mean_node_cpu(&r.figures))
    };
    let rounds = runs.iter().map(|r| r.round).max().unwrap_or(0);
    (1..=rounds)
        .filter_map(|round| match (of(round, 1), of(round, count)) {
            (Some(one), Some(many)) if many > 0.0 => Some(one / many),
            _ => None,
        })
        .collect()
}

/// A node's mean CPU seconds on `count` nodes, over every round.
fn mean_over_rounds(runs: &[FanOutRun], count: usize) -> f64 {
    let cpu: Vec<f64> = runs
        .iter()
        .filter(|r| r.count == count)
        .map(|r| mean_node_cpu(&r.figures))
        .collect();
    cpu.iter().sum::<f64>() / cpu.len().max(1) as f64
}

/// The median (the mean of the middle two for an even count); `None` for none.
fn median(values: &[f64]) -> Option<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

fn mean_node_cpu(f: &TypingFigures) -> f64 {
    let total: f64 = f.cpu.nodes.iter().map(|d| d.as_secs_f64()).sum();
    total / f.cpu.nodes.len().max(1) as f64
}

async fn hop(cluster: &Cluster, programs: &Programs, load: &NodeLoad, style: Style) -> anyhow::Result<String> {
    let (nodes, room) = nodes_with_room(cluster, programs, HOP_NODES).await?;
    progress(&format!(
        "hop: 1 writer on node A, {} observers on A and {} on B",
        load.hop_observers, load.hop_observers
    ));
    let placement = Placement::hop(load.hop_observers);
    let f = typing::run(cluster, &nodes, &room, &placement, load.typing())
        .await
        .context("hop")?;
    let title = format!(
        "Cross-node hop: 1 writer on node A typing {} updates/s for {} s; {} observers on A, {} on B",
        load.rate, load.duration_secs, load.hop_observers, load.hop_observers
    );
    let mut table = Table::new(
        &title,
        &[
            "observers on",
            "clients",
            "expected",
            "received",
            "lost",
            "p50 ms",
            "p99 ms",
            "max ms",
        ],
    );
    let mut latencies = Vec::new();
    for (i, n) in f.nodes.iter().enumerate() {
        // Node A's count includes the writer, who receives nothing of its own.
        let observers = if i == 0 { n.clients - 1 } else { n.clients };
        let latency = crate::report::Latency::from_micros(n.latencies_us.clone());
        table.row(vec![
            format!(
                "{} ({})",
                node_name(i),
                if i == 0 { "writer's node" } else { "other node" }
            ),
            observers.to_string(),
            n.expected.to_string(),
            n.received.to_string(),
            n.expected.saturating_sub(n.received).to_string(),
            opt(latency.as_ref().map(|l| l.p50_ms), 2),
            opt(latency.as_ref().map(|l| l.p99_ms), 2),
            opt(latency.as_ref().map(|l| l.max_ms), 1),
        ]);
        latencies.push(latency);
    }
    let mut out = table.render(style);
    if let [Some(a), Some(b)] = &latencies[..] {
        let added = b.p50_ms - a.p50_ms;
        let _ = writeln!(
            out,
            "{}the hop adds {added:.2} ms at p50 (target <= {TARGET_HOP_P50_MS}: {}), {:.2} ms at p99; \
             CPU over {:.1} s: node A {:.0} ms, node B {:.0} ms, Redis {:.0} ms, Postgres {:.0} ms{}{}",
            line_start(style),
            if added <= TARGET_HOP_P50_MS { "met" } else { "NOT met" },
            b.p99_ms - a.p99_ms,
            f.wall.as_secs_f64(),
            f.cpu.nodes[0].as_secs_f64() * 1000.0,
            f.cpu.nodes[1].as_secs_f64() * 1000.0,
            f.cpu.redis.as_secs_f64() * 1000.0,
            f.cpu.postgres.as_secs_f64() * 1000.0,
            problems(f.disconnected, f.undecodable),
            line_end(style),
        );
    }
    out.push('\n');
    Ok(out)
}

async fn join_storm(cluster: &Cluster, programs: &Programs, load: &NodeLoad, style: Style) -> anyhow::Result<String> {
    let mut runs = Vec::new();
    for &count in &load.counts {
        let (nodes, room) = nodes_with_room(cluster, programs, count).await?;
        progress(&format!(
            "join storm: {} clients over {count} node(s)",
            load.storm_clients
        ));
        let refs: Vec<&ServerProcess> = nodes.iter().collect();
        let figures = storm::through(&refs, &room, load.storm_clients, load.room_bytes)
            .await
            .with_context(|| format!("join storm through {count} node(s)"))?;
        runs.push((count, figures));
    }
    Ok(render_storm(load, &runs, style))
}

fn render_storm(load: &NodeLoad, runs: &[(usize, StormFigures)], style: Style) -> String {
    let title = format!(
        "Join storm through nodes: {} clients at once into one room of {} MiB, round-robin over the nodes",
        load.storm_clients,
        load.room_bytes / (1024 * 1024)
    );
    let mut table = Table::new(
        &title,
        &[
            "nodes",
            "node",
            "clients",
            "least state KiB",
            "synced p50 ms",
            "synced p99 ms",
            "synced max ms",
            "RSS before MiB",
            "peak RSS MiB",
            "CPU ms",
        ],
    );
    for (count, f) in runs {
        let row = |name: String, node: Option<usize>| {
            let synced = f.synced_ms(node);
            let joined: Vec<usize> = f
                .synced
                .iter()
                .filter(|(n, _, _)| node.is_none_or(|node| *n == node))
                .map(|(_, _, bytes)| *bytes)
                .collect();
            let nodes: Vec<&storm::NodeStorm> = match node {
                Some(i) => vec![&f.nodes[i]],
                None => f.nodes.iter().collect(),
            };
            // Over all nodes: memory and CPU add up (each node is its own process).
            let sum = |g: fn(&storm::NodeStorm) -> f64| nodes.iter().map(|n| g(n)).sum::<f64>();
            vec![
                count.to_string(),
                name,
                joined.len().to_string(),
                // The least any of these clients received: a joiner short of the room shows.
                (joined.iter().min().copied().unwrap_or(0) / 1024).to_string(),
                format!("{:.0}", synced[0]),
                format!("{:.0}", synced[1]),
                format!("{:.0}", synced[2]),
                format!("{:.1}", sum(|n| n.rss_before_kib as f64) / 1024.0),
                format!("{:.1}", sum(|n| n.peak_kib as f64) / 1024.0),
                format!("{:.0}", sum(|n| n.cpu.as_secs_f64() * 1000.0)),
            ]
        };
        for i in 0..f.nodes.len() {
            table.row(row(node_name(i), Some(i)));
        }
        if f.nodes.len() > 1 {
            table.row(row("all nodes".into(), None));
        }
    }
    let mut out = table.render(style);
    for (count, f) in runs {
        let p99 = f.synced_ms(None)[1];
        let target = if *count > 1 {
            format!(
                " (target <= {TARGET_STORM_P99_MS}: {})",
                if p99 <= TARGET_STORM_P99_MS { "met" } else { "NOT met" }
            )
        } else {
            String::new()
        };
        // The joiners live in the bench: the CPU they needed to receive the room shares the
        // cores with the nodes, and shows whether the nodes were what the storm waited for.
        let _ = writeln!(
            out,
            "{}{count} node(s): p99 {p99:.0} ms{target}; the bench's clients used {:.0} ms of CPU meanwhile{}",
            line_start(style),
            f.bench_cpu.as_secs_f64() * 1000.0,
            line_end(style),
        );
    }
    out.push('\n');
    out
}

/// CPU microseconds per receipt, or "-" without receipts.
fn per_delivery(cpu_secs: f64, receipts: u64) -> String {
    opt((receipts > 0).then(|| cpu_secs * 1e6 / receipts as f64), 1)
}

fn problems(disconnected: usize, undecodable: u64) -> String {
    if disconnected == 0 && undecodable == 0 {
        String::new()
    } else {
        format!("; {disconnected} clients disconnected early, {undecodable} updates did not decode")
    }
}

fn line_start(style: Style) -> &'static str {
    match style {
        Style::Text => "",
        Style::Markdown => "*",
    }
}

fn line_end(style: Style) -> &'static str {
    line_start(style)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ratio_is_the_median_of_the_rounds() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[2.24, 1.40, 1.74]), Some(1.74));
        assert_eq!(median(&[1.5, 2.5, 2.0, 1.0]), Some(1.75));
    }

    #[test]
    fn cpu_per_delivery_needs_receipts() {
        assert_eq!(per_delivery(0.5, 0), "-");
        assert_eq!(per_delivery(0.5, 1000), "500.0");
    }
}
