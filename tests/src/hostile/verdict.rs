//! What a hostile case expects of the outcomes, and the bounds on the broker's counts every
//! case shares, whichever transport ran it.

use std::time::Duration;

use super::answers::Api;
use super::bounds::{reconnects_within, retries_within};
use super::broker::{Counts, Misbehaviour};
use super::ledger::Tally;

/// How late after its deadline a record's outcome may come: the tool returns within about
/// 100 ms of its last outcome; the rest is process start and scheduling on a loaded machine.
pub const OUTCOME_SLACK: Duration = Duration::from_millis(1000);

/// Broker addresses a producer of these cases knows: its bootstrap entry and node 1 (the same
/// listener, but a distinct broker to the client, each with its own backoff).
pub const ADDRESSES: u64 = 2;

/// Which outcomes a case demands (on top of every outcome being true, which is always
/// checked against the broker's ledger).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// Every record persisted: the misbehaviour is one a producer can work through.
    AllPersisted,
    /// Every record not persisted: nothing could be sent (no usable connection, metadata or
    /// producer id), so "not persisted" is what is true and known.
    NotSent,
    /// No record persisted: nothing was acknowledged intact; either other outcome may be
    /// true (the ledger says which).
    NonePersisted,
    /// Any true outcome (timing decides, e.g. a dribbling broker).
    Any,
}

impl Expect {
    /// Checks `tally` of `n` records.
    pub fn check(self, tally: Tally, n: usize) -> Result<(), String> {
        let ok = match self {
            Expect::AllPersisted => tally.persisted == n,
            Expect::NotSent => tally.not_persisted == n,
            Expect::NonePersisted => tally.persisted == 0,
            Expect::Any => true,
        };
        if ok {
            Ok(())
        } else {
            Err(format!("expected {self:?} of {n} records, got {tally:?}"))
        }
    }
}

/// Whether `m` spoils the first exchange of every connection (ApiVersions), so that no
/// connection ever succeeds: then reconnects alone pace the producer.
pub fn spoils_handshake(m: Option<Misbehaviour>) -> bool {
    match m {
        None => true,
        Some(Misbehaviour::NeverReads | Misbehaviour::CloseOnAccept | Misbehaviour::Http) => true,
        Some(
            Misbehaviour::FrameLength { api, .. }
            | Misbehaviour::Truncated { api }
            | Misbehaviour::GarbageAfterHeader { api }
            | Misbehaviour::UnknownCorrelation { api },
        ) => api == Api::ApiVersions,
        Some(_) => false,
    }
}

/// The bounds for a run of `window`, given what the broker saw.
///
/// - Connections (accepted, and `connect()` calls, refused ones included):
///   `ADDRESSES × R(T) + [handshake answered] × (batches + 2) × S(T) + 2`, where `R` is
///   [`reconnects_within`] (100 ms doubling to 10 s) and `S` is [`retries_within`] (100 ms
///   doubling to 1 s), both with jitter floors of 0.75. Per broker address the reconnects
///   follow the reconnect backoff. Where ApiVersions is answered intact, a producer may
///   count the connection a success and start its reconnect backoff again; then each retry
///   stream can cost a connection per attempt, and each is paced by the retry backoff: every
///   batch's resends, the metadata refreshes and the producer id requests. 2: the healthy
///   pair (bootstrap, then the leader).
/// - Produce attempts per batch (by content): `S(T) + 1`.
/// - InitProducerId requests: `1 + (batches + 1) × S(T) + 1`: the first, one per fence (a
///   fence follows a batch's failed attempt, so fences are paced like the batches'
///   resends), and retries of the request itself.
/// - Epoch bumps: `batches × S(T) + 1`.
/// - Metadata requests: `1 + S(T) + connections bound`: the first, refreshes paced by the
///   retry backoff, and at most one per connection.
#[derive(Clone, Copy, Debug)]
pub struct Bounds {
    /// Connections.
    pub connections: u64,
    /// Produce attempts of any one batch.
    pub attempts_per_batch: u64,
    /// InitProducerId requests.
    pub init_producer_id: u64,
    /// Epoch bumps.
    pub epoch_bumps: u64,
    /// Metadata requests.
    pub metadata: u64,
}

impl Bounds {
    /// The bounds for a run of `window` against `misbehaviour` (`None`: nothing listens).
    pub fn new(window: Duration, misbehaviour: Option<Misbehaviour>, counts: &Counts) -> Bounds {
        let (r, s) = (reconnects_within(window), retries_within(window));
        let batches = counts.batches();
        let streams = if spoils_handshake(misbehaviour) {
            0
        } else {
            batches + 2
        };
        let connections = ADDRESSES * r + streams * s + 2;
        Bounds {
            connections,
            attempts_per_batch: s + 1,
            init_producer_id: 1 + (batches + 1) * s + 1,
            epoch_bumps: batches * s + 1,
            metadata: 1 + s + connections,
        }
    }

    /// Checks the broker's counts (and `connects`, the connection attempts the kernel saw,
    /// when known) against the bounds.
    pub fn check(&self, counts: &Counts, connects: Option<u64>) -> Vec<String> {
        let mut failed = Vec::new();
        let mut within = |what: &str, seen: u64, bound: u64| {
            if seen > bound {
                failed.push(format!("{what}: {seen} > bound {bound}"));
            }
        };
        within("connections accepted", counts.connections, self.connections);
        if let Some(c) = connects {
            within("connect() calls", c, self.connections);
        }
        within(
            "produce attempts of one batch",
            counts.max_attempts(),
            self.attempts_per_batch,
        );
        within(
            "InitProducerId requests",
            counts.requests_of(Api::InitProducerId),
            self.init_producer_id,
        );
        within("epoch bumps", counts.epoch_bumps, self.epoch_bumps);
        within(
            "Metadata requests",
            counts.requests_of(Api::Metadata),
            self.metadata,
        );
        within("undecodable requests", counts.undecodable, 0);
        failed
    }
}
