//! A connection's outgoing frames. The room queues frames with [`OutboundTx::try_send`];
//! on a plain TCP socket with nothing queued before them they are written at once, by the
//! thread that queued them, in one non-blocking vectored write of each frame's header and
//! its shared bytes: a keystroke relayed to fifty people is fifty `writev`s from the store's
//! thread, with no copy of the frame and no task woken. What cannot be written at once (the
//! socket's buffer is full, or the socket is TLS, which only the connection's task can
//! drive) waits in the queue, in order, and the connection's task writes it when the socket
//! takes more.

use std::collections::VecDeque;
use std::io::IoSlice;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::task::AtomicWaker;
use tokio::io::AsyncWrite;
use tokio::net::tcp::OwnedWriteHalf;

use super::codec::{self, BINARY, CLOSE, MAX_HEADER_BYTES};

/// What a room sends a connection.
#[derive(Debug)]
pub enum Outbound {
    /// A binary frame.
    Frame(Bytes),
    /// Close the socket with this code and reason.
    Close(u16, String),
}

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum TrySendError {
    /// The connection's queue is full: the client cannot keep up.
    Full,
    /// The connection is closing or gone.
    Closed,
}

/// Queue slots a drained connection keeps; a larger queue buffer is freed once empty.
const KEPT_QUEUE_CAPACITY: usize = 8;

/// The most slices one vectored write carries (Linux takes up to 1024; a connection's
/// backlog is written in a few calls at most).
const MAX_SLICES: usize = 64;

/// The write half a connection's frames go to.
pub(crate) enum Sink {
    /// Plain TCP: written by whoever queues a frame when nothing waits before it.
    Tcp(OwnedWriteHalf),
    /// Anything else (TLS): written by the connection's task only.
    Stream(Pin<Box<dyn AsyncWrite + Send>>),
}

struct Queued {
    opcode: u8,
    payload: Bytes,
}

struct State {
    queue: VecDeque<Queued>,
    /// Bytes of the first queued frame (header and payload) already written.
    head_written: usize,
    /// Data frames in the queue (control frames do not count against the capacity).
    frames: usize,
    /// A close frame is queued: nothing more is taken.
    closing: bool,
    /// The socket failed or the connection ended: nothing is written any more.
    dead: bool,
    sink: Option<Sink>,
    /// The earliest moment frames may be written at once again (see [`Pacer`]).
    next_write: Option<Instant>,
    /// Frames wait for the pacer's next round.
    paced: bool,
}

/// The outgoing side of one connection, shared by the room (through [`OutboundTx`]) and the
/// connection's task.
pub struct Outbox {
    state: Mutex<State>,
    /// Wakes the connection's task when frames wait for it or its close frame went out.
    wake: AtomicWaker,
    capacity: usize,
    pacer: Option<Arc<Pacer>>,
    /// When the client was last heard from (see [`super::liveness`]).
    heard: super::liveness::Heard,
}

