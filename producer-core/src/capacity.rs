//! Capacities: how much a producer holds at once, chosen by its user, named once.
//!
//! A producer keeps tables per topic, per partition, per batch and per broker connection.
//! Their sizes are the user's choice, and the memory behind them is the user's too: on a
//! microcontroller, arrays whose lengths are constants ([`Fixed`]), so the whole producer
//! is one static value of known size; on a host, tables sized from configuration at
//! construction (transport-std's capacities, on the heap), so any topic a cluster holds
//! can be produced to. Either way nothing grows after construction, and the core never
//! allocates: it only asks a [`Capacities`] for storage of a given length once, when the
//! client is built.
//!
//! One type names all four, so firmware writes `Producer<'static, Storage, Caps>` with
//! `type Caps = Fixed<1, 8, 16, 2>;` rather than four constants in every type and impl.

use core::fmt::Debug;
use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};

/// Storage for a table's items, its length fixed when it is made.
///
/// Implemented for arrays, whose length is their type's; a host transport implements it for
/// boxed slices.
pub trait Slots<T>: AsRef<[T]> + AsMut<[T]> + Sized {
    /// Storage of `len` items, item `i` made by `make(i)`. An array has its type's length
    /// and ignores `len`: a [`Capacities`] gives the lengths its storage has.
    fn from_fn(len: usize, make: impl FnMut(usize) -> T) -> Self;

    /// Storage of the first `len` of `items`; `None` when there are fewer.
    fn try_from_iter(len: usize, items: impl Iterator<Item = T>) -> Option<Self>;
}

impl<T, const N: usize> Slots<T> for [T; N] {
    fn from_fn(_len: usize, make: impl FnMut(usize) -> T) -> Self {
        core::array::from_fn(make)
    }

    fn try_from_iter(_len: usize, items: impl Iterator<Item = T>) -> Option<Self> {
        let items: heapless::Vec<T, N> = items.take(N).collect();
        items.into_array().ok()
    }
}

/// The four capacities of a producer and the storage behind them.
///
/// - topics: the topics it was built with;
/// - partitions: across those topics, the partition table's entries (each holds a
///   partition's sequence ledger, so a partition used once keeps its entry);
/// - batches: batches held at once (open, sealed, in flight, or decided and not yet taken);
/// - brokers: broker connections open at once (with more leaders than that, connections
///   take turns), and the bootstrap addresses.
pub trait Capacities: Debug {
    /// Storage for one item per topic.
    type Topics<T>: Slots<T>;
    /// Storage for one item per partition-table entry.
    type Partitions<T>: Slots<T>;
    /// Storage for one item per batch slot.
    type Batches<T>: Slots<T>;
    /// Storage for one item per connection slot.
    type Brokers<T>: Slots<T>;

    /// Topics at most.
    fn topics(&self) -> usize;
    /// Partition-table entries.
    fn partitions(&self) -> usize;
    /// Batch slots.
    fn batches(&self) -> usize;
    /// Connection slots.
    fn brokers(&self) -> usize;
}

/// Capacities as constants, in arrays: what a microcontroller's producer uses, so that its
/// size is known at build time and it can live in a `static`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Fixed<
    const TOPICS: usize,
    const PARTITIONS: usize,
    const BATCHES: usize,
    const BROKERS: usize,
>;

impl<const TOPICS: usize, const PARTITIONS: usize, const BATCHES: usize, const BROKERS: usize>
    Capacities for Fixed<TOPICS, PARTITIONS, BATCHES, BROKERS>
{
    type Topics<T> = [T; TOPICS];
    type Partitions<T> = [T; PARTITIONS];
    type Batches<T> = [T; BATCHES];
    type Brokers<T> = [T; BROKERS];

    fn topics(&self) -> usize {
        TOPICS
    }
    fn partitions(&self) -> usize {
        PARTITIONS
    }
    fn batches(&self) -> usize {
        BATCHES
    }
    fn brokers(&self) -> usize {
        BROKERS
    }
}

/// A table of a fixed number of items, every one always there: an array whose length may
/// be chosen at run time. It reads as a slice.
#[derive(Clone)]
pub struct Array<T, St> {
    items: St,
    _item: PhantomData<T>,
}

impl<T, St: Slots<T>> Array<T, St> {
    /// `len` copies of `fill`.
    pub fn new(len: usize, fill: T) -> Self
    where
        T: Clone,
    {
        Self::from_fn(len, |_| fill.clone())
    }

