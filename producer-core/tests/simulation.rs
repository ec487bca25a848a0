//! Deterministic simulation: the sequencer, driven by a small client, against the model
//! cluster (`model::broker`, without wire bytes) over a network that drops requests, loses
//! responses after appending, delays and resets connections, while leaders move, brokers
//! restart and callers set deadlines and cancel. After every seed settles, the model's log is
//! checked against what the producer said.
//!
//! Two broker flavours (`model`): `Kafka` as Kafka 4 (an exact retry of a cached batch
//! answers success with the original offset, a gap 45, a stale epoch 47, an unknown producer
//! is appended at any sequence; answers wait for acks and come back 6 after the append when
//! leadership moves meanwhile; producer state expires by record timestamp, which the small
//! client judges with its wall clock and TTL as the real one does; a clean restart leaves a
//! leader only the last batch per producer; a closed connection's requests may be processed
//! up to a produce timeout each later) and `Tansu` (46 with offset -1 for a retry, 90 for a
//! locally bumped epoch, 59 for an unknown producer or one it never issued, and producer
//! state forgotten at random quiet moments).
//!
//! `SIM_SEEDS=N` sets how many seeds `many_seeds` runs; a failure prints its seed, and
//! `SIM_SEED=N cargo test -p producer-core --test simulation replay_seed -- --nocapture`
//! replays it with a trace.
//! A sweep stops at its fifth failing seed; `SIM_ALL=1` runs them all and lists each failing
//! one, and `SIM_FROM=N` starts at seed N.

use producer_core::capacity::Fixed;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use producer_core::ErrorCode;
use producer_core::state::{
    BatchState, BatchToken, Config, NotPersistedReason, Outcome, PartitionIndex,
    PossiblyPersistedReason, Sequencer, Stamp, UnknownOutcome,
};
use producer_core::time::Instant;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod harness;
mod model;
/// This simulation's parts, by concept.
mod simulation {
    pub mod broker;
    pub mod checks;
    pub mod client;
}
use harness::World;
use model::broker::{BROKERS, Cluster, PARTITIONS};
use model::clock::Clocks;
use model::faults::Faults;
use model::net::{LINGER_AFTER_CLOSE, NetEv};
use model::pace::{Bumps, Resends};
use model::{BatchId, Flavour, pins_producer_state};
use simulation::broker::Inbox;

const SLOTS: usize = 24;
/// Kafka's per-connection limit of unanswered requests.
const MAX_REQUESTS_PER_CONNECTION: usize = 5;
/// The client's request timeout, which it also sends as the produce timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(800);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn batch_id(stamp: Stamp, records: u32, max_timestamp: i64) -> BatchId {
    BatchId {
        producer_id: stamp.producer_id.0,
        epoch: stamp.epoch.0,
        base_sequence: stamp.base_sequence.get(),
        records,
        max_timestamp,
    }
}

// ---------------------------------------------------------------------------------------------
// The client: connections with pipelined requests and a request timeout, a metadata view,
// and the application submitting and cancelling batches.

#[derive(Clone, Copy, Debug)]
struct Item {
    token: BatchToken,
    uid: u32,
    partition: usize,
    stamp: Stamp,
    records: u32,
}

#[derive(Clone, Debug)]
enum Body {
    InitProducerId,
    Produce(Vec<Item>),
}

#[derive(Clone, Debug)]
enum Answer {
    Init(Result<(i64, i16), ErrorCode>),
    Produce(Vec<(BatchToken, ErrorCode, i64)>),
}

#[derive(Debug)]
struct Request {
    corr: u64,
    body: Body,
    sent_at: Instant,
}

#[derive(Debug)]
struct Conn {
    broker: usize,
    up: bool,
    requests: VecDeque<Request>,
    /// Requests from here on vanish (a silent half-open path).
    blackhole_requests: bool,
    /// Responses from here on vanish, though the broker still processes the requests.
    blackhole_responses: bool,
    last_arrival: Instant,
    last_response: Instant,
}

