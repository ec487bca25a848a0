//! `bench=tls`: the CPU cost of a TLS 1.3 handshake's public-key operations on this core, no
//! network.
//!
//! A handshake of this firmware (embedded-tls 0.19, TLS_AES_128_GCM_SHA256 on secp256r1, an
//! ECDSA P-256 chain of one certificate under the CA) spends nearly all its instructions in
//! P-256, in these calls of the `p256` crate, which are the ones embedded-tls makes and are
//! timed here one by one, each on its own data:
//!
//! - the key share: `EphemeralSecret::random` and its public key, encoded (ClientHello);
//! - the shared secret: the server's share decoded and `diffie_hellman` (ServerHello);
//! - the CA's signature on the broker's certificate: its key decoded, ECDSA P-256/SHA-256
//!   verified over a 400-byte to-be-signed certificate (the chain check);
//! - the broker's CertificateVerify: the same over the 130-byte signed content.
//!
//! Each result is checked (the two sides' secrets agree, both signatures verify, a changed
//! message does not), so what is timed is work that was done. Not timed: the key schedule
//! (HKDF-SHA-256, a few dozen HMACs), the records' AES-GCM, the certificate's DER parsing and
//! the transport's copies, together far below one P-256 operation; the README gives the
//! figures as the handshake's public-key cost, not its whole count. Counted as `bench=scram`
//! counts (see `bench.rs`): SysTick cycles, 25 MHz, as QEMU's virtual nanoseconds, one per
//! instruction under `-icount shift=0`.

use defmt::{error, info};
use p256::ecdh::EphemeralSecret;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::{EncodedPoint, PublicKey};

use crate::tls::EntropyRng;
use crate::{entropy, systick};

/// Nanoseconds of QEMU's virtual clock per SysTick cycle (25 MHz).
const NS_PER_CYCLE: u64 = 1_000_000_000 / systick::CORE_HZ as u64;

/// Cycles of `f`, and what it gave.
fn timed<T>(f: impl FnOnce() -> T) -> (u64, T) {
    let started = systick::cycles();
    let out = f();
    (systick::cycles() - started, out)
}

/// A signing key from fixed bytes (the bench signs with it, untimed, to have something to
/// verify; nothing leaves the CPU).
fn key(byte: u8) -> Option<SigningKey> {
    SigningKey::from_bytes(&[byte; 32].into()).ok()
}

/// Runs the benchmark and logs `bench tls-p256 ...`; `false` if a result was wrong.
pub fn tls() -> bool {
    // A fixed seed: this run sends nothing, and its figures should not vary.
    entropy::seed([0x7b; 32]);
    let mut rng = EntropyRng;
    let server = EphemeralSecret::random(&mut rng);
    let server_share = EncodedPoint::from(server.public_key());

    let (share, (client, client_share)) = timed(|| {
        let secret = EphemeralSecret::random(&mut rng);
        let public = EncodedPoint::from(secret.public_key());
        (secret, public)
    });
    let (ecdh, shared) = timed(|| {
        let theirs = PublicKey::from_sec1_bytes(server_share.as_bytes()).ok()?;
        Some(client.diffie_hellman(&theirs))
    });
    let agreed = PublicKey::from_sec1_bytes(client_share.as_bytes())
        .ok()
        .map(|mine| server.diffie_hellman(&mine));
    let secrets_agree = match (&shared, &agreed) {
        (Some(a), Some(b)) => a.raw_secret_bytes() == b.raw_secret_bytes(),
        _ => false,
    };

    let (Some(ca), Some(leaf)) = (key(0x11), key(0x22)) else {
        error!("bench tls-p256: no signing key");
        return false;
    };
    let tbs = [0x5a; 400];
    let mut content = [0x20u8; 130];
    content[64..97].copy_from_slice(b"TLS 1.3, server CertificateVerify");
    let cert_signature: Signature = ca.sign(&tbs);
    let verify_signature: Signature = leaf.sign(&content);
    let ca_public = EncodedPoint::from(ca.verifying_key());
    let leaf_public = EncodedPoint::from(leaf.verifying_key());
    let verify = |public: &EncodedPoint, message: &[u8], signature: &Signature| {
        VerifyingKey::from_sec1_bytes(public.as_bytes())
            .is_ok_and(|k| k.verify(message, signature).is_ok())
    };
    let (chain, chain_ok) = timed(|| verify(&ca_public, &tbs, &cert_signature));
    let (cert_verify, cert_verify_ok) = timed(|| verify(&leaf_public, &content, &verify_signature));
    let mut changed = content;
    changed[129] ^= 1;
    let refuses_changed = !verify(&leaf_public, &changed, &verify_signature);

    if !(secrets_agree && chain_ok && cert_verify_ok && refuses_changed) {
        error!(
            "bench tls-p256: wrong result: secrets agree {=bool}, chain {=bool}, \
             CertificateVerify {=bool}, changed message refused {=bool}",
            secrets_agree, chain_ok, cert_verify_ok, refuses_changed
        );
        return false;
    }
    let ns = |cycles: u64| cycles * NS_PER_CYCLE;
    info!(
        "bench tls-p256 key_share_ns={=u64} ecdh_ns={=u64} chain_verify_ns={=u64} \
         certificate_verify_ns={=u64} total_ns={=u64} (virtual ns: instructions under -icount \
         shift=0)",
        ns(share),
        ns(ecdh),
        ns(chain),
        ns(cert_verify),
        ns(share + ecdh + chain + cert_verify)
    );
    true
}
