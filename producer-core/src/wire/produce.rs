//! Produce (key 0), versions 3–11: sends record batches to partition
//! leaders. The request carries already-encoded record batches (see
//! [`crate::wire::record_batch`]) as opaque bytes; the response reports per
//! partition the error, base offset, log append time, log start offset and,
//! from v8, which records of a batch were rejected. From v10 (KIP-951) a
//! `NOT_LEADER` error can carry the new leader and its endpoint, so the
//! producer can redirect without a metadata round trip.

use super::api_key::ApiKey;
use super::body::{Body, RequestBody, ResponseBody, check_encode_version};
use super::error::{DecodeError, EncodeError};
use super::list::{Item, List};
use super::reader::Reader;
use super::tagged::{
    read_tagged_fields, skip_tagged_fields, write_empty_tagged_fields, write_tagged_field,
};
use super::writer::Writer;

const FIRST_FLEXIBLE: i16 = 9;

/// Records for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProducePartition<'a> {
    /// Partition index.
    pub index: i32,
    /// One or more encoded record batches (nullable on the wire).
    pub records: Option<&'a [u8]>,
}

impl<'a> Item<'a> for ProducePartition<'a> {
    fn encode(&self, w: &mut Writer<'_>, version: i16) -> Result<(), EncodeError> {
        let flexible = version >= FIRST_FLEXIBLE;
        w.put_i32(self.index)?;
        w.put_nullable_bytes(self.records, flexible)?;
        if flexible {
            write_empty_tagged_fields(w)?;
        }
        Ok(())
    }
    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        let flexible = version >= FIRST_FLEXIBLE;
        let p = ProducePartition {
            index: r.get_i32()?,
            records: r.get_nullable_bytes(flexible)?,
        };
        if flexible {
            skip_tagged_fields(r)?;
        }
        Ok(p)
    }
}

/// Records for one topic.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProduceTopic<'a> {
    /// Topic name.
    pub name: &'a str,
    /// Partitions of this topic with records.
    pub partitions: List<'a, ProducePartition<'a>>,
}

impl<'a> Item<'a> for ProduceTopic<'a> {
    fn encode(&self, w: &mut Writer<'_>, version: i16) -> Result<(), EncodeError> {
        let flexible = version >= FIRST_FLEXIBLE;
        w.put_string(self.name, flexible)?;
        self.partitions.encode(w, version, flexible)?;
        if flexible {
            write_empty_tagged_fields(w)?;
        }
        Ok(())
    }
    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        let flexible = version >= FIRST_FLEXIBLE;
        let t = ProduceTopic {
            name: r.get_string(flexible)?,
            partitions: List::decode(r, version, flexible)?,
        };
        if flexible {
            skip_tagged_fields(r)?;
        }
        Ok(t)
    }
}

/// Produce request.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProduceRequest<'a> {
    /// Transactional id; `None` for an idempotent-only producer.
    pub transactional_id: Option<&'a str>,
    /// Required acknowledgements: 0, 1 or -1 (all in-sync replicas; what
    /// idempotence requires).
    pub acks: i16,
    /// How long the broker may wait for acknowledgements, in ms.
    pub timeout_ms: i32,
    /// Topics with records.
    pub topics: List<'a, ProduceTopic<'a>>,
}

impl<'a> Body<'a> for ProduceRequest<'a> {
    const API_KEY: ApiKey = ApiKey::Produce;

    fn encode(&self, w: &mut Writer<'_>, version: i16) -> Result<(), EncodeError> {
        check_encode_version(Self::API_KEY, version)?;
        let flexible = version >= FIRST_FLEXIBLE;
        w.put_nullable_string(self.transactional_id, flexible)?;
        w.put_i16(self.acks)?;
        w.put_i32(self.timeout_ms)?;
        self.topics.encode(w, version, flexible)?;
        if flexible {
            write_empty_tagged_fields(w)?;
        }
        Ok(())
    }

    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        Self::API_KEY.check_version(version)?;
        let flexible = version >= FIRST_FLEXIBLE;
        let req = ProduceRequest {
            transactional_id: r.get_nullable_string(flexible)?,
            acks: r.get_i16()?,
            timeout_ms: r.get_i32()?,
            topics: List::decode(r, version, flexible)?,
        };
        if flexible {
            skip_tagged_fields(r)?;
        }
        Ok(req)
    }
}
impl<'a> RequestBody<'a> for ProduceRequest<'a> {}

