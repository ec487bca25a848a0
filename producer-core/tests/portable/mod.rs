//! Test bodies shared by the host and a Cortex-M3 under QEMU.
//!
//! Each `pub fn` here is one test, listed once in `list.rs`: `tests/portable.rs` expands the
//! list into host `#[test]`s, `on-target/tests/core.rs` into defmt-test ones on
//! `thumbv7m-none-eabi`, so the `no_std` core is run on a 32-bit target, not only compiled
//! for it. That is why the bodies
//! use only `core` and `heapless`: no `std`, no allocation, small buffers (the target has
//! 64 KiB of RAM), fixtures through `include_bytes!`. A body that no wrapper calls is a dead
//! code warning on both sides.
//!
//! The helpers below (`ready`, `at`, `answered`, ...) are public because `tests/sequencer.rs`
//! includes this module too, for its host-only sequencer tests.

#[macro_use]
mod list;

pub mod cancel;
pub mod classify;
pub mod codec;
pub mod ledger;

use producer_core::ErrorCode;
use producer_core::capacity::Fixed;
use producer_core::state::{
    Config, Identity, PartitionIndex, ProduceResult, ProducerEpoch, ProducerId, Sequencer,
    UnknownOutcome,
};
use producer_core::time::Instant;

/// Capacities a small gateway would pick.
pub type Seq = Sequencer<Fixed<1, 4, 8, 1>>;

pub const P0: PartitionIndex = PartitionIndex(0);
pub const P1: PartitionIndex = PartitionIndex(1);

pub fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

pub fn answered(code: ErrorCode, offset: i64) -> ProduceResult {
    ProduceResult::Answered {
        error: code,
        base_offset: offset,
    }
}

/// A sequencer holding producer id 7, epoch 0.
pub fn ready(policy: UnknownOutcome) -> Seq {
    let mut s = Seq::new(Config {
        unknown_outcome: policy,
        ..Config::default()
    })
    .unwrap();
    assert!(s.poll_init_producer_id(at(0)));
    s.on_init_producer_id(at(0), Ok((ProducerId(7), ProducerEpoch(0))));
    assert_eq!(
        s.identity(),
        Identity::Ready {
            id: ProducerId(7),
            epoch: ProducerEpoch(0)
        }
    );
    s
}
