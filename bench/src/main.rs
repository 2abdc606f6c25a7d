//! `mesh-bench`: drives N rooms × M clients with typing-like updates over the standard Yjs
//! sync protocol against several servers in turn, with the same load, and prints one table
//! per measurement with the servers side by side.
//!
//! Code map:
//! - `run`: one run against one server (start, connect, the two phases, results); its doc
//!   explains the phases and why the saturation phase is fair.
//! - `client`: one simulated editor, a task owning one WebSocket.
//! - `ledger`: who sent what when, shared by the clients (they all live in this process).
//! - `wire`: y-protocols framing as the bench needs it (stock and Hocuspocus).
//! - `servers`: starting, addressing and killing each server under test.
//! - `storm`: the join storm (`--join-storm`), many clients joining one large room at once.
//! - `nodes`: several mesh nodes sharing rooms through Redis and Postgres (`--nodes`):
//!   fan-out CPU per node, the cross-node hop, the join storm through nodes.
//! - `report`: tables and JSON. `procstat`: RSS and CPU time from /proc. `http`: one POST.
//!
//! Invariants: all traffic goes to 127.0.0.1; every wait has a timeout and every loop a
//! bound; the servers the bench starts are killed when their run ends, fails or panics.

mod client;
mod http;
mod ledger;
mod nodes;
mod procstat;
mod report;
mod run;
mod servers;
mod storm;
mod wire;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::ensure;
use clap::Parser;

use crate::report::{Outcome, Style};
use crate::run::Load;
use crate::servers::{Programs, ServerKind};

/// Most client connections per run: each costs a file descriptor on both sides (the bench
/// raises its own soft limit to the hard one; mesh-server raises its own).
const MAX_CONNECTIONS: usize = servers::MAX_BENCH_CONNECTIONS;
/// Most clients per room: receipts per update grow with it. Rooms of editors are small, but
/// a lecture or a demo has one writer and hundreds of observers (the fan-out scenario of
/// 1,500 observers).
const MAX_CLIENTS_PER_ROOM: usize = 2_000;
/// Longest phase: keeps a run bounded in time.
const MAX_DURATION_SECS: f64 = 600.0;
/// Highest typing rate per client: far above any typist, low enough to stay "typing".
const MAX_RATE: f64 = 1000.0;
/// Largest saturation window per client: bounds in-flight updates and bench memory.
const MAX_WINDOW: u64 = 1024;
/// Files the bench holds open besides its clients' sockets (stdio, the runtime, procfs).
const FDS_BESIDES_CLIENTS: usize = 64;
/// Most bench worker threads: the machine has two cores, shared with the server.
const MAX_THREADS: usize = 4;
/// Longest one server's join storm may take: start, seeding, the storm, teardown.
const STORM_BUDGET: std::time::Duration = std::time::Duration::from_secs(300);
/// Largest join-storm room: every client receives it all, and the bench holds the sockets.
const MAX_ROOM_MIB: usize = 64;
/// Most nodes in one node scenario: each node may hold 16 connections to the bench's
/// Postgres, which accepts 100.
const MAX_NODES: usize = 5;
/// Most rounds of the node fan-out: each is a minute or so at the documented load.
const MAX_NODE_ROUNDS: usize = 20;
/// Join storm through nodes without `--join-storm`: the 150 clients.
const DEFAULT_NODE_STORM_CLIENTS: usize = 150;

/// Benchmarks Yjs sync servers side by side: connect time, update latency while typing,
/// throughput and latency under saturation, loss, and server memory per connection.
///
/// Human-readable tables go to stdout; with --json the tables go to stderr and stdout
/// carries one JSON document. Progress lines go to stderr.
#[derive(Debug, Parser)]
#[command(name = "mesh-bench", version)]
struct Args {
    /// Servers to run, in order, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "mesh,y-websocket")]
    servers: Vec<ServerKind>,
    /// Rooms.
    #[arg(long, default_value_t = 20)]
    rooms: usize,
    /// Clients per room (at least 2: updates go to the other clients).
    #[arg(long, default_value_t = 5)]
    clients: usize,
    /// Clients per room that type (the first ones of each room); the others only watch, as
    /// in a room where a few people type and many follow. Default: every client.
    #[arg(long)]
    writers: Option<usize>,
    /// Seconds of load per phase.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Typing phase: updates per second per client.
    #[arg(long, default_value_t = 10.0)]
    rate: f64,
    /// Saturation phase: updates per client sent but not yet received by all room-mates.
    #[arg(long, default_value_t = 32)]
    window: u64,
    /// The mesh-server binary.
    #[arg(long, default_value_os_t = servers::default_mesh_server())]
    mesh_server: PathBuf,
    /// Directory with the JS servers installed (`npm ci` there).
    #[arg(long, default_value_os_t = servers::default_js_dir())]
    js_dir: PathBuf,
    /// The node executable.
    #[arg(long, default_value = "node")]
    node: PathBuf,
    /// Bench worker threads. One leaves the other core to the server under test.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Seed of the clients' typing start offsets.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Instead of the phases: a join storm of this many clients into one room of
    /// --room-mib, all at once; prints time to synced, RSS and CPU per server.
    #[arg(long)]
    join_storm: Option<usize>,
    /// Join storm: the room's size in MiB of text.
    #[arg(long, default_value_t = 4)]
    room_mib: usize,
    /// Instead of the phases: the node scenarios, for each of these node counts (mesh
    /// nodes on one Postgres and one Redis, all started by the bench on loopback).
    #[arg(long, value_delimiter = ',')]
    nodes: Vec<usize>,
    /// Node scenarios to run, in order.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "fan-out,hop,join-storm")]
    node_scenarios: Vec<nodes::Scenario>,
    /// Node fan-out: how many times to run the node counts, interleaved (1, 2, 1, 2...);
    /// the CPU ratio is the median of the rounds'.
    #[arg(long, default_value_t = 1)]
    node_rounds: usize,
    /// Node fan-out: clients in the one room, spread round-robin over the nodes.
    #[arg(long, default_value_t = 60)]
    node_clients: usize,
    /// Node fan-out: clients that type (at --rate, for --duration).
    #[arg(long, default_value_t = 6)]
    node_writers: usize,
    /// Node hop: observers on the writer's node, and as many on the other node.
    #[arg(long, default_value_t = 10)]
    hop_observers: usize,
    /// Print the results as JSON on stdout (tables go to stderr).
    #[arg(long)]
    json: bool,
    /// Print the tables as Markdown.
    #[arg(long)]
    markdown: bool,
}

