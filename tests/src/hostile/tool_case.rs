//! One hostile case against the `produce` tool: a namespace of its own, the fake broker in it
//! (or nothing listening, or a bootstrap name nobody resolves), the tool run on a fixed input,
//! and every check of the suite: no panic and no usage-error exit, every line's outcome by
//! its deadline + [`OUTCOME_SLACK`] + the tool's CPU time, no false outcome, the case's [`Expect`], the counts
//! within [`Bounds`], and peak memory within [`rss_bound_kib`].

use std::net::TcpListener;
use std::time::Duration;

use super::bounds::reconnects_within;
use super::broker::{FakeBroker, Misbehaviour, TOPIC};
use super::ledger::check_outcomes;
use super::tool::{NsResolvConf, run_produce};
use super::verdict::{Bounds, Expect, OUTCOME_SLACK};
use crate::netns::{BROKER_IP, NetNs};

/// Records per case: one line each.
pub const RECORDS: usize = 40;
/// The tool's `--deadline-ms`: what most cases run for, since their records cannot all be
/// persisted.
pub const DEADLINE: Duration = Duration::from_millis(1500);
/// The `--deadline-ms` of cases that expect every record persisted: long, so that the
/// machine's speed never decides them (a debug build takes about half a CPU-second to read
/// metadata with 10,000 brokers); they end as soon as the last record is acknowledged.
pub const LONG_DEADLINE: Duration = Duration::from_secs(10);
/// The tool's `--batch-bytes`.
pub const BATCH_BYTES: usize = 16 * 1024;
/// The port the fake broker listens on inside its namespace.
pub const PORT: u16 = 9092;

/// Peak resident memory the tool may reach, KiB: what it holds by construction (transport-std's
/// 256 batch slots of `--batch-bytes`; per connection, of at most 8, a 256 KiB receive buffer
/// and one response frame of at most `max_response_bytes`, 8 MiB; 4 MiB of input read ahead)
/// and 24 MiB for the program, its threads and the allocator.
pub fn rss_bound_kib() -> i64 {
    let held = 256 * BATCH_BYTES + 8 * (256 * 1024 + 8 * 1024 * 1024) + 4 * 1024 * 1024;
    (24 * 1024 * 1024 + held) as i64 / 1024
}

/// Where the tool is pointed.
#[derive(Clone, Copy, Debug)]
pub enum Target {
    /// The fake broker, misbehaving so.
    Broker(Misbehaviour),
    /// A port nothing listens on.
    Refused,
    /// A name the namespace's DNS server answers NXDOMAIN.
    Unresolvable,
}

/// The value of line `i`.
pub fn value(i: usize) -> Vec<u8> {
    format!("hostile-{i:04}").into_bytes()
}

/// Runs one case and panics with every check that failed (after printing what it saw).
pub fn run_tool_case(name: &str, target: Target, expect: Expect) {
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
    let _resolv = matches!(target, Target::Unresolvable).then(|| NsResolvConf::new(&ns, BROKER_IP));
    let bootstrap = match (&broker, target) {
        (Some(b), _) => b.address(),
        (None, Target::Unresolvable) => format!("no-such-host.invalid:{PORT}"),
        (None, _) => format!("{BROKER_IP}:{PORT}"),
    };
    let args: Vec<String> = [
        "--bootstrap",
        &bootstrap,
        "--topic",
        TOPIC,
        "--deadline-ms",
        &deadline.as_millis().to_string(),
        "--batch-bytes",
        &BATCH_BYTES.to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let values: Vec<Vec<u8>> = (0..RECORDS).map(value).collect();
    let mut input = Vec::new();
    for v in &values {
        input.extend_from_slice(v);
        input.push(b'\n');
    }
    let hard_limit = deadline + OUTCOME_SLACK + Duration::from_secs(8);
    let run = run_produce(&ns, &args, input, hard_limit);
    let (counts, ledger) = broker.map(FakeBroker::finish).unwrap_or_default();
    let queries = dns.as_ref().map(|d| d.queries().len() as u64);

    let mut failed = Vec::new();
    if run.killed {
        failed.push(format!(
            "still running at the hard limit {hard_limit:?}: killed"
        ));
    }
    if run.stderr.contains("panicked") {
        failed.push("it panicked".to_string());
    }
    match run.code {
        Some(0) | Some(2) => {}
        other => failed.push(format!("exit status {other:?} (0 or 2 expected)")),
    }
    // The tool decides on one thread: a deadline that falls while it is busy (reading metadata
    // with 100,000 partitions takes a debug build half a CPU-second) is decided when that work
    // is done, so the bound grants the tool's own CPU time besides the slack; a loaded machine
    // stretches that work, not the tool's waiting.
    let by = deadline + OUTCOME_SLACK + Duration::from_millis(run.cpu_ms.max(0) as u64);
    if run.elapsed > by {
        failed.push(format!(
            "ran {:?}: the last outcome came after deadline + slack ({by:?})",
            run.elapsed
        ));
    }
    let tally = match check_outcomes(&ledger, &values, &run.outcomes) {
        Ok(t) => Some(t),
        Err(e) => {
            failed.push(e);
            None
        }
    };
    if let Some(t) = tally {
        if let Err(e) = expect.check(t, RECORDS) {
            failed.push(e);
        }
        match &run.summary {
            Some(s) => {
                let said = (
                    s.get("persisted"),
                    s.get("not_persisted"),
                    s.get("possibly_persisted"),
                );
                let counted = (
                    t.persisted as i64,
                    t.not_persisted as i64,
                    t.possibly_persisted as i64,
                );
                if said != (Some(&counted.0), Some(&counted.1), Some(&counted.2)) {
                    failed.push(format!("summary {s:?} disagrees with the report {t:?}"));
                }
            }
            None => failed.push("no JSON summary".to_string()),
        }
    }
    let misbehaviour = match target {
        Target::Broker(m) => Some(m),
        _ => None,
    };
    let bounds = Bounds::new(run.elapsed, misbehaviour, &counts);
    failed.extend(bounds.check(&counts, Some(run.active_opens)));
    if let Some(q) = queries {
        // glibc asks A and AAAA once per lookup (attempts:1); lookups are connection
        // attempts to the bootstrap entry, paced by its reconnect backoff.
        let bound = 2 * reconnects_within(run.elapsed) + 2;
        if q > bound {
            failed.push(format!("DNS queries: {q} > bound {bound}"));
        }
    }
    if run.max_rss_kib > rss_bound_kib() {
        failed.push(format!(
            "peak RSS {} KiB > bound {} KiB",
            run.max_rss_kib,
            rss_bound_kib()
        ));
    }
    eprintln!(
        "hostile tool case {name}: {} | exit {:?} in {:?} ({} ms CPU), outcomes {tally:?}, peak RSS {} KiB | \
         connections {} (connect() {}), requests {:?}, max attempts per batch {} over {} batches, \
         epoch bumps {}, DNS queries {queries:?}, undecodable {} | bounds {bounds:?}",
        if failed.is_empty() { "PASS" } else { "FAIL" },
        run.code,
        run.elapsed,
        run.cpu_ms,
        run.max_rss_kib,
        counts.connections,
        run.active_opens,
        counts.requests,
        counts.max_attempts(),
        counts.batches(),
        counts.epoch_bumps,
        counts.undecodable,
    );
    if !failed.is_empty() {
        let tail: String = run
            .stderr
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        panic!(
            "hostile tool case {name} failed:\n- {}\nstdout tail: {:?}\nstderr tail:\n{tail}",
            failed.join("\n- "),
            run.stdout.lines().last()
        );
    }
}
