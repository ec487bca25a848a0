//! Project automation: `cargo xtask test` (every check CI runs) and, as the issues bring them,
//! `demo` and `bench`.
//!
//! Each command installs what it needs first, so a fresh machine needs only a Rust toolchain:
//! CI runs `bash .ci/run`, which is exactly `cargo xtask test`.

mod bench;
mod footprint;
mod on_target;
mod sasl_cost;

use std::env;
use std::process::{Command, ExitCode};
use std::time::Instant;

/// Targets the no_std core must build for: the gateway class (Cortex-M4F) and the smallest
/// Cortex-M3 we test on.
const TARGETS: &[&str] = &["thumbv7em-none-eabihf", "thumbv7m-none-eabi"];

/// Default number of simulation seeds run by `cargo xtask test`; `SIM_SEEDS=N` overrides it.
const DEFAULT_SIM_SEEDS: &str = "100000";
/// Default number of seeds of the durable-store simulation (power cuts, restarts).
const DEFAULT_DURABLE_SIM_SEEDS: &str = "20000";

fn main() -> ExitCode {
    let args: Vec<String> = env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("test") => test(),
        Some("demo") => demo(),
        Some("bench") => bench::bench(args.get(1).map(String::as_str)),
        Some("help") | Some("--help") | Some("-h") | None => {
            usage();
            Ok(())
        }
        Some(other) => Err(format!("unknown command `{other}`; run `cargo xtask help`")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn usage() {
    println!(
        "cargo xtask <command>\n\n\
         test    install missing toolchain parts, then run fmt, clippy, docs, the thumbv7em\n\
         \x20       build of producer-core and every test suite (SIM_SEEDS=N for more seeds)\n\
         demo    100,000 records through the produce tool while a node is killed and\n\
         \x20       restarted, then 10,000 from the gateway firmware in QEMU, into a\n\
         \x20       three-node Kafka behind proxies that cut connections; the topics read\n\
         \x20       back and checked (DEMO_SEED=N replays the proxies' choices,\n\
         \x20       DEMO_BROKER=tansu runs against tansu)\n\
         bench [latency|throughput|alloc|core|size|sasl]\n\
         \x20       measurements against librdkafka in the same run (no part: all of them);\n\
         \x20       prints the tables and writes BENCHMARKS.md and BENCHMARKS-latency.png"
    );
}

/// The main job, end to end: installs what it needs, then runs the demo binary (tests crate)
/// with the release `produce` tool. It runs against Apache Kafka (Java and Maven; the jars
/// are fetched on first use), or tansu with `DEMO_BROKER=tansu`. Its second part boots the
/// gateway firmware in QEMU (the demo builds the firmware), so QEMU and defmt-print are
/// installed here too.
fn demo() -> Result<(), String> {
    ensure_packages()?;
    ensure_java_and_maven()?;
    if env::var("DEMO_BROKER").as_deref() == Ok("tansu") {
        ensure_tansu()?;
    }
    on_target::ensure_qemu()?;
    on_target::ensure_defmt_print()?;
    step(
        "cargo",
        &[
            "build",
            "--release",
            "-p",
            "examples",
            "--bin",
            "produce",
            "-p",
            "tests",
            "--bin",
            "demo",
        ],
        &[],
    )?;
    let target = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/release");
    step(
        &format!("{target}/demo"),
        &[&format!("{target}/produce")],
        &[],
    )
}

fn test() -> Result<(), String> {
    let started = Instant::now();
    ensure_toolchain()?;
    ensure_packages()?;
    ensure_java_and_maven()?;
    ensure_tansu()?;

    step("cargo", &["fmt", "--all", "--check"], &[])?;
    step(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    for features in ["", "log", "crc-slice16", "flash"] {
        step(
            "cargo",
            &[
                "clippy",
                "-p",
                "producer-core",
                "--all-targets",
                "--features",
                features,
                "--",
                "-D",
                "warnings",
            ],
            &[],
        )?;
    }
    // The tests enable SASL (a dev-dependency's features), so the library is also checked
    // alone, as a firmware without SASL, or with PLAIN and OAUTHBEARER only, builds it.
    for features in ["", "sasl", "sasl,flash"] {
        step(
            "cargo",
            &[
                "clippy",
                "-p",
                "producer-core",
                "--lib",
                "--features",
                features,
                "--",
                "-D",
                "warnings",
            ],
            &[],
        )?;
    }
    // TLS (embedded-tls) alone, and with every algorithm and the other features.
    for features in [
        "log",
        "log,flash",
        "log,tls",
        "log,tls-p384,tls-rsa,sasl-scram,flash",
    ] {
        step(
            "cargo",
            &[
                "clippy",
                "-p",
                "transport-embassy",
                "--all-targets",
                "--features",
                features,
                "--",
                "-D",
                "warnings",
            ],
            &[],
        )?;
    }
    // The crates outside the workspace (firmware and on-target tests) get the same checks.
    for (dir, targets) in STANDALONE_CRATES {
        cargo_in(dir, &["fmt", "--check"])?;
        cargo_in(dir, &["clippy", targets, "--", "-D", "warnings"])?;
    }
    step(
        "cargo",
        &["doc", "--workspace", "--no-deps"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    // The core must stay no_std and allocation-free: build it for a Cortex-M4F with nothing
    // enabled, with the defmt logging a firmware would turn on, with the flash store, and with
    // SCRAM (its RustCrypto dependencies must stay no_std too).
    for features in ["", "defmt", "flash,defmt", "sasl,defmt", "sasl-scram,defmt"] {
        step(
            "cargo",
            &[
                "build",
                "-p",
                "producer-core",
                "--target",
                TARGETS[0],
                "--no-default-features",
                "--features",
                features,
            ],
            &[],
        )?;
    }
    // The embedded transport as firmware would build it: Cortex-M4F, defmt logging, with and
    // without the flash store, SASL and TLS (ECDSA P-256 alone; P-384 with SCRAM; RSA, whose
    // allocator the firmware provides).
    for features in [
        "defmt",
        "defmt,flash",
        "defmt,sasl-scram",
        "defmt,tls",
        "defmt,tls-p384,sasl-scram,flash",
        "defmt,tls-rsa",
    ] {
        step(
            "cargo",
            &[
                "build",
                "-p",
                "transport-embassy",
                "--target",
                TARGETS[0],
                "--features",
                features,
            ],
            &[],
        )?;
    }
    // The core as firmware: no_std, LTO, linked for a Cortex-M4.
    footprint::build()?;
    on_target::core_tests_on_cortex_m3()?;
    step("cargo", &["test", "--workspace"], &[])?;
    // The codec with the other CRC table size must give the same answers.
    step(
        "cargo",
        &[
            "test",
            "-p",
            "producer-core",
            "--features",
            "crc-slice16",
            "--lib",
            "--test",
            "wire_record_batch",
            "--test",
            "wire_fixtures",
            "--test",
            "portable",
        ],
        &[],
    )?;
    // The deterministic simulations (the sequencer alone, and the whole client over real
    // request bytes) run optimised: 100,000 seeds each take about a minute together.
    let seeds = env::var("SIM_SEEDS").unwrap_or_else(|_| DEFAULT_SIM_SEEDS.to_string());
    step(
        "cargo",
        &[
            "test",
            "--release",
            "-p",
            "producer-core",
            "--test",
            "simulation",
            "--test",
            "client_simulation",
            "--",
            "--include-ignored",
            "--nocapture",
            "many_seeds",
        ],
        &[("SIM_SEEDS", seeds.as_str())],
    )?;
    // The durable store under power cuts: each seed runs several lives of the client, so
    // fewer seeds than above (DURABLE_SIM_SEEDS=N overrides).
    let durable_seeds =
        env::var("DURABLE_SIM_SEEDS").unwrap_or_else(|_| DEFAULT_DURABLE_SIM_SEEDS.to_string());
    step(
        "cargo",
        &[
            "test",
            "--release",
            "-p",
            "producer-core",
            "--features",
            "flash",
            "--test",
            "durable_simulation",
            "--",
            "--include-ignored",
            "--nocapture",
            "many_seeds",
        ],
        &[("SIM_SEEDS", durable_seeds.as_str())],
    )?;
    fuzz_wire_codec()?;
    println!(
        "xtask: every check passed in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Debian packages the bundled librdkafka build (the integration tests' independent consumer
/// and mock cluster) needs beyond a C toolchain, the TAP tests' `ip` (iproute2), and the
/// `openssl` tool that makes the TLS tests' RSA keys (rcgen's ring backend cannot).
const PACKAGES: &[&str] = &[
    "pkg-config",
    "zlib1g-dev",
    "make",
    "python3",
    "iproute2",
    "openssl",
];

/// What `cargo xtask bench` needs beyond [`PACKAGES`]: a TrueType font for the plot's text
/// (read from disk and rendered in Rust; no fontconfig).
const BENCH_PACKAGES: &[&str] = &["fonts-dejavu-core"];

/// The broker the integration tests run against, and the version they were written for.
const TANSU_VERSION: &str = "0.6.0";

/// Installs missing Debian packages (CI runs as root on a fresh machine).
fn ensure_packages() -> Result<(), String> {
    ensure_debian_packages(PACKAGES)
}

/// Installs those of `packages` that are missing.
fn ensure_debian_packages(packages: &[&str]) -> Result<(), String> {
    let missing: Vec<&str> = packages
        .iter()
        .copied()
        .filter(|p| !succeeds("dpkg", &["-s", p]))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    step("apt-get", &["update"], &[])?;
    let mut args = vec!["install", "-y", "--no-install-recommends"];
    args.extend(missing);
    step("apt-get", &args, &[("DEBIAN_FRONTEND", "noninteractive")])
}

/// Apache Kafka runs from its own jars (`tests/kafka/pom.xml`, fetched by Maven into a cache
/// on first use by the tests' fixture): it needs Java 17 or newer and Maven. Debian's
/// packages are installed when either is missing.
fn ensure_java_and_maven() -> Result<(), String> {
    let java_major = Command::new("java")
        .arg("-version")
        .output()
        .ok()
        .and_then(|o| {
            // `openjdk version "17.0.15" 2025-04-15` (on stderr).
            let text = String::from_utf8_lossy(&o.stderr).into_owned();
            let quoted = text.split('"').nth(1)?.to_string();
            quoted.split('.').next()?.parse::<u32>().ok()
        });
    let mut missing = Vec::new();
    if java_major.is_none_or(|v| v < 17) {
        missing.push("openjdk-17-jre-headless");
    }
    if !succeeds("mvn", &["--version"]) {
        missing.push("maven");
    }
    ensure_debian_packages(&missing)
}

/// Installs the tansu broker into ~/.cargo/bin unless that version is already there (a cold
/// build takes about ten minutes, so the binary is cached).
fn ensure_tansu() -> Result<(), String> {
    let installed = Command::new("tansu")
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(TANSU_VERSION));
    if installed {
        return Ok(());
    }
    step(
        "cargo",
        &[
            "install",
            "tansu",
            "--version",
            TANSU_VERSION,
            "--locked",
            "--features",
            "dynostore",
        ],
        &[],
    )
}

/// The fuzz targets and seconds of coverage-guided fuzzing of each per `cargo xtask test`:
/// the wire decoders, and the SASL mechanisms' readers of broker messages.
const FUZZ_TARGETS: [(&str, &str); 2] = [("wire_decode", "30"), ("sasl_server", "15")];

/// Fuzzes the wire decoders and the SASL readers for a short while when a nightly toolchain
/// can be had (libFuzzer needs one). A machine that cannot get nightly or cargo-fuzz skips with
/// a warning; a crash found by the fuzzer fails the run.
fn fuzz_wire_codec() -> Result<(), String> {
    if !succeeds("rustup", &["run", "nightly", "rustc", "--version"])
        && step(
            "rustup",
            &["toolchain", "install", "nightly", "--profile", "minimal"],
            &[],
        )
        .is_err()
    {
        println!("xtask: warning: no nightly toolchain; skipping the fuzz run");
        return Ok(());
    }
    if !succeeds("cargo", &["fuzz", "--version"])
        && step("cargo", &["install", "cargo-fuzz", "--locked"], &[]).is_err()
    {
        println!("xtask: warning: cargo-fuzz cannot be installed; skipping the fuzz run");
        return Ok(());
    }
    let fuzz_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../producer-core/fuzz");
    let in_fuzz_dir = |args: &[&str]| -> Result<(), String> {
        println!("xtask: (in producer-core/fuzz) $ cargo {}", args.join(" "));
        let status = Command::new("cargo")
            .args(args)
            .current_dir(fuzz_dir)
            .status()
            .map_err(|e| format!("cannot start cargo: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("`cargo {}` failed with {status}", args.join(" ")))
        }
    };
    if let Err(e) = in_fuzz_dir(&["+nightly", "fuzz", "build"]) {
        println!("xtask: warning: the fuzz targets do not build on this nightly ({e}); skipping");
        return Ok(());
    }
    for (target, seconds) in FUZZ_TARGETS {
        let max_time = format!("-max_total_time={seconds}");
        in_fuzz_dir(&[
            "+nightly",
            "fuzz",
            "run",
            target,
            "--",
            &max_time,
            "-max_len=4096",
        ])?;
    }
    Ok(())
}

/// Adds the cross targets and the rustfmt/clippy components when a fresh machine lacks them.
fn ensure_toolchain() -> Result<(), String> {
    let installed = capture("rustup", &["target", "list", "--installed"])?;
    let missing: Vec<&str> = TARGETS
        .iter()
        .copied()
        .filter(|t| !installed.lines().any(|l| l.trim() == *t))
        .collect();
    if !missing.is_empty() {
        let mut args = vec!["target", "add"];
        args.extend(missing);
        step("rustup", &args, &[])?;
    }
    let components = capture("rustup", &["component", "list", "--installed"])?;
    for component in ["rustfmt", "clippy"] {
        if !components.lines().any(|l| l.starts_with(component)) {
            step("rustup", &["component", "add", component], &[])?;
        }
    }
    Ok(())
}

fn step(program: &str, args: &[&str], envs: &[(&str, &str)]) -> Result<(), String> {
    let shown: Vec<String> = envs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .chain(std::iter::once(program.to_string()))
        .chain(args.iter().map(|a| a.to_string()))
        .collect();
    println!("xtask: $ {}", shown.join(" "));
    let started = Instant::now();
    let status = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .status()
        .map_err(|e| format!("cannot start `{program}`: {e}"))?;
    println!(
        "xtask: ({:.1} s) {}",
        started.elapsed().as_secs_f64(),
        shown.join(" ")
    );
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{}` failed with {status}", shown.join(" ")))
    }
}

/// The command runs and exits 0 (its output is discarded).
fn succeeds(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn capture(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot start `{program}`: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Crates with their own workspace, each built only for its Cortex-M target (set in its
/// `.cargo/config.toml`), relative to the repository root, and what clippy checks in each
/// (firmware binaries have no test harness; the on-target crate is its tests).
const STANDALONE_CRATES: &[(&str, &str)] = &[
    ("examples/footprint", "--bins"),
    ("examples/gateway", "--bins"),
    ("producer-core/on-target", "--tests"),
];

/// Runs cargo inside `dir` (relative to the repository root): cargo reads a crate's
/// `.cargo/config.toml` (target, linker scripts, QEMU runner) only from the current
/// directory.
pub(crate) fn cargo_in(dir: &str, args: &[&str]) -> Result<(), String> {
    let shown = format!("(in {dir}) $ cargo {}", args.join(" "));
    println!("xtask: {shown}");
    let started = Instant::now();
    let status = Command::new("cargo")
        .args(args)
        .current_dir(format!("{}/../{dir}", env!("CARGO_MANIFEST_DIR")))
        // Flags or a target from the environment would replace the config's link scripts.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .map_err(|e| format!("cannot start cargo: {e}"))?;
    println!("xtask: ({:.1} s) {shown}", started.elapsed().as_secs_f64());
    if status.success() {
        Ok(())
    } else {
        Err(format!("`{shown}` failed with {status}"))
    }
}
