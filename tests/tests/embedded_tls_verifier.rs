//! What embedded-tls's verifier (as transport-embassy's `tls`, `tls-p384` and `tls-rsa`
//! build it) accepts, outside a handshake, with certificates made by the `openssl` tool:
//!
//! - RSA (`tls-rsa`), 2048 and 4096 bits: a CA (sha256WithRSAEncryption, self-signed), a
//!   leaf it signs for [`HOST`], and the leaf's RSA-PSS signature (SHA-256, salt of the
//!   hash's length) over the TLS 1.3 CertificateVerify message of an empty transcript, under
//!   a counting allocator: the chain and the signature accepted, the signature with one bit
//!   flipped refused, and the peak heap within what the README tells a firmware's
//!   `#[global_allocator]` to hold. The chain goes through embedded-tls's own verifier; the
//!   handshake signature through the `rsa` calls embedded-tls makes for it (see
//!   [`certificate_verify`]).
//! - ECDSA chains: a P-384 CA signing with SHA-384 (`tls-p384`) is accepted, for a P-256 and
//!   a P-384 leaf; what embedded-tls refuses is written down too: a P-384 CA that signs with
//!   SHA-256 (it takes ecdsa-with-SHA256 as P-256 only), and a chain under another CA.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use embedded_tls::pki::CertVerifier;
use embedded_tls::{
    Aes128GcmSha256, Certificate, CertificateEntryRef, CertificateRef, NoClock, Sha256, TlsVerifier,
};
use sha2_010::Digest;

const HOST: &str = "broker.kafka.internal";
/// What the README tells a firmware to give its allocator, per key size: the peak measured
/// here (about 11.6 KB and 22.3 KB on x86-64) and room for fragmentation.
const HEAP_BOUND: [(u32, usize); 2] = [(2048, 16 * 1024), (4096, 32 * 1024)];

/// Counts the bytes live while `COUNTING` is set, and their peak.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; only counters move.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller's layout, as given.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if COUNTING.load(Ordering::Relaxed) {
            LIVE.fetch_sub(
                layout.size().min(LIVE.load(Ordering::Relaxed)),
                Ordering::Relaxed,
            );
        }
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `openssl` in `dir` with `command`'s words (none holds a space).
fn openssl(dir: &Path, command: &str) {
    let args: Vec<&str> = command.split_whitespace().collect();
    let out = Command::new("openssl")
        .args(&args)
        .current_dir(dir)
        .output()
        .expect("run openssl (apt-get install openssl)");
    assert!(out.status.success(), "openssl {command}: {out:?}");
}

/// What [`make`] makes.
struct Made {
    /// The CA's certificate, DER.
    ca: Vec<u8>,
    /// The leaf's certificate, DER.
    leaf: Vec<u8>,
    /// The leaf's RSAPublicKey, PKCS#1 DER.
    leaf_key: Vec<u8>,
    /// The leaf's RSA-PSS signature over the message.
    signature: Vec<u8>,
}

/// A CA certificate `ca.der` for `ca.key`, self-signed with `digest` (`-sha256`, …), and a
/// leaf `leaf.der` for `leaf.key` and [`HOST`] that it signs with `digest`.
fn certificates(dir: &Path, digest: &str) {
    openssl(
        dir,
        &format!(
            "req -x509 -new -key ca.key {digest} -subj /CN=test-CA -days 30 -outform DER -out ca.der"
        ),
    );
    openssl(
        dir,
        &format!("req -new -key leaf.key -subj /CN={HOST} -out leaf.csr"),
    );
    std::fs::write(
        dir.join("leaf.ext"),
        format!("subjectAltName=DNS:{HOST}\nextendedKeyUsage=serverAuth\n"),
    )
    .expect("write leaf.ext");
    openssl(
        dir,
        &format!(
            "x509 -req -in leaf.csr -CA ca.der -CAform DER -CAkey ca.key -CAcreateserial \
             {digest} -days 30 -extfile leaf.ext -outform DER -out leaf.der"
        ),
    );
}

/// An RSA CA of `bits`, a leaf of `bits` it signs, and the leaf's signature over `message`.
fn make(dir: &Path, bits: u32, message: &[u8]) -> Made {
    for key in ["ca.key", "leaf.key"] {
        openssl(
            dir,
            &format!("genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:{bits} -out {key}"),
        );
    }
    certificates(dir, "-sha256");
    std::fs::write(dir.join("message"), message).expect("write message");
    openssl(
        dir,
        "dgst -sha256 -sign leaf.key -sigopt rsa_padding_mode:pss -sigopt \
         rsa_pss_saltlen:digest -out signature message",
    );
    openssl(
        dir,
        "rsa -in leaf.key -RSAPublicKey_out -outform DER -out leaf.pub",
    );
    let read = |f: &str| std::fs::read(dir.join(f)).expect(f);
    Made {
        ca: read("ca.der"),
        leaf: read("leaf.der"),
        leaf_key: read("leaf.pub"),
        signature: read("signature"),
    }
}

/// The CertificateVerify check of an RSA-PSS-SHA256 signature, made with the calls
/// embedded-tls 0.19 makes (`pki.rs`, `verify_signature`): its own entry point cannot be
/// driven outside a handshake (it reads the chain it kept from the parsed Certificate
/// message, which only a handshake can build). `key` is the leaf's RSAPublicKey, PKCS#1 DER,
/// as embedded-tls takes it from the certificate.
fn certificate_verify(key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    use rsa::pkcs1::DecodeRsaPublicKey;
    use rsa::pss::{Signature, VerifyingKey};
    use rsa::signature::Verifier;
    let Ok(key) = rsa::RsaPublicKey::from_pkcs1_der(key) else {
        return false;
    };
    let verifying_key = VerifyingKey::<sha2_010::Sha256>::from(key);
    let Ok(signature) = Signature::try_from(signature) else {
        return false;
    };
    verifying_key.verify(message, &signature).is_ok()
}

