//! A three-node Apache Kafka cluster that loses brokers while records flow: a topic with 6
//! partitions, replication factor 3, `min.insync.replicas=2`, acks=all, keyed records. Each
//! run is read back by an independent consumer (librdkafka) and checked: every record at
//! most once, in send order per partition, every outcome true, every reported offset where
//! the record is.
//!
//! - `leader_killed_and_restarted`: the node leading most partitions is SIGKILLed mid-run
//!   and started again later; every record persists exactly once.
//! - `rolling_restart`: each node in turn SIGTERMed (a controlled shutdown hands its
//!   leaderships over while produce requests wait for their acks) and started again.
//! - `two_of_three_down_past_the_deadlines`: two brokers down for longer than the records'
//!   deadlines (one controller, so the quorum survives and shrinks the in-sync replica sets:
//!   NOT_ENOUGH_REPLICAS, lost leaders); under `FailAndFence` every record gets its outcome
//!   by its deadline and none is false; brought back, the rest persists.
//! - `leadership_moves_while_records_flow`: the replica order of every partition is rotated
//!   by a reassignment and a preferred-leader election moves the leaders, twice.
//! - `more_leaders_than_connections`: a producer with two connection slots writes to
//!   partitions led by all three nodes.
//!
//! Every fault is on a fixed schedule, from a thread of its own while the test's thread
//! produces.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use producer_core::state::{OutcomeKind, UnknownOutcome};
use tests::kafka::Kafka;
use tests::records::{Run, Verified, produce_all, produce_until, verify};
use tests::{ReadRecord, read_back};
use transport_std::{Producer, ProducerConfig};

const PARTITIONS: i32 = 6;

/// Three nodes, each broker and controller (or one controller, for the quorum to survive
/// two brokers going).
fn cluster(controllers: usize) -> Kafka {
    Kafka::builder(3).controllers(controllers).start()
}

fn create_topic(kafka: &Kafka, topic: &str) {
    kafka.create_topic_with(topic, PARTITIONS, 3, &[("min.insync.replicas", "2")]);
    eprintln!("{topic}: {:?}", kafka.partitions(topic));
}

fn config(kafka: &Kafka, topic: &str, policy: UnknownOutcome) -> ProducerConfig<'static> {
    let mut config = ProducerConfig::new(kafka.bootstrap_all(), [topic]);
    config.client.producer.unknown_outcome = policy;
    // Small batches: many requests in flight when a broker goes.
    config.client.batch_bytes = 8 * 1024;
    config
}

/// Records flow (at most `max`, one every `interval`, each with `deadline`) while `faults`
/// runs on another thread; sending stops `tail` after `faults` returns. Then the topic is
/// read back and verified with exact offsets.
#[allow(clippy::too_many_arguments)]
fn flowing(
    kafka: &Kafka,
    producer: &mut Producer,
    topic: &str,
    max: usize,
    interval: Duration,
    deadline: Duration,
    tail: Duration,
    faults: impl FnOnce(&Kafka) + Send,
) -> (Run, Verified, Vec<Vec<ReadRecord>>) {
    let stop = AtomicBool::new(false);
    let run = thread::scope(|s| {
        let stop = &stop;
        let schedule = s.spawn(move || {
            faults(kafka);
            thread::sleep(tail);
            stop.store(true, Ordering::Relaxed);
        });
        let run = produce_until(producer, topic, max, deadline, Some(interval), Some(stop));
        if let Err(p) = schedule.join() {
            std::panic::resume_unwind(p);
        }
        run
    });
    let (v, log) = check(kafka, topic, &run);
    (run, v, log)
}

/// Reads `topic` back once its replicas are in sync again and verifies it against what
/// `run` was told, offsets exact.
fn check(kafka: &Kafka, topic: &str, run: &Run) -> (Verified, Vec<Vec<ReadRecord>>) {
    let persisted = run.count(OutcomeKind::Persisted);
    eprintln!(
        "{topic}: {} records sent in {:.1} s: {persisted} persisted, {} not persisted, {} possibly \
         persisted; {} retries, {} epoch bumps, {} producer ids",
        run.told.len(),
        run.elapsed.as_secs_f64(),
        run.count(OutcomeKind::NotPersisted),
        run.count(OutcomeKind::PossiblyPersisted),
        run.retries,
        run.epoch_bumps,
        run.producer_ids
    );
    assert!(
        kafka.wait_in_sync(topic, Duration::from_secs(60)),
        "{topic}: replicas not back in sync: {:?}",
        kafka.partitions(topic)
    );
    let log = read_back(
        &kafka.bootstrap(),
        topic,
        PARTITIONS,
        persisted,
        Duration::from_secs(120),
    );
    let v = verify(&log, &run.told, true);
    eprintln!(
        "{topic}: verified: {} persisted, {} not persisted, {} possibly persisted ({} in the log)",
        v.persisted, v.not_persisted, v.possibly, v.possibly_present
    );
    (v, log)
}

