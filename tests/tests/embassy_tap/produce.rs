//! Records through `transport-embassy` over the TAP device: 10,000 exactly once; names
//! resolved and advertised addresses mapped; and the stack's plumbing alone.

use super::*;

/// What a producing run reports back from the executor thread.
pub(super) struct Run {
    pub(super) told: Vec<Told>,
    pub(super) flushed: bool,
    pub(super) counters: Counters,
    pub(super) elapsed: std::time::Duration,
}

/// Takes every outcome the producer has ready.
pub(super) fn drain(
    producer: &mut TapProducer<'_>,
    pending: &mut HashMap<(BatchToken, u32), usize>,
    told: &mut [Told],
) {
    while let Some(d) = producer.poll_delivery() {
        let i = pending
            .remove(&(d.receipt.batch, d.receipt.offset_delta))
            .unwrap_or_else(|| panic!("a delivery for no pending record: {d:?}"));
        assert!(told[i].outcome.is_none(), "record {i} got a second outcome");
        assert_eq!(told[i].partition, Some(d.receipt.partition));
        told[i].outcome = Some(d.outcome);
        told[i].offset = d.offset;
    }
}

/// On a fresh stack over `device`: a producer with `bootstrap` and `map_address` sends
/// records `0..n` to `topic`, each with a 20 s deadline, takes every outcome, flushes and
/// closes.
fn produce_over_tap(
    device: TunTapDevice,
    bootstrap: String,
    map_address: Option<MapAddress>,
    topic: &'static str,
    n: usize,
) -> Run {
    run_embassy(Duration::from_secs(120), move || {
        on_stack(device, async move |stack: Stack<'_>| {
            let started = std::time::Instant::now();
            let bootstrap = [bootstrap.as_str()];
            let topics = [topic];
            let mut config = ProducerConfig::new("embassy-tap", &bootstrap, &topics);
            config.client.batch_bytes = BATCH_BYTES;
            config.map_address = map_address;
            let mut buffers: [ConnectionBuffers<RX, TX>; BROKERS] =
                core::array::from_fn(|_| ConnectionBuffers::new());
            let mut producer: TapProducer<'_> = Producer::new(
                stack,
                config,
                vec![0u8; BATCHES * BATCH_BYTES],
                &mut buffers,
            )
            .expect("producer");
            let (told, flushed) = send_and_flush(
                &mut producer,
                topic,
                n,
                1_700_000_000_000,
                embassy_time::Duration::from_secs(20),
            )
            .await;
            Run {
                told,
                flushed,
                counters: producer.counters(),
                elapsed: started.elapsed(),
            }
        })
    })
}

/// Sends records `0..n` to `topic` through `producer`, each with a deadline `within` from
/// its send, takes every outcome, flushes (`within` and 10 s at most) and closes. Record
/// `i`'s timestamp is `timestamp_base + i` ms. Returns what the producer told of each record,
/// and whether the last flush reported everything decided.
pub(super) async fn send_and_flush(
    producer: &mut TapProducer<'_>,
    topic: &'static str,
    n: usize,
    timestamp_base: i64,
    within: embassy_time::Duration,
) -> (Vec<Told>, bool) {
    let mut told = vec![Told::default(); n];
    let mut pending = HashMap::new();
    for i in 0..n {
        let c = content(i);
        let headers = tests::records::header_refs(&c.headers);
        let record = ProducerRecord {
            topic,
            partition: None,
            key: Some(&c.key),
            value: Some(&c.value),
            headers: &headers,
            timestamp: Some(timestamp_base + i as i64),
        };
        let deadline = Instant::now() + within;
        let receipt = producer
            .send(&record, deadline)
            .await
            .unwrap_or_else(|e| panic!("record {i} refused: {e}"));
        assert!(
            pending
                .insert((receipt.batch, receipt.offset_delta), i)
                .is_none(),
            "receipt {receipt:?} handed out twice"
        );
        told[i].partition = Some(receipt.partition);
        drain(producer, &mut pending, &mut told);
    }
    let give_up = Instant::now() + within + embassy_time::Duration::from_secs(10);
    drain(producer, &mut pending, &mut told);
    let mut flushed = false;
    while !pending.is_empty() && Instant::now() < give_up {
        flushed = producer.flush(give_up).await;
        drain(producer, &mut pending, &mut told);
    }
    flushed |= producer.flush(Instant::now()).await;
    producer
        .close(Instant::now() + embassy_time::Duration::from_secs(2))
        .await;
    (told, flushed)
}

/// Checks a run and the log read back: every record persisted with an offset, and the log
/// holds each exactly once, intact, in the partition its receipt named, in send order per
/// partition (so per key), at the offset the producer reported.
pub(super) fn verify(run: &Run, log: &[Vec<ReadRecord>]) {
    assert_eq!(
        run.counters.retries, 0,
        "retries against a healthy broker: {:?}",
        run.counters
    );
    assert_eq!(
        (run.counters.fences, run.counters.producer_ids),
        (0, 1),
        "a healthy broker: no fence and one producer id (fences, ids): {:?}",
        run.counters
    );
    verify_exactly_once(run, log);
}

