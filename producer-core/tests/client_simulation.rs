//! Deterministic simulation of the whole client: real request and response bytes, connections,
//! ApiVersions, Metadata, InitProducerId, the accumulator, routing and timeouts, against a
//! model cluster of three brokers that decodes what the client sends with the codec and
//! applies Kafka's (or tansu's) idempotence rules. The network drops requests, loses
//! responses after the append, delays, resets connections (the broker may still process what
//! it had read), leaders move, brokers go down and come back, producer state is forgotten, and
//! the application sets deadlines and cancels. The Kafka flavour behaves like Kafka 4 (see
//! `model`): answers wait for acks and may come back 6 after the append when leadership moves
//! meanwhile, an unknown producer is appended at any sequence, producer state expires by
//! record timestamp (the client is told the wall clock, and some seeds' records carry old
//! timestamps), a clean restart of a leader leaves it only the last batch per producer, and a
//! closed connection's requests may still be processed up to five produce timeouts later.
//! After each seed settles, every record's outcome is checked against the model's log.
//!
//! `SIM_SEEDS=N` sets how many seeds `client_many_seeds` runs;
//! `SIM_SEED=N cargo test -p producer-core --test client_simulation client_replay_seed --
//! --nocapture` replays one with a trace.
//! A sweep stops at its fifth failing seed; `SIM_ALL=1` runs them all and lists each failing
//! one, and `SIM_FROM=N` starts at seed N.

use std::collections::HashMap;
use std::time::Duration;

use producer_core::ErrorCode;
use producer_core::client::{ConnId, SendError};
use producer_core::state::{
    BatchToken, NotPersistedReason, Outcome, PossiblyPersistedReason, UnknownOutcome,
};
use producer_core::time::Instant;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod harness;
mod model;
use harness::World;
use harness::client::{TestClientWith, new_client_with};
use model::broker::{BROKERS, Cluster, Judged, PARTITIONS};
use model::clock::Clocks;
use model::faults::Faults;
use model::net::{Hostile, Net, NetEv};
use model::outcomes::{deadline_honoured, true_of_log};
use model::pace::{Dials, Paced, Pressure};
use model::records::{Planned, plan};
use model::{Flavour, pins_producer_state};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[derive(Debug)]
enum Ev {
    Net(NetEv),
    Submit,
    Cancel(u32),
    LeaderMove,
    BrokerDown(usize),
    /// Kafka: the leader of a partition restarts cleanly and leads again from its snapshot.
    Restart(usize),
    /// Kafka: a partition's in-sync replicas are slow for a while.
    SlowReplicas(usize),
    StateLoss,
}

impl From<NetEv> for Ev {
    fn from(e: NetEv) -> Self {
        Ev::Net(e)
    }
}

struct AppRecord {
    plan: Planned,
    accepted: Option<(BatchToken, u32)>,
    partition: Option<i32>,
    outcome: Option<(Outcome, Option<i64>, Instant)>,
    cancelled_at: Option<Instant>,
    /// The client refused it as older than its producer-state lifetime.
    stale: bool,
}

struct Sim<const K: usize> {
    w: World<Ev>,
    policy: UnknownOutcome,
    clocks: Clocks,
    cluster: Cluster,
    net: Net<()>,
    // The client and the application.
    client: TestClientWith<K>,
    tx: Vec<u8>,
    app: Vec<AppRecord>,
    next_submit: usize,
    receipts: HashMap<(BatchToken, u32), u32>,
    /// What the client pressed on the cluster, held to `model::pace`'s bounds.
    pressure: Pressure,
}

