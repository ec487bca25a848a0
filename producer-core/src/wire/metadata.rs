//! Metadata (key 3), versions 1–12: brokers, topics, partitions and their
//! leaders. The producer needs it to know where each partition's leader is
//! and which leader epoch it is at, and to learn of topic/partition errors.

use super::api_key::ApiKey;
use super::body::{Body, RequestBody, ResponseBody, check_encode_version};
use super::error::{DecodeError, EncodeError};
use super::list::{Item, List};
use super::reader::Reader;
use super::tagged::{skip_tagged_fields, write_empty_tagged_fields};
use super::writer::Writer;

/// A topic UUID (all zeros when unknown or absent in the version).
pub type Uuid = [u8; 16];

/// "Not provided" value of the authorized-operations fields.
pub const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

const FIRST_FLEXIBLE: i16 = 9;

/// A topic to describe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetadataRequestTopic<'a> {
    /// Topic id (v10+); zero to look up by name.
    pub topic_id: Uuid,
    /// Topic name; may be `None` only from v10 (lookup by id).
    pub name: Option<&'a str>,
}

impl<'a> Item<'a> for MetadataRequestTopic<'a> {
    fn encode(&self, w: &mut Writer<'_>, version: i16) -> Result<(), EncodeError> {
        let flexible = version >= FIRST_FLEXIBLE;
        if version >= 10 {
            w.put_uuid(&self.topic_id)?;
            w.put_nullable_string(self.name, flexible)?;
        } else {
            w.put_string(self.name.ok_or(EncodeError::NullNotAllowed)?, flexible)?;
        }
        if flexible {
            write_empty_tagged_fields(w)?;
        }
        Ok(())
    }
    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        let flexible = version >= FIRST_FLEXIBLE;
        let mut t = MetadataRequestTopic::default();
        if version >= 10 {
            t.topic_id = r.get_uuid()?;
            t.name = r.get_nullable_string(flexible)?;
        } else {
            t.name = Some(r.get_string(flexible)?);
        }
        if flexible {
            skip_tagged_fields(r)?;
        }
        Ok(t)
    }
}

/// Metadata request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetadataRequest<'a> {
    /// Topics to describe; `None` means all topics.
    pub topics: Option<List<'a, MetadataRequestTopic<'a>>>,
    /// Whether the broker may create missing topics (v4+; earlier versions
    /// always allow it).
    pub allow_auto_topic_creation: bool,
    /// Ask for cluster authorized operations (v8–v10).
    pub include_cluster_authorized_operations: bool,
    /// Ask for topic authorized operations (v8+).
    pub include_topic_authorized_operations: bool,
}

impl Default for MetadataRequest<'_> {
    fn default() -> Self {
        MetadataRequest {
            topics: Some(List::EMPTY),
            allow_auto_topic_creation: true,
            include_cluster_authorized_operations: false,
            include_topic_authorized_operations: false,
        }
    }
}

impl<'a> Body<'a> for MetadataRequest<'a> {
    const API_KEY: ApiKey = ApiKey::Metadata;

    fn encode(&self, w: &mut Writer<'_>, version: i16) -> Result<(), EncodeError> {
        check_encode_version(Self::API_KEY, version)?;
        let flexible = version >= FIRST_FLEXIBLE;
        List::encode_nullable(self.topics.as_ref(), w, version, flexible)?;
        if version >= 4 {
            w.put_bool(self.allow_auto_topic_creation)?;
        }
        if (8..=10).contains(&version) {
            w.put_bool(self.include_cluster_authorized_operations)?;
        }
        if version >= 8 {
            w.put_bool(self.include_topic_authorized_operations)?;
        }
        if flexible {
            write_empty_tagged_fields(w)?;
        }
        Ok(())
    }

    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        Self::API_KEY.check_version(version)?;
        let flexible = version >= FIRST_FLEXIBLE;
        let mut req = MetadataRequest {
            topics: List::decode_nullable(r, version, flexible)?,
            ..Default::default()
        };
        if version >= 4 {
            req.allow_auto_topic_creation = r.get_bool()?;
        }
        if (8..=10).contains(&version) {
            req.include_cluster_authorized_operations = r.get_bool()?;
        }
        if version >= 8 {
            req.include_topic_authorized_operations = r.get_bool()?;
        }
        if flexible {
            skip_tagged_fields(r)?;
        }
        Ok(req)
    }
}
impl<'a> RequestBody<'a> for MetadataRequest<'a> {}

