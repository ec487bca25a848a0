//! Handing out outcomes: every delivery of a record, in any life, is checked against its
//! first (one outcome per record, per life, for the whole batch it was sent in).

use crate::{First, Halt, Sim};

impl Sim {
    /// Hands out every outcome ready, draining the store after each.
    pub(crate) fn deliver(&mut self) -> Result<(), Halt> {
        loop {
            let Some(d) = self.client()?.poll_delivery() else {
                return Ok(());
            };
            let life = self.life;
            let mut batch_of = None;
            for rd in d.records() {
                let uid = *self
                    .members
                    .get(&(rd.batch_tag, rd.receipt.offset_delta))
                    .ok_or_else(|| {
                        format!(
                            "delivery for a record never accepted: tag {} delta {}",
                            rd.batch_tag, rd.receipt.offset_delta
                        )
                    })?;
                let r = &mut self.app[uid as usize];
                let Some((accepted_life, token, delta)) = r.accepted else {
                    return Err(format!("record {uid} delivered, never accepted").into());
                };
                if delta != rd.receipt.offset_delta {
                    return Err(format!("record {uid} delivered at another delta").into());
                }
                // One delivery is one batch of one life, whole.
                if *batch_of.get_or_insert((accepted_life, token)) != (accepted_life, token) {
                    return Err(format!("record {uid}: a delivery mixes batches").into());
                }
                if d.restored {
                    if accepted_life >= life {
                        return Err(
                            format!("record {uid}: restored in the life it was sent").into()
                        );
                    }
                    if r.lost && !r.resurrected {
                        // Only the one write a cut interrupted is in doubt: one batch at most.
                        let Some((cut, true)) = r.lost_at else {
                            return Err(format!(
                                "record {uid} lost at a cut between steps came back"
                            )
                            .into());
                        };
                        let first = *self
                            .resurrected_at
                            .entry(cut)
                            .or_insert((accepted_life, token));
                        if first != (accepted_life, token) {
                            return Err(format!(
                                "two batches lost at cut {cut} came back: one write was in doubt"
                            )
                            .into());
                        }
                        self.w.log(|| format!("record {uid} resurrected"));
                        r.resurrected = true;
                        self.tally.resurrected += 1;
                    } else if !r.durable && !r.resurrected {
                        return Err(format!("record {uid} restored, never durable").into());
                    }
                } else if accepted_life != life || token != d.batch {
                    return Err(format!("record {uid}: delivery does not match its receipt").into());
                }
                if r.partition != Some(d.partition) {
                    return Err(format!(
                        "record {uid}: outcome for partition {}, sent to {:?}",
                        d.partition, r.partition
                    )
                    .into());
                }
                if r.last_delivery_life == Some(life) {
                    return Err(format!("record {uid} got a second outcome in one life").into());
                }
                r.last_delivery_life = Some(life);
                r.deliveries += 1;
                match r.outcome {
                    Some(first) if (first.outcome, first.offset) != (rd.outcome, rd.offset) => {
                        return Err(format!(
                            "record {uid}: outcome {:?} at {:?}, earlier {:?} at {:?}",
                            rd.outcome, rd.offset, first.outcome, first.offset
                        )
                        .into());
                    }
                    Some(_) => {}
                    None => {
                        r.outcome = Some(First {
                            outcome: rd.outcome,
                            offset: rd.offset,
                            at: self.w.now,
                            restored: d.restored,
                        })
                    }
                }
                self.in_ram.retain(|&u| u != uid);
            }
            let (first, size) = batch_of
                .and_then(|b| self.batches.get(&b))
                .copied()
                .ok_or("a delivery of an unknown batch")?;
            if u64::from(first) != d.tag || size != d.records {
                return Err(format!(
                    "batch of record {first} ({size} records) delivered as tag {} with {} records",
                    d.tag, d.records
                )
                .into());
            }
            let line = format!(
                "batch {} of {} records{} -> {:?}",
                d.tag,
                d.records,
                if d.restored { " (restored)" } else { "" },
                d.outcome
            );
            self.w.log(|| line);
            self.persist()?;
        }
    }
}