impl<const K: usize> Sim<K> {
    fn new(seed: u64, trace: bool) -> Sim<K> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let flavour = Flavour::of_seed(seed);
        let policy = if (seed / 2).is_multiple_of(2) {
            UnknownOutcome::FailAndFence
        } else {
            UnknownOutcome::Wait
        };
        let clocks = Clocks::draw(&mut rng, flavour);
        let config = harness::client::config(&mut rng, policy, flavour, &clocks);
        let pressure = Pressure {
            dials: Dials::new(config.reconnect_backoff, config.reconnect_backoff_max),
            metadata: Paced::default(),
            retry_backoff: config.producer.retry_backoff,
            retry_backoff_max: config.producer.retry_backoff_max,
            bumps: Default::default(),
            bumps_seen: 0,
            inits: Dials::new(
                config.producer.retry_backoff,
                config.producer.retry_backoff_max,
            ),
            grants_seen: 0,
            requests: [0; 3],
            targets: HashMap::new(),
            in_flight: HashMap::new(),
        };
        let client = new_client_with::<K>(config);
        let records = rng.random_range(30..150);
        let (mut planned, mut fault_end) = plan(&mut rng, records);
        clocks.age(&mut rng, &mut planned);
        clocks.pause(&mut rng, &mut planned, &mut fault_end);
        let app = planned
            .into_iter()
            .map(|plan| AppRecord {
                plan,
                accepted: None,
                partition: None,
                outcome: None,
                cancelled_at: None,
                stale: false,
            })
            .collect();
        let mut sim = Sim {
            w: World::new(rng, fault_end, trace),
            policy,
            clocks,
            cluster: Cluster::new(flavour, clocks),
            net: Net::new(flavour, true),
            client,
            tx: vec![0u8; 16 * 1024],
            app,
            next_submit: 0,
            receipts: HashMap::new(),
            pressure,
        };
        // One seed in sixteen each: the brokers refuse every connection, close each at once,
        // or answer 45 to every batch they would append, over the middle half of the faults.
        let (from, until) = (
            Instant::ZERO + ms(fault_end.as_micros() / 4000),
            Instant::ZERO + ms(fault_end.as_micros() * 3 / 4000),
        );
        match (seed / 8) % 16 {
            0 => sim.net.hostile = Some((Hostile::Refuse, from, until)),
            1 => sim.net.hostile = Some((Hostile::CloseAtOnce, from, until)),
            2 => sim.cluster.refuse_45 = Some((from, until)),
            _ => {}
        }
        sim.w.schedule(Instant::ZERO, Ev::Submit);
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
        sim.cluster.start(&mut sim.w);
        sim.w.scatter(0..6, |rng| {
            let uid = rng.random_range(0..records) as u32;
            Ev::Cancel(uid)
        });
        sim
    }

    fn run(&mut self) -> Result<(), String> {
        let limit = self.w.settle_by();
        let mut wake = Some(Instant::ZERO);
        while let Some(next) = self.w.next_instant(wake) {
            if next > limit {
                return Err(self.stuck(&format!("did not settle by {limit:?}")));
            }
            self.w.now = self.w.now.max(next);
            if let Err(e) = self.w.spin_check() {
                return Err(self.stuck(&e));
            }
            while let Some(ev) = self.w.pop_due() {
                self.handle(ev)?;
            }
            wake = self.step()?;
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

    /// What a seed that hangs or spins is stuck on.
    fn stuck(&self, what: &str) -> String {
        let conns: Vec<_> = (0..K as u8)
            .map(|c| self.client.connection(ConnId(c)))
            .collect();
        let held: Vec<_> = self
            .app
            .iter()
            .filter(|r| r.outcome.is_none())
            .filter_map(|r| r.accepted)
            .map(|(b, _)| self.client.sequencer().batch_state(b))
            .collect();
        format!(
            "{what}: metadata {:?}, identity {:?}, connections {conns:?}, wires {:?}, up {:?}, undecided {held:?}, submitted {}/{}",
            self.client.metadata(),
            self.client.sequencer().identity(),
            self.net.wires.keys().collect::<Vec<_>>(),
            self.cluster.up,
            self.next_submit,
            self.app.len()
        )
    }

    /// One pass of the transport loop.
    fn step(&mut self) -> Result<Option<Instant>, String> {
        if self.clocks.client_knows {
            let now = self.w.now;
            self.client.set_wall_clock(now, self.clocks.client_ms(now));
        }
        self.client.poll(self.w.now);
        while let Some(conn) = self.client.poll_close() {
            self.w
                .log(|| format!("client closes connection {}", conn.0));
            self.net.close(&mut self.w, conn.0);
            self.pressure
                .closed(conn.0, |t| self.client.dial_failures(t));
        }
        while let Some((conn, endpoint)) = self.client.poll_connect(self.w.now) {
            self.net
                .connect(&mut self.w, conn.0, &endpoint.host, (), &self.cluster.up)?;
            let p = &mut self.pressure;
            p.in_flight.retain(|(c, _), _| *c != conn.0);
            match self.client.connection(conn) {
                Some((Some(target), _)) => {
                    let failures = self.client.dial_failures(target);
                    p.dials.forgotten(target, failures);
                    p.dials.dialled(target, self.w.now);
                    self.w.log(|| {
                        format!(
                            "client dials {target:?} on {} after {failures} failures",
                            conn.0
                        )
                    });
                    p.targets.insert(conn.0, (target, failures));
                }
                other => return Err(format!("dialled {conn:?} to no target: {other:?}")),
            }
        }
        while let Some(conn) = self.client.poll_close() {
            self.w
                .log(|| format!("client closes connection {}", conn.0));
            self.net.close(&mut self.w, conn.0);
            self.pressure
                .closed(conn.0, |t| self.client.dial_failures(t));
        }
        for conn in self.net.connected() {
            while let Some(n) = self
                .client
                .poll_transmit(ConnId(conn), self.w.now, &mut self.tx)
            {
                let frame = self.tx[..n].to_vec();
                self.pressure.sent(conn, &frame, self.w.now);
                self.net.transmit(&mut self.w, conn, frame);
                if !self.net.is_connected(conn) {
                    break;
                }
            }
        }
        // Time may have sealed batches or applied deadlines: poll again for the wake-up.
        let wake = self.client.poll(self.w.now);
        let c = self.client.counters();
        self.pressure
            .bumps_at(c.paced_fences, c.epoch_bumps, c.producer_ids, self.w.now);
        self.drain()?;
        Ok(wake)
    }

    fn settled(&self) -> bool {
        self.next_submit == self.app.len()
            && self.app.iter().all(|r| r.outcome.is_some())
            && self.client.is_idle()
            && self.w.now >= self.w.fault_end
            && !self.net.busy(self.w.now)
    }

    fn handle(&mut self, ev: Ev) -> Result<(), String> {
        match ev {
            Ev::Submit => self.submit(),
            Ev::Cancel(uid) => {
                let r = &self.app[uid as usize];
                if let (Some((batch, _)), None) = (r.accepted, r.outcome) {
                    let _ = self.client.cancel(batch, self.w.now);
                    // Every record of the batch shares the cancel.
                    for rec in self.app.iter_mut() {
                        if rec.accepted.is_some_and(|(b, _)| b == batch) && rec.outcome.is_none() {
                            rec.cancelled_at.get_or_insert(self.w.now);
                        }
                    }
                    self.w.log(|| format!("cancel record {uid}"));
                }
            }
            Ev::Net(NetEv::Connected(conn, inc)) => {
                if self.net.on_connected(conn, inc) {
                    self.client.on_connected(ConnId(conn), self.w.now);
                }
            }
            Ev::Net(NetEv::ConnectFailed(conn, inc)) => {
                if self.net.on_connect_failed(conn, inc) {
                    self.client.on_connection_lost(ConnId(conn), self.w.now);
                }
            }
            Ev::Net(NetEv::Arrive(_, inc, sent, frame)) => {
                if self.net.on_arrive(self.w.now, inc, sent, frame) {
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
                    self.pressure.answered(conn, &frame);
                    self.client.on_frame(ConnId(conn), self.w.now, &frame[4..]);
                    let c = self.client.counters();
                    self.pressure.bumps_at(
                        c.paced_fences,
                        c.epoch_bumps,
                        c.producer_ids,
                        self.w.now,
                    );
                }
            }
            Ev::Net(NetEv::Reset(conn, inc)) => {
                if self.net.on_reset(&mut self.w, conn, inc) {
                    self.client.on_connection_lost(ConnId(conn), self.w.now);
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
                // processed: the guarantee rests on the broker keeping producer state for
                // unresolved batches, and no client can do without that.
                let quiet = !self.net.lingering(self.w.now)
                    && self
                        .app
                        .iter()
                        .filter_map(|r| r.accepted)
                        .all(|(batch, _)| {
                            !self
                                .client
                                .sequencer()
                                .batch_state(batch)
                                .is_some_and(pins_producer_state)
                        });
                if quiet {
                    self.w.log(|| "brokers forget producer state".into());
                    self.cluster.idempotence.forget();
                }
            }
        }
        Ok(())
    }

    fn submit(&mut self) {
        while self.next_submit < self.app.len() {
            let uid = self.next_submit;
            let r = &self.app[uid];
            if let Some(at) = r.plan.not_before.filter(|&t| t > self.w.now) {
                self.w.schedule(at, Ev::Submit);
                return;
            }
            if r.plan.deadline <= self.w.now {
                // Never accepted before its deadline: the application knows it was not sent.
                self.app[uid].outcome = Some((
                    Outcome::NotPersisted(producer_core::state::NotPersistedReason::Deadline),
                    None,
                    self.w.now,
                ));
                self.next_submit += 1;
                continue;
            }
            let record = r.plan.record(&self.clocks, self.w.now);
            match self.client.send(&record, r.plan.deadline, self.w.now) {
                Ok(receipt) => {
                    self.receipts
                        .insert((receipt.batch, receipt.offset_delta), uid as u32);
                    let r = &mut self.app[uid];
                    r.accepted = Some((receipt.batch, receipt.offset_delta));
                    r.partition = Some(receipt.partition);
                    self.next_submit += 1;
                    if self.w.rng.random_bool(0.6) {
                        continue;
                    }
                    let at = self.w.now + ms(self.w.rng.random_range(0..15));
                    self.w.schedule(at, Ev::Submit);
                    return;
                }
                Err(SendError::NoMetadata | SendError::Full) => {
                    let at = self.w.now + ms(5);
                    self.w.schedule(at, Ev::Submit);
                    return;
                }
                Err(SendError::StaleTimestamp) => {
                    // Never accepted: the application knows it was not sent.
                    let r = &mut self.app[uid];
                    r.stale = true;
                    r.outcome = Some((
                        Outcome::NotPersisted(NotPersistedReason::Rejected(
                            ErrorCode::INVALID_TIMESTAMP,
                        )),
                        None,
                        self.w.now,
                    ));
                    self.w
                        .log(|| format!("record {uid} refused: stale timestamp"));
                    self.next_submit += 1;
                }
                Err(e) => panic!("record {uid} refused: {e:?}"),
            }
        }
    }

    /// The broker serves what incarnation `inc` has queued (see `Net::serve`).
    fn serve(&mut self, inc: u64) -> Result<(), String> {
        self.net.serve(
            &mut self.w,
            &mut self.cluster,
            inc,
            |w, cluster, broker, (), frame| cluster.answer(w, broker, frame, &mut Judged),
        )
    }

    fn drain(&mut self) -> Result<(), String> {
        while let Some(d) = self.client.poll_delivery() {
            for i in 0..d.records {
                let uid = *self
                    .receipts
                    .get(&(d.batch, i))
                    .ok_or("an outcome for a record never accepted")?;
                let r = &mut self.app[uid as usize];
                if r.outcome.is_some() {
                    return Err(format!("record {uid} got a second outcome"));
                }
                let offset = match d.outcome {
                    Outcome::Persisted { offset: Some(base) } => Some(base + i64::from(i)),
                    _ => None,
                };
                r.outcome = Some((d.outcome, offset, self.w.now));
                if r.partition != Some(d.partition) {
                    return Err(format!(
                        "record {uid}: outcome for partition {}",
                        d.partition
                    ));
                }
            }
            // The slot may be reused: forget this batch's receipts.
            for i in 0..d.records {
                self.receipts.remove(&(d.batch, i));
            }
            if matches!(d.outcome, Outcome::Persisted { .. }) {
                self.pressure.progress();
            }
            let line = format!("batch of {} records -> {:?}", d.records, d.outcome);
            self.w.log(|| line);
        }
        Ok(())
    }

    fn verify(&mut self) -> Result<(), String> {
        self.pressure.check()?;
        let seen = self.cluster.placed()?;
        for (uid, r) in self.app.iter().enumerate() {
            let uid = uid as u32;
            let Some((outcome, offset, at)) = r.outcome else {
                return Err(format!("record {uid} has no outcome"));
            };
            let in_log = seen.get(&uid);
            true_of_log(uid, outcome, offset, r.partition, r.plan.poison(), in_log)?;
            // Deadlines are the client's to honour once it accepted the record.
            let limit = r.accepted.map(|_| r.plan.limit(r.cancelled_at));
            deadline_honoured(uid, self.policy, outcome, at, limit)?;
        }
        Ok(())
    }
}

#[derive(Default)]
struct Tally {
    persisted: u64,
    not_persisted: u64,
    possibly: u64,
    epoch_bumps: u64,
    producer_ids: u64,
    /// Dials and requests (Produce, Metadata, InitProducerId), and the simulated seconds.
    dials: u64,
    handovers: u64,
    forgotten: u64,
    /// The longest streak of dials to one target without a reset, and its bound.
    longest: (u64, u64),
    requests: [u64; 3],
    seconds: f64,
    /// The largest share of its bound a seed used: dials per target, Metadata requests.
    worst_dials: f64,
    worst_metadata: f64,
    worst_bumps: f64,
    worst_inits: f64,
    faults: Faults,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, t: Tally) {
        self.persisted += t.persisted;
        self.not_persisted += t.not_persisted;
        self.possibly += t.possibly;
        self.epoch_bumps += t.epoch_bumps;
        self.producer_ids += t.producer_ids;
        self.dials += t.dials;
        self.handovers += t.handovers;
        self.forgotten += t.forgotten;
        self.longest = self.longest.max(t.longest);
        for (a, b) in self.requests.iter_mut().zip(t.requests) {
            *a += b;
        }
        self.seconds += t.seconds;
        self.worst_dials = self.worst_dials.max(t.worst_dials);
        self.worst_metadata = self.worst_metadata.max(t.worst_metadata);
        self.worst_bumps = self.worst_bumps.max(t.worst_bumps);
        self.worst_inits = self.worst_inits.max(t.worst_inits);
        self.faults += t.faults;
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "records persisted {}, not persisted {}, possibly persisted {}; epoch bumps {}, producer ids {}\n  {}\n  pressure over {:.0} simulated s: {} dials ({} resets by a slot handover, {} by the client forgetting failures; longest streak {} dials, bound {}), requests produce {} metadata {} init_producer_id {}; max share of bound: dials per target {:.2}, metadata {:.2}, epoch bumps {:.2}, init_producer_id {:.2}",
            self.persisted,
            self.not_persisted,
            self.possibly,
            self.epoch_bumps,
            self.producer_ids,
            self.faults,
            self.seconds,
            self.dials,
            self.handovers,
            self.forgotten,
            self.longest.0,
            self.longest.1,
            self.requests[0],
            self.requests[1],
            self.requests[2],
            self.worst_dials,
            self.worst_metadata,
            self.worst_bumps,
            self.worst_inits
        )
    }
}

