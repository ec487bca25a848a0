//! producer-core's portable tests on a Cortex-M3 under QEMU, and the tools that needs.
//!
//! The `ensure_*` functions install what is missing on a fresh Debian machine (CI runs as
//! root); the QEMU gateway tests need the same tools.

use super::{capture, ensure_debian_packages, step, succeeds};

/// The LM3S6965 QEMU emulates is a Cortex-M3.
const CORTEX_M3: &str = "thumbv7m-none-eabi";

/// The defmt-print release verified to decode defmt 1's log format.
const DEFMT_PRINT_VERSION: &str = "1.2.0";

/// Installs `qemu-system-arm` from Debian when it is not on the PATH.
pub fn ensure_qemu() -> Result<(), String> {
    if succeeds("qemu-system-arm", &["--version"]) {
        return Ok(());
    }
    ensure_debian_packages(&["qemu-system-arm"])
}

/// Installs `defmt-print` (decodes the firmware's defmt log) into ~/.cargo/bin when missing.
pub fn ensure_defmt_print() -> Result<(), String> {
    if succeeds("defmt-print", &["--version"]) {
        return Ok(());
    }
    step(
        "cargo",
        &[
            "install",
            "defmt-print",
            "--version",
            DEFMT_PRINT_VERSION,
            "--locked",
        ],
        &[],
    )
}

/// Adds the rustup target `target` when it is not installed.
pub fn ensure_rust_target(target: &str) -> Result<(), String> {
    let installed = capture("rustup", &["target", "list", "--installed"])?;
    if installed.lines().any(|l| l.trim() == target) {
        return Ok(());
    }
    step("rustup", &["target", "add", target], &[])
}

/// Runs producer-core's portable tests (`producer-core/tests/portable/`) with defmt-test on an
/// LM3S6965 (Cortex-M3) under QEMU: `cargo test` in `producer-core/on-target`.
pub fn core_tests_on_cortex_m3() -> Result<(), String> {
    ensure_qemu()?;
    ensure_defmt_print()?;
    ensure_rust_target(CORTEX_M3)?;
    super::cargo_in("producer-core/on-target", &["test"]).map_err(|e| {
        format!(
            "producer-core's tests on the Cortex-M3 under QEMU: {e} (the defmt log above names \
             the failing test)"
        )
    })
}
