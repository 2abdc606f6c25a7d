//! Steady typing across many rooms against a real server, sampling what the server writes
//! to disk: the data directory's size, the SQLite WAL's size, the bytes the server process
//! caused to be written (`/proc/PID/io`), and the bytes the store says it wrote. The store
//! soak benchmark (`mesh-bench`'s `store` program) prints these samples; an integration
//! test runs a short load and asserts bounds on them.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::{TestServer, YClient};

/// The file each typist types into.
const FILE: &str = "main.txt";

/// What one typist types per update: three characters, as a fast typist's burst between two
/// updates of a Yjs editor binding.
const CHUNK: &str = "abc";

/// The typing load.
#[derive(Debug, Clone)]
pub struct TypingLoad {
    /// Rooms, one typist in each.
    pub rooms: usize,
    /// Updates per second per typist.
    pub rate: f64,
    /// How long everyone types.
    pub duration: Duration,
    /// How often a sample is taken.
    pub sample_every: Duration,
}

/// What the server's disk use looked like at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Time since typing started.
    pub at: Duration,
    /// Updates the server has made durable (`mesh_updates_total`).
    pub updates: u64,
    /// Bytes of every file in the data directory.
    pub data_dir_bytes: u64,
    /// Bytes of `mesh.db-wal` (0 when absent).
    pub wal_bytes: u64,
    /// Bytes the server process caused to be written to storage (`write_bytes` of
    /// `/proc/PID/io`, counted by the kernel per dirtied page).
    pub process_write_bytes: u64,
    /// Bytes the store wrote into its WAL, as it reports them
    /// (`mesh_store_wal_bytes_written_total`; 0 if the server does not report it).
    pub store_wal_bytes: u64,
    /// Compactions so far (`mesh_compactions_total`).
    pub compactions: u64,
}

impl Sample {
    /// Bytes the store wrote to its WAL per durable update between `earlier` and `self`.
    pub fn wal_bytes_per_update_since(&self, earlier: &Sample) -> f64 {
        per_update(self.store_wal_bytes, earlier.store_wal_bytes, self, earlier)
    }

    /// Bytes the process caused to be written per durable update between `earlier` and
    /// `self`.
    pub fn process_bytes_per_update_since(&self, earlier: &Sample) -> f64 {
        per_update(self.process_write_bytes, earlier.process_write_bytes, self, earlier)
    }
}

fn per_update(now: u64, then: u64, a: &Sample, b: &Sample) -> f64 {
    let updates = a.updates.saturating_sub(b.updates);
    if updates == 0 {
        return f64::NAN;
    }
    now.saturating_sub(then) as f64 / updates as f64
}

/// Types `load` into fresh rooms of `server`, calling `on_sample` every
/// `load.sample_every` and once at the end; returns every sample, the first taken after
/// all typists joined and before anyone typed.
pub async fn type_across_rooms(
    server: &TestServer,
    load: &TypingLoad,
    mut on_sample: impl FnMut(&Sample),
) -> anyhow::Result<Vec<Sample>> {
    if load.rooms == 0 || !load.rate.is_finite() || load.rate <= 0.0 {
        bail!("a typing load needs at least one room and a positive rate");
    }
    let mut typists = Vec::with_capacity(load.rooms);
    for i in 0..load.rooms {
        let session = server.create_session(&format!("soak-{i}")).await?;
        let url = server.ws_url(&session, &session.created.writer_token);
        let client = YClient::connect(&url).await.context("typist connect")?;
        client.wait_synced().await?;
        typists.push(client);
    }
    let sent = Arc::new(AtomicU64::new(0));
    let mut samples = vec![sample(server, Duration::ZERO).await?];
    on_sample(&samples[0]);
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + load.duration;
    let period = Duration::from_secs_f64(1.0 / load.rate);
    let mut tasks = Vec::with_capacity(typists.len());
    for (i, client) in typists.into_iter().enumerate() {
        let sent = sent.clone();
        // Spread the typists' ticks over one period, so the server sees a steady stream
        // rather than one burst per period.
        let offset = period.mul_f64(i as f64 / load.rooms as f64);
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + offset, period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = tokio::time::sleep_until(deadline) => break,
                }
                let len = client.len(FILE);
                client.insert(FILE, len, CHUNK);
                sent.fetch_add(1, Ordering::Relaxed);
                if let Some((code, reason)) = client.closed() {
                    bail!("a typist was disconnected: {code} {reason}");
                }
            }
            Ok(client)
        }));
    }
    let mut next = tokio::time::Instant::now() + load.sample_every;
    while tokio::time::Instant::now() < deadline {
        tokio::time::sleep_until(next.min(deadline)).await;
        if tokio::time::Instant::now() >= next {
            let s = sample(server, started.elapsed()).await?;
            on_sample(&s);
            samples.push(s);
            next += load.sample_every;
        }
    }
    let mut clients = Vec::with_capacity(tasks.len());
    for t in tasks {
        clients.push(t.await??);
    }
    // Every update sent must be durable before the last sample: wait for the server's count.
    let want = samples[0].updates + sent.load(Ordering::Relaxed);
    let wait_until = Instant::now() + crate::EVENT_TIMEOUT;
    let last = loop {
        let s = sample(server, started.elapsed()).await?;
        if s.updates >= want {
            break s;
        }
        if Instant::now() > wait_until {
            bail!("the server made {} of {want} updates durable", s.updates);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    on_sample(&last);
    samples.push(last);
    for c in &clients {
        c.close();
    }
    Ok(samples)
}

/// Takes one sample of `server` now.
pub async fn sample(server: &TestServer, at: Duration) -> anyhow::Result<Sample> {
    let text = server.metrics().await?;
    let dir = server.data_dir();
    Ok(Sample {
        at,
        updates: metric(&text, "mesh_updates_total") as u64,
        data_dir_bytes: dir_bytes(dir)?,
        wal_bytes: std::fs::metadata(dir.join("mesh.db-wal")).map_or(0, |m| m.len()),
        process_write_bytes: process_write_bytes(server.pid()).unwrap_or(0),
        store_wal_bytes: metric(&text, "mesh_store_wal_bytes_written_total") as u64,
        compactions: metric(&text, "mesh_compactions_total") as u64,
    })
}

/// The value of a counter or gauge without labels in Prometheus text, 0 when absent.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .find_map(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Bytes of every regular file under `dir`.
pub fn dir_bytes(dir: &Path) -> std::io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// `write_bytes` of `/proc/PID/io`: bytes the process caused to be sent to storage.
pub fn process_write_bytes(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
}
