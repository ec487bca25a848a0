//! A NOR flash in RAM that loses power when told to, for the durable-store simulation.
//!
//! It behaves like the parts `flash::FlashStore` is written for: `WRITE_SIZE` 4, `READ_SIZE`
//! 1, erased bytes read 0xFF, a write must be word-aligned and may only clear bits (a write
//! that would need a 0 bit to become 1 fails; rewriting a word with fewer ones is fine, hence
//! [`MultiwriteNorFlash`]), an erase sets whole pages to 0xFF.
//!
//! Power cuts: [`RamFlash::cut_after`] arms a cut that lands after a number of bytes written
//! or erased from then on. The operation it lands in fails with [`FlashError::PowerCut`] and
//! so does every later one until [`RamFlash::reboot`]; the bits stay as the cut left them:
//! - a write stops at the byte the cut lands on: the bytes before it are programmed, the rest
//!   untouched, except in [`CutMode::TornWrite`], where the word being programmed gets a
//!   random subset of the 1->0 transitions it was meant to make;
//! - an erase proceeds in address order and stops at the byte the cut lands on: a prefix of
//!   the range is erased, the rest untouched. Erases are never torn (random bits left in a
//!   half-erased page): the store documents that it needs erases to either finish or stop in
//!   address order, so that is not simulated.
//!
//! A [`RamFlash`] is a handle: clones share one chip, so the simulation keeps a handle to arm
//! cuts and reboot while the store owns another.

use std::cell::RefCell;
use std::rc::Rc;

use embedded_storage::nor_flash::{
    ErrorType, MultiwriteNorFlash, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Bytes per write word.
pub const WORD: usize = 4;

/// Why a flash operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlashError {
    NotAligned,
    OutOfBounds,
    /// A write to the word at this address needs a 0 bit to become 1 (no erase before it).
    NotWritable(u32),
    /// The power is off: the cut landed in this operation or an earlier one.
    PowerCut,
}

impl NorFlashError for FlashError {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            FlashError::NotAligned => NorFlashErrorKind::NotAligned,
            FlashError::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            FlashError::NotWritable(_) | FlashError::PowerCut => NorFlashErrorKind::Other,
        }
    }
}

/// What a cut does to the word being written when it lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutMode {
    /// Bytes before the cut are written, the rest untouched.
    Clean,
    /// As `Clean`, but the word being written gets a random subset of its 1->0 bits.
    TornWrite,
}

/// Where the last cut landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutIn {
    Write,
    Erase,
}

/// Operation counts since the chip was made.
#[derive(Debug, Clone, Copy, Default)]
pub struct FlashStats {
    pub reads: u64,
    pub writes: u64,
    pub erases: u64,
    pub bytes_written: u64,
    pub bytes_erased: u64,
}

struct Chip {
    data: Vec<u8>,
    /// Bytes still to be written or erased before the armed cut lands.
    budget: Option<u64>,
    mode: CutMode,
    /// The power is off (a cut landed) until `reboot`.
    dead: bool,
    cut_in: Option<CutIn>,
    rng: ChaCha8Rng,
    stats: FlashStats,
}

impl Chip {
    /// Spends one byte of the budget; true when the cut lands on this byte.
    fn tick(&mut self, op: CutIn) -> bool {
        match &mut self.budget {
            Some(0) => {
                self.budget = None;
                self.dead = true;
                self.cut_in = Some(op);
                true
            }
            Some(n) => {
                *n -= 1;
                false
            }
            None => false,
        }
    }
}

/// A handle on a RAM NOR flash of `PAGE`-byte erase pages.
#[derive(Clone)]
pub struct RamFlash<const PAGE: usize> {
    chip: Rc<RefCell<Chip>>,
}

impl<const PAGE: usize> RamFlash<PAGE> {
    /// An erased chip of `pages` pages.
    pub fn new(pages: usize) -> Self {
        RamFlash {
            chip: Rc::new(RefCell::new(Chip {
                data: vec![0xFF; pages * PAGE],
                budget: None,
                mode: CutMode::Clean,
                dead: false,
                cut_in: None,
                rng: ChaCha8Rng::seed_from_u64(0),
                stats: FlashStats::default(),
            })),
        }
    }

    /// Arms a cut: it lands on the byte after `bytes` more bytes are written or erased (0: on
    /// the very next byte). `seed` drives the torn bits.
    pub fn cut_after(&self, bytes: u64, mode: CutMode, seed: u64) {
        let mut c = self.chip.borrow_mut();
        c.budget = Some(bytes);
        c.mode = mode;
        c.rng = ChaCha8Rng::seed_from_u64(seed);
    }

