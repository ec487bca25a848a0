//! The power cut: a gateway with the durable store on a (file) flash.

use super::*;

/// Readings of the power-cut test.
const READINGS: usize = 5_000;
/// Sensors: reading `i` comes from sensor `i % SENSORS`, its key.
const SENSORS: usize = 5;
/// Batch size of the power-cut test: small, so that the readings fill many batches and the
/// cut finds some in every state.
const CUT_BATCH_BYTES: usize = 1024;
/// Readings that arrive at once just before the cut (a backlog), sent without waiting and
/// without taking outcomes, so that when the power goes some batches are decided and not
/// handed out, and the last ones, sealed by a flush with no time to wait, sent (appended by
/// the broker, their answers never read).
const QUIET: usize = 800;
/// How long the stack runs after the backlog, with the producer idle, before the cut.
const CUT_AFTER: embassy_time::Duration = embassy_time::Duration::from_millis(20);

type Store = FlashStore<BlockingAsync<FileFlash>, Vec<u8>>;
type DurableTapProducer<'d> = Producer<'d, Vec<u8>, Fixed<1, 3, BATCHES, BROKERS>, Store>;

/// Reading `i`: key `sensor-<i % 5>`, value the reading number in decimal.
fn reading(i: usize) -> (Vec<u8>, Vec<u8>) {
    (
        format!("sensor-{}", i % SENSORS).into_bytes(),
        i.to_string().into_bytes(),
    )
}

/// The reading a record read back is, checked against its key.
fn reading_of(r: &ReadRecord) -> usize {
    let i: usize = r
        .value
        .as_deref()
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse().ok())
        .filter(|&i| i < READINGS)
        .unwrap_or_else(|| panic!("a record we never sent: {r:?}"));
    assert_eq!(
        r.key.as_deref(),
        Some(&reading(i).0[..]),
        "reading {i}: wrong key"
    );
    assert!(r.headers.is_empty(), "reading {i}: headers {:?}", r.headers);
    i
}

/// A record's outcome as handed out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Fate {
    outcome: Outcome,
    offset: Option<i64>,
}

/// Where the gateway is with one reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reading {
    /// Not sent yet.
    Unsent,
    /// Sent, neither durable nor decided yet: the gateway keeps it (it would be lost with
    /// the gateway's RAM otherwise).
    Held,
    /// Its batch was reported durable (`client().is_durable`): the gateway let go of it.
    Durable,
    /// Its outcome came.
    Decided(Fate),
}

/// What the gateway application knows, in memory that (unlike the producer's) survives the
/// power cut: in a real gateway, the readings it keeps are its own persistent queue.
struct Gateway {
    state: Vec<Reading>,
    /// The partition each reading's receipt named.
    partition: Vec<Option<i32>>,
    /// Reported durable at some point.
    ever_durable: Vec<bool>,
    /// Where the readings of the life before the cut sit: (batch tag, offset delta) ->
    /// reading. Each batch is tagged with the reading that opened it.
    places: HashMap<(u64, u32), usize>,
}

impl Gateway {
    fn new() -> Gateway {
        Gateway {
            state: vec![Reading::Unsent; READINGS],
            partition: vec![None; READINGS],
            ever_durable: vec![false; READINGS],
            places: HashMap::new(),
        }
    }

    fn count(&self, f: impl Fn(&Reading) -> bool) -> usize {
        self.state.iter().filter(|s| f(s)).count()
    }
}

/// One life of the gateway: what it learns between two boots.
#[derive(Default)]
struct Life {
    /// This life's receipts: (batch, offset delta) -> reading.
    receipts: HashMap<(BatchToken, u32), usize>,
    /// This life's batches by tag: (tag, offset delta) -> reading.
    places: HashMap<(u64, u32), usize>,
    /// The tag of each batch opened in this life.
    tags: HashMap<BatchToken, u64>,
    /// Batches holding readings the gateway still keeps.
    held: HashMap<BatchToken, Vec<usize>>,
    /// Readings decided in this life.
    decided: HashSet<usize>,
    /// Times `send` said every slot held an outcome to take.
    slot_waits: usize,
    sent: usize,
    deliveries: usize,
    /// Deliveries of readings already decided before the cut (handed out again).
    repeated: usize,
}

