//! One connection's shared state: the wire between the producer and the runner (see the
//! module documentation of [`crate::tls`]).

use core::cell::RefCell;
use core::future::Future;
use core::pin::pin;
use core::task::{Context, Poll, Waker};

use embassy_net::tcp::TcpSocket;
use embedded_io_async::{Read, Write};
use heapless::{Deque, String};
use producer_core::client::HOST_MAX;
use producer_core::driver::{Broken, Io};
use producer_core::tls::TlsFailure;

use super::WIRE_QUEUE;

/// Where a connection's TLS session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum State {
    /// No connection, or the producer gave it up.
    Idle,
    /// The socket is connected; the runner is to run the handshake.
    Handshake,
    /// Established: plaintext flows.
    Up,
    /// The session ended without a failure of TLS itself: an ordinary loss.
    Lost,
    /// The handshake (or the broker, by an alert right after it) failed for good.
    Failed(TlsFailure),
}

pub(super) struct WireState {
    /// Bumped by the producer for each connection, so a session never touches the next one.
    pub(super) generation: u32,
    pub(super) state: State,
    /// The host dialled: SNI and the name verified.
    pub(super) host: String<HOST_MAX>,
    /// The socket ended (closed, reset): the runner's reads fail once `cipher_in` is empty.
    pub(super) closed: bool,
    /// The broker sent any byte on this connection.
    pub(super) heard: bool,
    pub(super) cipher_in: Deque<u8, WIRE_QUEUE>,
    pub(super) cipher_out: Deque<u8, WIRE_QUEUE>,
    pub(super) plain_in: Deque<u8, WIRE_QUEUE>,
    pub(super) plain_out: Deque<u8, WIRE_QUEUE>,
    pub(super) producer: Option<Waker>,
    pub(super) runner: Option<Waker>,
}

pub(super) fn register(slot: &mut Option<Waker>, waker: &Waker) {
    if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
        *slot = Some(waker.clone());
    }
}

pub(super) fn wake(slot: &Option<Waker>) {
    if let Some(w) = slot {
        w.wake_by_ref();
    }
}

pub(super) fn free(q: &Deque<u8, WIRE_QUEUE>) -> usize {
    q.capacity() - q.len()
}

/// One connection's TLS state shared by the producer and the runner (see the module
/// documentation). Part of [`TlsResources`](super::TlsResources).
pub struct TlsWire {
    pub(super) inner: RefCell<WireState>,
}

impl TlsWire {
    pub(super) const fn new() -> Self {
        TlsWire {
            inner: RefCell::new(WireState {
                generation: 0,
                state: State::Idle,
                host: String::new(),
                closed: false,
                heard: false,
                cipher_in: Deque::new(),
                cipher_out: Deque::new(),
                plain_in: Deque::new(),
                plain_out: Deque::new(),
                producer: None,
                runner: None,
            }),
        }
    }

    /// A new connection to `host` is being dialled: whatever the last one left is dropped,
    /// and its session (if the runner still has one) ends.
    pub(crate) fn dial(&self, host: &str) {
        let mut w = self.inner.borrow_mut();
        w.generation = w.generation.wrapping_add(1);
        w.state = State::Idle;
        w.host.clear();
        // The client only hands out hosts that fit HOST_MAX.
        let _ = w.host.push_str(host);
        w.closed = false;
        w.heard = false;
        w.cipher_in.clear();
        w.cipher_out.clear();
        w.plain_in.clear();
        w.plain_out.clear();
        wake(&w.runner);
    }

    /// The producer dropped the connection.
    pub(crate) fn reset(&self) {
        let mut w = self.inner.borrow_mut();
        w.generation = w.generation.wrapping_add(1);
        w.state = State::Idle;
        w.cipher_in.clear();
        w.cipher_out.clear();
        w.plain_in.clear();
        w.plain_out.clear();
        wake(&w.runner);
    }

    /// The socket is connected: the runner may start the handshake.
    pub(crate) fn start_handshake(&self) {
        let mut w = self.inner.borrow_mut();
        w.state = State::Handshake;
        wake(&w.runner);
    }

