//! The wall clock and the producer-state lifetime (`producer_state_ttl`): Kafka forgets a
//! producer `producer.id.expiration.ms` after the newest record timestamp it appended from it,
//! and a resend after that is appended again. The client refuses records already too old,
//! tells the sequencer when a partition's state may be forgotten, and hands it the batches
//! whose records are past the lifetime.

use super::Client;
use super::accumulator::SlotUse;
use crate::capacity::Capacities;
use crate::state::BatchState;
use crate::time::Instant;
use crate::wire;

impl<S, C: Capacities> Client<S, C>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
{
    /// Tells the client the wall clock: `unix_ms` (milliseconds since the Unix epoch) is the
    /// time at `now`. Record timestamps are judged against it (`producer_state_ttl`): the
    /// core has no clock of its own, and a device that never learns the time gets no check
    /// (see the README on gateways without a clock). Call it whenever the time is known
    /// afresh (a host at every poll, a firmware after SNTP).
    pub fn set_wall_clock(&mut self, now: Instant, unix_ms: i64) {
        let since_zero = i64::try_from(now.as_micros() / 1000).unwrap_or(i64::MAX);
        self.wall_at_zero_ms = Some(unix_ms.saturating_sub(since_zero));
    }

    /// The wall clock at `now`, in ms since the Unix epoch, when known.
    pub fn wall_clock_ms(&self, now: Instant) -> Option<i64> {
        let since_zero = i64::try_from(now.as_micros() / 1000).unwrap_or(i64::MAX);
        self.wall_at_zero_ms.map(|z| z.saturating_add(since_zero))
    }

    /// Records timestamped before this (ms since the Unix epoch) are past the
    /// producer-state lifetime at `now`; `None` without a wall clock or a lifetime.
    pub(super) fn stale_before(&self, now: Instant) -> Option<i64> {
        let ttl = i64::try_from(self.producer_state_ttl?.as_millis()).unwrap_or(i64::MAX);
        Some(self.wall_clock_ms(now)?.saturating_sub(ttl))
    }

    /// The max timestamp in the header of the batch stored in `slot`.
    pub(super) fn batch_max_timestamp(&self, slot: usize) -> Option<i64> {
        max_timestamp(
            self.storage.as_ref(),
            self.batch_bytes,
            self.reserve,
            &self.slots,
            slot,
        )
    }

    /// Whether the broker may have forgotten the producer's state on partition `index`
    /// before a request sent now is processed: Kafka keeps it `producer.id.expiration.ms`
    /// after the max timestamp of the last batch it appended there, and `producer_state_ttl`
    /// is the part of that the client counts on. So: the last success is a TTL old, or the
    /// records of it or of a batch in flight (one of which may be the last appended) are
    /// older than the TTL by the wall clock. Without a TTL, never.
    pub(super) fn state_may_be_forgotten(&mut self, index: usize, now: Instant) -> bool {
        let (Some(ttl), Some(&Some((at, newest)))) =
            (self.producer_state_ttl, self.acked_at.get(index))
        else {
            return false;
        };
        if now.saturating_duration_since(at) >= ttl {
            return true;
        }
        let Some(limit) = self.stale_before(now) else {
            return false;
        };
        if newest < limit {
            return true;
        }
        (0..self.slots.len()).any(|slot| {
            self.sequencer.held(slot).is_some_and(|held| {
                usize::from(held.partition.0) == index
                    && matches!(held.state, BatchState::InFlight { .. })
            }) && self.batch_max_timestamp(slot).is_some_and(|ts| ts < limit)
        })
    }

    /// Hands the sequencer every batch waiting for a resend whose records are past the
    /// producer-state lifetime (its newest record timestamp, from the stored batch header,
    /// against the wall clock): the sequencer decides what that means for it.
    pub(super) fn expire_stale_batches(&mut self, now: Instant) {
        let Some(limit) = self.stale_before(now) else {
            return;
        };
        for slot in 0..self.slots.len() {
            let Some(held) = self.sequencer.held(slot) else {
                continue;
            };
            if !matches!(
                held.state,
                BatchState::Stamped {
                    maybe_written: true,
                    ..
                }
            ) {
                continue;
            }
            if self.batch_max_timestamp(slot).is_some_and(|ts| ts < limit) {
                warn!(
                    "batch in slot {:?}: records past the producer-state lifetime",
                    slot
                );
                let _ = self.sequencer.expire_producer_state(held.token, now);
            }
        }
    }
}

/// The max timestamp in the header of the batch stored in `slot` of `storage`: a function of
/// the tables it reads, so a caller holding other parts of the client may use it.
pub(super) fn max_timestamp(
    storage: &[u8],
    batch_bytes: usize,
    reserve: usize,
    slots: &[SlotUse],
    slot: usize,
) -> Option<i64> {
    let SlotUse::Sealed { len } = *slots.get(slot)? else {
        return None;
    };
    let start = slot.checked_mul(batch_bytes)?.checked_add(reserve)?;
    storage
        .get(start..start.checked_add(len)?)
        .and_then(|bytes| wire::header_of(bytes).ok())
        .map(|h| h.max_timestamp)
}
