//! The sequencer's pace against a broker that refuses forever: OUT_OF_ORDER_SEQUENCE_NUMBER
//! (45) on every batch, PRODUCER_FENCED (90) on every batch, a retriable refusal (19) on
//! every attempt, an InitProducerId that always fails. Each costs a trickle of requests and
//! fences bounded by the retry backoff, and every batch still gets its outcome by its
//! deadline.
//!
//! The bounds are derived from the configuration: the `k`-th consecutive wait is at least
//! three quarters (the largest jitter cut) of `retry_backoff × 2^(k-1)` capped at
//! `retry_backoff_max`, and the first fence of a series waits nothing.

#[allow(dead_code)]
#[path = "portable/mod.rs"]
mod portable;

use core::time::Duration;

use producer_core::ErrorCode;
use producer_core::backoff::Backoff;
use producer_core::state::{Config, Identity, Outcome, ProducerEpoch, ProducerId, UnknownOutcome};
use producer_core::time::Instant;

use portable::{P0, Seq, answered};

const STEP: Duration = Duration::from_millis(1);
const RUN: Duration = Duration::from_secs(5);

/// The most waits of the rule that fit in `run`, each at least 3/4 of its ceiling, when the
/// first `free` of them cost nothing: the most repetitions a paced loop can make.
fn most_repeats(rule: Backoff, run: Duration, free: u32) -> u32 {
    let mut spent = Duration::ZERO;
    let mut n = free;
    loop {
        let wait = rule.ceiling(n + 1 - free) * 3 / 4;
        if spent + wait > run {
            return n + 1;
        }
        spent += wait;
        n += 1;
    }
}

fn config(seed: u64) -> Config {
    Config {
        unknown_outcome: UnknownOutcome::FailAndFence,
        jitter_seed: seed,
        ..Config::default()
    }
}

/// Drives a sequencer for `RUN` in 1 ms steps against a broker that answers every produce
/// request with `code` at once, keeping one batch (1 s deadline) queued. Returns (produce
/// requests, producer ids granted, epoch bumps), after checking that every outcome came by
/// its deadline.
fn refuse_forever(code: ErrorCode, seed: u64) -> (u32, u64, u64) {
    let mut s = Seq::new(config(seed)).unwrap();
    let mut now = Instant::ZERO;
    let mut next_id = 1;
    let mut sends = 0;
    let mut deadlines = std::collections::HashMap::new();
    while now.as_micros() < RUN.as_micros() as u64 {
        s.poll(now);
        if s.poll_init_producer_id(now) {
            s.on_init_producer_id(now, Ok((ProducerId(next_id), ProducerEpoch(0))));
            next_id += 1;
        }
        if s.is_decided() {
            let deadline = now + Duration::from_secs(1);
            let t = s.enqueue(P0, 1, deadline).unwrap();
            deadlines.insert(t, deadline);
        }
        if let Some(p) = s.next_send(P0, now) {
            sends += 1;
            s.on_produce_result(p.token, now, answered(code, -1))
                .unwrap();
        }
        while let Some(d) = s.poll_event() {
            assert!(now <= deadlines[&d.token], "outcome after the deadline");
            assert!(!matches!(d.outcome, Outcome::Persisted { .. }));
        }
        now = now + STEP;
    }
    let c = s.counters();
    (sends, c.producer_ids, c.epoch_bumps)
}

#[test]
fn out_of_order_forever_costs_a_paced_trickle_of_requests_and_bumps() {
    let rule = Config::default().retry_rule();
    let bound = most_repeats(rule, RUN, 1);
    for seed in 0..20 {
        let (sends, ids, bumps) = refuse_forever(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER, seed);
        assert_eq!(ids, 1, "a bump per fence, no new producer id");
        // Unpaced, this was one request and one bump per millisecond step (5,000).
        assert!(bumps <= u64::from(bound), "{bumps} bumps, bound {bound}");
        assert!(sends <= bound + 1, "{sends} requests, bound {bound}");
        assert!(bumps >= 5, "the trickle goes on: {bumps} bumps");
    }
}

#[test]
fn producer_fenced_forever_paces_the_new_producer_ids() {
    let rule = Config::default().retry_rule();
    let bound = most_repeats(rule, RUN, 1);
    for seed in 0..20 {
        let (sends, ids, _) = refuse_forever(ErrorCode::PRODUCER_FENCED, seed);
        assert!(
            ids <= u64::from(bound) + 1,
            "{ids} producer ids, bound {bound}"
        );
        assert!(sends <= bound + 1, "{sends} requests, bound {bound}");
    }
}

#[test]
fn a_retriable_refusal_forever_resends_at_the_backoff_pace() {
    // 19 NOT_ENOUGH_REPLICAS: resent with the same stamp, no fence; each batch lives 1 s.
    let rule = Config::default().retry_rule();
    for seed in 0..20 {
        let (sends, ids, bumps) = refuse_forever(ErrorCode::NOT_ENOUGH_REPLICAS, seed);
        // Per batch of 1 s: its first send, then resends spaced by the growing backoff; at
        // its deadline its stamp is given up, which costs one fence.
        let per_batch = most_repeats(rule, Duration::from_secs(1), 1);
        let batches = RUN.as_secs() as u32 + 1;
        assert_eq!(ids, 1);
        assert!(bumps <= u64::from(batches), "{bumps} bumps");
        assert!(sends <= per_batch * batches, "{sends} requests");
    }
}

#[test]
fn init_producer_id_failing_forever_is_asked_at_the_backoff_pace() {
    let rule = Config::default().retry_rule();
    let bound = most_repeats(rule, RUN, 1);
    for seed in 0..20 {
        let mut s = Seq::new(config(seed)).unwrap();
        let mut now = Instant::ZERO;
        let mut asked = 0;
        while now.as_micros() < RUN.as_micros() as u64 {
            s.poll(now);
            if s.poll_init_producer_id(now) {
                asked += 1;
                s.on_init_producer_id(now, Err(Some(ErrorCode::COORDINATOR_NOT_AVAILABLE)));
            }
            now = now + STEP;
        }
        assert!(matches!(s.identity(), Identity::NoId { .. }));
        assert!(
            asked <= bound && asked >= 5,
            "{asked} requests, bound {bound}"
        );
    }
}
