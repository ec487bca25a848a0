//! The durable state file as the producer uses it: the store's type, its errors as text,
//! and the write step every turn takes.

use std::fmt;

use producer_core::flash::{BlockingAsync, FlashStore, StoreError};

use crate::CoreClient;
use crate::file_flash::FileFlash;

pub(crate) type Store = FlashStore<BlockingAsync<FileFlash>, Vec<u8>>;

pub(crate) fn store_error<E: fmt::Debug>(e: StoreError<E>) -> String {
    e.to_string()
}

/// Writes what `client` needs in the durable state; returns how many writes. A failed write
/// stops the producer (see [`Error::Storage`](crate::Error::Storage)).
pub(crate) fn persist(
    store: &mut Option<Store>,
    client: &mut CoreClient,
    storage_error: &mut Option<String>,
) -> usize {
    let Some(store) = store.as_mut() else {
        return 0;
    };
    if storage_error.is_some() {
        return 0;
    }
    match store.persist_blocking(client) {
        Ok(n) => n,
        Err(e) => {
            log::error!("durable state write failed, the producer stops: {e}");
            *storage_error = Some(store_error(e));
            0
        }
    }
}
