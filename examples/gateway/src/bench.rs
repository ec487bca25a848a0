//! `bench=scram`: the CPU cost of one SCRAM-SHA-512 exchange on this core, no network.
//!
//! The client side of a whole exchange runs through the producer's own `sasl::Authenticator`
//! on Kafka's known answer (`producer-core/tests/fixtures/scram/kafka_vectors.txt`: 4096
//! iterations, the client nonce the bytes 0..24), the messages checked byte for byte, so what
//! is timed is the real work, in the order the client does it: the client-first message; the
//! salted password derived in the client's steps (`sasl::Derivation`, as the client runs
//! it, one step per poll: 4096 × 2 HMAC-SHA-512 in all); the client-final message with its
//! proof; the server's signature checked. Then the same exchange again with the salted
//! password cached, as every later connection of the producer makes it.
//!
//! Each span is counted in core clock cycles ([`systick::cycles`], 25 MHz) and logged with
//! its length on QEMU's virtual clock, in nanoseconds. Under `-icount shift=0` QEMU's virtual
//! clock advances exactly one nanosecond per guest instruction, so those nanoseconds are
//! instruction counts; nothing but the SysTick handler (once per virtual millisecond, a few
//! dozen instructions) runs meanwhile. Without `-icount` they are host time and mean little.

use defmt::{error, info};
use producer_core::sasl::{Authenticator, Mechanism, NONCE_BYTES, Step};
use producer_core::wire::SaslAuthenticateResponse;

use crate::systick;

const USERNAME: &str = "gate,way=7";
const PASSWORD: &str = "correct horse battery staple";
const ITERATIONS: u32 = 4096;
/// Iterations per derivation step: the client's.
const STEP: u32 = producer_core::client::SCRAM_ITERATIONS_PER_POLL;
const CLIENT_FIRST: &[u8] = b"n,,n=gate=2Cway=3D7,r=AAECAwQFBgcICQoLDA0ODxAREhMUFRYX";
const SERVER_FIRST: &[u8] = b"r=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXkafka-server-nonce-1,\
    s=cHJvZHVjZXItY29yZS1zYWx0LTAxMjM=,i=4096";
const CLIENT_FINAL: &[u8] = b"c=biws,r=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXkafka-server-nonce-1,\
    p=Aw3Dc8ZtfsidtEZT7kboSsoFbydwG+IHSC/LmmQ3MYk+omiTRx2hvJVdt6j5tsmFRNDntRJeuxrc3kJYKrAm0g==";
const SERVER_FINAL: &[u8] =
    b"v=FYYT7RCCcVBdnYVdpbFtjHJcASffBPUJ5Y2OzPTcTKwmTzVAJlTRlCyd0oNOkHHsKru/lAsTyvYfbmM1PXKPhQ==";

/// Nanoseconds of QEMU's virtual clock per SysTick cycle (25 MHz).
const NS_PER_CYCLE: u64 = 1_000_000_000 / systick::CORE_HZ as u64;

/// Runs the benchmark and logs `bench scram-sha-512 ...`; `false` if an exchange did not give
/// Kafka's known answer.
pub fn scram() -> bool {
    let mechanism = Mechanism::ScramSha512 {
        username: USERNAME,
        password: PASSWORD,
    };
    let Ok(mut auth) = Authenticator::new(mechanism) else {
        return false;
    };
    let started = systick::cycles();
    let first = exchange(&mut auth);
    let cold = systick::cycles() - started;
    let started = systick::cycles();
    let again = exchange(&mut auth);
    let cached = systick::cycles() - started;
    let (Some(longest_step), Some(0)) = (first, again) else {
        error!("bench scram-sha-512: the exchange did not give Kafka's known answer");
        return false;
    };
    info!(
        "bench scram-sha-512 iterations={=u32} exchange_cycles={=u64} exchange_ns={=u64} \
         cached_exchange_cycles={=u64} cached_exchange_ns={=u64} longest_step_ns={=u64} \
         (virtual ns: instructions under -icount shift=0)",
        ITERATIONS,
        cold,
        cold * NS_PER_CYCLE,
        cached,
        cached * NS_PER_CYCLE,
        longest_step * NS_PER_CYCLE
    );
    true
}

/// One client exchange on the known answer, the salted password derived in steps unless
/// `auth` keeps it. The cycles of its longest derivation step (0 without one) if every
/// message was the expected one.
fn exchange(auth: &mut Authenticator<'_>) -> Option<u64> {
    let random: [u8; NONCE_BYTES] = core::array::from_fn(|i| i as u8);
    let mut out = [0u8; 256];
    let (mut exchange, n) = auth.start(&random, &mut out).ok()?;
    (out.get(..n) == Some(CLIENT_FIRST)).then_some(())?;
    let answer = |auth_bytes| SaslAuthenticateResponse {
        auth_bytes,
        ..Default::default()
    };
    let server_first = answer(SERVER_FIRST);
    let mut longest = 0;
    if let Some(mut derivation) = auth.derivation_for(&exchange, &server_first) {
        let salted = loop {
            let started = systick::cycles();
            let done = derivation.step(PASSWORD, STEP);
            longest = longest.max(systick::cycles() - started);
            if let Some(salted) = done {
                break salted;
            }
        };
        auth.keep_salted(&derivation, salted);
    }
    let Ok(Step::Send(n)) = auth.on_response(&mut exchange, &server_first, &mut out) else {
        return None;
    };
    (out.get(..n) == Some(CLIENT_FINAL)).then_some(())?;
    let done = auth.on_response(&mut exchange, &answer(SERVER_FINAL), &mut out);
    (matches!(done, Ok(Step::Done { .. })) && exchange.is_authenticated()).then_some(longest)
}
