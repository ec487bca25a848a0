//! The durable store on NOR flash (feature `flash`): the client's [`PersistOp`]s written to a
//! [`sequential-storage`](sequential_storage) map, whose CRC-checked items and page states
//! survive a power cut at any point of a write.
//!
//! The flash is any `embedded-storage-async` NOR flash; a blocking one (the
//! `embedded-storage` traits) goes behind [`BlockingAsync`], and then the blocking methods
//! ([`FlashStore::persist_blocking`], [`FlashStore::restore_blocking`]) drive it without an
//! executor.
//!
//! What the guarantee rests on, from the flash:
//! - Writes may be cut at any byte; erases must either complete or stop with the bytes
//!   erased so far in address order. An erase cut part way with random bits left behind can
//!   lose stored items: parts that can lose power during a page erase need a brown-out
//!   detector with enough hold-up energy to finish one.
//! - `WRITE_SIZE` must be at least 4 (sequential-storage issue #136: with 1-byte writes a
//!   torn item header followed by an append can hide an acknowledged item). A part that
//!   programs single bytes can still declare 4.
//! - Never drop a future of this module half way (in a `select`): that is a power cut.
//!
//! [`PersistOp`]: crate::client::PersistOp

use crate::capacity::Capacities;
use core::fmt;
use core::ops::Range;

use embedded_storage_async::nor_flash::NorFlash;
use sequential_storage::cache::{Cache, CacheImpl, Uncached};
use sequential_storage::map::{MapConfig, MapStorage};

pub use embassy_embedded_hal::adapter::BlockingAsync;
pub use sequential_storage;

use crate::client::durable::{KEY_LEN, META_LEN, StorageKey};
use crate::client::{Client, RestoreError, RestoreOptions, RestoreSummary};

/// Bytes sequential-storage adds to every item (CRC and length header).
const ITEM_OVERHEAD: usize = 8;
/// The `Option` tag in front of every value.
const OPTION_TAG: usize = 1;

/// Why the durable store failed.
#[derive(Debug)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum StoreError<E> {
    /// The flash range, page size or word size cannot hold the client's batches: see
    /// [`Geometry`] for what to change.
    Geometry(Geometry),
    /// The buffer given is smaller than [`FlashStore::buffer_len`].
    Buffer {
        /// Bytes needed.
        needed: usize,
    },
    /// The stored state does not fit the client.
    Restore(RestoreError),
    /// sequential-storage (or the flash under it) failed. The client was told
    /// ([`Client::on_persist_failed`]) and has stopped.
    Flash(sequential_storage::Error<E>),
}

impl<E: fmt::Debug> fmt::Display for StoreError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Geometry(g) => g.fmt(f),
            StoreError::Buffer { needed } => {
                write!(f, "the store's buffer must be at least {needed} bytes")
            }
            StoreError::Restore(e) => e.fmt(f),
            StoreError::Flash(e) => write!(f, "flash store failed: {e:?}"),
        }
    }
}

/// A flash layout refused at construction, and what to change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Geometry {
    /// `WRITE_SIZE` is below 4: declare 4 (see the module docs).
    WriteSize {
        /// The flash's `WRITE_SIZE`.
        given: usize,
    },
    /// The range is not a whole number of erase pages, or is not inside the flash.
    Range,
    /// A full batch item does not fit in one erase page (or in the 65,535 bytes an item may
    /// have): lower `batch_bytes` to at most `max_batch_bytes`, or use larger pages.
    BatchTooBig {
        /// The client's `batch_bytes`.
        batch_bytes: usize,
        /// The largest that fits a page.
        max_batch_bytes: usize,
    },
    /// The range holds fewer pages than every batch slot at its largest needs (plus the
    /// pages sequential-storage keeps free): give it `pages_needed` pages, or lower
    /// `BATCHES` or `batch_bytes`.
    TooSmall {
        /// Pages in the range.
        pages: usize,
        /// Pages needed.
        pages_needed: usize,
    },
}

impl fmt::Display for Geometry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Geometry::WriteSize { given } => write!(
                f,
                "the flash declares WRITE_SIZE {given}: declare at least 4 (sequential-storage \
                 issue #136)"
            ),
            Geometry::Range => {
                f.write_str("the flash range must be whole erase pages inside the flash")
            }
            Geometry::BatchTooBig {
                batch_bytes,
                max_batch_bytes,
            } => write!(
                f,
                "batch_bytes {batch_bytes} does not fit one flash page: lower it to \
                 {max_batch_bytes} or use larger pages"
            ),
            Geometry::TooSmall {
                pages,
                pages_needed,
            } => write!(
                f,
                "the flash range has {pages} pages, the producer's batches need \
                 {pages_needed}: enlarge it, or lower BATCHES or batch_bytes"
            ),
        }
    }
}

