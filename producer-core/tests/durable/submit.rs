//! The application's side of the durable simulation: it submits its planned records to the
//! client of the life that is up, and notes what each send answered (accepted, refused as
//! stale, full, or by the power going).

use crate::*;

impl Sim {
    pub(crate) fn submit(&mut self) -> Result<(), Halt> {
        while self.next_submit < self.app.len() {
            let uid = self.next_submit;
            let now = self.w.now;
            let life = self.life;
            let r = &self.app[uid];
            if let Some(at) = r.plan.not_before.filter(|&t| t > now) {
                self.w.schedule(at, Ev::Submit(life));
                return Ok(());
            }
            if r.plan.deadline <= now {
                // Never accepted before its deadline: the application knows it was not sent.
                self.app[uid].outcome = Some(First {
                    outcome: Outcome::NotPersisted(NotPersistedReason::Deadline),
                    offset: None,
                    at: now,
                    restored: false,
                });
                self.next_submit += 1;
                continue;
            }
            let record = r.plan.record(&self.clocks, now);
            let deadline = r.plan.deadline;
            let dev = self.dev.as_mut().ok_or(Halt::Power)?;
            match dev.client.send_tagged(&record, uid as u64, deadline, now) {
                Ok(receipt) => {
                    let key = (life, receipt.batch);
                    if receipt.offset_delta == 0
                        && self.batches.insert(key, (uid as u32, 0)).is_some()
                    {
                        return Err("a batch token opened twice in one life".into());
                    }
                    let batch = self
                        .batches
                        .get_mut(&key)
                        .ok_or("joined an unknown batch")?;
                    if batch.1 != receipt.offset_delta {
                        return Err(format!(
                            "record {uid} at delta {} of a batch of {}",
                            receipt.offset_delta, batch.1
                        )
                        .into());
                    }
                    batch.1 += 1;
                    self.members
                        .insert((u64::from(batch.0), receipt.offset_delta), uid as u32);
                    let r = &mut self.app[uid];
                    r.accepted = Some((life, receipt.batch, receipt.offset_delta));
                    r.partition = Some(receipt.partition);
                    self.in_ram.push(uid as u32);
                    self.next_submit += 1;
                    self.persist()?;
                    if self.w.rng.random_bool(0.6) {
                        continue;
                    }
                    let at = now + ms(self.w.rng.random_range(0..15));
                    self.w.schedule(at, Ev::Submit(life));
                    return Ok(());
                }
                Err(SendError::NoMetadata | SendError::Full) => {
                    self.w.schedule(now + ms(5), Ev::Submit(life));
                    return Ok(());
                }
                Err(SendError::StaleTimestamp) => {
                    // Never accepted: the application knows it was not sent.
                    let r = &mut self.app[uid];
                    r.stale = true;
                    r.outcome = Some(First {
                        outcome: Outcome::NotPersisted(NotPersistedReason::Rejected(
                            ErrorCode::INVALID_TIMESTAMP,
                        )),
                        offset: None,
                        at: now,
                        restored: false,
                    });
                    self.w
                        .log(|| format!("record {uid} refused: stale timestamp"));
                    self.next_submit += 1;
                }
                Err(e) => return Err(format!("record {uid} refused: {e:?}").into()),
            }
        }
        Ok(())
    }

    // --- the network ------------------------------------------------------------------------
}
