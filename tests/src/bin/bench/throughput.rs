//! Part 2: throughput, CPU time and peak RSS, each side in a child process.

use super::*;

/// What a child reports: records it got `Persisted`, others, seconds from first send to last
/// outcome.
pub(crate) struct ChildRun {
    pub(crate) persisted: u64,
    pub(crate) failed: u64,
    pub(crate) seconds: f64,
    pub(crate) cpu_seconds: f64,
    pub(crate) peak_rss_kib: i64,
}

/// `child ours|rdkafka BOOTSTRAP TOPIC RECORDS [CA_FILE]`: produces, prints `persisted failed
/// seconds`. With `CA_FILE` (ours only), over SSL with the broker verified against that CA.
pub(crate) fn child(args: &[String]) -> ExitCode {
    let (side, bootstrap, topic, records, ca) = match args {
        [s, b, t, r] => (s, b, t, r, None),
        [s, b, t, r, ca] if s == "ours" => (s, b, t, r, Some(ca)),
        _ => {
            eprintln!("usage: bench child ours|rdkafka BOOTSTRAP TOPIC RECORDS [CA_FILE]");
            return ExitCode::FAILURE;
        }
    };
    let records: u64 = records.parse().expect("record count");
    let (persisted, failed, seconds) = match side.as_str() {
        "ours" => {
            let mut config = ProducerConfig::new([bootstrap.as_str()], [topic.as_str()]);
            if let Some(ca) = ca {
                config.security_protocol = SecurityProtocol::Ssl;
                config.tls.roots = TlsRoots::Ca(Pem::File(ca.into()));
            }
            let mut producer = Producer::new(config).expect("valid configuration");
            let start = Instant::now();
            let (p, f) = pump_ours(
                &mut producer,
                topic,
                records,
                start + Duration::from_secs(600),
            );
            (p, f, start.elapsed().as_secs_f64())
        }
        "rdkafka" => pump_librdkafka(bootstrap, topic, records),
        other => {
            eprintln!("unknown side {other}");
            return ExitCode::FAILURE;
        }
    };
    println!("{persisted} {failed} {seconds}");
    ExitCode::SUCCESS
}

/// Sends `records` records of 100 bytes and takes outcomes as they come, the way the
/// `produce` tool drives the producer; then flushes. Returns (persisted, other outcomes).
pub(crate) fn pump_ours(
    producer: &mut Producer,
    topic: &str,
    records: u64,
    deadline: Instant,
) -> (u64, u64) {
    let (mut persisted, mut failed) = (0u64, 0u64);
    let value = [b'x'; VALUE_LEN];
    let mut tally = |producer: &mut Producer| {
        while let Some(d) = producer.poll_delivery() {
            match d.outcome {
                Outcome::Persisted { .. } => persisted += 1,
                _ => failed += 1,
            }
        }
    };
    for _ in 0..records {
        if producer
            .send(&ProducerRecord::value(topic, &value), deadline)
            .is_err()
        {
            break;
        }
        tally(producer);
    }
    producer.flush(deadline);
    tally(producer);
    (persisted, failed)
}

#[derive(Default)]
struct CountingContext {
    persisted: AtomicU64,
    failed: AtomicU64,
}

impl ClientContext for CountingContext {}

impl ProducerContext for CountingContext {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.persisted.fetch_add(1, Ordering::Relaxed),
            Err(_) => self.failed.fetch_add(1, Ordering::Relaxed),
        };
    }
}

fn pump_librdkafka(bootstrap: &str, topic: &str, records: u64) -> (u64, u64, f64) {
    let producer: BaseProducer<CountingContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("log_level", "2")
        .create_with_context(CountingContext::default())
        .expect("librdkafka producer");
    let value = [b'x'; VALUE_LEN];
    let start = Instant::now();
    for i in 0..records {
        loop {
            match producer.send(BaseRecord::<(), [u8]>::to(topic).payload(&value)) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => panic!("produce: {e}"),
            }
        }
        if i % 1024 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    let _ = producer.flush(Duration::from_secs(600));
    let seconds = start.elapsed().as_secs_f64();
    let c = producer.context();
    (
        c.persisted.load(Ordering::Relaxed),
        c.failed.load(Ordering::Relaxed),
        seconds,
    )
}

/// The median run of `runs` (by time; `runs` is left sorted so) and every run's
/// records per second, in the order they ran.
pub(crate) fn median_run(runs: &mut [ChildRun]) -> (&ChildRun, Vec<String>) {
    let all = runs
        .iter()
        .map(|r| format!("{:.0}", r.persisted as f64 / r.seconds))
        .collect();
    runs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
    (&runs[runs.len() / 2], all)
}