#[derive(Debug)]
enum Ev {
    Connected(u64),
    ConnectFailed(u64),
    /// A request reaches the broker: connection, correlation id, when it was sent.
    Arrive(u64, u64, Instant, Body),
    Response(u64, u64, Answer),
    Reset(u64),
    Submit,
    Cancel(u32),
    LeaderMove,
    BrokerDown(usize),
    BrokerUp(usize),
    /// Kafka: the leader of a partition restarts cleanly and leads again from its snapshot.
    Restart(usize),
    /// Kafka: a partition's in-sync replicas are slow for a while.
    SlowReplicas(usize),
    /// Tansu: the brokers forget producer state.
    StateLoss,
    MetadataRefreshed,
    /// The broker's acks wait for the request it is answering on a connection is over.
    AcksDone(u64),
    /// The model cluster's own events: a leadership move inside an acks wait, Kafka's
    /// periodic producer-expiry check.
    Model(NetEv),
}

impl From<NetEv> for Ev {
    fn from(e: NetEv) -> Self {
        Ev::Model(e)
    }
}

#[derive(Clone, Debug)]
struct AppBatch {
    partition: usize,
    records: u32,
    deadline: Instant,
    too_large: bool,
    sent: bool,
    token: Option<BatchToken>,
    submitted_at: Option<Instant>,
    cancelled_at: Option<Instant>,
    outcome: Option<(Outcome, Instant)>,
    /// The application submits it no earlier than this (after a pause).
    not_before: Option<Instant>,
    /// How far its records' timestamp lags the client's wall clock, and the timestamp it
    /// got when submitted.
    lag_ms: i64,
    timestamp: i64,
    /// The small client refused it as older than its producer-state lifetime.
    stale: bool,
}

struct Sim {
    w: World<Ev>,
    policy: UnknownOutcome,
    clocks: Clocks,
    cluster: Cluster,
    seq: Sequencer<Fixed<1, PARTITIONS, SLOTS, 1>>,
    conns: BTreeMap<u64, Conn>,
    /// The broker's side of every connection, open or closed (`simulation::broker`).
    inboxes: BTreeMap<u64, Inbox>,
    faults: Faults,
    next_conn: u64,
    next_corr: u64,
    reconnect_at: [Instant; BROKERS],
    view: [usize; PARTITIONS],
    refresh_pending: bool,
    app: Vec<AppBatch>,
    next_submit: usize,
    tokens: HashMap<BatchToken, u32>,
    /// Per partition: when its last success came and its batch's timestamp.
    acked_at: [Option<(Instant, i64)>; PARTITIONS],
    /// Produce attempts per batch and epoch bumps, held to `model::pace`'s bounds.
    resends: Resends<Stamp>,
    bumps: Bumps,
    backoff: (Duration, Duration),
}

