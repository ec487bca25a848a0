//! The sequencer: the producer's idempotence state, which outlives every connection.
//!
//! It owns the identity (producer id, epoch, lifecycle), the per-partition sequence ledger and
//! every batch's state, and it is the only thing that decides outcomes. It moves no bytes and
//! reads no clock: a client feeds it `now`, answers and connection losses, and asks it what to
//! send. Its life, in calls:
//!
//! 1. [`Sequencer::poll_init_producer_id`] says when to ask for a producer id;
//!    [`Sequencer::on_init_producer_id`] takes the answer.
//! 2. [`Sequencer::enqueue`] accepts a batch (a token, a partition, a record count and a
//!    deadline); the bytes stay with the client.
//! 3. [`Sequencer::next_send`] hands out the next batch of a partition with its [`Stamp`],
//!    when the in-flight window and the identity allow.
//! 4. [`Sequencer::on_produce_result`] takes what became of the attempt (answer, or connection
//!    lost before or after writing) and applies the [classification](mod@super::classify).
//! 5. [`Sequencer::poll`] applies deadlines through [`cancel_decision`], completes fences and
//!    says when it next needs `now`; [`Sequencer::poll_event`] yields each batch's one outcome.

use super::batch::{Batch, BatchState, BatchToken, PartitionIndex, Slot, Stamp};
use super::classify::{
    Attempt, Classification, Fence, InitProducerIdNext, Next, ProduceResult, classify,
    classify_init_producer_id, refuses_identity,
};
use super::config::{Config, ConfigError};
use super::eligibility::{
    BeforeNextSend, CancelDecision, UnknownOutcome, cancel_decision, expiry_decision,
};
use super::identity::{FatalReason, FenceReason, Identity, ProducerEpoch, ProducerId};
use super::outcome::{NotPersistedReason, Outcome, PossiblyPersistedReason};
use super::pacing::Pacing;
use super::partition::PartitionLedger;
use super::stats::{Counters, PartitionCounters};
use crate::error_code::ErrorCode;
use crate::time::Instant;

/// A batch handed out for sending: put `stamp` in its header and send it to the partition's
/// leader, then report what became of it with [`Sequencer::on_produce_result`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct SendPermit {
    /// The batch.
    pub token: BatchToken,
    /// Producer id, epoch and base sequence to write into the batch header.
    pub stamp: Stamp,
    /// Records in the batch.
    pub records: u32,
    /// 1 for the first attempt under this stamp, more for resends.
    pub attempt: u16,
}

/// A batch's outcome, handed to the caller once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Delivery {
    /// The batch.
    pub token: BatchToken,
    /// Its partition.
    pub partition: PartitionIndex,
    /// Records it held.
    pub records: u32,
    /// What is true of them.
    pub outcome: Outcome,
}

/// Why a batch was not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EnqueueError {
    /// Every batch slot is taken: wait for outcomes (and drain them) before adding more. A full
    /// buffer never blocks; the caller decides whether to drop, retry later or spill.
    Full,
    /// The partition index is not below `PARTITIONS`.
    NoSuchPartition,
    /// A batch needs at least one record and at most `i32::MAX`.
    RecordCount,
    /// The producer stopped for good.
    Fatal(FatalReason),
}

/// A call that does not fit the batch's state: a client bug, never caused by network input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TokenError {
    /// No batch holds this token (any more).
    Unknown,
    /// The batch has no request out.
    NotInFlight,
    /// The batch is sealed (or already decided): no record may join it.
    NotOpen,
}

/// A held batch, as [`Sequencer::held`] shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct HeldBatch {
    /// Its token.
    pub token: BatchToken,
    /// Its partition.
    pub partition: PartitionIndex,
    /// Records it holds.
    pub records: u32,
    /// Acceptance order across the producer.
    pub order: u64,
    /// No more records may join it.
    pub sealed: bool,
    /// Where it is in its lifecycle.
    pub state: BatchState,
    /// Its outcome was handed out.
    pub delivered: bool,
}

/// What a batch read back from durable storage after a restart had reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Restored {
    /// It had no durable stamp: nothing of it can have been sent.
    Buffered,
    /// It had this stamp, so a request carrying it may have been appended: it is resent
    /// with the same stamp, under the [resumed](Sequencer::resume) identity.
    Stamped(Stamp),
    /// Its outcome was decided (and `delivered`, when only its erasure was pending).
    Decided {
        /// The outcome.
        outcome: Outcome,
        /// It was handed out already.
        delivered: bool,
    },
}

