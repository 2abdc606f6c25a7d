//! The warm pool: containers created, attached and started ahead of time, their runner
//! blocked on stdin waiting for a nonce, so a run only writes its control lines and files
//! to stdin. Nothing of a job is in a warm container before it is taken.
//!
//! - Keyed by language and [`Mode`]; a key gets warm containers once it has been run or
//!   [`Runner::warm`]ed, so a server that never runs Go never starts a Go container.
//! - A container is taken by exactly one run and removed when the run ends, like a cold one.
//!   A job whose limits differ from the pool's (a tightened job) starts cold.
//! - One refill task per key keeps `size` containers idle, creating one at a time so a burst
//!   of runs cannot starve the machine, and backing off while Docker or the image is missing.
//! - An empty pool never makes a run wait: it starts cold. An idle container older than
//!   `max_idle` is replaced (so a rebuilt image is picked up), and one whose output stream
//!   has ended or spoken (it died, or something is wrong with it) is discarded at take time.
//! - The refill tasks hold the pool weakly: dropping every [`Runner`] clone ends them, and
//!   [`Runner::shutdown`] removes the idle containers and waits for Docker to confirm.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use tokio::sync::Notify;

use crate::registry::Limits;
use crate::run::{start_container, step_limits, Mode, Runner, Started};
use crate::LimitsOverride;

/// Backoff after a failed refill, doubling up to the maximum.
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Which containers are interchangeable: same language, same mode.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PoolKey {
    language: String,
    mode: Mode,
}

impl PoolKey {
    pub(crate) fn new(language: &str, mode: Mode) -> Self {
        Self {
            language: language.to_owned(),
            mode,
        }
    }
}

#[derive(Default)]
struct Slot {
    idle: VecDeque<Started>,
    /// Wakes the key's refill task; present once the task runs.
    refill: Option<Arc<Notify>>,
}

/// Warm containers per key. Shared by every clone of a [`Runner`].
pub(crate) struct Pool {
    size: usize,
    max_idle: Duration,
    slots: Mutex<HashMap<PoolKey, Slot>>,
    /// Set by [`Pool::drain`]: no more refills.
    closed: std::sync::atomic::AtomicBool,
}

impl Pool {
    pub(crate) fn new(size: usize, max_idle: Duration) -> Self {
        Self {
            size,
            max_idle,
            slots: Mutex::new(HashMap::new()),
            closed: Default::default(),
        }
    }

    /// How long a warm container may idle before it is replaced.
    pub(crate) fn max_idle(&self) -> Duration {
        self.max_idle
    }

    /// A healthy warm container created with `limits`, if one is idle; wakes the refill.
    pub(crate) fn take(self: &Arc<Self>, runner: &Runner, key: &PoolKey, limits: &Limits) -> Option<Started> {
        let notify = self.ensure_refill(runner, key);
        let mut taken = None;
        let mut stale = Vec::new();
        {
            let mut slots = self.slots.lock().expect("pool lock");
            let slot = slots.entry(key.clone()).or_default();
            // A job with other limits (a tightened one) leaves the pool alone: every container
            // of a key has the key's limits.
            let fits = slot.idle.front().is_none_or(|c| c.limits == *limits);
            while let Some(mut c) = fits.then(|| slot.idle.pop_front()).flatten() {
                let healthy = c.created.elapsed() < self.max_idle
                    // Pending: the runner is still waiting. Anything else (end of stream,
                    // output) means the container died or misbehaved while idle.
                    && c.output.next().now_or_never().is_none();
                if healthy {
                    taken = Some(c);
                    break;
                }
                stale.push(c);
            }
        }
        for c in stale {
            tokio::spawn(c.guard.remove());
        }
        notify.notify_one();
        taken
    }

    /// Starts the key's refill task unless it runs; returns its wake-up handle.
    pub(crate) fn ensure_refill(self: &Arc<Self>, runner: &Runner, key: &PoolKey) -> Arc<Notify> {
        let mut slots = self.slots.lock().expect("pool lock");
        let slot = slots.entry(key.clone()).or_default();
        if let Some(n) = &slot.refill {
            return n.clone();
        }
        let notify = Arc::new(Notify::new());
        slot.refill = Some(notify.clone());
        tokio::spawn(refill(
            Arc::downgrade(self),
            runner.clone(),
            key.clone(),
            notify.clone(),
        ));
        notify
    }

    pub(crate) fn idle_ids(&self, key: &PoolKey) -> Vec<String> {
        self.slots
            .lock()
            .expect("pool lock")
            .get(key)
            .map_or(Vec::new(), |s| s.idle.iter().map(|c| c.guard.id.clone()).collect())
    }

    pub(crate) fn idle_count(&self, key: &PoolKey) -> usize {
        self.slots
            .lock()
            .expect("pool lock")
            .get(key)
            .map_or(0, |s| s.idle.len())
    }

    fn put(&self, key: &PoolKey, c: Started) -> Option<Started> {
        if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return Some(c);
        }
        self.slots
            .lock()
            .expect("pool lock")
            .entry(key.clone())
            .or_default()
            .idle
            .push_back(c);
        None
    }

    /// Containers to create for `key` now (expired ones are dropped from the count).
    fn missing(&self, key: &PoolKey) -> (usize, Vec<Started>) {
        let mut slots = self.slots.lock().expect("pool lock");
        let slot = slots.entry(key.clone()).or_default();
        let mut old = Vec::new();
        for c in std::mem::take(&mut slot.idle) {
            if c.created.elapsed() < self.max_idle {
                slot.idle.push_back(c);
            } else {
                old.push(c);
            }
        }
        (self.size.saturating_sub(slot.idle.len()), old)
    }

    /// Removes every idle container and stops the refills.
    pub(crate) async fn drain(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        let idle: Vec<Started> = {
            let mut slots = self.slots.lock().expect("pool lock");
            slots
                .values_mut()
                .flat_map(|s| {
                    if let Some(n) = s.refill.take() {
                        n.notify_one();
                    }
                    s.idle.drain(..)
                })
                .collect()
        };
        futures_util::future::join_all(idle.into_iter().map(|c| c.guard.remove())).await;
    }
}

/// Keeps `key`'s pool full until the pool is dropped or drained.
async fn refill(pool: Weak<Pool>, runner: Runner, key: PoolKey, wake: Arc<Notify>) {
    let Ok(lang) = runner.registry().get(&key.language).cloned() else {
        return;
    };
    let image = match runner.image_for(&lang) {
        Ok(i) => i.to_owned(),
        Err(e) => return tracing::warn!(language = %key.language, error = %e, "no warm pool"),
    };
    let limits = match step_limits(&lang, key.mode, &LimitsOverride::default()) {
        Ok((first, _, _)) => first,
        Err(e) => return tracing::warn!(language = %key.language, error = %e, "no warm pool"),
    };
    let mut backoff = BACKOFF_MIN;
    loop {
        let Some(p) = pool.upgrade() else { return };
        if p.closed.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let (missing, expired) = p.missing(&key);
        let max_idle = p.max_idle;
        drop(p);
        for c in expired {
            c.guard.remove().await;
        }
        if missing == 0 {
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(max_idle / 2) => {}
            }
            continue;
        }
        match start_container(runner.docker(), &lang, key.mode, &image, &limits).await {
            Ok(c) => {
                backoff = BACKOFF_MIN;
                let rejected = match pool.upgrade() {
                    Some(p) => p.put(&key, c),
                    None => Some(c),
                };
                if let Some(c) = rejected {
                    c.guard.remove().await;
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(language = %key.language, mode = key.mode.as_str(), error = %e, "could not start a warm container; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}
