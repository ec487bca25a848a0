//! The gateway firmware (`examples/gateway`) under QEMU: install what it needs, build it, boot
//! it on an emulated mps2-an386 with user-mode networking, and collect its decoded log.
//!
//! Under QEMU's user network the guest reaches the host's 127.0.0.1 as 10.0.2.2, so a broker
//! started on loopback (e.g. [`crate::Tansu`]) is reachable from the firmware with no setup;
//! the firmware maps loopback addresses a broker advertises to 10.0.2.2 itself.
//!
//! - [`prepare`]: everything below, once per process; returns the firmware's ELF.
//! - [`ensure_qemu`], [`ensure_defmt_print`], [`build_gateway`]: the steps.
//! - [`run_gateway`]: one boot, with a timeout; QEMU's exit status is the firmware's.
//!   [`run_gateway_with`] hands each decoded log line to a closure instead of stderr;
//!   [`run_gateway_counting`] runs under `-icount shift=0` (SysTick counts instructions).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

/// The firmware's target.
pub const TARGET: &str = "thumbv7em-none-eabihf";

/// `examples/gateway` in this repository.
pub fn gateway_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/gateway")
}

/// Runs `program args`, echoing the command line to stderr; panics unless it succeeds.
fn run(program: &str, args: &[&str], envs: &[(&str, &str)]) {
    eprintln!("qemu harness: $ {program} {}", args.join(" "));
    let status = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .stdin(Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    assert!(
        status.success(),
        "`{program} {}` failed: {status}",
        args.join(" ")
    );
}

/// Whether `program args` starts and exits 0.
fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Installs Debian's `qemu-system-arm` unless `qemu-system-arm --version` works (CI runs as
/// root on a fresh Debian 12). Panics if the install fails.
pub fn ensure_qemu() {
    if succeeds("qemu-system-arm", &["--version"]) {
        return;
    }
    run("apt-get", &["update"], &[]);
    run(
        "apt-get",
        &[
            "install",
            "-y",
            "--no-install-recommends",
            "qemu-system-arm",
        ],
        &[("DEBIAN_FRONTEND", "noninteractive")],
    );
}

/// Installs `defmt-print` (which decodes the firmware's log) with cargo unless
/// `defmt-print --version` works. Panics if the install fails.
pub fn ensure_defmt_print() {
    if succeeds("defmt-print", &["--version"]) {
        return;
    }
    run(
        "cargo",
        &["install", "defmt-print", "--version", "1.2.0", "--locked"],
        &[],
    );
}

/// Builds the firmware (`cargo build --release` in `examples/gateway`, which has its own
/// workspace, target and linker setup), adding the Rust target first if it is missing.
/// Returns the ELF's path. Panics if the build fails.
pub fn build_gateway() -> PathBuf {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == TARGET)
        })
        .unwrap_or(false);
    if !installed {
        run("rustup", &["target", "add", TARGET], &[]);
    }
    let dir = gateway_dir();
    eprintln!(
        "qemu harness: (in {}) $ cargo build --release",
        dir.display()
    );
    // The firmware's .cargo/config.toml picks the target and linker scripts; flags or a
    // target directory from the environment would override them.
    let output = Command::new("cargo")
        .args(["build", "--release"])
        .current_dir(&dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET_DIR")
        .stdin(Stdio::null())
        .output()
        .expect("start cargo");
    // Through eprint, so the test harness captures it with the test's output.
    eprint!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success(),
        "building examples/gateway failed: {}",
        output.status
    );
    dir.join("target").join(TARGET).join("release/gateway")
}

/// Installs QEMU and defmt-print if missing and builds the firmware, once per process
/// (tests running in parallel share it). Returns the ELF's path.
pub fn prepare() -> PathBuf {
    static ELF: OnceLock<PathBuf> = OnceLock::new();
    ELF.get_or_init(|| {
        ensure_qemu();
        ensure_defmt_print();
        build_gateway()
    })
    .clone()
}

/// What one boot of the firmware did.
#[derive(Debug)]
pub struct GatewayRun {
    /// QEMU's exit status: the firmware's exit code (0 every record persisted, 2 some not,
    /// 1 configuration or fatal error, 101 panic), or the kill signal after a timeout.
    pub status: ExitStatus,
    /// QEMU was killed at the timeout.
    pub timed_out: bool,
    /// The firmware's log, decoded by defmt-print, one line per entry (e.g.
    /// `INFO  summary records=...`).
    pub log_lines: Vec<String>,
    /// The host's wall clock when each line of `log_lines` arrived, decoded (semihosting
    /// writes are synchronous, so this is about when the firmware logged it, give or take
    /// the pipe and the decoder).
    pub log_arrivals: Vec<SystemTime>,
    /// Wall time from starting QEMU to its exit.
    pub elapsed: Duration,
}

impl GatewayRun {
    /// The firmware's exit code, unless QEMU was killed.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The text after `prefix` of the first log entry whose message starts with it (the level
    /// and spacing before the message are skipped).
    pub fn find(&self, prefix: &str) -> Option<&str> {
        self.log_lines.iter().find_map(|line| {
            let message = line
                .trim_start()
                .split_once(char::is_whitespace)
                .map_or("", |(_, rest)| rest.trim_start());
            message.strip_prefix(prefix)
        })
    }

    /// The numeric `key=value` fields of the firmware's last line, `summary records=N
    /// persisted=P not_persisted=X possibly_persisted=Y undecided=U elapsed_ms=...`, if the
    /// log has it.
    pub fn summary(&self) -> Option<HashMap<String, u64>> {
        let line = self.find("summary ")?;
        Some(
            line.split_whitespace()
                .filter_map(|field| {
                    let (key, value) = field.split_once('=')?;
                    Some((key.to_string(), value.parse().ok()?))
                })
                .collect(),
        )
    }
}