/// Sends reading `i`, tagging the batch it may open with `i`.
async fn send_reading(
    producer: &mut DurableTapProducer<'_>,
    gateway: &mut Gateway,
    life: &mut Life,
    topic: &str,
    i: usize,
) {
    let (key, value) = reading(i);
    let record = ProducerRecord {
        topic,
        partition: None,
        key: Some(&key),
        value: Some(&value),
        headers: &[],
        timestamp: Some(1_700_000_000_000 + i as i64),
    };
    let deadline = Instant::now() + embassy_time::Duration::from_secs(60);
    // A durable producer keeps decided batches in their slots until their outcomes are
    // taken: when every slot holds one, `send` says so (`Send(Full)`) and the outcomes are
    // taken before trying again.
    let receipt = loop {
        match producer.send_tagged(&record, i as u64, deadline).await {
            Ok(receipt) => break receipt,
            Err(TapError::Send(SendError::Full)) => {
                assert!(
                    Instant::now() < deadline,
                    "reading {i}: no batch slot before its deadline"
                );
                life.slot_waits += 1;
                take_deliveries(producer, gateway, life);
                note_durable(producer, gateway, life);
            }
            Err(e) => panic!("reading {i} refused: {e}"),
        }
    };
    let tag = if receipt.offset_delta == 0 {
        life.tags.insert(receipt.batch, i as u64);
        i as u64
    } else {
        *life
            .tags
            .get(&receipt.batch)
            .unwrap_or_else(|| panic!("reading {i} joined a batch never opened: {receipt:?}"))
    };
    let at = (receipt.batch, receipt.offset_delta);
    assert!(
        life.receipts.insert(at, i).is_none(),
        "receipt {receipt:?} handed out twice"
    );
    assert!(
        life.places.insert((tag, receipt.offset_delta), i).is_none(),
        "two records at offset {} of batches tagged {tag}",
        receipt.offset_delta
    );
    let partition = gateway.partition[i].get_or_insert(receipt.partition);
    assert_eq!(
        *partition, receipt.partition,
        "reading {i} resent to another partition"
    );
    gateway.state[i] = Reading::Held;
    life.held.entry(receipt.batch).or_default().push(i);
    life.sent += 1;
}

/// Takes every outcome the producer has ready.
fn take_deliveries(producer: &mut DurableTapProducer<'_>, gateway: &mut Gateway, life: &mut Life) {
    while let Some(d) = producer.poll_delivery() {
        take_delivery(d, gateway, life);
    }
}

/// Takes one record's outcome. Records of batches restored at boot are found by their
/// batch's tag in what the gateway remembers of the life before.
fn take_delivery(d: RecordDelivery, gateway: &mut Gateway, life: &mut Life) {
    life.deliveries += 1;
    let at = (d.batch_tag, d.receipt.offset_delta);
    let i = if d.restored {
        *gateway
            .places
            .get(&at)
            .unwrap_or_else(|| panic!("a restored delivery for no reading sent: {d:?}"))
    } else {
        let i = *life
            .receipts
            .get(&(d.receipt.batch, d.receipt.offset_delta))
            .unwrap_or_else(|| panic!("a delivery for no reading sent: {d:?}"));
        assert_eq!(
            life.places.get(&at),
            Some(&i),
            "delivery {d:?}: its tag names another reading"
        );
        i
    };
    assert!(life.decided.insert(i), "reading {i} decided twice: {d:?}");
    assert_eq!(
        gateway.partition[i],
        Some(d.receipt.partition),
        "reading {i}: partition"
    );
    let fate = Fate {
        outcome: d.outcome,
        offset: d.offset,
    };
    match gateway.state[i] {
        Reading::Decided(before) => {
            assert!(
                d.restored,
                "reading {i} decided again by a batch of this life: {d:?}"
            );
            assert_eq!(
                before, fate,
                "reading {i}: handed out again after the cut with another outcome"
            );
            life.repeated += 1;
        }
        _ => gateway.state[i] = Reading::Decided(fate),
    }
    if let Some(readings) = life.held.get_mut(&d.receipt.batch) {
        readings.retain(|&r| r != i);
        if readings.is_empty() {
            life.held.remove(&d.receipt.batch);
        }
    }
}

