//! The durable transport rule: every write the client hands out goes into the flash before
//! the step goes on, and what became durable is noted for the checks.

use crate::*;

impl Sim {
    /// Drains every pending write into the flash. A failure must be an injected cut: then the
    /// power is off and the step stops.
    pub(crate) fn persist(&mut self) -> Result<usize, Halt> {
        let dev = self.dev.as_mut().ok_or(Halt::Power)?;
        let result = dev.store.persist_blocking(&mut dev.client);
        self.note_durable();
        match result {
            Ok(n) => Ok(n),
            Err(e) => {
                if !self.flash.is_dead() {
                    return Err(Halt::Fail(format!(
                        "flash store failed without a power cut: {e:?}"
                    )));
                }
                let landed = self.flash.take_cut_in();
                self.w
                    .log(|| format!("POWER CUT inside a flash {landed:?}: {e:?}"));
                match landed {
                    Some(CutIn::Write) => self.tally.cuts_in_write += 1,
                    Some(CutIn::Erase) => {
                        self.tally.cuts_in_erase += 1;
                        self.repair_due = true;
                    }
                    None => return Err("the flash died without a cut landing".into()),
                }
                if !matches!(
                    e,
                    StoreError::Flash(StorageError::Storage {
                        value: FlashError::PowerCut,
                        ..
                    })
                ) {
                    return Err(Halt::Fail(format!("a cut reported as {e:?}")));
                }
                self.power_off(true)?;
                Err(Halt::Power)
            }
        }
    }

    /// Records whose batch became durable are safe from here on.
    pub(crate) fn note_durable(&mut self) {
        let Some(dev) = &self.dev else { return };
        let app = &mut self.app;
        self.in_ram.retain(|&uid| {
            let r = &mut app[uid as usize];
            let Some((_, batch, _)) = r.accepted else {
                return false;
            };
            if dev.client.is_durable(batch) {
                r.durable = true;
                false
            } else {
                true
            }
        });
    }

    // --- the transport loop -----------------------------------------------------------------
}
