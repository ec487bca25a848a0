//! `produce`: reads records from stdin, one per line, and produces them idempotently, with a
//! delivery deadline per record, reporting every record's outcome.
//!
//! Exit status: 0 when every record was persisted, 2 otherwise, 1 on a usage or setup error.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufWriter, Write};
use std::process::ExitCode;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use producer_core::state::{Outcome, UnknownOutcome};
use transport_std::{Producer, ProducerConfig, Record, RecordDelivery};

/// Lines read ahead of the producer.
const READ_AHEAD: usize = 16 * 1024;

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Policy {
    /// Wait for an answer for batches whose fate is unknown, however long.
    Wait,
    /// Report possibly-persisted at the deadline and fence (deadlines always honoured).
    FailAndFence,
}

/// Produce stdin lines to a Kafka topic, exactly once, with a deadline per record.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Brokers to bootstrap from: HOST:PORT[,HOST:PORT...].
    #[arg(long)]
    bootstrap: String,
    /// Topic to produce to.
    #[arg(long)]
    topic: String,
    /// Text before the first SEP on a line is the record's key, the rest its value.
    #[arg(long, value_name = "SEP")]
    key_separator: Option<String>,
    /// Send every record to this partition.
    #[arg(long, value_name = "N")]
    partition: Option<i32>,
    /// Delivery deadline per record, counted from when it is read.
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    deadline_ms: u64,
    /// What a deadline does to a record whose fate is unknown.
    #[arg(long, value_enum, default_value_t = Policy::FailAndFence)]
    unknown_outcome: Policy,
    /// How long a batch waits for more records.
    #[arg(long, value_name = "MS", default_value_t = 5)]
    linger_ms: u64,
    /// Largest batch in bytes.
    #[arg(long, value_name = "N", default_value_t = 64 * 1024)]
    batch_bytes: usize,
    /// Write one line per record, in input order: INDEX OUTCOME PARTITION OFFSET.
    #[arg(long, value_name = "FILE")]
    report: Option<String>,
    /// Show a live progress line on stderr.
    #[arg(long)]
    progress: bool,
}

#[derive(Clone, Copy)]
struct Fate {
    outcome: &'static str,
    partition: i32,
    offset: i64,
}

fn kind(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Persisted { .. } => "persisted",
        Outcome::NotPersisted(_) => "not-persisted",
        Outcome::PossiblyPersisted(_) => "possibly-persisted",
    }
}

