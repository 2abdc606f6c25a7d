//! One simulated editor: a task that owns one WebSocket, syncs, then types into a `Y.Text`
//! when the coordinator says so and records when its room-mates' keystrokes arrive.
//!
//! The client never applies received updates to its document: its own updates only
//! reference its own earlier characters, and latency needs only the ids a received update
//! carries. That keeps the bench's share of the two cores small.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::{interval_at, sleep_until, timeout, Instant, Interval, MissedTickBehavior};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{connect_async_with_config, MaybeTlsStream, WebSocketStream};
use yrs::updates::decoder::Decode;
use yrs::{Doc, ReadTxn, StateVector, Text, TextRef, Transact, Update};

use crate::ledger::{Ledger, Phase, PHASES};
use crate::wire::{Framing, Incoming};

/// Bytes a client reads from its socket at a time.
const READ_BUFFER_BYTES: usize = 8 * 1024;
/// Time allowed for one client's handshake and initial sync; generous because up to
/// [`crate::run::CONNECT_CONCURRENCY`] clients connect at once on a busy machine.
const SYNC_TIMEOUT: Duration = Duration::from_secs(15);
/// Time allowed to send the close frame when the run ends; the server may be saturated.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// Latency samples kept per client and phase: bounds memory (4 bytes each) on long runs;
/// receipts beyond it still count for throughput and loss.
const MAX_SAMPLES: usize = 4_000_000;
/// What the clients type, one character per update, cycling: plain ASCII, so each
/// character is one Yjs clock.
const TYPED: &str = "the quick brown fox jumps over the lazy dog; ";
/// Name of the root `Y.Text` typed into. Every server under test accepts any document
/// shape, and a root type needs no coordination between clients.
pub(crate) const TEXT_ROOT: &str = "bench";
/// Stand-in deadline for "no deadline": far enough never to fire during a run.
const FAR_FUTURE: Duration = Duration::from_secs(365 * 24 * 3600);

type Socket = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

/// What the coordinator tells every client, through one watch channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Stay connected and keep receiving; send nothing.
    Idle,
    /// Send in `phase`'s pattern until `until`, then keep receiving.
    Load { phase: Phase, until: Instant },
    /// Close the socket and return the results.
    Close,
}

/// How one client is set up.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Global index (room × clients per room + member).
    pub index: usize,
    /// Clients per room.
    pub clients_per_room: usize,
    /// Whether this client types (in both phases); otherwise it only receives.
    pub writes: bool,
    /// WebSocket URL of the client's room.
    pub url: String,
    /// How the server frames messages.
    pub framing: Framing,
    /// Typing phase: interval between two updates.
    pub typing_period: Duration,
    /// Typing phase: delay before the first update, so clients do not type in lockstep.
    pub typing_offset: Duration,
    /// Saturation phase: most updates not yet received by all room-mates.
    pub window: u64,
}

/// A client's result for one phase.
#[derive(Debug, Default)]
pub struct PhaseStats {
    /// Updates this client sent.
    pub sent: u64,
    /// Room-mates' updates this client received (each counted once).
    pub receipts: u64,
    /// Latency of each receipt, in microseconds (at most [`MAX_SAMPLES`]).
    pub latencies_us: Vec<u32>,
    /// When the last receipt arrived.
    pub last_receipt: Option<Instant>,
}

impl PhaseStats {
    fn record(&mut self, latency: Duration, now: Instant) {
        self.receipts += 1;
        self.last_receipt = Some(now);
        if self.latencies_us.len() < MAX_SAMPLES {
            self.latencies_us
                .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
        }
    }
}

/// Everything a client reports at the end.
#[derive(Debug, Default)]
pub struct ClientOutcome {
    /// The client's global index (outcomes are collected in the order clients end).
    pub index: usize,
    /// Per-phase results, indexed by [`Phase::index`].
    pub phases: [PhaseStats; PHASES],
    /// The server closed the socket or it failed before the coordinator said `Close`.
    pub disconnected: bool,
    /// Received updates that did not decode.
    pub undecodable: u64,
}

/// A client's readiness report: connect time, or why it could not connect and sync.
pub type Ready = (usize, Result<Duration, String>);

