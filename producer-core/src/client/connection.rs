//! One broker connection as the client sees it: where it goes, how far its handshake got, and
//! the requests out on it, in order (Kafka answers in request order on a connection).

use heapless::{Deque, Vec};

use super::config::MAX_REQUESTS_PER_CONNECTION;
use crate::state::BatchToken;
use crate::time::Instant;
use crate::wire::{NegotiatedVersions, RequestBody};

/// A connection slot, `0..BROKERS`. The transport keeps one socket per id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ConnId(pub u8);

/// Where a connection goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Target {
    /// The n-th bootstrap address: used until metadata names the brokers.
    Bootstrap(u8),
    /// The broker with this node id.
    Node(i32),
}

/// A connection's lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConnState {
    /// No socket; may connect from `retry_at`.
    Idle {
        /// Earliest reconnect.
        retry_at: Instant,
    },
    /// The transport is connecting.
    Connecting,
    /// Connected; ApiVersions at `version` is to be sent (`sent` false) or out.
    Handshake {
        /// The ApiVersions version asked (3, or 0 after a broker refused 3).
        version: i16,
        /// The request is out.
        sent: bool,
    },
    /// Versions negotiated: requests may flow.
    Ready,
}

/// What a request out on the connection was.
#[derive(Clone, Debug)]
pub(crate) enum PendingKind<const BATCHES: usize> {
    ApiVersions,
    Metadata,
    InitProducerId,
    /// The batches it carried, with their ledger partition index.
    Produce(Vec<(BatchToken, u16), BATCHES>),
}

#[derive(Clone, Debug)]
pub(crate) struct Pending<const BATCHES: usize> {
    pub correlation: i32,
    pub version: i16,
    pub sent_at: Instant,
    pub kind: PendingKind<BATCHES>,
}

#[derive(Debug)]
pub(crate) struct Connection<const BATCHES: usize> {
    pub target: Option<Target>,
    /// When `target` was given this slot: the start of its turn, when leaders outnumber
    /// the slots.
    pub assigned_at: Instant,
    /// Its turn is over: no new request goes out on it, and once the requests out are
    /// answered it is closed and the slot handed to a leader that waits.
    pub draining: bool,
    pub state: ConnState,
    pub versions: NegotiatedVersions,
    pub pending: Deque<Pending<BATCHES>, MAX_REQUESTS_PER_CONNECTION>,
    pub next_correlation: i32,
}

impl<const BATCHES: usize> Connection<BATCHES> {
    pub fn new() -> Self {
        Connection {
            target: None,
            assigned_at: Instant::ZERO,
            draining: false,
            state: ConnState::Idle {
                retry_at: Instant::ZERO,
            },
            versions: NegotiatedVersions::default(),
            pending: Deque::new(),
            next_correlation: 0,
        }
    }

    pub fn take_correlation(&mut self) -> i32 {
        let c = self.next_correlation;
        self.next_correlation = self.next_correlation.wrapping_add(1) & i32::MAX;
        c
    }

    /// Encodes `body` as the next request on this connection into `buf` and records it as
    /// out; `None` (and nothing recorded) when it does not fit `buf` or the pipeline is full.
    pub fn send_request<'a, B: RequestBody<'a>>(
        &mut self,
        client_id: &str,
        buf: &mut [u8],
        version: i16,
        body: &B,
        now: Instant,
        kind: PendingKind<BATCHES>,
    ) -> Option<usize> {
        if self.pending.is_full() {
            return None;
        }
        let correlation = self.next_correlation;
        let n =
            crate::wire::encode_request(buf, version, correlation, Some(client_id), body).ok()?;
        self.take_correlation();
        self.pending
            .push_back(Pending {
                correlation,
                version,
                sent_at: now,
                kind,
            })
            .ok()?;
        Some(n)
    }

    pub fn has_room(&self) -> bool {
        !self.pending.is_full()
    }

    /// When the oldest unanswered request times out.
    pub fn deadline(&self, timeout: core::time::Duration) -> Option<Instant> {
        self.pending.front().map(|p| p.sent_at + timeout)
    }
}