/// Why [`Sequencer::restore`] refused a batch: the stored state does not fit this sequencer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RestoreError {
    /// The slot is not below `BATCHES`, or already holds a batch.
    Slot,
    /// The partition index is not below `PARTITIONS`.
    NoSuchPartition,
    /// A batch needs at least one record and at most `i32::MAX`.
    RecordCount,
    /// A stamped batch whose identity was not [resumed](Sequencer::resume) first.
    NotResumed,
}

/// The idempotence state of one producer, for `PARTITIONS` partitions and up to `BATCHES`
/// batches held at once (buffered, in flight, or decided and not yet drained).
#[derive(Debug)]
pub struct Sequencer<const PARTITIONS: usize, const BATCHES: usize> {
    config: Config,
    identity: Identity,
    partitions: [PartitionLedger; PARTITIONS],
    slots: [Slot; BATCHES],
    next_order: u64,
    counters: Counters,
    /// When a request was last abandoned unanswered: see `Config::abandoned_request_grace`.
    last_abandoned: Option<Instant>,
    /// Delivered batches keep their slot until [`Sequencer::release`]: a client that mirrors
    /// batches in durable storage must erase them there before the slot is reused.
    retain_delivered: bool,
    /// The identity was restored after a restart: only the restored stamped batches may be
    /// sent under it (the broker's next expected sequence of the other partitions is not
    /// known), and once they are decided the identity is retired for a new producer id.
    resume_only: bool,
    /// A batch restored after a restart may have had a request out before it: every request
    /// of the previous life counts as abandoned at the first instant this one sees.
    restart_abandoned: bool,
    /// Backoffs of resends, InitProducerId retries and the sending after fences.
    pacing: Pacing,
}

