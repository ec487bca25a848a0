//! The checks once a seed settled: outcomes true of the log, deadlines honoured, and an
//! empty store; and the seed's counts.

use producer_core::ErrorCode;
use producer_core::client::RestoreOptions;
use producer_core::state::{FenceReason, Outcome, PossiblyPersistedReason};

use crate::Sim;
use crate::durable::tally::Tally;
use crate::harness::client::new_client;
use crate::model::outcomes::{deadline_honoured, true_of_log};

impl Sim {
    pub(crate) fn verify(&mut self) -> Result<(), String> {
        let seen = self.cluster.placed()?;
        for (uid, r) in self.app.iter().enumerate() {
            let uid = uid as u32;
            let in_log = seen.get(&uid);
            if r.lost && !r.resurrected {
                if in_log.is_some() {
                    return Err(format!(
                        "record {uid} was lost at a power cut, yet is in the log"
                    ));
                }
                continue;
            }
            let Some(first) = r.outcome else {
                return Err(format!(
                    "record {uid} (durably accepted: {}) has no outcome, and the client holds \
                     nothing",
                    r.durable
                ));
            };
            if in_log.is_some() && !r.durable && !r.resurrected {
                return Err(format!("record {uid} was never durable, yet is in the log"));
            }
            let (outcome, at) = (first.outcome, first.at);
            true_of_log(
                uid,
                outcome,
                first.offset,
                r.partition,
                r.plan.poison(),
                in_log,
            )?;
            // Deadlines are the client's to honour once it accepted the record, in the life
            // that accepted it (a restart gives restored batches the restore deadline).
            let limit =
                (r.accepted.is_some() && !first.restored).then(|| r.plan.limit(r.cancelled_at));
            deadline_honoured(uid, self.policy, outcome, at, limit)?;
        }
        // Everything is decided and handed out: a restart now finds nothing to restore.
        let mut client = new_client(self.config);
        let mut store = self.open_store(&client)?;
        let options = RestoreOptions {
            deadline: self.w.now,
            now_ms: None,
            producer_state_ttl: None,
        };
        let summary = store
            .restore_blocking(&mut client, options)
            .map_err(|e| format!("final restore failed: {e:?}"))?;
        if summary.batches != 0 {
            return Err(format!("settled, yet the store still holds {summary:?}"));
        }
        Ok(())
    }

    /// The seed's counts, once it passed.
    pub(crate) fn tally(&mut self) -> Tally {
        let mut t = std::mem::take(&mut self.tally);
        t.faults = self.cluster.faults;
        t.faults += self.net.faults;
        if let Some(dev) = &self.dev {
            let c = dev.client.counters();
            t.epoch_bumps += c.epoch_bumps;
            t.producer_ids += c.producer_ids;
        }
        for r in &self.app {
            t.records += 1;
            if r.accepted.is_none() {
                t.unaccepted += 1;
            }
            if r.stale {
                t.faults.stale_refused += 1;
            }
            if r.lost && !r.resurrected {
                t.lost += 1;
                continue;
            }
            if r.deliveries > 1 {
                t.redelivered += 1;
            }
            match r.outcome.map(|o| o.outcome) {
                Some(Outcome::Persisted { .. }) => t.persisted += 1,
                Some(Outcome::NotPersisted(_)) => t.not_persisted += 1,
                Some(Outcome::PossiblyPersisted(reason)) => {
                    t.possibly += 1;
                    if reason == PossiblyPersistedReason::ProducerStateExpired {
                        t.faults.state_expired_outcomes += 1;
                    }
                    if reason
                        == PossiblyPersistedReason::Fenced(FenceReason::Broker(
                            ErrorCode::UNKNOWN_PRODUCER_ID,
                        ))
                    {
                        t.possibly_59 += 1;
                    }
                }
                None => {}
            }
        }
        let s = self.flash.stats();
        t.flash_writes = s.writes;
        t.flash_erases = s.erases;
        t
    }
}
