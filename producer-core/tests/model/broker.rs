//! The model cluster behind the wire, for the simulations of the whole client
//! (`client_simulation`, `durable_simulation`): three brokers leading the three partitions of
//! one topic, a log per partition, producer state with this module's idempotence rules, and
//! the answers to ApiVersions, Metadata, InitProducerId and Produce, decoded and encoded with
//! the codec so the client meets real bytes.
//!
//! The faults it injects (refusals, appends whose answer is an error) draw on the world's
//! random source in a fixed order, so a seed replays. What a simulation checks or counts on
//! the way (the durable one: nothing sent before it is durable, resends of an earlier life)
//! goes through an [`Observer`], so the broker itself exists once.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use producer_core::ErrorCode;
use producer_core::time::Instant;
use producer_core::wire::{
    self, ApiKey, ApiVersion, ApiVersionsResponse, InitProducerIdResponse, List, MetadataBroker,
    MetadataPartition, MetadataResponse, MetadataTopic, RecordBatches, Request,
};
use rand::Rng;

use super::clock::Clocks;
use super::faults::Faults;
use super::net::NetEv;
use super::records::uid_of;
use super::{BatchId, Check, Flavour, Idempotence, Snapshot};
use crate::harness::World;

mod acks;

pub const TOPIC: &str = "sensors";
pub const PARTITIONS: usize = 3;
pub const BROKERS: usize = 3;

/// One produce entry as the broker decoded it.
pub struct Entry {
    pub broker: usize,
    pub partition: usize,
    pub id: BatchId,
    /// The records it carries, by uid.
    pub uids: Vec<u32>,
}

/// What a simulation sees of the broker's work; every hook does nothing unless implemented.
pub trait Observer {
    /// A producer id was issued.
    fn issued(&mut self, _producer_id: i64) {}

    /// A produce entry arrived, before the broker judges it: an error fails the seed.
    fn received(&mut self, _entry: &Entry) -> Result<(), String> {
        Ok(())
    }

    /// The idempotence rules judged an entry (the partition's leader took it).
    fn judged<E>(&mut self, _w: &mut World<E>, _entry: &Entry, _check: Check) {}

    /// The entry was appended to the log.
    fn appended(&mut self, _entry: &Entry) {}
}

/// Observes nothing.
impl Observer for () {}

/// Traces what the broker made of each produce entry.
pub struct Judged;

impl Observer for Judged {
    fn judged<E>(&mut self, w: &mut World<E>, entry: &Entry, check: Check) {
        let id = entry.id;
        w.log(|| {
            format!(
                "broker {}: {:?} to partition {} as ({}, {}, {}): {check:?}",
                entry.broker,
                entry.uids,
                entry.partition,
                id.producer_id,
                id.epoch,
                id.base_sequence
            )
        });
    }
}

pub struct Cluster {
    pub flavour: Flavour,
    pub idempotence: Idempotence,
    pub leader: [usize; PARTITIONS],
    /// Bumped at every leadership change of the partition (Kafka's leader epoch): a produce
    /// request waiting for acks when it changes is answered 6.
    pub leader_epoch: [u32; PARTITIONS],
    pub up: [bool; BROKERS],
    /// Per partition: (record uid, offset).
    pub logs: [Vec<(u32, i64)>; PARTITIONS],
    pub next_offset: [i64; PARTITIONS],
    pub clocks: Clocks,
    /// Until when each partition's in-sync replicas are slow (Kafka): its acks waits are long.
    slow_until: [Instant; PARTITIONS],
    /// Per broker down: what it does when it comes back.
    down: [Option<Down>; BROKERS],
    /// Entries answered 6 after their append: (producer id, epoch, partition, base sequence).
    not_leader_answered: BTreeSet<(i64, i16, usize, i32)>,
    /// A stretch during which every batch the leader would append is refused 45
    /// (OUT_OF_ORDER_SEQUENCE_NUMBER) instead, fences and all (a broker stuck refusing).
    pub refuse_45: Option<(Instant, Instant)>,
    pub faults: Faults,
}

/// What a broker that went down does when it is back (Kafka): lead the partitions it led
/// (a preferred-leader election), and if its shutdown was clean, from the producer-state
/// snapshot it wrote then (one batch per producer; an unclean one replays its log and
/// rebuilds all five).
struct Down {
    lead_again: bool,
    clean: bool,
    /// The partitions it led, with its snapshot of each.
    led: Vec<(usize, Snapshot)>,
}

/// A reply being prepared: encoded once the broker's acks wait (`wait`) is over, when the
/// produce entries whose partition's leadership moved meanwhile are answered 6.
pub struct Reply {
    pub wait: Duration,
    broker: usize,
    api: ApiKey,
    version: i16,
    corr: i32,
    body: ReplyBody,
}

