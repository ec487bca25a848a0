//! Working memory of single calls (a metadata answer, a request being built, a routing
//! pass), sized by the capacities once at construction: no call needs stack in proportion to
//! a capacity, so a host's tables may be as large as its clusters, and a microcontroller's
//! stack use does not grow with them.

use super::connection::Target;
use super::metadata::Broker;
use crate::capacity::{
    Array, BrokerList, Capacities, PartitionList, PerBatch, PerPartition, PerTopic, Table,
};

#[derive(Debug)]
pub(super) struct Scratch<C: Capacities> {
    /// Per partition-table entry: a batch without an outcome is there.
    pub work: PerPartition<C, bool>,
    /// Per partition id of the topic a metadata answer is being applied for: its leader, once
    /// seen.
    pub leader_of: PerPartition<C, Option<Option<i32>>>,
    /// The leaders of the table's partitions: (node, one has records, the answer lists it).
    pub leaders: PartitionList<C, (i32, bool, bool)>,
    /// The broker table being rebuilt from a metadata answer.
    pub brokers: BrokerList<C, Broker>,
    /// The targets the connection slots should serve.
    pub wanted: BrokerList<C, Target>,
    /// Per topic: the Produce request being built names it.
    pub topic_used: PerTopic<C, bool>,
    /// Per batch of the Produce answer being read: the broker answered for it.
    pub answered: PerBatch<C, bool>,
}

impl<C: Capacities> Scratch<C> {
    pub fn new(capacities: &C) -> Self {
        Scratch {
            work: Array::new(capacities.partitions(), false),
            leader_of: Array::new(capacities.partitions(), None),
            leaders: Table::new(capacities.partitions(), (0, false, false)),
            brokers: Table::new(capacities.brokers(), Broker::default()),
            wanted: Table::new(capacities.brokers(), Target::Bootstrap(0)),
            topic_used: Array::new(capacities.topics(), false),
            answered: Array::new(capacities.batches(), false),
        }
    }
}