/// Boots `elf` on QEMU's mps2-an386 with a LAN9118 on the user network and `args` as its
/// semihosting arguments (after argument 0, `gateway`), e.g. `["port=9092", "records=100"]`.
/// QEMU's stdout (the defmt stream) is piped into `defmt-print -e ELF`; each decoded line is
/// echoed to stderr as it arrives. QEMU is killed once `timeout` has passed.
///
/// Panics if QEMU or defmt-print cannot be started.
pub fn run_gateway(elf: &Path, args: &[String], timeout: Duration) -> GatewayRun {
    run_gateway_qemu(elf, args, timeout, &[])
}

/// [`run_gateway`] under QEMU's instruction counting (`-icount shift=0`): one guest
/// instruction is one nanosecond of the virtual clock, so the firmware's SysTick readings
/// (its `bench=` figures, its TLS handshake counts) are instruction counts. While the guest
/// sleeps the virtual clock follows the host's, so the network and timers work as usual.
pub fn run_gateway_counting(elf: &Path, args: &[String], timeout: Duration) -> GatewayRun {
    run_gateway_qemu(elf, args, timeout, &["-icount", "shift=0"])
}

fn run_gateway_qemu(
    elf: &Path,
    args: &[String],
    timeout: Duration,
    qemu_args: &[&str],
) -> GatewayRun {
    // A SASL password is not echoed (the firmware does not log it either).
    let shown: Vec<&str> = args
        .iter()
        .map(|a| {
            if a.starts_with("password=") {
                "password=<redacted>"
            } else {
                a
            }
        })
        .collect();
    eprintln!(
        "qemu harness: booting {} with {}",
        elf.display(),
        shown.join(" ")
    );
    let run = run_gateway_qemu_with(elf, args, timeout, qemu_args, |line| {
        eprintln!("gateway: {line}")
    });
    if run.timed_out {
        eprintln!("qemu harness: timed out after {timeout:?}; killed QEMU");
    }
    eprintln!(
        "qemu harness: QEMU exited with {} after {:?}",
        run.status, run.elapsed
    );
    run
}

/// [`run_gateway`], quietly: each decoded log line goes to `on_line` as it arrives (from
/// another thread) instead of stderr. QEMU's and defmt-print's own stderr still go to stderr.
///
/// Panics if QEMU or defmt-print cannot be started.
pub fn run_gateway_with(
    elf: &Path,
    args: &[String],
    timeout: Duration,
    on_line: impl FnMut(&str) + Send + 'static,
) -> GatewayRun {
    run_gateway_qemu_with(elf, args, timeout, &[], on_line)
}

fn run_gateway_qemu_with(
    elf: &Path,
    args: &[String],
    timeout: Duration,
    qemu_args: &[&str],
    mut on_line: impl FnMut(&str) + Send + 'static,
) -> GatewayRun {
    let mut semihosting = String::from("enable=on,target=native,arg=gateway");
    for arg in args {
        // QEMU's option syntax escapes a comma by doubling it.
        semihosting.push_str(",arg=");
        semihosting.push_str(&arg.replace(',', ",,"));
    }
    let started = Instant::now();
    let mut qemu = Command::new("qemu-system-arm")
        .args(["-M", "mps2-an386", "-display", "none", "-monitor", "none"])
        .args(["-serial", "none", "-nic", "user,model=lan9118"])
        .args(qemu_args)
        .arg("-semihosting-config")
        .arg(&semihosting)
        .arg("-kernel")
        .arg(elf)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start qemu-system-arm");
    let defmt_stream = qemu.stdout.take().expect("qemu stdout");
    let mut decoder = Command::new("defmt-print")
        .arg("-e")
        .arg(elf)
        .stdin(Stdio::from(defmt_stream))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start defmt-print");

    let decoded = decoder.stdout.take().expect("defmt-print stdout");
    let lines = thread::spawn(move || {
        let mut lines = Vec::new();
        let mut arrivals = Vec::new();
        for line in BufReader::new(decoded).lines().map_while(Result::ok) {
            arrivals.push(SystemTime::now());
            on_line(&line);
            lines.push(line);
        }
        (lines, arrivals)
    });
    let echo_stderr = |name: &'static str, stream: Option<std::process::ChildStderr>| {
        stream.map(|s| {
            thread::spawn(move || {
                for line in BufReader::new(s).lines().map_while(Result::ok) {
                    eprintln!("{name} (stderr): {line}");
                }
            })
        })
    };
    let qemu_stderr = echo_stderr("qemu", qemu.stderr.take());
    let decoder_stderr = echo_stderr("defmt-print", decoder.stderr.take());

    let deadline = started + timeout;
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = qemu.try_wait().expect("wait for qemu") {
            break status;
        }
        if Instant::now() >= deadline {
            timed_out = true;
            let _ = qemu.kill();
            break qemu.wait().expect("wait for qemu");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let elapsed = started.elapsed();
    // QEMU's exit closes the pipe: defmt-print decodes what is left and exits.
    let _ = decoder.wait();
    let (log_lines, log_arrivals) = lines.join().expect("log reader");
    for t in [qemu_stderr, decoder_stderr].into_iter().flatten() {
        let _ = t.join();
    }
    GatewayRun {
        status,
        timed_out,
        log_lines,
        log_arrivals,
        elapsed,
    }
}
