//! Deterministic simulation: the sequencer, driven by a small client, against a model Kafka
//! cluster that drops requests, loses responses after appending, delays, resets connections,
//! moves leaders, restarts brokers and forgets producer state, while callers set deadlines and
//! cancel. After every seed settles, the model's log is checked against what the producer said.
//!
//! Two broker flavours: `Kafka` (the real idempotence rules: an exact retry of one of the last
//! five batches answers success with the original offset, a gap 45, a stale epoch 47, an
//! unknown producer with a non-zero sequence 59) and `Tansu` (46 with offset -1 for a retry, 90
//! for a locally bumped epoch, 59 for a producer id it never issued).
//!
//! `SIM_SEEDS=N` sets how many seeds `many_seeds` runs; a failure prints its seed, and
//! `SIM_SEED=N cargo test -p producer-core --test simulation replay_seed -- --nocapture`
//! replays it with a trace.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

use producer_core::ErrorCode;
use producer_core::state::{
    BatchToken, Config, Identity, Outcome, PartitionIndex, PossiblyPersistedReason, ProduceResult,
    ProducerEpoch, ProducerId, Sequencer, Stamp, UnknownOutcome,
};
use producer_core::time::Instant;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

mod harness;
mod model;
use harness::World;
use model::{BatchId, Check, Flavour, Idempotence, pins_producer_state};

const PARTITIONS: usize = 3;
const BROKERS: usize = 3;
const SLOTS: usize = 24;
/// Kafka's per-connection limit of unanswered requests.
const MAX_REQUESTS_PER_CONNECTION: usize = 5;
const REQUEST_TIMEOUT: Duration = Duration::from_millis(800);
/// How long after a connection closes the broker may still process requests it had read.
const LINGER_AFTER_CLOSE: Duration = Duration::from_millis(50);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ---------------------------------------------------------------------------------------------
// The model cluster: partitions with leaders, a log per partition, producer state per
// (producer id, partition) replicated with the log (it survives leader moves and restarts, as
// Kafka rebuilds it), and a separate "state loss" fault that forgets it.

#[derive(Clone, Copy, Debug)]
struct LogEntry {
    uid: u32,
    base_offset: i64,
}

struct Cluster {
    flavour: Flavour,
    leader: [usize; PARTITIONS],
    up: [bool; BROKERS],
    logs: [Vec<LogEntry>; PARTITIONS],
    next_offset: [i64; PARTITIONS],
    idempotence: Idempotence,
}

fn batch_id(stamp: Stamp, records: u32) -> BatchId {
    BatchId {
        producer_id: stamp.producer_id.0,
        epoch: stamp.epoch.0,
        base_sequence: stamp.base_sequence.get(),
        records,
    }
}