/// Lets go of the readings whose batch is now in the durable store.
fn note_durable(producer: &DurableTapProducer<'_>, gateway: &mut Gateway, life: &mut Life) {
    life.held.retain(|batch, readings| {
        if !producer.client().is_durable(*batch) {
            return true;
        }
        for &i in readings.iter() {
            if gateway.state[i] == Reading::Held {
                gateway.state[i] = Reading::Durable;
                gateway.ever_durable[i] = true;
            }
        }
        false
    });
}

/// The producer settings of both lives (a store is restored only by a producer with the
/// topics, batch size and capacities it was written with).
fn cut_config<'a>(
    bootstrap: &'a [&'a str],
    topics: &'a [&'a str],
    kind: BrokerKind,
) -> ProducerConfig<'a> {
    let mut config = ProducerConfig::new("embassy-power-cut", bootstrap, topics);
    // Life 2 ends its resumed epoch with a fence: a local bump on Kafka, a new producer id
    // (after the grace) on tansu, which refuses bumps.
    if let Some(grace) = kind.abandoned_request_grace() {
        config.client.producer.abandoned_request_grace = grace;
    }
    config.client.batch_bytes = CUT_BATCH_BYTES;
    // Batches go out when full (or flushed), so at the cut the newest batch of each
    // partition is open: its readings are lost with the RAM and must be sent again.
    config.client.linger = core::time::Duration::from_secs(1);
    config
}

/// The durable store of the power-cut test: the file flash at `path`, created erased on
/// first use, checked against a client with the producer's settings.
fn open_store(path: &Path, config: &ProducerConfig<'_>) -> Store {
    let pages = pages_needed::<BlockingAsync<FileFlash>>(CUT_BATCH_BYTES, BATCHES)
        .unwrap_or_else(|e| panic!("flash geometry: {e}"));
    // Half again the worst case, so garbage collection stays cheap.
    let pages = pages + pages / 2;
    let flash = FileFlash::open(path, pages, false)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let mut client_config = config.client;
    client_config.durable = true;
    let geometry: Client<Vec<u8>, Fixed<1, 3, BATCHES, BROKERS>> = Client::new(
        client_config,
        config.bootstrap,
        config.topics,
        vec![0u8; BATCHES * CUT_BATCH_BYTES],
    )
    .expect("client");
    Store::new(
        BlockingAsync::new(flash),
        0..(pages * PAGE_SIZE) as u32,
        vec![0u8; Store::buffer_len(CUT_BATCH_BYTES)],
        &geometry,
    )
    .unwrap_or_else(|e| panic!("flash store: {e}"))
}

/// Boots the gateway's producer: durable, over the flash file at `flash`, and restored
/// from it (restored batches get 60 s to be decided).
async fn boot<'d>(
    stack: Stack<'d>,
    config: ProducerConfig<'_>,
    buffers: &'d mut [ConnectionBuffers<RX, TX>; BROKERS],
    flash: &Path,
) -> (DurableTapProducer<'d>, RestoreSummary) {
    let store = open_store(flash, &config);
    let storage = vec![0u8; BATCHES * CUT_BATCH_BYTES];
    let mut producer = Producer::new_durable(stack, config, storage, buffers, store)
        .unwrap_or_else(|e| panic!("producer: {e}"));
    let deadline = Instant::now() + embassy_time::Duration::from_secs(60);
    let options = RestoreOptions {
        deadline,
        now_ms: None,
        producer_state_ttl: None,
    };
    let summary = producer
        .restore(options)
        .await
        .unwrap_or_else(|e| panic!("restore: {e}"));
    (producer, summary)
}