impl<const PARTITIONS: usize, const BATCHES: usize> Sequencer<PARTITIONS, BATCHES> {
    /// A sequencer with no producer id yet; it asks for one on its first poll.
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        config.validate(PARTITIONS, BATCHES)?;
        Ok(Sequencer {
            config,
            identity: Identity::NoId {
                retry_at: Instant::ZERO,
            },
            partitions: [PartitionLedger::default(); PARTITIONS],
            slots: [Slot::default(); BATCHES],
            next_order: 0,
            counters: Counters::default(),
            last_abandoned: None,
            retain_delivered: false,
            resume_only: false,
            restart_abandoned: false,
            pacing: Pacing::new(&config),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Fences the broker caused, completed since a batch was last accepted: each one after
    /// the first holds the sending back for a growing backoff (see [`Config::retry_backoff`]).
    pub fn fences_without_progress(&self) -> u32 {
        self.pacing.fences_without_progress()
    }

    /// No batch is handed out before this instant: the pause after the latest fence.
    pub fn resume_sending_at(&self) -> Instant {
        self.pacing.resume_sending_at()
    }

    /// Where the producer is in its lifecycle.
    pub fn identity(&self) -> Identity {
        self.identity
    }

    /// Producer-wide counters.
    pub fn counters(&self) -> Counters {
        let mut c = self.counters;
        (c.producer_id, c.epoch) = match self.identity {
            Identity::Ready { id, epoch } | Identity::Fencing { id, epoch, .. } => {
                (Some(id), Some(epoch))
            }
            _ => (None, None),
        };
        c
    }

    /// One partition's counters, `None` for an index out of range.
    pub fn partition_counters(&self, partition: PartitionIndex) -> Option<PartitionCounters> {
        let ledger = self.partitions.get(usize::from(partition.0))?;
        let pending = self
            .batches()
            .filter(|b| b.partition == partition && !matches!(b.state, BatchState::Decided { .. }))
            .count();
        Some(PartitionCounters {
            next_sequence: ledger.next_sequence,
            acked_sequence: ledger.last_acked.map(|(s, _)| s),
            acked_offset: ledger.last_acked.and_then(|(_, o)| o),
            in_flight: ledger.in_flight,
            pending: u16::try_from(pending).unwrap_or(u16::MAX),
        })
    }

    /// The state of a held batch.
    pub fn batch_state(&self, token: BatchToken) -> Option<BatchState> {
        self.batch(token).map(|b| b.state)
    }

    /// No batch is held: everything accepted has been decided and drained.
    pub fn is_empty(&self) -> bool {
        self.slots.iter().all(|s| s.batch.is_none())
    }

    /// Every batch held has its outcome (some may wait to be drained, or for a late answer):
    /// what a flush waits for.
    pub fn is_decided(&self) -> bool {
        self.slots
            .iter()
            .filter_map(|s| s.batch.as_ref())
            .all(|b| matches!(b.state, BatchState::Decided { .. }))
    }

    /// Accepts a sealed batch of `records` records for `partition`, to be decided by
    /// `deadline`.
    pub fn enqueue(
        &mut self,
        partition: PartitionIndex,
        records: u32,
        deadline: Instant,
    ) -> Result<BatchToken, EnqueueError> {
        self.insert(partition, records, deadline, true)
    }

    /// Accepts a batch that is still filling: it is not sent before [`Sequencer::seal`], but
    /// its deadline already counts, so records lingering in an accumulator get their outcome
    /// from the same [`cancel_decision`] as every other batch.
    pub fn open(
        &mut self,
        partition: PartitionIndex,
        records: u32,
        deadline: Instant,
    ) -> Result<BatchToken, EnqueueError> {
        self.insert(partition, records, deadline, false)
    }

    /// Adds `records` records to an open batch; its deadline becomes the earliest of its
    /// records' (a batch shares one fate). Fails once it is sealed or decided (its deadline
    /// passed): the caller then opens a new batch.
    pub fn extend(
        &mut self,
        token: BatchToken,
        records: u32,
        deadline: Instant,
    ) -> Result<(), TokenError> {
        let batch = self.batch_mut(token).ok_or(TokenError::Unknown)?;
        if batch.sealed || batch.state != BatchState::Buffered {
            return Err(TokenError::NotOpen);
        }
        let total = batch.records.saturating_add(records);
        if total > i32::MAX as u32 {
            return Err(TokenError::NotOpen);
        }
        batch.records = total;
        batch.deadline = batch.deadline.min(deadline);
        Ok(())
    }

    /// Closes an open batch to new records: from now on it may be sent. Sealing a sealed or
    /// decided batch does nothing.
    pub fn seal(&mut self, token: BatchToken) -> Result<(), TokenError> {
        let batch = self.batch_mut(token).ok_or(TokenError::Unknown)?;
        batch.sealed = true;
        Ok(())
    }

    fn insert(
        &mut self,
        partition: PartitionIndex,
        records: u32,
        deadline: Instant,
        sealed: bool,
    ) -> Result<BatchToken, EnqueueError> {
        if let Identity::Fatal(reason) = self.identity {
            return Err(EnqueueError::Fatal(reason));
        }
        if usize::from(partition.0) >= PARTITIONS {
            return Err(EnqueueError::NoSuchPartition);
        }
        if records == 0 || records > i32::MAX as u32 {
            return Err(EnqueueError::RecordCount);
        }
        let (index, slot) = self
            .slots
            .iter_mut()
            .enumerate()
            .find(|(_, s)| s.batch.is_none())
            .ok_or(EnqueueError::Full)?;
        slot.generation = slot.generation.wrapping_add(1);
        slot.batch = Some(Batch {
            partition,
            records,
            deadline,
            order: self.next_order,
            attempts: 0,
            sealed,
            state: BatchState::Buffered,
            delivered: false,
        });
        self.next_order += 1;
        Ok(BatchToken {
            // `new` checked BATCHES fits in u16.
            slot: index as u16,
            generation: slot.generation,
        })
    }

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
    fn expire(&mut self, now: Instant) {
        self.note_restart(now);
        for index in 0..BATCHES {
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

    /// Hands out the next batch of `partition` to send, stamped, or `None` when nothing may be
    /// sent on it now (no id, fencing, window full, draining for a resend, or backing off).
    /// The batch counts as in flight from here: report its fate with
    /// [`Sequencer::on_produce_result`], `ProduceResult::NotWritten` if it never left.
    pub fn next_send(&mut self, partition: PartitionIndex, now: Instant) -> Option<SendPermit> {
        let (index, stamp, maybe_written, fresh) = self.select_send(partition, now)?;
        if fresh {
            let records = self.slots[index].batch.as_ref()?.records;
            self.partitions[usize::from(partition.0)].take_sequences(records);
        } else {
            self.counters.retries += 1;
        }
        self.launch(index, stamp, maybe_written)
    }

    /// The batch and stamp [`Sequencer::next_send`] would hand out now, without handing it
    /// out: a client that must make the stamp durable before the request leaves persists it,
    /// then calls `next_send`, which returns the same stamp while nothing else happened.
    pub fn peek_send(
        &mut self,
        partition: PartitionIndex,
        now: Instant,
    ) -> Option<(BatchToken, Stamp)> {
        let (index, stamp, _, _) = self.select_send(partition, now)?;
        Some((self.token_at(index)?, stamp))
    }

    /// The next send of `partition`: (slot, stamp, maybe written, fresh stamp).
    fn select_send(
        &mut self,
        partition: PartitionIndex,
        now: Instant,
    ) -> Option<(usize, Stamp, bool, bool)> {
        // A batch whose deadline has passed must not leave: its caller has its outcome.
        self.expire(now);
        let (id, epoch) = self.identity.ready()?;
        // Consecutive fences without an accepted batch hold sending back (see `pacing`).
        if now < self.pacing.resume_sending_at() {
            return None;
        }
        let p = usize::from(partition.0);
        let ledger = *self.partitions.get(p)?;
        // Resends first, lowest sequence first (acceptance order is sequence order within one
        // identity), and only once nothing else of the partition is out: the broker must see
        // the retried sequences in order.
        if let Some(index) = self.oldest(partition, |s| matches!(s, BatchState::Stamped { .. })) {
            let Some(Batch {
                state:
                    BatchState::Stamped {
                        stamp,
                        maybe_written,
                        retry_at,
                    },
                ..
            }) = self.slots[index].batch
            else {
                return None;
            };
            if ledger.in_flight > 0 || retry_at > now {
                return None;
            }
            return Some((index, stamp, maybe_written, false));
        }
        // A restored identity only finishes what it had stamped.
        if self.resume_only {
            return None;
        }
        if ledger.in_flight >= ledger.window(self.config.max_in_flight_per_partition) {
            return None;
        }
        let index = self.oldest_sealed_buffered(partition)?;
        let stamp = Stamp {
            producer_id: id,
            epoch,
            base_sequence: ledger.next_sequence,
        };
        Some((index, stamp, false, true))
    }

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
                let outcome = match (class.next, class.attempt) {
                    (Next::Persisted, Attempt::Appended { offset }) => {
                        self.pacing.progress();
                        let ledger = &mut self.partitions[partition];
                        ledger.acked_this_epoch = true;
                        ledger.last_acked =
                            Some((stamp.base_sequence.last_of(batch.records), offset));
                        Some(Outcome::Persisted { offset })
                    }
                    (Next::Fail, _) if maybe_written => Some(Outcome::PossiblyPersisted(
                        PossiblyPersistedReason::Unclassified(code),
                    )),
                    (Next::Fail, _) => {
                        Some(Outcome::NotPersisted(NotPersistedReason::Rejected(code)))
                    }
                    // The producer stopped while this attempt was out: no resend will follow.
                    (Next::Retry, _) => match self.identity {
                        Identity::Fatal(reason) if maybe_written => {
                            Some(Outcome::PossiblyPersisted(
                                PossiblyPersistedReason::ProducerFatal(reason),
                            ))
                        }
                        Identity::Fatal(reason) => Some(Outcome::NotPersisted(
                            NotPersistedReason::ProducerFatal(reason),
                        )),
                        _ => None,
                    },
                    _ => None,
                };
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

    /// Takes the next decided outcome, oldest batch first. Each batch yields exactly one.
    pub fn poll_event(&mut self) -> Option<Delivery> {
        let (index, _) = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.batch.as_ref().map(|b| (i, b)))
            .filter(|(_, b)| !b.delivered && matches!(b.state, BatchState::Decided { .. }))
            .min_by_key(|(_, b)| b.order)?;
        let slot = &mut self.slots[index];
        let batch = slot.batch.as_mut()?;
        let BatchState::Decided { outcome, .. } = batch.state else {
            return None;
        };
        batch.delivered = true;
        let delivery = Delivery {
            token: BatchToken {
                slot: index as u16,
                generation: slot.generation,
            },
            partition: batch.partition,
            records: batch.records,
            outcome,
        };
        self.release_if_done(index);
        Some(delivery)
    }

    /// The batch [`Sequencer::poll_event`] would yield next, without yielding it: a client
    /// that must make an outcome durable before handing it out checks it first.
    pub fn peek_event(&self) -> Option<BatchToken> {
        let (index, _) = self
            .slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.batch.as_ref().map(|b| (i, b)))
            .filter(|(_, b)| !b.delivered && matches!(b.state, BatchState::Decided { .. }))
            .min_by_key(|(_, b)| b.order)?;
        self.token_at(index)
    }

    /// What the sequencer holds in slot `slot`, if anything.
    pub fn held(&self, slot: usize) -> Option<HeldBatch> {
        let s = self.slots.get(slot)?;
        let b = s.batch.as_ref()?;
        Some(HeldBatch {
            token: BatchToken {
                slot: slot as u16,
                generation: s.generation,
            },
            partition: b.partition,
            records: b.records,
            order: b.order,
            sealed: b.sealed,
            state: b.state,
            delivered: b.delivered,
        })
    }

    /// Keeps delivered batches in their slots until [`Sequencer::release`] (on), or frees them
    /// as they are delivered (off, the default). A client that mirrors its batches in durable
    /// storage turns this on, so that no slot is reused before its old batch is erased there.
    pub fn set_retain_delivered(&mut self, on: bool) {
        self.retain_delivered = on;
    }

    /// Frees the slot of a delivered batch kept by [`Sequencer::set_retain_delivered`]. Fails
    /// while its outcome is undelivered or a request carrying it is still out.
    pub fn release(&mut self, token: BatchToken) -> Result<(), TokenError> {
        let batch = self.batch(token).ok_or(TokenError::Unknown)?;
        if !batch.delivered || batch.state.is_outstanding() {
            return Err(TokenError::NotOpen);
        }
        self.slots[token.slot()].batch = None;
        Ok(())
    }

    /// After a restart, takes back the identity the restored stamped batches carry, before
    /// any of them is [restored](Sequencer::restore). Only those batches are sent under it, so
    /// that the broker deduplicates whichever of them it already appended; once they are all
    /// decided, the identity is retired and a new producer id requested for everything else.
    /// Refused (false) unless the sequencer is fresh: no identity and no batch yet.
    pub fn resume(&mut self, id: ProducerId, epoch: ProducerEpoch) -> bool {
        if !matches!(self.identity, Identity::NoId { .. }) || !self.is_empty() {
            return false;
        }
        info!("resuming producer id {:?} epoch {:?}", id.0, epoch.0);
        self.identity = Identity::Ready { id, epoch };
        self.resume_only = true;
        true
    }

    /// After a restart, puts a batch read back from durable storage into slot `slot` (the
    /// slot it had, so the storage keys stay valid), sealed, with its acceptance `order`
    /// (batches of one partition are sent in order), to be decided by `deadline`.
    pub fn restore(
        &mut self,
        slot: usize,
        partition: PartitionIndex,
        records: u32,
        order: u64,
        deadline: Instant,
        restored: Restored,
    ) -> Result<BatchToken, RestoreError> {
        if usize::from(partition.0) >= PARTITIONS {
            return Err(RestoreError::NoSuchPartition);
        }
        if records == 0 || records > i32::MAX as u32 {
            return Err(RestoreError::RecordCount);
        }
        let resumed = match self.identity {
            Identity::Ready { id, epoch } if self.resume_only => Some((id, epoch)),
            _ => None,
        };
        let (state, delivered) = match restored {
            Restored::Buffered => (BatchState::Buffered, false),
            Restored::Stamped(stamp) => {
                if resumed != Some((stamp.producer_id, stamp.epoch)) {
                    return Err(RestoreError::NotResumed);
                }
                let state = BatchState::Stamped {
                    stamp,
                    // Nothing tells whether the request had left before the restart.
                    maybe_written: true,
                    retry_at: Instant::ZERO,
                };
                (state, false)
            }
            Restored::Decided { outcome, delivered } => (
                BatchState::Decided {
                    outcome,
                    outstanding: false,
                },
                delivered,
            ),
        };
        let s = self.slots.get_mut(slot).ok_or(RestoreError::Slot)?;
        if s.batch.is_some() {
            return Err(RestoreError::Slot);
        }
        // A request of the previous life may have been out when the power went (carrying
        // this batch, or one decided and erased before the restart, whose store says
        // nothing any more), and a broker may still append it after this life started: no
        // new producer id before the grace.
        self.restart_abandoned = true;
        s.generation = s.generation.wrapping_add(1);
        s.batch = Some(Batch {
            partition,
            records,
            deadline,
            order,
            attempts: 0,
            sealed: true,
            state,
            delivered,
        });
        self.next_order = self.next_order.max(order.saturating_add(1));
        if let BatchState::Stamped { stamp, .. } = state {
            let ledger = &mut self.partitions[usize::from(partition.0)];
            let end = stamp.base_sequence.add(records);
            // Batches are restored in acceptance order: the last one's end is the newest.
            ledger.next_sequence = end;
        }
        Ok(BatchToken {
            slot: slot as u16,
            generation: s.generation,
        })
    }

    /// At the first instant after a restart that restored a batch with a stamp or an
    /// outcome, counts every request of the previous life as abandoned now: a broker may
    /// still process one it had read (or that was still on its way), and a new producer id
    /// does not fence it, so the first producer id of this life (or the one after a resumed
    /// identity) waits `abandoned_request_grace`, as after any abandoned request.
    fn note_restart(&mut self, now: Instant) {
        if !self.restart_abandoned {
            return;
        }
        self.restart_abandoned = false;
        self.last_abandoned = Some(self.last_abandoned.map_or(now, |at| at.max(now)));
        if let Identity::NoId { retry_at } = &mut self.identity {
            *retry_at = (*retry_at).max(now + self.config.abandoned_request_grace);
        }
    }

    /// Retires a resumed identity once every restored stamped batch is decided: the epoch is
    /// bumped (a new producer id where the broker refuses the bump). A bump, not a new id,
    /// because a request of the previous life may still be processed by a broker that had
    /// read it: once a batch of the new epoch is in its partition the broker refuses the old
    /// epoch, where a new producer id would let the straggler land after newer batches.
    fn end_resume(&mut self) {
        if self.resume_only
            && !self
                .batches()
                .any(|b| matches!(b.state, BatchState::Stamped { .. }) || b.state.is_outstanding())
        {
            self.resume_only = false;
            self.start_fence(FenceReason::Restarted, false);
        }
    }

    /// The broker never accepted `(id, epoch)` (see [`refuses_identity`]): no batch stamped
    /// with it was appended by any attempt, whatever the restart or lost connection that made
    /// it "maybe written"; the fence may restamp them.
    fn never_accepted(&mut self, id: ProducerId, epoch: ProducerEpoch) {
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

    fn token_at(&self, index: usize) -> Option<BatchToken> {
        let slot = self.slots.get(index)?;
        slot.batch.as_ref()?;
        Some(BatchToken {
            slot: index as u16,
            generation: slot.generation,
        })
    }

    fn batches(&self) -> impl Iterator<Item = &Batch> {
        self.slots.iter().filter_map(|s| s.batch.as_ref())
    }

    fn batch(&self, token: BatchToken) -> Option<&Batch> {
        let slot = self.slots.get(token.slot())?;
        (slot.generation == token.generation)
            .then_some(slot.batch.as_ref())
            .flatten()
    }

    fn batch_mut(&mut self, token: BatchToken) -> Option<&mut Batch> {
        let slot = self.slots.get_mut(token.slot())?;
        if slot.generation != token.generation {
            return None;
        }
        slot.batch.as_mut()
    }

    /// The slot of the partition's earliest-accepted batch whose state matches.
    fn oldest(
        &self,
        partition: PartitionIndex,
        matches: impl Fn(&BatchState) -> bool,
    ) -> Option<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.batch.as_ref().map(|b| (i, b)))
            .filter(|(_, b)| b.partition == partition && matches(&b.state))
            .min_by_key(|(_, b)| b.order)
            .map(|(i, _)| i)
    }

    /// The partition's earliest-accepted batch that may take a fresh stamp: sealed, buffered.
    fn oldest_sealed_buffered(&self, partition: PartitionIndex) -> Option<usize> {
        let index = self.oldest(partition, |s| matches!(s, BatchState::Buffered))?;
        // Batches of a partition are sealed in acceptance order, so an open oldest one means
        // nothing behind it is sealed either.
        self.slots[index]
            .batch
            .as_ref()
            .is_some_and(|b| b.sealed)
            .then_some(index)
    }

    fn launch(&mut self, index: usize, stamp: Stamp, maybe_written: bool) -> Option<SendPermit> {
        let slot = self.slots.get_mut(index)?;
        let generation = slot.generation;
        let batch = slot.batch.as_mut()?;
        batch.state = BatchState::InFlight {
            stamp,
            maybe_written,
        };
        batch.attempts = batch.attempts.saturating_add(1);
        let permit = SendPermit {
            token: BatchToken {
                slot: index as u16,
                generation,
            },
            stamp,
            records: batch.records,
            attempt: batch.attempts,
        };
        let ledger = &mut self.partitions[usize::from(batch.partition.0)];
        ledger.in_flight = ledger.in_flight.saturating_add(1);
        Some(permit)
    }

    fn apply_cancel(&mut self, index: usize, decision: CancelDecision) {
        let CancelDecision::Fail { outcome, first } = decision else {
            return;
        };
        let Some(batch) = self.slots[index].batch.as_mut() else {
            return;
        };
        let outstanding = batch.state.is_outstanding();
        batch.state = BatchState::Decided {
            outcome,
            outstanding,
        };
        let records = batch.records;
        self.counters.count(outcome.kind(), records);
        if first == BeforeNextSend::Fence {
            self.start_fence(FenceReason::DeadlineAfterStamp, false);
        }
    }

    fn start_fence(&mut self, reason: FenceReason, new_id: bool) {
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
    fn try_complete_fence(&mut self, now: Instant) {
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
        for index in 0..BATCHES {
            let Some(batch) = self.slots[index].batch.as_mut() else {
                continue;
            };
            match batch.state {
                BatchState::Stamped {
                    maybe_written: true,
                    ..
                } => {
                    let outcome =
                        Outcome::PossiblyPersisted(PossiblyPersistedReason::Fenced(reason));
                    batch.state = BatchState::Decided {
                        outcome,
                        outstanding: false,
                    };
                    let records = batch.records;
                    self.counters.count(outcome.kind(), records);
                }
                // Refused by every attempt: nothing of it is in the log, so it may take a
                // fresh sequence under the new epoch.
                BatchState::Stamped {
                    maybe_written: false,
                    ..
                } => {
                    batch.state = BatchState::Buffered;
                    batch.attempts = 0;
                }
                _ => {}
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

    fn become_fatal(&mut self, reason: FatalReason) {
        warn!("producer fatal: {:?}", reason);
        self.identity = Identity::Fatal(reason);
        for index in 0..BATCHES {
            let Some(batch) = self.slots[index].batch.as_mut() else {
                continue;
            };
            let outcome = match batch.state {
                BatchState::Decided { .. } => continue,
                BatchState::Buffered
                | BatchState::Stamped {
                    maybe_written: false,
                    ..
                } => Outcome::NotPersisted(NotPersistedReason::ProducerFatal(reason)),
                BatchState::Stamped { .. } => {
                    Outcome::PossiblyPersisted(PossiblyPersistedReason::ProducerFatal(reason))
                }
                // Its answer (or the loss of its connection) decides it: an answer in the same
                // response as the fatal one is as definitive as that one.
                BatchState::InFlight { .. } => continue,
            };
            let outstanding = batch.state.is_outstanding();
            batch.state = BatchState::Decided {
                outcome,
                outstanding,
            };
            let records = batch.records;
            self.counters.count(outcome.kind(), records);
        }
    }

    fn release_if_done(&mut self, index: usize) {
        if let Some(slot) = self.slots.get_mut(index)
            && let Some(batch) = slot.batch
            && batch.delivered
            && !batch.state.is_outstanding()
            && !self.retain_delivered
        {
            slot.batch = None;
        }
    }

    /// The earliest instant after `now` at which time alone changes something: a deadline, the
    /// end of a backoff. Instants already reached are the client's to act on (a resend or an
    /// InitProducerId it can make now), not a reason to poll again.
    fn next_wakeup(&self, now: Instant) -> Option<Instant> {
        let policy = self.config.unknown_outcome;
        // Under FailAndFence every deadline matters; under Wait only those of batches that
        // were never sent. Backoffs end on their own and may allow a resend.
        let batch_times = self.batches().flat_map(|b| {
            let deadline = match (b.state, policy) {
                (BatchState::Decided { .. }, _) => None,
                (BatchState::Buffered, _) | (_, UnknownOutcome::FailAndFence) => Some(b.deadline),
                (_, UnknownOutcome::Wait) => None,
            };
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
