//! Running the `produce` tool inside a network namespace: its exit, its report and summary, its
//! peak memory and CPU time (measured by the `peak_rss` helper, `tests/src/bin/peak_rss.rs`), and the TCP connections the
//! namespace's kernel opened (`ActiveOpens` of `/proc/thread-self/net/snmp`, which counts
//! every `connect()` that sent a SYN, refused ones included).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::ledger::Reported;
use crate::netns::{NetNs, ip_binary};
use crate::produce_binary;

/// The `peak_rss` helper (`tests/src/bin/peak_rss.rs`), which cargo builds next to the
/// test executables for integration tests.
fn peak_rss_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let helper = dir.join(format!("peak_rss{}", std::env::consts::EXE_SUFFIX));
    assert!(helper.exists(), "{} missing", helper.display());
    helper
}

/// What one run of the tool left.
#[derive(Debug)]
pub struct ToolRun {
    /// Exit code (`None`: killed by a signal, e.g. by the hard limit).
    pub code: Option<i32>,
    /// Whether the hard limit had to kill it.
    pub killed: bool,
    /// From spawn to exit.
    pub elapsed: Duration,
    /// Peak resident set of the tool, KiB (0 when it was killed).
    pub max_rss_kib: i64,
    /// CPU time (user and system) the tool used, milliseconds.
    pub cpu_ms: i64,
    /// Stdout.
    pub stdout: String,
    /// Stderr.
    pub stderr: String,
    /// The report file: one outcome per input line, in input order.
    pub outcomes: Vec<Reported>,
    /// The JSON summary (last stdout line), when there is one.
    pub summary: Option<HashMap<String, i64>>,
    /// `connect()` calls that sent a SYN in the namespace during the run.
    pub active_opens: u64,
}

/// The namespace's `Tcp: ActiveOpens` counter.
pub fn active_opens(ns: &NetNs) -> u64 {
    let snmp = ns
        .run(|| std::fs::read_to_string("/proc/thread-self/net/snmp"))
        .expect("read /proc/thread-self/net/snmp");
    let mut tcp = snmp.lines().filter(|l| l.starts_with("Tcp:"));
    let (names, values) = (
        tcp.next().expect("Tcp header"),
        tcp.next().expect("Tcp values"),
    );
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "ActiveOpens")
        .and_then(|(_, v)| v.parse().ok())
        .expect("ActiveOpens")
}

/// Runs `produce ARGS --report FILE` in `ns` (through `ip netns exec`, so
/// `/etc/netns/NS/resolv.conf` applies when present), writing `input` to its stdin and then
/// closing it. Kills it at `hard_limit`.
pub fn run_produce(ns: &NetNs, args: &[String], input: Vec<u8>, hard_limit: Duration) -> ToolRun {
    let report = std::env::temp_dir().join(format!(
        "hostile-{}-{}.report",
        std::process::id(),
        rand::random::<u64>()
    ));
    let usage_file = report.with_extension("usage");
    // Built (once per test process) before the clock starts: the first cases would otherwise
    // count cargo's build time against their deadlines.
    let produce = produce_binary();
    let opens_before = active_opens(ns);
    let started = Instant::now();
    let mut child = Command::new(peak_rss_binary())
        .arg(&usage_file)
        .arg(ip_binary())
        .args(["netns", "exec", ns.name()])
        .arg(&produce)
        .args(args)
        .arg("--report")
        .arg(&report)
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn produce");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let stdout = thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let stderr = thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let mut killed = false;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for produce") {
            break status;
        }
        if started.elapsed() > hard_limit && !killed {
            // SAFETY: signals the process group the helper leads (ours, made above).
            unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
            killed = true;
        }
        thread::sleep(Duration::from_millis(5));
    };
    let elapsed = started.elapsed();
    writer.join().expect("stdin writer");
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    let usage: Vec<i64> = std::fs::read_to_string(&usage_file)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let _ = std::fs::remove_file(&usage_file);
    let (max_rss_kib, cpu_ms) = match usage[..] {
        [rss, user, system] => (rss, user + system),
        _ => (0, 0),
    };
    let code = if killed { None } else { status.code() };
    let outcomes = std::fs::read_to_string(&report)
        .map(|text| text.lines().map(parse_report_line).collect())
        .unwrap_or_default();
    let _ = std::fs::remove_file(&report);
    ToolRun {
        code,
        killed,
        elapsed,
        max_rss_kib,
        cpu_ms,
        summary: parse_summary(&stdout),
        stdout,
        stderr,
        outcomes,
        active_opens: active_opens(ns).saturating_sub(opens_before),
    }
}

/// `INDEX OUTCOME PARTITION OFFSET`.
fn parse_report_line(line: &str) -> Reported {
    let f: Vec<&str> = line.split(' ').collect();
    assert_eq!(f.len(), 4, "report line {line:?}");
    match f[1] {
        "persisted" => Reported::Persisted {
            partition: f[2].parse().expect("partition"),
            offset: f[3].parse().expect("offset"),
        },
        "not-persisted" => Reported::NotPersisted,
        "possibly-persisted" => Reported::PossiblyPersisted,
        other => panic!("report line {line:?}: outcome {other:?}"),
    }
}

/// The last stdout line as a flat JSON object of numbers, if it is one.
fn parse_summary(stdout: &str) -> Option<HashMap<String, i64>> {
    let line = stdout.lines().last()?.trim();
    let inner = line.strip_prefix('{')?.strip_suffix('}')?;
    inner
        .split(',')
        .map(|kv| {
            let (k, v) = kv.split_once(':')?;
            Some((
                k.trim().trim_matches('"').to_string(),
                v.trim().parse().ok()?,
            ))
        })
        .collect()
}

/// `/etc/netns/NS/resolv.conf` naming one DNS server (tried once, 1 s timeout), which
/// `ip netns exec NS` mounts over `/etc/resolv.conf`; removed on drop.
pub struct NsResolvConf {
    dir: PathBuf,
}

impl NsResolvConf {
    /// Writes it for `ns` with `server` as the only name server.
    pub fn new(ns: &NetNs, server: std::net::Ipv4Addr) -> NsResolvConf {
        let dir = PathBuf::from("/etc/netns").join(ns.name());
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        std::fs::write(
            dir.join("resolv.conf"),
            format!("nameserver {server}\noptions timeout:1 attempts:1\n"),
        )
        .expect("write resolv.conf");
        NsResolvConf { dir }
    }
}

impl Drop for NsResolvConf {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