/// [`verify`] without its checks of a healthy broker (no retry, no fence): what a run
/// through cuts must still show.
pub(super) fn verify_exactly_once(run: &Run, log: &[Vec<ReadRecord>]) {
    let n = run.told.len();
    for (i, t) in run.told.iter().enumerate() {
        match t.outcome {
            Some(Outcome::Persisted { .. }) => {}
            other => panic!("record {i}: outcome {other:?}, expected Persisted"),
        }
        assert!(
            t.offset.is_some(),
            "record {i}: persisted without an offset"
        );
    }
    assert!(run.flushed, "flush did not report everything decided");
    let mut seen = vec![false; n];
    for (p, records) in log.iter().enumerate() {
        let p = p as i32;
        let mut previous: Option<usize> = None;
        for r in records {
            let i = index_of(r);
            assert!(i < n, "index {i} out of range");
            assert!(!seen[i], "record {i} is in the log twice");
            seen[i] = true;
            let c = content(i);
            assert_eq!(r.key.as_deref(), Some(&c.key[..]), "record {i}: key");
            assert_eq!(r.value.as_deref(), Some(&c.value[..]), "record {i}: value");
            assert_eq!(r.headers, c.headers, "record {i}: headers");
            assert_eq!(run.told[i].partition, Some(p), "record {i}: partition");
            // Kafka answers a retry with the original offsets; with no retry (checked by
            // `verify`), so are tansu's.
            assert_eq!(
                run.told[i].offset,
                Some(r.offset),
                "record {i}: the producer reported offset {:?}, the log has it at {} of \
                 partition {p}",
                run.told[i].offset,
                r.offset
            );
            if let Some(j) = previous {
                assert!(j < i, "partition {p}: record {i} after record {j}");
            }
            previous = Some(i);
        }
    }
    let missing: Vec<usize> = (0..n).filter(|&i| !seen[i]).collect();
    assert!(
        missing.is_empty(),
        "{} records reported persisted are not in the log (first: {:?})",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    for p in 0..PARTITIONS {
        assert!(
            !log[p as usize].is_empty(),
            "partition {p} got no records (keys spread over all three)"
        );
    }
}

#[test]
fn embassy_net_produces_10000_records_exactly_once_kafka() {
    embassy_net_produces_10000_records_exactly_once(BrokerKind::Kafka);
}

#[test]
fn embassy_net_produces_10000_records_exactly_once_tansu() {
    embassy_net_produces_10000_records_exactly_once(BrokerKind::Tansu);
}

fn embassy_net_produces_10000_records_exactly_once(kind: BrokerKind) {
    const N: usize = 10_000;
    const TOPIC: &str = "embassy-exact";
    let ns = NetNs::new();
    let broker = NsBroker::start(&ns, kind, None);
    broker.create_topic(TOPIC, PARTITIONS);
    let device = ns.open_tap();
    let run = produce_over_tap(device, broker.bootstrap(), None, TOPIC, N);
    eprintln!(
        "{}: produced {N} records over embassy-net in {:?}: {:?}",
        kind.name(),
        run.elapsed,
        run.counters
    );
    let started = std::time::Instant::now();
    let log = ns.run(|| {
        read_back(
            &broker.bootstrap(),
            TOPIC,
            PARTITIONS,
            N,
            Duration::from_secs(60),
        )
    });
    eprintln!(
        "read back {:?} records per partition in {:?}",
        log.iter().map(Vec::len).collect::<Vec<_>>(),
        started.elapsed()
    );
    verify(&run, &log);
}

/// Where the producer of `embassy_resolves_names_and_maps_advertised_addresses` finds the
/// broker that advertises `broker.kafka.internal:9999`.
fn map_advertised(host: &str, port: u16) -> Option<IpEndpoint> {
    (host == "broker.kafka.internal" && port == 9999)
        .then(|| IpEndpoint::new(IpAddress::Ipv4(BROKER_IP), PORT))
}

#[test]
fn embassy_resolves_names_and_maps_advertised_addresses_kafka() {
    embassy_resolves_names_and_maps_advertised_addresses(BrokerKind::Kafka);
}

#[test]
fn embassy_resolves_names_and_maps_advertised_addresses_tansu() {
    embassy_resolves_names_and_maps_advertised_addresses(BrokerKind::Tansu);
}

fn embassy_resolves_names_and_maps_advertised_addresses(kind: BrokerKind) {
    const N: usize = 1_000;
    const TOPIC: &str = "embassy-mapped";
    /// On the namespace's loopback, out of the embassy stack's reach: where the consumer
    /// finds the advertised name (a private /etc/hosts) and a forwarder to the broker.
    const CONSUMER_SIDE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
    let ns = NetNs::new();
    let broker = NsBroker::start(&ns, kind, Some("broker.kafka.internal:9999"));
    broker.create_topic(TOPIC, PARTITIONS);
    let dns = ns.dns_responder(&[("kafka.test", BROKER_IP)]);
    let device = ns.open_tap();
    let run = produce_over_tap(
        device,
        format!("kafka.test:{PORT}"),
        Some(map_advertised),
        TOPIC,
        N,
    );
    eprintln!(
        "{}: produced {N} records over embassy-net in {:?}: {:?}",
        kind.name(),
        run.elapsed,
        run.counters
    );
    let asked = dns.queries();
    assert!(
        asked.iter().any(|q| q == "kafka.test"),
        "the bootstrap name was never looked up: {asked:?}"
    );
    assert!(
        asked.iter().all(|q| q == "kafka.test"),
        "the producer looked up more than the bootstrap name (map_address not applied?): \
         {asked:?}"
    );
    let forwarder = ns.forward(
        SocketAddrV4::new(CONSUMER_SIDE, 9999),
        SocketAddrV4::new(BROKER_IP, PORT),
    );
    let log = ns.run_with_hosts(&[("broker.kafka.internal", CONSUMER_SIDE)], || {
        read_back(
            &broker.bootstrap(),
            TOPIC,
            PARTITIONS,
            N,
            Duration::from_secs(60),
        )
    });
    assert!(
        forwarder.connections() > 0,
        "the consumer never used the advertised address"
    );
    verify(&run, &log);
}

#[test]
fn embassy_stack_reaches_broker_and_dns_kafka() {
    embassy_stack_reaches_broker_and_dns(BrokerKind::Kafka);
}

#[test]
fn embassy_stack_reaches_broker_and_dns_tansu() {
    embassy_stack_reaches_broker_and_dns(BrokerKind::Tansu);
}

fn embassy_stack_reaches_broker_and_dns(kind: BrokerKind) {
    let ns = NetNs::new();
    let broker = NsBroker::start(&ns, kind, None);
    let dns = ns.dns_responder(&[("kafka.test", BROKER_IP)]);
    let device = ns.open_tap();
    let (resolved, unknown, response) = run_embassy(Duration::from_secs(30), move || {
        on_stack(device, async |stack: Stack<'_>| {
            let t = embassy_time::Duration::from_secs(5);
            let resolved = with_timeout(
                t,
                stack.dns_query("kafka.test", embassy_net::dns::DnsQueryType::A),
            )
            .await;
            let unknown = with_timeout(
                t,
                stack.dns_query("nowhere.test", embassy_net::dns::DnsQueryType::A),
            )
            .await;
            let mut rx = [0u8; 4096];
            let mut tx = [0u8; 4096];
            let mut socket = TcpSocket::new(stack, &mut rx, &mut tx);
            socket.set_timeout(Some(t));
            with_timeout(t, socket.connect((BROKER_IP, PORT)))
                .await
                .expect("connect timed out")
                .expect("connect");
            // ApiVersions v0, correlation id 7, client id "tap".
            let mut request = Vec::new();
            request.extend_from_slice(&13i32.to_be_bytes());
            request.extend_from_slice(&18i16.to_be_bytes());
            request.extend_from_slice(&0i16.to_be_bytes());
            request.extend_from_slice(&7i32.to_be_bytes());
            request.extend_from_slice(&3i16.to_be_bytes());
            request.extend_from_slice(b"tap");
            let mut sent = 0;
            while sent < request.len() {
                sent += socket.write(&request[sent..]).await.expect("write");
            }
            let mut response = Vec::new();
            let mut buf = [0u8; 1024];
            loop {
                if response.len() >= 4 {
                    let size = i32::from_be_bytes(response[..4].try_into().unwrap()) as usize;
                    if response.len() >= 4 + size {
                        break;
                    }
                }
                let n = with_timeout(t, socket.read(&mut buf))
                    .await
                    .expect("read timed out")
                    .expect("read");
                assert!(n > 0, "the broker closed the connection");
                response.extend_from_slice(&buf[..n]);
            }
            socket.close();
            let _ = with_timeout(t, socket.flush()).await;
            (resolved, unknown, response)
        })
    });
    let resolved = resolved
        .expect("kafka.test: DNS timed out")
        .expect("kafka.test");
    assert_eq!(resolved.as_slice(), [IpAddress::Ipv4(BROKER_IP)]);
    assert!(
        matches!(unknown, Ok(Err(_))),
        "nowhere.test resolved: {unknown:?}"
    );
    assert_eq!(&response[4..8], &7i32.to_be_bytes(), "correlation id");
    assert_eq!(&response[8..10], &0i16.to_be_bytes(), "error code");
    assert_eq!(dns.queries(), ["kafka.test", "nowhere.test"]);
    drop(dns);
    drop(broker);
    let name = ns.name().to_owned();
    drop(ns);
    assert!(!list_namespaces().contains(&name), "{name} still listed");
}
