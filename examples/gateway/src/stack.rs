//! The stack's high-water mark: [`paint`] fills the free stack with a pattern, [`report`]
//! logs how deep the stack reached since. `main` paints at boot, reports the setup's peak
//! (`stack: peak N bytes of M during setup`) and paints again before producing, and reports
//! the run's (connections, TLS handshakes, SASL, produce) before it exits. [`paint_below`]
//! and [`peak_above`] measure a stretch of one task (the TLS task's handshake polls) the
//! same way in a window below the stack pointer.
//!
//! cortex-m-rt puts the one stack (MSP: thread mode and every handler) at the top of RAM,
//! `_stack_start`, growing down to `_stack_end`, the end of `.bss`/`.uninit` (memory.x gives
//! all 4 MiB of RAM; the stack is what the statics leave). Nothing else uses that memory:
//! the firmware has no heap. The figures are the deepest word written, from the top, to 4
//! bytes; a frame that reserved stack without writing it below that word is not seen, so
//! they are lower bounds by at most a function's unwritten locals.

use core::ptr::addr_of;
use core::sync::atomic::{AtomicUsize, Ordering};

use defmt::info;

/// What the painting writes to each free word.
const PATTERN: u32 = 0xa5a5_a5a5;

unsafe extern "C" {
    /// cortex-m-rt's link.x: the initial stack pointer, the top of RAM.
    static _stack_start: u32;
    /// cortex-m-rt's link.x: the lowest address the stack may use (end of the statics).
    static _stack_end: u32;
}

/// The deepest word [`paint_below`] found written before it painted over it, so that
/// [`report`] still sees it.
static DEEPEST: AtomicUsize = AtomicUsize::new(usize::MAX);

/// The stack's bounds: (lowest address, top).
fn bounds() -> (usize, usize) {
    // Only the symbols' addresses are taken; nothing is read through them.
    (
        addr_of!(_stack_end) as usize,
        addr_of!(_stack_start) as usize,
    )
}

/// Paints the free stack below the current stack pointer. Call from `main`'s own frame (at
/// boot, first thing), so that nothing deeper is live.
#[inline(never)]
pub fn paint() {
    let (end, _) = bounds();
    paint_range(end, cortex_m::register::msp::read() as usize);
}

#[cfg(feature = "tls")]
/// Paints the `window` bytes below the stack pointer (down to `_stack_end` at most), after
/// noting the deepest word already written there; returns the window's low end, for
/// [`peak_above`].
#[inline(never)]
pub fn paint_below(window: usize) -> usize {
    let (end, _) = bounds();
    let sp = cortex_m::register::msp::read() as usize;
    let low = sp.saturating_sub(window).max(end) & !3;
    DEEPEST.fetch_min(first_written(low, sp), Ordering::Relaxed);
    paint_range(low, sp);
    low
}

#[cfg(feature = "tls")]
/// The stack's depth from its top to the deepest word written at or above `low` since
/// [`paint_below`] painted there (`low` itself if the window was all used: then at least).
pub fn peak_above(low: usize) -> usize {
    let (_, top) = bounds();
    top - first_written(low, top)
}

/// Paints [`from`, `below`), 4-aligned words of the stack's RAM below the stack pointer.
/// Always inlined into its caller, which read the stack pointer: a frame of its own would be
/// below that pointer and painted over.
#[inline(always)]
fn paint_range(from: usize, below: usize) {
    // Below the stack pointer nothing is live: the caller's frame is above it, and an
    // interrupt taken meanwhile pushes its frame below it and pops it before returning.
    let mut word = from;
    while word + 4 <= below {
        // SAFETY: `word` is 4-aligned (`_stack_end` is, link.x asserts it) and in
        // [_stack_end, sp): RAM that belongs to the stack and is not in use (above).
        unsafe { (word as *mut u32).write_volatile(PATTERN) };
        word += 4;
    }
}

/// The first word at or above `from` (and below `top`) that does not hold the pattern.
fn first_written(from: usize, top: usize) -> usize {
    let mut word = from;
    // SAFETY: 4-aligned words of the stack's RAM, only read (a word in use is read as it
    // is; the scan stops at the first that is not the pattern).
    while word < top && unsafe { (word as *const u32).read_volatile() } == PATTERN {
        word += 4;
    }
    word
}

/// Logs the deepest the stack went since [`paint`]: `stack: peak N bytes of M during WHAT`.
/// Takes in what [`paint_below`] painted over.
pub fn report(what: &str) {
    let (end, top) = bounds();
    let deepest = first_written(end, top).min(DEEPEST.swap(usize::MAX, Ordering::Relaxed));
    info!(
        "stack: peak {=usize} bytes of {=usize} during {=str}",
        top - deepest,
        top - end,
        what
    );
}