/// What one life reports back from the executor thread.
struct LifeReport {
    gateway: Gateway,
    sent: usize,
    slot_waits: usize,
    deliveries: usize,
    repeated: usize,
    counters: Counters,
    elapsed: Duration,
}

/// Life 1: readings `0..cut` sent with a durable producer on a fresh flash file, outcomes
/// taken as they come except over the last [`QUIET`] readings (a backlog sent at once),
/// durable readings let go of. Then the gateway takes one outcome, the stack alone runs for
/// [`CUT_AFTER`] (the backlog's requests reach the broker; their answers are never read),
/// and the power goes: the task simply ends, without flush or close. The producer and the
/// stack are dropped where they stand (embassy-net drops sockets without a FIN or RST, and
/// the stack never runs again): the broker's connections just go silent. Only the flash file
/// and the gateway's memory remain.
fn life_before_cut(
    kind: BrokerKind,
    device: TunTapDevice,
    bootstrap: String,
    topic: &'static str,
    flash: PathBuf,
    cut: usize,
) -> LifeReport {
    run_embassy(Duration::from_secs(120), move || {
        on_stack(device, async move |stack: Stack<'_>| {
            let started = std::time::Instant::now();
            let bootstrap = [bootstrap.as_str()];
            let topics = [topic];
            let mut buffers: [ConnectionBuffers<RX, TX>; BROKERS] =
                core::array::from_fn(|_| ConnectionBuffers::new());
            let config = cut_config(&bootstrap, &topics, kind);
            let (mut producer, summary) = boot(stack, config, &mut buffers, &flash).await;
            assert_eq!(summary, RestoreSummary::default(), "a fresh flash restored");
            let mut gateway = Gateway::new();
            let mut life = Life::default();
            for i in 0..cut {
                send_reading(&mut producer, &mut gateway, &mut life, topic, i).await;
                if i + QUIET < cut {
                    // Readings trickle in: the next one is awaited, and meanwhile the stack
                    // runs.
                    yield_now().await;
                    take_deliveries(&mut producer, &mut gateway, &mut life);
                }
                note_durable(&producer, &mut gateway, &mut life);
            }
            // The gateway forwards an outcome: it has taken one record's (the store keeps
            // that batch until the next is asked for) when the power goes.
            let first = producer
                .next_delivery(Instant::now() + embassy_time::Duration::from_secs(10))
                .await
                .expect("no outcome within 10 s");
            take_delivery(first, &mut gateway, &mut life);
            note_durable(&producer, &mut gateway, &mut life);
            // The backlog's open batches are sealed and their requests queued (a flush with
            // no time to wait: it stores them, stores their stamps and writes the requests).
            // The gateway waits for its next reading; the stack runs meanwhile, so the
            // requests reach the broker, which appends them and answers; the producer is not
            // driven, so it never reads the answers. Then the power goes.
            producer.flush(Instant::now()).await;
            Timer::after(CUT_AFTER).await;
            gateway.places = std::mem::take(&mut life.places);
            let counters = producer.counters();
            // The power cut.
            drop(producer);
            LifeReport {
                gateway,
                sent: life.sent,
                slot_waits: life.slot_waits,
                deliveries: life.deliveries,
                repeated: life.repeated,
                counters,
                elapsed: started.elapsed(),
            }
        })
    })
}

/// What life 2 found at boot.
struct Boot {
    summary: RestoreSummary,
    /// Readings in the batches restored.
    restored: usize,
    /// Readings the gateway still held (not seen durable) that a restored batch holds.
    held_restored: usize,
    /// Readings the gateway sent again.
    resent: usize,
    flushed: bool,
}

