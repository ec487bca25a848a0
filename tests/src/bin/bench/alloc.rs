//! Part 3: steady-state heap allocations of transport-std.

use super::*;
use crate::throughput;

/// Measures the part and writes its section.
pub(crate) fn run() {
    let warm_up = env_usize("BENCH_ALLOC_WARMUP", 50_000) as u64;
    let measured = env_usize("BENCH_ALLOC_RECORDS", 200_000) as u64;
    let topic = "bench-alloc";
    let tansu = Tansu::start();
    tansu.create_topic(topic, 3);
    let mut producer = Producer::new(ProducerConfig::new([tansu.bootstrap()], [topic]))
        .expect("valid configuration");
    let deadline = Instant::now() + Duration::from_secs(600);
    let (warm_persisted, _) = throughput::pump_ours(&mut producer, topic, warm_up, deadline);
    // Keep the warm-up's flush out of the count: it is not steady state, and neither is the
    // final flush below, so the measured stretch is sends and outcome draining only.
    SAMPLES_LEFT.store(10_000, Ordering::Relaxed);
    let value = [b'x'; VALUE_LEN];
    let (mut persisted, mut failed) = (0u64, 0u64);
    ALLOCATIONS.store(0, Ordering::Relaxed);
    ALLOCATED_BYTES.store(0, Ordering::Relaxed);
    COUNTING.with(|c| c.set(true));
    for _ in 0..measured {
        if producer
            .send(&ProducerRecord::value(topic, &value), deadline)
            .is_err()
        {
            break;
        }
        while let Some(d) = producer.poll_delivery() {
            match d.outcome {
                Outcome::Persisted { .. } => persisted += 1,
                _ => failed += 1,
            }
        }
    }
    COUNTING.with(|c| c.set(false));
    let allocations = ALLOCATIONS.load(Ordering::Relaxed);
    let bytes = ALLOCATED_BYTES.load(Ordering::Relaxed);
    producer.flush(deadline);
    while producer.poll_delivery().is_some() {}
    let mut samples = std::mem::take(&mut *SAMPLES.lock().unwrap());
    samples.sort_by_key(|s| std::cmp::Reverse(s.1));
    let sampled: u64 = samples.iter().map(|s| s.1).sum();
    let mut md = String::new();
    let _ = writeln!(
        md,
        "## Steady-state allocations (transport-std)\n\n\
         A counting global allocator (alloc, alloc_zeroed and realloc on the producing thread) \
         around {measured} records of {VALUE_LEN} bytes to tansu (3 partitions), after a \
         warm-up of {warm_up} records ({warm_persisted} persisted) and its flush; the \
         measured stretch is `send` plus draining `poll_delivery` (outcomes taken during it: \
         {persisted} persisted, {failed} other).\n\n\
         | records | allocations | bytes allocated | allocations per record |\n|---|---|---|---|\n\
         | {measured} | {allocations} | {bytes} | {:.6} |",
        allocations as f64 / measured as f64
    );
    if !samples.is_empty() {
        let _ = writeln!(
            md,
            "\nWhere they are asked for (the first 64 counted allocations, then one in \
             {SAMPLE_EVERY}, sampled with a backtrace; {sampled} samples; share of samples, mean size):\n"
        );
        for (site, hits, bytes) in &samples {
            let _ = writeln!(
                md,
                "- {:.0}%, {} bytes: {site}",
                100.0 * *hits as f64 / sampled as f64,
                bytes / hits
            );
        }
    }
    write_section("alloc", &md);
}
