//! The Metadata answer the tests' single-topic fake brokers give (`client_backoff.rs`,
//! `client_sasl.rs`): one place for the answer's many fixed fields.

use producer_core::wire::{
    self, EncodeError, List, MetadataBroker, MetadataPartition, MetadataResponse, MetadataTopic,
};

/// Encodes into `out` a Metadata answer naming `brokers` (node ids, all at `broker:9092`) and
/// `topic` with `partitions` (partition index, leader id), or, with `partitions` `None`, the
/// topic unknown (error 3).
pub fn metadata(
    out: &mut [u8],
    version: i16,
    correlation: i32,
    topic: &str,
    brokers: &[i32],
    partitions: Option<&[(i32, i32)]>,
) -> Result<usize, EncodeError> {
    let brokers: Vec<MetadataBroker<'_>> = brokers
        .iter()
        .map(|&node_id| MetadataBroker {
            node_id,
            host: "broker",
            port: 9092,
            rack: None,
        })
        .collect();
    let error_code = if partitions.is_some() { 0 } else { 3 };
    let partitions: Vec<MetadataPartition<'_>> = partitions
        .unwrap_or(&[])
        .iter()
        .map(|&(partition_index, leader_id)| MetadataPartition {
            error_code: 0,
            partition_index,
            leader_id,
            leader_epoch: 0,
            replica_nodes: List::EMPTY,
            isr_nodes: List::EMPTY,
            offline_replicas: List::EMPTY,
        })
        .collect();
    let topics = [MetadataTopic {
        error_code,
        name: Some(topic),
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
    wire::encode_response(out, version, correlation, &body)
}
