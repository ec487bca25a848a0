//! One broker connection as the client sees it: where it goes, how far its handshake got, and
//! the requests out on it, in order (Kafka answers in request order on a connection).

use heapless::Deque;

use super::config::MAX_REQUESTS_PER_CONNECTION;
use crate::capacity::{BatchList, Capacities, Table};
#[cfg(feature = "sasl")]
use crate::sasl::Exchange;
use crate::state::BatchToken;
use crate::time::Instant;
use crate::wire::{NegotiatedVersions, RequestBody};

/// A connection slot, below the broker capacity. The transport keeps one socket per id.
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
    /// Versions negotiated, SASL configured: the connection authenticates (SaslHandshake,
    /// then SaslAuthenticate rounds) before any other request, and again before its session
    /// lifetime ends (KIP-368). Feature `sasl` only.
    #[cfg(feature = "sasl")]
    Authenticating,
    /// Versions negotiated (and authenticated): requests may flow.
    Ready,
}

/// What a request out on the connection was.
#[derive(Clone, Copy, Debug)]
pub(crate) enum PendingKind {
    ApiVersions,
    Metadata,
    InitProducerId,
    /// It carried this many batches: the first as many of the connection's `flight`.
    Produce(usize),
    #[cfg(feature = "sasl")]
    SaslHandshake,
    #[cfg(feature = "sasl")]
    SaslAuthenticate,
}

impl PendingKind {
    /// Part of making the connection usable (versions, authentication), not of its work.
    pub fn is_handshake(self) -> bool {
        match self {
            PendingKind::ApiVersions => true,
            #[cfg(feature = "sasl")]
            PendingKind::SaslHandshake | PendingKind::SaslAuthenticate => true,
            PendingKind::Metadata | PendingKind::InitProducerId | PendingKind::Produce(_) => false,
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct Pending {
    pub correlation: i32,
    pub version: i16,
    pub sent_at: Instant,
    pub kind: PendingKind,
}

#[derive(Debug)]
pub(crate) struct Connection<C: Capacities> {
    pub target: Option<Target>,
    /// When `target` was given this slot: the start of its turn, when leaders outnumber
    /// the slots.
    pub assigned_at: Instant,
    /// Its turn is over: no new request goes out on it, and once the requests out are
    /// answered it is closed and the slot handed to a leader that waits.
    pub draining: bool,
    pub state: ConnState,
    pub versions: NegotiatedVersions,
    pub pending: Deque<Pending, MAX_REQUESTS_PER_CONNECTION>,
    /// The batches of the Produce requests out, in request order, each with its ledger
    /// partition index: a batch is in one request at a time, so `batches` entries hold all.
    pub flight: BatchList<C, (BatchToken, u16)>,
    pub next_correlation: i32,
    /// Where its SASL authentication is (`None` while not authenticating).
    #[cfg(feature = "sasl")]
    pub auth: Option<AuthPhase>,
    /// When it stops taking new requests, to authenticate again before the broker's session
    /// lifetime ends (KIP-368); `None` without a lifetime.
    #[cfg(feature = "sasl")]
    pub reauth_at: Option<Instant>,
    /// Whether that is in place, or (a session too short for Kafka to allow it, see
    /// `client/auth.rs`) by handing the connection on to a new one.
    #[cfg(feature = "sasl")]
    pub reauth_in_place: bool,
    /// When its last re-authentication began (`None`: it has only authenticated once).
    #[cfg(feature = "sasl")]
    pub reauth_began_at: Option<Instant>,
}

#[cfg(feature = "sasl")]
/// The longest SASL message the client answers a broker's with (a SCRAM client-final: about
/// 170 bytes with Kafka's nonces), kept on the connection until it is sent.
pub(crate) const AUTH_REPLY_MAX: usize = 256;

#[cfg(feature = "sasl")]
/// One connection's SASL authentication in progress. Its size is the connection's for its
/// whole life (no heap to box the largest variant into), and bounded.
#[derive(Clone)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum AuthPhase {
    /// SaslHandshake to send (`sent` false) or out.
    Handshake { sent: bool },
    /// The mechanism is enabled: the first SaslAuthenticate is to be sent.
    Start,
    /// A SaslAuthenticate is out.
    Waiting(Exchange),
    /// The next SaslAuthenticate's auth bytes, to send.
    Reply(Exchange, heapless::Vec<u8, AUTH_REPLY_MAX>),
    /// The broker's SCRAM server-first message, kept while the salted password it calls for
    /// is derived in steps (`client/auth.rs`, `advance_derivation`); answered once it is.
    #[cfg(feature = "sasl-scram")]
    Deriving(Exchange, heapless::Vec<u8, AUTH_REPLY_MAX>),
}

#[cfg(feature = "sasl")]
impl core::fmt::Debug for AuthPhase {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            AuthPhase::Handshake { sent } => write!(f, "Handshake {{ sent: {sent} }}"),
            AuthPhase::Start => f.write_str("Start"),
            AuthPhase::Waiting(e) => write!(f, "Waiting({e:?})"),
            // The message is a proof derived from the password: its length only.
            AuthPhase::Reply(e, m) => write!(f, "Reply({e:?}, {} bytes)", m.len()),
            #[cfg(feature = "sasl-scram")]
            AuthPhase::Deriving(e, _) => write!(f, "Deriving({e:?})"),
        }
    }
}

impl<C: Capacities> Connection<C> {
    /// A connection slot with room for the `batches` a producer holds.
    pub fn new(batches: usize) -> Self {
        Connection {
            target: None,
            assigned_at: Instant::ZERO,
            draining: false,
            state: ConnState::Idle {
                retry_at: Instant::ZERO,
            },
            versions: NegotiatedVersions::default(),
            pending: Deque::new(),
            flight: Table::new(batches, (BatchToken::FILL, 0)),
            next_correlation: 0,
            #[cfg(feature = "sasl")]
            auth: None,
            #[cfg(feature = "sasl")]
            reauth_at: None,
            #[cfg(feature = "sasl")]
            reauth_in_place: true,
            #[cfg(feature = "sasl")]
            reauth_began_at: None,
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
        kind: PendingKind,
    ) -> Option<usize> {
        if self.pending.is_full() {
            return None;
        }
        let n =
            crate::wire::encode_request(buf, version, self.next_correlation, Some(client_id), body)
                .ok()?;
        self.record_request(version, now, kind).then_some(n)
    }

    /// The first `count` batches of `flight`, the oldest request's, leave it.
    pub fn forget_flight(&mut self, count: usize) {
        let count = count.min(self.flight.len());
        self.flight.copy_within(count.., 0);
        let left = self.flight.len() - count;
        self.flight.truncate(left);
    }

    /// Records a request encoded (by the caller) with the next correlation id as out; false
    /// (and nothing recorded) when the pipeline is full.
    pub fn record_request(&mut self, version: i16, now: Instant, kind: PendingKind) -> bool {
        let correlation = self.next_correlation;
        let pending = Pending {
            correlation,
            version,
            sent_at: now,
            kind,
        };
        if self.pending.push_back(pending).is_err() {
            return false;
        }
        self.take_correlation();
        true
    }

    pub fn has_room(&self) -> bool {
        !self.pending.is_full()
    }

    /// When the oldest unanswered request times out.
    pub fn deadline(&self, timeout: core::time::Duration) -> Option<Instant> {
        self.pending.front().map(|p| p.sent_at + timeout)
    }
}
