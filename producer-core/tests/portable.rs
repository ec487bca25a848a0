//! The portable test bodies (`tests/portable/`) on the host. The same bodies run on a
//! Cortex-M3 under QEMU through `on-target/` (`cargo xtask test` runs both); both expand the
//! one list in `portable/list.rs`.

#[macro_use]
#[path = "portable/mod.rs"]
mod portable;

portable_tests!(mod host);
