//! A broker connection as the driver sees it: a byte stream that never blocks ([`Io`]),
//! and the two buffers it needs ([`ConnBuffers`]): the response being reassembled and the
//! request being written.
//!
//! A transport implements [`Io`] over its socket (a mio `TcpStream`, an embassy-net
//! `TcpSocket` polled with the task's `Context`); TLS, when it comes, is an [`Io`] wrapping
//! another. The buffers are the caller's (`Vec`s on hosts, `&mut [u8]` from a `static` on
//! targets), so nothing here allocates.

/// The connection ended (closed, reset, or carrying what cannot be trusted); the client
/// must hear of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Broken;

/// A connected byte stream, used without waiting.
pub trait Io {
    /// Reads what has arrived into `buf` (never empty): `Ok(0)` when nothing has, `Err`
    /// when the peer closed or the connection failed.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Broken>;
    /// Hands what it takes of `buf` (never empty) to the stream: `Ok(0)` when it takes
    /// nothing now, `Err` when the connection failed.
    fn write(&mut self, buf: &[u8]) -> Result<usize, Broken>;
}

/// One connection's buffers: `rx` reassembles responses (the frame decoder must refuse
/// frames larger than it, less the 4-byte length), `tx` holds one request until the stream
/// has taken all of it.
#[derive(Debug)]
pub struct ConnBuffers<R, T> {
    rx: R,
    received: usize,
    tx: T,
    request_len: usize,
    written: usize,
}

impl<R, T> ConnBuffers<R, T>
where
    R: AsRef<[u8]> + AsMut<[u8]>,
    T: AsRef<[u8]> + AsMut<[u8]>,
{
    /// Empty buffers over `rx` and `tx`.
    pub const fn new(rx: R, tx: T) -> Self {
        ConnBuffers {
            rx,
            received: 0,
            tx,
            request_len: 0,
            written: 0,
        }
    }

    /// Forgets what was received and unsent: a new connection starts clean.
    pub fn clear(&mut self) {
        self.received = 0;
        self.request_len = 0;
        self.written = 0;
    }

    /// A request is waiting to be written.
    pub fn request_pending(&self) -> bool {
        self.written < self.request_len
    }

    /// The request buffer, when the last request has been handed to the stream.
    pub fn request_buffer(&mut self) -> Option<&mut [u8]> {
        if self.request_pending() {
            None
        } else {
            Some(self.tx.as_mut())
        }
    }

    /// The client wrote an `n`-byte request into [`ConnBuffers::request_buffer`].
    pub fn queued(&mut self, n: usize) {
        self.request_len = n.min(self.tx.as_ref().len());
        self.written = 0;
    }

    /// Hands as much of the pending request to `io` as it takes. `Ok(true)` when bytes
    /// moved.
    pub fn write_to(&mut self, io: &mut impl Io) -> Result<bool, Broken> {
        let mut moved = false;
        while self.written < self.request_len {
            let pending = self
                .tx
                .as_ref()
                .get(self.written..self.request_len)
                .unwrap_or(&[]);
            match io.write(pending)? {
                0 => return Ok(moved),
                n => {
                    self.written += n;
                    moved = true;
                }
            }
        }
        self.request_len = 0;
        self.written = 0;
        Ok(moved)
    }

    /// Moves what `io` received into the receive buffer, until nothing more has arrived or
    /// the buffer is full. Returns (bytes moved, buffer full).
    pub fn read_from(&mut self, io: &mut impl Io) -> Result<(bool, bool), Broken> {
        let mut moved = false;
        loop {
            let Some(free) = self
                .rx
                .as_mut()
                .get_mut(self.received..)
                .filter(|f| !f.is_empty())
            else {
                return Ok((moved, true));
            };
            match io.read(free)? {
                0 => return Ok((moved, false)),
                n => {
                    self.received += n;
                    moved = true;
                }
            }
        }
    }

    /// Hands every complete frame received to `on_frame`, then keeps the unfinished rest.
    /// `Err` when the stream carries a frame this connection will not take (too large or
    /// malformed): it can no longer be trusted.
    pub fn frames(
        &mut self,
        decoder: &crate::wire::FrameDecoder,
        mut on_frame: impl FnMut(&[u8]),
    ) -> Result<bool, Broken> {
        use crate::wire::FrameStatus;
        let mut used = 0;
        let mut any = false;
        loop {
            let received = self.rx.as_ref().get(used..self.received).unwrap_or(&[]);
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
            self.rx.as_mut().copy_within(used..self.received, 0);
            self.received -= used;
        }
        Ok(any)
    }
}