/// A broker of the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MetadataBroker<'a> {
    /// Broker id, referenced by partition leaders.
    pub node_id: i32,
    /// Host name to connect to.
    pub host: &'a str,
    /// Port to connect to.
    pub port: i32,
    /// Rack, if configured.
    pub rack: Option<&'a str>,
}

impl<'a> Item<'a> for MetadataBroker<'a> {
    fn encode(&self, w: &mut Writer<'_>, version: i16) -> Result<(), EncodeError> {
        let flexible = version >= FIRST_FLEXIBLE;
        w.put_i32(self.node_id)?;
        w.put_string(self.host, flexible)?;
        w.put_i32(self.port)?;
        w.put_nullable_string(self.rack, flexible)?;
        if flexible {
            write_empty_tagged_fields(w)?;
        }
        Ok(())
    }
    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        let flexible = version >= FIRST_FLEXIBLE;
        let b = MetadataBroker {
            node_id: r.get_i32()?,
            host: r.get_string(flexible)?,
            port: r.get_i32()?,
            rack: r.get_nullable_string(flexible)?,
        };
        if flexible {
            skip_tagged_fields(r)?;
        }
        Ok(b)
    }
}

/// A partition of a topic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetadataPartition<'a> {
    /// Partition error (e.g. leader not available), 0 if none.
    pub error_code: i16,
    /// Partition index.
    pub partition_index: i32,
    /// Leader broker id, -1 if none.
    pub leader_id: i32,
    /// Leader epoch (v7+), -1 if unknown; lets the producer ignore stale
    /// metadata.
    pub leader_epoch: i32,
    /// Replica broker ids.
    pub replica_nodes: List<'a, i32>,
    /// In-sync replica broker ids.
    pub isr_nodes: List<'a, i32>,
    /// Offline replica broker ids (v5+).
    pub offline_replicas: List<'a, i32>,
}

impl Default for MetadataPartition<'_> {
    fn default() -> Self {
        MetadataPartition {
            error_code: 0,
            partition_index: 0,
            leader_id: -1,
            leader_epoch: -1,
            replica_nodes: List::EMPTY,
            isr_nodes: List::EMPTY,
            offline_replicas: List::EMPTY,
        }
    }
}

impl<'a> Item<'a> for MetadataPartition<'a> {
    fn encode(&self, w: &mut Writer<'_>, version: i16) -> Result<(), EncodeError> {
        let flexible = version >= FIRST_FLEXIBLE;
        w.put_i16(self.error_code)?;
        w.put_i32(self.partition_index)?;
        w.put_i32(self.leader_id)?;
        if version >= 7 {
            w.put_i32(self.leader_epoch)?;
        }
        self.replica_nodes.encode(w, version, flexible)?;
        self.isr_nodes.encode(w, version, flexible)?;
        if version >= 5 {
            self.offline_replicas.encode(w, version, flexible)?;
        }
        if flexible {
            write_empty_tagged_fields(w)?;
        }
        Ok(())
    }
    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        let flexible = version >= FIRST_FLEXIBLE;
        let mut p = MetadataPartition {
            error_code: r.get_i16()?,
            partition_index: r.get_i32()?,
            leader_id: r.get_i32()?,
            ..Default::default()
        };
        if version >= 7 {
            p.leader_epoch = r.get_i32()?;
        }
        p.replica_nodes = List::decode(r, version, flexible)?;
        p.isr_nodes = List::decode(r, version, flexible)?;
        if version >= 5 {
            p.offline_replicas = List::decode(r, version, flexible)?;
        }
        if flexible {
            skip_tagged_fields(r)?;
        }
        Ok(p)
    }
}

/// A topic and its partitions.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetadataTopic<'a> {
    /// Topic error (e.g. unknown topic), 0 if none.
    pub error_code: i16,
    /// Topic name; may be `None` only from v12.
    pub name: Option<&'a str>,
    /// Topic id (v10+).
    pub topic_id: Uuid,
    /// Whether the topic is internal (v1+).
    pub is_internal: bool,
    /// The topic's partitions.
    pub partitions: List<'a, MetadataPartition<'a>>,
    /// Authorized operations bit field (v8+).
    pub topic_authorized_operations: i32,
}

impl Default for MetadataTopic<'_> {
    fn default() -> Self {
        MetadataTopic {
            error_code: 0,
            name: Some(""),
            topic_id: [0; 16],
            is_internal: false,
            partitions: List::EMPTY,
            topic_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
        }
    }
}

