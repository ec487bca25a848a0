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

use std::collections::BTreeMap;

use producer_core::ErrorCode;
use producer_core::wire::{
    self, ApiVersion, ApiVersionsResponse, InitProducerIdResponse, List, MetadataBroker,
    MetadataPartition, MetadataResponse, MetadataTopic, ProducePartitionResponse, ProduceResponse,
    ProduceTopicResponse, RecordBatches, Request,
};
use rand::Rng;

use super::records::uid_of;
use super::{BatchId, Check, Flavour, Idempotence};
use crate::harness::World;

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

pub struct Cluster {
    pub flavour: Flavour,
    pub idempotence: Idempotence,
    pub leader: [usize; PARTITIONS],
    pub up: [bool; BROKERS],
    /// Per partition: (record uid, offset).
    pub logs: [Vec<(u32, i64)>; PARTITIONS],
    pub next_offset: [i64; PARTITIONS],
}

impl Cluster {
    /// Every broker up, broker `p` leading partition `p`, empty logs.
    pub fn new(flavour: Flavour) -> Self {
        Cluster {
            flavour,
            idempotence: Idempotence::new(flavour),
            leader: [0, 1, 2],
            up: [true; BROKERS],
            logs: Default::default(),
            next_offset: [0; PARTITIONS],
        }
    }

    /// A random partition's leadership moves to a random broker, if that one is up.
    pub fn move_leader<E>(&mut self, w: &mut World<E>) {
        let p = w.rng.random_range(0..PARTITIONS);
        let to = w.rng.random_range(0..BROKERS);
        if self.up[to] {
            w.log(|| format!("leader of {p} moves to broker {to}"));
            self.leader[p] = to;
        }
    }

    /// Broker `b` goes down, unless it is down already or the last one up; its partitions
    /// move to the first broker up. True if it went down.
    pub fn broker_down<E>(&mut self, w: &mut World<E>, b: usize) -> bool {
        if !(self.up[b] && self.up.iter().filter(|u| **u).count() > 1) {
            return false;
        }
        w.log(|| format!("broker {b} goes down"));
        self.up[b] = false;
        for p in 0..PARTITIONS {
            if self.leader[p] == b {
                self.leader[p] = (0..BROKERS).find(|&x| self.up[x]).unwrap_or(0);
            }
        }
        true
    }

    pub fn broker_up<E>(&mut self, w: &mut World<E>, b: usize) {
        w.log(|| format!("broker {b} is back"));
        self.up[b] = true;
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

    /// Broker `broker` answers a request frame (without its length prefix).
    pub fn answer<E>(
        &mut self,
        w: &mut World<E>,
        broker: usize,
        frame: &[u8],
        observer: &mut impl Observer,
    ) -> Result<Vec<u8>, String> {
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
                            self.produce_partition(w, broker, index, records, observer)?;
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
        w.log(|| format!("broker {broker} answers {:?} corr {corr}", header.api_key));
        Ok(out)
    }

    /// One produce entry: its error code and base offset.
    fn produce_partition<E>(
        &mut self,
        w: &mut World<E>,
        broker: usize,
        partition: i32,
        records: Option<&[u8]>,
        observer: &mut impl Observer,
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
            },
            uids,
        };
        observer.received(&entry)?;
        if self.leader[p] != broker {
            return Ok((ErrorCode::NOT_LEADER_OR_FOLLOWER, -1));
        }
        if poison {
            return Ok((ErrorCode::MESSAGE_TOO_LARGE, -1));
        }
        if w.chance(0.02) {
            return Ok((ErrorCode::NOT_ENOUGH_REPLICAS, -1));
        }
        let check = self.idempotence.check(p, entry.id);
        observer.judged(w, &entry, check);
        match check {
            Check::Refuse(code) => Ok((code, -1)),
            Check::Duplicate(offset) => Ok(self.idempotence.duplicate_answer(offset)),
            Check::Append => {
                let unknown = w.chance(0.004);
                if unknown && w.rng.random_bool(0.5) {
                    return Ok((ErrorCode(999), -1));
                }
                let base = self.next_offset[p];
                for (i, uid) in entry.uids.iter().enumerate() {
                    self.logs[p].push((*uid, base + i as i64));
                }
                self.next_offset[p] += entry.uids.len() as i64;
                self.idempotence.appended(p, entry.id, base);
                observer.appended(&entry);
                if unknown {
                    Ok((ErrorCode(999), -1))
                } else if w.chance(0.02) {
                    Ok((ErrorCode::REQUEST_TIMED_OUT, -1))
                } else if w.chance(0.01) {
                    Ok((ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND, -1))
                } else {
                    Ok((ErrorCode::NONE, base))
                }
            }
        }
    }
}
