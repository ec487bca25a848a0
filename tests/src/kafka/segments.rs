//! What a replica stored, batch by batch, read from its segment files with Kafka's
//! `DumpLogSegments`.

use std::fs;
use std::io;
use std::path::PathBuf;

use super::{Kafka, Node};

/// Sizing of the JVM that reads segment files ([`Kafka::stored_batches`]): a short run that
/// touches no network, so a small heap and the client compiler only (it starts faster).
pub(super) const SEGMENT_DUMP_JVM: &[&str] = &["-Xmx256m", "-XX:TieredStopAtLevel=1"];

/// One record batch as a node stored it in a partition's segment files: a batch line of
/// Kafka's `DumpLogSegments`. Sequences, producer ids and epochs are `-1` where the batch has
/// none (a producer that is not idempotent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredBatch {
    /// The node whose replica this was read from.
    pub node: i32,
    /// Partition number.
    pub partition: i32,
    /// Offset of the batch's first record.
    pub base_offset: i64,
    /// Offset of its last record.
    pub last_offset: i64,
    /// Records in the batch (`last_offset - base_offset + 1`, unless compaction removed some).
    pub count: i64,
    /// Producer sequence number of the first record.
    pub base_sequence: i64,
    /// Producer sequence number of the last record.
    pub last_sequence: i64,
    /// Producer id.
    pub producer_id: i64,
    /// Producer epoch.
    pub producer_epoch: i64,
    /// Leader epoch of the partition when the leader appended the batch.
    pub partition_leader_epoch: i64,
    /// Part of a transaction.
    pub is_transactional: bool,
    /// A control batch (a transaction marker), not records a producer sent.
    pub is_control: bool,
    /// The batch's largest record timestamp: the producer's create time, or the broker's
    /// append time when `log_append_time`.
    pub max_timestamp: i64,
    /// `max_timestamp` is the broker's append time (topic `message.timestamp.type` set to
    /// `LogAppendTime`), not what the producer stamped.
    pub log_append_time: bool,
    /// Size in bytes of the batch in the segment.
    pub size: i64,
    /// Whether its CRC matches its contents.
    pub crc_valid: bool,
}

impl StoredBatch {
    /// Parses a batch line of `DumpLogSegments` (`baseOffset: 0 lastOffset: 9 count: 10 ...`).
    pub(super) fn parse(node: i32, partition: i32, line: &str) -> Result<StoredBatch, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let value = |name: &str| -> Result<&str, String> {
            words
                .iter()
                .position(|w| *w == name)
                .and_then(|i| words.get(i + 1).copied())
                .ok_or_else(|| format!("DumpLogSegments: no {name} in {line:?}"))
        };
        let number = |name: &str| -> Result<i64, String> {
            let v = value(name)?;
            v.parse()
                .map_err(|e| format!("DumpLogSegments: {name} {v:?} in {line:?}: {e}"))
        };
        let flag = |name: &str| -> Result<bool, String> {
            let v = value(name)?;
            v.parse()
                .map_err(|e| format!("DumpLogSegments: {name} {v:?} in {line:?}: {e}"))
        };
        // The timestamp is labelled with its type.
        let (max_timestamp, log_append_time) = if words.contains(&"LogAppendTime:") {
            (number("LogAppendTime:")?, true)
        } else {
            (number("CreateTime:")?, false)
        };
        Ok(StoredBatch {
            node,
            partition,
            base_offset: number("baseOffset:")?,
            last_offset: number("lastOffset:")?,
            count: number("count:")?,
            base_sequence: number("baseSequence:")?,
            last_sequence: number("lastSequence:")?,
            producer_id: number("producerId:")?,
            producer_epoch: number("producerEpoch:")?,
            partition_leader_epoch: number("partitionLeaderEpoch:")?,
            is_transactional: flag("isTransactional:")?,
            is_control: flag("isControl:")?,
            max_timestamp,
            log_append_time,
            size: number("size:")?,
            crc_valid: flag("isvalid:")?,
        })
    }
}

