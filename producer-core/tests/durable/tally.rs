//! What a durable seed counts, and the sweep's totals.

use producer_core::client::RestoreSummary;

use crate::model::faults::Faults;

/// What a seed counted.
#[derive(Default)]
pub(crate) struct Tally {
    pub(crate) records: u64,
    /// Never accepted: their deadline passed while the client was full or off.
    pub(crate) unaccepted: u64,
    pub(crate) persisted: u64,
    pub(crate) not_persisted: u64,
    pub(crate) possibly: u64,
    /// PossiblyPersisted(Fenced(Broker(UNKNOWN_PRODUCER_ID))).
    pub(crate) possibly_59: u64,
    pub(crate) lost: u64,
    pub(crate) resurrected: u64,
    /// Records handed out again after a restart.
    pub(crate) redelivered: u64,
    pub(crate) cuts: u64,
    pub(crate) cuts_in_write: u64,
    pub(crate) cuts_in_erase: u64,
    pub(crate) cuts_between: u64,
    /// Cuts that landed in the flash repairs of a restore.
    pub(crate) cuts_in_restore: u64,
    /// Restarts after which the broker had forgotten producer state too.
    pub(crate) broker_forgot: u64,
    pub(crate) restored: RestoreSummary,
    /// Produce entries the broker deduplicated, and those appended in an earlier life.
    pub(crate) dedup: u64,
    pub(crate) dedup_after_restart: u64,
    pub(crate) epoch_bumps: u64,
    pub(crate) producer_ids: u64,
    pub(crate) flash_writes: u64,
    pub(crate) flash_erases: u64,
    pub(crate) faults: Faults,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, t: Tally) {
        self.records += t.records;
        self.unaccepted += t.unaccepted;
        self.persisted += t.persisted;
        self.not_persisted += t.not_persisted;
        self.possibly += t.possibly;
        self.possibly_59 += t.possibly_59;
        self.lost += t.lost;
        self.resurrected += t.resurrected;
        self.redelivered += t.redelivered;
        self.cuts += t.cuts;
        self.cuts_in_write += t.cuts_in_write;
        self.cuts_in_erase += t.cuts_in_erase;
        self.cuts_between += t.cuts_between;
        self.cuts_in_restore += t.cuts_in_restore;
        self.broker_forgot += t.broker_forgot;
        add_summary(&mut self.restored, &t.restored);
        self.dedup += t.dedup;
        self.dedup_after_restart += t.dedup_after_restart;
        self.epoch_bumps += t.epoch_bumps;
        self.producer_ids += t.producer_ids;
        self.flash_writes += t.flash_writes;
        self.flash_erases += t.flash_erases;
        self.faults += t.faults;
    }
}

pub(crate) fn add_summary(to: &mut RestoreSummary, s: &RestoreSummary) {
    to.batches += s.batches;
    to.records += s.records;
    to.buffered += s.buffered;
    to.stamped += s.stamped;
    to.decided += s.decided;
    to.expired += s.expired;
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.restored;
        write!(
            f,
            "{} records ({} never accepted): persisted {}, not persisted {}, possibly persisted {} (of which \
             Fenced(Broker(59)) {}), lost by design {}, resurrected {}, handed out again {}\n  \
             power cuts {}: inside a flash write {}, inside a page erase {}, between steps {}, inside a restore {}; \
             broker forgot producers during a restart {}\n  \
             restored batches {} ({} records): buffered {}, stamped {}, decided {}, expired {}\n  \
             broker deduplicated {} resends, {} of them appended before a restart; \
             epoch bumps {}, producer ids {}; flash writes {}, page erases {}\n  {}",
            self.records,
            self.unaccepted,
            self.persisted,
            self.not_persisted,
            self.possibly,
            self.possibly_59,
            self.lost,
            self.resurrected,
            self.redelivered,
            self.cuts,
            self.cuts_in_write,
            self.cuts_in_erase,
            self.cuts_between,
            self.cuts_in_restore,
            self.broker_forgot,
            r.batches,
            r.records,
            r.buffered,
            r.stamped,
            r.decided,
            r.expired,
            self.dedup,
            self.dedup_after_restart,
            self.epoch_bumps,
            self.producer_ids,
            self.flash_writes,
            self.flash_erases,
            self.faults,
        )
    }
}
