//! Empty: this package exists for `tests/core.rs`, which runs producer-core's portable tests
//! on a Cortex-M3 under QEMU (`cargo test` from this directory).
#![no_std]
