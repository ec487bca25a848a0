//! Deterministic simulation of the whole client: real request and response bytes, connections,
//! ApiVersions, Metadata, InitProducerId, the accumulator, routing and timeouts, against a
//! model cluster of three brokers that decodes what the client sends with the codec and
//! applies Kafka's (or tansu's) idempotence rules. The network drops requests, loses
//! responses after the append, delays, resets connections (the broker may still process what
//! it had read), leaders move, brokers go down and come back, producer state is forgotten, and
//! the application sets deadlines and cancels. After each seed settles, every record's outcome
//! is checked against the model's log.
//!
//! `SIM_SEEDS=N` sets how many seeds `client_many_seeds` runs;
//! `SIM_SEED=N cargo test -p producer-core --test client_simulation client_replay_seed --
//! --nocapture` replays one with a trace.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use producer_core::ErrorCode;
use producer_core::client::{Client, ClientConfig, ConnId, ProducerRecord, SendError};
use producer_core::state::{BatchToken, Outcome, PossiblyPersistedReason, UnknownOutcome};
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
use model::{BatchId, Check, Flavour, Idempotence};

const TOPIC: &str = "sensors";
const PARTITIONS: usize = 3;
const BROKERS: usize = 3;
const BATCH_BYTES: usize = 600;
const SLOTS: usize = 16;
type TestClient = Client<Vec<u8>, 1, 4, SLOTS, 4>;
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
    Submit,
    Cancel(u32),
    LeaderMove,
    BrokerDown(usize),
    BrokerUp(usize),
    StateLoss,
}

/// One incarnation of a client connection, as the network sees it.
struct Wire {
    incarnation: u64,
    broker: usize,
    connected: bool,
    black_requests: bool,
    black_responses: bool,
    last_arrival: Instant,
    last_response: Instant,
}

struct AppRecord {
    key: Option<String>,
    value: String,
    deadline: Instant,
    accepted: Option<(BatchToken, u32)>,
    partition: Option<i32>,
    outcome: Option<(Outcome, Option<i64>, Instant)>,
    cancelled_at: Option<Instant>,
}

struct Sim {
    w: World<Ev>,
    policy: UnknownOutcome,
    flavour: Flavour,
    // The cluster.
    idempotence: Idempotence,
    leader: [usize; PARTITIONS],
    up: [bool; BROKERS],
    /// Per partition: (record uid, offset).
    logs: [Vec<(u32, i64)>; PARTITIONS],
    next_offset: [i64; PARTITIONS],
    // The network.
    wires: BTreeMap<u8, Wire>,
    /// Closed incarnations: (broker, requests still processed, closed at).
    closed: BTreeMap<u64, (usize, u32, Instant)>,
    next_incarnation: u64,
    // The client and the application.
    client: TestClient,
    tx: Vec<u8>,
    app: Vec<AppRecord>,
    next_submit: usize,
    receipts: HashMap<(BatchToken, u32), u32>,
}