enum ReplyBody {
    Encoded(Vec<u8>),
    Produce(Vec<PartReply>),
}

/// One produce entry's answer, as prepared before the acks wait.
pub struct PartReply {
    pub index: i32,
    pub error: ErrorCode,
    pub base_offset: i64,
    /// Appended or deduplicated, so it waits for acks: its partition, the leader epoch then,
    /// and the batch.
    watch: Option<(usize, u32, BatchId)>,
}

/// What [`Cluster::produce`] made of an entry: its error code, base offset, and, if it was
/// appended or deduplicated (so it waits for acks), its partition and batch.
pub type Produced = (ErrorCode, i64, Option<(usize, BatchId)>);

impl Reply {
    /// The error codes of a produce reply's entries as prepared (before the acks wait).
    pub fn produce_errors(&self) -> impl Iterator<Item = ErrorCode> + '_ {
        let parts: &[PartReply] = match &self.body {
            ReplyBody::Produce(parts) => parts,
            ReplyBody::Encoded(_) => &[],
        };
        parts.iter().map(|p| p.error)
    }
}

impl Cluster {
    /// Every broker up, broker `p` leading partition `p`, empty logs.
    pub fn new(flavour: Flavour, clocks: Clocks) -> Self {
        Cluster {
            flavour,
            idempotence: Idempotence::new(flavour),
            leader: [0, 1, 2],
            leader_epoch: [0; PARTITIONS],
            up: [true; BROKERS],
            logs: Default::default(),
            next_offset: [0; PARTITIONS],
            clocks,
            slow_until: [Instant::ZERO; PARTITIONS],
            down: Default::default(),
            not_leader_answered: BTreeSet::new(),
            refuse_45: None,
            faults: Faults::default(),
        }
    }

    /// Schedules the first periodic producer-expiration check, when the flavour expires.
    pub fn start<E: From<NetEv>>(&self, w: &mut World<E>) {
        if let Some((_, every)) = self.clocks.expiration {
            w.schedule(Instant::ZERO + every, NetEv::ExpiryCheck.into());
        }
    }

    /// Kafka's `PeriodicProducerExpirationCheck`: drops the producer states whose last
    /// batch's max timestamp is the expiration behind the broker's wall clock, and schedules
    /// the next check.
    pub fn expiry_check<E: From<NetEv>>(&mut self, w: &mut World<E>) {
        let Some((expiration, every)) = self.clocks.expiration else {
            return;
        };
        let now_ms = self.clocks.broker_ms(w.now);
        let dropped = self
            .idempotence
            .expire(now_ms, expiration.as_millis() as i64);
        if !dropped.is_empty() {
            self.faults.expired_states += dropped.len() as u64;
            w.log(|| format!("brokers expire producer state {dropped:?}"));
        }
        w.schedule(w.now + every, NetEv::ExpiryCheck.into());
    }

    /// Partition `p`'s in-sync replicas turn slow for a while (Kafka): every produce request
    /// to it waits long for acks, up to its timeout, and the requests pipelined behind it on
    /// a connection wait their turn, so a client that times out and closes leaves requests
    /// the broker still processes one at a time, up to a produce timeout each.
    pub fn slow_replicas<E>(&mut self, w: &mut World<E>, p: usize) {
        let length = Duration::from_millis(w.rng.random_range(500..3000));
        w.log(|| format!("partition {p}: in-sync replicas slow for {length:?}"));
        self.slow_until[p] = self.slow_until[p].max(w.now + length);
    }

    fn set_leader<E>(&mut self, w: &mut World<E>, p: usize, to: usize) {
        if self.leader[p] != to {
            w.log(|| format!("leader of {p} moves to broker {to}"));
            self.leader[p] = to;
            self.leader_epoch[p] += 1;
        }
    }

    /// A random partition's leadership moves to a random broker, if that one is up.
    pub fn move_leader<E>(&mut self, w: &mut World<E>) {
        let p = w.rng.random_range(0..PARTITIONS);
        let to = w.rng.random_range(0..BROKERS);
        if self.up[to] {
            self.set_leader(w, p, to);
        }
    }

    /// Partition `p`'s leadership moves to broker `to` (scheduled inside an acks wait), if
    /// that one is up.
    pub fn move_leader_to<E>(&mut self, w: &mut World<E>, p: usize, to: usize) {
        if self.up[to] {
            self.set_leader(w, p, to);
        }
    }

