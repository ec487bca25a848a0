//! Power: a cut loses the device's RAM and its connections; a reboot restores a fresh
//! client from the flash (and the power may flicker during the restore).

use producer_core::client::{ConnId, ProducerRecord, RestoreOptions, SendError};
use producer_core::flash::sequential_storage::Error as StorageError;
use producer_core::flash::{BlockingAsync, StoreError};
use rand::Rng;

use crate::durable::tally::add_summary;
use crate::harness::client::{BATCH_BYTES, TestClient, new_client};
use crate::harness::ram_flash::{CutIn, CutMode, FlashError};
use crate::model::Flavour;
use crate::model::broker::TOPIC;
use crate::model::net::LINGER_AFTER_CLOSE;
use crate::{Device, Ev, Halt, PAGE, Sim, Store, ms};

impl Sim {
    /// The power died: RAM is gone, connections close, the device reboots later.
    pub(crate) fn power_off(&mut self, in_write: bool) -> Result<(), Halt> {
        let mut dev = self.dev.take().ok_or("power off twice")?;
        let now = self.w.now;
        self.tally.cuts += 1;
        if in_write {
            // The client was told and must have stopped.
            let c = &mut dev.client;
            if !c.storage_failed() {
                return Err("the store failed and the client was not told".into());
            }
            if c.poll_delivery().is_some() || c.poll_persist().is_some() {
                return Err("the client went on after a storage failure".into());
            }
            for conn in 0..4 {
                if c.poll_transmit(ConnId(conn), now, &mut self.tx).is_some() {
                    return Err("the client transmits after a storage failure".into());
                }
            }
            let record = ProducerRecord {
                topic: TOPIC,
                partition: None,
                key: None,
                value: Some(b"r0"),
                headers: &[],
                timestamp: Some(0),
            };
            if c.send(&record, now + ms(1000), now) != Err(SendError::Storage) {
                return Err("the client accepts records after a storage failure".into());
            }
        } else {
            self.tally.cuts_between += 1;
        }
        let counters = dev.client.counters();
        self.tally.epoch_bumps += counters.epoch_bumps;
        self.tally.producer_ids += counters.producer_ids;
        drop(dev);
        let cut = self.tally.cuts;
        for uid in self.in_ram.drain(..) {
            let r = &mut self.app[uid as usize];
            r.lost = true;
            r.lost_at = Some((cut, in_write));
        }
        self.net.close_all(&mut self.w);
        // Some reboots are quicker than the broker takes to process what it had read: requests
        // of the old life may still be appended while the new one resends. (Kafka may process
        // them for up to five produce timeouts: every reboot here is quicker.)
        let linger = self.net.linger_bound(self.config.request_timeout);
        let delay = if self.w.rng.random_bool(0.3) || linger >= ms(1500) {
            self.w
                .rng
                .random_range(1..linger.as_millis().min(1500) as u64)
        } else {
            self.w
                .rng
                .random_range(LINGER_AFTER_CLOSE.as_millis() as u64..1500)
        };
        self.w.schedule(now + ms(delay), Ev::PowerOn);
        self.w
            .log(|| format!("power off (life {}), back in {delay} ms", self.life));
        Ok(())
    }

    /// A store over the flash as it is, for a fresh `client` (after a reboot, or to check
    /// what is left).
    pub(crate) fn open_store(&self, client: &TestClient) -> Result<Store, String> {
        Store::new(
            BlockingAsync::new(self.flash.clone()),
            self.range.clone(),
            vec![0u8; Store::buffer_len(BATCH_BYTES)],
            client,
        )
        .map_err(|e| format!("store: {e:?}"))
    }

    /// Each page's first and last word, for a failure report.
    pub(crate) fn page_states(&self) -> String {
        let data = self.flash.snapshot();
        data.chunks(PAGE)
            .map(|p| format!("{:02x}..{:02x}", p[0], p[PAGE - 1]))
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub(crate) fn power_on(&mut self) -> Result<(), Halt> {
        self.flash.reboot();
        self.life += 1;
        // Tansu keeps producer state in memory: sometimes it restarted too while the device
        // was off, and answers the restored producer id with UNKNOWN_PRODUCER_ID. (Kafka
        // expires a producer by its record timestamps, and then appends a resend again: the
        // restore takes the wall clock and the producer-state lifetime for that.)
        if self.cluster.flavour == Flavour::Tansu && self.w.rng.random_bool(0.3) {
            self.cluster.idempotence.forget();
            self.tally.broker_forgot += 1;
            self.w
                .log(|| "brokers restarted too: producer state forgotten".into());
        }
        let mut client = new_client(self.config);
        if self.clocks.client_knows {
            client.set_wall_clock(self.w.now, self.clocks.client_ms(self.w.now));
        }
        let mut store = self.open_store(&client)?;
        // The power flickers while the device boots: the cut lands in the repairs restore
        // makes (a half-erased page, an interrupted garbage collection) or in the first
        // writes of the new life.
        // After a cut inside an erase, the restore re-erases that page: aim at it.
        let after_erase = std::mem::take(&mut self.repair_due);
        if self.w.chance(if after_erase { 0.5 } else { 0.1 }) {
            let bytes = self.w.rng.random_range(0..2 * PAGE as u64);
            let seed = self.w.rng.random();
            self.w
                .log(|| format!("power cut armed at boot: after {bytes} flash bytes"));
            self.flash.cut_after(bytes, CutMode::TornWrite, seed);
        }
        let options = RestoreOptions {
            deadline: self.w.now + ms(self.w.rng.random_range(200..5000)),
            now_ms: self
                .clocks
                .client_knows
                .then(|| self.clocks.client_ms(self.w.now)),
            producer_state_ttl: self.config.producer_state_ttl,
        };
        let summary = match store.restore_blocking(&mut client, options) {
            Ok(summary) => summary,
            Err(e) if self.flash.is_dead() => {
                let landed = self.flash.take_cut_in();
                self.repair_due = landed == Some(CutIn::Erase);
                self.w
                    .log(|| format!("POWER CUT inside restore, in a flash {landed:?}: {e:?}"));
                if !matches!(
                    e,
                    StoreError::Flash(StorageError::Storage {
                        value: FlashError::PowerCut,
                        ..
                    })
                ) {
                    return Err(Halt::Fail(format!("a cut reported as {e:?}")));
                }
                self.tally.cuts += 1;
                self.tally.cuts_in_restore += 1;
                let delay = self.w.rng.random_range(10..1500);
                self.w.schedule(self.w.now + ms(delay), Ev::PowerOn);
                return Err(Halt::Power);
            }
            Err(e) => {
                if let Ok(path) = std::env::var("SIM_DUMP") {
                    let _ = std::fs::write(path, self.flash.snapshot());
                }
                return Err(Halt::Fail(format!(
                    "restore failed: {e:?}; pages {}",
                    self.page_states()
                )));
            }
        };
        add_summary(&mut self.tally.restored, &summary);
        self.w
            .log(|| format!("power on (life {}): restored {summary:?}", self.life));
        self.dev = Some(Device { client, store });
        let (life, now) = (self.life, self.w.now);
        self.w.schedule(now, Ev::Submit(life));
        self.persist()?;
        self.deliver()
    }
}
