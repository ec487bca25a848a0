//! One hostile case against transport-embassy: embassy-net on the TAP device of a namespace of
//! the case's own, the fake broker on the kernel side ([`BROKER_IP`]), a producer with the
//! gateway's capacities (1 topic, 4 partitions, 16 batches, 2 connection slots) sending
//! [`RECORDS`] records that share one deadline. The same checks as the tool's cases, with
//! each outcome's own arrival checked against deadline + [`OUTCOME_SLACK`]; memory is not
//! measured (the producer allocates nothing: its batches and buffers are the ones given).

use std::collections::HashMap;
use std::net::TcpListener;
use std::time::Duration;

use embassy_futures::select::{Either, select};
use embassy_net::{Config, Ipv4Cidr, Stack, StackResources, StaticConfigV4};
use embassy_net_tuntap::TunTapDevice;
use embassy_time::Instant;
use producer_core::client::ProducerRecord;
use producer_core::state::Outcome;
use transport_embassy::{ConnectionBuffers, Fixed, Producer, ProducerConfig};

use super::bounds::{defaults, reconnects_within};
use super::broker::{FakeBroker, TOPIC};
use super::ledger::{Reported, check_outcomes};
use super::tool_case::{DEADLINE, LONG_DEADLINE, PORT, Target, value};
use super::verdict::{Bounds, Expect, OUTCOME_SLACK};
use crate::netns::{BROKER_IP, NetNs, PREFIX_LEN, STACK_IP, run_embassy};

/// Records per case.
pub const RECORDS: usize = 20;
const BATCHES: usize = 16;
const BROKERS: usize = 2;
const BATCH_BYTES: usize = 2048;
/// Receive window and largest response frame; send window and largest request.
const RX: usize = 8 * 1024;
const TX: usize = 4 * 1024;

type TapProducer<'d> = Producer<'d, Vec<u8>, Fixed<1, 4, BATCHES, BROKERS>>;

/// What the run on the executor thread reports.
struct Run {
    outcomes: Vec<Option<Reported>>,
    /// How long after the shared deadline the last outcome came (zero if before).
    late: Duration,
    elapsed: Duration,
    counters: String,
}

async fn on_stack<T>(device: TunTapDevice, work: impl AsyncFnOnce(Stack<'_>) -> T) -> T {
    let config = Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(STACK_IP, PREFIX_LEN),
        gateway: None,
        dns_servers: [BROKER_IP].into_iter().collect(),
    });
    let mut resources = StackResources::<8>::new();
    let (stack, mut runner) = embassy_net::new(device, config, &mut resources, rand::random());
    let work = async {
        stack.wait_config_up().await;
        work(stack).await
    };
    match select(runner.run(), work).await {
        Either::First(never) => never,
        Either::Second(out) => out,
    }
}

/// Notes one delivery: the outcome of the record its receipt names, and its time in `last`.
fn note(
    d: transport_embassy::RecordDelivery,
    pending: &mut HashMap<(producer_core::state::BatchToken, u32), usize>,
    outcomes: &mut [Option<Reported>],
    last: &mut Instant,
) {
    let i = pending
        .remove(&(d.receipt.batch, d.receipt.offset_delta))
        .expect("an outcome for no pending record");
    assert!(outcomes[i].is_none(), "record {i} got a second outcome");
    outcomes[i] = Some(match d.outcome {
        Outcome::Persisted { .. } => Reported::Persisted {
            partition: d.receipt.partition,
            offset: d.offset.unwrap_or(-1),
        },
        Outcome::NotPersisted(_) => Reported::NotPersisted,
        Outcome::PossiblyPersisted(_) => Reported::PossiblyPersisted,
    });
    *last = Instant::now();
}

