//! Deterministic simulation of a gateway whose producer keeps its batches in a durable store
//! (`ClientConfig::durable`, `flash::FlashStore` over sequential-storage) on a simulated NOR
//! flash (`harness::ram_flash`) that loses power at random moments: between two steps, or
//! inside a flash write, a page erase or a garbage collection (the word being written torn
//! or not), and sometimes again while the device boots and restores. At a cut the device
//! loses its RAM (the client, and the application's records not yet durably accepted: lost
//! by design), its connections close (the broker may still process what it had read), and
//! after a reboot a fresh client restores from the flash and carries on; a tansu-like broker
//! sometimes restarted meanwhile and no longer knows the restored producer id.
//!
//! The cluster and the network are those of `client_simulation` (`model::broker`,
//! `model::net`: real request and response bytes, drops, lost responses, delays, resets,
//! leader moves, broker restarts, both broker flavours), and the transport follows the durable rule: drain `persist_blocking` after every client call
//! that changes state and before every `poll_transmit`, and transmit again after a drain.
//! In some seeds it asks for outcomes before draining the writes an answer caused: the client
//! must hold an outcome back until it is stored.
//!
//! It checks, as it goes and once each seed settles (the end runs without cuts):
//! 1. nothing is sent before its batch is durable (a record reaches the broker only once the
//!    life that accepted it saw `is_durable`, or from a later life that restored it); a
//!    producer id resumed after a restart carries only restored batches; no record that was
//!    never durably accepted is in the log (unless the one write a cut interrupted landed
//!    after all, and a later life restored and delivered its batch);
//! 2. every durably accepted record gets an outcome, and every delivery of a record, in any
//!    life, is the same outcome, at most one per life, for the whole batch it was sent in;
//! 3. outcomes are true of the log: `Persisted` is in it once (at the offset reported),
//!    `NotPersisted` is not, `PossiblyPersisted` at most once;
//! 4. no record is in the log twice, and each partition's log is in send order;
//! 5. no panic, and a flash error only ever comes from an injected cut; restore always works,
//!    and once everything is decided the store is empty.
//!
//! `SIM_SEEDS=N` sets how many seeds `durable_many_seeds` runs (300 by default);
//! `SIM_SEED=N cargo test -p producer-core --features flash --test durable_simulation
//! durable_replay_seed -- --nocapture` replays one with a trace (`SIM_DUMP=FILE` also writes
//! the flash image there if a restore fails).

use std::collections::HashMap;
use std::ops::Range;
use std::time::Duration;

use producer_core::ErrorCode;
use producer_core::client::durable::BATCH_HEADER;
use producer_core::client::{
    ClientConfig, ConnId, ProducerRecord, RestoreOptions, RestoreSummary, SendError,
};
use producer_core::flash::sequential_storage::Error as StorageError;
use producer_core::flash::{BlockingAsync, FlashStore, Geometry, StoreError};
use producer_core::state::{
    BatchToken, FenceReason, NotPersistedReason, Outcome, PossiblyPersistedReason, UnknownOutcome,
};
use producer_core::time::Instant;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod harness;
mod model;
use harness::World;
use harness::client::{BATCH_BYTES, SLOTS, TestClient, new_client};
use harness::ram_flash::{CutIn, CutMode, FlashError, RamFlash};
use model::broker::{BROKERS, Cluster, Entry, Observer, TOPIC};
use model::net::{LINGER_AFTER_CLOSE, Net, NetEv};
use model::outcomes::{deadline_honoured, true_of_log};
use model::records::{Planned, plan};
use model::{Check, Flavour, pins_producer_state};

// Of the client's `BATCH_BYTES`, `BATCH_HEADER` go to the storage header: room for a few of
// the largest records (about 150 bytes) after it.
const _: () = assert!(BATCH_BYTES - BATCH_HEADER > 3 * 150);
/// Erase page of the simulated flash: at most one full batch per page, so garbage collection
/// (page erases, items moved) is frequent.
const PAGE: usize = 1024;
type Flash = RamFlash<PAGE>;
type Store = FlashStore<BlockingAsync<Flash>, Vec<u8>>;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[derive(Debug)]
enum Ev {
    Net(NetEv),
    /// The application submits records (in the life given: a chain per life).
    Submit(u32),
    Cancel(u32),
    LeaderMove,
    BrokerDown(usize),
    StateLoss,
    /// Arms a cut inside the next flash writes, or cuts the power now.
    PowerCut,
    PowerOn,
}