/// Runs `bench child …` (over SSL with `ca`) and takes its own resource usage when it exits.
pub(crate) fn run_child(
    side: &str,
    bootstrap: &str,
    topic: &str,
    records: u64,
    ca: Option<&str>,
) -> Result<ChildRun, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let records = records.to_string();
    let mut args = vec!["child", side, bootstrap, topic, &records];
    args.extend(ca);
    let mut child = Command::new(exe)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start the child: {e}"))?;
    let mut out = String::new();
    if let Some(mut stdout) = child.stdout.take() {
        let _ = stdout.read_to_string(&mut out);
    }
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `child` is our unreaped child; the pointers are to live locals.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    if pid <= 0 {
        return Err("wait4 failed".into());
    }
    if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
        return Err(format!("child {side} failed (status {status})"));
    }
    let fields: Vec<&str> = out.split_whitespace().collect();
    let [persisted, failed, seconds] = fields[..] else {
        return Err(format!("child {side} printed `{out}`"));
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(ChildRun {
        persisted: persisted.parse().map_err(|_| "bad count")?,
        failed: failed.parse().map_err(|_| "bad count")?,
        seconds: seconds.parse().map_err(|_| "bad seconds")?,
        cpu_seconds: tv(usage.ru_utime) + tv(usage.ru_stime),
        peak_rss_kib: usage.ru_maxrss,
    })
}

/// A broker for one throughput run: a fresh tansu or mock cluster, so no run pays for the
/// previous run's log.
struct Broker {
    _tansu: Option<Tansu>,
    _mock: Option<MockCluster<'static, rdkafka::producer::DefaultProducerContext>>,
}

fn start_broker(tansu: bool, topic: &str) -> Result<(Broker, String), String> {
    if tansu {
        let t = Tansu::start();
        t.create_topic(topic, 3);
        let bootstrap = t.bootstrap();
        Ok((
            Broker {
                _tansu: Some(t),
                _mock: None,
            },
            bootstrap,
        ))
    } else {
        let mock = MockCluster::new(1).map_err(|e| format!("mock cluster: {e}"))?;
        mock.create_topic(topic, 3, 1)
            .map_err(|e| format!("mock topic: {e}"))?;
        let bootstrap = mock.bootstrap_servers();
        Ok((
            Broker {
                _tansu: None,
                _mock: Some(mock),
            },
            bootstrap,
        ))
    }
}

/// Measures the part and writes its section.
pub(crate) fn run() {
    let records = env_usize("BENCH_RECORDS", 1_000_000) as u64;
    let runs = env_usize("BENCH_RUNS", 3);
    let mut md = String::new();
    let _ = writeln!(
        md,
        "## Throughput\n\n\
         {records} records of {VALUE_LEN}-byte values (no key), idempotent, acks=all, one topic \
         with 3 partitions, linger 5 ms on both sides; each side in its own child process \
         (CPU time = user + system of that process, peak RSS its maximum resident set); the \
         sides alternate, {runs} runs each, a fresh broker per run. Figures are the median \
         run; the ratio is ours / librdkafka (>1: ours higher). MB/s counts value bytes only. \
         The mock cluster does not deduplicate without a transactional id, which does not \
         matter here.\n\n\
         | broker | producer | records/s | MB/s | CPU s | peak RSS MiB | persisted | runs (records/s) |\n\
         |---|---|---|---|---|---|---|---|"
    );
    let mut ratios = String::new();
    for (tansu, broker_name) in [(true, "tansu 0.6.0"), (false, "librdkafka mock")] {
        let mut results: [Vec<ChildRun>; 2] = [Vec::new(), Vec::new()];
        let mut errors = Vec::new();
        for run in 0..runs {
            for (i, side) in ["ours", "rdkafka"].into_iter().enumerate() {
                let topic = format!("throughput-{run}-{side}");
                eprintln!("bench throughput: {broker_name} run {} {side}", run + 1);
                let outcome = start_broker(tansu, &topic).and_then(|(broker, bootstrap)| {
                    let r = run_child(side, &bootstrap, &topic, records, None);
                    drop(broker);
                    r
                });
                match outcome {
                    Ok(r) => results[i].push(r),
                    Err(e) => {
                        eprintln!("bench throughput: {e}");
                        errors.push(e);
                    }
                }
            }
        }
        let mut medians = [None, None];
        for (i, name) in ["ours (transport-std)", "librdkafka 2.12"]
            .iter()
            .enumerate()
        {
            let rs = &mut results[i];
            if rs.is_empty() {
                let _ = writeln!(md, "| {broker_name} | {name} | failed | | | | | |");
                continue;
            }
            let (m, all) = median_run(rs);
            let rate = records as f64 / m.seconds;
            let _ = writeln!(
                md,
                "| {broker_name} | {name} | {rate:.0} | {:.1} | {:.2} | {:.1} | {} (+{} other) | {} |",
                rate * VALUE_LEN as f64 / 1e6,
                m.cpu_seconds,
                m.peak_rss_kib as f64 / 1024.0,
                m.persisted,
                m.failed,
                all.join(", ")
            );
            medians[i] = Some((rate, m.cpu_seconds, m.peak_rss_kib as f64));
        }
        if let [Some(o), Some(l)] = medians {
            let _ = writeln!(
                ratios,
                "| {broker_name} | {:.2} | {:.2} | {:.2} |",
                o.0 / l.0,
                o.1 / l.1,
                o.2 / l.2
            );
        }
        for e in errors {
            let _ = writeln!(md, "\n{broker_name}: a run failed: {e}");
        }
    }
    let _ = writeln!(
        md,
        "\nRatios, ours / librdkafka (median runs):\n\n\
         | broker | records/s | CPU time | peak RSS |\n|---|---|---|---|\n{ratios}"
    );
    write_section("throughput", &md);
}
