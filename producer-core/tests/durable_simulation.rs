//! Deterministic simulation of a gateway whose producer keeps its batches in a durable store
//! (`ClientConfig::durable`, `flash::FlashStore` over sequential-storage) on a simulated NOR
//! flash (`harness::ram_flash`) that loses power at random moments: between two steps, or
//! inside a flash write, a page erase or a garbage collection (the word being written torn
//! or not), and sometimes again while the device boots and restores. At a cut the device
//! loses its RAM (the client, and the application's records not yet durably accepted: lost
//! by design), its connections close (the broker may still process what it had read), and
//! after a reboot a fresh client restores from the flash and carries on; a tansu-like broker
//! sometimes restarted meanwhile and no longer knows the restored producer id, and a Kafka-like
//! one may have expired the producer's state by its record timestamps (the client is told the
//! wall clock, and restores with the producer-state lifetime).
//!
//! The cluster and the network are those of `client_simulation` (`model::broker`,
//! `model::net`: real request and response bytes, drops, lost responses, delays, resets,
//! leader moves, broker restarts, both broker flavours, Kafka's acks waits, expiry, snapshots
//! and stragglers), and the transport follows the durable rule: drain `persist_blocking` after every client call
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
//! A sweep stops at its fifth failing seed; `SIM_ALL=1` runs them all and lists each failing
//! one, and `SIM_FROM=N` starts at seed N.

use std::collections::HashMap;
use std::ops::Range;
use std::time::Duration;

use producer_core::ErrorCode;
use producer_core::client::BATCH_HEADER;
use producer_core::client::{ClientConfig, ConnId, SendError};
use producer_core::flash::sequential_storage::Error as StorageError;
use producer_core::flash::{BlockingAsync, FlashStore, Geometry, StoreError};
use producer_core::state::{BatchToken, NotPersistedReason, Outcome, UnknownOutcome};
use producer_core::time::Instant;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod harness;
mod model;
/// The durable simulation's parts, by concept.
mod durable {
    pub mod audit;
    pub mod checks;
    pub mod delivery;
    pub mod flash_model;
    pub mod persist;
    pub mod power;
    pub mod submit;
    pub mod tally;
}
use durable::audit::Audit;
use durable::tally::Tally;
use harness::World;
use harness::client::{BATCH_BYTES, SLOTS, TestClient, new_client};
use harness::ram_flash::{CutIn, CutMode, FlashError, RamFlash};
use model::broker::{BROKERS, Cluster, PARTITIONS};
use model::clock::Clocks;
use model::net::{Net, NetEv};
use model::records::{Planned, plan};
use model::{Flavour, pins_producer_state};

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
    /// Kafka: the leader of a partition restarts cleanly and leads again from its snapshot.
    Restart(usize),
    /// Kafka: a partition's in-sync replicas are slow for a while.
    SlowReplicas(usize),
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
    /// The client refused it as older than its producer-state lifetime.
    stale: bool,
}

/// The device: the client and its store, both gone at a power cut.
struct Device {
    client: TestClient,
    store: Store,
}

struct Sim {
    w: World<Ev>,
    policy: UnknownOutcome,
    clocks: Clocks,
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
        let clocks = Clocks::draw(&mut rng, flavour);
        let mut config = harness::client::config(&mut rng, policy, flavour, &clocks);
        config.durable = true;
        let client = new_client(config);
        // Exactly what the slots need, or a page or two more.
        let pages = pages_needed(&client) + rng.random_range(0..=2);
        let records = rng.random_range(100..300);
        let eager_deliveries = rng.random_bool(0.3);
        let (mut planned, mut fault_end) = plan(&mut rng, records);
        clocks.age(&mut rng, &mut planned);
        clocks.pause(&mut rng, &mut planned, &mut fault_end);
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
                stale: false,
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
            clocks,
            eager_deliveries,
            cluster: Cluster::new(flavour, clocks),
            appended_in: HashMap::new(),
            identity_life: HashMap::new(),
            net: Net::new(flavour, true),
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
        // Kafka loses producer state by time (expiry) and by restarts (snapshots); a loss at
        // any moment, as tansu's restart, would defeat every client that pipelines there:
        // Kafka then appends any sequence, so a batch after one refused before its append
        // lands first.
        if flavour == Flavour::Kafka {
            sim.w
                .scatter(0..3, |rng| Ev::Restart(rng.random_range(0..PARTITIONS)));
            sim.w.scatter(0..3, |rng| {
                Ev::SlowReplicas(rng.random_range(0..PARTITIONS))
            });
        } else {
            sim.w.scatter(0..3, |_| Ev::StateLoss);
        }
        sim.w.scatter(0..6, |rng| {
            let uid = rng.random_range(0..records) as u32;
            Ev::Cancel(uid)
        });
        sim.w.scatter(0..6, |_| Ev::PowerCut);
        sim.cluster.start(&mut sim.w);
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
            self.w.spin_check()?;
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
            && !self.net.busy(self.w.now)
    }

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
        if self.clocks.client_knows {
            let wall = self.clocks.client_ms(now);
            self.client()?.set_wall_clock(now, wall);
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
            Ev::Net(NetEv::Arrive(_, inc, sent, frame)) => {
                if self.net.on_arrive(now, inc, sent, frame) {
                    self.serve(inc)?;
                }
            }
            Ev::Net(NetEv::AcksDone(inc)) => {
                self.net.on_acks_done(&mut self.w, &mut self.cluster, inc)?;
                self.serve(inc)?;
            }
            Ev::Net(NetEv::LeaderMoves(p, to)) => self.cluster.move_leader_to(&mut self.w, p, to),
            Ev::Net(NetEv::ExpiryCheck) => self.cluster.expiry_check(&mut self.w),
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
            Ev::BrokerDown(b) => {
                // Kafka: once back, it may lead its partitions again, from its snapshot
                // after a clean shutdown.
                let (lead_again, clean) = match self.cluster.flavour {
                    Flavour::Kafka => (self.w.rng.random_bool(0.5), self.w.rng.random_bool(0.5)),
                    Flavour::Tansu => (false, false),
                };
                self.net
                    .broker_down(&mut self.w, &mut self.cluster, b, lead_again, clean);
            }
            Ev::SlowReplicas(p) => self.cluster.slow_replicas(&mut self.w, p),
            Ev::Restart(p) => {
                let b = self.cluster.leader[p];
                self.net
                    .broker_down(&mut self.w, &mut self.cluster, b, true, true);
            }
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

    /// The broker serves what incarnation `inc` has queued (see `Net::serve`), checking what
    /// each request carries against the life that sent it.
    fn serve(&mut self, inc: u64) -> Result<(), String> {
        let (app, identity_life, appended_in, tally) = (
            &self.app,
            &mut self.identity_life,
            &mut self.appended_in,
            &mut self.tally,
        );
        self.net.serve(
            &mut self.w,
            &mut self.cluster,
            inc,
            |w, cluster, broker, life, frame| {
                let mut audit = Audit {
                    life,
                    app,
                    identity_life,
                    appended_in,
                    tally,
                };
                cluster.answer(w, broker, frame, &mut audit)
            },
        )
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
