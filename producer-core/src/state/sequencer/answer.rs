//! What a produce attempt's result does to its batch and to the producer.

use crate::capacity::Capacities;
use crate::error_code::ErrorCode;
use crate::state::batch::{BatchState, BatchToken};
use crate::state::classify::{
    Attempt, Classification, Fence, ProduceResult, classify, refuses_identity,
};
use crate::state::decide::answer_decision;
use crate::state::identity::{FatalReason, FenceReason, Identity, ProducerEpoch, ProducerId};
use crate::state::outcome::Outcome;
use crate::time::Instant;

use super::{Sequencer, TokenError};

impl<C: Capacities> Sequencer<C> {
    /// Takes what became of a batch's request and returns its classification, so the client
    /// can refresh metadata when it says so. Outcomes it decides are queued for
    /// [`Sequencer::poll_event`].
    pub fn on_produce_result(
        &mut self,
        token: BatchToken,
        now: Instant,
        result: ProduceResult,
    ) -> Result<Classification, TokenError> {
        let batch = *self.batch(token).ok_or(TokenError::Unknown)?;
        self.note_restart(now);
        let index = token.slot();
        let class = classify(result);
        if result == ProduceResult::LostAfterWrite {
            self.last_abandoned = Some(now);
        }
        let code = match result {
            ProduceResult::Answered { error, .. } => error,
            _ => ErrorCode::NONE,
        };
        let partition = usize::from(batch.partition.0);
        let state = match batch.state {
            BatchState::InFlight {
                stamp,
                maybe_written,
            } => {
                debug!(
                    "batch {:?} seq {:?}: {:?} -> {:?}",
                    token.slot,
                    stamp.base_sequence.get(),
                    result,
                    class
                );
                // Sticky: an attempt that may have been appended marks the batch for good.
                let maybe_written = maybe_written || class.attempt == Attempt::MaybeAppended;
                // The producer stopped while this attempt was out: no resend will follow.
                let fatal = match self.identity {
                    Identity::Fatal(reason) => Some(reason),
                    _ => None,
                };
                let outcome = answer_decision(&class, maybe_written, code, fatal);
                if let Some(Outcome::Persisted { offset }) = outcome {
                    self.pacing.progress();
                    let ledger = &mut self.partitions[partition];
                    ledger.acked_this_epoch = true;
                    ledger.last_acked = Some((stamp.base_sequence.last_of(batch.records), offset));
                }
                match outcome {
                    Some(outcome) => {
                        self.counters.count(outcome.kind(), batch.records);
                        BatchState::Decided {
                            outcome,
                            outstanding: false,
                        }
                    }
                    None => BatchState::Stamped {
                        stamp,
                        maybe_written,
                        retry_at: self.pacing.resend_at(now, batch.attempts),
                    },
                }
            }
            // Decided at a deadline or by a fatal error while its request was out: the answer
            // only frees the slot, and may still tell the fence to get a new producer id.
            BatchState::Decided {
                outcome,
                outstanding: true,
            } => BatchState::Decided {
                outcome,
                outstanding: false,
            },
            _ => return Err(TokenError::NotInFlight),
        };
        if let Some(b) = self.slots[index].batch.as_mut() {
            b.state = state;
        }
        self.next_out.set(None);
        let ledger = &mut self.partitions[partition];
        ledger.in_flight = ledger.in_flight.saturating_sub(1);
        self.release_if_done(index);
        if refuses_identity(code)
            && let BatchState::InFlight { stamp, .. } = batch.state
        {
            self.never_accepted(stamp.producer_id, stamp.epoch);
        }
        let reason = FenceReason::Broker(code);
        match class.fence {
            Fence::None => {}
            Fence::BumpEpoch => self.start_fence(reason, false),
            Fence::NewProducerId => self.start_fence(reason, true),
            Fence::Fatal => self.become_fatal(FatalReason::Broker(code)),
        }
        self.end_resume();
        self.try_complete_fence(now);
        Ok(class)
    }

    /// The broker never accepted `(id, epoch)` (see [`refuses_identity`]): no batch stamped
    /// with it was appended by any attempt, whatever the restart or lost connection that made
    /// it "maybe written"; the fence may restamp them.
    pub(super) fn never_accepted(&mut self, id: ProducerId, epoch: ProducerEpoch) {
        for slot in &mut self.slots {
            let Some(batch) = slot.batch.as_mut() else {
                continue;
            };
            if let BatchState::Stamped {
                stamp,
                maybe_written,
                ..
            } = &mut batch.state
                && stamp.producer_id == id
                && stamp.epoch == epoch
            {
                *maybe_written = false;
            }
        }
    }
}
