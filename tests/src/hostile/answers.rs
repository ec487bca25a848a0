//! The fake broker's answers: what one healthy broker leading every partition would say to
//! ApiVersions, Metadata, InitProducerId and Produce (encoded with the codec, at the version
//! the request came with), then bent the way the case's [`Misbehaviour`] says.

use producer_core::ErrorCode;
use producer_core::wire::{
    self, ApiVersion, ApiVersionsResponse, InitProducerIdResponse, List, MetadataBroker,
    MetadataPartition, MetadataResponse, MetadataTopic, ProducePartitionResponse, ProduceResponse,
    ProduceTopicResponse, RecordBatches, Request,
};

use super::broker::{Misbehaviour, NODE_ID, PARTITIONS, Shared, TOPIC};

/// The APIs the broker speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// ApiVersions (18).
    ApiVersions,
    /// Metadata (3).
    Metadata,
    /// InitProducerId (22).
    InitProducerId,
    /// Produce (0).
    Produce,
}

impl Api {
    /// Its name, as counted.
    pub fn name(self) -> &'static str {
        match self {
            Api::ApiVersions => "ApiVersions",
            Api::Metadata => "Metadata",
            Api::InitProducerId => "InitProducerId",
            Api::Produce => "Produce",
        }
    }
}

/// What a connection does with a request.
pub(crate) enum Reply {
    /// Write these bytes; once written whole, these (value, partition, offset) were
    /// acknowledged.
    Write {
        bytes: Vec<u8>,
        acks: Vec<(Vec<u8>, i32, i64)>,
    },
    /// Close the connection.
    Close,
}