    /// Drops an armed cut that has not landed.
    pub fn disarm(&self) {
        self.chip.borrow_mut().budget = None;
    }

    /// Cuts the power now, between operations.
    pub fn cut_now(&self) {
        let mut c = self.chip.borrow_mut();
        c.budget = None;
        c.dead = true;
    }

    /// A cut is armed and has not landed yet.
    pub fn armed(&self) -> bool {
        self.chip.borrow().budget.is_some()
    }

    /// The power is off.
    pub fn is_dead(&self) -> bool {
        self.chip.borrow().dead
    }

    /// Where the last armed cut landed, taking it.
    pub fn take_cut_in(&self) -> Option<CutIn> {
        self.chip.borrow_mut().cut_in.take()
    }

    /// Power back on: the bits as the cut left them, no cut armed.
    pub fn reboot(&self) {
        let mut c = self.chip.borrow_mut();
        c.budget = None;
        c.dead = false;
        c.cut_in = None;
    }

    pub fn stats(&self) -> FlashStats {
        self.chip.borrow().stats
    }

    /// A copy of the chip's bytes.
    pub fn snapshot(&self) -> Vec<u8> {
        self.chip.borrow().data.clone()
    }
}

impl<const PAGE: usize> ErrorType for RamFlash<PAGE> {
    type Error = FlashError;
}

impl<const PAGE: usize> ReadNorFlash for RamFlash<PAGE> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), FlashError> {
        let mut c = self.chip.borrow_mut();
        if c.dead {
            return Err(FlashError::PowerCut);
        }
        let o = offset as usize;
        let end = o.checked_add(bytes.len()).ok_or(FlashError::OutOfBounds)?;
        let src = c.data.get(o..end).ok_or(FlashError::OutOfBounds)?;
        bytes.copy_from_slice(src);
        c.stats.reads += 1;
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.chip.borrow().data.len()
    }
}

impl<const PAGE: usize> NorFlash for RamFlash<PAGE> {
    const WRITE_SIZE: usize = WORD;
    const ERASE_SIZE: usize = PAGE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), FlashError> {
        let mut c = self.chip.borrow_mut();
        if c.dead {
            return Err(FlashError::PowerCut);
        }
        let (from, to) = (from as usize, to as usize);
        if !from.is_multiple_of(PAGE) || !to.is_multiple_of(PAGE) || from > to {
            return Err(FlashError::NotAligned);
        }
        if to > c.data.len() {
            return Err(FlashError::OutOfBounds);
        }
        c.stats.erases += 1;
        for at in from..to {
            if c.tick(CutIn::Erase) {
                return Err(FlashError::PowerCut);
            }
            c.data[at] = 0xFF;
            c.stats.bytes_erased += 1;
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), FlashError> {
        let mut c = self.chip.borrow_mut();
        if c.dead {
            return Err(FlashError::PowerCut);
        }
        let o = offset as usize;
        if !o.is_multiple_of(WORD) || !bytes.len().is_multiple_of(WORD) {
            return Err(FlashError::NotAligned);
        }
        if o + bytes.len() > c.data.len() {
            return Err(FlashError::OutOfBounds);
        }
        // Checked before anything is programmed: a part refusing the write programs nothing.
        for (k, &b) in bytes.iter().enumerate() {
            if !c.data[o + k] & b != 0 {
                let word = (o + k) / WORD * WORD;
                return Err(FlashError::NotWritable(word as u32));
            }
        }
        c.stats.writes += 1;
        for (w, word) in bytes.chunks(WORD).enumerate() {
            let base = o + w * WORD;
            for (k, &b) in word.iter().enumerate() {
                if c.tick(CutIn::Write) {
                    if c.mode == CutMode::TornWrite {
                        // The rest of the word: each bit meant to clear may or may not have.
                        for (kk, &intended) in word.iter().enumerate().skip(k) {
                            let keep: u8 = c.rng.random();
                            c.data[base + kk] &= intended | keep;
                        }
                    }
                    return Err(FlashError::PowerCut);
                }
                c.data[base + k] &= b;
                c.stats.bytes_written += 1;
            }
        }
        Ok(())
    }
}

/// Rewriting a word with fewer ones is allowed (sequential-storage marks items erased so).
impl<const PAGE: usize> MultiwriteNorFlash for RamFlash<PAGE> {}
