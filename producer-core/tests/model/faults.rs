//! Counts of what the Kafka flavour does that older brokers (and tansu) do not, summed over a
//! sweep and printed with its summary, so a sweep shows each was exercised.

use std::fmt;
use std::ops::AddAssign;
use std::time::Duration;

#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// Produce requests whose acks wait was long (slow in-sync replicas), and those of them
    /// that ran into the produce timeout (7 after the append).
    pub slow_acks: u64,
    pub acks_timeouts: u64,
    /// Leadership moves scheduled inside an appended batch's acks wait, and the appended (or
    /// deduplicated) entries answered 6 NOT_LEADER_OR_FOLLOWER because of one.
    pub moves_in_wait: u64,
    pub not_leader_after_append: u64,
    /// Resends of a batch answered 6 after its append, deduplicated by the new leader (NONE
    /// with the original offset).
    pub dedup_after_not_leader: u64,
    /// Batches appended with a non-zero sequence for a producer the partition held no state
    /// for (Kafka 2.5+ accepts any sequence there).
    pub unknown_producer_appends: u64,
    /// Producer states dropped by the periodic expiry check.
    pub expired_states: u64,
    /// Restarts after which the broker led its partitions again from its snapshot (a clean
    /// restart), the cached batches that cost, and resends refused 45 because their batch was
    /// forgotten.
    pub snapshot_restarts: u64,
    pub snapshot_forgotten: u64,
    pub refused_after_snapshot: u64,
    /// Requests processed after their connection closed, the longest after the close, and
    /// produce entries among them refused 47 (the new epoch had written first).
    pub stragglers: u64,
    pub straggler_max_delay: Duration,
    pub stragglers_fenced: u64,
    /// The longest a request took from its send to the broker processing it (what
    /// `clock::MARGIN` must cover).
    pub longest_to_process: Duration,
    /// Records the client refused as older than its producer-state lifetime
    /// (`SendError::StaleTimestamp`), and records given up as
    /// `PossiblyPersisted(ProducerStateExpired)`.
    pub stale_refused: u64,
    pub state_expired_outcomes: u64,
    /// In a hostile stretch (`net::Hostile`, `Cluster::refuse_45`): connections refused,
    /// connections closed at once, batches answered 45 instead of appended.
    pub hostile_refused: u64,
    pub hostile_closed: u64,
    pub hostile_45: u64,
}

impl AddAssign for Faults {
    fn add_assign(&mut self, t: Faults) {
        self.slow_acks += t.slow_acks;
        self.acks_timeouts += t.acks_timeouts;
        self.moves_in_wait += t.moves_in_wait;
        self.not_leader_after_append += t.not_leader_after_append;
        self.dedup_after_not_leader += t.dedup_after_not_leader;
        self.unknown_producer_appends += t.unknown_producer_appends;
        self.expired_states += t.expired_states;
        self.snapshot_restarts += t.snapshot_restarts;
        self.snapshot_forgotten += t.snapshot_forgotten;
        self.refused_after_snapshot += t.refused_after_snapshot;
        self.stragglers += t.stragglers;
        self.straggler_max_delay = self.straggler_max_delay.max(t.straggler_max_delay);
        self.stragglers_fenced += t.stragglers_fenced;
        self.longest_to_process = self.longest_to_process.max(t.longest_to_process);
        self.stale_refused += t.stale_refused;
        self.state_expired_outcomes += t.state_expired_outcomes;
        self.hostile_refused += t.hostile_refused;
        self.hostile_closed += t.hostile_closed;
        self.hostile_45 += t.hostile_45;
    }
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Kafka 4: slow acks waits {} ({} timed out); leader moves in an acks wait {}, \
             answered 6 after the append {}, their resends deduplicated {}; appends from an \
             unknown producer at a non-zero sequence {}; producer states expired {}; restarts \
             leading again from a snapshot {} (batches forgotten {}, resends refused 45 {}); \
             requests processed after their connection closed {} (latest {:.1} s after, \
             refused 47 {}; longest from send to processing {:.1} s); records refused as stale {}, given up as ProducerStateExpired {}; \
             hostile stretches: connections refused {}, closed at once {}, batches answered 45 {}",
            self.slow_acks,
            self.acks_timeouts,
            self.moves_in_wait,
            self.not_leader_after_append,
            self.dedup_after_not_leader,
            self.unknown_producer_appends,
            self.expired_states,
            self.snapshot_restarts,
            self.snapshot_forgotten,
            self.refused_after_snapshot,
            self.stragglers,
            self.straggler_max_delay.as_secs_f64(),
            self.stragglers_fenced,
            self.longest_to_process.as_secs_f64(),
            self.stale_refused,
            self.state_expired_outcomes,
            self.hostile_refused,
            self.hostile_closed,
            self.hostile_45,
        )
    }
}
