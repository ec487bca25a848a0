//! Memory for one broker connection, provided by the caller (a `static` on targets).

/// The bytes one broker connection needs, all caller-provided so the producer never
/// allocates: the TCP socket's receive and transmit windows, a frame buffer that reassembles
/// one response, and a request buffer that holds one request until the socket has taken it.
///
/// `RX` bounds the largest response frame the connection accepts (a larger one closes the
/// connection: the client retries elsewhere or reports the batches) and is the socket's
/// receive window. `TX` bounds the largest request (a produce request carries at most as
/// many batches as fit) and is the socket's send window. `TX` must exceed `batch_bytes` by
/// the request overhead (1 KiB is ample) or no batch can ever be sent.
pub struct ConnectionBuffers<const RX: usize, const TX: usize> {
    pub(crate) socket_rx: [u8; RX],
    pub(crate) socket_tx: [u8; TX],
    pub(crate) frame: [u8; RX],
    pub(crate) request: [u8; TX],
}

impl<const RX: usize, const TX: usize> ConnectionBuffers<RX, TX> {
    /// Zeroed buffers; `const` so they can initialise a `static` without copying through
    /// the stack.
    pub const fn new() -> Self {
        ConnectionBuffers {
            socket_rx: [0; RX],
            socket_tx: [0; TX],
            frame: [0; RX],
            request: [0; TX],
        }
    }
}

impl<const RX: usize, const TX: usize> Default for ConnectionBuffers<RX, TX> {
    fn default() -> Self {
        Self::new()
    }
}
