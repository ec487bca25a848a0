//! The flash model's own tests.

use crate::harness::ram_flash::{CutIn, CutMode, FlashError, RamFlash};

use embedded_storage::nor_flash::{NorFlash as _, ReadNorFlash as _};

/// A small chip for the flash model's own tests.
type SmallFlash = RamFlash<64>;

#[test]
fn ram_flash_writes_only_clear_bits_and_erases_set_them() {
    let mut f = SmallFlash::new(2);
    f.write(4, &[0x0F, 0xF0, 0x00, 0xFF]).unwrap();
    let mut b = [0u8; 4];
    f.read(4, &mut b).unwrap();
    assert_eq!(b, [0x0F, 0xF0, 0x00, 0xFF]);
    // Clearing more bits is fine; setting one is refused and programs nothing.
    f.write(4, &[0x0E, 0x00, 0x00, 0xFF]).unwrap();
    assert_eq!(
        f.write(4, &[0x1E, 0x00, 0x00, 0xFF]),
        Err(FlashError::NotWritable(4))
    );
    f.read(4, &mut b).unwrap();
    assert_eq!(b, [0x0E, 0x00, 0x00, 0xFF]);
    assert_eq!(f.write(2, &[0; 4]), Err(FlashError::NotAligned));
    assert_eq!(f.write(4, &[0; 3]), Err(FlashError::NotAligned));
    assert_eq!(f.write(128, &[0; 4]), Err(FlashError::OutOfBounds));
    assert_eq!(f.erase(0, 32), Err(FlashError::NotAligned));
    f.erase(0, 64).unwrap();
    f.read(4, &mut b).unwrap();
    assert_eq!(b, [0xFF; 4]);
}

#[test]
fn ram_flash_a_clean_cut_stops_a_write_at_its_byte_and_kills_the_chip() {
    let mut f = SmallFlash::new(1);
    f.cut_after(5, CutMode::Clean, 1);
    assert_eq!(f.write(0, &[0; 8]), Err(FlashError::PowerCut));
    assert!(f.is_dead());
    assert_eq!(f.take_cut_in(), Some(CutIn::Write));
    let mut b = [0u8; 8];
    assert_eq!(f.read(0, &mut b), Err(FlashError::PowerCut));
    assert_eq!(f.erase(0, 64), Err(FlashError::PowerCut));
    f.reboot();
    f.read(0, &mut b).unwrap();
    assert_eq!(b, [0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF]);
}

#[test]
fn ram_flash_a_torn_cut_leaves_a_subset_of_the_word_programmed() {
    let mut torn_somewhere = false;
    for seed in 0..64 {
        let mut f = SmallFlash::new(1);
        f.cut_after(1, CutMode::TornWrite, seed);
        assert_eq!(
            f.write(0, &[0x00, 0x0F, 0xAA, 0xFF]),
            Err(FlashError::PowerCut)
        );
        f.reboot();
        let mut b = [0u8; 4];
        f.read(0, &mut b).unwrap();
        assert_eq!(b[0], 0x00, "before the cut: written");
        // Each byte from the cut on lies between its old and its intended value.
        for (got, want) in b[1..].iter().zip([0x0F, 0xAA, 0xFF]) {
            assert_eq!(got & want, want);
        }
        torn_somewhere |= b[1] != 0xFF && b[1] != 0x0F;
    }
    assert!(torn_somewhere);
}

#[test]
fn ram_flash_a_cut_erase_leaves_an_erased_prefix() {
    let mut f = SmallFlash::new(2);
    f.write(0, &[0u8; 128]).unwrap();
    f.cut_after(70, CutMode::TornWrite, 3);
    assert_eq!(f.erase(0, 128), Err(FlashError::PowerCut));
    assert_eq!(f.take_cut_in(), Some(CutIn::Erase));
    f.reboot();
    let data = f.snapshot();
    assert!(data[..70].iter().all(|&b| b == 0xFF));
    assert!(data[70..].iter().all(|&b| b == 0));
}