/// The version ranges it advertises: exactly what the codec implements.
const VERSIONS: [ApiVersion; 4] = [
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

/// Answers one request frame (without its length prefix).
pub(crate) fn answer(s: &mut Shared, frame: &[u8]) -> Reply {
    let Ok((header, request)) = wire::decode_request(frame) else {
        s.counts.undecodable += 1;
        return Reply::Close;
    };
    let api = match request {
        Request::ApiVersions(_) => Api::ApiVersions,
        Request::Metadata(_) => Api::Metadata,
        Request::InitProducerId(_) => Api::InitProducerId,
        Request::Produce(_) => Api::Produce,
        // Its listener is PLAINTEXT: a client that authenticates is counted and cut off.
        Request::SaslHandshake(_) | Request::SaslAuthenticate(_) => {
            s.counts.undecodable += 1;
            return Reply::Close;
        }
    };
    *s.counts.requests.entry(api.name()).or_default() += 1;
    let at = s.started.elapsed().as_millis() as u64;
    s.counts.arrivals.entry(api.name()).or_default().push(at);
    let version = header.api_version;
    let corr = header.correlation_id;
    let misbehaviour = s.misbehaviour;
    // Whether this answer gets bent: then an append's acknowledgement never arrives intact.
    let bent = match misbehaviour {
        Misbehaviour::FrameLength { api: a, .. }
        | Misbehaviour::Truncated { api: a }
        | Misbehaviour::GarbageAfterHeader { api: a }
        | Misbehaviour::UnknownCorrelation { api: a } => a == api,
        Misbehaviour::UnaskedPartitions => api == Api::Produce,
        _ => false,
    };
    let mut acks = Vec::new();
    let mut out = vec![0u8; 8 << 20];
    let encoded = match request {
        Request::ApiVersions(_) => {
            let body = ApiVersionsResponse {
                api_keys: List::from_slice(&VERSIONS),
                ..Default::default()
            };
            wire::encode_response(&mut out, version, corr, &body)
        }
        Request::Metadata(_) => metadata(s, &mut out, version, corr),
        Request::InitProducerId(init) => {
            let (producer_id, producer_epoch) = if init.producer_id >= 0 {
                s.counts.epoch_bumps += 1;
                (init.producer_id, init.producer_epoch.saturating_add(1))
            } else {
                s.next_producer_id += 1;
                (s.next_producer_id, 0)
            };
            let body = InitProducerIdResponse {
                throttle_time_ms: 0,
                error_code: 0,
                producer_id,
                producer_epoch,
            };
            wire::encode_response(&mut out, version, corr, &body)
        }
        Request::Produce(produce) => {
            let mut answers: Vec<(String, Vec<ProducePartitionResponse<'_>>)> = Vec::new();
            for topic in &produce.topics {
                let mut partitions = Vec::new();
                for p in &topic.partitions {
                    let (code, base) = produce_partition(s, p.index, p.records, bent, &mut acks);
                    partitions.push(ProducePartitionResponse {
                        index: if misbehaviour == Misbehaviour::UnaskedPartitions {
                            p.index + 1000
                        } else {
                            p.index
                        },
                        error_code: code,
                        base_offset: base,
                        ..Default::default()
                    });
                }
                let name = if misbehaviour == Misbehaviour::UnaskedPartitions {
                    format!("{}-never-asked", topic.name)
                } else {
                    topic.name.to_string()
                };
                answers.push((name, partitions));
            }
            let topics: Vec<ProduceTopicResponse<'_>> = answers
                .iter()
                .map(|(name, partitions)| ProduceTopicResponse {
                    name,
                    partitions: List::from_slice(partitions),
                })
                .collect();
            let body = ProduceResponse {
                topics: List::from_slice(&topics),
                ..Default::default()
            };
            wire::encode_response(&mut out, version, corr, &body)
        }
        Request::SaslHandshake(_) | Request::SaslAuthenticate(_) => {
            unreachable!("closed above")
        }
    };
    let Ok(n) = encoded else {
        s.counts.undecodable += 1;
        return Reply::Close;
    };
    out.truncate(n);
    if bent {
        acks.clear();
        out = bend(misbehaviour, out, corr);
    } else if misbehaviour == (Misbehaviour::DuplicateAnswer { api }) {
        out.extend_from_within(..);
    }
    Reply::Write { bytes: out, acks }
}

/// Metadata: itself as node 1 (after the extra brokers of `ManyBrokers`), the topic with the
/// partitions the misbehaviour gives it, every one led by node 1.
fn metadata(
    s: &Shared,
    out: &mut [u8],
    version: i16,
    corr: i32,
) -> Result<usize, wire::EncodeError> {
    let (host, port) = &s.advertised;
    let extra = match s.misbehaviour {
        Misbehaviour::ManyBrokers(n) => n.saturating_sub(1),
        _ => 0,
    };
    let names: Vec<String> = (0..extra)
        .map(|i| format!("broker-{i}.hostile.invalid"))
        .collect();
    let mut brokers: Vec<MetadataBroker<'_>> = names
        .iter()
        .enumerate()
        .map(|(i, host)| MetadataBroker {
            node_id: NODE_ID + 1 + i as i32,
            host,
            port: 9092,
            rack: None,
        })
        .collect();
    brokers.push(MetadataBroker {
        node_id: NODE_ID,
        host,
        port: *port,
        rack: None,
    });
    let indexes: Vec<i32> = match s.misbehaviour {
        Misbehaviour::ManyPartitions(n) => (0..n as i32).collect(),
        Misbehaviour::NegativePartitions => vec![-1, 0, -7, 1, 1],
        Misbehaviour::TopicError(_) => Vec::new(),
        _ => (0..PARTITIONS).collect(),
    };
    let partitions: Vec<MetadataPartition<'_>> = indexes
        .iter()
        .map(|&partition_index| MetadataPartition {
            error_code: 0,
            partition_index,
            leader_id: NODE_ID,
            leader_epoch: 0,
            ..Default::default()
        })
        .collect();
    let topic_error = match s.misbehaviour {
        Misbehaviour::TopicError(code) => code,
        _ => 0,
    };
    let topics = [MetadataTopic {
        error_code: topic_error,
        name: Some(TOPIC),
        partitions: List::from_slice(&partitions),
        ..Default::default()
    }];
    let body = MetadataResponse {
        brokers: List::from_slice(&brokers),
        controller_id: NODE_ID,
        topics: List::from_slice(&topics),
        ..Default::default()
    };
    wire::encode_response(out, version, corr, &body)
}

/// One partition of a produce request: records its batches in the ledger and counts the
/// attempt; returns the error code and base offset to answer. Appends unless the
/// misbehaviour refuses every produce; `bent` answers never reach the producer intact, so
/// nothing is acknowledged for them.
fn produce_partition(
    s: &mut Shared,
    partition: i32,
    records: Option<&[u8]>,
    bent: bool,
    acks: &mut Vec<(Vec<u8>, i32, i64)>,
) -> (i16, i64) {
    let refusal = match s.misbehaviour {
        Misbehaviour::ProduceError(code) => Some(code),
        _ if !(0..PARTITIONS).contains(&partition) && !many_partitions(s, partition) => {
            Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0)
        }
        _ => None,
    };
    let mut values: Vec<Vec<u8>> = Vec::new();
    for batch in RecordBatches::new(records.unwrap_or(&[])) {
        let Ok(batch) = batch else {
            s.counts.undecodable += 1;
            return (ErrorCode::CORRUPT_MESSAGE.0, -1);
        };
        for record in &batch.records {
            values.push(record.value.unwrap_or(&[]).to_vec());
        }
    }
    if let Some(first) = values.first() {
        *s.counts
            .attempts
            .entry((first.clone(), values.len() as u32))
            .or_default() += 1;
    }
    for v in &values {
        s.ledger.received(v, refusal.is_none());
    }
    if let Some(code) = refusal {
        return (code, -1);
    }
    let next = s.next_offset.entry(partition).or_default();
    let base = *next;
    *next += values.len() as i64;
    if !bent {
        for (i, v) in values.into_iter().enumerate() {
            acks.push((v, partition, base + i as i64));
        }
    }
    (ErrorCode::NONE.0, base)
}

fn many_partitions(s: &Shared, partition: i32) -> bool {
    matches!(s.misbehaviour, Misbehaviour::ManyPartitions(n) if partition >= 0 && (partition as usize) < n)
}

/// The healthy answer `frame` (length prefix included) bent as `misbehaviour` says.
fn bend(misbehaviour: Misbehaviour, mut frame: Vec<u8>, corr: i32) -> Vec<u8> {
    match misbehaviour {
        Misbehaviour::FrameLength { length, .. } => {
            let mut out = length.to_be_bytes().to_vec();
            out.extend_from_slice(&corr.to_be_bytes());
            out.extend_from_slice(&[0x5a; 12]);
            out
        }
        Misbehaviour::Truncated { .. } => {
            let content = frame.len() - 4;
            // Header (correlation id) and the first half of what follows.
            let keep = 4 + (content - 4) / 2;
            frame.truncate(4 + keep);
            frame[..4].copy_from_slice(&(keep as i32).to_be_bytes());
            frame
        }
        Misbehaviour::GarbageAfterHeader { .. } => {
            for b in &mut frame[8..] {
                *b = rand::random();
            }
            frame
        }
        Misbehaviour::UnknownCorrelation { .. } => {
            frame[4..8].copy_from_slice(&corr.wrapping_add(1_000_000).to_be_bytes());
            frame
        }
        _ => frame,
    }
}
