//! `produce`: reads records from stdin, one per line, and produces them idempotently, with a
//! delivery deadline per record, reporting every record's outcome.
//!
//! Exit status: 0 when every record was persisted, 2 otherwise, 1 on a usage or setup error.
//!
//! With `--state-dir DIR` it is a log shipper that survives crashes: the producer's batches,
//! stamps and outcomes live in `DIR/producer.state` (see `transport_std::DurableState`), the
//! outcomes handed out in `DIR/outcomes`, and where each record sits in its batch (when not
//! implied by the line numbers) in `DIR/lines`. Started again with the same input and DIR
//! after a crash, it first finishes the batches it had accepted, skips every input line
//! already accepted (the ones with an outcome, and the ones in restored batches) and goes on
//! with the rest; its summary and report cover the whole input, each line once.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use producer_core::state::{BatchToken, Outcome, UnknownOutcome};
use transport_std::{DurableState, Producer, ProducerConfig, Record, RecordDelivery};

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
    /// Largest batch in bytes [default: 65536, or 32768 with --state-dir, whose items must
    /// stay below 64 KiB].
    #[arg(long, value_name = "N")]
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
    #[arg(long, value_name = "MS")]
    abandoned_request_grace_ms: Option<u64>,
}

#[derive(Clone, Copy)]
struct Fate {
    outcome: &'static str,
    partition: i32,
    offset: i64,
}

fn outcome_name(name: &str) -> Option<&'static str> {
    ["persisted", "not-persisted", "possibly-persisted"]
        .into_iter()
        .find(|n| *n == name)
}

/// The tool's own journals in the state directory. Both are append-only text, written to the
/// file (not just buffered) before the producer is called again, because the producer may
/// make the matching batch durable, or forget a handed-out outcome, in that call.
struct Journal {
    outcomes: BufWriter<File>,
    lines: BufWriter<File>,
    dirty: bool,
}

/// What the journals held at startup.
#[derive(Default)]
struct Recovered {
    /// Line index -> its outcome, as first handed out.
    fates: HashMap<usize, Fate>,
    /// (batch tag, offset in batch) -> line index, where it is not tag + offset.
    places: HashMap<(u64, u32), usize>,
}

impl Journal {
    fn open(dir: &Path) -> Result<(Journal, Recovered), String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut recovered = Recovered::default();
        let outcomes_path = dir.join("outcomes");
        let lines_path = dir.join("lines");
        for (path, is_outcomes) in [(&outcomes_path, true), (&lines_path, false)] {
            let Ok(file) = File::open(path) else { continue };
            for line in BufReader::new(file).lines() {
                let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
                let fields: Vec<&str> = line.split(' ').collect();
                // A line cut by a crash is incomplete: ignore it (it was not acted on).
                if is_outcomes {
                    if let [index, outcome, partition, offset] = fields[..]
                        && let (Ok(index), Some(outcome), Ok(partition), Ok(offset)) = (
                            index.parse(),
                            outcome_name(outcome),
                            partition.parse(),
                            offset.parse(),
                        )
                    {
                        recovered.fates.entry(index).or_insert(Fate {
                            outcome,
                            partition,
                            offset,
                        });
                    }
                } else if let [tag, delta, index] = fields[..]
                    && let (Ok(tag), Ok(delta), Ok(index)) =
                        (tag.parse(), delta.parse(), index.parse())
                {
                    recovered.places.insert((tag, delta), index);
                }
            }
        }
        let append = |path: &Path| -> Result<BufWriter<File>, String> {
            // Finish a line a crash may have cut, so the next entry starts clean.
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            file.write_all(b"\n")
                .map_err(|e| format!("{}: {e}", path.display()))?;
            Ok(BufWriter::new(file))
        };
        Ok((
            Journal {
                outcomes: append(&outcomes_path)?,
                lines: append(&lines_path)?,
                dirty: false,
            },
            recovered,
        ))
    }

    fn place(&mut self, tag: u64, delta: u32, index: usize) -> Result<(), String> {
        self.dirty = true;
        writeln!(self.lines, "{tag} {delta} {index}").map_err(|e| format!("state: {e}"))
    }

    fn outcome(&mut self, index: usize, fate: &Fate) -> Result<(), String> {
        self.dirty = true;
        writeln!(
            self.outcomes,
            "{index} {} {} {}",
            fate.outcome, fate.partition, fate.offset
        )
        .map_err(|e| format!("state: {e}"))
    }

    /// Hands what is buffered to the file before the producer runs again.
    fn sync(&mut self) -> Result<(), String> {
        if self.dirty {
            self.lines.flush().map_err(|e| format!("state: {e}"))?;
            self.outcomes.flush().map_err(|e| format!("state: {e}"))?;
            self.dirty = false;
        }
        Ok(())
    }
}