impl Sim {
    fn new(seed: u64, trace: bool) -> Sim {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let flavour = Flavour::of_seed(seed);
        let policy = if (seed / 2).is_multiple_of(2) {
            UnknownOutcome::FailAndFence
        } else {
            UnknownOutcome::Wait
        };
        let clocks = Clocks::draw(&mut rng, flavour);
        let config = Config {
            unknown_outcome: policy,
            max_in_flight_per_partition: rng.random_range(1..=5),
            retry_backoff: ms(rng.random_range(5..=50)),
            retry_backoff_max: ms(400),
            // Kafka may process a closed connection's requests up to a produce timeout each
            // later (the client's default grace, five of them); tansu drops them soon.
            abandoned_request_grace: match flavour {
                Flavour::Kafka => REQUEST_TIMEOUT * MAX_REQUESTS_PER_CONNECTION as u32,
                Flavour::Tansu => LINGER_AFTER_CLOSE + ms(rng.random_range(1..200)),
            },
            jitter_seed: seed,
        };
        let backoff = (config.retry_backoff, config.retry_backoff_max);
        let batches = rng.random_range(20..=70);
        let mut t = 0u64;
        let mut planned_at = Vec::new();
        let mut app: Vec<AppBatch> = (0..batches)
            .map(|_| {
                t += rng.random_range(0..40);
                planned_at.push(Instant::from_millis(t));
                let deadline_ms = if rng.random_bool(0.5) {
                    rng.random_range(30..400)
                } else {
                    rng.random_range(400..6000)
                };
                AppBatch {
                    partition: rng.random_range(0..PARTITIONS),
                    records: rng.random_range(1..=6),
                    // The deadline counts from the planned submission time.
                    deadline: Instant::from_millis(t + deadline_ms),
                    too_large: rng.random_bool(0.02),
                    sent: false,
                    token: None,
                    submitted_at: None,
                    cancelled_at: None,
                    outcome: None,
                    not_before: None,
                    lag_ms: 0,
                    timestamp: 0,
                    stale: false,
                }
            })
            .collect();
        let mut fault_end = Instant::from_millis(t + rng.random_range(500..3000));
        for (b, lag) in app.iter_mut().zip(clocks.lags(&mut rng, batches)) {
            b.lag_ms = lag;
        }
        if let Some((at, length)) = clocks.draw_pause(&mut rng, batches) {
            for b in &mut app[at..] {
                b.deadline = b.deadline + length;
            }
            app[at].not_before = Some(planned_at[at] + length);
            fault_end = fault_end + length;
        }
        let mut sim = Sim {
            w: World::new(rng, fault_end, trace),
            policy,
            clocks,
            cluster: Cluster::new(flavour, clocks),
            seq: Sequencer::new(config).expect("valid config"),
            conns: BTreeMap::new(),
            inboxes: BTreeMap::new(),
            faults: Faults::default(),
            next_conn: 0,
            next_corr: 0,
            reconnect_at: [Instant::ZERO; BROKERS],
            view: [0, 1, 2],
            refresh_pending: false,
            app,
            next_submit: 0,
            tokens: HashMap::new(),
            acked_at: [None; PARTITIONS],
            resends: Resends::new(backoff.0, backoff.1),
            bumps: Bumps::default(),
            backoff,
        };
        // One seed in sixteen: the leaders answer 45 to every batch they would append, over
        // the middle half of the fault window.
        if (seed / 8) % 16 == 2 {
            let end = fault_end.as_micros() / 1000;
            let (from, until) = (
                Instant::from_millis(end / 4),
                Instant::from_millis(end * 3 / 4),
            );
            sim.cluster.refuse_45 = Some((from, until));
        }
        sim.w.schedule(Instant::ZERO, Ev::Submit);
        sim.w.scatter(0..6, |_| Ev::LeaderMove);
        sim.w.scatter(0..3, |rng| {
            let b = rng.random_range(0..BROKERS);
            Ev::BrokerDown(b)
        });
        // Kafka loses producer state by time (expiry) and by restarts (snapshots); a loss at
        // any moment would defeat every client that pipelines there (it appends any sequence
        // for a producer it does not know).
        if flavour == Flavour::Kafka {
            sim.w
                .scatter(0..3, |rng| Ev::Restart(rng.random_range(0..PARTITIONS)));
            sim.w.scatter(0..3, |rng| {
                Ev::SlowReplicas(rng.random_range(0..PARTITIONS))
            });
        } else {
            sim.w.scatter(0..3, |_| Ev::StateLoss);
        }
        sim.w.scatter(0..8, |rng| {
            let uid = rng.random_range(0..batches) as u32;
            Ev::Cancel(uid)
        });
        sim.cluster.start(&mut sim.w);
        sim
    }

    // -- the run loop --------------------------------------------------------------------

