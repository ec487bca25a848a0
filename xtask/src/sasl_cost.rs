//! Part 6 of `cargo xtask bench` (`sasl`): what SASL costs a firmware and a host.
//!
//! - Flash and static RAM per mechanism: `examples/footprint` built without SASL and once per
//!   mechanism feature (`plain`, `oauthbearer`, `scram-sha-256`, `scram-sha-512`); the
//!   difference is the mechanism's code and the client's copy of the credentials.
//! - One SCRAM-SHA-512 handshake at 4,096 iterations on the host, in instructions: callgrind's
//!   total for `producer-core/examples/scram_handshake 1` minus that for `... 0` (the same
//!   process without the handshake). Instructions, not seconds, so the figure does not move
//!   with the machine's load.
//! - The same on the QEMU gateway firmware (Cortex-M4): its `bench=scram` run under
//!   `-icount shift=0`, where each guest instruction is one virtual nanosecond; and the
//!   gateway's flash and RAM without SASL, with SCRAM alone, and with SCRAM and TLS (its
//!   default), with `bench=tls` (a TLS handshake's P-256 operations) the same way.

use crate::footprint::{FOOTPRINT_DIR, elf_sizes};
use crate::on_target::{ensure_defmt_print, ensure_qemu};
use crate::{cargo_in, ensure_debian_packages, ensure_toolchain, step};
use std::process::{Command, Stdio};

/// The gateway firmware's ELF, as `cargo build --release` in examples/gateway leaves it.
const GATEWAY_ELF: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../examples/gateway/target/thumbv7em-none-eabihf/release/gateway"
);

/// The footprint's mechanism features, in the order of the table, and whether SHA-2 is built
/// with its compact rounds (sha2's `sha2_backend_soft="compact"` cfg, which a firmware sets in
/// its rustflags): unrolled SHA-512 rounds are 26 KB of Thumb code, the compact ones 1 KB.
const MECHANISMS: &[(&str, &str, bool)] = &[
    ("plain", "PLAIN", false),
    ("oauthbearer", "OAUTHBEARER", false),
    ("scram-sha-256", "SCRAM-SHA-256", false),
    ("scram-sha-512", "SCRAM-SHA-512", false),
    ("scram-sha-256", "SCRAM-SHA-256, compact SHA-2", true),
    ("scram-sha-512", "SCRAM-SHA-512, compact SHA-2", true),
];

/// Appended to the footprint's rustflags for the compact SHA-2 rounds.
const COMPACT_SHA2: &str =
    r#"target.thumbv7em-none-eabihf.rustflags=["--cfg","sha2_backend_soft=\"compact\""]"#;

