//! `produce`: reads records from stdin, one per line, and produces them idempotently, with a
//! delivery deadline per record, reporting every record's outcome.
//!
//! Each line is its own record with its own outcome, whatever its bytes (they need not be
//! UTF-8) or its length: a line longer than a batch holds (`--batch-bytes`) is skipped as it is
//! read, without being kept in memory, and reported not-persisted, as is any line the producer
//! refuses. The producer is driven while stdin is idle, so linger, deadlines and outcomes keep
//! their time whatever the input does (`tail -F log | produce` works).
//!
//! Exit status: 0 when every record was persisted, 2 otherwise, 1 on a usage or setup error
//! (bad arguments, the producer cannot be built, the state directory cannot be used).
//!
//! With `--state-dir DIR` it is a log shipper that survives crashes: the producer's batches,
//! stamps and outcomes live in `DIR/producer.state` (see `transport_std::DurableState`), the
//! outcomes handed out in `DIR/outcomes`, and where each record sits in its batch (when not
//! implied by the line numbers) in `DIR/lines`. Started again with the same input and DIR
//! after a crash, it first finishes the batches it had accepted, skips every input line
//! already accepted (the ones with an outcome, and the ones in restored batches) and goes on
//! with the rest; its summary and report cover the whole input, each line once.

use std::collections::{HashMap, HashSet};
use std::fmt::Display;
use std::fs::File;
use std::io::{self, BufRead, BufWriter, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

mod journal;
mod progress;
mod sasl;
mod tls;

use clap::{Parser, ValueEnum};
use journal::{Fate, Journal, Places, Recovered};
use progress::Progress;
use transport_std::{
    DurableState, MAX_BATCH_BYTES, Outcome, Producer, ProducerConfig, ProducerRecord,
    RecordDelivery, SendError, UnknownOutcome, batch_bytes_range,
};

/// Bytes of input read ahead of the producer (each line counted with [`LINE_COST`]): room for
/// four of the longest lines a batch can hold. A line is at most `batch_bytes` (checked
/// against [`MAX_BATCH_BYTES`] before anything is allocated), so the reader holds at most this
/// and one line of its own, whatever the input.
const READ_AHEAD_BYTES: usize = 4 * MAX_BATCH_BYTES;
/// What a line costs in the read-ahead besides its bytes (its buffer and channel slot): it
/// bounds the number of lines read ahead too.
const LINE_COST: usize = 64;
/// While the producer holds records: how long without a line before it is driven from the
/// main loop, and how long it is then driven at a time.
const BUSY_POLL: Duration = Duration::from_millis(2);
/// While the producer holds nothing: how long to wait for a line (taken as soon as it comes)
/// before the producer gets a turn.
const IDLE_WAIT: Duration = Duration::from_millis(50);
/// The longest `--deadline-ms`, `--linger-ms` and `--abandoned-request-grace-ms` (24.8 days):
/// Kafka's limit for its own millisecond settings.
const MAX_MS: u64 = i32::MAX as u64;
/// Refused lines named on stderr; the rest are counted.
const REFUSALS_SHOWN: usize = 10;

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
    /// The bytes before the first SEP on a line are the record's key, the rest its value.
    #[arg(long, value_name = "SEP")]
    key_separator: Option<String>,
    /// Send every record to this partition.
    #[arg(
        long,
        value_name = "N",
        allow_negative_numbers = true,
        value_parser = clap::value_parser!(i32).range(0..)
    )]
    partition: Option<i32>,
    /// Delivery deadline per record, counted from when it is read.
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 30_000,
        value_parser = clap::value_parser!(u64).range(1..=MAX_MS)
    )]
    deadline_ms: u64,
    /// What a deadline does to a record whose fate is unknown.
    #[arg(long, value_enum, default_value_t = Policy::FailAndFence)]
    unknown_outcome: Policy,
    /// How long a batch waits for more records.
    #[arg(
        long,
        value_name = "MS",
        default_value_t = 5,
        value_parser = clap::value_parser!(u64).range(..=MAX_MS)
    )]
    linger_ms: u64,
    /// Largest batch in bytes [default: 65536, or 32768 with --state-dir, whose items must fit
    /// a page of the state file (below 64 KiB)]; a value out of range is refused with the
    /// range. A line that cannot fit a batch is reported not-persisted.
    #[arg(long, value_name = "N", value_parser = parse_batch_bytes)]
    batch_bytes: Option<usize>,
    /// Write one line per record, in input order: INDEX OUTCOME PARTITION OFFSET.
    #[arg(long, value_name = "FILE")]
    report: Option<String>,
    /// Show a live progress line on stderr.
    #[arg(long)]
    progress: bool,
    /// Keep the producer's state in DIR, so that a crash neither loses nor duplicates a
    /// record: run again with the same input and DIR to finish.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// With --state-dir: fdatasync every state write, so the state survives power loss
    /// (without it, it survives the process dying).
    #[arg(long)]
    state_sync: bool,
    /// After a request was abandoned on a closed connection, wait this long before sending
    /// under a new producer id (a broker may still append what it had read) [default: five
    /// request timeouts, 50000: what Kafka may take; a broker that refuses local epoch bumps
    /// and drops what it read at a close allows less].
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(..=MAX_MS))]
    abandoned_request_grace_ms: Option<u64>,
    #[command(flatten)]
    sasl: sasl::SaslArgs,
    #[command(flatten)]
    tls: tls::TlsArgs,
}

