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
//! - The runner runs in a task of its own ([`run`]) for as long as the producer lives; that
//!   task times each handshake's polls and logs the count ([`HandshakeClock`]).
//! - Dates: checked once the producer has a wall clock (`epoch_ms=`); without one they are
//!   not checked (`main` says so in the log), the chain and name still are.

use core::future::{Future, poll_fn};
use core::pin::pin;

use defmt::info;
use rand_core::{CryptoRng, RngCore};
use static_cell::StaticCell;
use transport_embassy::tls::{
    self, CERT_DER_MAX, RECORD_RX_MIN, TlsConfig, TlsLinks, TlsProgress, TlsResources, TlsRunner,
    TlsSetupError, TlsWire,
};

use crate::{BROKERS, entropy, stack, systick};

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

/// Runs the TLS sessions for as long as the firmware runs, timing each connection's
/// handshake (see [`HandshakeClock`]). `wires` are the links' ([`TlsLinks::wires`]).
#[embassy_executor::task]
pub async fn run(mut runner: Runner, wires: &'static [TlsWire]) -> ! {
    let mut sessions = pin!(runner.run());
    let mut clocks = [HandshakeClock::default(); BROKERS];
    poll_fn(|cx| {
        let before: [(u32, TlsProgress); BROKERS] = core::array::from_fn(|i| match wires.get(i) {
            Some(w) => w.progress(),
            None => (0, TlsProgress::Idle),
        });
        // A handshake's poll runs over a freshly painted window, outside the timed stretch.
        let handshaking = before.iter().any(|&(_, p)| p == TlsProgress::Handshake);
        let window = handshaking.then(|| stack::paint_below(STACK_WINDOW));
        let start = systick::cycles();
        let polled = sessions.as_mut().poll(cx);
        let spent = (systick::cycles() - start) * INSTRUCTIONS_PER_CYCLE;
        let stack = window.map_or(0, stack::peak_above);
        for ((clock, wire), before) in clocks.iter_mut().zip(wires).zip(before) {
            clock.poll(wire, before, spent, stack);
        }
        polled
    })
    .await
}

/// How far below the TLS task's stack pointer a handshake's poll is watched (the runner's
/// calls, embedded-tls's verification, reach about 36 KB below this task's frame).
const STACK_WINDOW: usize = 128 * 1024;

/// Instructions per SysTick cycle under `-icount shift=0` (one instruction a virtual
/// nanosecond, SysTick at 25 MHz); without `-icount` they are nanoseconds of the host's pace.
const INSTRUCTIONS_PER_CYCLE: u64 = 1_000_000_000 / systick::CORE_HZ as u64;

/// One connection's handshake cost: the instructions spent inside the runner's polls while
/// its session was in the handshake, from the poll that writes the ClientHello (the first
/// after the producer connected the socket) to the one that sets the session up (the point
/// at which the producer's handshake wait ends), read from SysTick to 40 instructions.
///
/// Included: all of embedded-tls's work (the key share, ECDH, the key schedule, the records'
/// AES-GCM), the verifier's (chain, name, dates, CertificateVerify), the transport's copies
/// between the wire's queues and embedded-tls in the runner, and any interrupt handler that
/// ran during such a poll (SysTick's, the LAN9118's: a few hundred instructions each).
/// Excluded: the network waits (no instruction runs in the runner while it is pending),
/// the producer task's copies between the socket and the wire, and embassy-net's work. A
/// poll in which both connections are in a handshake counts for both (the producer dials
/// the leader after the bootstrap connection is up, so they do not overlap in the tests).
///
/// With it, the stack's depth (from its top) during the handshake's polls: the executor's
/// frames, this task's and the runner's (see `stack.rs`).
#[derive(Clone, Copy, Default)]
struct HandshakeClock {
    /// The connection (its wire's generation) being timed.
    generation: u32,
    instructions: u64,
    longest: u64,
    /// Bytes of stack, from its top, the deepest of the handshake's polls reached.
    stack: usize,
}

impl HandshakeClock {
    /// Accounts one poll of the runner that took `spent` instructions and reached `stack`
    /// bytes of stack, `before` being the wire's progress when the poll started; logs the
    /// handshake once it is done.
    fn poll(&mut self, wire: &TlsWire, before: (u32, TlsProgress), spent: u64, stack: usize) {
        let (generation, progress) = before;
        if progress != TlsProgress::Handshake {
            return;
        }
        if generation != self.generation {
            *self = HandshakeClock {
                generation,
                instructions: 0,
                longest: 0,
                stack: 0,
            };
        }
        self.instructions += spent;
        self.longest = self.longest.max(spent);
        self.stack = self.stack.max(stack);
        if wire.progress() == (generation, TlsProgress::Up) {
            wire.with_host(|host| {
                info!(
                    "TLS handshake with {=str}: {=u64} instructions in the runner's polls, \
                     longest poll {=u64}, stack peak {=usize} bytes",
                    host, self.instructions, self.longest, self.stack
                )
            });
        }
    }
}
