//! Time: deadlines, cancels, the end of the broker's memory of the producer, and when to
//! poll next.

use crate::capacity::Capacities;
use crate::state::batch::{BatchState, BatchToken, PartitionIndex};
use crate::state::eligibility::{BeforeNextSend, CancelDecision, cancel_decision, expiry_decision};
use crate::state::identity::{FenceReason, Identity};
use crate::time::Instant;

use super::{Sequencer, TokenError};

impl<C: Capacities> Sequencer<C> {
    /// Treats `token`'s deadline as reached now (the caller gave up on it) and returns what
    /// that did: see [`cancel_decision`].
    pub fn cancel(
        &mut self,
        token: BatchToken,
        now: Instant,
    ) -> Result<CancelDecision, TokenError> {
        let policy = self.config.unknown_outcome;
        let batch = self.batch_mut(token).ok_or(TokenError::Unknown)?;
        batch.deadline = batch.deadline.min(now);
        let decision = cancel_decision(&batch.state, policy);
        self.apply_cancel(token.slot(), decision);
        self.try_complete_fence(now);
        Ok(decision)
    }

    /// The broker may have forgotten the producer's state for `token`'s records (they are
    /// older than the producer-state lifetime by the wall clock; the client judges that):
    /// applies [`expiry_decision`] and returns what it did.
    pub fn expire_producer_state(
        &mut self,
        token: BatchToken,
        now: Instant,
    ) -> Result<CancelDecision, TokenError> {
        let batch = self.batch(token).ok_or(TokenError::Unknown)?;
        let decision = expiry_decision(&batch.state);
        self.apply_cancel(token.slot(), decision);
        self.try_complete_fence(now);
        Ok(decision)
    }

    /// The broker may no longer hold the producer's state for `partition` (Kafka forgets it
    /// `producer.id.expiration.ms` after the max timestamp of the last batch it appended; the
    /// client judges that against its wall clock and `producer_state_ttl`). A broker without
    /// state appends a batch at any sequence, so of two pipelined batches the second could be
    /// appended while the first was refused before its append, and the first would land
    /// after it: the partition goes back to one request in flight until its next success,
    /// as under a new identity.
    pub fn producer_state_may_be_forgotten(&mut self, partition: PartitionIndex) {
        if let Some(ledger) = self.partitions.get_mut(usize::from(partition.0)) {
            ledger.acked_this_epoch = false;
        }
    }

    /// Applies every deadline that has passed by `now`, completes a fence whose epoch has
    /// drained, and returns the next instant, after `now`, at which the sequencer needs to be
    /// polled (`None` when only an answer or a new batch can change anything).
    pub fn poll(&mut self, now: Instant) -> Option<Instant> {
        self.expire(now);
        self.next_wakeup(now)
    }

    /// Applies every deadline that has passed by `now`, and completes a drained fence.
    pub(super) fn expire(&mut self, now: Instant) {
        self.note_restart(now);
        for index in 0..self.slots.len() {
            let Some(batch) = self.slots[index].batch else {
                continue;
            };
            if batch.deadline <= now {
                let decision = cancel_decision(&batch.state, self.config.unknown_outcome);
                self.apply_cancel(index, decision);
            }
        }
        self.end_resume();
        self.try_complete_fence(now);
    }

    pub(super) fn apply_cancel(&mut self, index: usize, decision: CancelDecision) {
        let CancelDecision::Fail { outcome, first } = decision else {
            return;
        };
        if self.slots[index].batch.is_none() {
            return;
        }
        self.decide(index, outcome);
        if first == BeforeNextSend::Fence {
            self.start_fence(FenceReason::DeadlineAfterStamp, false);
        }
    }

    /// The earliest instant after `now` at which time alone changes something: a deadline, the
    /// end of a backoff. Instants already reached are the client's to act on (a resend or an
    /// InitProducerId it can make now), not a reason to poll again.
    pub(super) fn next_wakeup(&self, now: Instant) -> Option<Instant> {
        let policy = self.config.unknown_outcome;
        // A deadline matters where the cancel table fails the batch at it (under Wait, only
        // for batches never sent). Backoffs end on their own and may allow a resend.
        let batch_times = self.batches().flat_map(|b| {
            let deadline = matches!(
                cancel_decision(&b.state, policy),
                CancelDecision::Fail { .. }
            )
            .then_some(b.deadline);
            let backoff = match b.state {
                BatchState::Stamped { retry_at, .. } => Some(retry_at),
                _ => None,
            };
            deadline.into_iter().chain(backoff)
        });
        let identity_time = match self.identity {
            Identity::NoId { retry_at } => Some(retry_at),
            _ => None,
        };
        let resume = Some(self.pacing.resume_sending_at());
        batch_times
            .chain(identity_time)
            .chain(resume)
            .filter(|&t| t > now)
            .min()
    }
}