/// Runs embedded-tls's verifier over the chain (CA signature in PKCS#1 v1.5, name) and the
/// CertificateVerify check over the signature, as a handshake does; returns whether both
/// were accepted, and the peak of live heap bytes and the allocations meanwhile.
fn verify(
    ca: &[u8],
    leaf: &[u8],
    leaf_key: &[u8],
    message: &[u8],
    signature: &[u8],
) -> (bool, usize, usize) {
    let transcript = Sha256::new();
    let mut verifier: CertVerifier<'_, Aes128GcmSha256, NoClock, 4096> =
        CertVerifier::new(Certificate::X509(ca));
    verifier.set_hostname_verification(HOST).expect("host");
    let mut chain = CertificateRef::with_context(&[]);
    chain.add(CertificateEntryRef::X509(leaf)).expect("chain");
    LIVE.store(0, Ordering::Relaxed);
    PEAK.store(0, Ordering::Relaxed);
    ALLOCATIONS.store(0, Ordering::Relaxed);
    COUNTING.store(true, Ordering::Relaxed);
    let chain_ok = verifier.verify_certificate(&transcript, chain).is_ok();
    let signature_ok = chain_ok && certificate_verify(leaf_key, message, signature);
    COUNTING.store(false, Ordering::Relaxed);
    (
        signature_ok,
        PEAK.load(Ordering::Relaxed),
        ALLOCATIONS.load(Ordering::Relaxed),
    )
}

#[test]
fn rsa_verification_fits_a_small_heap() {
    // What a TLS 1.3 server signs: 64 spaces, the context string, the transcript's hash (here
    // of an empty transcript, which is what `verify` hands the verifier).
    let mut message = vec![0x20u8; 64];
    message.extend_from_slice(b"TLS 1.3, server CertificateVerify\x00");
    message.extend_from_slice(&Sha256::digest([]));
    for (bits, bound) in HEAP_BOUND {
        let dir = std::env::temp_dir().join(format!("kp-rsa-heap-{bits}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let m = make(&dir, bits, &message);
        let (ok, peak, allocations) = verify(&m.ca, &m.leaf, &m.leaf_key, &message, &m.signature);
        assert!(ok, "RSA-{bits}: the chain or the signature was refused");
        let mut tampered = m.signature.clone();
        tampered[10] ^= 1;
        let (accepted, _, _) = verify(&m.ca, &m.leaf, &m.leaf_key, &message, &tampered);
        assert!(!accepted, "RSA-{bits}: a tampered signature was accepted");
        eprintln!("RSA-{bits}: peak heap {peak} bytes in {allocations} allocations");
        assert!(
            peak <= bound,
            "RSA-{bits}: peak heap {peak} bytes, more than the {bound} the README states"
        );
        assert!(allocations > 0, "RSA-{bits}: no allocation counted");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// An EC key on `curve` (`P-256`, `P-384`) in `file`.
fn ec_key(dir: &Path, curve: &str, file: &str) {
    openssl(
        dir,
        &format!("genpkey -algorithm EC -pkeyopt ec_paramgen_curve:{curve} -out {file}"),
    );
}

/// Whether embedded-tls's verifier accepts `leaf` under `ca` for [`HOST`].
fn chain_accepted(ca: &[u8], leaf: &[u8]) -> bool {
    let mut verifier: CertVerifier<'_, Aes128GcmSha256, NoClock, 4096> =
        CertVerifier::new(Certificate::X509(ca));
    verifier.set_hostname_verification(HOST).expect("host");
    let mut chain = CertificateRef::with_context(&[]);
    chain.add(CertificateEntryRef::X509(leaf)).expect("chain");
    verifier.verify_certificate(&Sha256::new(), chain).is_ok()
}

#[test]
fn ecdsa_chains_under_p256_and_p384_cas() {
    let dir = std::env::temp_dir().join(format!("kp-ecdsa-chains-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let read = |f: &str| std::fs::read(dir.join(f)).expect(f);
    // (CA curve, leaf curve, digest, accepted)
    let cases = [
        ("P-256", "P-256", "-sha256", true),
        ("P-384", "P-256", "-sha384", true),
        ("P-384", "P-384", "-sha384", true),
        // embedded-tls verifies ecdsa-with-SHA256 with a P-256 key only.
        ("P-384", "P-256", "-sha256", false),
    ];
    for (ca_curve, leaf_curve, digest, accepted) in cases {
        ec_key(&dir, ca_curve, "ca.key");
        ec_key(&dir, leaf_curve, "leaf.key");
        certificates(&dir, digest);
        let (ca, leaf) = (read("ca.der"), read("leaf.der"));
        assert_eq!(
            chain_accepted(&ca, &leaf),
            accepted,
            "a {leaf_curve} leaf under a {ca_curve} CA signing with {digest}"
        );
        // The same leaf under another CA of the same kind: refused.
        ec_key(&dir, ca_curve, "ca.key");
        certificates(&dir, digest);
        assert!(
            !chain_accepted(&read("ca.der"), &leaf),
            "a {leaf_curve} leaf accepted under a CA that did not sign it"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
