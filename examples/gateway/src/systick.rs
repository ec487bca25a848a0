//! The embassy-time driver: SysTick at 1 kHz (embassy-time feature `tick-hz-1_000`).
//!
//! SysTick counts the core clock (25 MHz on mps2-an386) and interrupts once per millisecond.
//! The handler advances a 64-bit tick count and wakes every timer that has expired, so
//! `schedule_wake` never has to program an alarm: a timer fires at the first tick at or after
//! its deadline. Cortex-M4 has no 64-bit atomics, so the count lives behind a critical
//! section (single core: interrupts masked for a few instructions).

use core::cell::{Cell, RefCell};
use core::task::Waker;

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::exception;
use critical_section::Mutex;
use embassy_time_driver::{Driver, TICK_HZ};
use embassy_time_queue_utils::Queue;

/// Core clock of the mps2-an386 (SYSCLK), which SysTick counts.
pub const CORE_HZ: u32 = 25_000_000;

/// SysTick reload value for one interrupt per embassy tick.
const RELOAD: u32 = CORE_HZ / TICK_HZ as u32 - 1;

struct SysTickDriver {
    /// Ticks since [`init`].
    ticks: Mutex<Cell<u64>>,
    /// Wakers waiting for a tick, by deadline.
    queue: Mutex<RefCell<Queue>>,
}

impl Driver for SysTickDriver {
    fn now(&self) -> u64 {
        critical_section::with(|cs| self.ticks.borrow(cs).get())
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        critical_section::with(|cs| {
            let mut queue = self.queue.borrow(cs).borrow_mut();
            queue.schedule_wake(at, waker);
            // A deadline that has already passed fires now instead of at the next tick.
            queue.next_expiration(self.ticks.borrow(cs).get());
        });
    }
}

embassy_time_driver::time_driver_impl!(static DRIVER: SysTickDriver = SysTickDriver {
    ticks: Mutex::new(Cell::new(0)),
    queue: Mutex::new(RefCell::new(Queue::new())),
});

/// Starts SysTick on the core clock with its interrupt every millisecond. Time starts at 0.
pub fn init(mut syst: SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(RELOAD);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

/// Core clock cycles (SysTick's count) since [`init`], to the cycle: the tick count and the
/// SysTick counter read together. Under QEMU a cycle is 40 ns of its virtual clock; with
/// `-icount shift=0`, where each instruction is one virtual nanosecond, 40 instructions.
#[cfg(any(feature = "scram", feature = "tls"))]
pub fn cycles() -> u64 {
    critical_section::with(|cs| {
        let mut ticks = DRIVER.ticks.borrow(cs).get();
        let mut current = SYST::get_current();
        // Interrupts are masked: a wrap since the handler last ran shows as a pending
        // SysTick exception. If one is pending, the counter is read again, after the wrap.
        if cortex_m::peripheral::SCB::is_pendst_pending() {
            ticks += 1;
            current = SYST::get_current();
        }
        ticks * u64::from(RELOAD + 1) + u64::from(RELOAD - current)
    })
}

#[exception]
fn SysTick() {
    critical_section::with(|cs| {
        let ticks = DRIVER.ticks.borrow(cs);
        let now = ticks.get() + 1;
        ticks.set(now);
        DRIVER.queue.borrow(cs).borrow_mut().next_expiration(now);
    });
}