/// `--batch-bytes` as a number; its range is checked once `--state-dir` is known.
fn parse_batch_bytes(text: &str) -> Result<usize, String> {
    text.parse().map_err(|e| {
        let ((min, max), (durable_min, durable_max)) =
            (batch_bytes_range(false), batch_bytes_range(true));
        format!(
            "{e}: set it between {min} and {max} (with --state-dir, between {durable_min} and \
             {durable_max})"
        )
    })
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
    // Every setting is checked before anything is allocated or created.
    let separator = match &args.key_separator {
        Some(sep) if sep.is_empty() => {
            return Err("the key separator is empty: give at least one character".into());
        }
        Some(sep) => Some(sep.as_bytes()),
        None => None,
    };
    let durable = args.state_dir.is_some();
    let batch_bytes = args
        .batch_bytes
        .unwrap_or(if durable { 32 * 1024 } else { 64 * 1024 });
    let secrets = args.sasl.read()?;
    let mut config: ProducerConfig<'_> =
        ProducerConfig::new(args.bootstrap.split(','), [args.topic.clone()]);
    secrets.configure(&args.sasl, &mut config);
    args.tls.configure(&mut config);
    config.client.producer.unknown_outcome = match args.unknown_outcome {
        Policy::Wait => UnknownOutcome::Wait,
        Policy::FailAndFence => UnknownOutcome::FailAndFence,
    };
    config.client.linger = Duration::from_millis(args.linger_ms);
    if let Some(grace) = args.abandoned_request_grace_ms.map(Duration::from_millis) {
        config.client.producer.abandoned_request_grace = grace;
    }
    config.client.batch_bytes = batch_bytes;
    let deadline_after = Duration::from_millis(args.deadline_ms);
    if let Some(dir) = &args.state_dir {
        let mut state = DurableState::new(dir.join("producer.state"));
        state.sync = args.state_sync;
        state.restored_deadline = deadline_after;
        config.durable = Some(state);
    }
    // Checked before the state directory is touched, with the producer's own message.
    config.check_batch_bytes().map_err(|e| e.to_string())?;
    let (mut journal, recovered) = match &args.state_dir {
        Some(dir) => {
            let (journal, recovered) = Journal::open(dir)?;
            (Some(journal), recovered)
        }
        None => (None, Recovered::default()),
    };
    let mut producer = Producer::new(config).map_err(|e| e.to_string())?;
    let mut places = Places {
        open: HashMap::new(),
        places: recovered.places,
    };
    // Lines already accepted before a restart: decided ones, and those in restored batches
    // (their outcomes come as the batches finish).
    let mut accepted: HashSet<usize> = recovered.fates.keys().copied().collect();
    for (tag, records) in producer.restored_batches() {
        for delta in 0..records {
            accepted.insert(places.line(tag, delta));
        }
    }
    let restored = producer.restored();
    if restored.batches > 0 || !recovered.fates.is_empty() {
        eprintln!(
            "produce: resuming: {} lines decided before, {} batches restored ({} records: {} to resend, {} not sent yet, {} decided)",
            recovered.fates.len(),
            restored.batches,
            restored.records,
            restored.stamped,
            restored.buffered,
            restored.decided
        );
    }
    let mut report = match &args.report {
        Some(path) => Some(BufWriter::new(
            File::create(path).map_err(|e| format!("cannot create {path}: {e}"))?,
        )),
        None => None,
    };

    let mut fates = Fates::default();
    let mut read = 0usize;
    // Restored batches are due `deadline_after` from the start.
    let mut last_deadline = if restored.batches > 0 {
        started + deadline_after
    } else {
        Instant::now()
    };
    let mut progress = Progress::new(args.progress);
    let mut refusals = Refusals::default();
    // The outcome of a line refused before it was sent.
    let refused = Fate {
        outcome: "not-persisted",
        partition: args.partition.unwrap_or(-1),
        offset: -1,
    };

    // Lines are read, and their deadlines start, on a thread of their own: a record waiting
    // for the broker must not delay the reading (and so the deadlines) of the ones behind it.
    // The read-ahead is bounded in bytes, so a slow broker slows the reading rather than
    // filling memory; a line is at most `batch_bytes` (checked above), longer ones are
    // skipped as they are read.
    let read_ahead = Arc::new(ReadAhead::new(READ_AHEAD_BYTES));
    let (lines, incoming) = mpsc::channel::<(Line, Instant)>();
    let reader = {
        let read_ahead = Arc::clone(&read_ahead);
        thread::spawn(move || -> io::Result<()> {
            let stdin = io::stdin();
            let mut input = stdin.lock();
            let mut buffer = Vec::with_capacity(batch_bytes + 1);
            while let Some(line) = read_line(&mut input, &mut buffer, batch_bytes)? {
                let read_at = Instant::now();
                read_ahead.take(line.cost());
                if lines.send((line, read_at)).is_err() {
                    return Ok(());
                }
            }
            Ok(())
        })
    };
    loop {
        // While lines come, the producer runs in `send_tagged` (it takes a turn of the
        // sockets at most every millisecond), as it always did. Once no line has come for a
        // moment, it is driven here, so that linger, deadlines and outcomes keep their time
        // however long the input is idle.
        let idle = producer.is_idle();
        let (line, read_at) = match incoming.recv_timeout(if idle { IDLE_WAIT } else { BUSY_POLL })
        {
            Ok(next) => next,
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                // The journals reach the file before the producer runs (it may store a batch
                // in this call).
                sync(&mut journal)?;
                producer.poll(if idle { Duration::ZERO } else { BUSY_POLL });
                settle(&mut producer, &mut places, &mut fates, &mut journal)?;
                if let Some(e) = producer.storage_error() {
                    return Err(format!("durable state: {e}"));
                }
                progress.show(&producer, &fates, false);
                continue;
            }
        };
        read_ahead.give(line.cost());
        let index = read;
        read += 1;
        fates.extend_to(index + 1);
        if let Some(fate) = recovered.fates.get(&index) {
            fates.decide(index, *fate);
        }
        if accepted.contains(&index) {
            continue;
        }
        let text = match &line {
            Line::Bytes(bytes) => bytes.as_slice(),
            Line::TooLong(length) => {
                // Its bytes were not kept: it is refused as the producer would.
                refusals.note(
                    index,
                    format_args!(
                        "{} (a line of {length} bytes; a batch holds {batch_bytes})",
                        transport_std::Error::Send(SendError::RecordTooLarge)
                    ),
                );
                fates.decide(index, refused);
                if let Some(j) = &mut journal {
                    j.outcome(index, &refused)?;
                }
                continue;
            }
        };
        let text = text.strip_suffix(b"\n").unwrap_or(text);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        let (key, value) = match separator {
            Some(sep) => split(text, sep),
            None => (None, text),
        };
        let deadline = read_at + deadline_after;
        last_deadline = last_deadline.max(deadline);
        let record = ProducerRecord {
            topic: &args.topic,
            partition: args.partition,
            key,
            value: Some(value),
            headers: &[],
            timestamp: None,
        };
        let sent = loop {
            sync(&mut journal)?;
            match producer.send_tagged(&record, index as u64, deadline) {
                // Every slot holds an outcome to take (durable state): take them, go again.
                Err(transport_std::Error::Send(SendError::Full)) => {
                    settle(&mut producer, &mut places, &mut fates, &mut journal)?;
                    if let Some(e) = producer.storage_error() {
                        return Err(format!("durable state: {e}"));
                    }
                }
                other => break other,
            }
        };
        match sent {
            Ok(receipt) => {
                let tag = if receipt.offset_delta == 0 {
                    places.open.insert(receipt.batch, index as u64);
                    index as u64
                } else {
                    places
                        .open
                        .get(&receipt.batch)
                        .copied()
                        .unwrap_or((index - receipt.offset_delta as usize) as u64)
                };
                if places.line(tag, receipt.offset_delta) != index {
                    places.places.insert((tag, receipt.offset_delta), index);
                    if let Some(j) = &mut journal {
                        j.place(tag, receipt.offset_delta, index)?;
                    }
                }
            }
            // The record was refused, or not accepted by its deadline: it is this record's
            // outcome, and the run goes on.
            Err(e @ (transport_std::Error::Send(_) | transport_std::Error::Deadline(_))) => {
                refusals.note(index, &e);
                fates.decide(index, refused);
                if let Some(j) = &mut journal {
                    j.outcome(index, &refused)?;
                }
            }
            // The durable state failed: the producer has stopped.
            Err(e) => return Err(e.to_string()),
        }
        settle(&mut producer, &mut places, &mut fates, &mut journal)?;
        progress.show(&producer, &fates, false);
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
        sync(&mut journal)?;
        let done = producer.flush(limit.min(Instant::now() + Duration::from_millis(200)));
        settle(&mut producer, &mut places, &mut fates, &mut journal)?;
        if let Some(e) = producer.storage_error() {
            return Err(format!("durable state: {e}"));
        }
        progress.show(&producer, &fates, false);
        if done || give_up.is_some_and(|g| Instant::now() >= g) {
            break;
        }
    }
    // Outcomes already decided but not yet taken (a flush that timed out).
    settle(&mut producer, &mut places, &mut fates, &mut journal)?;
    sync(&mut journal)?;
    progress.show(&producer, &fates, true);
    refusals.finish();
    if let Some(dir) = &args.state_dir {
        // The input position: every line before it has its outcome.
        let position = fates
            .all
            .iter()
            .position(Option::is_none)
            .unwrap_or(fates.len());
        let tmp = dir.join("position.tmp");
        std::fs::write(&tmp, format!("{position}\n"))
            .and_then(|()| std::fs::rename(&tmp, dir.join("position")))
            .map_err(|e| format!("state: {e}"))?;
    }

    if fates.len() > read {
        eprintln!(
            "produce: the state holds lines beyond the {read} read: was the input shortened?"
        );
    }
    let (mut persisted, mut not_persisted, mut possibly) = (0u64, 0u64, 0u64);
    for (index, fate) in fates.all.iter().take(read).enumerate() {
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

/// One input line, as the reader hands it over.
enum Line {
    /// Its bytes (with its line end, if any), at most `batch_bytes` without it.
    Bytes(Vec<u8>),
    /// A line longer than `batch_bytes`, which no batch can hold: its length without the line
    /// end. Its bytes were skipped as they were read.
    TooLong(u64),
}

impl Line {
    /// What it takes of the read-ahead.
    fn cost(&self) -> usize {
        match self {
            Line::Bytes(bytes) => bytes.len() + LINE_COST,
            Line::TooLong(_) => LINE_COST,
        }
    }
}

/// Reads the next line, keeping at most `limit` bytes of it and its newline in `buffer`
/// (whose capacity is `limit + 1`): the rest of a longer line is skipped, in pieces of at
/// most that size. `None` at the end of the input.
fn read_line(
    input: &mut impl BufRead,
    buffer: &mut Vec<u8>,
    limit: usize,
) -> io::Result<Option<Line>> {
    buffer.clear();
    let piece = limit as u64 + 1;
    let n = input.by_ref().take(piece).read_until(b'\n', buffer)?;
    if n == 0 {
        return Ok(None);
    }
    if buffer.last() == Some(&b'\n') || buffer.len() <= limit {
        // A whole line (the last one may lack its newline).
        return Ok(Some(Line::Bytes(buffer.as_slice().to_vec())));
    }
    let mut length = buffer.len() as u64;
    loop {
        buffer.clear();
        let n = input.by_ref().take(piece).read_until(b'\n', buffer)?;
        let ended = buffer.last() == Some(&b'\n');
        length += (n - usize::from(ended)) as u64;
        if n == 0 || ended {
            buffer.clear();
            return Ok(Some(Line::TooLong(length)));
        }
    }
}

/// Splits `line` at the first `separator` (not empty): (key, value).
fn split<'l>(line: &'l [u8], separator: &[u8]) -> (Option<&'l [u8]>, &'l [u8]) {
    match line
        .windows(separator.len())
        .position(|window| window == separator)
    {
        Some(at) => (Some(&line[..at]), &line[at + separator.len()..]),
        None => (None, line),
    }
}