const REPLAY: &str =
    "cargo test -p producer-core --test client_simulation client_replay_seed -- --nocapture";

/// Runs and checks one seed; returns its tally (or what failed) and, when asked, its trace.
/// One seed in four runs a client with two connection slots for the three brokers, so
/// connections take turns.
fn simulate(seed: u64, trace: bool) -> (Result<Tally, String>, Option<String>) {
    if seed % 4 == 3 {
        simulate_with::<2>(seed, trace)
    } else {
        simulate_with::<4>(seed, trace)
    }
}

fn simulate_with<const K: usize>(
    seed: u64,
    trace: bool,
) -> (Result<Tally, String>, Option<String>) {
    let mut sim = Sim::<K>::new(seed, trace);
    let result = sim.run().and_then(|()| sim.verify());
    let shares = sim.pressure.check();
    let trace = sim.w.trace.take();
    let result = match result {
        Ok(()) => {
            let mut t = Tally {
                faults: sim.cluster.faults,
                ..Tally::default()
            };
            t.faults += sim.net.faults;
            for r in &sim.app {
                match r.outcome.map(|o| o.0) {
                    Some(Outcome::Persisted { .. }) => t.persisted += 1,
                    Some(Outcome::NotPersisted(_)) => t.not_persisted += 1,
                    Some(Outcome::PossiblyPersisted(reason)) => {
                        t.possibly += 1;
                        if reason == PossiblyPersistedReason::ProducerStateExpired {
                            t.faults.state_expired_outcomes += 1;
                        }
                    }
                    None => {}
                }
                if r.stale {
                    t.faults.stale_refused += 1;
                }
            }
            let c = sim.client.counters();
            t.epoch_bumps = c.epoch_bumps;
            t.producer_ids = c.producer_ids;
            (
                t.worst_dials,
                t.worst_metadata,
                t.worst_bumps,
                t.worst_inits,
            ) = shares.unwrap_or_default();
            t.dials = sim.pressure.dials.total();
            t.handovers = sim.pressure.dials.handovers;
            t.forgotten = sim.pressure.dials.forgotten;
            t.longest = sim.pressure.dials.longest;
            t.requests = sim.pressure.requests;
            t.seconds = sim.w.now.as_micros() as f64 / 1e6;
            Ok(t)
        }
        Err(e) => Err(format!(
            "({:?}, {:?}, {K} slots) {e}",
            sim.cluster.flavour, sim.policy
        )),
    };
    (result, trace)
}

/// A quick sweep for every `cargo test`.
#[test]
fn client_some_seeds() {
    harness::sweep("client simulation", 100, REPLAY, |seed| {
        simulate(seed, false).0
    });
}

/// The full sweep `cargo xtask test` runs optimised (`SIM_SEEDS`).
#[test]
#[ignore = "run optimised by `cargo xtask test`"]
fn client_many_seeds() {
    let seeds = harness::seeds_from_env(10_000);
    harness::sweep("client simulation", seeds, REPLAY, |seed| {
        simulate(seed, false).0
    });
}

/// Replays one seed with a trace: `SIM_SEED=N`.
#[test]
fn client_replay_seed() {
    harness::replay(simulate);
}