fn main() -> ExitCode {
    // Usage errors exit 1: clap's own code (2) would read as "not every record persisted".
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match run(args) {
        Ok(all_persisted) => {
            if all_persisted {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
        Err(e) => {
            eprintln!("produce: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(args: Args) -> Result<bool, String> {
    let started = Instant::now();
    let mut config = ProducerConfig::new(args.bootstrap.split(','), [args.topic.clone()]);
    config.unknown_outcome = match args.unknown_outcome {
        Policy::Wait => UnknownOutcome::Wait,
        Policy::FailAndFence => UnknownOutcome::FailAndFence,
    };
    config.linger = Duration::from_millis(args.linger_ms);
    config.batch_bytes = args.batch_bytes;
    let mut producer = Producer::new(config).map_err(|e| e.to_string())?;
    let deadline_after = Duration::from_millis(args.deadline_ms);
    let mut report = match &args.report {
        Some(path) => Some(BufWriter::new(
            File::create(path).map_err(|e| format!("cannot create {path}: {e}"))?,
        )),
        None => None,
    };

    let mut fates: Vec<Option<Fate>> = Vec::new();
    let mut pending: HashMap<(producer_core::state::BatchToken, u32), usize> = HashMap::new();
    let mut last_deadline = Instant::now();
    let mut progress = Progress::new(args.progress);

    // Lines are read, and their deadlines start, on a thread of their own: a record waiting
    // for the broker must not delay the reading (and so the deadlines) of the ones behind it.
    // The channel is bounded, so a slow broker slows the reading rather than filling memory.
    let (lines, incoming) = mpsc::sync_channel::<(String, Instant)>(READ_AHEAD);
    let reader = thread::spawn(move || -> io::Result<()> {
        let stdin = io::stdin();
        let mut input = stdin.lock();
        loop {
            let mut line = String::new();
            if input.read_line(&mut line)? == 0 {
                return Ok(());
            }
            if lines.send((line, Instant::now())).is_err() {
                return Ok(());
            }
        }
    });
    for (line, read_at) in incoming {
        let text = line.strip_suffix('\n').unwrap_or(&line);
        let text = text.strip_suffix('\r').unwrap_or(text);
        let (key, value) = match &args.key_separator {
            Some(sep) => match text.split_once(sep.as_str()) {
                Some((k, v)) => (Some(k.as_bytes()), v.as_bytes()),
                None => (None, text.as_bytes()),
            },
            None => (None, text.as_bytes()),
        };
        let deadline = read_at + deadline_after;
        last_deadline = deadline;
        let index = fates.len();
        fates.push(None);
        let record = Record {
            topic: &args.topic,
            partition: args.partition,
            key,
            value: Some(value),
            headers: &[],
        };
        match producer.send(&record, deadline) {
            Ok(receipt) => {
                pending.insert((receipt.batch, receipt.offset_delta), index);
            }
            Err(transport_std::Error::Deadline(_)) => {
                fates[index] = Some(Fate {
                    outcome: "not-persisted",
                    partition: args.partition.unwrap_or(-1),
                    offset: -1,
                });
            }
            Err(e) => return Err(e.to_string()),
        }
        settle(&mut producer, &mut pending, &mut fates);
        progress.show(&producer, fates.len(), &fates, false);
    }
    reader
        .join()
        .map_err(|_| "the stdin reader panicked".to_string())?
        .map_err(|e| format!("reading stdin: {e}"))?;
    // Drain: under fail-and-fence every record has its outcome by its deadline; under wait,
    // sent records wait for their answer.
    let give_up = match args.unknown_outcome {
        Policy::FailAndFence => Some(last_deadline + Duration::from_millis(50)),
        Policy::Wait => None,
    };
    loop {
        let limit = give_up.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        let done = producer.flush(limit.min(Instant::now() + Duration::from_millis(200)));
        settle(&mut producer, &mut pending, &mut fates);
        progress.show(&producer, fates.len(), &fates, false);
        if done || give_up.is_some_and(|g| Instant::now() >= g) {
            break;
        }
    }
    progress.show(&producer, fates.len(), &fates, true);

    let (mut persisted, mut not_persisted, mut possibly) = (0u64, 0u64, 0u64);
    for (index, fate) in fates.iter().enumerate() {
        // A record without an outcome here can only be one still unanswered at exit: it may
        // be in the log, at most once.
        let fate = fate.unwrap_or(Fate {
            outcome: "possibly-persisted",
            partition: -1,
            offset: -1,
        });
        match fate.outcome {
            "persisted" => persisted += 1,
            "not-persisted" => not_persisted += 1,
            _ => possibly += 1,
        }
        if let Some(r) = &mut report {
            writeln!(
                r,
                "{index} {} {} {}",
                fate.outcome, fate.partition, fate.offset
            )
            .map_err(|e| format!("writing the report: {e}"))?;
        }
    }
    if let Some(mut r) = report {
        r.flush().map_err(|e| format!("writing the report: {e}"))?;
    }
    let c = producer.counters();
    println!(
        "{{\"persisted\":{persisted},\"not_persisted\":{not_persisted},\"possibly_persisted\":{possibly},\"producer_id\":{},\"epoch\":{},\"epoch_bumps\":{},\"elapsed_ms\":{}}}",
        c.producer_id.map_or(-1, |p| p.0),
        c.epoch.map_or(-1, |e| i64::from(e.0)),
        c.epoch_bumps,
        started.elapsed().as_millis()
    );
    Ok(not_persisted == 0 && possibly == 0)
}

fn settle(
    producer: &mut Producer,
    pending: &mut HashMap<(producer_core::state::BatchToken, u32), usize>,
    fates: &mut [Option<Fate>],
) {
    while let Some(RecordDelivery {
        receipt,
        outcome,
        offset,
    }) = producer.poll_delivery()
    {
        if let Some(index) = pending.remove(&(receipt.batch, receipt.offset_delta)) {
            fates[index] = Some(Fate {
                outcome: kind(&outcome),
                partition: receipt.partition,
                offset: offset.unwrap_or(-1),
            });
        }
    }
}

struct Progress {
    on: bool,
    started: Instant,
    last: Instant,
}

impl Progress {
    fn new(on: bool) -> Self {
        Progress {
            on,
            started: Instant::now(),
            last: Instant::now(),
        }
    }

    fn show(&mut self, producer: &Producer, sent: usize, fates: &[Option<Fate>], last: bool) {
        if !self.on || (!last && self.last.elapsed() < Duration::from_millis(250)) {
            return;
        }
        self.last = Instant::now();
        let acked = fates
            .iter()
            .filter(|f| matches!(f, Some(f) if f.outcome == "persisted"))
            .count();
        let decided = fates.iter().filter(|f| f.is_some()).count();
        let rate = acked as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        let c = producer.counters();
        eprint!(
            "\rsent {sent}  acked {acked}  in flight {}  epoch bumps {}  {rate:.0} rec/s   {}",
            sent - decided,
            c.epoch_bumps,
            if last { "\n" } else { "" }
        );
    }
}