impl Args {
    fn validate(&self) -> anyhow::Result<()> {
        ensure!(!self.servers.is_empty(), "--servers names no server");
        ensure!(self.rooms >= 1, "--rooms must be at least 1");
        ensure!(
            (2..=MAX_CLIENTS_PER_ROOM).contains(&self.clients),
            "--clients must be 2..={MAX_CLIENTS_PER_ROOM}"
        );
        ensure!(
            self.rooms * self.clients <= MAX_CONNECTIONS,
            "--rooms x --clients must be at most {MAX_CONNECTIONS} connections"
        );
        ensure!(
            self.writers.is_none_or(|w| (1..=self.clients).contains(&w)),
            "--writers must be 1..=--clients"
        );
        ensure!(
            self.duration > 0.0 && self.duration <= MAX_DURATION_SECS,
            "--duration must be in (0, {MAX_DURATION_SECS}]"
        );
        ensure!(
            self.rate > 0.0 && self.rate <= MAX_RATE,
            "--rate must be in (0, {MAX_RATE}]"
        );
        ensure!(
            (1..=MAX_WINDOW).contains(&self.window),
            "--window must be 1..={MAX_WINDOW}"
        );
        ensure!(
            (1..=MAX_THREADS).contains(&self.threads),
            "--threads must be 1..={MAX_THREADS}"
        );
        ensure!(
            self.join_storm.is_none_or(|n| (1..=MAX_CONNECTIONS).contains(&n)),
            "--join-storm must be 1..={MAX_CONNECTIONS}"
        );
        ensure!(
            (1..=MAX_ROOM_MIB).contains(&self.room_mib),
            "--room-mib must be 1..={MAX_ROOM_MIB}"
        );
        if !self.nodes.is_empty() {
            ensure!(
                self.nodes.iter().all(|n| (1..=MAX_NODES).contains(n)),
                "--nodes counts must be 1..={MAX_NODES}"
            );
            ensure!(
                (1..=MAX_NODE_ROUNDS).contains(&self.node_rounds),
                "--node-rounds must be 1..={MAX_NODE_ROUNDS}"
            );
            ensure!(
                (2..=MAX_CLIENTS_PER_ROOM).contains(&self.node_clients),
                "--node-clients must be 2..={MAX_CLIENTS_PER_ROOM}"
            );
            ensure!(
                (1..=self.node_clients).contains(&self.node_writers),
                "--node-writers must be 1..=--node-clients"
            );
            ensure!(
                (1..=MAX_CLIENTS_PER_ROOM / 2).contains(&self.hop_observers),
                "--hop-observers must be 1..={}",
                MAX_CLIENTS_PER_ROOM / 2
            );
            ensure!(
                !self.json,
                "--json is not available with --nodes; the node scenarios print tables only"
            );
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Err(e) = args.validate() {
        eprintln!("mesh-bench: {e:#}");
        return ExitCode::from(2);
    }
    let clients = if args.nodes.is_empty() {
        args.join_storm.unwrap_or(args.rooms * args.clients)
    } else {
        args.node_clients
            .max(1 + 2 * args.hop_observers)
            .max(node_storm_clients(&args))
    };
    let wanted = (clients + FDS_BESIDES_CLIENTS) as u64;
    match rlimit::increase_nofile_limit(wanted) {
        Ok(got) if got >= wanted => {}
        Ok(got) => {
            eprintln!("mesh-bench: this run needs {wanted} open files and the limit is {got}: raise it (ulimit -n)");
            return ExitCode::from(2);
        }
        Err(e) => eprintln!("mesh-bench: cannot raise the open-file limit ({e}); going on"),
    }
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("mesh-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if !args.nodes.is_empty() {
        let (tables, result) = runtime.block_on(node_scenarios(&args));
        runtime.shutdown_background();
        print!("\n{tables}");
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("mesh-bench: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(clients) = args.join_storm {
        let reports = runtime.block_on(join_storms(&args, clients));
        runtime.shutdown_background();
        return if reports.iter().all(Result::is_ok) {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let outcomes = runtime.block_on(run_all(&args));
    // Client tasks of a run that failed or timed out were aborted with it; dropping the
    // runtime here without waiting keeps the exit prompt.
    runtime.shutdown_background();
    if outcomes.iter().all(|o| o.result.is_ok()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Clients of the join storm through nodes.
fn node_storm_clients(args: &Args) -> usize {
    args.join_storm.unwrap_or(DEFAULT_NODE_STORM_CLIENTS)
}

/// The node scenarios; returns their tables.
async fn node_scenarios(args: &Args) -> (String, anyhow::Result<()>) {
    let load = nodes::NodeLoad {
        counts: args.nodes.clone(),
        rounds: args.node_rounds,
        scenarios: args.node_scenarios.clone(),
        clients: args.node_clients,
        writers: args.node_writers,
        rate: args.rate,
        duration_secs: args.duration,
        hop_observers: args.hop_observers,
        storm_clients: node_storm_clients(args),
        room_bytes: args.room_mib * 1024 * 1024,
        seed: args.seed,
    };
    let programs = Programs {
        mesh_server: args.mesh_server.clone(),
        js_dir: args.js_dir.clone(),
        node: args.node.clone(),
    };
    let style = if args.markdown { Style::Markdown } else { Style::Text };
    tokio::select! {
        done = nodes::run(&load, &programs, style) => done,
        _ = tokio::signal::ctrl_c() => (String::new(), Err(anyhow::anyhow!("interrupted"))),
    }
}

/// The join storm against every requested server in turn; prints one table.
async fn join_storms(args: &Args, clients: usize) -> Vec<Result<storm::StormReport, String>> {
    let programs = Programs {
        mesh_server: args.mesh_server.clone(),
        js_dir: args.js_dir.clone(),
        node: args.node.clone(),
    };
    let mut reports = Vec::new();
    for &kind in &args.servers {
        let run = storm::run(kind, &programs, clients, args.room_mib * 1024 * 1024);
        let result = match tokio::time::timeout(STORM_BUDGET, run).await {
            Ok(Ok(report)) => Ok(report),
            Ok(Err(e)) => Err(format!("{e:#}")),
            Err(_) => Err(format!("did not finish within {STORM_BUDGET:?}")),
        };
        if let Err(e) = &result {
            eprintln!("[{}] failed: {e}", kind.name());
        }
        reports.push(result);
    }
    print!(
        "\njoin storm: {clients} clients into one room of {} MiB at once\n\n{}",
        args.room_mib,
        storm::render(&reports, args.markdown)
    );
    reports
}

/// Runs every requested server in turn and prints the results.
async fn run_all(args: &Args) -> Vec<Outcome> {
    let load = Load {
        rooms: args.rooms,
        clients: args.clients,
        writers: args.writers.unwrap_or(args.clients),
        duration_secs: args.duration,
        rate: args.rate,
        window: args.window,
        seed: args.seed,
    };
    let programs = Programs {
        mesh_server: args.mesh_server.clone(),
        js_dir: args.js_dir.clone(),
        node: args.node.clone(),
    };
    let budget = run::budget(&load);
    let mut outcomes = Vec::new();
    for &kind in &args.servers {
        // Dropping the run's future (timeout or Ctrl-C) drops its server guard, which kills
        // the server, and its client set, which aborts the clients.
        let result = tokio::select! {
            result = tokio::time::timeout(budget, run::run_server(kind, &programs, &load)) => match result {
                Ok(Ok(report)) => Ok(report),
                Ok(Err(e)) => Err(format!("{e:#}")),
                Err(_) => Err(format!("run did not finish within {budget:?}")),
            },
            _ = tokio::signal::ctrl_c() => {
                eprintln!("mesh-bench: interrupted");
                outcomes.push(Outcome { server: kind.name(), result: Err("interrupted".into()) });
                break;
            }
        };
        if let Err(e) = &result {
            eprintln!("[{}] failed: {e}", kind.name());
        }
        outcomes.push(Outcome {
            server: kind.name(),
            result,
        });
    }
    let style = if args.markdown { Style::Markdown } else { Style::Text };
    let tables = report::render(&load, args.threads, &outcomes, style);
    if args.json {
        eprint!("\n{tables}");
        let json = report::to_json(&load, args.threads, &outcomes);
        println!("{}", serde_json::to_string_pretty(&json).unwrap_or_default());
    } else {
        print!("\n{tables}");
    }
    outcomes
}
