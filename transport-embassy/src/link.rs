//! One broker connection: its TCP socket, its buffers (the core's
//! [`ConnBuffers`]), and where it is in its life; and the socket as the core driver's
//! [`Io`], for an established connection's turn.
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
use producer_core::capacity::Capacities;
use producer_core::client::HOST_MAX;
use producer_core::client::{Client, ConnId};
use producer_core::driver::{Broken, ConnBuffers, Io, turn};
use producer_core::time::Instant;
use producer_core::wire::FrameDecoder;

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
    /// TCP is established and the TLS handshake runs (feature `tls`); the client hears of
    /// the connection when it is done. `since`: when the attempt began, for its timeout.
    #[cfg(feature = "tls")]
    Handshaking { since: Instant },
    /// Established and handed to the client.
    Up,
    /// Our FIN is queued (`Producer::close`); waiting for the broker to close its side.
    Closing,
}

pub(crate) struct Link<'d> {
    pub(crate) socket: TcpSocket<'d>,
    pub(crate) phase: Phase,
    pub(crate) buffers: ConnBuffers<&'d mut [u8], &'d mut [u8]>,
    /// The connection's TLS session, shared with the runner, when the producer uses TLS.
    #[cfg(feature = "tls")]
    pub(crate) wire: Option<&'d crate::tls::TlsWire>,
}

/// The socket polled once with the task's `Context`: `Pending` is "nothing now".
pub(crate) struct Polled<'s, 'd, 'c, 'w> {
    pub(crate) socket: &'s mut TcpSocket<'d>,
    pub(crate) cx: &'c mut Context<'w>,
}

impl Io for Polled<'_, '_, '_, '_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Broken> {
        match pin!(Read::read(&mut *self.socket, buf)).poll(self.cx) {
            Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => Err(Broken),
            Poll::Ready(Ok(n)) => Ok(n),
            Poll::Pending => Ok(0),
        }
    }

    fn write(&mut self, buf: &[u8]) -> Result<usize, Broken> {
        match pin!(Write::write(&mut *self.socket, buf)).poll(self.cx) {
            Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => Err(Broken),
            Poll::Ready(Ok(n)) => Ok(n),
            Poll::Pending => Ok(0),
        }
    }
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
            buffers: ConnBuffers::new(frame, request),
            #[cfg(feature = "tls")]
            wire: None,
        }
    }

    fn clear(&mut self) {
        self.buffers.clear();
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
        #[cfg(feature = "tls")]
        if let Some(wire) = self.wire {
            wire.reset();
        }
    }

    /// A connection to `host` is about to be dialled: with TLS, the name its certificate
    /// must carry (and SNI), and a fresh session.
    #[cfg(feature = "tls")]
    pub(crate) fn dialling(&mut self, host: &str) {
        if let Some(wire) = self.wire {
            wire.dial(host);
        }
    }

    /// Why TLS failed for good on this connection, if it did: checked before the link is
    /// aborted, which forgets it.
    #[cfg(feature = "tls")]
    pub(crate) fn tls_failure(&self) -> Option<producer_core::tls::TlsFailure> {
        self.wire.and_then(|w| w.failure())
    }

    /// Advances the TLS handshake: `Ready(Ok)` when established (the link is `Up`),
    /// `Ready(Err)` when the connection ended or failed ([`Link::tls_failure`] says which),
    /// or took longer than `timeout` from the first SYN.
    #[cfg(feature = "tls")]
    pub(crate) fn poll_handshake(
        &mut self,
        cx: &mut Context<'_>,
        now: Instant,
        timeout: Duration,
    ) -> Poll<Result<bool, Broken>> {
        let (Phase::Handshaking { since }, Some(wire)) = (&self.phase, self.wire) else {
            return Poll::Ready(Err(Broken));
        };
        if now.saturating_duration_since(*since) >= timeout {
            return Poll::Ready(Err(Broken));
        }
        let moved = wire.exchange(&mut self.socket, cx);
        match wire.handshake() {
            Poll::Ready(Ok(())) => {
                self.phase = Phase::Up;
                Poll::Ready(Ok(true))
            }
            Poll::Ready(Err(_)) => Poll::Ready(Err(Broken)),
            Poll::Pending if moved => Poll::Ready(Ok(false)),
            Poll::Pending => Poll::Pending,
        }
    }

    /// When this link gives up connecting, if it is connecting.
    pub(crate) fn connect_deadline(&self, timeout: Duration) -> Option<Instant> {
        match self.phase {
            Phase::Resolving { since, .. } | Phase::Connecting { since, .. } => {
                Some(Instant::from_micros(since.as_micros().saturating_add(
                    timeout.as_micros().try_into().unwrap_or(u64::MAX),
                )))
            }
            #[cfg(feature = "tls")]
            Phase::Handshaking { since } => {
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
            let polled = pin!(self.socket.connect(to)).poll(cx);
            match polled {
                Poll::Ready(Ok(())) => return self.established(since),
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
            State::Established => self.established(since),
            // Refused (RST), timed out in the stack, or closed before it opened.
            _ => Poll::Ready(Err(Broken)),
        }
    }

    /// TCP is up: the connection is the client's now, or, with TLS, once the handshake is
    /// done (`Pending` until then).
    fn established(&mut self, since: Instant) -> Poll<Result<(), Broken>> {
        #[cfg(feature = "tls")]
        if let Some(wire) = self.wire {
            wire.start_handshake();
            self.phase = Phase::Handshaking { since };
            return Poll::Pending;
        }
        let _ = since;
        self.phase = Phase::Up;
        Poll::Ready(Ok(()))
    }

    /// An established connection's turn: the socket's bytes, or with TLS the session's
    /// plaintext (the ciphertext moved between the socket and the wire first), to and from
    /// the client.
    pub(crate) fn service<S, C>(
        &mut self,
        client: &mut Client<S, C>,
        frames: &FrameDecoder,
        cx: &mut Context<'_>,
        conn: ConnId,
        now: Instant,
    ) -> Result<bool, Broken>
    where
        S: AsRef<[u8]> + AsMut<[u8]>,
        C: Capacities,
    {
        #[cfg(feature = "tls")]
        if let Some(wire) = self.wire {
            let moved = wire.exchange(&mut self.socket, cx);
            let mut io = crate::tls::Plain(wire);
            let served = turn::service(client, &mut io, &mut self.buffers, frames, conn, now)?;
            // The driver's writes are for the runner: ciphertext for them goes out next turn.
            return Ok(served | moved | wire.exchange(&mut self.socket, cx));
        }
        let mut io = Polled {
            socket: &mut self.socket,
            cx,
        };
        turn::service(client, &mut io, &mut self.buffers, frames, conn, now)
    }

    /// Queues a FIN after whatever is unsent (graceful close).
    pub(crate) fn close(&mut self) {
        self.socket.close();
        self.phase = Phase::Closing;
        // The session ends with the connection: the runner lets its buffers go.
        #[cfg(feature = "tls")]
        if let Some(wire) = self.wire {
            wire.reset();
        }
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
