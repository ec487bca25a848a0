//! An embassy-net driver for the SMSC LAN9118 Ethernet controller as QEMU models it on the
//! mps2-an386 board: registers at `0x4020_0000`, interrupt line on NVIC IRQ 13, 32-bit access.
//!
//! Frames move through the chip's FIFOs, one 32-bit word at a time, little-endian:
//!
//! - receive: the RX status FIFO holds one word per frame (length in bits 29:16, counting the
//!   4-byte FCS the chip appends), the RX data FIFO the frame's words. [`Driver::receive`]
//!   hands out a token per waiting frame; smoltcp asks again until there is none, so every poll
//!   drains the FIFO. That matters in QEMU: its model has no back-pressure and drops a frame
//!   that does not fit (176 status entries, about 10 KiB of data).
//! - transmit: command A, command B, then the frame's words into the TX data FIFO; the frame
//!   goes out when its last word is in. Each sent frame leaves a status word, popped right
//!   after (the status FIFO holds 512 and then stops recording).
//!
//! # Wake strategy
//!
//! Reception is interrupt-driven. The chip raises RSFL (RX status FIFO level) in INT_STS for
//! every frame it stores; with `IRQ_CFG = IRQ_EN | IRQ_POL | IRQ_TYPE` (active high, push-pull)
//! that drives IRQ 13 and [`on_interrupt`] clears RSFL and wakes the network runner. A receive
//! poll that finds nothing registers the waker *before* it looks at the FIFO a second time, so
//! a frame landing in between either shows up in that look or raises a fresh interrupt: no
//! frame can sit unnoticed. The alternative (waking the runner from every 1 ms SysTick) works
//! too but adds up to a millisecond to each round trip and polls the chip a thousand times a
//! second while idle.
//!
//! The rare waits that are not about a received frame use a timer instead of more interrupt
//! sources: a full TX data FIFO (never in QEMU, which sends synchronously; on the real chip a
//! 1514-byte frame leaves in about 120 µs at 100 Mbit/s) retries after one tick, and a link
//! that is down is looked at again every 100 ms.

use core::task::Context;

use cortex_m::interrupt::InterruptNumber;
use cortex_m::peripheral::NVIC;
use embassy_net_driver::{Capabilities, Driver, HardwareAddress, LinkState, RxToken, TxToken};
use embassy_sync::waitqueue::AtomicWaker;

/// NVIC interrupt number of the LAN9118 on mps2-an385/an386.
pub const IRQ: u16 = 13;

/// Largest Ethernet frame handed to or taken from the stack: 1500-byte payload plus the
/// 14-byte header (no FCS, no VLAN tag).
const MTU: usize = 1514;

/// Frame buffer size: an MTU frame plus its FCS, rounded up to whole FIFO words.
const FRAME_BUFFER: usize = 1536;

/// Base address of the register window on mps2-an386.
const BASE: usize = 0x4020_0000;

// Register offsets (32-bit registers).
const RX_DATA_FIFO: usize = 0x00;
const TX_DATA_FIFO: usize = 0x20;
const RX_STATUS_FIFO: usize = 0x40;
const TX_STATUS_FIFO: usize = 0x48;
const ID_REV: usize = 0x50;
const IRQ_CFG: usize = 0x54;
const INT_STS: usize = 0x58;
const INT_EN: usize = 0x5c;
const BYTE_TEST: usize = 0x64;
const FIFO_INT: usize = 0x68;
const RX_CFG: usize = 0x6c;
const TX_CFG: usize = 0x70;
const HW_CFG: usize = 0x74;
const RX_FIFO_INF: usize = 0x7c;
const TX_FIFO_INF: usize = 0x80;
const PMT_CTRL: usize = 0x84;
const MAC_CSR_CMD: usize = 0xa4;
const MAC_CSR_DATA: usize = 0xa8;

/// What BYTE_TEST reads when the bus is wired the right way round.
const BYTE_TEST_VALUE: u32 = 0x8765_4321;

