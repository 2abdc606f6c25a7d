//! What hostile clients send, and how honest clients show the room still works: shared by
//! the attack tests (`server/tests/hostile.rs`) and the attack benchmark
//! (`mesh-bench --bin hostile`), so both measure the same thing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{bail, Context};
use mesh_protocol::codec::encode_yjs;
use yrs::sync::awareness::{AwarenessUpdate, AwarenessUpdateEntry};
use yrs::sync::{Message, SyncMessage};

use crate::YClient;

/// Update sequences that crash yrs 0.28.1 when applied unchecked (segfaults in its block
/// integration), found by mutating real typing sessions. Each is a list of
/// `u32 little-endian length, update bytes`; see [`split_sequence`].
pub const YRS_CRASHERS: &[&[u8]] = &[
    include_bytes!("../data/yrs-crashers/yrs-crash-1.bin"),
    include_bytes!("../data/yrs-crashers/yrs-crash-2.bin"),
    include_bytes!("../data/yrs-crashers/yrs-crash-3.bin"),
    include_bytes!("../data/yrs-crashers/yrs-crash-4.bin"),
    include_bytes!("../data/yrs-crashers/yrs-crash-5.bin"),
    include_bytes!("../data/yrs-crashers/yrs-crash-6.bin"),
    include_bytes!("../data/yrs-crashers/yrs-crash-7.bin"),
    include_bytes!("../data/yrs-crashers/yrs-crash-8.bin"),
    include_bytes!("../data/yrs-crashers/yrs-crash-9.bin"),
];

/// The updates of a length-prefixed sequence.
pub fn split_sequence(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 4 {
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let Some(update) = rest.get(4..4 + len) else { break };
        out.push(update.to_vec());
        rest = &rest[4 + len..];
    }
    out
}

/// A y-sync update message carrying `update`.
pub fn update_frame(update: Vec<u8>) -> Vec<u8> {
    encode_yjs(&Message::Sync(SyncMessage::Update(update)))
}

/// An update whose one block holds an `Any` array nested `depth` levels deep (20,000 once
/// overflowed the server's stack while it was decoded).
pub fn deep_value_update(depth: usize) -> Vec<u8> {
    // One client (5) with one block at clock 0: `Any` content, parent the root named "a".
    let mut update = vec![1, 1, 5, 0, 8, 1, 1, b'a', 1];
    for _ in 0..depth {
        update.extend([117, 1]);
    }
    // The innermost value (null), then an empty delete set.
    update.extend([126, 0]);
    update
}

/// An awareness message setting `client`'s state to `json` at `clock`.
pub fn awareness_frame(client: yrs::block::ClientID, json: &str, clock: u32) -> Vec<u8> {
    encode_yjs(&Message::Awareness(AwarenessUpdate {
        clients: [(
            client,
            AwarenessUpdateEntry {
                clock,
                json: json.into(),
            },
        )]
        .into(),
    }))
}

/// Round trips of honest edits, in milliseconds, sorted.
pub struct RoundTrips(Vec<f64>);

impl RoundTrips {
    /// The `q` quantile (0.5 for the median).
    pub fn quantile(&self, q: f64) -> f64 {
        self.0[((self.0.len() - 1) as f64 * q).round() as usize]
    }
}

/// Makes every marker of a process unique, across rounds and tests.
static MARKER: AtomicU64 = AtomicU64::new(0);

/// Two honest writers take turns appending unique markers to `path`; each edit must reach
/// the other. Fails unless every marker is in both copies exactly once (preservation, not
/// only agreement).
pub async fn honest_edits(a: &YClient, b: &YClient, path: &str, n: usize) -> anyhow::Result<RoundTrips> {
    let mut rtts = Vec::with_capacity(n);
    let mut markers = Vec::with_capacity(n);
    for i in 0..n {
        let (from, to) = if i % 2 == 0 { (a, b) } else { (b, a) };
        let marker = format!("<{}>", MARKER.fetch_add(1, Ordering::Relaxed));
        let started = Instant::now();
        from.insert(path, from.len(path), &marker);
        to.wait_for("an honest edit", |c| c.text(path).is_some_and(|t| t.contains(&marker)))
            .await
            .with_context(|| format!("honest edit {i} ({marker}) did not arrive"))?;
        rtts.push(started.elapsed().as_secs_f64() * 1000.0);
        markers.push(marker);
    }
    for c in [a, b] {
        let text = c.text(path).unwrap_or_default();
        for m in &markers {
            let count = text.matches(m.as_str()).count();
            if count != 1 {
                bail!("marker {m} is in the text {count} times, not once");
            }
        }
    }
    rtts.sort_by(|x, y| x.total_cmp(y));
    Ok(RoundTrips(rtts))
}
