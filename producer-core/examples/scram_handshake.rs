//! One SCRAM-SHA-512 handshake at 4,096 iterations, the cost `cargo xtask bench sasl` counts
//! in instructions (under callgrind, this run with `1` against the same with `0`).
//!
//! The exchange is the first of `tests/fixtures/scram/kafka_vectors.txt`, made by Kafka's own
//! SCRAM code: the client's messages must match Kafka's and the server's signature must
//! verify, so what is counted is a real, successful handshake, salted-password derivation
//! included (each run builds a new `Authenticator`, as a new client does).

use producer_core::sasl::{Authenticator, Mechanism, Step};
use producer_core::wire::SaslAuthenticateResponse;
use std::hint::black_box;

const CLIENT_FINAL: &str = "c=biws,r=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXkafka-server-nonce-1,\
p=Aw3Dc8ZtfsidtEZT7kboSsoFbydwG+IHSC/LmmQ3MYk+omiTRx2hvJVdt6j5tsmFRNDntRJeuxrc3kJYKrAm0g==";
const SERVER_FIRST: &str = "r=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXkafka-server-nonce-1,\
s=cHJvZHVjZXItY29yZS1zYWx0LTAxMjM=,i=4096";
const SERVER_FINAL: &str =
    "v=FYYT7RCCcVBdnYVdpbFtjHJcASffBPUJ5Y2OzPTcTKwmTzVAJlTRlCyd0oNOkHHsKru/lAsTyvYfbmM1PXKPhQ==";

fn handshake() {
    let mechanism = Mechanism::ScramSha512 {
        username: "gate,way=7",
        password: black_box("correct horse battery staple"),
    };
    let mut auth = Authenticator::new(mechanism).expect("valid credentials");
    let mut out = [0u8; 512];
    let nonce: [u8; 24] = std::array::from_fn(|i| i as u8);
    let (mut exchange, _) = auth.start(&nonce, &mut out).expect("client-first");
    let answer = |bytes: &'static str| SaslAuthenticateResponse {
        auth_bytes: bytes.as_bytes(),
        session_lifetime_ms: 60_000,
        ..Default::default()
    };
    let step = auth
        .on_response(&mut exchange, &answer(SERVER_FIRST), &mut out)
        .expect("client-final");
    let Step::Send(n) = step else {
        panic!("expected the client-final, got {step:?}")
    };
    assert_eq!(
        &out[..n],
        CLIENT_FINAL.as_bytes(),
        "not Kafka's client-final"
    );
    let step = auth
        .on_response(&mut exchange, &answer(SERVER_FINAL), &mut out)
        .expect("server signature");
    assert!(matches!(step, Step::Done { .. }), "{step:?}");
}

fn main() {
    let runs: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1);
    for _ in 0..runs {
        handshake();
    }
}