// IRQ_CFG: interrupt output enabled, active high, push-pull.
const IRQ_CFG_IRQ_EN: u32 = 1 << 8;
const IRQ_CFG_IRQ_POL: u32 = 1 << 4;
const IRQ_CFG_IRQ_TYPE: u32 = 1 << 0;
/// INT_STS / INT_EN: the RX status FIFO holds more entries than FIFO_INT's RX level.
const INT_RSFL: u32 = 1 << 3;
/// HW_CFG: soft reset (self-clearing).
const HW_CFG_SRST: u32 = 1 << 0;
/// PMT_CTRL: the chip is ready after reset.
const PMT_CTRL_READY: u32 = 1 << 0;
/// TX_CFG: transmitter on.
const TX_CFG_TX_ON: u32 = 1 << 1;

// TX command A: first and last segment of a frame; buffer length in bits 10:0.
const TX_CMD_A_FIRST_SEG: u32 = 1 << 13;
const TX_CMD_A_LAST_SEG: u32 = 1 << 12;

// RX status word: frame length (with FCS) in bits 29:16; bit 15 error summary.
const RX_STS_ERROR: u32 = 1 << 15;
const FCS_LEN: usize = 4;

// MAC CSR (indirect) registers and bits.
const MAC_CSR_BUSY: u32 = 1 << 31;
const MAC_CSR_READ: u32 = 1 << 30;
const MAC_CR: u32 = 1;
const MAC_ADDRH: u32 = 2;
const MAC_ADDRL: u32 = 3;
const MAC_MII_ACC: u32 = 6;
const MAC_MII_DATA: u32 = 7;
/// MAC_CR: full duplex, transmitter and receiver on. Promiscuous mode (PRMS, the reset value)
/// is left off: the MAC keeps frames for its own address and broadcasts only.
const MAC_CR_VALUE: u32 = (1 << 20) | (1 << 3) | (1 << 2);

// PHY (internal, address 1) through MII_ACC: address in bits 15:11, register in 10:6, busy bit 0.
const PHY_ADDRESS: u32 = 1;
const MII_BUSY: u32 = 1 << 0;
const PHY_BASIC_STATUS: u32 = 1;
const PHY_BSR_LINK_UP: u32 = 1 << 2;

/// Wakes the network runner when a frame arrives (set by [`on_interrupt`]).
static RX_WAKER: AtomicWaker = AtomicWaker::new();

/// Reads the register at `offset`.
fn read(offset: usize) -> u32 {
    // SAFETY: BASE + offset is a 4-byte aligned register inside the LAN9118's MMIO window on
    // mps2-an386 (every offset used is one of the constants above, all below 0x100). Device
    // registers are not Rust memory, so a volatile read cannot alias anything; reading a FIFO
    // pops it, which only the driver (or the interrupt handler, for INT_STS) does.
    unsafe { core::ptr::read_volatile((BASE + offset) as *const u32) }
}

/// Writes `value` to the register at `offset`.
fn write(offset: usize, value: u32) {
    // SAFETY: as in `read`: an aligned register of the LAN9118's MMIO window, not Rust memory.
    unsafe { core::ptr::write_volatile((BASE + offset) as *mut u32, value) }
}

fn mac_csr_wait() {
    while read(MAC_CSR_CMD) & MAC_CSR_BUSY != 0 {}
}

/// Reads MAC CSR register `index` (indirect, through MAC_CSR_CMD and MAC_CSR_DATA).
fn mac_read(index: u32) -> u32 {
    mac_csr_wait();
    write(MAC_CSR_CMD, MAC_CSR_BUSY | MAC_CSR_READ | index);
    mac_csr_wait();
    read(MAC_CSR_DATA)
}

/// Writes MAC CSR register `index`.
fn mac_write(index: u32, value: u32) {
    mac_csr_wait();
    write(MAC_CSR_DATA, value);
    write(MAC_CSR_CMD, MAC_CSR_BUSY | index);
    mac_csr_wait();
}

/// Reads register `reg` of the internal PHY through the MAC's MII interface.
fn phy_read(reg: u32) -> u32 {
    while mac_read(MAC_MII_ACC) & MII_BUSY != 0 {}
    mac_write(MAC_MII_ACC, (PHY_ADDRESS << 11) | (reg << 6) | MII_BUSY);
    while mac_read(MAC_MII_ACC) & MII_BUSY != 0 {}
    mac_read(MAC_MII_DATA) & 0xffff
}