/// Runs one client until the coordinator says [`Control::Close`] (or goes away). Reports on
/// `ready` once connected and synced; `connect_slots` bounds concurrent handshakes.
pub async fn run(
    config: ClientConfig,
    ledger: Arc<Ledger>,
    mut control: watch::Receiver<Control>,
    ready: mpsc::Sender<Ready>,
    connect_slots: Arc<Semaphore>,
) -> ClientOutcome {
    let mut client = Client::new(config, ledger);
    let socket = {
        let Ok(_slot) = connect_slots.acquire().await else {
            return client.outcome;
        };
        match timeout(SYNC_TIMEOUT, client.connect_and_sync()).await {
            Ok(Ok((socket, connect_time))) => {
                let _ = ready.send((client.config.index, Ok(connect_time))).await;
                socket
            }
            Ok(Err(e)) => {
                let _ = ready.send((client.config.index, Err(format!("{e:#}")))).await;
                return client.outcome;
            }
            Err(_) => {
                let error = format!("no sync within {SYNC_TIMEOUT:?}");
                let _ = ready.send((client.config.index, Err(error))).await;
                return client.outcome;
            }
        }
    };
    drop(ready);
    client.main_loop(socket, &mut control).await;
    client.outcome
}

/// The events of a client's main loop.
enum Event {
    /// The coordinator changed the control (`false`: the coordinator is gone).
    Control(bool),
    /// A frame, an error, or the end of the socket.
    Frame(Option<Result<WsMessage, tokio_tungstenite::tungstenite::Error>>),
    /// Time to type the next character (typing phase).
    Tick,
    /// An update of ours became fully delivered (saturation phase).
    Delivered,
    /// The current load phase's time is up.
    LoadOver,
}

struct Client {
    config: ClientConfig,
    ledger: Arc<Ledger>,
    room: usize,
    doc: Doc,
    text: TextRef,
    /// The clock of our next character.
    clock: u32,
    /// Per room member: the clock up to which its updates were received.
    seen: Vec<u32>,
    outcome: ClientOutcome,
}

impl Client {
    fn new(config: ClientConfig, ledger: Arc<Ledger>) -> Self {
        let index = config.index;
        let doc = Doc::with_client_id(Ledger::client_id(index));
        let text = doc.get_or_insert_text(TEXT_ROOT);
        Client {
            room: ledger.room_of(config.index),
            seen: vec![0; config.clients_per_room],
            config,
            ledger,
            doc,
            text,
            clock: 0,
            outcome: ClientOutcome {
                index,
                ..ClientOutcome::default()
            },
        }
    }

