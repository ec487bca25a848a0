//! Sequencer cost per record: one batch's whole life in the ledger (accept, stamp, answer,
//! outcome) for batches of 1 and of 100 records, on a `Sequencer<Fixed<1, 4, 16, 1>>` cycling through its
//! partitions. Criterion reports the time per batch; `cargo xtask bench core` divides by the
//! records per batch.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use producer_core::ErrorCode;
use producer_core::capacity::Fixed;
use producer_core::state::{
    Config, PartitionIndex, ProduceResult, ProducerEpoch, ProducerId, Sequencer,
};
use producer_core::time::Instant;
use std::hint::black_box;
use std::time::Duration;

type Seq = Sequencer<Fixed<1, 4, 16, 1>>;

fn ready_sequencer() -> Seq {
    let mut seq = Seq::new(Config::default()).expect("valid configuration");
    let now = Instant::ZERO;
    assert!(seq.poll_init_producer_id(now));
    seq.on_init_producer_id(now, Ok((ProducerId(4242), ProducerEpoch(0))));
    seq
}

/// Accepts a batch of `records` records (enqueue for one, open + extend + seal for more),
/// stamps it, answers it and takes its outcome. Returns the outcome's offset.
fn cycle(seq: &mut Seq, partition: PartitionIndex, records: u32, offset: i64) -> i64 {
    let now = Instant::from_micros(1_000);
    let deadline = now + Duration::from_secs(30);
    if records == 1 {
        seq.enqueue(partition, 1, deadline).expect("slot free");
    } else {
        let token = seq.open(partition, 1, deadline).expect("slot free");
        for _ in 1..records {
            seq.extend(token, 1, deadline).expect("open batch");
        }
        seq.seal(token).expect("sealable");
    }
    let permit = seq.next_send(partition, now).expect("sendable");
    seq.on_produce_result(
        permit.token,
        now,
        ProduceResult::Answered {
            error: ErrorCode::NONE,
            base_offset: offset,
        },
    )
    .expect("in flight");
    let delivery = seq.poll_event().expect("decided");
    black_box(delivery.records as i64 + offset)
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sequencer");
    for records in [1u32, 100] {
        let mut seq = ready_sequencer();
        let mut offset = 0i64;
        let mut p = 0u16;
        g.throughput(Throughput::Elements(u64::from(records)));
        g.bench_function(format!("cycle_{records}"), |b| {
            b.iter(|| {
                p = (p + 1) % 4;
                offset = cycle(&mut seq, PartitionIndex(p), black_box(records), offset);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