/// Life 2: a new stack and producer on the same flash file. Restores, skips the readings
/// the restored batches hold, sends again those the gateway still held, then the readings
/// from `cut` on; flushes and takes every outcome.
fn life_after_cut(
    kind: BrokerKind,
    device: TunTapDevice,
    bootstrap: String,
    topic: &'static str,
    flash: PathBuf,
    cut: usize,
    mut gateway: Gateway,
) -> (LifeReport, Boot) {
    run_embassy(Duration::from_secs(120), move || {
        on_stack(device, async move |stack: Stack<'_>| {
            let started = std::time::Instant::now();
            let bootstrap = [bootstrap.as_str()];
            let topics = [topic];
            let mut buffers: [ConnectionBuffers<RX, TX>; BROKERS] =
                core::array::from_fn(|_| ConnectionBuffers::new());
            let config = cut_config(&bootstrap, &topics, kind);
            let (mut producer, summary) = boot(stack, config, &mut buffers, &flash).await;
            let mut restored = BTreeSet::new();
            for (tag, records) in producer.client().restored_batches() {
                for delta in 0..records {
                    let i = *gateway.places.get(&(tag, delta)).unwrap_or_else(|| {
                        panic!("restored batch {tag} holds a record {delta} never sent")
                    });
                    assert!(restored.insert(i), "reading {i} restored twice");
                }
            }
            for (i, state) in gateway.state.iter_mut().enumerate() {
                match *state {
                    Reading::Unsent => {
                        assert!(!restored.contains(&i), "reading {i} restored, never sent")
                    }
                    Reading::Durable => assert!(
                        restored.contains(&i),
                        "reading {i} was reported durable and no restored batch holds it"
                    ),
                    // Stored after the gateway last asked: safe after all.
                    Reading::Held if restored.contains(&i) => *state = Reading::Durable,
                    Reading::Held | Reading::Decided(_) => {}
                }
            }
            let held_restored = restored
                .iter()
                .filter(|&&i| !gateway.ever_durable[i] && gateway.state[i] == Reading::Durable)
                .count();
            let resend: Vec<usize> = (0..READINGS)
                .filter(|&i| gateway.state[i] == Reading::Held)
                .collect();
            let mut life = Life::default();
            for i in resend.iter().copied().chain(cut..READINGS) {
                send_reading(&mut producer, &mut gateway, &mut life, topic, i).await;
                yield_now().await;
                take_deliveries(&mut producer, &mut gateway, &mut life);
                note_durable(&producer, &mut gateway, &mut life);
            }
            let undecided = |g: &Gateway| g.count(|s| !matches!(s, Reading::Decided(_)));
            let give_up = Instant::now() + embassy_time::Duration::from_secs(60);
            take_deliveries(&mut producer, &mut gateway, &mut life);
            let mut flushed = false;
            while undecided(&gateway) > 0 && Instant::now() < give_up {
                flushed = producer.flush(give_up).await;
                take_deliveries(&mut producer, &mut gateway, &mut life);
            }
            flushed |= producer.flush(Instant::now()).await;
            take_deliveries(&mut producer, &mut gateway, &mut life);
            producer
                .close(Instant::now() + embassy_time::Duration::from_secs(2))
                .await;
            let boot = Boot {
                summary,
                restored: restored.len(),
                held_restored,
                resent: resend.len(),
                flushed,
            };
            let report = LifeReport {
                gateway,
                sent: life.sent,
                slot_waits: life.slot_waits,
                deliveries: life.deliveries,
                repeated: life.repeated,
                counters: producer.counters(),
                elapsed: started.elapsed(),
            };
            (report, boot)
        })
    })
}

/// Removes the flash file when the test ends, passed or not.
struct RemoveFile(PathBuf);

