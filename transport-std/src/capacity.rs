//! The producer's capacities, from its configuration: tables on the heap, sized once when
//! the producer is built, so a host's producer holds as many partitions as its clusters have
//! (a topic of 1,000 partitions needs `partitions` of 1,000, not a rebuild).

use producer_core::capacity::{Capacities, Slots};

/// A table's storage on the heap: allocated once, at construction, never grown.
#[derive(Clone, Debug)]
pub struct Heap<T>(Box<[T]>);

impl<T> AsRef<[T]> for Heap<T> {
    fn as_ref(&self) -> &[T] {
        &self.0
    }
}

impl<T> AsMut<[T]> for Heap<T> {
    fn as_mut(&mut self) -> &mut [T] {
        &mut self.0
    }
}

impl<T> Slots<T> for Heap<T> {
    fn from_fn(len: usize, make: impl FnMut(usize) -> T) -> Self {
        Heap((0..len).map(make).collect())
    }

    fn try_from_iter(len: usize, items: impl Iterator<Item = T>) -> Option<Self> {
        let items: Box<[T]> = items.take(len).collect();
        (items.len() == len).then_some(Heap(items))
    }
}

/// The four capacities as numbers (see [`ProducerConfig`](crate::ProducerConfig)'s
/// `partitions`, `batches` and `brokers`; topics are as many as it names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sizes {
    /// Topics.
    pub topics: usize,
    /// Partition-table entries, across the topics.
    pub partitions: usize,
    /// Batches held at once.
    pub batches: usize,
    /// Broker connections at once.
    pub brokers: usize,
}

impl Capacities for Sizes {
    type Topics<T> = Heap<T>;
    type Partitions<T> = Heap<T>;
    type Batches<T> = Heap<T>;
    type Brokers<T> = Heap<T>;

    fn topics(&self) -> usize {
        self.topics
    }
    fn partitions(&self) -> usize {
        self.partitions
    }
    fn batches(&self) -> usize {
        self.batches
    }
    fn brokers(&self) -> usize {
        self.brokers
    }
}