    fn run(&mut self) -> Result<(), String> {
        let limit = self.w.settle_by();
        let mut wake: Option<Instant> = Some(Instant::ZERO);
        loop {
            let next_timeout = self
                .conns
                .values()
                .filter_map(|c| c.requests.front().map(|r| r.sent_at + REQUEST_TIMEOUT))
                .min();
            let next_reconnect = self
                .reconnect_at
                .iter()
                .copied()
                .filter(|&t| t > self.w.now)
                .min();
            let due = [wake, next_timeout, next_reconnect]
                .into_iter()
                .flatten()
                .min();
            let Some(next) = self.w.next_instant(due) else {
                break;
            };
            if next > limit {
                return Err(format!("did not settle by {limit:?}"));
            }
            self.w.now = self.w.now.max(next);
            self.w.spin_check()?;
            while let Some(ev) = self.w.pop_due() {
                self.handle(ev)?;
            }
            self.count_bumps();
            self.expire_requests()?;
            self.expire_stale()?;
            let before = self.seq.identity();
            self.pump()?;
            let after = self.seq.identity();
            if before != after {
                self.w.log(|| format!("identity {before:?} -> {after:?}"));
            }
            let before = self.seq.identity();
            wake = self.seq.poll(self.w.now);
            let after = self.seq.identity();
            if before != after {
                self.w.log(|| format!("identity {before:?} -> {after:?}"));
            }
            self.count_bumps();
            self.drain_outcomes()?;
            if self.settled() {
                return Ok(());
            }
        }
        if self.settled() {
            Ok(())
        } else {
            Err("ran out of things to do before settling: a hang".into())
        }
    }

    fn settled(&self) -> bool {
        self.next_submit == self.app.len()
            && self.app.iter().all(|b| b.outcome.is_some())
            && self.seq.is_empty()
            && self.w.now >= self.w.fault_end
            && !self.brokers_busy()
    }

    fn handle(&mut self, ev: Ev) -> Result<(), String> {
        match ev {
            Ev::Submit => self.submit(),
            Ev::Cancel(uid) => {
                let uid = uid as usize;
                if let Some(token) = self.app[uid].token
                    && self.app[uid].outcome.is_none()
                {
                    let decision = self
                        .seq
                        .cancel(token, self.w.now)
                        .map_err(|e| format!("{e:?}"))?;
                    self.app[uid].cancelled_at.get_or_insert(self.w.now);
                    self.w.log(|| format!("cancel batch {uid}: {decision:?}"));
                }
            }
            Ev::Connected(id) => {
                if let Some(c) = self.conns.get_mut(&id) {
                    c.up = true;
                }
            }
            Ev::ConnectFailed(id) => {
                self.inboxes.remove(&id);
                if let Some(c) = self.conns.remove(&id) {
                    self.reconnect_at[c.broker] = self.w.now + ms(50);
                }
            }
            Ev::Arrive(conn, corr, sent, body) => self.arrive(conn, corr, sent, body),
            Ev::AcksDone(conn) => self.acks_done(conn),
            Ev::Model(NetEv::LeaderMoves(p, to)) => self.cluster.move_leader_to(&mut self.w, p, to),
            Ev::Model(NetEv::ExpiryCheck) => self.cluster.expiry_check(&mut self.w),
            Ev::Model(_) => {}
            Ev::SlowReplicas(p) => self.cluster.slow_replicas(&mut self.w, p),
            Ev::Response(conn, corr, answer) => self.response(conn, corr, answer)?,
            Ev::Reset(conn) => {
                if self.conns.contains_key(&conn) {
                    self.w.log(|| format!("connection {conn} reset"));
                    self.close(conn)?;
                }
            }
            Ev::LeaderMove => {
                let p = self.w.rng.random_range(0..PARTITIONS);
                let candidates: Vec<usize> = (0..BROKERS)
                    .filter(|&b| self.cluster.up[b] && b != self.cluster.leader[p])
                    .collect();
                if let Some(&b) =
                    candidates.get(self.w.rng.random_range(0..candidates.len().max(1)))
                {
                    self.cluster.move_leader_to(&mut self.w, p, b);
                }
            }
            Ev::BrokerDown(b) => {
                // Kafka: once back, it may lead its partitions again, from its snapshot after
                // a clean shutdown.
                let (lead_again, clean) = match self.cluster.flavour {
                    Flavour::Kafka => (self.w.rng.random_bool(0.5), self.w.rng.random_bool(0.5)),
                    Flavour::Tansu => (false, false),
                };
                self.broker_down(b, lead_again, clean);
            }
            Ev::Restart(p) => {
                let b = self.cluster.leader[p];
                self.broker_down(b, true, true);
            }
            Ev::BrokerUp(b) => self.cluster.broker_up(&mut self.w, b),
            Ev::StateLoss => {
                // Only when nothing that may have been appended can be resent: a broker that
                // forgets producer state while a retry is pending would append it twice, and
                // no client can prevent that (the guarantee rests on the broker keeping it).
                let quiet = !self.lingering()
                    && self
                        .app
                        .iter()
                        .filter_map(|b| b.token)
                        .all(|t| !self.seq.batch_state(t).is_some_and(pins_producer_state));
                if quiet {
                    self.w.log(|| "brokers forget producer state".into());
                    self.cluster.idempotence.forget();
                }
            }
            Ev::MetadataRefreshed => {
                self.refresh_pending = false;
                self.view = self.cluster.leader;
            }
        }
        Ok(())
    }

