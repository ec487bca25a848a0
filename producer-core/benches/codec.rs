//! Codec throughput: encoding a 100-record batch of 100-byte values (build,
//! finish, stamp: two CRC passes; and the client's path, finish_for_stamp then
//! stamp: one), decoding it back with CRC verification, and CRC-32C alone over
//! the same number of bytes.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use producer_core::wire::crc32c;
use producer_core::wire::stamp;
use producer_core::wire::{Attributes, BatchBuilder, RecordBatch, RecordHeader};
use std::hint::black_box;

const RECORDS: usize = 100;
const VALUE_LEN: usize = 100;

fn encode_batch(buf: &mut [u8], value: &[u8]) -> usize {
    encode_with(buf, value, false)
}

/// Builds and stamps the batch; `single_crc` seals it as the client does, leaving the one CRC
/// pass to `stamp`.
fn encode_with(buf: &mut [u8], value: &[u8], single_crc: bool) -> usize {
    let mut b = BatchBuilder::new(buf, Attributes::default(), 1_700_000_000_000).unwrap();
    let headers: [RecordHeader<'_>; 0] = [];
    for i in 0..RECORDS {
        let key = (i as u32).to_be_bytes();
        b.append(
            1_700_000_000_000 + i as i64,
            Some(&key),
            Some(value),
            &headers,
        )
        .unwrap();
    }
    let batch = if single_crc {
        b.finish_for_stamp().unwrap()
    } else {
        b.finish().unwrap()
    };
    stamp(batch, 4242, 1, 1000).unwrap();
    batch.len()
}

fn bench(c: &mut Criterion) {
    let value = [0xabu8; VALUE_LEN];
    let mut buf = vec![0u8; 64 * 1024];
    let len = encode_batch(&mut buf, &value);

    let mut g = c.benchmark_group("record_batch");
    g.throughput(Throughput::Bytes(len as u64));
    g.bench_function("encode_100x100B", |b| {
        b.iter(|| encode_batch(black_box(&mut buf), black_box(&value)))
    });
    let encoded = buf[..len].to_vec();
    g.bench_function("encode_100x100B_client", |b| {
        b.iter(|| black_box(encode_with(&mut buf, black_box(&value), true)))
    });
    g.bench_function("decode_100x100B", |b| {
        b.iter(|| {
            let (batch, _) = RecordBatch::decode(black_box(&encoded)).unwrap();
            batch
                .records
                .iter()
                .map(|r| r.value.map_or(0, <[u8]>::len))
                .sum::<usize>()
        })
    });
    g.finish();

    let mut g = c.benchmark_group("crc32c");
    g.throughput(Throughput::Bytes(len as u64));
    g.bench_function("same_bytes_as_batch", |b| {
        b.iter(|| crc32c(black_box(&encoded)))
    });
    // For comparison only: the same CRC with a 16-slice table (16 KiB of
    // tables instead of 1 KiB), the speed/flash trade-off a target could make.
    const CRC32C_SLICE16: crc::Crc<u32, crc::Table<16>> =
        crc::Crc::<u32, crc::Table<16>>::new(&crc::CRC_32_ISCSI);
    g.bench_function("slice16_for_comparison", |b| {
        b.iter(|| CRC32C_SLICE16.checksum(black_box(&encoded)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