/// A record the broker rejected, and why (v8+).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RecordError<'a> {
    /// Index of the record within its batch.
    pub batch_index: i32,
    /// Error message for that record.
    pub batch_index_error_message: Option<&'a str>,
}

impl<'a> Item<'a> for RecordError<'a> {
    fn encode(&self, w: &mut Writer<'_>, version: i16) -> Result<(), EncodeError> {
        let flexible = version >= FIRST_FLEXIBLE;
        w.put_i32(self.batch_index)?;
        w.put_nullable_string(self.batch_index_error_message, flexible)?;
        if flexible {
            write_empty_tagged_fields(w)?;
        }
        Ok(())
    }
    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        let flexible = version >= FIRST_FLEXIBLE;
        let e = RecordError {
            batch_index: r.get_i32()?,
            batch_index_error_message: r.get_nullable_string(flexible)?,
        };
        if flexible {
            skip_tagged_fields(r)?;
        }
        Ok(e)
    }
}

/// New leader of a partition, sent with leadership errors (v10+).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderIdAndEpoch {
    /// Leader broker id, -1 if unknown.
    pub leader_id: i32,
    /// Leader epoch, -1 if unknown.
    pub leader_epoch: i32,
}

impl LeaderIdAndEpoch {
    /// Both unknown; the value when the broker sends none.
    pub const UNKNOWN: Self = LeaderIdAndEpoch {
        leader_id: -1,
        leader_epoch: -1,
    };
}

impl Default for LeaderIdAndEpoch {
    fn default() -> Self {
        Self::UNKNOWN
    }
}

/// Outcome for one partition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProducePartitionResponse<'a> {
    /// Partition index.
    pub index: i32,
    /// 0, or the error for this partition's batch.
    pub error_code: i16,
    /// Offset assigned to the first record of the batch.
    pub base_offset: i64,
    /// Broker append time if the topic uses LogAppendTime, else -1.
    pub log_append_time_ms: i64,
    /// Log start offset (v5+), -1 if absent.
    pub log_start_offset: i64,
    /// Records that made the batch fail (v8+).
    pub record_errors: List<'a, RecordError<'a>>,
    /// Summary error message (v8+).
    pub error_message: Option<&'a str>,
    /// New leader hint (v10+, tagged 0).
    pub current_leader: LeaderIdAndEpoch,
}

impl Default for ProducePartitionResponse<'_> {
    fn default() -> Self {
        ProducePartitionResponse {
            index: 0,
            error_code: 0,
            base_offset: 0,
            log_append_time_ms: -1,
            log_start_offset: -1,
            record_errors: List::EMPTY,
            error_message: None,
            current_leader: LeaderIdAndEpoch::UNKNOWN,
        }
    }
}

impl<'a> Item<'a> for ProducePartitionResponse<'a> {
    fn encode(&self, w: &mut Writer<'_>, version: i16) -> Result<(), EncodeError> {
        let flexible = version >= FIRST_FLEXIBLE;
        w.put_i32(self.index)?;
        w.put_i16(self.error_code)?;
        w.put_i64(self.base_offset)?;
        w.put_i64(self.log_append_time_ms)?;
        if version >= 5 {
            w.put_i64(self.log_start_offset)?;
        }
        if version >= 8 {
            self.record_errors.encode(w, version, flexible)?;
            w.put_nullable_string(self.error_message, flexible)?;
        }
        if flexible {
            let leader = version >= 10 && self.current_leader != LeaderIdAndEpoch::UNKNOWN;
            w.put_unsigned_varint(u32::from(leader))?;
            if leader {
                write_tagged_field(w, 0, |w| {
                    w.put_i32(self.current_leader.leader_id)?;
                    w.put_i32(self.current_leader.leader_epoch)?;
                    write_empty_tagged_fields(w)
                })?;
            }
        }
        Ok(())
    }
    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        let flexible = version >= FIRST_FLEXIBLE;
        let mut p = ProducePartitionResponse {
            index: r.get_i32()?,
            error_code: r.get_i16()?,
            base_offset: r.get_i64()?,
            log_append_time_ms: r.get_i64()?,
            ..Default::default()
        };
        if version >= 5 {
            p.log_start_offset = r.get_i64()?;
        }
        if version >= 8 {
            p.record_errors = List::decode(r, version, flexible)?;
            p.error_message = r.get_nullable_string(flexible)?;
        }
        if flexible {
            read_tagged_fields(r, |tag, f| {
                if tag != 0 || version < 10 {
                    return Ok(false);
                }
                p.current_leader = LeaderIdAndEpoch {
                    leader_id: f.get_i32()?,
                    leader_epoch: f.get_i32()?,
                };
                skip_tagged_fields(f)?;
                Ok(true)
            })?;
        }
        Ok(p)
    }
}