    /// Moves ciphertext between the socket and the wire without waiting, registering the
    /// task's waker with the socket and the wire. Returns whether anything moved.
    pub(crate) fn exchange(&self, socket: &mut TcpSocket<'_>, cx: &mut Context<'_>) -> bool {
        let mut w = self.inner.borrow_mut();
        let mut moved = false;
        let mut chunk = [0u8; 512];
        while !w.closed && !w.cipher_in.is_full() {
            let want = free(&w.cipher_in).min(chunk.len());
            let polled = pin!(Read::read(socket, &mut chunk[..want])).poll(cx);
            match polled {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                    w.closed = true;
                    moved = true;
                }
                Poll::Ready(Ok(n)) => {
                    for &b in &chunk[..n] {
                        let _ = w.cipher_in.push_back(b);
                    }
                    w.heard = true;
                    moved = true;
                }
                Poll::Pending => break,
            }
        }
        while !w.closed && !w.cipher_out.is_empty() {
            let n = {
                let (front, _) = w.cipher_out.as_slices();
                match pin!(Write::write(socket, front)).poll(cx) {
                    Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => None,
                    Poll::Ready(Ok(n)) => Some(n),
                    Poll::Pending => break,
                }
            };
            match n {
                Some(n) => {
                    for _ in 0..n {
                        w.cipher_out.pop_front();
                    }
                }
                None => w.closed = true,
            }
            moved = true;
        }
        register(&mut w.producer, cx.waker());
        if moved {
            wake(&w.runner);
        }
        moved
    }

    /// Where the handshake is, for the producer: `Ready(Ok)` when established,
    /// `Ready(Err(None))` for an ordinary loss, `Ready(Err(Some(f)))` for a failure for good.
    pub(crate) fn handshake(&self) -> Poll<Result<(), Option<TlsFailure>>> {
        match self.inner.borrow().state {
            State::Up => Poll::Ready(Ok(())),
            State::Lost => Poll::Ready(Err(None)),
            State::Failed(f) => Poll::Ready(Err(Some(f))),
            State::Idle | State::Handshake => Poll::Pending,
        }
    }

    /// A failure reported after the handshake (the broker refusing the client certificate
    /// by an alert once the client's side was done), else `None`.
    pub(crate) fn failure(&self) -> Option<TlsFailure> {
        match self.inner.borrow().state {
            State::Failed(f) => Some(f),
            _ => None,
        }
    }
}

/// Where a connection's session is, as [`TlsWire::progress`] shows it to the firmware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsProgress {
    /// No connection, or the producer gave it up.
    Idle,
    /// The socket is connected and the runner runs the handshake.
    Handshake,
    /// The handshake is done: plaintext flows (what the producer waits for).
    Up,
    /// The session ended: a loss or a failure.
    Ended,
}

impl TlsWire {
    /// Where this connection's session is, and its generation (bumped for each connection
    /// the producer dials). For a firmware's own accounting, read between polls of the
    /// runner (e.g. to time a handshake's polls); it changes nothing.
    pub fn progress(&self) -> (u32, TlsProgress) {
        let w = self.inner.borrow();
        let progress = match w.state {
            State::Idle => TlsProgress::Idle,
            State::Handshake => TlsProgress::Handshake,
            State::Up => TlsProgress::Up,
            State::Lost | State::Failed(_) => TlsProgress::Ended,
        };
        (w.generation, progress)
    }

    /// `f` of the host this connection dialled (empty before the first).
    pub fn with_host<T>(&self, f: impl FnOnce(&str) -> T) -> T {
        f(&self.inner.borrow().host)
    }
}

/// The established connection's plaintext, as the driver reads and writes it.
pub(crate) struct Plain<'w>(pub(crate) &'w TlsWire);

impl Io for Plain<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Broken> {
        let mut w = self.0.inner.borrow_mut();
        let mut n = 0;
        while n < buf.len() {
            match w.plain_in.pop_front() {
                Some(b) => {
                    buf[n] = b;
                    n += 1;
                }
                None => break,
            }
        }
        if n > 0 {
            wake(&w.runner);
            return Ok(n);
        }
        // Everything decrypted was read: a session that ended is a lost connection.
        match w.state {
            State::Up => Ok(0),
            _ => Err(Broken),
        }
    }

    fn write(&mut self, buf: &[u8]) -> Result<usize, Broken> {
        let mut w = self.0.inner.borrow_mut();
        if w.state != State::Up {
            return Err(Broken);
        }
        let n = free(&w.plain_out).min(buf.len());
        for &b in &buf[..n] {
            let _ = w.plain_out.push_back(b);
        }
        if n > 0 {
            wake(&w.runner);
        }
        Ok(n)
    }
}