pub(crate) fn report(section: &str) -> Result<(), String> {
    ensure_toolchain()?;
    ensure_debian_packages(&["valgrind"])?;
    let elf = format!("{FOOTPRINT_DIR}/target/thumbv7em-none-eabihf/release/footprint");
    cargo_in("examples/footprint", &["build", "--release"])?;
    let none = elf_sizes(&elf)?;
    let mut rows = format!("| none | {} | {} | | |\n", none.flash, none.ram);
    for &(feature, name, compact) in MECHANISMS {
        let mut args = vec!["build", "--release", "--features", feature];
        if compact {
            args.extend(["--config", COMPACT_SHA2]);
        }
        cargo_in("examples/footprint", &args)?;
        let with = elf_sizes(&elf)?;
        rows.push_str(&format!(
            "| {name} | {} | {} | +{} | +{} |\n",
            with.flash,
            with.ram,
            with.flash.saturating_sub(none.flash),
            with.ram.saturating_sub(none.ram)
        ));
    }
    // Leave the footprint built as the other parts and `cargo xtask test` expect it.
    cargo_in("examples/footprint", &["build", "--release"])?;

    step(
        "cargo",
        &[
            "build",
            "--release",
            "-p",
            "producer-core",
            "--example",
            "scram_handshake",
            "--features",
            "sasl-scram",
        ],
        &[],
    )?;
    let program = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/release/examples/scram_handshake"
    );
    let baseline = callgrind_instructions(program, "0")?;
    let one = callgrind_instructions(program, "1")?;
    let two = callgrind_instructions(program, "2")?;
    let handshake = one.saturating_sub(baseline);
    let again = two.saturating_sub(one);

    ensure_qemu()?;
    ensure_defmt_print()?;
    cargo_in(
        "examples/gateway",
        &["build", "--release", "--no-default-features"],
    )?;
    let gateway_plain = elf_sizes(GATEWAY_ELF)?;
    cargo_in(
        "examples/gateway",
        &[
            "build",
            "--release",
            "--no-default-features",
            "--features",
            "scram",
        ],
    )?;
    let gateway_scram = elf_sizes(GATEWAY_ELF)?;
    let firmware = firmware_bench("scram", "bench scram-sha-512")?;
    // Last, so the firmware's default build is what stays in its target directory.
    cargo_in("examples/gateway", &["build", "--release"])?;
    let gateway_tls = elf_sizes(GATEWAY_ELF)?;
    let tls_line = firmware_bench("tls", "bench tls-p256")?;
    let tls_field = |name: &str| {
        tls_line
            .split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or("?")
            .to_string()
    };
    let (t_share, t_ecdh, t_chain, t_verify, t_total) = (
        tls_field("key_share_ns"),
        tls_field("ecdh_ns"),
        tls_field("chain_verify_ns"),
        tls_field("certificate_verify_ns"),
        tls_field("total_ns"),
    );
    let field = |name: &str| {
        firmware
            .split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or("?")
            .to_string()
    };
    let (f_exchange, f_cached, f_step) = (
        field("exchange_ns"),
        field("cached_exchange_ns"),
        field("longest_step_ns"),
    );
    let per_poll = capture_step_iterations();

    let text = format!(
        "## SASL\n\n\
         ### Flash and static RAM per mechanism (thumbv7em-none-eabihf)\n\n\
         `examples/footprint` (the whole core for 1 topic, 4 partitions, 8 batch slots, 2 \
         connections; opt-level \"z\", LTO) built without SASL (producer-core's feature `sasl` \
         off: no authentication step, no credentials kept) and with one mechanism each. The \
         RAM is the client's copy of the credentials (username, password or token up to 2 KiB, \
         OAUTHBEARER extensions) and one 256-byte reply buffer per connection; SCRAM adds its \
         salted password cache. SHA-2 is RustCrypto's `sha2` with its default (unrolled) \
         rounds, or its compact ones (`--cfg sha2_backend_soft=\"compact\"` in the firmware's \
         rustflags), which a firmware should pick: the handshake runs once per client.\n\n\
         | mechanism | flash | static RAM | flash added | RAM added |\n|---|---|---|---|---|\n\
         {rows}\n\
         ### One SCRAM-SHA-512 handshake, 4,096 iterations (host)\n\n\
         `producer-core/examples/scram_handshake`: Kafka's own exchange \
         (`tests/fixtures/scram/kafka_vectors.txt`), the client's messages checked against \
         Kafka's and the server's signature verified, the salted password derived afresh \
         (a new client). Counted by callgrind (x86-64, release build): {handshake} \
         instructions ({baseline} for the process without it; a second handshake in the same \
         process adds {again}). The derivation is nearly all of it; it runs once per client \
         and salt, not per connection.\n\n\
         ### The same on the gateway firmware (Cortex-M4, QEMU)\n\n\
         `examples/gateway` with `bench=scram` (the same exchange through the client's \
         `sasl::Authenticator`, the derivation in the client's steps of {per_poll} iterations) \
         under `qemu-system-arm -M mps2-an386 -icount shift=0`, where each guest instruction \
         is one virtual nanosecond (read from SysTick, to 40 instructions):\n\n\
         | | instructions |\n|---|---|\n\
         | one exchange, salted password derived | {f_exchange} |\n\
         | one exchange, salted password kept (every later connection) | {f_cached} |\n\
         | the longest derivation step (one poll) | {f_step} |\n\n\
         The gateway firmware's footprint without SASL (`--no-default-features`) and with \
         SCRAM alone (`--features scram`): flash {} and {} bytes (+{}), static RAM {} and {} \
         bytes (+{}).\n\n\
         ### TLS on the gateway firmware\n\n\
         With TLS too (its default, `scram` and `tls`: embedded-tls, 2 sessions with 16,640-byte \
         read and 4,096-byte write record buffers): flash {} bytes (+{} over SCRAM alone), \
         static RAM {} bytes (+{}). A handshake's P-256 operations as embedded-tls calls them \
         (`bench=tls`, instructions under `-icount shift=0`; the key schedule, AES-GCM and DER \
         parsing not counted):\n\n\
         | | instructions |\n|---|---|\n\
         | key share (ClientHello) | {t_share} |\n\
         | shared secret (ECDH) | {t_ecdh} |\n\
         | the CA's signature on the broker's certificate | {t_chain} |\n\
         | the broker's CertificateVerify | {t_verify} |\n\
         | in all, per handshake | {t_total} |\n",
        gateway_plain.flash,
        gateway_scram.flash,
        gateway_scram.flash.saturating_sub(gateway_plain.flash),
        gateway_plain.ram,
        gateway_scram.ram,
        gateway_scram.ram.saturating_sub(gateway_plain.ram),
        gateway_tls.flash,
        gateway_tls.flash.saturating_sub(gateway_scram.flash),
        gateway_tls.ram,
        gateway_tls.ram.saturating_sub(gateway_scram.ram),
    );
    std::fs::write(section, &text).map_err(|e| format!("cannot write {section}: {e}"))?;
    print!("{text}");
    Ok(())
}