impl Outbox {
    /// An outbox of at most `capacity` queued data frames writing to `sink` (none: frames
    /// wait until [`OutboundRx::recv`] takes them; for tests of the room).
    pub(crate) fn new(capacity: usize, sink: Option<Sink>, pacer: Option<Arc<Pacer>>) -> Arc<Outbox> {
        Arc::new(Outbox {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                head_written: 0,
                frames: 0,
                closing: false,
                dead: false,
                sink,
                next_write: None,
                paced: false,
            }),
            wake: AtomicWaker::new(),
            capacity,
            pacer,
            heard: super::liveness::Heard::new(),
        })
    }

    /// When the client was last heard from and last pinged.
    pub(crate) fn heard(&self) -> &super::liveness::Heard {
        &self.heard
    }

    /// The opcodes of the frames queued, oldest first.
    #[cfg(test)]
    pub(crate) fn queued_opcodes(&self) -> Vec<u8> {
        self.lock().queue.iter().map(|q| q.opcode).collect()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves a queue that is still consistent (each
        // change is one step), so a poisoned lock is used as is.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues data frames (written at once when possible); all or none. `reply`: they answer
    /// something the connection asked (a sync step, a debugger's response), so the pacer does
    /// not hold them back: a request and its answer are a round trip the asker waits for.
    pub fn send_frames<'a>(
        self: &Arc<Self>,
        frames: impl ExactSizeIterator<Item = &'a Bytes>,
        reply: bool,
    ) -> Result<(), TrySendError> {
        let mut st = self.lock();
        if st.closing || st.dead {
            return Err(TrySendError::Closed);
        }
        let n = frames.len();
        if st.frames + n > self.capacity {
            return Err(TrySendError::Full);
        }
        let was_empty = st.queue.is_empty();
        st.queue.extend(frames.map(|f| Queued {
            opcode: BINARY,
            payload: f.clone(),
        }));
        st.frames += n;
        self.settle(st, was_empty, reply);
        Ok(())
    }

    /// Queues a control frame (a pong, a ping), which no capacity refuses.
    pub(crate) fn send_control(self: &Arc<Self>, opcode: u8, payload: Bytes) {
        let mut st = self.lock();
        if st.closing || st.dead {
            return;
        }
        let was_empty = st.queue.is_empty();
        st.queue.push_back(Queued { opcode, payload });
        self.settle(st, was_empty, false);
    }

    /// Queues a close frame after what is queued; nothing more is taken after it. Returns
    /// false when the connection was already closing.
    pub fn close(self: &Arc<Self>, code: u16, reason: &str) -> bool {
        let mut st = self.lock();
        if st.closing || st.dead {
            return false;
        }
        st.closing = true;
        let was_empty = st.queue.is_empty();
        st.queue.push_back(Queued {
            opcode: CLOSE,
            payload: codec::close_payload(code, reason),
        });
        self.settle(st, was_empty, false);
        true
    }

    /// After queueing: writes now when the queue was empty before (or the frames are a
    /// reply) and the socket can be written from here, unless the pacer holds them back;
    /// else wakes the connection's task or leaves the frames to the pacer's next round.
    fn settle(self: &Arc<Self>, mut st: MutexGuard<'_, State>, was_empty: bool, reply: bool) {
        // Held for the pacer's round: these frames go with it (a reply takes them along now).
        if st.paced && !reply {
            return;
        }
        if (was_empty || reply) && matches!(st.sink, Some(Sink::Tcp(_))) {
            let now = Instant::now();
            if let Some(pacer) = &self.pacer {
                if let Some(at) = st.next_write.filter(|at| !reply && now < *at && !st.closing) {
                    st.paced = true;
                    drop(st);
                    pacer.defer(self.clone(), at);
                    return;
                }
                st.next_write = Some(now + pacer.spacing);
            }
            // Whatever waited for a round goes with this write, in order.
            st.paced = false;
            self.write_now(&mut st);
            // The task hears of a close frame that went out, as it ends the connection.
            if st.queue.is_empty() && !st.closing {
                return;
            }
        }
        drop(st);
        self.wake.wake();
    }

    /// Writes what is queued without waiting (plain TCP only): as much as the socket takes.
    fn write_now(&self, st: &mut State) {
        let Some(Sink::Tcp(tcp)) = st.sink.as_ref() else { return };
        match with_slices(&st.queue, st.head_written, |slices| tcp.try_write_vectored(slices)) {
            Ok(n) => advance(st, n),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => st.dead = true,
        }
    }

    /// The pacer's round for this connection: what waited goes out now.
    fn flush_paced(&self) {
        let mut st = self.lock();
        st.paced = false;
        if st.dead || st.queue.is_empty() {
            return;
        }
        if let Some(pacer) = &self.pacer {
            st.next_write = Some(Instant::now() + pacer.spacing);
        }
        self.write_now(&mut st);
        if !st.queue.is_empty() || st.closing {
            drop(st);
            self.wake.wake();
        }
    }

    /// Has the task behind `cx` woken when frames wait for it (register, then look).
    pub(crate) fn register(&self, cx: &Context<'_>) {
        self.wake.register(cx.waker());
    }

    /// Writes what is queued, as far as the socket takes it: `Ready(Ok(closed))` once the
    /// queue is empty (`closed`: the close frame is out), `Pending` until the socket takes
    /// more, or the error that ends the connection.
    pub(crate) fn poll_flush(&self, cx: &mut Context<'_>) -> Poll<std::io::Result<bool>> {
        let mut st = self.lock();
        loop {
            if st.dead {
                return Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()));
            }
            if st.queue.is_empty() {
                let closed = st.closing;
                if let Some(Sink::Stream(s)) = st.sink.as_mut() {
                    std::task::ready!(s.as_mut().poll_flush(cx))?;
                }
                return Poll::Ready(Ok(closed));
            }
            let State {
                queue,
                head_written,
                sink,
                ..
            } = &mut *st;
            let poll = match sink.as_mut() {
                Some(Sink::Tcp(tcp)) => {
                    let tcp = Pin::new(tcp);
                    with_slices(queue, *head_written, |slices| tcp.poll_write_vectored(cx, slices))
                }
                Some(Sink::Stream(s)) => with_slices(queue, *head_written, |slices| {
                    s.as_mut().poll_write_vectored(cx, slices)
                }),
                None => return Poll::Pending,
            };
            match poll {
                Poll::Ready(Ok(0)) => {
                    st.dead = true;
                    return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => advance(&mut st, n),
                Poll::Ready(Err(e)) => {
                    st.dead = true;
                    return Poll::Ready(Err(e));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// The connection ended: nothing more is queued or written, and the socket's write half
    /// is let go (the socket closes once its read half goes too).
    pub(crate) fn shut(&self) {
        let mut st = self.lock();
        st.dead = true;
        st.queue.clear();
        st.frames = 0;
        st.sink = None;
    }

    /// The room let go of the connection without a word (it was too slow, or the room
    /// stopped): what is queued goes, then a close frame saying so.
    fn room_gone(self: &Arc<Self>) {
        if self.close(1013, "dropped by the room (too slow or unloading); reconnect") {
            return;
        }
        // Already closing: the task is told anyway, in case it waits for frames.
        self.wake.wake();
    }
}

/// Paces writes to plain TCP sockets: a connection written less than `spacing` ago gets
/// what the room queues meanwhile in one write at the end of a round, instead of one write
/// per turn. Each write is a syscall that, on a busy room, costs more than everything else
/// a delivery takes; frames that arrive for a connection after a quiet moment are still
/// written at once, so a lone keystroke is never held back. A frame waits at most
/// `spacing` (decision 016).
pub struct Pacer {
    spacing: Duration,
    due: Mutex<Due>,
    wake: tokio::sync::Notify,
}

/// The connections held back for the next round, and when it is.
#[derive(Default)]
struct Due {
    held: Vec<Arc<Outbox>>,
    /// The earliest moment one of them may be written again.
    at: Option<Instant>,
}

impl Pacer {
    /// A pacer with rounds every `spacing`; `None` when the spacing is zero (no pacing).
    pub fn new(spacing: Duration) -> Option<Arc<Pacer>> {
        (!spacing.is_zero()).then(|| {
            Arc::new(Pacer {
                spacing,
                due: Mutex::new(Due::default()),
                wake: tokio::sync::Notify::new(),
            })
        })
    }

    /// Holds `outbox` back until the round at `at` (when it may be written again) or before.
    fn defer(&self, outbox: Arc<Outbox>, at: Instant) {
        let mut due = self.due.lock().unwrap_or_else(|e| e.into_inner());
        let first = due.held.is_empty();
        due.held.push(outbox);
        due.at = Some(due.at.map_or(at, |t| t.min(at)));
        drop(due);
        if first {
            self.wake.notify_one();
        }
    }

    /// Runs the rounds, for the server's life: a round comes when the first connection held
    /// back may be written again (at most `spacing` after it was last written, so a frame
    /// waits half the spacing on average) and writes every connection held back until then.
    /// The connections of one room are written in the same rounds, so they come due
    /// together.
    pub async fn run(self: Arc<Self>) {
        let mut batch = Vec::new();
        loop {
            self.wake.notified().await;
            let at = self.due.lock().unwrap_or_else(|e| e.into_inner()).at;
            if let Some(at) = at {
                tokio::time::sleep_until(at.into()).await;
            }
            {
                let mut due = self.due.lock().unwrap_or_else(|e| e.into_inner());
                std::mem::swap(&mut batch, &mut due.held);
                due.at = None;
            }
            for outbox in batch.drain(..) {
                outbox.flush_paced();
            }
        }
    }
}

/// Calls `f` with the queue's frames from `written` bytes into the first, as slices of
/// headers and payloads (at most [`MAX_SLICES`]), and returns what it returns.
fn with_slices<R>(queue: &VecDeque<Queued>, written: usize, f: impl FnOnce(&[IoSlice<'_>]) -> R) -> R {
    let mut headers = [([0u8; MAX_HEADER_BYTES], 0usize); MAX_SLICES / 2];
    for (h, q) in headers.iter_mut().zip(queue.iter()) {
        *h = codec::header(q.opcode, q.payload.len());
    }
    let mut slices = [IoSlice::new(&[]); MAX_SLICES];
    let mut used = 0;
    let mut skip = written;
    for (q, (h, hlen)) in queue.iter().zip(headers.iter()) {
        let header = &h[..*hlen];
        if skip >= header.len() {
            skip -= header.len();
        } else {
            slices[used] = IoSlice::new(&header[skip..]);
            used += 1;
            skip = 0;
        }
        let payload = &q.payload[skip.min(q.payload.len())..];
        skip = skip.saturating_sub(q.payload.len());
        if !payload.is_empty() {
            slices[used] = IoSlice::new(payload);
            used += 1;
        }
    }
    f(&slices[..used])
}

/// Drops `n` written bytes from the front of the queue.
fn advance(st: &mut State, mut n: usize) {
    while n > 0 {
        let Some(head) = st.queue.front() else { return };
        let total = codec::header_len(head.payload.len()) + head.payload.len();
        let left = total - st.head_written;
        if n < left {
            st.head_written += n;
            return;
        }
        n -= left;
        st.head_written = 0;
        if head.opcode == BINARY {
            st.frames -= 1;
        }
        st.queue.pop_front();
    }
    // A drained queue gives back a large buffer: a burst (a join storm's announcements, held
    // for the pacer) grew it, and an idle connection would keep it for its life.
    if st.queue.is_empty() && st.queue.capacity() > KEPT_QUEUE_CAPACITY {
        st.queue = VecDeque::new();
    }
}

/// The room's handle on a connection's outbox. Clones share it; when the room drops the last
/// one (it let the connection go), the connection is closed after what is queued.
#[derive(Clone)]
pub struct OutboundTx(Arc<RoomHold>);

struct RoomHold(Arc<Outbox>);

impl Drop for RoomHold {
    fn drop(&mut self) {
        self.0.room_gone();
    }
}

impl OutboundTx {
    /// The room's handle on `outbox`.
    pub fn new(outbox: Arc<Outbox>) -> OutboundTx {
        OutboundTx(Arc::new(RoomHold(outbox)))
    }

    /// Queues one frame or a close, without waiting.
    pub fn try_send(&self, out: Outbound) -> Result<(), TrySendError> {
        match out {
            Outbound::Frame(bytes) => self.send_frames(std::iter::once(&bytes), false),
            Outbound::Close(code, reason) => {
                if self.0 .0.close(code, &reason) {
                    Ok(())
                } else {
                    Err(TrySendError::Closed)
                }
            }
        }
    }

    /// Queues frames for the connection in one go (one write when the socket takes them);
    /// `reply`: see [`Outbox::send_frames`].
    pub fn send_frames<'a>(
        &self,
        frames: impl ExactSizeIterator<Item = &'a Bytes>,
        reply: bool,
    ) -> Result<(), TrySendError> {
        self.0 .0.send_frames(frames, reply)
    }
}

/// The receiving end of an outbox without a socket, for tests of the room.
pub struct OutboundRx(Arc<Outbox>);

/// An outbox without a socket and the room's handle on it.
pub fn channel(capacity: usize) -> (OutboundTx, OutboundRx) {
    let outbox = Outbox::new(capacity, None, None);
    (OutboundTx::new(outbox.clone()), OutboundRx(outbox))
}

impl OutboundRx {
    /// The next frame or close; `None` once the room let go and everything was taken.
    pub async fn recv(&mut self) -> Option<Outbound> {
        loop {
            {
                let mut st = self.0.lock();
                if let Some(q) = st.queue.pop_front() {
                    return Some(match q.opcode {
                        BINARY => {
                            st.frames -= 1;
                            Outbound::Frame(q.payload)
                        }
                        _ => {
                            let code = q.payload.get(..2).map_or(1005, |c| u16::from_be_bytes([c[0], c[1]]));
                            let reason = String::from_utf8_lossy(q.payload.get(2..).unwrap_or_default()).into_owned();
                            Outbound::Close(code, reason)
                        }
                    });
                }
                if st.closing || st.dead {
                    return None;
                }
            }
            std::future::poll_fn(|cx| {
                self.0.register(cx);
                let st = self.0.lock();
                if st.queue.is_empty() && !st.closing && !st.dead {
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            })
            .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queue_of(payloads: &[&[u8]]) -> State {
        let mut st = State {
            queue: VecDeque::new(),
            head_written: 0,
            frames: 0,
            closing: false,
            dead: false,
            sink: None,
            next_write: None,
            paced: false,
        };
        for p in payloads {
            st.queue.push_back(Queued {
                opcode: BINARY,
                payload: Bytes::copy_from_slice(p),
            });
            st.frames += 1;
        }
        st
    }

    fn wire(st: &State) -> Vec<u8> {
        with_slices(&st.queue, st.head_written, |slices| {
            slices.iter().flat_map(|s| s.iter().copied()).collect()
        })
    }

    #[test]
    fn queued_frames_go_out_as_headers_and_payloads_in_order() {
        let st = queue_of(&[b"ab", b"cde"]);
        assert_eq!(wire(&st), [&[0x82, 2][..], b"ab", &[0x82, 3], b"cde"].concat());
    }

    #[test]
    fn a_partial_write_resumes_where_it_stopped_even_inside_a_header() {
        let mut st = queue_of(&[b"ab", b"cde"]);
        let whole = wire(&st);
        for n in 1..whole.len() {
            let mut st2 = queue_of(&[b"ab", b"cde"]);
            advance(&mut st2, n);
            assert_eq!(wire(&st2), whole[n..], "after {n} bytes");
        }
        advance(&mut st, whole.len());
        assert!(st.queue.is_empty());
        assert_eq!((st.frames, st.head_written), (0, 0));
    }

    #[tokio::test]
    async fn a_full_queue_refuses_and_a_dropped_room_closes_after_the_queue() {
        let (tx, mut rx) = channel(2);
        tx.send_frames([Bytes::from_static(b"1"), Bytes::from_static(b"2")].iter(), false)
            .unwrap();
        assert_eq!(
            tx.try_send(Outbound::Frame(Bytes::from_static(b"3"))),
            Err(TrySendError::Full)
        );
        drop(tx);
        assert!(matches!(rx.recv().await, Some(Outbound::Frame(b)) if &b[..] == b"1"));
        assert!(matches!(rx.recv().await, Some(Outbound::Frame(b)) if &b[..] == b"2"));
        assert!(matches!(rx.recv().await, Some(Outbound::Close(1013, _))));
        assert!(rx.recv().await.is_none());
    }
}
