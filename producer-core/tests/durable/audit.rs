//! The broker's work as the durable simulation audits it: what a request of a given device
//! life may carry, and the deduplications it counts.

use std::collections::HashMap;

use crate::AppRecord;
use crate::durable::tally::Tally;
use crate::harness::World;
use crate::model::Check;
use crate::model::broker::{Entry, Observer};

/// What the durable simulation checks and counts in the broker's work, for a request the
/// device sent in life `life`.
pub(crate) struct Audit<'a> {
    pub(crate) life: u32,
    pub(crate) app: &'a [AppRecord],
    pub(crate) identity_life: &'a mut HashMap<(i64, i16), u32>,
    pub(crate) appended_in: &'a mut HashMap<(i64, i16, usize, i32), u32>,
    pub(crate) tally: &'a mut Tally,
}

impl Audit<'_> {
    /// The key of `appended_in`.
    fn appended_key(entry: &Entry) -> (i64, i16, usize, i32) {
        let id = entry.id;
        (id.producer_id, id.epoch, entry.partition, id.base_sequence)
    }
}

impl Observer for Audit<'_> {
    fn received(&mut self, entry: &Entry) -> Result<(), String> {
        let life = self.life;
        // Nothing leaves before its batch is durable: a record is sent by the life that
        // accepted it once it is durable, or, lost at a cut, by a later life that restored it
        // from a write the store had reported failed.
        for &uid in &entry.uids {
            let r = self.app.get(uid as usize).ok_or("unknown record sent")?;
            let Some((accepted, _, _)) = r.accepted else {
                return Err(format!("record {uid} sent, never accepted"));
            };
            let fine = r.durable || (r.lost && life > accepted);
            if !fine {
                return Err(format!(
                    "record {uid} (life {accepted}) sent by life {life} before it was durable"
                ));
            }
        }
        // An identity (producer id and epoch) an earlier life sent under, resumed after a
        // restart, only carries the batches restored with its stamps: everything newer waits
        // for the fence that ends the resume (a bumped epoch, or a new producer id).
        let identity = (entry.id.producer_id, entry.id.epoch);
        let first = *self.identity_life.entry(identity).or_insert(life);
        if first < life
            && let Some(uid) = entry.uids.iter().find(|&&u| {
                self.app[u as usize]
                    .accepted
                    .is_some_and(|(l, _, _)| l >= life)
            })
        {
            let (producer_id, epoch, issued) = (identity.0, identity.1, first);
            return Err(format!(
                "record {uid} of life {life} sent under producer id {producer_id} epoch {epoch} of life {issued}"
            ));
        }
        Ok(())
    }

    fn judged<E>(&mut self, w: &mut World<E>, entry: &Entry, check: Check) {
        let (life, id) = (self.life, entry.id);
        w.log(|| {
            format!(
                "broker {}: {:?} to partition {} as ({}, {}, {}) from life {life}: {check:?}",
                entry.broker,
                entry.uids,
                entry.partition,
                id.producer_id,
                id.epoch,
                id.base_sequence
            )
        });
        if let Check::Duplicate(_) = check {
            self.tally.dedup += 1;
            if self
                .appended_in
                .get(&Self::appended_key(entry))
                .is_some_and(|&l| l < life)
            {
                self.tally.dedup_after_restart += 1;
                w.log(|| "broker deduplicates a batch appended in an earlier life".into());
            }
        }
    }

    fn appended(&mut self, entry: &Entry) {
        self.appended_in
            .insert(Self::appended_key(entry), self.life);
    }
}
