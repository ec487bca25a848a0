//! producer-core's portable tests (`../tests/portable/`, the same bodies the host runs in
//! `tests/portable.rs`) on a Cortex-M3: `cargo test` from this directory builds for
//! `thumbv7m-none-eabi` and runs under QEMU (lm3s6965evb) through `qemu-run.sh`.
#![no_std]
#![no_main]
// Every shared body must run here too: one without a wrapper is an error.
#![deny(dead_code)]

use cortex_m as _; // its critical-section implementation, which nothing else links in
use cortex_m_rt as _; // vector table and reset handler
use defmt_semihosting as _; // defmt logger on semihosting stdout, decoded by defmt-print

#[macro_use]
#[path = "../../tests/portable/mod.rs"]
mod portable;

/// A failed assertion: log it, then exit QEMU with 101 so `cargo test` fails.
#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    defmt::error!("{}", defmt::Display2Format(info));
    semihosting::process::exit(101)
}

portable_tests!(#[defmt_test::tests] mod tests);