    /// Broker `b` goes down, unless it is down already or the last one up; its partitions
    /// move to the first broker up. When it is back, it leads them again if `lead_again`
    /// (Kafka), from the snapshot it writes now if `clean`. True if it went down.
    pub fn broker_down<E>(
        &mut self,
        w: &mut World<E>,
        b: usize,
        lead_again: bool,
        clean: bool,
    ) -> bool {
        if !(self.up[b] && self.up.iter().filter(|u| **u).count() > 1) {
            return false;
        }
        w.log(|| format!("broker {b} goes down"));
        self.up[b] = false;
        let led: Vec<(usize, Snapshot)> = (0..PARTITIONS)
            .filter(|&p| self.leader[p] == b)
            .map(|p| (p, self.idempotence.snapshot(p)))
            .collect();
        self.down[b] = (self.flavour == Flavour::Kafka).then_some(Down {
            lead_again,
            clean,
            led,
        });
        for p in 0..PARTITIONS {
            if self.leader[p] == b {
                let to = (0..BROKERS).find(|&x| self.up[x]).unwrap_or(0);
                self.set_leader(w, p, to);
            }
        }
        true
    }

    pub fn broker_up<E>(&mut self, w: &mut World<E>, b: usize) {
        w.log(|| format!("broker {b} is back"));
        self.up[b] = true;
        let Some(down) = self.down[b].take() else {
            return;
        };
        if !down.lead_again || down.led.is_empty() {
            return;
        }
        for (p, snapshot) in &down.led {
            self.set_leader(w, *p, b);
            if down.clean {
                let forgotten = self.idempotence.load_snapshot(*p, snapshot);
                self.faults.snapshot_forgotten += forgotten;
                w.log(|| {
                    format!("broker {b} leads {p} again from its snapshot: {forgotten} batches forgotten")
                });
            }
        }
        if down.clean {
            self.faults.snapshot_restarts += 1;
            // A snapshot load drops the producers already expired too.
            if let Some((expiration, _)) = self.clocks.expiration {
                let now_ms = self.clocks.broker_ms(w.now);
                let dropped = self
                    .idempotence
                    .expire(now_ms, expiration.as_millis() as i64);
                if !dropped.is_empty() {
                    self.faults.expired_states += dropped.len() as u64;
                    w.log(|| {
                        format!("broker {b}'s snapshot load expires producer state {dropped:?}")
                    });
                }
            }
        }
    }

    /// Where each record landed: (partition, offset) by uid. Fails if a record is in the logs
    /// twice or a partition's log is out of send (uid) order.
    pub fn placed(&self) -> Result<BTreeMap<u32, (usize, i64)>, String> {
        let mut seen = BTreeMap::new();
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
        Ok(seen)
    }

