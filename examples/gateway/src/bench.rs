//! `bench=scram`: the CPU cost of one SCRAM-SHA-512 exchange on this core, no network.
//!
//! The client side of a whole exchange runs on Kafka's own known answer
//! (`producer-core/tests/fixtures/scram/kafka_vectors.txt`: 4096 iterations, the client nonce
//! the bytes 0..24), the messages checked byte for byte, so what is timed is the real work:
//! the client-first message, the server-first message read and the client-final message with
//! its proof (the PBKDF2 derivation of the salted password, 4096 × 2 HMAC-SHA-512, then the
//! keys and the proof), and the server's signature checked. Then the same exchange again with
//! the salted password cached, as every later connection of the producer makes it.
//!
//! Each span is counted in core clock cycles ([`systick::cycles`], 25 MHz) and logged with
//! its length on QEMU's virtual clock, in nanoseconds. Under `-icount shift=0` QEMU's virtual
//! clock advances exactly one nanosecond per guest instruction, so those nanoseconds are
//! instruction counts; nothing but the SysTick handler (once per virtual millisecond, a few
//! dozen instructions) runs meanwhile. Without `-icount` they are host time and mean little.

use defmt::{error, info};
use producer_core::sasl::{NONCE_BYTES, Nonce, SaltedPasswordCache, ScramClient, ScramHash};

use crate::systick;

const USERNAME: &str = "gate,way=7";
const PASSWORD: &str = "correct horse battery staple";
const ITERATIONS: u32 = 4096;
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
    let mut cache = SaltedPasswordCache::<1>::new();
    let started = systick::cycles();
    let first = exchange(&mut cache);
    let cold = systick::cycles() - started;
    let started = systick::cycles();
    let again = exchange(&mut cache);
    let cached = systick::cycles() - started;
    if !(first && again) {
        error!("bench scram-sha-512: the exchange did not give Kafka's known answer");
        return false;
    }
    info!(
        "bench scram-sha-512 iterations={=u32} exchange_cycles={=u64} exchange_ns={=u64} \
         cached_exchange_cycles={=u64} cached_exchange_ns={=u64} (virtual ns: instructions \
         under -icount shift=0)",
        ITERATIONS,
        cold,
        cold * NS_PER_CYCLE,
        cached,
        cached * NS_PER_CYCLE
    );
    true
}

/// One client exchange on the known answer, the salted password from `cache` (derived and
/// kept there when it has none); whether every message was the expected one.
fn exchange(cache: &mut SaltedPasswordCache<1>) -> bool {
    let random: [u8; NONCE_BYTES] = core::array::from_fn(|i| i as u8);
    let mut client = ScramClient::new(ScramHash::Sha512, Nonce::from_random(&random));
    let mut out = [0u8; 256];
    let Ok(n) = client.client_first(USERNAME, &mut out) else {
        return false;
    };
    if out.get(..n) != Some(CLIENT_FIRST) {
        return false;
    }
    let Ok(n) = client.client_final(USERNAME, PASSWORD, SERVER_FIRST, cache, &mut out) else {
        return false;
    };
    if out.get(..n) != Some(CLIENT_FINAL) {
        return false;
    }
    client.verify_server_final(SERVER_FINAL).is_ok() && client.is_authenticated()
}
