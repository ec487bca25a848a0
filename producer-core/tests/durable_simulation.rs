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
//! The cluster is the model of `client_simulation` (real request and response bytes, drops,
//! lost responses, delays, resets, leader moves, broker restarts, both broker flavours), and
//! the transport follows the durable rule: drain `persist_blocking` after every client call
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

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::time::Duration;

use producer_core::ErrorCode;
use producer_core::client::durable::BATCH_HEADER;
use producer_core::client::{
    Client, ClientConfig, ConnId, ProducerRecord, RestoreOptions, RestoreSummary, SendError,
};
use producer_core::flash::sequential_storage::Error as StorageError;
use producer_core::flash::{BlockingAsync, FlashStore, Geometry, StoreError};
use producer_core::state::{
    BatchState, BatchToken, FenceReason, NotPersistedReason, Outcome, PossiblyPersistedReason,
    UnknownOutcome,
};
use producer_core::time::Instant;
use producer_core::wire::{
    self, ApiVersion, ApiVersionsResponse, InitProducerIdResponse, List, MetadataBroker,
    MetadataPartition, MetadataResponse, MetadataTopic, ProducePartitionResponse, ProduceResponse,
    ProduceTopicResponse, RecordBatches, Request,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod harness;
mod model;
use harness::World;
use harness::ram_flash::{CutIn, CutMode, FlashError, RamFlash};
use model::{BatchId, Check, Flavour, Idempotence};

const TOPIC: &str = "sensors";
const PARTITIONS: usize = 3;
const BROKERS: usize = 3;
/// Of which `BATCH_HEADER` go to the storage header.
const BATCH_BYTES: usize = 600;
// Room for a few of the largest records (about 150 bytes) after the storage header.
const _: () = assert!(BATCH_BYTES - BATCH_HEADER > 3 * 150);
const SLOTS: usize = 16;
type TestClient = Client<Vec<u8>, 1, 4, SLOTS, 4>;
/// Erase page of the simulated flash: at most one full batch per page, so garbage collection
/// (page erases, items moved) is frequent.
const PAGE: usize = 1024;
type Flash = RamFlash<PAGE>;
type Store = FlashStore<BlockingAsync<Flash>, Vec<u8>>;
const REQUEST_TIMEOUT: Duration = Duration::from_millis(800);
const LINGER_AFTER_CLOSE: Duration = Duration::from_millis(50);
/// Values starting with this make the broker refuse their batch as too large.
const POISON: &str = "poison";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[derive(Debug)]
enum Ev {
    Connected(u8, u64),
    ConnectFailed(u8, u64),
    Arrive(u8, u64, Vec<u8>),
    Response(u8, u64, Vec<u8>),
    Reset(u8, u64),
    /// The application submits records (in the life given: a chain per life).
    Submit(u32),
    Cancel(u32),
    LeaderMove,
    BrokerDown(usize),
    BrokerUp(usize),
    StateLoss,
    /// Arms a cut inside the next flash writes, or cuts the power now.
    PowerCut,
    PowerOn,
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

/// One incarnation of a client connection, as the network sees it.
struct Wire {
    incarnation: u64,
    broker: usize,
    /// The device life that opened it.
    life: u32,
    connected: bool,
    black_requests: bool,
    black_responses: bool,
    last_arrival: Instant,
    last_response: Instant,
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
    key: Option<String>,
    value: String,
    deadline: Instant,
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
    flavour: Flavour,
    /// The transport asks for outcomes before it drains the writes an answer caused (the
    /// client must hold back an outcome until it is stored).
    eager_deliveries: bool,
    // The cluster.
    idempotence: Idempotence,
    leader: [usize; PARTITIONS],
    up: [bool; BROKERS],
    /// Per partition: (record uid, offset).
    logs: [Vec<(u32, i64)>; PARTITIONS],
    next_offset: [i64; PARTITIONS],
    /// Which life's request first appended a batch: (producer id, epoch, partition, base
    /// sequence).
    appended_in: HashMap<(i64, i16, usize, i32), u32>,
    /// The device life each producer id was issued to.
    pid_life: HashMap<i64, u32>,
    // The network.
    wires: BTreeMap<u8, Wire>,
    /// Closed incarnations: (broker, requests still processed, closed at, life).
    closed: BTreeMap<u64, (usize, u32, Instant, u32)>,
    next_incarnation: u64,
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
        let flavour = if seed.is_multiple_of(2) {
            Flavour::Kafka
        } else {
            Flavour::Tansu
        };
        // Wait mostly, FailAndFence for one seed in four (of both flavours).
        let policy = if (seed / 2) % 4 == 3 {
            UnknownOutcome::FailAndFence
        } else {
            UnknownOutcome::Wait
        };
        let mut config = ClientConfig::new("sim");
        config.request_timeout = REQUEST_TIMEOUT;
        config.linger = ms(rng.random_range(0..20));
        config.batch_bytes = BATCH_BYTES;
        config.reconnect_backoff = ms(rng.random_range(10..100));
        config.durable = true;
        config.producer.unknown_outcome = policy;
        config.producer.max_in_flight_per_partition = rng.random_range(1..=5);
        config.producer.retry_backoff = ms(rng.random_range(5..=50));
        config.producer.retry_backoff_max = ms(400);
        config.producer.abandoned_request_grace = LINGER_AFTER_CLOSE + ms(rng.random_range(1..100));
        let client = new_client(config);
        // Exactly what the slots need, or a page or two more.
        let pages = pages_needed(&client) + rng.random_range(0..=2);
        let records = rng.random_range(100..300);
        let eager_deliveries = rng.random_bool(0.3);
        let mut t = 0u64;
        let app = (0..records)
            .map(|uid| {
                t += rng.random_range(0..15);
                let deadline_ms = if rng.random_bool(0.4) {
                    rng.random_range(40..400)
                } else {
                    rng.random_range(400..5000)
                };
                let key = rng
                    .random_bool(0.7)
                    .then(|| format!("k{}", rng.random_range(0..8)));
                let pad = rng.random_range(0..120);
                let value = if rng.random_bool(0.01) {
                    format!("{POISON}-{uid}")
                } else {
                    format!("r{uid}-{}", "x".repeat(pad))
                };
                AppRecord {
                    key,
                    value,
                    deadline: Instant::from_millis(t + deadline_ms),
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
                }
            })
            .collect::<Vec<_>>();
        let fault_end = Instant::from_millis(t + rng.random_range(500..3000));
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
            flavour,
            eager_deliveries,
            idempotence: Idempotence::new(flavour),
            leader: [0, 1, 2],
            up: [true; BROKERS],
            logs: Default::default(),
            next_offset: [0; PARTITIONS],
            appended_in: HashMap::new(),
            pid_life: HashMap::new(),
            wires: BTreeMap::new(),
            closed: BTreeMap::new(),
            next_incarnation: 0,
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
        let limit = self.w.fault_end + Duration::from_secs(120);
        let mut wake = Some(Instant::ZERO);
        loop {
            let next_event = self.w.next_event_at();
            let fault_end = Some(self.w.fault_end).filter(|&t| t > self.w.now);
            let Some(next) = [next_event, wake, fault_end].into_iter().flatten().min() else {
                break;
            };
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
            self.wires.keys().collect::<Vec<_>>(),
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
        let conns: Vec<u8> = self.wires.keys().copied().collect();
        for conn in conns {
            self.close_wire(conn);
        }
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
        if self.flavour == Flavour::Tansu && self.w.rng.random_bool(0.3) {
            self.idempotence.forget();
            self.tally.broker_forgot += 1;
            self.w
                .log(|| "brokers restarted too: producer state forgotten".into());
        }
        let mut client = new_client(self.config);
        let mut store = Store::new(
            BlockingAsync::new(self.flash.clone()),
            self.range.clone(),
            vec![0u8; Store::buffer_len(BATCH_BYTES)],
            &client,
        )
        .map_err(|e| format!("store: {e:?}"))?;
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
            self.close_wire(conn.0);
        }
        while let Some((conn, host)) = self
            .client()?
            .poll_connect(now)
            .map(|(c, e)| (c, e.host.to_string()))
        {
            let broker = host
                .trim_start_matches('b')
                .parse::<usize>()
                .map_err(|e| e.to_string())?
                - 1;
            let incarnation = self.next_incarnation;
            self.next_incarnation += 1;
            self.wires.insert(
                conn.0,
                Wire {
                    incarnation,
                    broker,
                    life: self.life,
                    connected: false,
                    black_requests: false,
                    black_responses: false,
                    last_arrival: now,
                    last_response: now,
                },
            );
            let at = now + ms(self.w.rng.random_range(1..4));
            if self.up[broker] {
                self.w.schedule(at, Ev::Connected(conn.0, incarnation));
            } else {
                self.w.schedule(at, Ev::ConnectFailed(conn.0, incarnation));
            }
        }
        // Transmit, drain, and transmit again while a drain stored something: a batch waits
        // for its stamp to be durable before it leaves.
        let mut rounds = 0;
        loop {
            rounds += 1;
            if rounds > 100 {
                return Err("transmit and persist do not settle".into());
            }
            let conns: Vec<u8> = self
                .wires
                .iter()
                .filter(|(_, w)| w.connected)
                .map(|(c, _)| *c)
                .collect();
            for conn in conns {
                loop {
                    self.persist()?;
                    let dev = self.dev.as_mut().ok_or(Halt::Power)?;
                    let Some(n) = dev.client.poll_transmit(ConnId(conn), now, &mut self.tx) else {
                        break;
                    };
                    let frame = self.tx[..n].to_vec();
                    self.transmit(conn, frame);
                    if !self.wires.get(&conn).is_some_and(|w| w.connected) {
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
            Ev::Connected(conn, inc) => {
                if let Some(w) = self.wires.get_mut(&conn)
                    && w.incarnation == inc
                {
                    w.connected = true;
                    self.client()?.on_connected(ConnId(conn), now);
                    self.persist()?;
                }
            }
            Ev::ConnectFailed(conn, inc) => {
                if self.wires.get(&conn).is_some_and(|w| w.incarnation == inc) {
                    self.wires.remove(&conn);
                    self.client()?.on_connection_lost(ConnId(conn), now);
                    self.persist()?;
                }
            }
            Ev::Arrive(conn, inc, frame) => self.arrive(conn, inc, frame)?,
            Ev::Response(conn, inc, frame) => {
                if self.wires.get(&conn).is_some_and(|w| w.incarnation == inc) {
                    self.client()?.on_frame(ConnId(conn), now, &frame[4..]);
                    if self.eager_deliveries {
                        self.deliver()?;
                    }
                    self.persist()?;
                }
            }
            Ev::Reset(conn, inc) => {
                if self.wires.get(&conn).is_some_and(|w| w.incarnation == inc) {
                    self.w.log(|| format!("connection {conn} reset"));
                    self.close_wire(conn);
                    self.client()?.on_connection_lost(ConnId(conn), now);
                    self.persist()?;
                }
            }
            Ev::LeaderMove => {
                let p = self.w.rng.random_range(0..PARTITIONS);
                let to = self.w.rng.random_range(0..BROKERS);
                if self.up[to] {
                    self.w.log(|| format!("leader of {p} moves to broker {to}"));
                    self.leader[p] = to;
                }
            }
            Ev::BrokerDown(b) => {
                if self.up[b] && self.up.iter().filter(|u| **u).count() > 1 {
                    self.w.log(|| format!("broker {b} goes down"));
                    self.up[b] = false;
                    for p in 0..PARTITIONS {
                        if self.leader[p] == b {
                            self.leader[p] = (0..BROKERS).find(|&x| self.up[x]).unwrap_or(0);
                        }
                    }
                    let doomed: Vec<(u8, u64)> = self
                        .wires
                        .iter()
                        .filter(|(_, w)| w.broker == b)
                        .map(|(c, w)| (*c, w.incarnation))
                        .collect();
                    for (c, inc) in doomed {
                        self.w.schedule(now + ms(1), Ev::Reset(c, inc));
                    }
                    let at = now + ms(self.w.rng.random_range(50..1500));
                    self.w.schedule(at, Ev::BrokerUp(b));
                }
            }
            Ev::BrokerUp(b) => {
                self.w.log(|| format!("broker {b} is back"));
                self.up[b] = true;
            }
            Ev::StateLoss => {
                // Only while nothing that may have been appended can be resent or still be
                // processed, as in client_simulation: here that includes every stamped batch
                // of the store, which a live client holds (it restored them).
                let lingering = self
                    .closed
                    .values()
                    .any(|&(_, n, at, _)| n > 0 && now <= at + LINGER_AFTER_CLOSE);
                let quiet = !lingering
                    && self.dev.as_ref().is_some_and(|d| {
                        (0..SLOTS)
                            .filter_map(|s| d.client.sequencer().held(s))
                            .all(|h| {
                                !matches!(
                                    h.state,
                                    BatchState::InFlight { .. }
                                        | BatchState::Stamped {
                                            maybe_written: true,
                                            ..
                                        }
                                        | BatchState::Decided {
                                            outstanding: true,
                                            ..
                                        }
                                )
                            })
                    });
                if quiet {
                    self.w.log(|| "brokers forget producer state".into());
                    self.idempotence.forget();
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
            if r.deadline <= now {
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
            let record = ProducerRecord {
                topic: TOPIC,
                partition: None,
                key: r.key.as_deref().map(str::as_bytes),
                value: Some(r.value.as_bytes()),
                headers: &[],
                timestamp: 1_700_000_000_000 + now.as_micros() as i64 / 1000,
            };
            let deadline = r.deadline;
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

    fn transmit(&mut self, conn: u8, frame: Vec<u8>) {
        let black = self.w.chance(0.01);
        let reset = self.w.chance(0.008);
        let latency = self.w.latency(0.02, 300..2500, 200..6000);
        self.w.log(|| {
            format!(
                "send on {conn} ({latency:?}{}{}): {}",
                if black { ", black hole" } else { "" },
                if reset { ", reset" } else { "" },
                describe(&frame[4..])
            )
        });
        let now = self.w.now;
        let Some(w) = self.wires.get_mut(&conn) else {
            return;
        };
        w.black_requests |= black;
        let arrival = w.last_arrival.max(now + latency);
        w.last_arrival = arrival;
        let (inc, blackholed) = (w.incarnation, w.black_requests);
        if !blackholed {
            self.w.schedule(arrival, Ev::Arrive(conn, inc, frame));
        }
        if reset {
            let at = now + Duration::from_micros(self.w.rng.random_range(0..20_000));
            self.w.schedule(at, Ev::Reset(conn, inc));
        }
    }

    /// The connection closes (either side, or the device loses power): requests in transit
    /// may still reach the broker for a short while (it processes what it had read).
    fn close_wire(&mut self, conn: u8) {
        if let Some(w) = self.wires.remove(&conn) {
            let lingering = self.w.rng.random_range(0..=3);
            self.closed
                .insert(w.incarnation, (w.broker, lingering, self.w.now, w.life));
        }
    }

    fn arrive(&mut self, conn: u8, inc: u64, frame: Vec<u8>) -> Result<(), String> {
        let live = self
            .wires
            .get(&conn)
            .filter(|w| w.incarnation == inc)
            .map(|w| (w.broker, w.life));
        let (broker, life) = match live {
            Some(b) => b,
            None => match self.closed.get_mut(&inc) {
                Some((b, n, at, life)) if *n > 0 && self.w.now <= *at + LINGER_AFTER_CLOSE => {
                    *n -= 1;
                    (*b, *life)
                }
                _ => return Ok(()),
            },
        };
        if !self.up[broker] {
            return Ok(());
        }
        let response = self.answer(broker, life, &frame[4..])?;
        let Some(w) = self.wires.get_mut(&conn).filter(|w| w.incarnation == inc) else {
            return Ok(());
        };
        if w.black_responses {
            return Ok(());
        }
        let black = self.w.now < self.w.fault_end && self.w.rng.random_bool(0.01);
        let latency = self.w.latency(0.02, 300..2500, 200..6000);
        let now = self.w.now;
        let w = self.wires.get_mut(&conn).expect("wire");
        w.black_responses |= black;
        if black {
            return Ok(());
        }
        let at = w.last_response.max(now + latency);
        w.last_response = at;
        self.w.schedule(at, Ev::Response(conn, inc, response));
        Ok(())
    }

    /// The model broker: decodes the request with the codec and answers it. `life` is the
    /// device life that sent it.
    fn answer(&mut self, broker: usize, life: u32, frame: &[u8]) -> Result<Vec<u8>, String> {
        let (header, request) =
            wire::decode_request(frame).map_err(|e| format!("client sent garbage: {e:?}"))?;
        let version = header.api_version;
        let corr = header.correlation_id;
        let mut out = vec![0u8; 64 * 1024];
        let n = match request {
            Request::ApiVersions(_) => {
                let keys = [
                    ApiVersion {
                        api_key: 0,
                        min_version: 3,
                        max_version: 11,
                    },
                    ApiVersion {
                        api_key: 3,
                        min_version: 1,
                        max_version: 12,
                    },
                    ApiVersion {
                        api_key: 18,
                        min_version: 0,
                        max_version: 3,
                    },
                    ApiVersion {
                        api_key: 22,
                        min_version: 0,
                        max_version: 5,
                    },
                ];
                let body = ApiVersionsResponse {
                    api_keys: List::from_slice(&keys),
                    ..Default::default()
                };
                wire::encode_response(&mut out, version, corr, &body)
            }
            Request::Metadata(_) => {
                let hosts: Vec<String> = (0..BROKERS).map(|b| format!("b{}", b + 1)).collect();
                let brokers: Vec<MetadataBroker<'_>> = (0..BROKERS)
                    .filter(|&b| self.up[b])
                    .map(|b| MetadataBroker {
                        node_id: b as i32 + 1,
                        host: &hosts[b],
                        port: 9092,
                        rack: None,
                    })
                    .collect();
                let partitions: Vec<MetadataPartition<'_>> = (0..PARTITIONS)
                    .map(|p| MetadataPartition {
                        error_code: 0,
                        partition_index: p as i32,
                        leader_id: self.leader[p] as i32 + 1,
                        leader_epoch: 0,
                        replica_nodes: List::EMPTY,
                        isr_nodes: List::EMPTY,
                        offline_replicas: List::EMPTY,
                    })
                    .collect();
                let topics = [MetadataTopic {
                    error_code: 0,
                    name: Some(TOPIC),
                    topic_id: [0; 16],
                    is_internal: false,
                    partitions: List::from_slice(&partitions),
                    topic_authorized_operations: 0,
                }];
                let body = MetadataResponse {
                    throttle_time_ms: 0,
                    brokers: List::from_slice(&brokers),
                    cluster_id: None,
                    controller_id: 1,
                    topics: List::from_slice(&topics),
                    cluster_authorized_operations: 0,
                };
                wire::encode_response(&mut out, version, corr, &body)
            }
            Request::InitProducerId(_) => {
                let body = if self.w.chance(0.05) {
                    InitProducerIdResponse {
                        throttle_time_ms: 0,
                        error_code: ErrorCode::COORDINATOR_NOT_AVAILABLE.0,
                        producer_id: -1,
                        producer_epoch: -1,
                    }
                } else {
                    let epoch = if self.flavour == Flavour::Kafka && self.w.rng.random_bool(0.2) {
                        i16::MAX - self.w.rng.random_range(0..3)
                    } else {
                        0
                    };
                    InitProducerIdResponse {
                        throttle_time_ms: 0,
                        error_code: 0,
                        producer_id: {
                            let pid = self.idempotence.issue(epoch);
                            self.pid_life.insert(pid, life);
                            pid
                        },
                        producer_epoch: epoch,
                    }
                };
                wire::encode_response(&mut out, version, corr, &body)
            }
            Request::Produce(produce) => {
                if produce.acks != -1 {
                    return Err(format!("acks {} instead of -1", produce.acks));
                }
                let mut answers: Vec<ProducePartitionResponse<'_>> = Vec::new();
                for topic in &produce.topics {
                    if topic.name != TOPIC {
                        return Err(format!("produce to unknown topic {}", topic.name));
                    }
                    // Like Kafka, keyed by partition: a partition named twice keeps only its
                    // last entry and gets one answer.
                    let entries: BTreeMap<i32, Option<&[u8]>> = topic
                        .partitions
                        .iter()
                        .map(|p| (p.index, p.records))
                        .collect();
                    for (index, records) in entries {
                        let (error, base_offset) =
                            self.produce_partition(broker, life, index, records)?;
                        answers.push(ProducePartitionResponse {
                            index,
                            error_code: error.0,
                            base_offset,
                            ..Default::default()
                        });
                    }
                }
                let topics = [ProduceTopicResponse {
                    name: TOPIC,
                    partitions: List::from_slice(&answers),
                }];
                let body = ProduceResponse {
                    topics: List::from_slice(&topics),
                    ..Default::default()
                };
                wire::encode_response(&mut out, version, corr, &body)
            }
        }
        .map_err(|e| format!("model broker cannot encode: {e:?}"))?;
        out.truncate(n);
        self.w
            .log(|| format!("broker {broker} answers {:?} corr {corr}", header.api_key));
        Ok(out)
    }

    fn produce_partition(
        &mut self,
        broker: usize,
        life: u32,
        partition: i32,
        records: Option<&[u8]>,
    ) -> Result<(ErrorCode, i64), String> {
        let p = usize::try_from(partition).map_err(|_| "negative partition")?;
        if p >= PARTITIONS {
            return Err(format!("produce to partition {partition}"));
        }
        let mut batches = RecordBatches::new(records.ok_or("null records")?);
        let batch = batches
            .next()
            .ok_or("no batch")?
            .map_err(|e| format!("bad batch (CRC checked): {e:?}"))?;
        if batches.next().is_some() {
            return Err("more than one batch for a partition".into());
        }
        let h = batch.header;
        let mut uids = Vec::new();
        let mut poison = false;
        for record in &batch.records {
            let value = std::str::from_utf8(record.value.ok_or("null value")?)
                .map_err(|e| e.to_string())?;
            if value.starts_with(POISON) {
                poison = true;
                uids.push(
                    value[POISON.len() + 1..]
                        .parse::<u32>()
                        .map_err(|e| e.to_string())?,
                );
            } else {
                let digits: String = value[1..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                uids.push(digits.parse::<u32>().map_err(|e| e.to_string())?);
            }
        }
        if h.record_count as usize != uids.len() {
            return Err("record count mismatch".into());
        }
        // Nothing leaves before its batch is durable: a record is sent by the life that
        // accepted it once it is durable, or, lost at a cut, by a later life that restored it
        // from a write the store had reported failed.
        for &uid in &uids {
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
        // A producer id from an earlier life (resumed after a restart) only carries the
        // batches restored with its stamps: everything newer waits for a new producer id.
        if let Some(&issued) = self.pid_life.get(&h.producer_id)
            && issued < life
            && let Some(uid) = uids.iter().find(|&&u| {
                self.app[u as usize]
                    .accepted
                    .is_some_and(|(l, _, _)| l >= life)
            })
        {
            return Err(format!(
                "record {uid} of life {life} sent under producer id {} of life {issued}",
                h.producer_id
            ));
        }
        if self.leader[p] != broker {
            return Ok((ErrorCode::NOT_LEADER_OR_FOLLOWER, -1));
        }
        if poison {
            return Ok((ErrorCode::MESSAGE_TOO_LARGE, -1));
        }
        if self.w.chance(0.02) {
            return Ok((ErrorCode::NOT_ENOUGH_REPLICAS, -1));
        }
        let id = BatchId {
            producer_id: h.producer_id,
            epoch: h.producer_epoch,
            base_sequence: h.base_sequence,
            records: uids.len() as u32,
        };
        let appended_key = (h.producer_id, h.producer_epoch, p, h.base_sequence);
        let check = self.idempotence.check(p, id);
        self.w.log(|| {
            format!(
                "broker {broker}: {uids:?} to partition {p} as ({}, {}, {}) from life {life}: {check:?}",
                h.producer_id, h.producer_epoch, h.base_sequence
            )
        });
        match check {
            Check::Refuse(code) => Ok((code, -1)),
            Check::Duplicate(offset) => {
                self.tally.dedup += 1;
                if self
                    .appended_in
                    .get(&appended_key)
                    .is_some_and(|&l| l < life)
                {
                    self.tally.dedup_after_restart += 1;
                    self.w
                        .log(|| "broker deduplicates a batch appended in an earlier life".into());
                }
                Ok(self.idempotence.duplicate_answer(offset))
            }
            Check::Append => {
                let unknown = self.w.chance(0.004);
                if unknown && self.w.rng.random_bool(0.5) {
                    return Ok((ErrorCode(999), -1));
                }
                let base = self.next_offset[p];
                for (i, uid) in uids.iter().enumerate() {
                    self.logs[p].push((*uid, base + i as i64));
                }
                self.next_offset[p] += uids.len() as i64;
                self.idempotence.appended(p, id, base);
                self.appended_in.insert(appended_key, life);
                if unknown {
                    Ok((ErrorCode(999), -1))
                } else if self.w.chance(0.02) {
                    Ok((ErrorCode::REQUEST_TIMED_OUT, -1))
                } else if self.w.chance(0.01) {
                    Ok((ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND, -1))
                } else {
                    Ok((ErrorCode::NONE, base))
                }
            }
        }
    }

    // --- the checks -------------------------------------------------------------------------

    fn verify(&mut self) -> Result<(), String> {
        let mut seen: BTreeMap<u32, (usize, i64)> = BTreeMap::new();
        for (p, log) in self.logs.iter().enumerate() {
            let mut last = None;
            for &(uid, offset) in log {
                if seen.insert(uid, (p, offset)).is_some() {
                    return Err(format!("record {uid} is in the log twice"));
                }
                if let Some(prev) = last
                    && uid <= prev
                {
                    return Err(format!("partition {p}: record {uid} after record {prev}"));
                }
                last = Some(uid);
            }
        }
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
            if let (Some(&(p, _)), Some(expected)) = (in_log, r.partition)
                && p as i32 != expected
            {
                return Err(format!("record {uid} landed in {p}, reported {expected}"));
            }
            match first.outcome {
                Outcome::Persisted { .. } => {
                    let Some(&(_, log_offset)) = in_log else {
                        return Err(format!("record {uid} reported persisted, not in the log"));
                    };
                    if let Some(o) = first.offset
                        && o != log_offset
                    {
                        return Err(format!(
                            "record {uid}: offset {o}, the log has {log_offset}"
                        ));
                    }
                }
                Outcome::NotPersisted(_) if in_log.is_some() => {
                    return Err(format!(
                        "record {uid} reported not persisted but is in the log"
                    ));
                }
                // At most once: no record is in the log twice (checked above).
                _ => {}
            }
            if r.value.starts_with(POISON) && matches!(first.outcome, Outcome::Persisted { .. }) {
                return Err(format!("poison record {uid} persisted"));
            }
            let limit = r.cancelled_at.map_or(r.deadline, |c| c.min(r.deadline));
            // Deadlines are the client's to honour once it accepted the record, in the life
            // that accepted it (a restart gives restored batches the restore deadline).
            if r.accepted.is_some()
                && !first.restored
                && self.policy == UnknownOutcome::FailAndFence
                && first.at > limit
            {
                return Err(format!(
                    "record {uid}: outcome at {:?} after its deadline {limit:?}",
                    first.at
                ));
            }
            if self.policy == UnknownOutcome::Wait
                && matches!(
                    first.outcome,
                    Outcome::PossiblyPersisted(PossiblyPersistedReason::Deadline)
                )
            {
                return Err(format!(
                    "record {uid}: a deadline gave up an unknown batch under Wait"
                ));
            }
        }
        // Everything is decided and handed out: a restart now finds nothing to restore.
        let mut client = new_client(self.config);
        let mut store = Store::new(
            BlockingAsync::new(self.flash.clone()),
            self.range.clone(),
            vec![0u8; Store::buffer_len(BATCH_BYTES)],
            &client,
        )
        .map_err(|e| format!("store: {e:?}"))?;
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

/// What a request carries, for the trace: per produce entry, partition, stamp and values.
fn describe(frame: &[u8]) -> String {
    let Ok((header, request)) = wire::decode_request(frame) else {
        return "garbage".into();
    };
    let Request::Produce(produce) = request else {
        return format!("{:?} corr {}", header.api_key, header.correlation_id);
    };
    let mut out = format!("produce corr {}", header.correlation_id);
    for topic in &produce.topics {
        for p in &topic.partitions {
            let Some(Ok(batch)) = p.records.and_then(|r| RecordBatches::new(r).next()) else {
                continue;
            };
            let h = batch.header;
            let values: Vec<String> = batch
                .records
                .iter()
                .map(|r| {
                    let v = String::from_utf8_lossy(r.value.unwrap_or_default()).to_string();
                    v.split('-').next().unwrap_or_default().to_string()
                })
                .collect();
            out += &format!(
                "; p{} ({}, {}, {}) {values:?}",
                p.index, h.producer_id, h.producer_epoch, h.base_sequence
            );
        }
    }
    out
}

fn new_client(config: ClientConfig<'static>) -> TestClient {
    TestClient::new(
        config,
        &["b1:9092", "b2:9092", "b3:9092"],
        &[TOPIC],
        vec![0u8; SLOTS * BATCH_BYTES],
    )
    .expect("valid configuration")
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
            sim.flavour, sim.policy, sim.life
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
    let Some(seed) = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()) else {
        return;
    };
    let (result, trace) = simulate(seed, true);
    println!("{}", trace.unwrap_or_default());
    match result {
        Ok(t) => println!("seed {seed} passed: {t}"),
        Err(e) => panic!("seed {seed} failed: {e}"),
    }
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
