//! Where the producer keeps what must survive a power cut: nowhere ([`Volatile`]), or a
//! [`FlashStore`](producer_core::flash::FlashStore) on NOR flash (feature `flash`).

use core::future::Future;

use producer_core::capacity::Capacities;
use producer_core::client::Client;

/// A durable store the producer writes its batches, stamps and outcomes to (see
/// `producer_core::client::durable`). The producer awaits [`Durability::persist`] between
/// turns of its connections, never inside them, so the flash has the task to itself.
pub trait Durability {
    /// Batches are mirrored: the client is built with `ClientConfig::durable`.
    const DURABLE: bool;

    /// Writes every write `client` has pending, confirming each to it. On failure the client
    /// has been told (it stops) and `false` is returned.
    fn persist<S, K: Capacities>(
        &mut self,
        client: &mut Client<S, K>,
    ) -> impl Future<Output = bool>
    where
        S: AsRef<[u8]> + AsMut<[u8]>;
}

/// Nothing survives a restart: records in flight at a power cut are lost, and their fate is
/// unknown. The default.
#[derive(Clone, Copy, Debug, Default)]
pub struct Volatile;

impl Durability for Volatile {
    const DURABLE: bool = false;

    async fn persist<S, K: Capacities>(&mut self, _client: &mut Client<S, K>) -> bool
    where
        S: AsRef<[u8]> + AsMut<[u8]>,
    {
        true
    }
}

#[cfg(feature = "flash")]
impl<F, B, C> Durability for producer_core::flash::FlashStore<F, B, C>
where
    F: embedded_storage_async::nor_flash::NorFlash,
    B: AsMut<[u8]>,
    C: producer_core::flash::sequential_storage::cache::CacheImpl<
            producer_core::client::StorageKey,
        >,
{
    const DURABLE: bool = true;

    async fn persist<S, K: Capacities>(&mut self, client: &mut Client<S, K>) -> bool
    where
        S: AsRef<[u8]> + AsMut<[u8]>,
    {
        let written = producer_core::flash::FlashStore::persist(self, client).await;
        if written.is_err() {
            warn!("producer: the flash store failed; the producer stops");
        }
        written.is_ok()
    }
}
