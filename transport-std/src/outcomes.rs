//! Where transport-std keeps outcomes taken from the client until the application takes
//! them: an unbounded queue for the core's [`Deliveries`](producer_core::driver::Deliveries).

use std::collections::VecDeque;

use producer_core::client::ClientDelivery;
use producer_core::driver::DeliveryQueue;

/// Taken outcomes wait here without bound: a host does not refuse records because the
/// application has not taken outcomes yet.
#[derive(Debug)]
pub(crate) struct Unbounded(pub(crate) VecDeque<ClientDelivery>);

impl DeliveryQueue for Unbounded {
    fn push_back(&mut self, d: ClientDelivery) -> Result<(), ClientDelivery> {
        self.0.push_back(d);
        Ok(())
    }

    fn pop_front(&mut self) -> Option<ClientDelivery> {
        self.0.pop_front()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn is_full(&self) -> bool {
        false
    }
}