impl Sim {
    fn new(seed: u64, trace: bool) -> Sim {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let flavour = if seed.is_multiple_of(2) {
            Flavour::Kafka
        } else {
            Flavour::Tansu
        };
        let policy = if (seed / 2).is_multiple_of(2) {
            UnknownOutcome::FailAndFence
        } else {
            UnknownOutcome::Wait
        };
        let mut config = ClientConfig::new("sim");
        config.request_timeout = REQUEST_TIMEOUT;
        config.linger = ms(rng.random_range(0..20));
        config.batch_bytes = BATCH_BYTES;
        config.reconnect_backoff = ms(rng.random_range(10..100));
        config.producer.unknown_outcome = policy;
        config.producer.max_in_flight_per_partition = rng.random_range(1..=5);
        config.producer.retry_backoff = ms(rng.random_range(5..=50));
        config.producer.retry_backoff_max = ms(400);
        config.producer.abandoned_request_grace = LINGER_AFTER_CLOSE + ms(rng.random_range(1..100));
        let client = TestClient::new(
            config,
            &["b1:9092", "b2:9092", "b3:9092"],
            &[TOPIC],
            vec![0u8; SLOTS * BATCH_BYTES],
        )
        .expect("valid configuration");
        let records = rng.random_range(30..150);
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
                    outcome: None,
                    cancelled_at: None,
                }
            })
            .collect::<Vec<_>>();
        let fault_end = Instant::from_millis(t + rng.random_range(500..3000));
        let mut sim = Sim {
            w: World::new(rng, fault_end, trace),
            policy,
            flavour,
            idempotence: Idempotence::new(flavour),
            leader: [0, 1, 2],
            up: [true; BROKERS],
            logs: Default::default(),
            next_offset: [0; PARTITIONS],
            wires: BTreeMap::new(),
            closed: BTreeMap::new(),
            next_incarnation: 0,
            client,
            tx: vec![0u8; 16 * 1024],
            app,
            next_submit: 0,
            receipts: HashMap::new(),
        };
        sim.w.schedule(Instant::ZERO, Ev::Submit);
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
        sim
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
                let conns: Vec<_> = (0..4u8)
                    .map(|c| self.client.connection(ConnId(c)))
                    .collect();
                let held: Vec<_> = self
                    .app
                    .iter()
                    .filter(|r| r.outcome.is_none())
                    .filter_map(|r| r.accepted)
                    .map(|(b, _)| self.client.sequencer().batch_state(b))
                    .collect();
                return Err(format!(
                    "did not settle by {limit:?}: identity {:?}, connections {conns:?}, wires {:?}, undecided {held:?}, submitted {}/{}",
                    self.client.sequencer().identity(),
                    self.wires.keys().collect::<Vec<_>>(),
                    self.next_submit,
                    self.app.len()
                ));
            }
            self.w.now = self.w.now.max(next);
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

    /// One pass of the transport loop.
    fn step(&mut self) -> Result<Option<Instant>, String> {
        self.client.poll(self.w.now);
        while let Some(conn) = self.client.poll_close() {
            self.w
                .log(|| format!("client closes connection {}", conn.0));
            self.close_wire(conn.0);
        }
        while let Some((conn, endpoint)) = self.client.poll_connect(self.w.now) {
            let broker = endpoint
                .host
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
                    connected: false,
                    black_requests: false,
                    black_responses: false,
                    last_arrival: self.w.now,
                    last_response: self.w.now,
                },
            );
            let at = self.w.now + ms(self.w.rng.random_range(1..4));
            if self.up[broker] {
                self.w.schedule(at, Ev::Connected(conn.0, incarnation));
            } else {
                self.w.schedule(at, Ev::ConnectFailed(conn.0, incarnation));
            }
        }
        while let Some(conn) = self.client.poll_close() {
            self.w
                .log(|| format!("client closes connection {}", conn.0));
            self.close_wire(conn.0);
        }
        let conns: Vec<u8> = self
            .wires
            .iter()
            .filter(|(_, w)| w.connected)
            .map(|(c, _)| *c)
            .collect();
        for conn in conns {
            while let Some(n) = self
                .client
                .poll_transmit(ConnId(conn), self.w.now, &mut self.tx)
            {
                let frame = self.tx[..n].to_vec();
                self.transmit(conn, frame);
                if !self.wires.get(&conn).is_some_and(|w| w.connected) {
                    break;
                }
            }
        }
        // Time may have sealed batches or applied deadlines: poll again for the wake-up.
        let wake = self.client.poll(self.w.now);
        self.drain()?;
        Ok(wake)
    }

    fn settled(&self) -> bool {
        self.next_submit == self.app.len()
            && self.app.iter().all(|r| r.outcome.is_some())
            && self.client.is_idle()
            && self.w.now >= self.w.fault_end
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
            Ev::Connected(conn, inc) => {
                if let Some(w) = self.wires.get_mut(&conn)
                    && w.incarnation == inc
                {
                    w.connected = true;
                    self.client.on_connected(ConnId(conn), self.w.now);
                }
            }
            Ev::ConnectFailed(conn, inc) => {
                if self.wires.get(&conn).is_some_and(|w| w.incarnation == inc) {
                    self.wires.remove(&conn);
                    self.client.on_connection_lost(ConnId(conn), self.w.now);
                }
            }
            Ev::Arrive(conn, inc, frame) => self.arrive(conn, inc, frame)?,
            Ev::Response(conn, inc, frame) => {
                if self.wires.get(&conn).is_some_and(|w| w.incarnation == inc) {
                    self.client.on_frame(ConnId(conn), self.w.now, &frame[4..]);
                }
            }
            Ev::Reset(conn, inc) => {
                if self.wires.get(&conn).is_some_and(|w| w.incarnation == inc) {
                    self.w.log(|| format!("connection {conn} reset"));
                    self.close_wire(conn);
                    self.client.on_connection_lost(ConnId(conn), self.w.now);
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
                        let at = self.w.now + ms(1);
                        self.w.schedule(at, Ev::Reset(c, inc));
                    }
                    let at = self.w.now + ms(self.w.rng.random_range(50..1500));
                    self.w.schedule(at, Ev::BrokerUp(b));
                }
            }
            Ev::BrokerUp(b) => {
                self.w.log(|| format!("broker {b} is back"));
                self.up[b] = true;
            }
            Ev::StateLoss => {
                // Only while nothing that may have been appended can be resent or still be
                // processed: the guarantee rests on the broker keeping producer state for
                // unresolved batches, and no client can do without that.
                let lingering = self
                    .closed
                    .values()
                    .any(|&(_, n, at)| n > 0 && self.w.now <= at + LINGER_AFTER_CLOSE);
                let quiet = !lingering
                    && self
                        .app
                        .iter()
                        .filter_map(|r| r.accepted)
                        .all(|(batch, _)| {
                            !matches!(
                                self.client.sequencer().batch_state(batch),
                                Some(
                                    producer_core::state::BatchState::InFlight { .. }
                                        | producer_core::state::BatchState::Stamped {
                                            maybe_written: true,
                                            ..
                                        }
                                        | producer_core::state::BatchState::Decided {
                                            outstanding: true,
                                            ..
                                        }
                                )
                            )
                        });
                if quiet {
                    self.w.log(|| "brokers forget producer state".into());
                    self.idempotence.forget();
                }
            }
        }
        Ok(())
    }

    fn submit(&mut self) {
        while self.next_submit < self.app.len() {
            let uid = self.next_submit;
            let r = &self.app[uid];
            if r.deadline <= self.w.now {
                // Never accepted before its deadline: the application knows it was not sent.
                self.app[uid].outcome = Some((
                    Outcome::NotPersisted(producer_core::state::NotPersistedReason::Deadline),
                    None,
                    self.w.now,
                ));
                self.next_submit += 1;
                continue;
            }
            let record = ProducerRecord {
                topic: TOPIC,
                partition: None,
                key: r.key.as_deref().map(str::as_bytes),
                value: Some(r.value.as_bytes()),
                headers: &[],
                timestamp: 1_700_000_000_000 + self.w.now.as_micros() as i64 / 1000,
            };
            match self.client.send(&record, r.deadline, self.w.now) {
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
                Err(e) => panic!("record {uid} refused: {e:?}"),
            }
        }
    }

    fn transmit(&mut self, conn: u8, frame: Vec<u8>) {
        let black = self.w.chance(0.01);
        let reset = self.w.chance(0.008);
        let latency = self.w.latency(0.02, 300..2500, 200..6000);
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

    /// The connection closes (either side): requests in transit may still reach the broker
    /// for a short while (it processes what it had read).
    fn close_wire(&mut self, conn: u8) {
        if let Some(w) = self.wires.remove(&conn) {
            let lingering = self.w.rng.random_range(0..=3);
            self.closed
                .insert(w.incarnation, (w.broker, lingering, self.w.now));
        }
    }

    fn arrive(&mut self, conn: u8, inc: u64, frame: Vec<u8>) -> Result<(), String> {
        let live = self
            .wires
            .get(&conn)
            .filter(|w| w.incarnation == inc)
            .map(|w| w.broker);
        let broker = match live {
            Some(b) => b,
            None => match self.closed.get_mut(&inc) {
                Some((b, n, at)) if *n > 0 && self.w.now <= *at + LINGER_AFTER_CLOSE => {
                    *n -= 1;
                    *b
                }
                _ => return Ok(()),
            },
        };
        if !self.up[broker] {
            return Ok(());
        }
        let response = self.answer(broker, &frame[4..])?;
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

    /// The model broker: decodes the request with the codec and answers it.
    fn answer(&mut self, broker: usize, frame: &[u8]) -> Result<Vec<u8>, String> {
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
                        producer_id: self.idempotence.issue(epoch),
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
                            self.produce_partition(broker, index, records)?;
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
        match self.idempotence.check(p, id) {
            Check::Refuse(code) => Ok((code, -1)),
            Check::Duplicate(offset) => Ok(self.idempotence.duplicate_answer(offset)),
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
            let line = format!("batch of {} records -> {:?}", d.records, d.outcome);
            self.w.log(|| line);
        }
        Ok(())
    }

    fn verify(&self) -> Result<(), String> {
        let mut seen: BTreeMap<u32, (usize, i64, usize)> = BTreeMap::new();
        for (p, log) in self.logs.iter().enumerate() {
            let mut last = None;
            for &(uid, offset) in log {
                let copies = seen.entry(uid).or_insert((p, offset, 0));
                copies.2 += 1;
                if copies.2 > 1 {
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
            let Some((outcome, offset, at)) = r.outcome else {
                return Err(format!("record {uid} has no outcome"));
            };
            let in_log = seen.get(&uid);
            if let (Some(&(p, _, _)), Some(expected)) = (in_log, r.partition)
                && p as i32 != expected
            {
                return Err(format!("record {uid} landed in {p}, reported {expected}"));
            }
            match outcome {
                Outcome::Persisted { .. } => {
                    let Some(&(_, log_offset, _)) = in_log else {
                        return Err(format!("record {uid} reported persisted, not in the log"));
                    };
                    if let Some(o) = offset
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
                _ => {}
            }
            if r.value.starts_with(POISON) && matches!(outcome, Outcome::Persisted { .. }) {
                return Err(format!("poison record {uid} persisted"));
            }
            let limit = r.cancelled_at.map_or(r.deadline, |c| c.min(r.deadline));
            // Deadlines are the client's to honour once it accepted the record.
            if r.accepted.is_some() && self.policy == UnknownOutcome::FailAndFence && at > limit {
                return Err(format!(
                    "record {uid}: outcome at {at:?} after its deadline {limit:?}"
                ));
            }
            if self.policy == UnknownOutcome::Wait
                && matches!(
                    outcome,
                    Outcome::PossiblyPersisted(PossiblyPersistedReason::Deadline)
                )
            {
                return Err(format!(
                    "record {uid}: a deadline gave up an unknown batch under Wait"
                ));
            }
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
}

impl std::ops::AddAssign for Tally {
    fn add_assign(&mut self, t: Tally) {
        self.persisted += t.persisted;
        self.not_persisted += t.not_persisted;
        self.possibly += t.possibly;
        self.epoch_bumps += t.epoch_bumps;
        self.producer_ids += t.producer_ids;
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "records persisted {}, not persisted {}, possibly persisted {}; epoch bumps {}, producer ids {}",
            self.persisted, self.not_persisted, self.possibly, self.epoch_bumps, self.producer_ids
        )
    }
}

const REPLAY: &str =
    "cargo test -p producer-core --test client_simulation client_replay_seed -- --nocapture";

/// Runs and checks one seed; returns its tally (or what failed) and, when asked, its trace.
fn simulate(seed: u64, trace: bool) -> (Result<Tally, String>, Option<String>) {
    let mut sim = Sim::new(seed, trace);
    let result = sim.run().and_then(|()| sim.verify());
    let trace = sim.w.trace.take();
    let result = match result {
        Ok(()) => {
            let mut t = Tally::default();
            for r in &sim.app {
                match r.outcome.map(|o| o.0) {
                    Some(Outcome::Persisted { .. }) => t.persisted += 1,
                    Some(Outcome::NotPersisted(_)) => t.not_persisted += 1,
                    _ => t.possibly += 1,
                }
            }
            let c = sim.client.counters();
            t.epoch_bumps = c.epoch_bumps;
            t.producer_ids = c.producer_ids;
            Ok(t)
        }
        Err(e) => Err(format!("({:?}, {:?}) {e}", sim.flavour, sim.policy)),
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