/// No cache: every lookup reads the flash.
pub type NoCache = Cache<Uncached, Uncached, Uncached, StorageKey>;

/// The client's durable store: a sequential-storage map over `range` of `flash`, with a
/// caller-provided item buffer `B` of at least [`FlashStore::buffer_len`] bytes.
pub struct FlashStore<F: NorFlash, B, C: CacheImpl<StorageKey> = NoCache> {
    map: MapStorage<StorageKey, F, C>,
    buffer: B,
}

fn round_up(n: usize, word: usize) -> usize {
    n.div_ceil(word) * word
}

impl<F, B> FlashStore<F, B, NoCache>
where
    F: NorFlash,
    B: AsMut<[u8]>,
{
    /// A store over `range` (whole erase pages) of `flash`, checked against `client`'s
    /// capacities: every batch slot at its largest, with its meta item, must fit with the
    /// free pages sequential-storage needs to move items during garbage collection.
    pub fn new<S, K: Capacities>(
        flash: F,
        range: Range<u32>,
        buffer: B,
        client: &Client<S, K>,
    ) -> Result<Self, StoreError<F::Error>>
    where
        S: AsRef<[u8]> + AsMut<[u8]>,
    {
        Self::with_cache(flash, range, buffer, client, Cache::new_uncached())
    }
}

impl<F, B, C> FlashStore<F, B, C>
where
    F: NorFlash,
    B: AsMut<[u8]>,
    C: CacheImpl<StorageKey>,
{
    /// The item buffer a client with `batch_bytes` needs: its largest item, word-aligned.
    pub fn buffer_len(batch_bytes: usize) -> usize {
        let word = F::WRITE_SIZE.max(F::READ_SIZE);
        round_up(KEY_LEN + OPTION_TAG + batch_bytes, word)
    }

    /// [`FlashStore::new`] with a sequential-storage cache of the caller's choice (a key
    /// cache makes stores cheaper on large ranges).
    pub fn with_cache<S, K: Capacities>(
        flash: F,
        range: Range<u32>,
        mut buffer: B,
        client: &Client<S, K>,
        cache: C,
    ) -> Result<Self, StoreError<F::Error>>
    where
        S: AsRef<[u8]> + AsMut<[u8]>,
    {
        check_geometry::<F>(
            &range,
            flash.capacity(),
            client.batch_bytes(),
            client.batch_slots(),
        )
        .map_err(StoreError::Geometry)?;
        let needed = Self::buffer_len(client.batch_bytes());
        if buffer.as_mut().len() < needed {
            return Err(StoreError::Buffer { needed });
        }
        let config =
            MapConfig::try_new(range).map_err(|_| StoreError::Geometry(Geometry::Range))?;
        Ok(FlashStore {
            map: MapStorage::new(flash, config, cache),
            buffer,
        })
    }

    /// Reads every stored item back into a fresh `client` and rebuilds its batches (see
    /// [`Client::finish_restore`]). Call once, at boot, before anything else.
    pub async fn restore<S, K: Capacities>(
        &mut self,
        client: &mut Client<S, K>,
        options: RestoreOptions,
    ) -> Result<RestoreSummary, StoreError<F::Error>>
    where
        S: AsRef<[u8]> + AsMut<[u8]>,
    {
        // A page erase cut by a power loss leaves the page half erased, which
        // sequential-storage repairs (re-erases) on its next operation. Its `fetch_all_items`
        // (8.0.2) does not, though: a `?` inside its auto-repair block returns the
        // `Corrupted` before the repair runs. `fetch_item` starts with the same page search
        // and repairs properly, so it goes first when the search fails.
        let found = self
            .map
            .fetch_all_items(self.buffer.as_mut())
            .await
            .map(|_| ());
        if let Err(sequential_storage::Error::Corrupted { .. }) = found {
            self.map
                .fetch_item::<Option<&[u8]>>(
                    self.buffer.as_mut(),
                    &crate::client::durable::key(true, 0),
                )
                .await
                .map_err(StoreError::Flash)?;
        }
        let mut items = self
            .map
            .fetch_all_items(self.buffer.as_mut())
            .await
            .map_err(StoreError::Flash)?;
        // `next` borrows the buffer for the item it returns; the client copies it at once.
        loop {
            let item = items
                .next::<Option<&[u8]>>(self.buffer.as_mut())
                .await
                .map_err(StoreError::Flash)?;
            let Some((key, value)) = item else { break };
            client
                .restore_item(&key, value)
                .map_err(StoreError::Restore)?;
        }
        client.finish_restore(options).map_err(StoreError::Restore)
    }

    /// Writes every write `client` has pending, in order, confirming each; returns how many.
    /// A failed write stops the client ([`Client::on_persist_failed`]) and is returned.
    pub async fn persist<S, K: Capacities>(
        &mut self,
        client: &mut Client<S, K>,
    ) -> Result<usize, StoreError<F::Error>>
    where
        S: AsRef<[u8]> + AsMut<[u8]>,
    {
        let mut written = 0;
        while let Some(op) = client.poll_persist() {
            let buffer = self.buffer.as_mut();
            let result = self.map.store_item(buffer, &op.key, &op.value).await;
            if let Err(e) = result {
                client.on_persist_failed();
                return Err(StoreError::Flash(e));
            }
            client.on_persisted();
            written += 1;
        }
        Ok(written)
    }

    /// [`FlashStore::restore`] for a flash that never pends (a blocking one behind
    /// [`BlockingAsync`]), without an executor.
    pub fn restore_blocking<S, K: Capacities>(
        &mut self,
        client: &mut Client<S, K>,
        options: RestoreOptions,
    ) -> Result<RestoreSummary, StoreError<F::Error>>
    where
        S: AsRef<[u8]> + AsMut<[u8]>,
    {
        embassy_futures::block_on(self.restore(client, options))
    }

    /// [`FlashStore::persist`] for a flash that never pends, without an executor.
    pub fn persist_blocking<S, K: Capacities>(
        &mut self,
        client: &mut Client<S, K>,
    ) -> Result<usize, StoreError<F::Error>>
    where
        S: AsRef<[u8]> + AsMut<[u8]>,
    {
        embassy_futures::block_on(self.persist(client))
    }

    /// Erases the whole range: every batch and outcome stored is forgotten.
    pub async fn erase_all(&mut self) -> Result<(), StoreError<F::Error>> {
        self.map.erase_all().await.map_err(StoreError::Flash)
    }

    /// Gives the flash and buffer back.
    pub fn into_inner(self) -> (F, B) {
        let (flash, _) = self.map.destroy();
        (flash, self.buffer)
    }
}