/// Frames waiting in the RX FIFOs (RX_FIFO_INF bits 23:16).
fn rx_frames_waiting() -> u32 {
    (read(RX_FIFO_INF) >> 16) & 0xff
}

/// Free bytes in the TX data FIFO (TX_FIFO_INF bits 15:0; QEMU counts words there, which only
/// makes the check below more conservative).
fn tx_space() -> usize {
    (read(TX_FIFO_INF) & 0xffff) as usize
}

/// Drops every TX status word (the chip reports each sent frame; nothing here needs them).
fn pop_tx_status() {
    while (read(TX_FIFO_INF) >> 16) & 0xff != 0 {
        let _ = read(TX_STATUS_FIFO);
    }
}

/// Wakes the task that called `receive` or `transmit` after `ticks` embassy ticks.
fn wake_after(cx: &Context<'_>, ticks: u64) {
    embassy_time_driver::schedule_wake(embassy_time_driver::now() + ticks, cx.waker());
}

/// The LAN9118 interrupt (RSFL: frames arrived). Call it from the interrupt handler for
/// [`IRQ`]; it acknowledges the interrupt and wakes the network runner.
pub fn on_interrupt() {
    write(INT_STS, INT_RSFL);
    RX_WAKER.wake();
}

/// The NVIC's view of the LAN9118 interrupt line.
#[derive(Clone, Copy)]
struct Lan9118Irq;

// SAFETY: `number` returns a fixed, valid interrupt number of this device (IRQ 13 exists on
// mps2-an386's NVIC), as `InterruptNumber` requires.
unsafe impl InterruptNumber for Lan9118Irq {
    fn number(self) -> u16 {
        IRQ
    }
}

/// Why the chip could not be brought up.
#[derive(Clone, Copy, Debug, defmt::Format)]
pub enum InitError {
    /// BYTE_TEST did not read 0x87654321: no LAN9118 at the expected address.
    ByteTest(u32),
    /// Soft reset did not complete, or the chip did not report ready.
    Reset,
}

/// The LAN9118 as an embassy-net [`Driver`], with one frame buffer each way.
pub struct Lan9118 {
    mac: [u8; 6],
    rx: [u8; FRAME_BUFFER],
    tx: [u8; FRAME_BUFFER],
}

impl Lan9118 {
    /// Resets the chip, reads its MAC address, enables receiver and transmitter with exact
    /// address filtering, and unmasks its interrupt in the NVIC. Frames arriving before the
    /// network runner first polls wait in the FIFO. Call once.
    pub fn new() -> Result<Self, InitError> {
        let byte_test = read(BYTE_TEST);
        if byte_test != BYTE_TEST_VALUE {
            return Err(InitError::ByteTest(byte_test));
        }
        write(HW_CFG, HW_CFG_SRST);
        if !spin_until(|| read(HW_CFG) & HW_CFG_SRST == 0)
            || !spin_until(|| read(PMT_CTRL) & PMT_CTRL_READY != 0)
        {
            return Err(InitError::Reset);
        }
        let low = mac_read(MAC_ADDRL).to_le_bytes();
        let high = mac_read(MAC_ADDRH).to_le_bytes();
        let mac = [low[0], low[1], low[2], low[3], high[0], high[1]];

        // RX: no offset, 4-byte end alignment, so a frame is exactly ceil(len / 4) words.
        write(RX_CFG, 0);
        write(TX_CFG, TX_CFG_TX_ON);
        mac_write(MAC_CR, MAC_CR_VALUE);

        // Interrupt on every stored frame: RX status level 0 (FIFO_INT bits 7:0); keep the
        // reset values of the other levels.
        write(FIFO_INT, read(FIFO_INT) & !0xff);
        write(INT_STS, u32::MAX);
        write(INT_EN, INT_RSFL);
        write(IRQ_CFG, IRQ_CFG_IRQ_EN | IRQ_CFG_IRQ_POL | IRQ_CFG_IRQ_TYPE);
        // SAFETY: unmasking can break a critical section that relies on masking this one
        // interrupt; nothing does (critical sections here disable all interrupts), and the
        // handler only touches INT_STS and the waker, which is interrupt-safe.
        unsafe { NVIC::unmask(Lan9118Irq) };

        Ok(Lan9118 {
            mac,
            rx: [0; FRAME_BUFFER],
            tx: [0; FRAME_BUFFER],
        })
    }