impl Cluster {
    fn append(&mut self, p: usize, stamp: Stamp, records: u32, uid: u32) -> i64 {
        let base_offset = self.next_offset[p];
        self.next_offset[p] += i64::from(records);
        self.logs[p].push(LogEntry { uid, base_offset });
        self.idempotence
            .appended(p, batch_id(stamp, records), base_offset);
        base_offset
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
    Arrive(u64, u64, Body),
    Response(u64, u64, Answer),
    Reset(u64),
    Submit,
    Cancel(u32),
    LeaderMove,
    BrokerDown(usize),
    BrokerUp(usize),
    StateLoss,
    MetadataRefreshed,
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
}

struct Sim {
    w: World<Ev>,
    policy: UnknownOutcome,
    cluster: Cluster,
    seq: Sequencer<PARTITIONS, SLOTS>,
    conns: BTreeMap<u64, Conn>,
    /// Connections the client closed, and how many of their in-transit requests still reach
    /// the broker afterwards (the broker may process what it already read).
    closed: BTreeMap<u64, (usize, u32, Instant)>,
    next_conn: u64,
    next_corr: u64,
    reconnect_at: [Instant; BROKERS],
    view: [usize; PARTITIONS],
    refresh_pending: bool,
    app: Vec<AppBatch>,
    next_submit: usize,
    tokens: HashMap<BatchToken, u32>,
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
        let config = Config {
            unknown_outcome: policy,
            max_in_flight_per_partition: rng.random_range(1..=5),
            retry_backoff: ms(rng.random_range(5..=50)),
            retry_backoff_max: ms(400),
            abandoned_request_grace: LINGER_AFTER_CLOSE + ms(rng.random_range(1..200)),
            jitter_seed: seed,
        };
        let batches = rng.random_range(20..=70);
        let mut t = 0u64;
        let app = (0..batches)
            .map(|_| {
                t += rng.random_range(0..40);
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
                }
            })
            .collect();
        let fault_end = Instant::from_millis(t + rng.random_range(500..3000));
        let mut sim = Sim {
            w: World::new(rng, fault_end, trace),
            policy,
            cluster: Cluster {
                flavour,
                leader: [0, 1, 2],
                up: [true; BROKERS],
                logs: Default::default(),
                next_offset: [0; PARTITIONS],
                idempotence: Idempotence::new(flavour),
            },
            seq: Sequencer::new(config).expect("valid config"),
            conns: BTreeMap::new(),
            closed: BTreeMap::new(),
            next_conn: 0,
            next_corr: 0,
            reconnect_at: [Instant::ZERO; BROKERS],
            view: [0, 1, 2],
            refresh_pending: false,
            app,
            next_submit: 0,
            tokens: HashMap::new(),
        };
        sim.w.schedule(Instant::ZERO, Ev::Submit);
        sim.w.scatter(0..6, |_| Ev::LeaderMove);
        sim.w.scatter(0..3, |rng| {
            let b = rng.random_range(0..BROKERS);
            Ev::BrokerDown(b)
        });
        sim.w.scatter(0..3, |_| Ev::StateLoss);
        sim.w.scatter(0..8, |rng| {
            let uid = rng.random_range(0..batches) as u32;
            Ev::Cancel(uid)
        });
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
            while let Some(ev) = self.w.pop_due() {
                self.handle(ev)?;
            }
            self.expire_requests()?;
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
                if let Some(c) = self.conns.remove(&id) {
                    self.reconnect_at[c.broker] = self.w.now + ms(50);
                }
            }
            Ev::Arrive(conn, corr, body) => self.arrive(conn, corr, body),
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
                    self.w.log(|| format!("leader of {p} moves to {b}"));
                    self.cluster.leader[p] = b;
                }
            }
            Ev::BrokerDown(b) => {
                if self.cluster.up.iter().filter(|u| **u).count() > 1 && self.cluster.up[b] {
                    self.w.log(|| format!("broker {b} goes down"));
                    self.cluster.up[b] = false;
                    for p in 0..PARTITIONS {
                        if self.cluster.leader[p] == b {
                            self.cluster.leader[p] =
                                (0..BROKERS).find(|&x| self.cluster.up[x]).unwrap();
                        }
                    }
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
            }
            Ev::BrokerUp(b) => {
                self.w.log(|| format!("broker {b} is back"));
                self.cluster.up[b] = true;
            }
            Ev::StateLoss => {
                // Only when nothing that may have been appended can be resent: a broker that
                // forgets producer state while a retry is pending would append it twice, and
                // no client can prevent that (the guarantee rests on the broker keeping it).
                let lingering = self
                    .closed
                    .values()
                    .any(|&(_, n, at)| n > 0 && self.w.now <= at + LINGER_AFTER_CLOSE);
                let quiet = !lingering
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

    fn submit(&mut self) {
        while self.next_submit < self.app.len() {
            let planned = self.app[self.next_submit].deadline;
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

    fn open(&mut self, broker: usize) {
        let id = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            id,
            Conn {
                broker,
                up: false,
                requests: VecDeque::new(),
                blackhole_requests: false,
                blackhole_responses: false,
                last_arrival: self.w.now,
                last_response: self.w.now,
            },
        );
        let at = self.w.now + ms(self.w.rng.random_range(1..4));
        if self.cluster.up[broker] {
            self.w.schedule(at, Ev::Connected(id));
        } else {
            self.w.schedule(at, Ev::ConnectFailed(id));
        }
    }

    fn conn_to(&self, broker: usize) -> Option<u64> {
        self.conns
            .iter()
            .find(|(_, c)| c.broker == broker)
            .map(|(id, _)| *id)
    }

    fn pump(&mut self) -> Result<(), String> {
        // Connections to every broker the metadata names, and to one for InitProducerId.
        let mut wanted: Vec<usize> = self.view.to_vec();
        wanted.push(0);
        for b in wanted {
            if self.conn_to(b).is_none() && self.reconnect_at[b] <= self.w.now {
                self.open(b);
            }
        }
        let ready: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| c.up && c.requests.len() < MAX_REQUESTS_PER_CONNECTION)
            .map(|(id, _)| *id)
            .collect();
        if let Some(&conn) = ready.first()
            && matches!(self.seq.identity(), Identity::NoId { .. })
            && self.seq.poll_init_producer_id(self.w.now)
        {
            self.send(conn, Body::InitProducerId);
        }
        for conn in ready {
            let broker = self.conns[&conn].broker;
            let mut items = Vec::new();
            for p in 0..PARTITIONS {
                if self.view[p] != broker {
                    continue;
                }
                while let Some(permit) = self.seq.next_send(PartitionIndex(p as u16), self.w.now) {
                    let uid = self.tokens[&permit.token];
                    self.app[uid as usize].sent = true;
                    items.push(Item {
                        token: permit.token,
                        uid,
                        partition: p,
                        stamp: permit.stamp,
                        records: permit.records,
                    });
                }
            }
            if !items.is_empty() {
                self.send(conn, Body::Produce(items));
            }
        }
        Ok(())
    }

    fn send(&mut self, conn: u64, body: Body) {
        let corr = self.next_corr;
        self.next_corr += 1;
        self.w
            .log(|| format!("conn {conn} corr {corr} sends {body:?}"));
        let black = self.w.chance(0.015);
        let reset = self.w.chance(0.01);
        let latency = self.w.latency(0.03, 300..2500, 200..8000);
        let now = self.w.now;
        let c = self.conns.get_mut(&conn).expect("conn");
        c.requests.push_back(Request {
            corr,
            body: body.clone(),
            sent_at: now,
        });
        c.blackhole_requests |= black;
        let blackholed = c.blackhole_requests;
        let arrival = c.last_arrival.max(now + latency);
        c.last_arrival = arrival;
        if !blackholed {
            self.w.schedule(arrival, Ev::Arrive(conn, corr, body));
        }
        if reset {
            let at = now + Duration::from_micros(self.w.rng.random_range(0..20_000));
            self.w.schedule(at, Ev::Reset(conn));
        }
    }

    fn arrive(&mut self, conn: u64, corr: u64, body: Body) {
        let broker = if let Some(c) = self.conns.get(&conn) {
            c.broker
        } else {
            // The client closed it: the broker processes what it had already read.
            match self.closed.get_mut(&conn) {
                Some((broker, n, closed_at))
                    if *n > 0 && self.w.now <= *closed_at + LINGER_AFTER_CLOSE =>
                {
                    *n -= 1;
                    *broker
                }
                _ => return,
            }
        };
        if !self.cluster.up[broker] {
            return;
        }
        let answer = match body {
            Body::InitProducerId => {
                if self.w.chance(0.05) {
                    Answer::Init(Err(ErrorCode::COORDINATOR_NOT_AVAILABLE))
                } else {
                    // A Kafka broker may hand out any epoch; near the top, exhaustion is tested.
                    let epoch =
                        if self.cluster.flavour == Flavour::Kafka && self.w.rng.random_bool(0.2) {
                            i16::MAX - self.w.rng.random_range(0..3)
                        } else {
                            0
                        };
                    let pid = self.cluster.idempotence.issue(epoch);
                    Answer::Init(Ok((pid, epoch)))
                }
            }
            Body::Produce(items) => {
                let mut out = Vec::new();
                for item in items {
                    let (code, offset) = self.produce_one(broker, item);
                    out.push((item.token, code, offset));
                }
                Answer::Produce(out)
            }
        };
        self.w
            .log(|| format!("broker {broker} answers corr {corr}: {answer:?}"));
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.blackhole_responses {
            return;
        }
        let black = self.w.faults() && self.w.rng.random_bool(0.015);
        let latency = self.w.latency(0.03, 300..2500, 200..8000);
        let c = self.conns.get_mut(&conn).expect("conn");
        c.blackhole_responses |= black;
        if black {
            return;
        }
        let at = c.last_response.max(self.w.now + latency);
        c.last_response = at;
        self.w.schedule(at, Ev::Response(conn, corr, answer));
    }

    fn produce_one(&mut self, broker: usize, item: Item) -> (ErrorCode, i64) {
        let p = item.partition;
        if self.cluster.leader[p] != broker {
            return (ErrorCode::NOT_LEADER_OR_FOLLOWER, -1);
        }
        if self.app[item.uid as usize].too_large {
            return (ErrorCode::MESSAGE_TOO_LARGE, -1);
        }
        if self.w.chance(0.02) {
            return (ErrorCode::NOT_ENOUGH_REPLICAS, -1);
        }
        match self
            .cluster
            .idempotence
            .check(p, batch_id(item.stamp, item.records))
        {
            Check::Refuse(code) => (code, -1),
            Check::Duplicate(offset) => self.cluster.idempotence.duplicate_answer(offset),
            Check::Append => {
                // Codes that arrive whether or not the leader appended: an unknown code may
                // mean either, so the model flips a coin.
                if self.w.chance(0.005) {
                    if self.w.rng.random_bool(0.5) {
                        self.cluster.append(p, item.stamp, item.records, item.uid);
                    }
                    return (ErrorCode(999), -1);
                }
                let offset = self.cluster.append(p, item.stamp, item.records, item.uid);
                if self.w.chance(0.02) {
                    (ErrorCode::REQUEST_TIMED_OUT, -1)
                } else if self.w.chance(0.01) {
                    (ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND, -1)
                } else {
                    (ErrorCode::NONE, offset)
                }
            }
        }
    }

    fn response(&mut self, conn: u64, corr: u64, answer: Answer) -> Result<(), String> {
        let Some(c) = self.conns.get_mut(&conn) else {
            return Ok(());
        };
        let request = c
            .requests
            .pop_front()
            .ok_or("response with nothing in flight")?;
        if request.corr != corr {
            return Err(format!(
                "response {corr} out of order (expected {})",
                request.corr
            ));
        }
        match answer {
            Answer::Init(result) => {
                let result = result
                    .map(|(id, epoch)| (ProducerId(id), ProducerEpoch(epoch)))
                    .map_err(Some);
                self.seq.on_init_producer_id(self.w.now, result);
            }
            Answer::Produce(parts) => {
                for (token, error, base_offset) in parts {
                    let class = self
                        .seq
                        .on_produce_result(
                            token,
                            self.w.now,
                            ProduceResult::Answered { error, base_offset },
                        )
                        .map_err(|e| format!("{e:?}"))?;
                    if class.refresh_metadata {
                        self.refresh_metadata();
                    }
                }
            }
        }
        Ok(())
    }

    fn refresh_metadata(&mut self) {
        if !self.refresh_pending {
            self.refresh_pending = true;
            let at = self.w.now + ms(self.w.rng.random_range(1..20));
            self.w.schedule(at, Ev::MetadataRefreshed);
        }
    }

    fn expire_requests(&mut self) -> Result<(), String> {
        let expired: Vec<u64> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.requests
                    .front()
                    .is_some_and(|r| r.sent_at + REQUEST_TIMEOUT <= self.w.now)
            })
            .map(|(id, _)| *id)
            .collect();
        for conn in expired {
            self.w.log(|| format!("conn {conn} request timeout"));
            self.close(conn)?;
        }
        Ok(())
    }

    /// The client closes a connection: every request still on it is lost after being written.
    fn close(&mut self, conn: u64) -> Result<(), String> {
        let Some(c) = self.conns.remove(&conn) else {
            return Ok(());
        };
        let still_arriving = self.w.rng.random_range(0..=c.requests.len() as u32);
        self.closed
            .insert(conn, (c.broker, still_arriving, self.w.now));
        self.reconnect_at[c.broker] = self.w.now + ms(self.w.rng.random_range(1..30));
        for request in c.requests {
            match request.body {
                Body::InitProducerId => self.seq.on_init_producer_id(self.w.now, Err(None)),
                Body::Produce(items) => {
                    for item in items {
                        self.seq
                            .on_produce_result(
                                item.token,
                                self.w.now,
                                ProduceResult::LostAfterWrite,
                            )
                            .map_err(|e| format!("{e:?}"))?;
                    }
                }
            }
        }
        self.refresh_metadata();
        Ok(())
    }

    fn drain_outcomes(&mut self) -> Result<(), String> {
        while let Some(d) = self.seq.poll_event() {
            let uid = self
                .tokens
                .remove(&d.token)
                .ok_or("outcome for an unknown token")?;
            let b = &mut self.app[uid as usize];
            if b.outcome.is_some() {
                return Err(format!("batch {uid} got a second outcome {:?}", d.outcome));
            }
            b.outcome = Some((d.outcome, self.w.now));
            let line = format!("batch {uid} (p{}) -> {:?}", b.partition, d.outcome);
            self.w.log(|| line);
        }
        Ok(())
    }

    // -- the checks ------------------------------------------------------------------------

    fn verify(&self) -> Result<(), String> {
        let mut where_in_log: BTreeMap<u32, Vec<(usize, i64)>> = BTreeMap::new();
        for (p, log) in self.cluster.logs.iter().enumerate() {
            let mut last_uid = None;
            for entry in log {
                where_in_log
                    .entry(entry.uid)
                    .or_default()
                    .push((p, entry.base_offset));
                // Order per partition: batches appear in the order the application gave them.
                if let Some(prev) = last_uid
                    && entry.uid <= prev
                {
                    return Err(format!(
                        "partition {p}: batch {} after batch {prev}",
                        entry.uid
                    ));
                }
                last_uid = Some(entry.uid);
            }
        }
        for (uid, b) in self.app.iter().enumerate() {
            let uid = uid as u32;
            let copies = where_in_log.get(&uid).map_or(&[][..], |v| v.as_slice());
            if copies.len() > 1 {
                return Err(format!("batch {uid} is in the log {} times", copies.len()));
            }
            if let Some(&(p, _)) = copies.first()
                && p != b.partition
            {
                return Err(format!(
                    "batch {uid} landed in partition {p}, not {}",
                    b.partition
                ));
            }
            let Some((outcome, at)) = b.outcome else {
                return Err(format!("batch {uid} has no outcome"));
            };
            match outcome {
                Outcome::Persisted { offset } => {
                    let Some(&(_, base)) = copies.first() else {
                        return Err(format!(
                            "batch {uid} reported persisted but is not in the log (a silent gap)"
                        ));
                    };
                    if let Some(o) = offset
                        && o != base
                    {
                        return Err(format!(
                            "batch {uid} reported offset {o}, the log has it at {base}"
                        ));
                    }
                }
                Outcome::NotPersisted(_) if !copies.is_empty() => {
                    return Err(format!(
                        "batch {uid} reported not persisted but is in the log"
                    ));
                }
                Outcome::NotPersisted(_) | Outcome::PossiblyPersisted(_) => {}
            }
            // Deadlines: under FailAndFence every one is honoured the moment it passes (or the
            // moment of a cancel); under Wait, those of batches never sent are.
            let submitted = b.submitted_at.ok_or("never submitted")?;
            let limit = match b.cancelled_at {
                Some(c) => c.min(b.deadline),
                None => b.deadline,
            }
            .max(submitted);
            let must_honour = match self.policy {
                UnknownOutcome::FailAndFence => true,
                UnknownOutcome::Wait => !b.sent,
            };
            if must_honour && at > limit {
                return Err(format!(
                    "batch {uid}: outcome {outcome:?} at {at:?}, after its deadline {limit:?}"
                ));
            }
            if self.policy == UnknownOutcome::Wait
                && matches!(
                    outcome,
                    Outcome::PossiblyPersisted(PossiblyPersistedReason::Deadline)
                )
            {
                return Err(format!(
                    "batch {uid}: a deadline gave up an unknown batch under Wait"
                ));
            }
            // Precision: the only codes the model answers without saying whether it appended
            // are its unknown code (999); the only refusal retrying cannot fix is 10.
            match outcome {
                Outcome::PossiblyPersisted(PossiblyPersistedReason::Unclassified(code))
                    if code != ErrorCode(999) && code != ErrorCode::MESSAGE_TOO_LARGE =>
                {
                    return Err(format!("batch {uid}: {code:?} should have been classified"));
                }
                Outcome::NotPersisted(producer_core::state::NotPersistedReason::Rejected(code))
                    if code != ErrorCode::MESSAGE_TOO_LARGE =>
                {
                    return Err(format!(
                        "batch {uid}: refused with {code:?}, which is retriable"
                    ));
                }
                _ => {}
            }
            if b.too_large && matches!(outcome, Outcome::Persisted { .. }) {
                return Err(format!("batch {uid} is too large yet got {outcome:?}"));
            }
        }
        let c = self.seq.counters();
        let persisted = self
            .app
            .iter()
            .filter(|b| matches!(b.outcome, Some((Outcome::Persisted { .. }, _))))
            .count();
        if c.persisted.batches != persisted as u64 {
            return Err(format!(
                "counters say {} persisted, callers saw {persisted}",
                c.persisted.batches
            ));
        }
        Ok(())
    }
}

