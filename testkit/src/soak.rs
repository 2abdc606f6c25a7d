//! Steady typing across many rooms against a real server, sampling what the server writes
//! to disk: the data directory's size, the SQLite WAL's size, the bytes the server process
//! caused to be written (`/proc/PID/io`), and the bytes the store says it wrote. The store
//! soak benchmark (`mesh-bench`'s `store` program) prints these samples; an integration
//! test runs a short load and asserts bounds on them.
//!
//! Beside it, the markers the durability tests type (bursts, drains, crashes, several
//! nodes): each one unique and multibyte, so a test can tell which edits survived, that
//! none was applied twice, and that no UTF-16 offset split a character.

use std::collections::HashSet;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::{Session, TestServer, YClient};

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

/// The room socket URL of `session` on `server` itself, with `token`. (The URL a room was
/// created with names the node that created it; on another node of one store the same
/// path opens the same room.)
pub fn ws_on(server: &TestServer, session: &Session, token: &str) -> String {
    let base = server.url.replacen("http", "ws", 1);
    format!("{base}/ws/{}?token={token}", session.id())
}

/// Joins `session` on `server` with `token` as `name` (a mesh client, so it has a welcome)
/// and waits until it has synced.
pub async fn connect(server: &TestServer, session: &Session, token: &str, name: &str) -> anyhow::Result<YClient> {
    let client = YClient::connect_mesh(&ws_on(server, session, token), name).await?;
    client.wait_synced().await?;
    Ok(client)
}

/// Marker `i` of typist `who`: unique per typist and index, and multibyte (`é` is one
/// UTF-16 unit in two UTF-8 bytes, the emoji two units in four), so an offset that splits a
/// character shows as a missing marker.
pub fn marker(who: &str, i: usize) -> String {
    format!("<{who}é{i}🙂>")
}

/// Which of markers `0..n` of `who` are in `text`, whole.
///
/// # Panics
///
/// When a marker is there more than once: an edit applied twice is a defect every caller
/// must see, wherever it looks.
pub fn markers_in(text: &str, who: &str, n: usize) -> HashSet<usize> {
    let mut found = HashSet::new();
    for i in 0..n {
        match text.matches(&marker(who, i)).count() {
            0 => {}
            1 => {
                found.insert(i);
            }
            k => panic!("{} is in the room {k} times", marker(who, i)),
        }
    }
    found
}

/// Types markers `0..n` of `who` into `path` at a spot that moves (the end, the start, the
/// middle), as fast as a macro, yielding now and then as a fast typist's socket is read.
pub async fn type_markers(client: &YClient, path: &str, who: &str, n: usize) {
    for i in 0..n {
        let len = client.len(path);
        let at = match i % 3 {
            0 => len,
            1 => 0,
            _ => {
                // The middle, on a character boundary (after a marker's `>`).
                let text = client.text(path).unwrap_or_default();
                let half = text.len() / 2;
                let cut = text
                    .char_indices()
                    .take_while(|(i, _)| *i < half)
                    .filter(|(_, c)| *c == '>')
                    .last()
                    .map_or(0, |(i, _)| i + 1);
                text[..cut].encode_utf16().count() as u32
            }
        };
        client.insert(path, at, &marker(who, i));
        if i % 10 == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// Types the next marker of `who` (number `*typed`) at the end of `path`, as one keystroke
/// of a person, and counts it.
pub fn type_marker(client: &YClient, path: &str, who: &str, typed: &mut usize) {
    let at = client.len(path);
    client.insert(path, at, &marker(who, *typed));
    *typed += 1;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_found_whole_and_never_by_a_prefix() {
        let text = format!("{}x{}{}", marker("a", 11), marker("b", 1), marker("ab", 2));
        assert_eq!(markers_in(&text, "a", 20), HashSet::from([11]));
        assert_eq!(markers_in(&text, "b", 20), HashSet::from([1]));
        assert_eq!(markers_in(&text, "ab", 20), HashSet::from([2]));
        // A marker with its multibyte tail cut is not counted.
        let cut = marker("a", 3).replace('🙂', "");
        assert!(markers_in(&cut, "a", 20).is_empty());
        // Only markers below `n` are looked for.
        assert!(markers_in(&text, "a", 11).is_empty());
    }

    #[test]
    #[should_panic(expected = "is in the room 2 times")]
    fn a_marker_applied_twice_fails_the_test() {
        let m = marker("m", 4);
        markers_in(&format!("{m}{m}"), "m", 5);
    }
}