impl Kafka {
    /// The record batches of partition `partition` of `topic`, in log order, read from the
    /// segment files of one replica with Kafka's `DumpLogSegments` (run like the nodes, in the
    /// cluster's namespace if any, with a small JVM). The replica is node 1's when node 1 runs
    /// and holds one, else that of another running node holding one (in-sync first, then the
    /// lowest id); [`StoredBatch::node`] says which. These are that replica's segments: a
    /// follower may lag the leader, and any replica may hold batches not yet committed.
    /// Panics, with `DumpLogSegments`' standard error, if they cannot be read; see
    /// [`Kafka::try_stored_batches`] for an error instead.
    pub fn stored_batches(&self, topic: &str, partition: i32) -> Vec<StoredBatch> {
        self.try_stored_batches(topic, partition)
            .unwrap_or_else(|e| panic!("kafka: stored batches of {topic}-{partition}: {e}"))
    }

    /// [`Kafka::stored_batches`], returning what went wrong (no running node holds the
    /// partition, `DumpLogSegments` failed, with its standard error, or printed a batch line
    /// it cannot parse) rather than panicking.
    pub fn try_stored_batches(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Vec<StoredBatch>, String> {
        let name = format!("{topic}-{partition}");
        let state = self
            .partitions(topic)
            .into_iter()
            .find(|p| p.partition == partition);
        // A node holds a replica if Metadata says so (when it answers) and has its directory.
        let holds = |n: &Node| {
            n.dir.join("data").join(&name).is_dir()
                && state.as_ref().is_none_or(|s| s.replicas.contains(&n.id))
        };
        let in_sync = |n: &Node| state.as_ref().is_some_and(|s| s.isr.contains(&n.id));
        let node = self
            .nodes
            .iter()
            .filter(|n| self.is_running(n.id) && holds(n))
            .min_by_key(|n| (n.id != 1, !in_sync(n), n.id))
            .ok_or_else(|| format!("no running node holds a replica (Metadata: {state:?})"))?;
        let dir = node.dir.join("data").join(&name);
        let mut segments: Vec<PathBuf> = fs::read_dir(&dir)
            .map_err(|e| format!("read {}: {e}", dir.display()))?
            .map(|e| e.map(|e| e.path()))
            .collect::<io::Result<_>>()
            .map_err(|e| format!("read {}: {e}", dir.display()))?;
        // Named by base offset, zero-padded: in name order, in log order.
        segments.retain(|p| p.extension().is_some_and(|x| x == "log"));
        segments.sort();
        if segments.is_empty() {
            return Err(format!("no segment files in {}", dir.display()));
        }
        let files: Vec<String> = segments.iter().map(|p| p.display().to_string()).collect();
        let out = self
            .java_sized(&self.dir, SEGMENT_DUMP_JVM)
            .arg("org.apache.kafka.tools.DumpLogSegments")
            .arg("--files")
            .arg(files.join(","))
            .output()
            .map_err(|e| format!("cannot run DumpLogSegments: {e}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(format!(
                "DumpLogSegments {files:?} failed ({}):\n{stdout}\n{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        stdout
            .lines()
            .filter(|l| l.starts_with("baseOffset: "))
            .map(|line| StoredBatch::parse(node.id, partition, line))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::StoredBatch;

    #[test]
    pub(super) fn parses_a_batch_line_of_dump_log_segments() {
        // As Kafka 4.4.0's DumpLogSegments prints a batch of an idempotent producer.
        let line = "baseOffset: 13 lastOffset: 15 count: 3 baseSequence: 13 lastSequence: 15 \
                    producerId: 1000 producerEpoch: 2 partitionLeaderEpoch: 4 \
                    isTransactional: false isControl: false deleteHorizonMs: OptionalLong.empty \
                    position: 1172 CreateTime: 1796221063986 size: 176 magic: 2 \
                    compresscodec: none crc: 3513265677 isvalid: true";
        let b = StoredBatch::parse(1, 2, line).unwrap();
        assert_eq!(
            b,
            StoredBatch {
                node: 1,
                partition: 2,
                base_offset: 13,
                last_offset: 15,
                count: 3,
                base_sequence: 13,
                last_sequence: 15,
                producer_id: 1000,
                producer_epoch: 2,
                partition_leader_epoch: 4,
                is_transactional: false,
                is_control: false,
                max_timestamp: 1796221063986,
                log_append_time: false,
                size: 176,
                crc_valid: true,
            }
        );
        let appended = line.replace("CreateTime:", "LogAppendTime:");
        let b = StoredBatch::parse(1, 2, &appended).unwrap();
        assert!(b.log_append_time);
        assert_eq!(b.max_timestamp, 1796221063986);
        let err = StoredBatch::parse(1, 2, &line.replace("producerId: 1000 ", "")).unwrap_err();
        assert!(err.contains("no producerId:"), "{err}");
    }
}