impl Drop for RemoveFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn embassy_durable_state_survives_a_power_cut_kafka() {
    embassy_durable_state_survives_a_power_cut(BrokerKind::Kafka);
}

#[test]
fn embassy_durable_state_survives_a_power_cut_tansu() {
    embassy_durable_state_survives_a_power_cut(BrokerKind::Tansu);
}

fn embassy_durable_state_survives_a_power_cut(kind: BrokerKind) {
    const TOPIC: &str = "embassy-power-cut";
    let cut = READINGS / 2;
    let ns = NetNs::new();
    let broker = NsBroker::start(&ns, kind, None);
    broker.create_topic(TOPIC, PARTITIONS);
    let flash = std::env::temp_dir().join(format!("{}-power-cut.flash", ns.name()));
    let _ = std::fs::remove_file(&flash);
    let _remove = RemoveFile(flash.clone());
    let started = std::time::Instant::now();

    let before = life_before_cut(
        kind,
        ns.open_tap(),
        broker.bootstrap(),
        TOPIC,
        flash.clone(),
        cut,
    );
    let g = &before.gateway;
    let (held, durable) = (
        g.count(|s| *s == Reading::Held),
        g.count(|s| *s == Reading::Durable),
    );
    eprintln!(
        "life 1: sent {} readings in {:?} ({} waits for a slot), {} outcomes taken; at the \
         cut the gateway held {held} readings, {durable} were durable without an outcome; {:?}",
        before.sent, before.elapsed, before.slot_waits, before.deliveries, before.counters
    );
    assert_eq!(before.repeated, 0);
    assert!(durable > 0, "nothing durable and undecided at the cut");
    assert!(held > 0, "no reading in an open batch at the cut");
    assert_eq!(
        (before.counters.fences, before.counters.producer_ids),
        (0, 1),
        "life 1 against a healthy broker: no fence and one producer id: {:?}",
        before.counters
    );
    // What reached the log: more records than life 1 saw decided means the broker appended
    // requests whose answers were never read, which life 2 sends again from the store (Kafka
    // must answer those with their original offsets). Read after the cut, so the broker may
    // append more later: a lower bound.
    let at_cut: usize = ns
        .run(|| {
            read_back(
                &broker.bootstrap(),
                TOPIC,
                PARTITIONS,
                0,
                Duration::from_secs(30),
            )
        })
        .iter()
        .map(Vec::len)
        .sum();
    let decided = before.counters.persisted.records as usize;
    eprintln!(
        "after the cut the log held {at_cut} records, life 1 saw {decided} decided: {} \
         appended with their answers never read",
        at_cut.saturating_sub(decided)
    );

    let (after, boot) = life_after_cut(
        kind,
        ns.open_tap(),
        broker.bootstrap(),
        TOPIC,
        flash.clone(),
        cut,
        before.gateway,
    );
    eprintln!(
        "life 2: restored {:?}: {} readings in restored batches ({} of them held by the \
         gateway, stored after it last asked); sent {} readings ({} again) in {:?} ({} waits \
         for a slot), {} outcomes taken ({} handed out again); {:?}",
        boot.summary,
        boot.restored,
        boot.held_restored,
        after.sent,
        boot.resent,
        after.elapsed,
        after.slot_waits,
        after.deliveries,
        after.repeated,
        after.counters
    );
    assert!(
        boot.summary.batches > 0,
        "nothing restored: {:?}",
        boot.summary
    );
    assert!(
        boot.summary.stamped > 0,
        "no batch was in flight at the cut: {:?}",
        boot.summary
    );
    assert!(
        after.repeated > 0,
        "the outcome taken just before the cut was not handed out again"
    );
    assert_eq!(
        boot.resent + boot.held_restored,
        held,
        "the gateway sent again other readings than those it held at the cut, less the \
         restored ones"
    );
    assert!(boot.flushed, "flush did not report everything decided");
    let c = after.counters;
    assert_eq!(
        c.retries,
        u64::from(boot.summary.stamped),
        "life 2 against a healthy broker: resends besides the restored stamped batches, once \
         each: {c:?}"
    );
    if kind.accepts_epoch_bump() {
        // Life 2 resumes the stored identity for the restored stamped batches only, then
        // retires it with a fence: a local epoch bump, which Kafka accepts, so no producer id
        // is asked for at all, and every fence is a bump.
        assert_eq!(
            (c.producer_ids, c.epoch_bumps),
            (0, c.fences),
            "life 2: a fence took a new producer id although Kafka accepts a local epoch \
             bump: {c:?}"
        );
        assert!(c.fences >= 1, "life 2 retires the resumed identity: {c:?}");
    }

    let read_started = std::time::Instant::now();
    let log = ns.run(|| {
        read_back(
            &broker.bootstrap(),
            TOPIC,
            PARTITIONS,
            READINGS,
            Duration::from_secs(60),
        )
    });
    eprintln!(
        "read back {:?} records per partition in {:?}; the test took {:?}",
        log.iter().map(Vec::len).collect::<Vec<_>>(),
        read_started.elapsed(),
        started.elapsed()
    );
    verify_power_cut(&after.gateway, &log, kind);
}