    /// Opens the socket and completes the sync handshake. Returns the connect time: from
    /// the start of the handshake to the first server message.
    async fn connect_and_sync(&mut self) -> anyhow::Result<(Socket, Duration)> {
        let start = Instant::now();
        // Nagle off: a keystroke is a tiny frame that must leave at once. tungstenite zeroes
        // its whole read buffer before every read (128 KiB by default): with 1,500 sockets
        // that was most of the bench's CPU and of the latency it measured. Frames here are
        // small; a larger one grows the buffer as it arrives.
        let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER_BYTES);
        let (mut socket, _) = connect_async_with_config(self.config.url.as_str(), Some(config), true).await?;
        if let Some(hello) = self.config.framing.hello() {
            socket.feed(WsMessage::binary(hello)).await?;
        }
        let step1 = self.config.framing.sync_step1(self.doc.transact().state_vector());
        socket.send(WsMessage::binary(step1)).await?;
        let mut connect_time = None;
        let mut synced = false;
        while !synced {
            let msg = socket
                .next()
                .await
                .ok_or_else(|| anyhow::anyhow!("server closed the socket during sync"))??;
            connect_time.get_or_insert_with(|| start.elapsed());
            if let WsMessage::Close(frame) = &msg {
                anyhow::bail!("the server closed the socket during sync: {frame:?}");
            }
            if let WsMessage::Binary(bytes) = msg {
                let mut step1s = Vec::new();
                self.config.framing.parse(&bytes, |m| match m {
                    Incoming::SyncStep1(sv) => step1s.push(sv.to_vec()),
                    Incoming::SyncStep2(_) => synced = true,
                    Incoming::Update(_) => {}
                });
                for sv in step1s {
                    socket.send(WsMessage::binary(self.sync_step2(&sv)?)).await?;
                }
            }
        }
        Ok((socket, connect_time.unwrap_or_else(|| start.elapsed())))
    }

    /// The answer to a SyncStep1: our state as an update relative to `sv`.
    fn sync_step2(&self, sv: &[u8]) -> anyhow::Result<Vec<u8>> {
        let sv = StateVector::decode_v1(sv)?;
        Ok(self
            .config
            .framing
            .sync_step2(self.doc.transact().encode_state_as_update_v1(&sv)))
    }

    async fn main_loop(&mut self, socket: Socket, control_rx: &mut watch::Receiver<Control>) {
        let (mut sink, mut stream) = socket.split();
        let mut open = true;
        let mut control = *control_rx.borrow_and_update();
        let mut ticker = idle_ticker();
        let mut deadline = pin!(sleep_until(Instant::now() + FAR_FUTURE));
        loop {
            let load = active_phase(control);
            let window_full = load == Some(Phase::Saturation) && self.outstanding() >= self.config.window;
            let load = load.filter(|_| self.config.writes);
            let event = tokio::select! {
                biased;
                changed = control_rx.changed() => Event::Control(changed.is_ok()),
                frame = stream.next(), if open => Event::Frame(frame),
                _ = ticker.tick(), if load == Some(Phase::Typing) => Event::Tick,
                () = self.ledger.delivery(self.config.index), if window_full => Event::Delivered,
                () = &mut deadline, if load.is_some() => Event::LoadOver,
            };
            match event {
                Event::Control(false) => break,
                Event::Control(true) => {
                    control = *control_rx.borrow_and_update();
                    match control {
                        Control::Load { phase, until } => {
                            deadline.as_mut().reset(until);
                            if phase == Phase::Typing {
                                ticker = typing_ticker(&self.config);
                            }
                        }
                        Control::Close => break,
                        Control::Idle => {}
                    }
                }
                Event::Frame(Some(Ok(WsMessage::Binary(bytes)))) => {
                    for reply in self.on_frame(&bytes) {
                        if sink.send(WsMessage::binary(reply)).await.is_err() {
                            open = self.disconnected();
                        }
                    }
                }
                Event::Frame(Some(Ok(WsMessage::Close(_)) | Err(_)) | None) => open = self.disconnected(),
                // Pings are answered by tungstenite; text frames are not part of the protocol.
                Event::Frame(Some(Ok(_))) => {}
                Event::Tick if open => {
                    let frame = self.type_one(Phase::Typing);
                    if sink.send(WsMessage::binary(frame)).await.is_err() {
                        open = self.disconnected();
                    }
                }
                Event::Tick | Event::Delivered | Event::LoadOver => {}
            }
            // The event may have started the phase (or the window may have opened).
            if open && self.config.writes && active_phase(control) == Some(Phase::Saturation) {
                open = self.fill_window(&mut sink).await;
            }
        }
        let _ = timeout(CLOSE_TIMEOUT, sink.close()).await;
    }

    /// Saturation: sends until the window is full (or the phase is over), then flushes once.
    /// Returns whether the socket is still open.
    async fn fill_window(&mut self, sink: &mut (impl SinkExt<WsMessage> + Unpin)) -> bool {
        let mut fed = false;
        // At most `window` sends per call: each send raises the outstanding count by one.
        for _ in 0..self.config.window {
            if self.outstanding() >= self.config.window {
                break;
            }
            let frame = self.type_one(Phase::Saturation);
            if sink.feed(WsMessage::binary(frame)).await.is_err() {
                return self.disconnected();
            }
            fed = true;
        }
        if fed && sink.flush().await.is_err() {
            return self.disconnected();
        }
        true
    }

    /// Saturation updates sent but not yet received by every room-mate.
    fn outstanding(&self) -> u64 {
        let sent = self.outcome.phases[Phase::Saturation.index()].sent;
        sent.saturating_sub(self.ledger.fully_delivered(self.config.index, Phase::Saturation))
    }

    /// Types one character and returns the frame carrying its update; records the send.
    fn type_one(&mut self, phase: Phase) -> Vec<u8> {
        let i = self.clock as usize % TYPED.len();
        let update = {
            let mut txn = self.doc.transact_mut();
            self.text.push(&mut txn, &TYPED[i..i + 1]);
            txn.encode_update_v1()
        };
        let frame = self.config.framing.update(&update);
        self.ledger.record_send(self.config.index, self.clock, phase);
        self.clock += 1;
        self.outcome.phases[phase.index()].sent += 1;
        frame
    }

    /// Handles one received frame; returns the frames to send in answer (SyncStep2s).
    fn on_frame(&mut self, bytes: &[u8]) -> Vec<Vec<u8>> {
        let now = Instant::now();
        let mut step1s = Vec::new();
        let framing = self.config.framing.clone();
        framing.parse(bytes, |m| match m {
            Incoming::Update(update) | Incoming::SyncStep2(update) => self.on_update(update, now),
            Incoming::SyncStep1(sv) => step1s.push(sv.to_vec()),
        });
        step1s.iter().filter_map(|sv| self.sync_step2(sv).ok()).collect()
    }

    /// Records the receipt of every room-mate's character in `update` not seen before.
    fn on_update(&mut self, update: &[u8], now: Instant) {
        let Ok(update) = Update::decode_v1(update) else {
            self.outcome.undecodable += 1;
            return;
        };
        for (client, ranges) in update.insertions(true).iter() {
            let Some(sender) = self.ledger.index_of(client.get()) else {
                continue;
            };
            // Some servers echo an update to its sender; only room-mates count.
            if sender == self.config.index || self.ledger.room_of(sender) != self.room {
                continue;
            }
            let seen = &mut self.seen[sender % self.config.clients_per_room];
            for range in ranges.iter() {
                for clock in range.start.max(*seen)..range.end {
                    if let Some(receipt) = self.ledger.record_receipt(sender, clock, now) {
                        self.outcome.phases[receipt.phase.index()].record(receipt.latency, now);
                    }
                }
                *seen = (*seen).max(range.end);
            }
        }
    }

    /// Marks the socket as gone; returns the new "open" state (false).
    fn disconnected(&mut self) -> bool {
        self.outcome.disconnected = true;
        false
    }

    /// The text typed so far (for tests).
    #[cfg(test)]
    fn typed(&self) -> String {
        use yrs::GetString;
        self.text.get_string(&self.doc.transact())
    }
}