impl<'a> Item<'a> for MetadataTopic<'a> {
    fn encode(&self, w: &mut Writer<'_>, version: i16) -> Result<(), EncodeError> {
        let flexible = version >= FIRST_FLEXIBLE;
        w.put_i16(self.error_code)?;
        if version >= 12 {
            w.put_nullable_string(self.name, flexible)?;
        } else {
            w.put_string(self.name.ok_or(EncodeError::NullNotAllowed)?, flexible)?;
        }
        if version >= 10 {
            w.put_uuid(&self.topic_id)?;
        }
        w.put_bool(self.is_internal)?;
        self.partitions.encode(w, version, flexible)?;
        if version >= 8 {
            w.put_i32(self.topic_authorized_operations)?;
        }
        if flexible {
            write_empty_tagged_fields(w)?;
        }
        Ok(())
    }
    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        let flexible = version >= FIRST_FLEXIBLE;
        let mut t = MetadataTopic {
            error_code: r.get_i16()?,
            ..Default::default()
        };
        t.name = if version >= 12 {
            r.get_nullable_string(flexible)?
        } else {
            Some(r.get_string(flexible)?)
        };
        if version >= 10 {
            t.topic_id = r.get_uuid()?;
        }
        t.is_internal = r.get_bool()?;
        t.partitions = List::decode(r, version, flexible)?;
        if version >= 8 {
            t.topic_authorized_operations = r.get_i32()?;
        }
        if flexible {
            skip_tagged_fields(r)?;
        }
        Ok(t)
    }
}

/// Metadata response.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetadataResponse<'a> {
    /// Throttle time in ms (v3+).
    pub throttle_time_ms: i32,
    /// Brokers of the cluster.
    pub brokers: List<'a, MetadataBroker<'a>>,
    /// Cluster id (v2+).
    pub cluster_id: Option<&'a str>,
    /// Controller broker id, -1 if unknown.
    pub controller_id: i32,
    /// Requested topics.
    pub topics: List<'a, MetadataTopic<'a>>,
    /// Cluster authorized operations (v8–v10).
    pub cluster_authorized_operations: i32,
}

impl Default for MetadataResponse<'_> {
    fn default() -> Self {
        MetadataResponse {
            throttle_time_ms: 0,
            brokers: List::EMPTY,
            cluster_id: None,
            controller_id: -1,
            topics: List::EMPTY,
            cluster_authorized_operations: AUTHORIZED_OPERATIONS_OMITTED,
        }
    }
}

impl<'a> MetadataResponse<'a> {
    /// The broker with id `node_id`, e.g. to resolve a partition leader.
    pub fn broker(&self, node_id: i32) -> Option<MetadataBroker<'a>> {
        self.brokers.iter().find(|b| b.node_id == node_id)
    }

    /// The topic named `name`.
    pub fn topic(&self, name: &str) -> Option<MetadataTopic<'a>> {
        self.topics.iter().find(|t| t.name == Some(name))
    }
}

impl<'a> Body<'a> for MetadataResponse<'a> {
    const API_KEY: ApiKey = ApiKey::Metadata;

    fn encode(&self, w: &mut Writer<'_>, version: i16) -> Result<(), EncodeError> {
        check_encode_version(Self::API_KEY, version)?;
        let flexible = version >= FIRST_FLEXIBLE;
        if version >= 3 {
            w.put_i32(self.throttle_time_ms)?;
        }
        self.brokers.encode(w, version, flexible)?;
        if version >= 2 {
            w.put_nullable_string(self.cluster_id, flexible)?;
        }
        w.put_i32(self.controller_id)?;
        self.topics.encode(w, version, flexible)?;
        if (8..=10).contains(&version) {
            w.put_i32(self.cluster_authorized_operations)?;
        }
        if flexible {
            write_empty_tagged_fields(w)?;
        }
        Ok(())
    }

    fn decode(r: &mut Reader<'a>, version: i16) -> Result<Self, DecodeError> {
        Self::API_KEY.check_version(version)?;
        let flexible = version >= FIRST_FLEXIBLE;
        let mut resp = MetadataResponse::default();
        if version >= 3 {
            resp.throttle_time_ms = r.get_i32()?;
        }
        resp.brokers = List::decode(r, version, flexible)?;
        if version >= 2 {
            resp.cluster_id = r.get_nullable_string(flexible)?;
        }
        resp.controller_id = r.get_i32()?;
        resp.topics = List::decode(r, version, flexible)?;
        if (8..=10).contains(&version) {
            resp.cluster_authorized_operations = r.get_i32()?;
        }
        if flexible {
            skip_tagged_fields(r)?;
        }
        Ok(resp)
    }
}
impl<'a> ResponseBody<'a> for MetadataResponse<'a> {}