    /// Broker `broker` processes a request frame (without its length prefix): everything
    /// but the acks wait, after which [`Cluster::finish`] encodes the reply.
    pub fn answer<E: From<NetEv>>(
        &mut self,
        w: &mut World<E>,
        broker: usize,
        frame: &[u8],
        observer: &mut impl Observer,
    ) -> Result<Reply, String> {
        let (header, request) =
            wire::decode_request(frame).map_err(|e| format!("client sent garbage: {e:?}"))?;
        let version = header.api_version;
        let corr = header.correlation_id;
        let api = ApiKey::from_i16(header.api_key).map_err(|e| format!("{e:?}"))?;
        let mut out = vec![0u8; 64 * 1024];
        let reply = |body| Reply {
            wait: Duration::ZERO,
            broker,
            api,
            version,
            corr,
            body,
        };
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
                let body = if w.chance(0.05) {
                    InitProducerIdResponse {
                        throttle_time_ms: 0,
                        error_code: ErrorCode::COORDINATOR_NOT_AVAILABLE.0,
                        producer_id: -1,
                        producer_epoch: -1,
                    }
                } else {
                    let epoch = if self.flavour == Flavour::Kafka && w.rng.random_bool(0.2) {
                        i16::MAX - w.rng.random_range(0..3)
                    } else {
                        0
                    };
                    let producer_id = self.idempotence.issue(epoch);
                    observer.issued(producer_id);
                    InitProducerIdResponse {
                        throttle_time_ms: 0,
                        error_code: 0,
                        producer_id,
                        producer_epoch: epoch,
                    }
                };
                wire::encode_response(&mut out, version, corr, &body)
            }
            Request::Produce(produce) => {
                if produce.acks != -1 {
                    return Err(format!("acks {} instead of -1", produce.acks));
                }
                let mut parts = Vec::new();
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
                        let produced =
                            self.produce_partition(w, broker, index, records, observer)?;
                        parts.push(self.part(index, produced));
                    }
                }
                let timeout = Duration::from_millis(produce.timeout_ms.max(0) as u64);
                let wait = self.acks_wait(w, timeout, &mut parts);
                w.log(|| format!("broker {broker} processes Produce corr {corr}"));
                return Ok(Reply {
                    wait,
                    ..reply(ReplyBody::Produce(parts))
                });
            }
            // The model's listeners are PLAINTEXT: a client that authenticates is wrong here.
            Request::SaslHandshake(_) | Request::SaslAuthenticate(_) => {
                return Err("SASL request on a PLAINTEXT listener".into());
            }
        }
        .map_err(|e| format!("model broker cannot encode: {e:?}"))?;
        out.truncate(n);
        Ok(reply(ReplyBody::Encoded(out)))
    }

    /// One produce entry, decoded and judged (see [`Cluster::produce`]).
    fn produce_partition<E>(
        &mut self,
        w: &mut World<E>,
        broker: usize,
        partition: i32,
        records: Option<&[u8]>,
        observer: &mut impl Observer,
    ) -> Result<Produced, String> {
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
            let (uid, poisoned) = uid_of(value)?;
            poison |= poisoned;
            uids.push(uid);
        }
        if h.record_count as usize != uids.len() {
            return Err("record count mismatch".into());
        }
        let entry = Entry {
            broker,
            partition: p,
            id: BatchId {
                producer_id: h.producer_id,
                epoch: h.producer_epoch,
                base_sequence: h.base_sequence,
                records: uids.len() as u32,
                max_timestamp: h.max_timestamp,
            },
            uids,
        };
        self.produce(w, entry, poison, observer)
    }

    /// Broker `entry.broker` judges a produce entry and appends it if it may: one log entry
    /// per uid, at consecutive offsets from its base (the batch takes `entry.id.records`
    /// offsets). `poison`: refused as too large.
    pub fn produce<E>(
        &mut self,
        w: &mut World<E>,
        entry: Entry,
        poison: bool,
        observer: &mut impl Observer,
    ) -> Result<Produced, String> {
        let (broker, p) = (entry.broker, entry.partition);
        observer.received(&entry)?;
        if self.leader[p] != broker {
            return Ok((ErrorCode::NOT_LEADER_OR_FOLLOWER, -1, None));
        }
        if poison {
            return Ok((ErrorCode::MESSAGE_TOO_LARGE, -1, None));
        }
        if w.chance(0.02) {
            return Ok((ErrorCode::NOT_ENOUGH_REPLICAS, -1, None));
        }
        if self
            .refuse_45
            .is_some_and(|(from, until)| (from..until).contains(&w.now))
            && self.idempotence.check(p, entry.id) == Check::Append
        {
            self.faults.hostile_45 += 1;
            return Ok((ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER, -1, None));
        }
        let check = self.idempotence.check(p, entry.id);
        observer.judged(w, &entry, check);
        let id = entry.id;
        match check {
            Check::Refuse(code) => {
                if code == ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER
                    && self.idempotence.was_forgotten(p, id)
                {
                    self.faults.refused_after_snapshot += 1;
                }
                Ok((code, -1, None))
            }
            Check::Duplicate(offset) => {
                if self
                    .not_leader_answered
                    .remove(&(id.producer_id, id.epoch, p, id.base_sequence))
                {
                    self.faults.dedup_after_not_leader += 1;
                }
                let (code, offset) = self.idempotence.duplicate_answer(offset);
                Ok((code, offset, Some((p, id))))
            }
            Check::Append => {
                let unknown = w.chance(0.004);
                if unknown && w.rng.random_bool(0.5) {
                    return Ok((ErrorCode(999), -1, None));
                }
                if id.base_sequence != 0 && !self.idempotence.knows(p, id.producer_id) {
                    self.faults.unknown_producer_appends += 1;
                    w.log(|| {
                        format!(
                            "broker {broker}: unknown producer appended at {}",
                            id.base_sequence
                        )
                    });
                }
                let base = self.next_offset[p];
                for (i, uid) in entry.uids.iter().enumerate() {
                    self.logs[p].push((*uid, base + i as i64));
                }
                self.next_offset[p] += i64::from(id.records);
                self.idempotence.appended(p, id, base);
                observer.appended(&entry);
                if unknown {
                    Ok((ErrorCode(999), -1, None))
                } else if w.chance(0.02) {
                    Ok((ErrorCode::REQUEST_TIMED_OUT, -1, None))
                } else if w.chance(0.01) {
                    Ok((ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND, -1, None))
                } else {
                    Ok((ErrorCode::NONE, base, Some((p, id))))
                }
            }
        }
    }
}