/// Outcome for one topic.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProduceTopicResponse<'a> {
    /// Topic name.
    pub name: &'a str,
    /// Per-partition outcomes.
    pub partitions: List<'a, ProducePartitionResponse<'a>>,
}

impl<'a> Item<'a> for ProduceTopicResponse<'a> {
    fn encode(&self, w: &mut Writer<'_>, version: i16) -> Result<(), EncodeError> {
        let flexible = version >= FIRST_FLEXIBLE;
        w.put_string(self.name, flexible)?;
        self.partitions.encode(w, version, flexible)?;
        if flexible {
            write_empty_tagged_fields(w)?;
        }
        Ok(())
    }
    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        let flexible = version >= FIRST_FLEXIBLE;
        let t = ProduceTopicResponse {
            name: r.get_string(flexible)?,
            partitions: List::decode(r, version, flexible)?,
        };
        if flexible {
            skip_tagged_fields(r)?;
        }
        Ok(t)
    }
}

/// Endpoint of a broker named in a leader hint (v10+).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeEndpoint<'a> {
    /// Broker id.
    pub node_id: i32,
    /// Host name.
    pub host: &'a str,
    /// Port.
    pub port: i32,
    /// Rack, if configured.
    pub rack: Option<&'a str>,
}

impl<'a> Item<'a> for NodeEndpoint<'a> {
    fn encode(&self, w: &mut Writer<'_>, _version: i16) -> Result<(), EncodeError> {
        w.put_i32(self.node_id)?;
        w.put_string(self.host, true)?;
        w.put_i32(self.port)?;
        w.put_nullable_string(self.rack, true)?;
        write_empty_tagged_fields(w)
    }
    fn decode(r: &mut Reader<'a>, _version: i16) -> Result<Self, DecodeError> {
        let e = NodeEndpoint {
            node_id: r.get_i32()?,
            host: r.get_string(true)?,
            port: r.get_i32()?,
            rack: r.get_nullable_string(true)?,
        };
        skip_tagged_fields(r)?;
        Ok(e)
    }
}

/// Produce response.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProduceResponse<'a> {
    /// Per-topic outcomes.
    pub topics: List<'a, ProduceTopicResponse<'a>>,
    /// Throttle time in ms.
    pub throttle_time_ms: i32,
    /// Endpoints of brokers named in leader hints (v10+, tagged 0).
    pub node_endpoints: List<'a, NodeEndpoint<'a>>,
}

impl<'a> Body<'a> for ProduceResponse<'a> {
    const API_KEY: ApiKey = ApiKey::Produce;

    fn encode(&self, w: &mut Writer<'_>, version: i16) -> Result<(), EncodeError> {
        check_encode_version(Self::API_KEY, version)?;
        let flexible = version >= FIRST_FLEXIBLE;
        self.topics.encode(w, version, flexible)?;
        w.put_i32(self.throttle_time_ms)?;
        if flexible {
            let endpoints = version >= 10 && !self.node_endpoints.is_empty();
            w.put_unsigned_varint(u32::from(endpoints))?;
            if endpoints {
                write_tagged_field(w, 0, |w| self.node_endpoints.encode(w, version, true))?;
            }
        }
        Ok(())
    }

    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        Self::API_KEY.check_version(version)?;
        let flexible = version >= FIRST_FLEXIBLE;
        let mut resp = ProduceResponse {
            topics: List::decode(r, version, flexible)?,
            throttle_time_ms: r.get_i32()?,
            node_endpoints: List::EMPTY,
        };
        if flexible {
            read_tagged_fields(r, |tag, f| {
                if tag != 0 || version < 10 {
                    return Ok(false);
                }
                resp.node_endpoints = List::decode(f, version, true)?;
                Ok(true)
            })?;
        }
        Ok(resp)
    }
}
impl<'a> ResponseBody<'a> for ProduceResponse<'a> {}
