//! What the client knows of the cluster: brokers, and each partition's leader.

use heapless::String;

use crate::capacity::{BrokerList, Capacities, PartitionList, Table, TopicList};

/// Longest host name kept (DNS limit).
pub const HOST_MAX: usize = 255;
/// Longest topic name Kafka allows.
pub const TOPIC_MAX: usize = 249;

/// A host and port to connect to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or address, as given or as the broker advertises it.
    pub host: String<HOST_MAX>,
    /// TCP port.
    pub port: u16,
}

impl Endpoint {
    /// An endpoint from `host:port` text; `None` when it does not parse or is too long.
    pub fn parse(text: &str) -> Option<Endpoint> {
        let (host, port) = text.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return None;
        }
        Some(Endpoint {
            host: String::try_from(host).ok()?,
            port: port.parse().ok()?,
        })
    }
}

/// A broker from the latest metadata.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Broker {
    /// The broker's node id.
    pub node_id: i32,
    /// Where it says it listens.
    pub endpoint: Endpoint,
}

/// One partition the producer writes to; its position in the table is its ledger index.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Partition {
    /// Index of the topic in the client's topic list.
    pub topic: u8,
    /// The partition number within the topic.
    pub partition: i32,
    /// Node id of the leader, when one is known.
    pub leader: Option<i32>,
}

/// A topic the client produces to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Topic {
    /// The topic's name.
    pub name: String<TOPIC_MAX>,
    /// Partitions, as the last metadata answer gave them (0 until known).
    pub partitions: u32,
    /// The topic has more partitions than the partition table holds: the table keeps its
    /// lowest ids, records for the others are refused (`SendError::NoSuchPartition`), and
    /// records without a key go to the ones kept. Raise the partitions capacity to use them
    /// all.
    pub full: bool,
}

/// Brokers and partitions, in tables of the client's [`Capacities`].
#[derive(Debug)]
pub struct Metadata<C: Capacities> {
    /// Topics, in the order they were configured.
    pub topics: TopicList<C, Topic>,
    /// Partitions of all topics; the index is the ledger's `PartitionIndex`. Entries are only
    /// ever added, so an index stays valid when metadata changes.
    pub partitions: PartitionList<C, Partition>,
    /// Brokers from the latest answer.
    pub brokers: BrokerList<C, Broker>,
    /// A metadata answer has arrived.
    pub known: bool,
}

impl<C: Capacities> Metadata<C> {
    pub(crate) fn new(capacities: &C) -> Self {
        Metadata {
            topics: Table::new(capacities.topics(), Topic::default()),
            partitions: Table::new(capacities.partitions(), Partition::default()),
            brokers: Table::new(capacities.brokers(), Broker::default()),
            known: false,
        }
    }

    /// The ledger index of a topic's partition, when the table holds it.
    pub fn index_of(&self, topic: u8, partition: i32) -> Option<usize> {
        self.partitions
            .iter()
            .position(|p| p.topic == topic && p.partition == partition)
    }

    /// The index of the topic named `name`.
    pub fn topic_index(&self, name: &str) -> Option<u8> {
        self.topics
            .iter()
            .position(|t| t.name == name)
            .and_then(|i| u8::try_from(i).ok())
    }

    /// Where node `node_id` listens.
    pub fn broker(&self, node_id: i32) -> Option<&Broker> {
        self.brokers.iter().find(|b| b.node_id == node_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        let e = Endpoint::parse("127.0.0.1:9092").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("127.0.0.1", 9092));
        let e = Endpoint::parse("[::1]:19092").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 19092));
        assert_eq!(Endpoint::parse("broker"), None);
        assert_eq!(Endpoint::parse(":9092"), None);
        assert_eq!(Endpoint::parse("h:99999"), None);
    }
}
