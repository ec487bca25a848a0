//! The identity's life: producer ids, fences (drain, then bump or a new id), fatal stop.

use crate::capacity::Capacities;
use crate::error_code::ErrorCode;
use crate::state::batch::BatchState;
use crate::state::classify::{InitProducerIdNext, classify_init_producer_id};
use crate::state::decide::{StampEnd, fatal_decision, stamp_ends};
use crate::state::identity::{FatalReason, FenceReason, Identity, ProducerEpoch, ProducerId};
use crate::time::Instant;

use super::Sequencer;

impl<C: Capacities> Sequencer<C> {
    /// Whether to send an InitProducerId request now. When this returns true the sequencer
    /// counts the request as out; answer it with [`Sequencer::on_init_producer_id`] (also
    /// when the connection is lost, with `Err(None)`).
    pub fn poll_init_producer_id(&mut self, now: Instant) -> bool {
        self.note_restart(now);
        match self.identity {
            Identity::NoId { retry_at } if retry_at <= now => {
                self.identity = Identity::RequestingId;
                true
            }
            _ => false,
        }
    }

    /// Takes the answer to InitProducerId: `Ok` with the granted id and epoch, or `Err` with
    /// the error code (`None` when no answer came). A malformed grant (negative id or epoch) is
    /// treated as a failed request.
    pub fn on_init_producer_id(
        &mut self,
        now: Instant,
        answer: Result<(ProducerId, ProducerEpoch), Option<ErrorCode>>,
    ) {
        if self.identity != Identity::RequestingId {
            return;
        }
        let error = match answer {
            Ok((id, epoch)) if id.0 >= 0 && epoch.0 >= 0 => {
                info!("producer id {:?} epoch {:?}", id.0, epoch.0);
                self.identity = Identity::Ready { id, epoch };
                self.counters.producer_ids += 1;
                self.pacing.init_granted();
                for ledger in &mut self.partitions {
                    ledger.reset();
                }
                return;
            }
            Ok(_) => None,
            Err(error) => error,
        };
        match classify_init_producer_id(error) {
            InitProducerIdNext::Retry => {
                self.identity = Identity::NoId {
                    retry_at: self.pacing.init_failed(now),
                };
            }
            InitProducerIdNext::Fatal => {
                let code = error.unwrap_or(ErrorCode::UNKNOWN_SERVER_ERROR);
                self.become_fatal(FatalReason::Broker(code));
            }
        }
    }

    pub(super) fn start_fence(&mut self, reason: FenceReason, new_id: bool) {
        let refused = matches!(reason, FenceReason::Broker(_));
        match self.identity {
            Identity::Ready { id, epoch } => {
                if refused {
                    self.pacing.refused();
                }
                info!("fencing epoch {:?}: {:?}", epoch.0, reason);
                self.counters.fences += 1;
                self.identity = Identity::Fencing {
                    id,
                    epoch,
                    reason,
                    new_id,
                };
            }
            Identity::Fencing {
                id,
                epoch,
                reason: first,
                new_id: already,
            } => {
                if refused {
                    self.pacing.refused();
                }
                self.identity = Identity::Fencing {
                    id,
                    epoch,
                    reason: first,
                    new_id: already || new_id,
                };
            }
            // Without an identity there is no epoch to fence; a fatal producer sends nothing.
            Identity::NoId { .. } | Identity::RequestingId | Identity::Fatal(_) => {}
        }
    }

    /// Bumps the epoch (or drops the id) once no request of the old epoch is out: then nothing
    /// stamped with it can be appended after a request of the new epoch, and resetting the
    /// sequences is safe.
    pub(super) fn try_complete_fence(&mut self, now: Instant) {
        self.note_restart(now);
        let Identity::Fencing {
            id,
            epoch,
            reason,
            new_id,
        } = self.identity
        else {
            return;
        };
        if self.batches().any(|b| b.state.is_outstanding()) {
            return;
        }
        for index in 0..self.slots.len() {
            let Some(batch) = self.slots[index].batch.as_mut() else {
                continue;
            };
            let BatchState::Stamped { maybe_written, .. } = batch.state else {
                continue;
            };
            match stamp_ends(maybe_written, StampEnd::Fenced(reason)) {
                // Nothing is outstanding by now, so the outcome is final at once.
                Some(outcome) => self.decide(index, outcome),
                // Refused by every attempt: nothing of it is in the log, so it may take a
                // fresh sequence under the new epoch.
                None => {
                    batch.state = BatchState::Buffered;
                    batch.attempts = 0;
                }
            }
        }
        for ledger in &mut self.partitions {
            ledger.reset();
        }
        // A broker that refuses every batch must not get a bump and a resend per round trip.
        let (resume, paced) = self.pacing.fence_completed(now);
        if paced {
            self.counters.paced_fences += 1;
        }
        self.identity = match epoch.bumped() {
            Some(bumped) if !new_id => {
                info!("epoch bumped to {:?}", bumped.0);
                self.counters.epoch_bumps += 1;
                Identity::Ready { id, epoch: bumped }
            }
            // A new producer id does not fence stragglers of the old one on the broker: give
            // any request abandoned on a closed connection time to be processed or dropped.
            _ => Identity::NoId {
                retry_at: self
                    .last_abandoned
                    .map_or(now, |at| {
                        (at + self.config.abandoned_request_grace).max(now)
                    })
                    .max(resume),
            },
        };
    }

    /// Stops the producer for good with `reason` (the client's, such as an authentication
    /// failure): every batch it holds that no request carrying it is out for is decided now
    /// ([`fatal_decision`]), and nothing more is stamped or sent. A producer already stopped
    /// keeps its first reason.
    pub fn stop(&mut self, reason: FatalReason) {
        if !matches!(self.identity, Identity::Fatal(_)) {
            self.become_fatal(reason);
        }
    }

    pub(super) fn become_fatal(&mut self, reason: FatalReason) {
        warn!("producer fatal: {:?}", reason);
        self.identity = Identity::Fatal(reason);
        for index in 0..self.slots.len() {
            let Some(batch) = self.slots[index].batch.as_ref() else {
                continue;
            };
            if let Some(outcome) = fatal_decision(&batch.state, reason) {
                self.decide(index, outcome);
            }
        }
    }
}