impl From<NetEv> for Ev {
    fn from(e: NetEv) -> Self {
        Ev::Net(e)
    }
}

/// Why a step stopped early.
enum Halt {
    /// A check failed.
    Fail(String),
    /// The power died: the device is off until `PowerOn`.
    Power,
}

impl From<String> for Halt {
    fn from(e: String) -> Self {
        Halt::Fail(e)
    }
}

impl From<&str> for Halt {
    fn from(e: &str) -> Self {
        Halt::Fail(e.into())
    }
}

/// A record's first delivery.
#[derive(Clone, Copy, Debug)]
struct First {
    outcome: Outcome,
    offset: Option<i64>,
    at: Instant,
    /// Handed out by a life that restored it.
    restored: bool,
}

struct AppRecord {
    plan: Planned,
    /// Accepted in life `.0`, into batch `.1` at offset delta `.2`.
    accepted: Option<(u32, BatchToken, u32)>,
    partition: Option<i32>,
    /// Its batch was seen durable (`is_durable`) in the life that accepted it.
    durable: bool,
    /// Accepted, not durable and undecided when the power died: lost by design.
    lost: bool,
    /// The cut it was lost at (counting from 1), and whether that cut landed inside a flash
    /// write: only then may the write in doubt have stored its batch after all.
    lost_at: Option<(u64, bool)>,
    /// Lost, yet a later life restored and delivered it: the write that failed at the cut
    /// had landed after all.
    resurrected: bool,
    outcome: Option<First>,
    deliveries: u32,
    last_delivery_life: Option<u32>,
    cancelled_at: Option<Instant>,
}

/// The device: the client and its store, both gone at a power cut.
struct Device {
    client: TestClient,
    store: Store,
}

/// What a seed counted.
#[derive(Default)]
struct Tally {
    records: u64,
    /// Never accepted: their deadline passed while the client was full or off.
    unaccepted: u64,
    persisted: u64,
    not_persisted: u64,
    possibly: u64,
    /// PossiblyPersisted(Fenced(Broker(UNKNOWN_PRODUCER_ID))).
    possibly_59: u64,
    lost: u64,
    resurrected: u64,
    /// Records handed out again after a restart.
    redelivered: u64,
    cuts: u64,
    cuts_in_write: u64,
    cuts_in_erase: u64,
    cuts_between: u64,
    /// Cuts that landed in the flash repairs of a restore.
    cuts_in_restore: u64,
    /// Restarts after which the broker had forgotten producer state too.
    broker_forgot: u64,
    restored: RestoreSummary,
    /// Produce entries the broker deduplicated, and those appended in an earlier life.
    dedup: u64,
    dedup_after_restart: u64,
    epoch_bumps: u64,
    producer_ids: u64,
    flash_writes: u64,
    flash_erases: u64,
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
    }
}

fn add_summary(to: &mut RestoreSummary, s: &RestoreSummary) {
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
             epoch bumps {}, producer ids {}; flash writes {}, page erases {}",
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
        )
    }
}

struct Sim {
    w: World<Ev>,
    policy: UnknownOutcome,
    /// The transport asks for outcomes before it drains the writes an answer caused (the
    /// client must hold back an outcome until it is stored).
    eager_deliveries: bool,
    cluster: Cluster,
    /// Which life's request first appended a batch: (producer id, epoch, partition, base
    /// sequence).
    appended_in: HashMap<(i64, i16, usize, i32), u32>,
    /// The device life each producer id was issued to.
    /// The life that first sent under each (producer id, epoch).
    identity_life: HashMap<(i64, i16), u32>,
    /// Each wire tagged with the device life that opened it.
    net: Net<u32>,
    // The device.
    config: ClientConfig<'static>,
    flash: Flash,
    range: Range<u32>,
    dev: Option<Device>,
    life: u32,
    /// The last cut landed inside a page erase: the next restore repairs that page.
    repair_due: bool,
    tx: Vec<u8>,
    // The application.
    app: Vec<AppRecord>,
    next_submit: usize,
    /// (batch tag, offset delta) -> record: the tag is the uid of the record that opened
    /// the batch, so this survives restarts.
    members: HashMap<(u64, u32), u32>,
    /// Per batch of a life: its first record and how many records it took.
    batches: HashMap<(u32, BatchToken), (u32, u32)>,
    /// Records accepted in this life, not durable yet and undecided.
    in_ram: Vec<u32>,
    /// Per cut inside a write, the batch lost at it that a later life restored.
    resurrected_at: HashMap<u64, (u32, BatchToken)>,
    tally: Tally,
}