    /// Broker `b` goes down (if the cluster lets it): its connections reset, what it had not
    /// answered is lost, and it comes back later.
    fn broker_down(&mut self, b: usize, lead_again: bool, clean: bool) {
        if !self.cluster.broker_down(&mut self.w, b, lead_again, clean) {
            return;
        }
        self.broker_side_down(b);
        let doomed: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| c.broker == b)
            .map(|(id, _)| *id)
            .collect();
        for id in doomed {
            let at = self.w.now + ms(1);
            self.w.schedule(at, Ev::Reset(id));
        }
        let at = self.w.now + ms(self.w.rng.random_range(50..1500));
        self.w.schedule(at, Ev::BrokerUp(b));
    }

    /// The small client's producer-state lifetime, as the real client applies it: a batch
    /// waiting for a resend after an attempt that may have been appended, whose records are
    /// older than the TTL by the wall clock, is handed to the sequencer.
    fn expire_stale(&mut self) -> Result<(), String> {
        let now = self.w.now;
        for b in &self.app {
            let Some(token) = b.token else { continue };
            if b.outcome.is_some() || !self.clocks.stale(b.timestamp, now) {
                continue;
            }
            if let Some(BatchState::Stamped {
                maybe_written: true,
                ..
            }) = self.seq.batch_state(token)
            {
                self.seq
                    .expire_producer_state(token, now)
                    .map_err(|e| format!("{e:?}"))?;
            }
        }
        Ok(())
    }

    fn submit(&mut self) {
        while self.next_submit < self.app.len() {
            let planned = self.app[self.next_submit].deadline;
            let b = &self.app[self.next_submit];
            if let Some(at) = b.not_before.filter(|&t| t > self.w.now) {
                self.w.schedule(at, Ev::Submit);
                return;
            }
            // Its timestamp is the application's clock; the small client refuses it past
            // the producer-state lifetime, as the real one does.
            let timestamp = self.clocks.client_ms(self.w.now) - b.lag_ms;
            if self.clocks.stale(timestamp, self.w.now) {
                let b = &mut self.app[self.next_submit];
                b.stale = true;
                b.submitted_at = Some(self.w.now);
                b.outcome = Some((
                    Outcome::NotPersisted(NotPersistedReason::Rejected(
                        ErrorCode::INVALID_TIMESTAMP,
                    )),
                    self.w.now,
                ));
                self.next_submit += 1;
                continue;
            }
            self.app[self.next_submit].timestamp = timestamp;
            let b = &self.app[self.next_submit];
            let partition = PartitionIndex(b.partition as u16);
            match self.seq.enqueue(partition, b.records, planned) {
                Ok(token) => {
                    let uid = self.next_submit as u32;
                    self.tokens.insert(token, uid);
                    let b = &mut self.app[self.next_submit];
                    b.token = Some(token);
                    b.submitted_at = Some(self.w.now);
                    self.next_submit += 1;
                    if self.w.rng.random_bool(0.7) {
                        continue;
                    }
                    let at = self.w.now + ms(self.w.rng.random_range(0..30));
                    self.w.schedule(at, Ev::Submit);
                    return;
                }
                Err(_) => {
                    // Full: the application waits for outcomes and tries again.
                    let at = self.w.now + ms(5);
                    self.w.schedule(at, Ev::Submit);
                    return;
                }
            }
        }
    }
}