/// The read-ahead's bytes: the reader takes a line's cost before handing it over and waits
/// while that would pass the limit; the main loop gives it back as it takes the line, and wakes
/// the reader only once half the limit is free (not at every line).
struct ReadAhead {
    state: Mutex<Held>,
    room: Condvar,
    limit: usize,
}

struct Held {
    bytes: usize,
    /// The reader waits for room.
    waiting: bool,
}

impl ReadAhead {
    fn new(limit: usize) -> Self {
        ReadAhead {
            state: Mutex::new(Held {
                bytes: 0,
                waiting: false,
            }),
            room: Condvar::new(),
            limit,
        }
    }

    fn take(&self, cost: usize) {
        let mut held = self.state.lock().unwrap_or_else(|e| e.into_inner());
        while held.bytes > 0 && held.bytes + cost > self.limit {
            held.waiting = true;
            held = self.room.wait(held).unwrap_or_else(|e| e.into_inner());
        }
        held.waiting = false;
        held.bytes += cost;
    }

    fn give(&self, cost: usize) {
        let mut held = self.state.lock().unwrap_or_else(|e| e.into_inner());
        held.bytes -= cost;
        if held.waiting && held.bytes <= self.limit / 2 {
            self.room.notify_one();
        }
    }
}

/// Every line's outcome as far as known, by line index, with running counts.
#[derive(Default)]
struct Fates {
    all: Vec<Option<Fate>>,
    persisted: usize,
    decided: usize,
}