/// Which line each record of a batch is: `tag + delta` unless the journal says otherwise.
struct Places {
    /// Tag of each batch still open to records, by token.
    open: HashMap<BatchToken, u64>,
    places: HashMap<(u64, u32), usize>,
}

impl Places {
    fn line(&self, tag: u64, delta: u32) -> usize {
        self.places
            .get(&(tag, delta))
            .copied()
            .unwrap_or((tag + u64::from(delta)) as usize)
    }
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
    config.abandoned_request_grace = args.abandoned_request_grace_ms.map(Duration::from_millis);
    config.batch_bytes = args.batch_bytes.unwrap_or(if args.state_dir.is_some() {
        32 * 1024
    } else {
        64 * 1024
    });
    let deadline_after = Duration::from_millis(args.deadline_ms);
    let (mut journal, recovered) = match &args.state_dir {
        Some(dir) => {
            let mut state = DurableState::new(dir.join("producer.state"));
            state.sync = args.state_sync;
            state.restored_deadline = deadline_after;
            config.durable = Some(state);
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

    let mut fates: Vec<Option<Fate>> = Vec::new();
    let mut read = 0usize;
    // Restored batches are due `deadline_after` from the start.
    let mut last_deadline = if restored.batches > 0 {
        started + deadline_after
    } else {
        Instant::now()
    };
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
        let index = read;
        read += 1;
        if fates.len() <= index {
            fates.resize(index + 1, None);
        }
        if fates[index].is_none() {
            fates[index] = recovered.fates.get(&index).copied();
        }
        if accepted.contains(&index) {
            continue;
        }
        last_deadline = last_deadline.max(deadline);
        let record = Record {
            topic: &args.topic,
            partition: args.partition,
            key,
            value: Some(value),
            headers: &[],
        };
        let sent = loop {
            sync(&mut journal)?;
            match producer.send_tagged(&record, index as u64, deadline) {
                // Every slot holds an outcome to take (durable state): take them, go again.
                Err(transport_std::Error::Send(producer_core::client::SendError::Full)) => {
                    settle(&mut producer, &mut places, &mut fates, &mut journal)?;
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
            Err(transport_std::Error::Deadline(_)) => {
                let fate = Fate {
                    outcome: "not-persisted",
                    partition: args.partition.unwrap_or(-1),
                    offset: -1,
                };
                fates[index] = Some(fate);
                if let Some(j) = &mut journal {
                    j.outcome(index, &fate)?;
                }
            }
            Err(e) => return Err(e.to_string()),
        }
        settle(&mut producer, &mut places, &mut fates, &mut journal)?;
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
        sync(&mut journal)?;
        let done = producer.flush(limit.min(Instant::now() + Duration::from_millis(200)));
        settle(&mut producer, &mut places, &mut fates, &mut journal)?;
        if let Some(e) = producer.storage_error() {
            return Err(format!("durable state: {e}"));
        }
        progress.show(&producer, fates.len(), &fates, false);
        if done || give_up.is_some_and(|g| Instant::now() >= g) {
            break;
        }
    }
    // Outcomes already decided but not yet taken (a flush that timed out).
    settle(&mut producer, &mut places, &mut fates, &mut journal)?;
    sync(&mut journal)?;
    progress.show(&producer, fates.len(), &fates, true);
    if let Some(dir) = &args.state_dir {
        // The input position: every line before it has its outcome.
        let position = fates
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
    for (index, fate) in fates.iter().take(read).enumerate() {
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

fn sync(journal: &mut Option<Journal>) -> Result<(), String> {
    journal.as_mut().map_or(Ok(()), Journal::sync)
}

fn settle(
    producer: &mut Producer,
    places: &mut Places,
    fates: &mut Vec<Option<Fate>>,
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
        let index = places.line(batch_tag, receipt.offset_delta);
        if index >= fates.len() {
            // A restored batch of lines not read again yet.
            fates.resize(index + 1, None);
        }
        // A batch handed out again after a restart is reported once.
        if fates[index].is_some() {
            continue;
        }
        let fate = Fate {
            outcome: kind(&outcome),
            partition: receipt.partition,
            offset: offset.unwrap_or(-1),
        };
        fates[index] = Some(fate);
        if let Some(j) = journal {
            j.outcome(index, &fate)?;
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
