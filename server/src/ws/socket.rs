//! One room socket's IO: reads decoded by [`Decoder`], writes through the connection's
//! [`Outbox`]. A connection is one task; while idle it holds no read buffer (bytes are read
//! into the stack and only an unfinished frame is kept) and no write buffer (frames are the
//! room's shared bytes).

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, ReadBuf};

use super::codec::{Decoder, Message, WsError, PONG};
use super::outbox::{Outbox, Sink};
use crate::edge::{HeldSlots, RawSocket};

/// Bytes read from the socket at a time, into the stack: a burst of keystrokes is one read.
const READ_CHUNK: usize = 8 * 1024;

/// What [`Conn::next`] saw.
#[derive(Debug)]
pub(crate) enum Next {
    /// A message from the client (pings are answered already).
    Message(Message),
    /// A frame the protocol does not allow, or one over the size limit.
    Invalid(WsError),
    /// The close frame the server queued went out.
    CloseSent,
    /// The client closed the connection, or it broke.
    End,
}

/// One connection's socket.
pub(crate) struct Conn {
    reader: Pin<Box<dyn AsyncRead + Send>>,
    decoder: Decoder,
    outbox: Arc<Outbox>,
    close_sent: bool,
    ended: bool,
    _held: Option<HeldSlots>,
}

impl Conn {
    /// The connection on `socket` (with `early`, what was read past the upgrade request),
    /// decoding messages of at most `limit` bytes and queueing at most `capacity` frames.
    pub(crate) fn new(
        socket: RawSocket,
        early: Bytes,
        limit: usize,
        capacity: usize,
        pacer: Option<Arc<super::outbox::Pacer>>,
    ) -> Conn {
        let (reader, sink, held): (Pin<Box<dyn AsyncRead + Send>>, Sink, _) = match socket {
            RawSocket::Tcp { read, write, held } => (Box::pin(read), Sink::Tcp(write), Some(held)),
            RawSocket::Other(io) => {
                let (read, write) = tokio::io::split(io);
                (Box::pin(read), Sink::Stream(Box::pin(write)), None)
            }
        };
        let mut decoder = Decoder::new(limit);
        decoder.push(&early);
        Conn {
            reader,
            decoder,
            outbox: Outbox::new(capacity, Some(sink), pacer),
            close_sent: false,
            ended: false,
            _held: held,
        }
    }

    /// The connection's outbox.
    pub(crate) fn outbox(&self) -> &Arc<Outbox> {
        &self.outbox
    }

    /// Writes what waits in the outbox as the socket takes it, and returns the next thing
    /// that happened on the connection.
    pub(crate) async fn next(&mut self) -> Next {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    /// Writes what waits until the close frame is out (or the socket fails).
    pub(crate) async fn flush_close(&mut self) {
        if self.close_sent {
            return;
        }
        let outbox = self.outbox.clone();
        let _ = poll_fn(|cx| {
            outbox.register(cx);
            match outbox.poll_flush(cx) {
                Poll::Ready(Ok(true)) | Poll::Ready(Err(_)) => Poll::Ready(()),
                Poll::Ready(Ok(false)) | Poll::Pending => Poll::Pending,
            }
        })
        .await;
        self.close_sent = true;
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Next> {
        // Writes first: frames the room queued go out while the socket takes them.
        if !self.close_sent {
            self.outbox.register(cx);
            match self.outbox.poll_flush(cx) {
                Poll::Ready(Ok(true)) => {
                    self.close_sent = true;
                    return Poll::Ready(Next::CloseSent);
                }
                Poll::Ready(Err(_)) => return Poll::Ready(Next::End),
                Poll::Ready(Ok(false)) | Poll::Pending => {}
            }
        }
        loop {
            match self.decoder.next_message() {
                Ok(Some(message)) => {
                    if let Message::Ping(payload) = &message {
                        self.outbox.send_control(PONG, payload.clone());
                    }
                    return Poll::Ready(Next::Message(message));
                }
                Ok(None) => {}
                Err(e) => return Poll::Ready(Next::Invalid(e)),
            }
            if self.ended {
                return Poll::Ready(Next::End);
            }
            // The buffer lives on the stack for this read only: an idle connection keeps none.
            let mut chunk = [0u8; READ_CHUNK];
            let mut buf = ReadBuf::new(&mut chunk);
            match self.reader.as_mut().poll_read(cx, &mut buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(_)) => {
                    self.ended = true;
                    return Poll::Ready(Next::End);
                }
                Poll::Ready(Ok(())) if buf.filled().is_empty() => {
                    self.ended = true;
                    return Poll::Ready(Next::End);
                }
                Poll::Ready(Ok(())) => self.decoder.push(buf.filled()),
            }
        }
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.outbox.shut();
    }
}