#[derive(Default, Debug)]
struct Tally {
    persisted: u64,
    not_persisted: u64,
    possibly_persisted: u64,
    epoch_bumps: u64,
    producer_ids: u64,
    /// Produce attempts (batches sent), and the largest share of their bounds a seed used:
    /// attempts per batch, epoch bumps.
    sends: u64,
    worst_sends: f64,
    worst_bumps: f64,
    faults: Faults,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, t: Tally) {
        self.persisted += t.persisted;
        self.not_persisted += t.not_persisted;
        self.possibly_persisted += t.possibly_persisted;
        self.epoch_bumps += t.epoch_bumps;
        self.producer_ids += t.producer_ids;
        self.sends += t.sends;
        self.worst_sends = self.worst_sends.max(t.worst_sends);
        self.worst_bumps = self.worst_bumps.max(t.worst_bumps);
        self.faults += t.faults;
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "batches persisted {}, not persisted {}, possibly persisted {}; epoch bumps {}, producer ids {}\n  {}\n  pressure: {} batch sends; max share of bound: sends per batch {:.2}, epoch bumps {:.2}",
            self.persisted,
            self.not_persisted,
            self.possibly_persisted,
            self.epoch_bumps,
            self.producer_ids,
            self.faults,
            self.sends,
            self.worst_sends,
            self.worst_bumps
        )
    }
}

const REPLAY: &str = "cargo test -p producer-core --test simulation replay_seed -- --nocapture";

/// Runs and checks one seed; returns its tally (or what failed) and, when asked, its trace.
fn simulate(seed: u64, trace: bool) -> (Result<Tally, String>, Option<String>) {
    let mut sim = Sim::new(seed, trace);
    let result = sim.run().and_then(|()| sim.verify());
    let result = result.and_then(|()| sim.pressure());
    let trace = sim.w.trace.take();
    let result = match result {
        Ok((worst_sends, worst_bumps)) => {
            let c = sim.seq.counters();
            let mut faults = sim.cluster.faults;
            faults += sim.faults;
            for b in &sim.app {
                faults.stale_refused += u64::from(b.stale);
                faults.state_expired_outcomes += u64::from(matches!(
                    b.outcome,
                    Some((
                        Outcome::PossiblyPersisted(PossiblyPersistedReason::ProducerStateExpired),
                        _
                    ))
                ));
            }
            Ok(Tally {
                persisted: c.persisted.batches,
                not_persisted: c.not_persisted.batches,
                possibly_persisted: c.possibly_persisted.batches,
                epoch_bumps: c.epoch_bumps,
                producer_ids: c.producer_ids,
                sends: sim.resends.total(),
                worst_sends,
                worst_bumps,
                faults,
            })
        }
        Err(e) => Err(format!("({:?}, {:?}) {e}", sim.cluster.flavour, sim.policy)),
    };
    (result, trace)
}

/// A quick sweep for every `cargo test`.
#[test]
fn some_seeds() {
    harness::sweep("simulation", 200, REPLAY, |seed| simulate(seed, false).0);
}

/// The full sweep `cargo xtask test` runs optimised (`SIM_SEEDS`, default 100,000).
#[test]
#[ignore = "run optimised by `cargo xtask test`"]
fn many_seeds() {
    let seeds = harness::seeds_from_env(100_000);
    harness::sweep("simulation", seeds, REPLAY, |seed| simulate(seed, false).0);
}

/// Replays one seed with a trace: `SIM_SEED=N`.
#[test]
fn replay_seed() {
    harness::replay(simulate);
}
