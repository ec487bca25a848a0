//! Part 5: sizes of the host client and its state.

use super::*;

/// Measures the part and writes its section.
pub(crate) fn run() {
    use std::mem::size_of;
    let ledger = size_of::<PartitionLedger>();
    let seq_4_16 = size_of::<Sequencer<Fixed<1, 4, 16, 1>>>();
    let slot = size_of::<Sequencer<Fixed<1, 4, 17, 1>>>() - seq_4_16;
    type Small = Client<&'static mut [u8], Fixed<1, 4, 16, 2>>;
    type Std = Client<Vec<u8>, Fixed<8, 256, 256, 16>>;
    let small = size_of::<Small>();
    let small_partition = size_of::<Client<&'static mut [u8], Fixed<1, 5, 16, 2>>>() - small;
    let small_slot = size_of::<Client<&'static mut [u8], Fixed<1, 4, 17, 2>>>() - small;
    let small_broker = size_of::<Client<&'static mut [u8], Fixed<1, 4, 16, 3>>>() - small;
    let md = format!(
        "## Sizes\n\n\
         `size_of` on this host (x86-64; a 32-bit target differs where pointers and `usize` are \
         involved). A batch slot and the per-partition/per-broker costs of the client are \
         measured as the difference one more makes. The client's batch bytes live in the \
         storage it is given (`BATCHES × batch_bytes`), not in these figures. Flash and static \
         RAM of the Cortex-M4 firmware follow below.\n\n\
         | item | bytes |\n|---|---|\n\
         | `PartitionLedger` (per partition) | {ledger} |\n\
         | batch slot in the sequencer (per batch) | {slot} |\n\
         | `Sequencer<Fixed<1, 4, 16, 1>>` | {seq_4_16} |\n\
         | `Client<&mut [u8], 1 topic, 4 partitions, 16 batches, 2 brokers>` | {small} |\n\
         | … per more partition / batch / broker | {small_partition} / {small_slot} / {small_broker} |\n\
         | `Client` as transport-std uses it (8, 256, 256, 16) | {} |",
        size_of::<Std>()
    );
    write_section("size", &md);
}