    /// `len` items, item `i` made by `make(i)`.
    pub fn from_fn(len: usize, make: impl FnMut(usize) -> T) -> Self {
        Array {
            items: St::from_fn(len, make),
            _item: PhantomData,
        }
    }

    /// The first `len` of `items`; `None` when there are fewer.
    pub fn try_from_iter(len: usize, items: impl Iterator<Item = T>) -> Option<Self> {
        St::try_from_iter(len, items).map(|items| Array {
            items,
            _item: PhantomData,
        })
    }
}

impl<T, St: AsRef<[T]>> Deref for Array<T, St> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        self.items.as_ref()
    }
}

impl<T, St: AsRef<[T]> + AsMut<[T]>> DerefMut for Array<T, St> {
    fn deref_mut(&mut self) -> &mut [T] {
        self.items.as_mut()
    }
}

impl<T: Debug, St: AsRef<[T]>> Debug for Array<T, St> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// One item per topic.
pub type PerTopic<C, T> = Array<T, <C as Capacities>::Topics<T>>;
/// One item per partition-table entry.
pub type PerPartition<C, T> = Array<T, <C as Capacities>::Partitions<T>>;
/// One item per batch slot.
pub type PerBatch<C, T> = Array<T, <C as Capacities>::Batches<T>>;
/// One item per connection slot.
pub type PerBroker<C, T> = Array<T, <C as Capacities>::Brokers<T>>;
/// Up to one item per topic.
pub type TopicList<C, T> = Table<T, <C as Capacities>::Topics<T>>;
/// Up to one item per partition-table entry.
pub type PartitionList<C, T> = Table<T, <C as Capacities>::Partitions<T>>;
/// Up to one item per batch slot.
pub type BatchList<C, T> = Table<T, <C as Capacities>::Batches<T>>;
/// Up to one item per connection slot.
pub type BrokerList<C, T> = Table<T, <C as Capacities>::Brokers<T>>;

/// A list of at most as many items as its storage holds: heapless's `Vec`, over storage
/// whose length may be chosen at run time. It reads as a slice.
#[derive(Clone)]
pub struct Table<T, St> {
    items: St,
    len: usize,
    _item: PhantomData<T>,
}

impl<T: Clone, St: Slots<T>> Table<T, St> {
    /// An empty list over storage of `capacity` items, each first a copy of `fill`.
    pub fn new(capacity: usize, fill: T) -> Self {
        Table {
            items: St::from_fn(capacity, |_| fill.clone()),
            len: 0,
            _item: PhantomData,
        }
    }

    /// The most items it holds.
    pub fn capacity(&self) -> usize {
        self.items.as_ref().len()
    }

    /// It holds as many items as it can.
    pub fn is_full(&self) -> bool {
        self.len >= self.capacity()
    }

    /// Appends `item`, or gives it back when the list is full.
    pub(crate) fn push(&mut self, item: T) -> Result<(), T> {
        match self.items.as_mut().get_mut(self.len) {
            Some(place) => {
                *place = item;
                self.len += 1;
                Ok(())
            }
            None => Err(item),
        }
    }

    /// Removes the last item.
    pub(crate) fn pop(&mut self) -> Option<T> {
        let last = self.len.checked_sub(1)?;
        self.len = last;
        self.items.as_ref().get(last).cloned()
    }

    /// Keeps the first `len` items.
    pub(crate) fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Forgets every item.
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }

    /// Removes item `index`, the last taking its place.
    pub(crate) fn swap_remove(&mut self, index: usize) -> Option<T> {
        if index >= self.len {
            return None;
        }
        let last = self.len - 1;
        let items = self.items.as_mut();
        items.swap(index, last);
        self.len = last;
        items.get(last).cloned()
    }

    /// Keeps the items `keep` accepts, in order.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(&T) -> bool) {
        let len = self.len;
        let items = self.items.as_mut();
        let mut kept = 0;
        for i in 0..len {
            if keep(&items[i]) {
                items.swap(kept, i);
                kept += 1;
            }
        }
        self.len = kept;
    }
}

impl<T, St: AsRef<[T]>> Deref for Table<T, St> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.items.as_ref()[..self.len]
    }
}

impl<T, St: AsRef<[T]> + AsMut<[T]>> DerefMut for Table<T, St> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.items.as_mut()[..self.len]
    }
}

