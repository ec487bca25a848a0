//! Outcomes on their way to the application: batch outcomes ([`ClientDelivery`]) taken from
//! the client, kept in a queue, and handed out per record ([`RecordDelivery`]) in order.
//!
//! A transport takes outcomes from the client as its connections turn (so the client's batch
//! slots free even while the application is busy elsewhere) and hands them out when asked.
//! The queue is the transport's: a fixed `heapless::Deque` on targets (when it is full the
//! client keeps the rest, and `send` sees its slots taken), anything implementing
//! [`DeliveryQueue`] on hosts. With a durable store outcomes are not queued at all: each
//! stays in the client (and the store) until the application asks for the next, so the
//! transport takes them straight from the client ([`Deliveries::next_with`]).

use crate::capacity::{Capacities, Ring, Slots};
use crate::client::{Client, ClientDelivery, RecordDeliveries, RecordDelivery};

/// Where taken batch outcomes wait, first in first out.
pub trait DeliveryQueue {
    /// Appends `d`, or hands it back when there is no room.
    fn push_back(&mut self, d: ClientDelivery) -> Result<(), ClientDelivery>;
    /// The oldest outcome.
    fn pop_front(&mut self) -> Option<ClientDelivery>;
    /// Nothing waits.
    fn is_empty(&self) -> bool;
    /// No room for another.
    fn is_full(&self) -> bool;
}

impl<const N: usize> DeliveryQueue for heapless::Deque<ClientDelivery, N> {
    fn push_back(&mut self, d: ClientDelivery) -> Result<(), ClientDelivery> {
        heapless::Deque::push_back(self, d)
    }

    fn pop_front(&mut self) -> Option<ClientDelivery> {
        heapless::Deque::pop_front(self)
    }

    fn is_empty(&self) -> bool {
        heapless::Deque::is_empty(self)
    }

    fn is_full(&self) -> bool {
        heapless::Deque::is_full(self)
    }
}

impl<St: Slots<Option<ClientDelivery>>> DeliveryQueue for Ring<ClientDelivery, St> {
    fn push_back(&mut self, d: ClientDelivery) -> Result<(), ClientDelivery> {
        Ring::push_back(self, d)
    }

    fn pop_front(&mut self) -> Option<ClientDelivery> {
        Ring::pop_front(self)
    }

    fn is_empty(&self) -> bool {
        Ring::is_empty(self)
    }

    fn is_full(&self) -> bool {
        Ring::is_full(self)
    }
}

/// Batch outcomes taken from the client and the records of the one being handed out.
#[derive(Debug)]
pub struct Deliveries<Q> {
    queue: Q,
    /// The batch whose records are being handed out; `None` once its last one was.
    expanding: Option<RecordDeliveries>,
}

impl<Q: DeliveryQueue> Deliveries<Q> {
    /// Outcomes kept in `queue` (empty).
    pub const fn new(queue: Q) -> Self {
        Deliveries {
            queue,
            expanding: None,
        }
    }

    /// Takes the client's ready outcomes into the queue, while it has room. Returns whether
    /// any was taken. Not for a durable client: its outcomes leave one at a time, when
    /// asked for.
    pub fn collect<S, C: Capacities>(&mut self, client: &mut Client<S, C>) -> bool
    where
        S: AsRef<[u8]> + AsMut<[u8]>,
    {
        let mut any = false;
        while !self.queue.is_full() {
            let Some(d) = client.poll_delivery() else {
                break;
            };
            // There was room: this cannot be refused.
            let _ = self.queue.push_back(d);
            any = true;
        }
        any
    }

    /// The next record outcome: the rest of the batch being handed out, then the queued
    /// batches, then the client's.
    pub fn next<S, C: Capacities>(&mut self, client: &mut Client<S, C>) -> Option<RecordDelivery>
    where
        S: AsRef<[u8]> + AsMut<[u8]>,
    {
        self.next_with(|| client.poll_delivery())
    }

    /// [`Deliveries::next`] with the client's outcomes taken by `take` (a durable transport
    /// stores the client's writes around it).
    pub fn next_with(
        &mut self,
        mut take: impl FnMut() -> Option<ClientDelivery>,
    ) -> Option<RecordDelivery> {
        loop {
            if let Some(records) = self.expanding.as_mut() {
                if let Some(record) = records.next() {
                    if records.len() == 0 {
                        self.expanding = None;
                    }
                    return Some(record);
                }
                self.expanding = None;
            }
            let batch = match self.queue.pop_front() {
                Some(batch) => batch,
                None => take()?,
            };
            self.expanding = Some(batch.records());
        }
    }

    /// Nothing taken is left to hand out.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty() && self.expanding.is_none()
    }

    /// A record outcome is ready: taken, or ready in the client.
    pub fn ready<S, C: Capacities>(&self, client: &Client<S, C>) -> bool
    where
        S: AsRef<[u8]> + AsMut<[u8]>,
    {
        !self.is_empty() || client.delivery_ready()
    }
}
