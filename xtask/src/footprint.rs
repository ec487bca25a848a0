//! Part 5 of `cargo xtask bench` (`size`, with the bench driver's host figures): the flash and
//! static RAM of the core as the smallest firmware, and of the QEMU gateway firmware.

use crate::{capture, cargo_in, ensure_toolchain};

/// Where the minimal firmware lives: its own workspace, built only for Cortex-M.
pub(crate) const FOOTPRINT_DIR: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/footprint");

/// Builds the minimal firmware as `cargo xtask test` checks it: no SASL.
pub(crate) fn build() -> Result<(), String> {
    cargo_in("examples/footprint", &["build", "--release"])
}

/// Part 5: flash and static RAM of (a) the smallest firmware using the core with 4
/// partitions and (b) the QEMU gateway firmware (opt-level "z", LTO), from `size -A` on their
/// ELFs; appended to the size section.
pub(crate) fn report(section: &str) -> Result<(), String> {
    ensure_toolchain()?;
    build()?;
    // Without SASL, as the core is measured: the SASL part gives what SCRAM adds.
    cargo_in(
        "examples/gateway",
        &["build", "--release", "--no-default-features"],
    )?;
    let core = elf_sizes(&format!(
        "{FOOTPRINT_DIR}/target/thumbv7em-none-eabihf/release/footprint"
    ))?;
    let gateway = elf_sizes(&format!(
        "{FOOTPRINT_DIR}/../gateway/target/thumbv7em-none-eabihf/release/gateway"
    ))?;
    // Batch storage and connection buffers each firmware declares: keep in step with
    // examples/footprint/src/main.rs (STORAGE + TX + RX) and examples/gateway/src/main.rs
    // (BATCHES × BATCH_BYTES + BROKERS × ConnectionBuffers<RX, TX>).
    let core_buffers = 8 * 2048 + (3 * 2048 + 512) + 4096;
    let gateway_buffers = 16 * 2048 + 2 * (2 * 4096 + 2 * (2048 + 1024));
    let text = format!(
        "\n\n### Firmware footprint (thumbv7em-none-eabihf)\n\n\
         Both built with opt-level \"z\", LTO, one codegen unit, panic abort; from `size -A` \
         (flash = vector table + text + rodata + data; static RAM = data + bss; the call \
         stack comes on top).\n\n\
         (a) `examples/footprint`: the smallest firmware using the whole core (client, \
         sequencer, codec) for one topic with 4 partitions, 8 batch slots of 2 KiB and 2 \
         connections; no network stack or drivers.\n\n\
         (b) `examples/gateway`: the QEMU mps2-an386 gateway firmware: the core with \
         `transport-embassy`, embassy-net (TCP, DNS, IPv4, Ethernet), the embassy executor, \
         the LAN9118 driver, defmt over semihosting; 1 topic, 4 partitions, 16 batch slots of \
         2 KiB, 2 connections with 4 KiB receive and 3 KiB send buffers; built without SASL \
         (`--no-default-features`; the SASL section gives what SCRAM adds).\n\n\
         | item | (a) core | (b) gateway |\n|---|---|---|\n\
         | flash | {} | {} |\n\
         | static RAM | {} | {} |\n\
         | … of which batch storage and connection buffers | {core_buffers} | {gateway_buffers} |\n\
         | … of which everything else (client state; in (b) also the network stack, executor, driver) | {} | {} |\n",
        core.flash,
        gateway.flash,
        core.ram,
        gateway.ram,
        core.ram.saturating_sub(core_buffers),
        gateway.ram.saturating_sub(gateway_buffers),
    );
    let mut md = std::fs::read_to_string(section).unwrap_or_default();
    md.push_str(&text);
    std::fs::write(section, md).map_err(|e| format!("cannot write {section}: {e}"))?;
    print!("{text}");
    Ok(())
}

/// Flash and static RAM of a firmware image.
pub(crate) struct ElfSizes {
    pub flash: u64,
    pub ram: u64,
}

/// Reads the section sizes of `elf` with binutils' `size -A`.
pub(crate) fn elf_sizes(elf: &str) -> Result<ElfSizes, String> {
    let listing = capture("size", &["-A", elf])?;
    let sizes: std::collections::BTreeMap<&str, u64> = listing
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            Some((f.next()?, f.next()?.parse().ok()?))
        })
        .collect();
    let get = |s: &str| sizes.get(s).copied().unwrap_or(0);
    Ok(ElfSizes {
        flash: get(".vector_table") + get(".text") + get(".rodata") + get(".data"),
        ram: get(".data") + get(".bss"),
    })
}