/// Instructions callgrind counts for `program arg` (its "Collected" total).
fn callgrind_instructions(program: &str, arg: &str) -> Result<u64, String> {
    let out = Command::new("valgrind")
        .args([
            "--tool=callgrind",
            "--callgrind-out-file=/dev/null",
            program,
            arg,
        ])
        .output()
        .map_err(|e| format!("cannot start valgrind: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "`valgrind {program} {arg}` failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .find_map(|l| {
            l.split_once("Collected :")
                .map(|(_, n)| n.trim().parse().ok())
        })
        .flatten()
        .ok_or_else(|| "callgrind printed no instruction total".to_string())
}

/// Boots the gateway firmware with `bench=MODE` under QEMU's instruction counting and
/// returns its log line containing `line` (decoded by defmt-print).
fn firmware_bench(mode: &str, line: &str) -> Result<String, String> {
    let semihosting = format!("enable=on,target=native,arg=gateway,arg=bench={mode}");
    let qemu = Command::new("qemu-system-arm")
        .args([
            "-M",
            "mps2-an386",
            "-display",
            "none",
            "-monitor",
            "none",
            "-serial",
            "none",
            "-icount",
            "shift=0",
            "-nic",
            "user,model=lan9118",
            "-semihosting-config",
            &semihosting,
            "-kernel",
            GATEWAY_ELF,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start qemu-system-arm: {e}"))?;
    let log = qemu.stdout.ok_or("no QEMU output")?;
    let out = Command::new("defmt-print")
        .args(["-e", GATEWAY_ELF])
        .stdin(log)
        .output()
        .map_err(|e| format!("cannot start defmt-print: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.contains(line))
        .map(str::to_string)
        .ok_or_else(|| format!("the firmware printed no benchmark line:\n{text}"))
}

/// The client's SCRAM iterations per poll, as its source states it.
fn capture_step_iterations() -> String {
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../producer-core/src/client/auth.rs"
    ))
    .unwrap_or_default();
    source
        .lines()
        .find_map(|l| l.strip_prefix("pub const SCRAM_ITERATIONS_PER_POLL: u32 = "))
        .map(|v| v.trim_end_matches(';').to_string())
        .unwrap_or_else(|| "?".to_string())
}