/// What the durable simulation checks and counts in the broker's work, for a request the
/// device sent in life `life`.
struct Audit<'a> {
    life: u32,
    app: &'a [AppRecord],
    identity_life: &'a mut HashMap<(i64, i16), u32>,
    appended_in: &'a mut HashMap<(i64, i16, usize, i32), u32>,
    tally: &'a mut Tally,
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

/// The pages the client's slots need (from the store's own geometry check).
fn pages_needed(client: &TestClient) -> usize {
    let probe = Flash::new(1);
    let store = Store::new(
        BlockingAsync::new(probe),
        0..PAGE as u32,
        vec![0u8; Store::buffer_len(BATCH_BYTES)],
        client,
    );
    match store {
        Err(StoreError::Geometry(Geometry::TooSmall { pages_needed, .. })) => pages_needed,
        Err(e) => panic!("flash geometry: {e}"),
        Ok(_) => 1,
    }
}

impl Sim {
    fn new(seed: u64, trace: bool) -> Sim {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let flavour = Flavour::of_seed(seed);
        // Wait mostly, FailAndFence for one seed in four (of both flavours).
        let policy = if (seed / 2) % 4 == 3 {
            UnknownOutcome::FailAndFence
        } else {
            UnknownOutcome::Wait
        };
        let mut config = harness::client::config(&mut rng, policy);
        config.durable = true;
        let client = new_client(config);
        // Exactly what the slots need, or a page or two more.
        let pages = pages_needed(&client) + rng.random_range(0..=2);
        let records = rng.random_range(100..300);
        let eager_deliveries = rng.random_bool(0.3);
        let (planned, fault_end) = plan(&mut rng, records);
        let app = planned
            .into_iter()
            .map(|plan| AppRecord {
                plan,
                accepted: None,
                partition: None,
                durable: false,
                lost: false,
                lost_at: None,
                resurrected: false,
                outcome: None,
                deliveries: 0,
                last_delivery_life: None,
                cancelled_at: None,
            })
            .collect();
        let flash = Flash::new(pages);
        let range = 0..(pages * PAGE) as u32;
        let store = Store::new(
            BlockingAsync::new(flash.clone()),
            range.clone(),
            vec![0u8; Store::buffer_len(BATCH_BYTES)],
            &client,
        )
        .expect("flash geometry");
        let mut sim = Sim {
            w: World::new(rng, fault_end, trace),
            policy,
            eager_deliveries,
            cluster: Cluster::new(flavour),
            appended_in: HashMap::new(),
            identity_life: HashMap::new(),
            net: Net::new(true),
            config,
            flash,
            range,
            dev: Some(Device { client, store }),
            life: 0,
            repair_due: false,
            tx: vec![0u8; 16 * 1024],
            app,
            next_submit: 0,
            members: HashMap::new(),
            batches: HashMap::new(),
            in_ram: Vec::new(),
            resurrected_at: HashMap::new(),
            tally: Tally::default(),
        };
        sim.w
            .log(|| format!("{flavour:?}, {policy:?}, {records} records, flash of {pages} pages"));
        sim.w.schedule(Instant::ZERO, Ev::Submit(0));
        sim.w.scatter(0..5, |_| Ev::LeaderMove);
        sim.w.scatter(0..3, |rng| {
            let b = rng.random_range(0..BROKERS);
            Ev::BrokerDown(b)
        });
        sim.w.scatter(0..3, |_| Ev::StateLoss);
        sim.w.scatter(0..6, |rng| {
            let uid = rng.random_range(0..records) as u32;
            Ev::Cancel(uid)
        });
        sim.w.scatter(0..6, |_| Ev::PowerCut);
        sim
    }

    fn client(&mut self) -> Result<&mut TestClient, Halt> {
        self.dev.as_mut().map(|d| &mut d.client).ok_or(Halt::Power)
    }

