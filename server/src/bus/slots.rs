//! Sandbox slots shared by every node of a bus (`--cluster-max-sandboxes`): one Redis sorted
//! set of leases, member the sandbox's id, score when the lease runs out (Redis's own clock,
//! so the nodes' clocks do not matter). A node takes a slot before it starts a container
//! (a run's or a debug session's), renews it while the container lives, and gives it back
//! when the container is gone. A node that dies gives nothing back: its leases run out
//! [`LEASE`] later and their slots are free again.
//!
//! Each node's own caps (`--max-runs`, the queue) still come first: a run is admitted there,
//! then waits for a cluster slot if all are taken.

use std::sync::Arc;
use std::time::Duration;

use redis::Value;

use super::Bus;

/// How long a lease lasts without renewal: a dead node's slots come back this long after
/// its last renewal.
pub const LEASE: Duration = Duration::from_secs(30);

/// How often a live sandbox's lease is renewed: a third of the lease, so one late renewal
/// does not lose it.
pub const RENEW_EVERY: Duration = Duration::from_secs(10);

/// How often a sandbox waiting for a slot asks again.
pub const RETRY_EVERY: Duration = Duration::from_millis(250);

/// The sorted set of leases.
const KEY: &str = "mesh:sandboxes";

/// Takes or renews a lease, atomically: drop leases that ran out, then renew this one if it
/// is held, else take one if fewer than the cap are. KEYS[1] the set; ARGV: id, cap, lease
/// in ms. Returns 1 when the lease is held.
const TAKE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) or redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
  return 1
end
return 0
"#;

/// The cluster's sandbox slots.
pub struct ClusterSlots {
    bus: Arc<Bus>,
    cap: usize,
}

impl ClusterSlots {
    /// Slots for at most `cap` sandboxes at once across every node on `bus`.
    pub fn new(bus: Arc<Bus>, cap: usize) -> Arc<Self> {
        Arc::new(ClusterSlots { bus, cap })
    }

    /// The cap.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Takes (or renews) the lease of sandbox `id`: true when it is held.
    async fn take(&self, id: &str) -> Result<bool, String> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(TAKE)
            .arg(1)
            .arg(KEY)
            .arg(id)
            .arg(self.cap)
            .arg(LEASE.as_millis() as u64);
        match self.bus.command(&cmd).await {
            Ok(Value::Int(1)) => Ok(true),
            Ok(_) => Ok(false),
            Err(e) => Err(format!("the cluster's sandbox slots cannot be reached: {e}")),
        }
    }

    /// Waits until a slot is free and takes it for a new sandbox; the lease is renewed until
    /// the returned [`Lease`] is dropped. Fails when Redis does not answer (a run cannot be
    /// counted, so it does not start).
    pub async fn acquire(self: &Arc<Self>) -> Result<Lease, String> {
        let id = format!("{}:{:016x}", self.bus.node(), rand::random::<u64>());
        let mut waited = false;
        while !self.take(&id).await? {
            if !waited {
                waited = true;
                metrics::counter!("mesh_cluster_sandbox_waits_total").increment(1);
                tracing::info!(
                    cap = self.cap,
                    "every sandbox slot of the cluster is taken; waiting for one"
                );
            }
            tokio::time::sleep(RETRY_EVERY).await;
        }
        let slots = self.clone();
        let renewed = id.clone();
        let renewal = tokio::spawn(async move {
            loop {
                tokio::time::sleep(RENEW_EVERY).await;
                if let Err(e) = slots.take(&renewed).await {
                    tracing::warn!(error = %e, "could not renew a sandbox's cluster lease");
                }
            }
        });
        Ok(Lease {
            slots: self.clone(),
            id,
            renewal,
        })
    }
}

/// A held cluster slot; dropping it gives the slot back.
pub struct Lease {
    slots: Arc<ClusterSlots>,
    id: String,
    renewal: tokio::task::JoinHandle<()>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renewal.abort();
        let (slots, id) = (self.slots.clone(), std::mem::take(&mut self.id));
        // Without a runtime (the process is ending) the lease simply runs out.
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                let mut cmd = redis::cmd("ZREM");
                cmd.arg(KEY).arg(&id);
                if let Err(e) = slots.bus.command(&cmd).await {
                    tracing::warn!(error = %e, "could not give back a sandbox's cluster slot; it runs out by itself");
                }
            });
        }
    }
}
