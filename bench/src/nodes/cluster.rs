//! A cluster of mesh nodes for the bench: one real Postgres and one real Redis (Debian's
//! packages, started by `mesh-testkit` on loopback in temporary directories, stopped by pid),
//! and as many `mesh-server` processes as a scenario asks for, each with `MESH_STORE` and
//! `MESH_BUS` pointing at them. Postgres and Redis live for the whole bench run; nodes are
//! started fresh for each scenario and node count, and killed when dropped.

use std::time::Duration;

use anyhow::Context;
use mesh_testkit::{TestPostgres, TestRedis};

use crate::procstat;
use crate::servers::{Programs, ServerKind, ServerProcess};

/// The database the nodes share, created in the bench's own Postgres.
const DATABASE: &str = "mesh_bench";

/// Postgres and Redis, shared by the nodes of every scenario.
pub struct Cluster {
    pg: TestPostgres,
    redis: TestRedis,
    store_url: String,
}

impl Cluster {
    /// Starts Postgres (with a fresh database) and Redis. Blocks for a second or two
    /// (`initdb`); call it off the async threads.
    pub fn start() -> anyhow::Result<Cluster> {
        let pg = TestPostgres::start().context("starting Postgres")?;
        let store_url = pg.create_database(DATABASE).context("creating the bench's database")?;
        let redis = TestRedis::start().context("starting Redis")?;
        Ok(Cluster { pg, redis, store_url })
    }

    /// Starts `count` mesh nodes on the shared store and bus, one after another (each
    /// applies the store's migrations under an advisory lock at start).
    pub async fn nodes(&self, programs: &Programs, count: usize) -> anyhow::Result<Vec<ServerProcess>> {
        let env = [("MESH_STORE", self.store_url.clone()), ("MESH_BUS", self.redis.url())];
        let mut nodes = Vec::with_capacity(count);
        for i in 0..count {
            let node = ServerProcess::start_with(ServerKind::Mesh, programs, &env)
                .await
                .with_context(|| format!("starting node {}", node_name(i)))?;
            nodes.push(node);
        }
        Ok(nodes)
    }

    /// CPU time Redis has used.
    pub fn redis_cpu(&self) -> anyhow::Result<Duration> {
        procstat::cpu_time(Some(self.redis.pid()))
    }

    /// CPU time Postgres has used: the postmaster and its backends.
    pub fn postgres_cpu(&self) -> anyhow::Result<Duration> {
        procstat::tree_cpu_time(self.pg.pid())
    }
}

/// CPU readings of everything a scenario runs on, taken together.
#[derive(Debug, Clone)]
pub struct CpuReading {
    /// Per node, in order.
    pub nodes: Vec<Duration>,
    /// Redis.
    pub redis: Duration,
    /// Postgres, all its processes.
    pub postgres: Duration,
    /// The bench itself (its clients).
    pub bench: Duration,
}

impl CpuReading {
    /// Reads every process's CPU time now.
    pub fn take(cluster: &Cluster, nodes: &[ServerProcess]) -> anyhow::Result<CpuReading> {
        Ok(CpuReading {
            nodes: nodes
                .iter()
                .map(ServerProcess::cpu_time)
                .collect::<anyhow::Result<_>>()?,
            redis: cluster.redis_cpu()?,
            postgres: cluster.postgres_cpu()?,
            bench: procstat::cpu_time(None)?,
        })
    }

    /// What was used since `earlier`.
    pub fn since(&self, earlier: &CpuReading) -> CpuReading {
        CpuReading {
            nodes: self
                .nodes
                .iter()
                .zip(&earlier.nodes)
                .map(|(now, then)| now.saturating_sub(*then))
                .collect(),
            redis: self.redis.saturating_sub(earlier.redis),
            postgres: self.postgres.saturating_sub(earlier.postgres),
            bench: self.bench.saturating_sub(earlier.bench),
        }
    }
}

/// A node's name in tables and messages: A, B, C, ...
pub fn node_name(index: usize) -> String {
    match u8::try_from(index) {
        Ok(i) if i < 26 => char::from(b'A' + i).to_string(),
        _ => format!("#{index}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_named_by_letter_then_number() {
        assert_eq!(node_name(0), "A");
        assert_eq!(node_name(2), "C");
        assert_eq!(node_name(26), "#26");
    }
}
