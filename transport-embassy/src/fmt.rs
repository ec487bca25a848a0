//! The core's logging (`producer_core`'s `fmt`, one copy for both crates), by level. This
//! crate's `defmt` and `log` features pick the backend, and turn on the core's.

macro_rules! debug {
    ($($t:tt)*) => { ::producer_core::__log_at!(debug, $($t)*) };
}

macro_rules! info {
    ($($t:tt)*) => { ::producer_core::__log_at!(info, $($t)*) };
}

// Only the flash store warns so far.
#[cfg_attr(not(feature = "flash"), allow(unused_macros))]
macro_rules! warn {
    ($($t:tt)*) => { ::producer_core::__log_at!(warn, $($t)*) };
}