impl<T: Debug, St: AsRef<[T]>> Debug for Table<T, St> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A first-in first-out queue of at most as many items as its storage holds: heapless's
/// `Deque`, over storage (of `Option<T>`) whose length may be chosen at run time.
pub struct Ring<T, St> {
    items: Array<Option<T>, St>,
    head: usize,
    len: usize,
}

impl<T, St: Slots<Option<T>>> Ring<T, St> {
    /// An empty queue with room for `capacity` items.
    pub fn new(capacity: usize) -> Self {
        Ring {
            items: Array::from_fn(capacity, |_| None),
            head: 0,
            len: 0,
        }
    }

    /// Appends `item`, or gives it back when the queue is full.
    pub fn push_back(&mut self, item: T) -> Result<(), T> {
        let cap = self.items.len();
        if self.len >= cap {
            return Err(item);
        }
        self.items[(self.head + self.len) % cap] = Some(item);
        self.len += 1;
        Ok(())
    }

    /// Removes the oldest item.
    pub fn pop_front(&mut self) -> Option<T> {
        if self.len == 0 {
            return None;
        }
        let item = self.items.get_mut(self.head).and_then(Option::take);
        self.head = (self.head + 1) % self.items.len();
        self.len -= 1;
        item
    }

    /// Items queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// No room for another item.
    pub fn is_full(&self) -> bool {
        self.len >= self.items.len()
    }
}

impl<T: Debug, St: AsRef<[Option<T>]>> Debug for Ring<T, St> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let cap = self.items.len().max(1);
        let queued = (0..self.len).filter_map(|k| self.items.get((self.head + k) % cap));
        f.debug_list().entries(queued.flatten()).finish()
    }
}

macro_rules! iterate_as_slice {
    ($name:ident) => {
        impl<'a, T, St: AsRef<[T]>> IntoIterator for &'a $name<T, St> {
            type Item = &'a T;
            type IntoIter = core::slice::Iter<'a, T>;
            fn into_iter(self) -> Self::IntoIter {
                self.iter()
            }
        }

        impl<'a, T, St: AsRef<[T]> + AsMut<[T]>> IntoIterator for &'a mut $name<T, St> {
            type Item = &'a mut T;
            type IntoIter = core::slice::IterMut<'a, T>;
            fn into_iter(self) -> Self::IntoIter {
                self.iter_mut()
            }
        }
    };
}

iterate_as_slice!(Array);
iterate_as_slice!(Table);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_table_pushes_to_its_capacity_and_reads_as_a_slice() {
        let mut t: Table<u8, [u8; 3]> = Table::new(3, 0);
        assert!(t.is_empty());
        for v in [5, 6, 7] {
            t.push(v).unwrap();
        }
        assert!(t.is_full());
        assert_eq!(t.push(8), Err(8));
        assert_eq!(&t[..], &[5, 6, 7]);
        assert_eq!(t.swap_remove(0), Some(5));
        assert_eq!(&t[..], &[7, 6]);
        t.retain(|&v| v != 7);
        assert_eq!(&t[..], &[6]);
        assert_eq!(t.swap_remove(4), None);
        t.clear();
        assert!(t.is_empty());
    }

    #[test]
    fn a_ring_is_first_in_first_out_across_its_end() {
        let mut r: Ring<u8, [Option<u8>; 2]> = Ring::new(2);
        assert_eq!(r.pop_front(), None);
        r.push_back(1).unwrap();
        r.push_back(2).unwrap();
        assert_eq!(r.push_back(3), Err(3));
        assert_eq!(r.pop_front(), Some(1));
        r.push_back(3).unwrap();
        assert!(r.is_full());
        assert_eq!(
            (r.pop_front(), r.pop_front(), r.pop_front()),
            (Some(2), Some(3), None)
        );
    }

    #[test]
    fn arrays_take_their_length_from_an_iterator_or_refuse() {
        let a: Option<Array<u8, [u8; 3]>> = Array::try_from_iter(3, [1, 2, 3, 4].into_iter());
        assert_eq!(&a.unwrap()[..], &[1, 2, 3]);
        let short: Option<Array<u8, [u8; 3]>> = Array::try_from_iter(3, [1, 2].into_iter());
        assert!(short.is_none());
    }

    #[test]
    fn retain_keeps_the_order() {
        let mut t: Table<u8, [u8; 6]> = Table::new(6, 0);
        for v in 1..=6 {
            t.push(v).unwrap();
        }
        t.retain(|v| v % 2 == 0);
        assert_eq!(&t[..], &[2, 4, 6]);
    }
}