    /// The chip's MAC address.
    pub fn mac_address(&self) -> [u8; 6] {
        self.mac
    }

    /// The chip's ID and revision (ID_REV: 0x0118_0001 in QEMU).
    pub fn id_rev(&self) -> u32 {
        read(ID_REV)
    }
}

/// Spins until `done` or about a million tries (the reset steps are immediate in QEMU and take
/// microseconds on the chip).
fn spin_until(mut done: impl FnMut() -> bool) -> bool {
    (0..1_000_000).any(|_| done())
}

/// One received frame, read from the FIFO when consumed.
pub struct Rx<'a>(&'a mut [u8; FRAME_BUFFER]);

/// Room for one frame to send.
pub struct Tx<'a>(&'a mut [u8; FRAME_BUFFER]);

impl RxToken for Rx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, f: F) -> R {
        let status = read(RX_STATUS_FIFO);
        let length = ((status >> 16) & 0x3fff) as usize;
        // Every word of the frame leaves the FIFO, even when the frame is dropped.
        for i in 0..length.div_ceil(4) {
            let word = read(RX_DATA_FIFO).to_le_bytes();
            if let Some(bytes) = self.0.get_mut(4 * i..4 * i + 4) {
                bytes.copy_from_slice(&word);
            }
        }
        let good = status & RX_STS_ERROR == 0 && (FCS_LEN..=FRAME_BUFFER).contains(&length);
        // smoltcp skips an empty frame: that is how a bad or oversized one is dropped.
        let frame = if good {
            &mut self.0[..length - FCS_LEN]
        } else {
            &mut self.0[..0]
        };
        f(frame)
    }
}

impl TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let len = len.min(MTU);
        let result = f(&mut self.0[..len]);
        // The length fields are 11 bits wide; `len` is at most 1514.
        let len_field = len as u32;
        write(
            TX_DATA_FIFO,
            TX_CMD_A_FIRST_SEG | TX_CMD_A_LAST_SEG | len_field,
        );
        write(TX_DATA_FIFO, len_field);
        for chunk in self.0[..len].chunks(4) {
            let mut word = [0u8; 4];
            word[..chunk.len()].copy_from_slice(chunk);
            write(TX_DATA_FIFO, u32::from_le_bytes(word));
        }
        pop_tx_status();
        result
    }
}

impl Driver for Lan9118 {
    type RxToken<'a>
        = Rx<'a>
    where
        Self: 'a;
    type TxToken<'a>
        = Tx<'a>
    where
        Self: 'a;

    fn receive(&mut self, cx: &mut Context<'_>) -> Option<(Rx<'_>, Tx<'_>)> {
        if rx_frames_waiting() == 0 {
            RX_WAKER.register(cx.waker());
            // A frame stored after the first look raised an interrupt that may have found no
            // waker yet: look again now that it is registered.
            if rx_frames_waiting() == 0 {
                return None;
            }
        }
        Some((Rx(&mut self.rx), Tx(&mut self.tx)))
    }

    fn transmit(&mut self, cx: &mut Context<'_>) -> Option<Tx<'_>> {
        // Two command words plus the frame.
        if tx_space() >= MTU + 8 {
            Some(Tx(&mut self.tx))
        } else {
            wake_after(cx, 1);
            None
        }
    }

    fn link_state(&mut self, cx: &mut Context<'_>) -> LinkState {
        if phy_read(PHY_BASIC_STATUS) & PHY_BSR_LINK_UP != 0 {
            LinkState::Up
        } else {
            wake_after(cx, embassy_time_driver::TICK_HZ / 10);
            LinkState::Down
        }
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.max_transmission_unit = MTU;
        // smoltcp caps each TCP receive window at this many full segments. Four (5.8 KB) fit
        // the RX data FIFO (about 10 KiB), so a peer filling one connection's window cannot
        // overflow it before the runner drains it (the sockets' own buffers cap it further).
        caps.max_burst_size = Some(4);
        caps
    }

    fn hardware_address(&self) -> HardwareAddress {
        HardwareAddress::Ethernet(self.mac)
    }
}
