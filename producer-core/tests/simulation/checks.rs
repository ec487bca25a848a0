//! The checks once a seed settled: every batch is in the log at most once, in order, where
//! its outcome says (at the offset reported), deadlines are honoured, the codes the model
//! answers are classified, and the counters agree; and what the sequencer pressed on the
//! brokers within the bounds of `model::pace`.

use std::collections::BTreeMap;

use producer_core::ErrorCode;
use producer_core::state::{Outcome, PossiblyPersistedReason, UnknownOutcome};

use crate::Sim;

impl Sim {
    /// Fences the broker caused that the sequencer completed since last looked at (the ones
    /// `state::pacing` paces; a deadline's or a restart's fence is not paced).
    pub(crate) fn count_bumps(&mut self) {
        let seen = self.bumps.bumps;
        self.bumps
            .bumped(self.seq.counters().paced_fences - seen, self.w.now);
    }

    /// Holds the seed to the bounds of `model::pace`; returns the largest shares used:
    /// Produce attempts per batch, epoch bumps.
    pub(crate) fn pressure(&mut self) -> Result<(f64, f64), String> {
        let sends = self.resends.check()?;
        let (b, (base, max)) = (&self.bumps, self.backoff);
        let bound = b.bound(base, max);
        if b.bumps > bound {
            return Err(format!(
                "{} broker-caused fences in {} series without progress, bound {bound} at retry_backoff \
                 {base:?} to {max:?}",
                b.bumps, b.series
            ));
        }
        Ok((sends, b.bumps as f64 / bound.max(1) as f64))
    }

    pub(crate) fn verify(&self) -> Result<(), String> {
        let mut where_in_log: BTreeMap<u32, Vec<(usize, i64)>> = BTreeMap::new();
        for (p, log) in self.cluster.logs.iter().enumerate() {
            let mut last_uid = None;
            for &(uid, base_offset) in log {
                where_in_log.entry(uid).or_default().push((p, base_offset));
                // Order per partition: batches appear in the order the application gave them.
                if let Some(prev) = last_uid
                    && uid <= prev
                {
                    return Err(format!("partition {p}: batch {uid} after batch {prev}"));
                }
                last_uid = Some(uid);
            }
        }
        for (uid, b) in self.app.iter().enumerate() {
            let uid = uid as u32;
            let copies = where_in_log.get(&uid).map_or(&[][..], |v| v.as_slice());
            if copies.len() > 1 {
                return Err(format!("batch {uid} is in the log {} times", copies.len()));
            }
            if let Some(&(p, _)) = copies.first()
                && p != b.partition
            {
                return Err(format!(
                    "batch {uid} landed in partition {p}, not {}",
                    b.partition
                ));
            }
            let Some((outcome, at)) = b.outcome else {
                return Err(format!("batch {uid} has no outcome"));
            };
            match outcome {
                Outcome::Persisted { offset } => {
                    let Some(&(_, base)) = copies.first() else {
                        return Err(format!(
                            "batch {uid} reported persisted but is not in the log (a silent gap)"
                        ));
                    };
                    if let Some(o) = offset
                        && o != base
                    {
                        return Err(format!(
                            "batch {uid} reported offset {o}, the log has it at {base}"
                        ));
                    }
                }
                Outcome::NotPersisted(_) if !copies.is_empty() => {
                    return Err(format!(
                        "batch {uid} reported not persisted but is in the log"
                    ));
                }
                Outcome::NotPersisted(_) | Outcome::PossiblyPersisted(_) => {}
            }
            // Deadlines: under FailAndFence every one is honoured the moment it passes (or the
            // moment of a cancel); under Wait, those of batches never sent are.
            let submitted = b.submitted_at.ok_or("never submitted")?;
            let limit = match b.cancelled_at {
                Some(c) => c.min(b.deadline),
                None => b.deadline,
            }
            .max(submitted);
            let must_honour = match self.policy {
                UnknownOutcome::FailAndFence => true,
                UnknownOutcome::Wait => !b.sent,
            };
            if must_honour && at > limit {
                return Err(format!(
                    "batch {uid}: outcome {outcome:?} at {at:?}, after its deadline {limit:?}"
                ));
            }
            if self.policy == UnknownOutcome::Wait
                && matches!(
                    outcome,
                    Outcome::PossiblyPersisted(PossiblyPersistedReason::Deadline)
                )
            {
                return Err(format!(
                    "batch {uid}: a deadline gave up an unknown batch under Wait"
                ));
            }
            // Precision: the only codes the model answers without saying whether it appended
            // are its unknown code (999); the only refusal retrying cannot fix is 10.
            match outcome {
                Outcome::PossiblyPersisted(PossiblyPersistedReason::Unclassified(code))
                    if code != ErrorCode(999) && code != ErrorCode::MESSAGE_TOO_LARGE =>
                {
                    return Err(format!("batch {uid}: {code:?} should have been classified"));
                }
                // (A stale record is the small client's own refusal: never sent.)
                Outcome::NotPersisted(producer_core::state::NotPersistedReason::Rejected(code))
                    if code != ErrorCode::MESSAGE_TOO_LARGE && !b.stale =>
                {
                    return Err(format!(
                        "batch {uid}: refused with {code:?}, which is retriable"
                    ));
                }
                _ => {}
            }
            if b.too_large && matches!(outcome, Outcome::Persisted { .. }) {
                return Err(format!("batch {uid} is too large yet got {outcome:?}"));
            }
        }
        let c = self.seq.counters();
        let persisted = self
            .app
            .iter()
            .filter(|b| matches!(b.outcome, Some((Outcome::Persisted { .. }, _))))
            .count();
        if c.persisted.batches != persisted as u64 {
            return Err(format!(
                "counters say {} persisted, callers saw {persisted}",
                c.persisted.batches
            ));
        }
        Ok(())
    }
}