/// Every record sent is in the log exactly once where it was reported persisted, and the
/// fences (if any) needed no new producer id. A record may end `PossiblyPersisted` only after
/// a fence (verified true by `verify`: in the log at most once): when leadership moves under
/// load, Kafka's new leader can lack a batch the old one appended and answered
/// NOT_LEADER_OR_FOLLOWER for (the old leader truncates it), and a retry answered
/// OUT_OF_ORDER_SEQUENCE_NUMBER after a "maybe appended" leaves no way to tell. Seen once in a
/// loaded run (166 of 194,588 records, none in the log); never `NotPersisted`.
fn assert_all_persisted(topic: &str, run: &Run, v: &Verified, log: &[Vec<ReadRecord>]) {
    let n = run.told.len();
    assert!(n > 0, "{topic}: nothing was sent");
    assert_eq!(
        v.not_persisted, 0,
        "{topic}: no record is given up as not persisted"
    );
    assert_eq!(
        v.persisted + v.possibly,
        n,
        "{topic}: every record persists, or possibly persists after a fence"
    );
    assert!(
        v.possibly == 0 || run.epoch_bumps > 0,
        "{topic}: {} records possibly persisted without a fence",
        v.possibly
    );
    assert_eq!(
        log.iter().map(Vec::len).sum::<usize>(),
        v.persisted + v.possibly_present,
        "{topic}: the log holds each record once"
    );
    assert_eq!(
        run.producer_ids, 1,
        "{topic}: Kafka accepts a local epoch bump; no new producer id is needed"
    );
}

#[test]
fn leader_killed_and_restarted() {
    let kafka = cluster(3);
    let topic = "leader-killed";
    create_topic(&kafka, topic);
    let mut producer =
        Producer::new(config(&kafka, topic, UnknownOutcome::FailAndFence)).expect("producer");
    let (run, v, log) = flowing(
        &kafka,
        &mut producer,
        topic,
        1_000_000,
        Duration::from_micros(500),
        Duration::from_secs(60),
        Duration::from_secs(3),
        |kafka| {
            thread::sleep(Duration::from_secs(3));
            let leader = kafka.busiest_leader(topic);
            eprintln!("{topic}: killing node {leader}, the busiest leader");
            kafka.kill(leader);
            thread::sleep(Duration::from_secs(6));
            eprintln!("{topic}: after the kill: {:?}", kafka.partitions(topic));
            kafka.start(leader);
        },
    );
    drop(producer);
    assert_all_persisted(topic, &run, &v, &log);
}

#[test]
fn rolling_restart() {
    let kafka = cluster(3);
    let topic = "rolling";
    create_topic(&kafka, topic);
    let mut producer =
        Producer::new(config(&kafka, topic, UnknownOutcome::FailAndFence)).expect("producer");
    let (run, v, log) = flowing(
        &kafka,
        &mut producer,
        topic,
        1_000_000,
        Duration::from_micros(500),
        Duration::from_secs(60),
        Duration::from_secs(3),
        |kafka| {
            thread::sleep(Duration::from_secs(2));
            for node in kafka.node_ids() {
                eprintln!("{topic}: stopping node {node} (SIGTERM)");
                kafka.stop(node);
                thread::sleep(Duration::from_secs(1));
                kafka.start(node);
                assert!(
                    kafka.wait_in_sync(topic, Duration::from_secs(60)),
                    "node {node} did not catch up"
                );
                eprintln!(
                    "{topic}: node {node} back in sync: {:?}",
                    kafka.partitions(topic)
                );
            }
        },
    );
    drop(producer);
    assert_all_persisted(topic, &run, &v, &log);
}

#[test]
fn leadership_moves_while_records_flow() {
    let kafka = cluster(3);
    let topic = "moving";
    create_topic(&kafka, topic);
    let mut producer =
        Producer::new(config(&kafka, topic, UnknownOutcome::FailAndFence)).expect("producer");
    let (run, v, log) = flowing(
        &kafka,
        &mut producer,
        topic,
        1_000_000,
        Duration::from_micros(500),
        Duration::from_secs(60),
        Duration::from_secs(3),
        |kafka| {
            for round in 0..2 {
                thread::sleep(Duration::from_secs(3));
                let before = kafka.partitions(topic);
                // The same replicas, each list rotated by one: the preferred leader moves.
                let assignment: Vec<(i32, Vec<i32>)> = before
                    .iter()
                    .map(|p| {
                        let mut r = p.replicas.clone();
                        r.rotate_left(1);
                        (p.partition, r)
                    })
                    .collect();
                kafka.reassign(topic, &assignment);
                kafka.elect_preferred_leaders(topic);
                let after = kafka.partitions(topic);
                let moved = before
                    .iter()
                    .zip(&after)
                    .filter(|(b, a)| b.leader != a.leader)
                    .count();
                eprintln!("{topic}: round {round}: {moved} leaders moved: {after:?}");
                assert!(moved > 0, "round {round}: no leader moved");
            }
        },
    );
    drop(producer);
    assert_all_persisted(topic, &run, &v, &log);
}