/// The phase whose load is on now, if any.
fn active_phase(control: Control) -> Option<Phase> {
    match control {
        Control::Load { phase, until } if Instant::now() < until => Some(phase),
        _ => None,
    }
}

/// A ticker that does not fire during a run (before the typing phase).
fn idle_ticker() -> Interval {
    tokio::time::interval_at(Instant::now() + FAR_FUTURE, FAR_FUTURE)
}

/// The typing phase's ticker: one tick per period, starting after the client's offset.
fn typing_ticker(config: &ClientConfig) -> Interval {
    let mut ticker = interval_at(Instant::now() + config.typing_offset, config.typing_period);
    // After a stall, keep the spacing rather than burst to catch up: a typist does not
    // type faster because the machine was busy.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    ticker
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(index: usize) -> ClientConfig {
        ClientConfig {
            index,
            clients_per_room: 3,
            writes: true,
            url: String::new(),
            framing: Framing::Plain,
            typing_period: Duration::from_millis(100),
            typing_offset: Duration::ZERO,
            window: 4,
        }
    }

    #[test]
    fn receipts_are_matched_by_the_ids_inside_updates() {
        let ledger = Arc::new(Ledger::new(2, 3));
        let mut alice = Client::new(config(0), ledger.clone());
        let mut bob = Client::new(config(1), ledger.clone());
        let mut other_room = Client::new(config(3), ledger.clone());
        let frames: Vec<_> = (0..3).map(|_| alice.type_one(Phase::Typing)).collect();
        assert_eq!(alice.typed(), "the");
        // A server that merges two updates into one is handled like one that relays each.
        let mut merged = Vec::new();
        Framing::Plain.parse(&frames[1], |m| {
            if let Incoming::Update(u) = m {
                merged.push(u.to_vec())
            }
        });
        Framing::Plain.parse(&frames[2], |m| {
            if let Incoming::Update(u) = m {
                merged.push(u.to_vec())
            }
        });
        let merged = Framing::Plain.update(&yrs::merge_updates_v1(&merged).unwrap());
        bob.on_frame(&frames[0]);
        bob.on_frame(&merged);
        bob.on_frame(&merged); // A duplicate counts once.
        alice.on_frame(&frames[0]); // An echo to the sender does not count.
        other_room.on_frame(&frames[0]); // Nor does another room's traffic.
        assert_eq!(bob.outcome.phases[0].receipts, 3);
        assert_eq!(
            alice.outcome.phases[0].receipts + other_room.outcome.phases[0].receipts,
            0
        );
        assert_eq!((ledger.sent(Phase::Typing), ledger.receipts(Phase::Typing)), (3, 3));
    }
}