    fn run(&mut self) -> Result<(), String> {
        let limit = self.w.settle_by();
        let mut wake = Some(Instant::ZERO);
        while let Some(next) = self.w.next_instant(wake) {
            if next > limit {
                return Err(self.hang_report(limit));
            }
            self.w.now = self.w.now.max(next);
            while let Some(ev) = self.w.pop_due() {
                match self.handle(ev) {
                    Ok(()) | Err(Halt::Power) => {}
                    Err(Halt::Fail(e)) => return Err(e),
                }
            }
            wake = match self.step() {
                Ok(wake) => wake,
                Err(Halt::Power) => None,
                Err(Halt::Fail(e)) => return Err(e),
            };
            if self.settled() {
                return Ok(());
            }
        }
        if self.settled() {
            Ok(())
        } else {
            Err("nothing left to do before settling: a hang".into())
        }
    }

    fn hang_report(&self, limit: Instant) -> String {
        let Some(dev) = &self.dev else {
            return format!("did not settle by {limit:?}: the device is off");
        };
        let conns: Vec<_> = (0..4u8).map(|c| dev.client.connection(ConnId(c))).collect();
        let held: Vec<_> = (0..SLOTS)
            .filter_map(|s| dev.client.sequencer().held(s))
            .map(|h| (h.state, h.delivered))
            .collect();
        format!(
            "did not settle by {limit:?}: identity {:?}, connections {conns:?}, wires {:?}, held {held:?}, submitted {}/{}",
            dev.client.sequencer().identity(),
            self.net.wires.keys().collect::<Vec<_>>(),
            self.next_submit,
            self.app.len()
        )
    }

    /// The device is on and holds nothing, and the application submitted everything: every
    /// record that is not lost must have its outcome now (`verify` says which has not).
    fn settled(&self) -> bool {
        self.dev.as_ref().is_some_and(|d| d.client.is_idle())
            && self.next_submit == self.app.len()
            && self.w.now >= self.w.fault_end
    }

    // --- the durable transport rule ---------------------------------------------------------