/// How many erase pages of `F` a client with `batches` slots of `batch_bytes` needs: every
/// slot's batch at its largest and its meta item, one page sequential-storage keeps empty and
/// one of slack for garbage collection. Size a store's range with it (more pages mean less
/// garbage collection and wear).
pub fn pages_needed<F: NorFlash>(batch_bytes: usize, batches: usize) -> Result<usize, Geometry> {
    if F::WRITE_SIZE < 4 {
        return Err(Geometry::WriteSize {
            given: F::WRITE_SIZE,
        });
    }
    let page = F::ERASE_SIZE;
    let word = F::WRITE_SIZE.max(F::READ_SIZE);
    // A page keeps its first and last word for its state.
    let usable = page.saturating_sub(2 * word);
    let item = |value: usize| ITEM_OVERHEAD + round_up(KEY_LEN + OPTION_TAG + value, word);
    let batch_item = item(batch_bytes);
    // An item's key and value are at most u16::MAX bytes, whatever the page size.
    let longest = usize::from(u16::MAX) - KEY_LEN - OPTION_TAG;
    if batch_item > usable || batch_bytes > longest {
        let spare = usable.saturating_sub(ITEM_OVERHEAD + KEY_LEN + OPTION_TAG + word);
        return Err(Geometry::BatchTooBig {
            batch_bytes,
            max_batch_bytes: (spare / word * word).min(longest),
        });
    }
    let meta_item = item(META_LEN);
    let per_page = usable / batch_item;
    Ok(batches.div_ceil(per_page) + (batches * meta_item).div_ceil(usable) + 2)
}

/// Checks that `batches` slots of `batch_bytes` fit `range` of a flash of `capacity` bytes.
fn check_geometry<F: NorFlash>(
    range: &Range<u32>,
    capacity: usize,
    batch_bytes: usize,
    batches: usize,
) -> Result<(), Geometry> {
    let page = F::ERASE_SIZE;
    let (start, end) = (range.start as usize, range.end as usize);
    if page == 0
        || !start.is_multiple_of(page)
        || !end.is_multiple_of(page)
        || end <= start
        || end > capacity
    {
        return Err(Geometry::Range);
    }
    let pages_needed = pages_needed::<F>(batch_bytes, batches)?;
    let pages = (end - start) / page;
    if pages < pages_needed {
        return Err(Geometry::TooSmall {
            pages,
            pages_needed,
        });
    }
    Ok(())
}
