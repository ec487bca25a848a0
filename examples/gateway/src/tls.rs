//! TLS 1.3 to the brokers (feature `tls`): the transport's sessions (`transport_embassy::tls`,
//! embedded-tls, no allocator) over this firmware's memory, CA and generator.
//!
//! - Memory: [`Resources`] in a static, one session per broker connection: the record
//!   buffers (a whole 16 KiB record in, [`RECORD_TX`] out) and the wires between the
//!   producer and the runner.
//! - The CA: `ca=` (DER, hex) from the command line, which suits the QEMU test, whose CA is
//!   made fresh by each run. It is public, so the debug channel leaks nothing; a real gateway
//!   embeds its CA in the image (`TlsConfig::ca` takes any `&[u8]`, an `include_bytes!`
//!   too) or keeps it in its configuration flash, where it cannot be swapped by whoever
//!   reaches a debug port.
//! - Randomness: each handshake's key share comes from [`EntropyRng`], the same ChaCha20
//!   CSPRNG as the SCRAM nonces (`entropy.rs`, seeded by `entropy_seed=`).
//! - The runner runs in a task of its own ([`run`]) for as long as the producer lives.
//! - Dates: checked once the producer has a wall clock (`epoch_ms=`); without one they are
//!   not checked (`main` says so in the log), the chain and name still are.

use rand_core::{CryptoRng, RngCore};
use static_cell::StaticCell;
use transport_embassy::tls::{
    self, CERT_DER_MAX, RECORD_RX_MIN, TlsConfig, TlsLinks, TlsResources, TlsRunner, TlsSetupError,
};

use crate::{BROKERS, entropy};

/// A session's record read buffer: the least that holds any record a broker sends.
pub const RECORD_RX: usize = RECORD_RX_MIN;
/// A session's record write buffer: a handshake message, or a slice of a produce request.
pub const RECORD_TX: usize = 4096;

/// Everything TLS keeps for the producer's connections.
pub type Resources = TlsResources<BROKERS, RECORD_RX, RECORD_TX>;
/// The sessions' runner, in its own task.
pub type Runner = TlsRunner<'static, EntropyRng, BROKERS, RECORD_RX, RECORD_TX>;

/// The ChaCha20 CSPRNG of `entropy.rs` through the rand_core 0.6 traits the runner takes.
/// Cryptographically secure as long as its seed is (fresh from a TRNG, or from the host in
/// the QEMU test); panics if it was never seeded, as `entropy::fill` does.
pub struct EntropyRng;

impl RngCore for EntropyRng {
    fn next_u32(&mut self) -> u32 {
        let mut bytes = [0; 4];
        entropy::fill(&mut bytes);
        u32::from_le_bytes(bytes)
    }

    fn next_u64(&mut self) -> u64 {
        let mut bytes = [0; 8];
        entropy::fill(&mut bytes);
        u64::from_le_bytes(bytes)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        entropy::fill(dest);
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        entropy::fill(dest);
        Ok(())
    }
}

impl CryptoRng for EntropyRng {}

/// Why TLS could not be set up.
#[derive(Clone, Copy, Debug, defmt::Format)]
pub enum SetupError {
    /// `ca=` is longer than a certificate the transport takes.
    CaTooLong,
    /// The transport refused the setup (its message says what to change).
    Transport(TlsSetupError),
}

/// Decodes the CA (hex DER) and sets the sessions up over the static resources. Call once
/// (the resources are taken), after `entropy::seed`.
pub fn setup(ca_hex: &str) -> Result<(TlsLinks<'static>, Runner), SetupError> {
    // Not a `ConstStaticCell`: a few bytes of the wires start non-zero, which would put all
    // 58 KB in `.data`, with their image in flash; made at boot, they stay in `.bss`.
    static RESOURCES: StaticCell<Resources> = StaticCell::new();
    let mut der = [0u8; CERT_DER_MAX];
    let ca = crate::settings::decode_hex(ca_hex, &mut der).ok_or(SetupError::CaTooLong)?;
    let config = TlsConfig { ca, client: None };
    let resources = RESOURCES.init_with(Resources::new);
    tls::new(resources, config, EntropyRng).map_err(SetupError::Transport)
}

/// Runs the TLS sessions for as long as the firmware runs.
#[embassy_executor::task]
pub async fn run(mut runner: Runner) -> ! {
    runner.run().await
}