/// Every reading decided `Persisted`; the log holds each exactly once, in the partition its
/// receipt named, at the offset reported (when one was; against a broker with
/// [`BrokerKind::exact_offsets`], always), each sensor's readings in increasing order, and
/// every reading ever reported durable.
fn verify_power_cut(gateway: &Gateway, log: &[Vec<ReadRecord>], kind: BrokerKind) {
    let mut fates = Vec::with_capacity(READINGS);
    for (i, state) in gateway.state.iter().enumerate() {
        match state {
            Reading::Decided(
                fate @ Fate {
                    outcome: Outcome::Persisted { .. },
                    ..
                },
            ) => fates.push(*fate),
            other => panic!("reading {i}: {other:?}, expected Persisted"),
        }
    }
    let mut seen = vec![false; READINGS];
    let mut last = [None::<usize>; SENSORS];
    for (p, records) in log.iter().enumerate() {
        let p = p as i32;
        for r in records {
            let i = reading_of(r);
            assert!(!seen[i], "reading {i} is in the log twice");
            seen[i] = true;
            assert_eq!(gateway.partition[i], Some(p), "reading {i}: partition");
            if let Some(offset) = fates[i].offset {
                assert_eq!(
                    offset, r.offset,
                    "reading {i}: reported at offset {offset}, the log has it at {} of \
                     partition {p}",
                    r.offset
                );
            }
            let sensor = i % SENSORS;
            if let Some(j) = last[sensor] {
                assert!(j < i, "sensor {sensor}: reading {i} after reading {j}");
            }
            last[sensor] = Some(i);
        }
    }
    let lost_durable: Vec<usize> = (0..READINGS)
        .filter(|&i| gateway.ever_durable[i] && !seen[i])
        .collect();
    assert!(
        lost_durable.is_empty(),
        "{} readings reported durable are not in the log (first: {:?})",
        lost_durable.len(),
        &lost_durable[..lost_durable.len().min(10)]
    );
    let missing: Vec<usize> = (0..READINGS).filter(|&i| !seen[i]).collect();
    assert!(
        missing.is_empty(),
        "{} readings reported persisted are not in the log (first: {:?})",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    let unknown = fates.iter().filter(|f| f.offset.is_none()).count();
    eprintln!(
        "all {READINGS} readings persisted, each once in the log, in order per sensor; {} \
         reported durable at some point; {unknown} persisted without an offset",
        gateway.ever_durable.iter().filter(|&&d| d).count()
    );
    // Kafka answers a batch sent again after the restart, if it appended it before the cut,
    // with its original offset: every reading's offset is known.
    assert!(
        !kind.exact_offsets() || unknown == 0,
        "{unknown} readings persisted without an offset against {}",
        kind.name()
    );
}