fn produce_over_tap(device: TunTapDevice, bootstrap: String, deadline: Duration) -> Run {
    run_embassy(deadline + Duration::from_secs(20), move || {
        on_stack(device, async move |stack: Stack<'_>| {
            let started = std::time::Instant::now();
            let bootstrap = [bootstrap.as_str()];
            let topics = [TOPIC];
            let mut config = ProducerConfig::new("hostile-embassy", &bootstrap, &topics);
            config.client.batch_bytes = BATCH_BYTES;
            config.client.reconnect_backoff = defaults::RECONNECT_BACKOFF;
            config.client.reconnect_backoff_max = defaults::RECONNECT_BACKOFF_MAX;
            let mut buffers: [ConnectionBuffers<RX, TX>; BROKERS] =
                core::array::from_fn(|_| ConnectionBuffers::new());
            let mut producer: TapProducer<'_> = Producer::new(
                stack,
                config,
                vec![0u8; BATCHES * BATCH_BYTES],
                &mut buffers,
            )
            .expect("producer");
            let due =
                Instant::now() + embassy_time::Duration::from_millis(deadline.as_millis() as u64);
            let mut outcomes: Vec<Option<Reported>> = vec![None; RECORDS];
            let mut pending = HashMap::new();
            let mut last = Instant::now();
            for i in 0..RECORDS {
                let v = value(i);
                let record = ProducerRecord {
                    topic: TOPIC,
                    partition: None,
                    key: None,
                    value: Some(&v),
                    headers: &[],
                    timestamp: Some(1_700_000_000_000 + i as i64),
                };
                match producer.send(&record, due).await {
                    Ok(receipt) => {
                        let before = pending.insert((receipt.batch, receipt.offset_delta), i);
                        assert!(before.is_none(), "receipt {receipt:?} handed out twice");
                    }
                    // Never accepted, so never sent: not persisted, and known so at once.
                    Err(_) => {
                        outcomes[i] = Some(Reported::NotPersisted);
                        last = Instant::now();
                    }
                }
                while let Some(d) = producer.poll_delivery() {
                    note(d, &mut pending, &mut outcomes, &mut last);
                }
            }
            let slack = embassy_time::Duration::from_millis(OUTCOME_SLACK.as_millis() as u64);
            let give_up = due + slack + embassy_time::Duration::from_secs(5);
            while !pending.is_empty() && Instant::now() < give_up {
                // `next_delivery` hands out the outcome it waited for (the first record of
                // the batch just decided): note it, then the rest `poll_delivery` has ready.
                if let Some(d) = producer.next_delivery(give_up).await {
                    note(d, &mut pending, &mut outcomes, &mut last);
                }
                while let Some(d) = producer.poll_delivery() {
                    note(d, &mut pending, &mut outcomes, &mut last);
                }
            }
            let elapsed = started.elapsed();
            if !pending.is_empty() {
                eprintln!("no outcome handed out for (receipt, record): {pending:?}");
            }
            producer
                .close(Instant::now() + embassy_time::Duration::from_millis(200))
                .await;
            Run {
                outcomes,
                late: Duration::from_millis(last.saturating_duration_since(due).as_millis()),
                elapsed,
                counters: format!("{:?}", producer.counters()),
            }
        })
    })
}

/// Runs one case over the TAP device and panics with every check that failed.
pub fn run_embassy_case(name: &str, target: Target, expect: Expect) {
    let deadline = if expect == Expect::AllPersisted {
        LONG_DEADLINE
    } else {
        DEADLINE
    };
    let ns = NetNs::new();
    let broker = match target {
        Target::Broker(m) => {
            let listener = ns
                .run(|| TcpListener::bind((BROKER_IP, PORT)))
                .expect("bind the fake broker in the namespace");
            Some(FakeBroker::start(listener, m))
        }
        _ => None,
    };
    let dns = matches!(target, Target::Unresolvable).then(|| ns.dns_responder(&[]));
    let bootstrap = match target {
        Target::Unresolvable => format!("no-such-host.invalid:{PORT}"),
        _ => format!("{BROKER_IP}:{PORT}"),
    };
    let device = ns.open_tap();
    let run = produce_over_tap(device, bootstrap, deadline);
    let (counts, ledger) = broker.map(FakeBroker::finish).unwrap_or_default();
    let queries = dns.as_ref().map(|d| d.queries().len() as u64);

    let mut failed = Vec::new();
    let values: Vec<Vec<u8>> = (0..RECORDS).map(value).collect();
    let missing = run.outcomes.iter().filter(|o| o.is_none()).count();
    if missing > 0 {
        failed.push(format!("{missing} records got no outcome"));
    }
    if run.late > OUTCOME_SLACK {
        failed.push(format!(
            "the last outcome came {:?} after the deadline (slack {OUTCOME_SLACK:?})",
            run.late
        ));
    }
    let outcomes: Vec<Reported> = run
        .outcomes
        .iter()
        .map(|o| o.unwrap_or(Reported::PossiblyPersisted))
        .collect();
    let tally = match check_outcomes(&ledger, &values, &outcomes) {
        Ok(t) => {
            if let Err(e) = expect.check(t, RECORDS) {
                failed.push(e);
            }
            Some(t)
        }
        Err(e) => {
            failed.push(e);
            None
        }
    };
    let misbehaviour = match target {
        Target::Broker(m) => Some(m),
        _ => None,
    };
    let bounds = Bounds::new(run.elapsed, misbehaviour, &counts);
    failed.extend(bounds.check(&counts, None));
    if let Some(q) = queries {
        // embassy-net's resolver asks for A once per lookup (twice if it retransmits);
        // lookups are connection attempts to the bootstrap entry, paced by its reconnect
        // backoff.
        let bound = 2 * reconnects_within(run.elapsed) + 2;
        if q > bound {
            failed.push(format!("DNS queries: {q} > bound {bound}"));
        }
    }
    eprintln!(
        "hostile embassy case {name}: {} | ran {:?}, last outcome {:?} after the deadline, \
         outcomes {tally:?} | connections {}, requests {:?}, max attempts per batch {} over {} \
         batches, epoch bumps {}, DNS queries {queries:?}, undecodable {} | counters {} | \
         bounds {bounds:?}",
        if failed.is_empty() { "PASS" } else { "FAIL" },
        run.elapsed,
        run.late,
        counts.connections,
        counts.requests,
        counts.max_attempts(),
        counts.batches(),
        counts.epoch_bumps,
        counts.undecodable,
        run.counters,
    );
    assert!(
        failed.is_empty(),
        "hostile embassy case {name} failed:\n- {}",
        failed.join("\n- ")
    );
}