#[derive(Default, Debug)]
struct Tally {
    persisted: u64,
    not_persisted: u64,
    possibly_persisted: u64,
    epoch_bumps: u64,
    producer_ids: u64,
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, t: Tally) {
        self.persisted += t.persisted;
        self.not_persisted += t.not_persisted;
        self.possibly_persisted += t.possibly_persisted;
        self.epoch_bumps += t.epoch_bumps;
        self.producer_ids += t.producer_ids;
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "batches persisted {}, not persisted {}, possibly persisted {}; epoch bumps {}, producer ids {}",
            self.persisted,
            self.not_persisted,
            self.possibly_persisted,
            self.epoch_bumps,
            self.producer_ids
        )
    }
}

const REPLAY: &str = "cargo test -p producer-core --test simulation replay_seed -- --nocapture";

/// Runs and checks one seed; returns its tally (or what failed) and, when asked, its trace.
fn simulate(seed: u64, trace: bool) -> (Result<Tally, String>, Option<String>) {
    let mut sim = Sim::new(seed, trace);
    let result = sim.run().and_then(|()| sim.verify());
    let trace = sim.w.trace.take();
    let result = match result {
        Ok(()) => {
            let c = sim.seq.counters();
            Ok(Tally {
                persisted: c.persisted.batches,
                not_persisted: c.not_persisted.batches,
                possibly_persisted: c.possibly_persisted.batches,
                epoch_bumps: c.epoch_bumps,
                producer_ids: c.producer_ids,
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
