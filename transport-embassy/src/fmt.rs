//! Logging that compiles to nothing unless a backend is chosen, as in producer-core: `defmt`
//! on targets, `log` on hosts. Every call uses `{:?}`, which both backends accept.

#[cfg(all(feature = "defmt", feature = "log"))]
compile_error!("features `defmt` and `log` are exclusive: pick one logging backend");

macro_rules! log_at {
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
    ($($t:tt)*) => { log_at!(debug, $($t)*) };
}

macro_rules! info {
    ($($t:tt)*) => { log_at!(info, $($t)*) };
}

// Only the flash store warns so far.
#[cfg_attr(not(feature = "flash"), allow(unused_macros))]
macro_rules! warn {
    ($($t:tt)*) => { log_at!(warn, $($t)*) };
}