    /// Drains every pending write into the flash. A failure must be an injected cut: then the
    /// power is off and the step stops.
    fn persist(&mut self) -> Result<usize, Halt> {
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
    fn note_durable(&mut self) {
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

    /// Hands out every outcome ready, draining the store after each.
    fn deliver(&mut self) -> Result<(), Halt> {
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

    // --- power ------------------------------------------------------------------------------

    /// The power died: RAM is gone, connections close, the device reboots later.
    fn power_off(&mut self, in_write: bool) -> Result<(), Halt> {
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
                timestamp: 0,
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
        // of the old life may still be appended while the new one resends.
        let delay = if self.w.rng.random_bool(0.3) {
            self.w
                .rng
                .random_range(1..LINGER_AFTER_CLOSE.as_millis() as u64)
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
    fn open_store(&self, client: &TestClient) -> Result<Store, String> {
        Store::new(
            BlockingAsync::new(self.flash.clone()),
            self.range.clone(),
            vec![0u8; Store::buffer_len(BATCH_BYTES)],
            client,
        )
        .map_err(|e| format!("store: {e:?}"))
    }

    /// Each page's first and last word, for a failure report.
    fn page_states(&self) -> String {
        let data = self.flash.snapshot();
        data.chunks(PAGE)
            .map(|p| format!("{:02x}..{:02x}", p[0], p[PAGE - 1]))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn power_on(&mut self) -> Result<(), Halt> {
        self.flash.reboot();
        self.life += 1;
        // Tansu keeps producer state in memory: sometimes it restarted too while the device
        // was off, and answers the restored producer id with UNKNOWN_PRODUCER_ID. (A Kafka
        // that forgets a producer whose batches may be resent appends them again: that is
        // what `RestoreOptions::producer_state_ttl` is for, outside this model.)
        if self.cluster.flavour == Flavour::Tansu && self.w.rng.random_bool(0.3) {
            self.cluster.idempotence.forget();
            self.tally.broker_forgot += 1;
            self.w
                .log(|| "brokers restarted too: producer state forgotten".into());
        }
        let mut client = new_client(self.config);
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
            now_ms: None,
            producer_state_ttl: None,
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

    // --- the transport loop -----------------------------------------------------------------

    /// One pass of the transport loop.
    fn step(&mut self) -> Result<Option<Instant>, Halt> {
        if self.dev.is_none() {
            return Ok(None);
        }
        let now = self.w.now;
        if !self.w.faults() && self.flash.armed() {
            // The end runs without cuts.
            self.flash.disarm();
        }
        self.client()?.poll(now);
        if self.eager_deliveries {
            self.deliver()?;
        }
        self.persist()?;
        self.deliver()?;
        while let Some(conn) = self.client()?.poll_close() {
            self.w
                .log(|| format!("client closes connection {}", conn.0));
            self.net.close(&mut self.w, conn.0);
        }
        while let Some((conn, host)) = self
            .client()?
            .poll_connect(now)
            .map(|(c, e)| (c, e.host.to_string()))
        {
            self.net
                .connect(&mut self.w, conn.0, &host, self.life, &self.cluster.up)?;
        }
        // Transmit, drain, and transmit again while a drain stored something: a batch waits
        // for its stamp to be durable before it leaves.
        let mut rounds = 0;
        loop {
            rounds += 1;
            if rounds > 100 {
                return Err("transmit and persist do not settle".into());
            }
            for conn in self.net.connected() {
                loop {
                    self.persist()?;
                    let dev = self.dev.as_mut().ok_or(Halt::Power)?;
                    let Some(n) = dev.client.poll_transmit(ConnId(conn), now, &mut self.tx) else {
                        break;
                    };
                    let frame = self.tx[..n].to_vec();
                    self.net.transmit(&mut self.w, conn, frame);
                    if !self.net.is_connected(conn) {
                        break;
                    }
                }
            }
            if self.persist()? == 0 {
                break;
            }
        }
        // Time may have sealed batches or applied deadlines: poll again for the wake-up.
        let wake = self.client()?.poll(now);
        self.persist()?;
        self.deliver()?;
        Ok(wake)
    }

    fn handle(&mut self, ev: Ev) -> Result<(), Halt> {
        let now = self.w.now;
        match ev {
            Ev::Submit(life) => {
                if life == self.life && self.dev.is_some() {
                    self.submit()?;
                }
            }
            Ev::Cancel(uid) => {
                let r = &self.app[uid as usize];
                if let (Some((life, batch, _)), None, Some(dev)) =
                    (r.accepted, r.outcome, self.dev.as_mut())
                    && life == self.life
                {
                    let _ = dev.client.cancel(batch, now);
                    // Every record of the batch shares the cancel.
                    for rec in self.app.iter_mut() {
                        if rec
                            .accepted
                            .is_some_and(|(l, b, _)| l == life && b == batch)
                            && rec.outcome.is_none()
                        {
                            rec.cancelled_at.get_or_insert(now);
                        }
                    }
                    self.w.log(|| format!("cancel record {uid}"));
                    self.persist()?;
                }
            }
            Ev::Net(NetEv::Connected(conn, inc)) => {
                if self.net.on_connected(conn, inc) {
                    self.client()?.on_connected(ConnId(conn), now);
                    self.persist()?;
                }
            }
            Ev::Net(NetEv::ConnectFailed(conn, inc)) => {
                if self.net.on_connect_failed(conn, inc) {
                    self.client()?.on_connection_lost(ConnId(conn), now);
                    self.persist()?;
                }
            }
            Ev::Net(NetEv::Arrive(conn, inc, frame)) => self.arrive(conn, inc, frame)?,
            Ev::Net(NetEv::Response(conn, inc, frame)) => {
                if self.net.is_current(conn, inc) {
                    self.client()?.on_frame(ConnId(conn), now, &frame[4..]);
                    if self.eager_deliveries {
                        self.deliver()?;
                    }
                    self.persist()?;
                }
            }
            Ev::Net(NetEv::Reset(conn, inc)) => {
                if self.net.on_reset(&mut self.w, conn, inc) {
                    self.client()?.on_connection_lost(ConnId(conn), now);
                    self.persist()?;
                }
            }
            Ev::LeaderMove => self.cluster.move_leader(&mut self.w),
            Ev::BrokerDown(b) => self.net.broker_down(&mut self.w, &mut self.cluster, b),
            Ev::Net(NetEv::BrokerUp(b)) => self.cluster.broker_up(&mut self.w, b),
            Ev::StateLoss => {
                // Only while nothing that may have been appended can be resent or still be
                // processed, as in client_simulation: here that includes every stamped batch
                // of the store, which a live client holds (it restored them).
                let quiet = !self.net.lingering(now)
                    && self.dev.as_ref().is_some_and(|d| {
                        (0..SLOTS)
                            .filter_map(|s| d.client.sequencer().held(s))
                            .all(|h| !pins_producer_state(h.state))
                    });
                if quiet {
                    self.w.log(|| "brokers forget producer state".into());
                    self.cluster.idempotence.forget();
                }
            }
            Ev::PowerCut => {
                if self.dev.is_none() || self.flash.armed() {
                    return Ok(());
                }
                if self.w.rng.random_bool(0.6) {
                    // Inside the next flash writes: usually within an item or two, sometimes
                    // far enough to reach a page erase of a garbage collection.
                    let bytes = if self.w.rng.random_bool(0.7) {
                        self.w.rng.random_range(0..700)
                    } else {
                        self.w.rng.random_range(0..4 * PAGE as u64)
                    };
                    let mode = if self.w.rng.random_bool(0.5) {
                        CutMode::TornWrite
                    } else {
                        CutMode::Clean
                    };
                    let seed = self.w.rng.random();
                    self.w
                        .log(|| format!("power cut armed: after {bytes} flash bytes, {mode:?}"));
                    self.flash.cut_after(bytes, mode, seed);
                } else {
                    self.w.log(|| "POWER CUT between steps".into());
                    self.flash.cut_now();
                    self.power_off(false)?;
                    return Err(Halt::Power);
                }
            }
            Ev::PowerOn => self.power_on()?,
        }
        Ok(())
    }

    fn submit(&mut self) -> Result<(), Halt> {
        while self.next_submit < self.app.len() {
            let uid = self.next_submit;
            let now = self.w.now;
            let life = self.life;
            let r = &self.app[uid];
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
            let record = r.plan.record(now);
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
                Err(e) => return Err(format!("record {uid} refused: {e:?}").into()),
            }
        }
        Ok(())
    }

    // --- the network ------------------------------------------------------------------------

    /// A request reaches the broker it was sent to, if the wire still leads there; the broker
    /// checks what it carries against the life that sent it.
    fn arrive(&mut self, conn: u8, inc: u64, frame: Vec<u8>) -> Result<(), String> {
        let Some((broker, life)) = self.net.route(self.w.now, conn, inc) else {
            return Ok(());
        };
        if self.cluster.up[broker] {
            let mut audit = Audit {
                life,
                app: &self.app,
                identity_life: &mut self.identity_life,
                appended_in: &mut self.appended_in,
                tally: &mut self.tally,
            };
            let response = self
                .cluster
                .answer(&mut self.w, broker, &frame[4..], &mut audit)?;
            self.net.respond(&mut self.w, conn, inc, response);
        }
        Ok(())
    }

    // --- the checks -------------------------------------------------------------------------

    fn verify(&mut self) -> Result<(), String> {
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
    fn tally(&mut self) -> Tally {
        let mut t = std::mem::take(&mut self.tally);
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

const REPLAY: &str = "cargo test -p producer-core --features flash --test durable_simulation \
                      durable_replay_seed -- --nocapture";

/// Runs and checks one seed; returns its tally (or what failed) and, when asked, its trace.
fn simulate(seed: u64, trace: bool) -> (Result<Tally, String>, Option<String>) {
    let mut sim = Sim::new(seed, trace);
    let result = sim.run().and_then(|()| sim.verify());
    let trace = sim.w.trace.take();
    let result = match result {
        Ok(()) => Ok(sim.tally()),
        Err(e) => Err(format!(
            "({:?}, {:?}, life {}) {e}",
            sim.cluster.flavour, sim.policy, sim.life
        )),
    };
    (result, trace)
}

/// The sweep: `SIM_SEEDS` seeds (300 by default; CI runs many more, optimised).
#[test]
fn durable_many_seeds() {
    let seeds = harness::seeds_from_env(300);
    harness::sweep("durable simulation", seeds, REPLAY, |seed| {
        simulate(seed, false).0
    });
}

/// Replays one seed with a trace: `SIM_SEED=N`.
#[test]
fn durable_replay_seed() {
    harness::replay(simulate);
}

/// The same seed runs the same way.
#[test]
fn durable_seeds_are_deterministic() {
    for seed in [3, 11] {
        let (a, ta) = simulate(seed, true);
        let (b, tb) = simulate(seed, true);
        assert_eq!(ta, tb, "seed {seed} traced differently");
        assert_eq!(
            a.map(|t| t.to_string()),
            b.map(|t| t.to_string()),
            "seed {seed}"
        );
    }
}

// --- the flash model itself ------------------------------------------------------------

use embedded_storage::nor_flash::{NorFlash as _, ReadNorFlash as _};

/// A small chip for the flash model's own tests.
type SmallFlash = RamFlash<64>;

#[test]
fn ram_flash_writes_only_clear_bits_and_erases_set_them() {
    let mut f = SmallFlash::new(2);
    f.write(4, &[0x0F, 0xF0, 0x00, 0xFF]).unwrap();
    let mut b = [0u8; 4];
    f.read(4, &mut b).unwrap();
    assert_eq!(b, [0x0F, 0xF0, 0x00, 0xFF]);
    // Clearing more bits is fine; setting one is refused and programs nothing.
    f.write(4, &[0x0E, 0x00, 0x00, 0xFF]).unwrap();
    assert_eq!(
        f.write(4, &[0x1E, 0x00, 0x00, 0xFF]),
        Err(FlashError::NotWritable(4))
    );
    f.read(4, &mut b).unwrap();
    assert_eq!(b, [0x0E, 0x00, 0x00, 0xFF]);
    assert_eq!(f.write(2, &[0; 4]), Err(FlashError::NotAligned));
    assert_eq!(f.write(4, &[0; 3]), Err(FlashError::NotAligned));
    assert_eq!(f.write(128, &[0; 4]), Err(FlashError::OutOfBounds));
    assert_eq!(f.erase(0, 32), Err(FlashError::NotAligned));
    f.erase(0, 64).unwrap();
    f.read(4, &mut b).unwrap();
    assert_eq!(b, [0xFF; 4]);
}

#[test]
fn ram_flash_a_clean_cut_stops_a_write_at_its_byte_and_kills_the_chip() {
    let mut f = SmallFlash::new(1);
    f.cut_after(5, CutMode::Clean, 1);
    assert_eq!(f.write(0, &[0; 8]), Err(FlashError::PowerCut));
    assert!(f.is_dead());
    assert_eq!(f.take_cut_in(), Some(CutIn::Write));
    let mut b = [0u8; 8];
    assert_eq!(f.read(0, &mut b), Err(FlashError::PowerCut));
    assert_eq!(f.erase(0, 64), Err(FlashError::PowerCut));
    f.reboot();
    f.read(0, &mut b).unwrap();
    assert_eq!(b, [0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF]);
}

#[test]
fn ram_flash_a_torn_cut_leaves_a_subset_of_the_word_programmed() {
    let mut torn_somewhere = false;
    for seed in 0..64 {
        let mut f = SmallFlash::new(1);
        f.cut_after(1, CutMode::TornWrite, seed);
        assert_eq!(
            f.write(0, &[0x00, 0x0F, 0xAA, 0xFF]),
            Err(FlashError::PowerCut)
        );
        f.reboot();
        let mut b = [0u8; 4];
        f.read(0, &mut b).unwrap();
        assert_eq!(b[0], 0x00, "before the cut: written");
        // Each byte from the cut on lies between its old and its intended value.
        for (got, want) in b[1..].iter().zip([0x0F, 0xAA, 0xFF]) {
            assert_eq!(got & want, want);
        }
        torn_somewhere |= b[1] != 0xFF && b[1] != 0x0F;
    }
    assert!(torn_somewhere);
}

#[test]
fn ram_flash_a_cut_erase_leaves_an_erased_prefix() {
    let mut f = SmallFlash::new(2);
    f.write(0, &[0u8; 128]).unwrap();
    f.cut_after(70, CutMode::TornWrite, 3);
    assert_eq!(f.erase(0, 128), Err(FlashError::PowerCut));
    assert_eq!(f.take_cut_in(), Some(CutIn::Erase));
    f.reboot();
    let data = f.snapshot();
    assert!(data[..70].iter().all(|&b| b == 0xFF));
    assert!(data[70..].iter().all(|&b| b == 0));
}
