//! Logging that compiles to nothing unless a backend is chosen: `defmt` on targets, `log` on
//! hosts, the way smoltcp and embassy do it. Every call uses `{:?}`, which both backends accept.
//!
//! The one copy: transport-embassy logs through these too (the hidden exported `__log_at!`),
//! so both crates format and filter alike. The backend is chosen by the features of the crate
//! the call is in (its `defmt` and `log`, which turn on the core's), since a macro's `cfg`s
//! are read where it expands.

#[cfg(all(feature = "defmt", feature = "log"))]
compile_error!("features `defmt` and `log` are exclusive: pick one logging backend");

/// Logs at `$level` through the calling crate's backend. Not an API: for the transports.
#[doc(hidden)]
#[macro_export]
macro_rules! __log_at {
    ($level:ident, $s:literal $(, $x:expr)* $(,)?) => {{
        #[cfg(feature = "defmt")]
        ::defmt::$level!($s $(, $x)*);
        #[cfg(feature = "log")]
        ::log::$level!($s $(, $x)*);
        #[cfg(not(any(feature = "defmt", feature = "log")))]
        {
            $( let _ = &$x; )*
        }
    }};
}

macro_rules! debug {
    ($($t:tt)*) => { $crate::__log_at!(debug, $($t)*) };
}

macro_rules! info {
    ($($t:tt)*) => { $crate::__log_at!(info, $($t)*) };
}

macro_rules! warn {
    ($($t:tt)*) => { $crate::__log_at!(warn, $($t)*) };
}