#[test]
fn two_of_three_down_past_the_deadlines() {
    const DEADLINE: Duration = Duration::from_secs(2);
    // Node 1 is the only controller: with nodes 2 and 3 gone it fences them, shrinks every
    // in-sync replica set to itself and leads every partition, and acks=all produce is
    // refused with NOT_ENOUGH_REPLICAS.
    let kafka = cluster(1);
    let topic = "two-down";
    create_topic(&kafka, topic);
    let mut config = config(&kafka, topic, UnknownOutcome::FailAndFence);
    // Few, fuller batches: while no partition can be written, the batches of a deadline's
    // worth of records must fit the producer's slots, or `send` would block waiting for one
    // and the test could not take outcomes meanwhile.
    config.client.linger = Duration::from_millis(100);
    let mut producer = Producer::new(config).expect("producer");
    let back = std::sync::Mutex::new(None::<Instant>);
    let (run, v, _log) = flowing(
        &kafka,
        &mut producer,
        topic,
        1_000_000,
        Duration::from_millis(2),
        DEADLINE,
        Duration::from_secs(6),
        |kafka| {
            thread::sleep(Duration::from_secs(2));
            kafka.kill(2);
            kafka.kill(3);
            // Down for four deadlines.
            thread::sleep(Duration::from_secs(5));
            eprintln!("{topic}: nodes 2 and 3 down: {:?}", kafka.partitions(topic));
            thread::sleep(Duration::from_secs(3));
            kafka.start(2);
            kafka.start(3);
            *back.lock().unwrap() = Some(Instant::now());
        },
    );
    drop(producer);
    let back = back.lock().unwrap().expect("nodes restarted");
    // Every outcome by its deadline, plus the time the test takes to take it: on a machine
    // loaded by three JVMs restarting, that has been above 250 ms. A second is still far
    // below what a producer that waited for its request timeout (10 s) would show.
    let mut late = Vec::new();
    for (i, t) in run.told.iter().enumerate() {
        let (Some(deadline), Some(decided)) = (t.deadline, t.decided_at) else {
            panic!("record {i} has no outcome");
        };
        if decided > deadline + Duration::from_secs(1) {
            late.push((i, decided - deadline, t.outcome));
        }
    }
    assert!(
        late.is_empty(),
        "{} outcomes came after their deadline, first {:?}",
        late.len(),
        &late[..late.len().min(5)]
    );
    let failed = v.not_persisted + v.possibly;
    assert!(
        failed > 0,
        "{topic}: nothing failed while two brokers were down"
    );
    // Brought back: records sent once the cluster had its replicas again all persist.
    let settled = back + Duration::from_secs(1);
    let late_failures: Vec<usize> = run
        .told
        .iter()
        .enumerate()
        .filter(|(_, t)| {
            t.sent_at.is_some_and(|s| s > settled) && t.outcome != Some(OutcomeKind::Persisted)
        })
        .map(|(i, _)| i)
        .collect();
    let after = run
        .told
        .iter()
        .filter(|t| t.sent_at.is_some_and(|s| s > settled))
        .count();
    assert!(
        after > 0,
        "{topic}: nothing was sent after the nodes came back"
    );
    assert!(
        late_failures.is_empty(),
        "{topic}: {} of {after} records sent after the nodes came back did not persist (first {:?})",
        late_failures.len(),
        &late_failures[..late_failures.len().min(5)]
    );
}

#[test]
fn more_leaders_than_connections() {
    let kafka = cluster(3);
    let topic = "two-slots";
    create_topic(&kafka, topic);
    let leaders: std::collections::BTreeSet<i32> =
        kafka.partitions(topic).iter().map(|p| p.leader).collect();
    assert_eq!(leaders.len(), 3, "the topic's leaders span all three nodes");
    let mut config = config(&kafka, topic, UnknownOutcome::Wait);
    // The bootstrap list shares the two slots' capacity: one address, as a gateway
    // configured with a cluster's DNS name would have.
    config.bootstrap.truncate(1);
    config.brokers = 2;
    let mut producer = Producer::new(config).expect("producer");
    let run = produce_all(
        &mut producer,
        topic,
        20_000,
        Duration::from_secs(60),
        Some(Duration::from_micros(200)),
    );
    drop(producer);
    let (v, log) = check(&kafka, topic, &run);
    assert_all_persisted(topic, &run, &v, &log);
}