impl Fates {
    fn len(&self) -> usize {
        self.all.len()
    }

    fn extend_to(&mut self, len: usize) {
        if self.all.len() < len {
            self.all.resize(len, None);
        }
    }

    fn is_decided(&self, index: usize) -> bool {
        self.all.get(index).is_some_and(Option::is_some)
    }

    /// Gives line `index` its outcome, unless it has one: the first is kept.
    fn decide(&mut self, index: usize, fate: Fate) {
        self.extend_to(index + 1);
        if self.all[index].is_none() {
            self.all[index] = Some(fate);
            self.decided += 1;
            self.persisted += usize::from(fate.outcome == "persisted");
        }
    }
}

/// Lines refused before they were sent: the first few named on stderr, all counted.
#[derive(Default)]
struct Refusals {
    count: usize,
}

impl Refusals {
    fn note(&mut self, index: usize, reason: impl Display) {
        self.count += 1;
        if self.count <= REFUSALS_SHOWN {
            eprintln!("produce: line {index} not persisted: {reason}");
        }
    }

    fn finish(&self) {
        if self.count > REFUSALS_SHOWN {
            eprintln!(
                "produce: {} lines not persisted in all because they were refused ({} more than shown)",
                self.count,
                self.count - REFUSALS_SHOWN
            );
        }
    }
}

fn sync(journal: &mut Option<Journal>) -> Result<(), String> {
    journal.as_mut().map_or(Ok(()), Journal::sync)
}

fn settle(
    producer: &mut Producer,
    places: &mut Places,
    fates: &mut Fates,
    journal: &mut Option<Journal>,
) -> Result<(), String> {
    loop {
        // The producer may forget the previous batch's outcomes in this call.
        sync(journal)?;
        let Some(RecordDelivery {
            receipt,
            outcome,
            offset,
            batch_tag,
            ..
        }) = producer.poll_delivery()
        else {
            return Ok(());
        };
        places.open.remove(&receipt.batch);
        // A restored batch may hold lines not read again yet.
        let index = places.line(batch_tag, receipt.offset_delta);
        // A batch handed out again after a restart is reported once.
        if fates.is_decided(index) {
            continue;
        }
        let fate = Fate {
            outcome: kind(&outcome),
            partition: receipt.partition,
            offset: offset.unwrap_or(-1),
        };
        fates.decide(index, fate);
        if let Some(j) = journal {
            j.outcome(index, &fate)?;
        }
    }
}
