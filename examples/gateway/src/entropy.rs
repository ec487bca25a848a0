//! Random bytes for SCRAM nonces: the producer's `ClientConfig::entropy`.
//!
//! QEMU's mps2-an386 has no TRNG, so the firmware runs a ChaCha20 CSPRNG (`rand_chacha`)
//! seeded once at boot from 32 bytes the host passes (`entropy_seed=HEX`, fresh per boot).
//! On a real gateway the seed comes from the part's hardware TRNG (an STM32's RNG, say) at
//! each boot, or `fill` reads the TRNG directly. A seed that repeats (a constant in the
//! image, or one kept in flash and not replaced) makes each boot send the nonces of the last,
//! in the same order: SCRAM's client nonce must never repeat, or a man in the middle that
//! recorded an exchange with the real broker can replay the broker's messages to the device,
//! which then takes the impostor for the broker (its signature checks out).
//!
//! `ClientConfig::entropy` is a plain `fn(&mut [u8])`, so the generator lives in a static,
//! behind a critical section (single core: interrupts masked while it fills a 24-byte nonce).

use core::cell::RefCell;

use critical_section::Mutex;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use crate::settings::SEED_BYTES;

/// The generator, once [`seed`] has run.
static RNG: Mutex<RefCell<Option<ChaCha20Rng>>> = Mutex::new(RefCell::new(None));

/// Seeds the generator; call once at boot, before the producer is built.
pub fn seed(seed: [u8; SEED_BYTES]) {
    critical_section::with(|cs| {
        RNG.borrow(cs).replace(Some(ChaCha20Rng::from_seed(seed)));
    });
}

/// Fills `buf` with random bytes (the producer's `ClientConfig::entropy`). Panics if [`seed`]
/// has not run: `main` refuses SCRAM without a seed, and nonces from anything but the seeded
/// generator would be predictable.
pub fn fill(buf: &mut [u8]) {
    critical_section::with(|cs| match RNG.borrow_ref_mut(cs).as_mut() {
        Some(rng) => rng.fill_bytes(buf),
        None => panic!("entropy requested before the RNG was seeded"),
    });
}
