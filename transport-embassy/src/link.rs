//! One broker connection: its TCP socket, the response being reassembled, the request being
//! written, and where it is in its life.
//!
//! Every operation here is non-blocking and takes the producer task's `Context`. Bytes move
//! through the socket's `embedded-io-async` `Read` and `Write`, and connection state through
//! embassy-net's own futures, each polled once (`pin!(Read::read(..)).poll(cx)`): those
//! futures keep no state of their own between polls (the waker registration lives in the
//! smoltcp socket, and a state change wakes it), so polling a fresh one each turn is the same
//! as keeping one, and nothing is lost when the producer's future is dropped.

use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll};
use core::time::Duration;

use embassy_net::IpEndpoint;
use embassy_net::tcp::{State, TcpSocket};
use embedded_io_async::{Read, Write};
use heapless::String;
use producer_core::client::HOST_MAX;
use producer_core::time::Instant;
use producer_core::wire::{FrameDecoder, FrameStatus};

/// Where a connection is in its life.
// The name being resolved is kept inline (256 bytes per connection, small beside its
// buffers) so that lookups for several brokers can be pending at once without an allocator.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub(crate) enum Phase {
    /// Unused. The socket is closed, or its RST from the last abort is still leaving.
    Idle,
    /// The broker's address is a name, being looked up by the producer.
    Resolving {
        host: String<HOST_MAX>,
        port: u16,
        since: Instant,
    },
    /// Connecting to `to`; `started` once the SYN is queued (an earlier abort's RST goes out
    /// first, so the broker learns the old connection is gone).
    Connecting {
        to: IpEndpoint,
        started: bool,
        since: Instant,
    },
    /// Established and handed to the client.
    Up,
    /// Our FIN is queued (`Producer::close`); waiting for the broker to close its side.
    Closing,
}

/// The connection ended; the client must hear of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Broken;

pub(crate) struct Link<'d> {
    pub(crate) socket: TcpSocket<'d>,
    pub(crate) phase: Phase,
    frame: &'d mut [u8],
    received: usize,
    request: &'d mut [u8],
    request_len: usize,
    written: usize,
}

impl<'d> Link<'d> {
    pub(crate) fn new(
        mut socket: TcpSocket<'d>,
        frame: &'d mut [u8],
        request: &'d mut [u8],
    ) -> Self {
        // Requests are whole messages the broker waits for: never hold them back.
        socket.set_nagle_enabled(false);
        Link {
            socket,
            phase: Phase::Idle,
            frame,
            received: 0,
            request,
            request_len: 0,
            written: 0,
        }
    }

    fn clear(&mut self) {
        self.received = 0;
        self.request_len = 0;
        self.written = 0;
    }

    /// Starts a connection to an address.
    pub(crate) fn connect(&mut self, to: IpEndpoint, now: Instant) {
        self.clear();
        self.phase = Phase::Connecting {
            to,
            started: false,
            since: now,
        };
    }

    /// Starts a connection to a name; the producer resolves it.
    pub(crate) fn resolve(&mut self, host: &str, port: u16, now: Instant) {
        self.clear();
        // The client only hands out hosts that fit HOST_MAX.
        let mut name = String::new();
        let _ = name.push_str(host);
        self.phase = Phase::Resolving {
            host: name,
            port,
            since: now,
        };
    }

    /// Drops the connection at once (RST); what was unsent or unread is gone.
    pub(crate) fn abort(&mut self) {
        self.socket.abort();
        self.phase = Phase::Idle;
        self.clear();
    }

    /// When this link gives up connecting, if it is connecting.
    pub(crate) fn connect_deadline(&self, timeout: Duration) -> Option<Instant> {
        match self.phase {
            Phase::Resolving { since, .. } | Phase::Connecting { since, .. } => {
                Some(Instant::from_micros(since.as_micros().saturating_add(
                    timeout.as_micros().try_into().unwrap_or(u64::MAX),
                )))
            }
            _ => None,
        }
    }

    /// Advances a connection attempt: `Ready(Ok)` when established, `Ready(Err)` when it
    /// failed or took longer than `timeout`.
    pub(crate) fn poll_connect(
        &mut self,
        cx: &mut Context<'_>,
        now: Instant,
        timeout: Duration,
    ) -> Poll<Result<(), Broken>> {
        let Phase::Connecting { to, started, since } = self.phase else {
            return Poll::Pending;
        };
        if now.saturating_duration_since(since) >= timeout {
            return Poll::Ready(Err(Broken));
        }
        if !started {
            let rst_leaving =
                self.socket.state() == State::Closed && self.socket.remote_endpoint().is_some();
            if rst_leaving {
                // `flush` waits for the RST; polling it registers the wake-up.
                let _ = pin!(self.socket.flush()).poll(cx);
                return Poll::Pending;
            }
            // The first poll queues the SYN and registers the wake-up; later turns watch the
            // state below.
            match pin!(self.socket.connect(to)).poll(cx) {
                Poll::Ready(Ok(())) => {
                    self.phase = Phase::Up;
                    return Poll::Ready(Ok(()));
                }
                Poll::Ready(Err(_)) => return Poll::Ready(Err(Broken)),
                Poll::Pending => {
                    self.phase = Phase::Connecting {
                        to,
                        started: true,
                        since,
                    };
                    return Poll::Pending;
                }
            }
        }
        match self.socket.state() {
            State::SynSent | State::SynReceived => {
                // Not writable until established: this registers the wake-up.
                let _ = pin!(self.socket.wait_write_ready()).poll(cx);
                Poll::Pending
            }
            State::Established => {
                self.phase = Phase::Up;
                Poll::Ready(Ok(()))
            }
            // Refused (RST), timed out in the stack, or closed before it opened.
            _ => Poll::Ready(Err(Broken)),
        }
    }

