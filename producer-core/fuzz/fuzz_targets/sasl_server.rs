//! Fuzzes the SASL mechanisms' readers of broker messages. The first input byte selects what
//! reads the rest: a SCRAM server-first, a SCRAM server-final (after a valid exchange up to
//! it), an OAUTHBEARER error message, or a sequence of SaslAuthenticate answers to an
//! `Authenticator` of each mechanism. None may panic, and what a hostile server-final says
//! must never authenticate the client.
#![no_main]

use libfuzzer_sys::fuzz_target;
use producer_core::sasl::{
    Authenticator, Mechanism, Nonce, SaltedPassword, SaltedPasswordCache, ScramClient, ScramHash,
    oauthbearer,
};
use producer_core::wire::SaslAuthenticateResponse;
use std::sync::OnceLock;

const NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const SERVER_FIRST: &[u8] =
    b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const SERVER_FINAL: &[u8] = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
const SALT: [u8; 16] = [
    0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e, 0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa, 0x81,
];

/// A cache holding the salted password of `SERVER_FIRST`'s credential, derived once per run
/// so that the fuzzer spends its time in the readers, not in PBKDF2.
fn cache() -> SaltedPasswordCache<1> {
    static SALTED: OnceLock<SaltedPassword> = OnceLock::new();
    let salted = SALTED.get_or_init(|| {
        SaltedPassword::derive(ScramHash::Sha256, "pencil", &SALT, 4096).expect("derive")
    });
    let mut cache = SaltedPasswordCache::new();
    cache.insert(&SALT, 4096, *salted);
    cache
}

fn client(cache: &mut SaltedPasswordCache<1>, server_first: &[u8]) -> Option<ScramClient> {
    let mut c = ScramClient::new(ScramHash::Sha256, Nonce::from_printable(NONCE).ok()?);
    let mut out = [0u8; 512];
    c.client_first("user", &mut out).ok()?;
    c.client_final("user", "pencil", server_first, cache, &mut out)
        .ok()?;
    Some(c)
}

fuzz_target!(|input: &[u8]| {
    let Some((&selector, data)) = input.split_first() else {
        return;
    };
    let mut cache = cache();
    match selector % 4 {
        0 => {
            let _ = client(&mut cache, data);
        }
        1 => {
            if let Some(mut c) = client(&mut cache, SERVER_FIRST) {
                let verdict = c.verify_server_final(data);
                assert_eq!(
                    verdict.is_ok(),
                    data.split(|&b| b == b',').next() == Some(SERVER_FINAL)
                );
            }
        }
        2 => {
            let _ = oauthbearer::error_status(data);
        }
        _ => {
            let extensions = [("k", "v")];
            let mechanism = match selector / 4 % 4 {
                0 => Mechanism::Plain {
                    username: "u",
                    password: "p",
                },
                1 => Mechanism::ScramSha256 {
                    username: "u",
                    password: "p",
                },
                2 => Mechanism::ScramSha512 {
                    username: "u",
                    password: "p",
                },
                _ => Mechanism::OAuthBearer {
                    token: "t",
                    extensions: &extensions,
                },
            };
            let Ok(mut auth) = Authenticator::new(mechanism) else {
                return;
            };
            let mut out = [0u8; 512];
            let Ok((mut exchange, _)) = auth.start(&[7; 24], &mut out) else {
                return;
            };
            // Answers separated by 0xff; each answer's first byte is its error code.
            for answer in data.split(|&b| b == 0xff) {
                let (code, auth_bytes) = answer.split_first().map_or((0, answer), |(c, r)| (*c, r));
                let response = SaslAuthenticateResponse {
                    error_code: i16::from(code % 60),
                    auth_bytes,
                    ..Default::default()
                };
                let _ = auth.on_response(&mut exchange, &response, &mut out);
            }
        }
    }
});