    /// A request is waiting to be written.
    pub(crate) fn request_pending(&self) -> bool {
        self.written < self.request_len
    }

    /// The request buffer, when the last request has been handed to the socket.
    pub(crate) fn request_buffer(&mut self) -> Option<&mut [u8]> {
        if self.request_pending() {
            None
        } else {
            Some(&mut *self.request)
        }
    }

    /// The client wrote an `n`-byte request into [`Link::request_buffer`].
    pub(crate) fn queued(&mut self, n: usize) {
        self.request_len = n.min(self.request.len());
        self.written = 0;
    }

    /// Hands as much of the pending request to the socket as it takes. `Ok(true)` when bytes
    /// moved.
    pub(crate) fn poll_write(&mut self, cx: &mut Context<'_>) -> Result<bool, Broken> {
        let mut moved = false;
        while self.written < self.request_len {
            let pending = &self.request[self.written..self.request_len];
            match pin!(Write::write(&mut self.socket, pending)).poll(cx) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Err(Broken),
                Poll::Ready(Ok(n)) => {
                    self.written += n;
                    moved = true;
                }
                Poll::Pending => return Ok(moved),
            }
        }
        self.request_len = 0;
        self.written = 0;
        Ok(moved)
    }

    /// Moves what the socket received into the frame buffer. `Ok(true)` when bytes moved;
    /// `Err` when the broker closed or reset the connection.
    pub(crate) fn poll_read(&mut self, cx: &mut Context<'_>) -> Result<bool, Broken> {
        let mut moved = false;
        loop {
            let Some(free) = self
                .frame
                .get_mut(self.received..)
                .filter(|f| !f.is_empty())
            else {
                // Full: the frame decoder refuses frames larger than this buffer, so the
                // caller decodes (and frees room) before reading on.
                return Ok(moved);
            };
            match pin!(Read::read(&mut self.socket, free)).poll(cx) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Err(Broken),
                Poll::Ready(Ok(n)) => {
                    self.received += n;
                    moved = true;
                }
                Poll::Pending => return Ok(moved),
            }
        }
    }

    /// Hands every complete frame received to `on_frame`, then keeps the unfinished rest.
    /// `Err` when the stream carries a frame this connection will not take (too large or
    /// malformed): it can no longer be trusted.
    pub(crate) fn frames(
        &mut self,
        decoder: &FrameDecoder,
        mut on_frame: impl FnMut(&[u8]),
    ) -> Result<bool, Broken> {
        let mut used = 0;
        let mut any = false;
        loop {
            let received = self.frame.get(used..self.received).unwrap_or(&[]);
            match decoder.decode(received) {
                Ok(FrameStatus::Complete { frame, consumed }) => {
                    on_frame(frame);
                    used += consumed;
                    any = true;
                }
                Ok(FrameStatus::NeedMore(_)) => break,
                Err(_) => return Err(Broken),
            }
        }
        if used > 0 {
            self.frame.copy_within(used..self.received, 0);
            self.received -= used;
        }
        Ok(any)
    }

    /// Queues a FIN after whatever is unsent (graceful close).
    pub(crate) fn close(&mut self) {
        self.socket.close();
        self.phase = Phase::Closing;
    }

    /// A closing link is done once the broker has closed its side too (or the socket is
    /// gone). Registers the wake-up otherwise.
    pub(crate) fn poll_closed(&mut self, cx: &mut Context<'_>) -> bool {
        match self.socket.state() {
            State::Closed | State::TimeWait => {
                self.phase = Phase::Idle;
                true
            }
            State::FinWait1 | State::Closing | State::LastAck => {
                let _ = pin!(self.socket.flush()).poll(cx);
                false
            }
            _ => {
                // FIN-WAIT-2: ours is acknowledged; a read sees theirs (or leftover data).
                let mut scratch = [0u8; 64];
                match pin!(Read::read(&mut self.socket, &mut scratch)).poll(cx) {
                    Poll::Ready(Ok(n)) if n > 0 => {
                        // A late response nobody waits for; keep draining.
                        cx.waker().wake_by_ref();
                        false
                    }
                    Poll::Ready(_) => {
                        self.phase = Phase::Idle;
                        true
                    }
                    Poll::Pending => false,
                }
            }
        }
    }
}
