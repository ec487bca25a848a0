//! SCRAM-SHA-256 and SCRAM-SHA-512 against answers this crate did not compute:
//!
//! - RFC 7677's example exchange, byte for byte;
//! - exchanges made by Apache Kafka's own SCRAM code (`tests/fixtures/scram/`, with the
//!   script that made them), for both hashes and an escaped username, through the whole
//!   [`Authenticator`] as a Kafka connection drives it;
//! - full exchanges against the SCRAM server of the `sasl` crate (xmpp-rs), with random
//!   server nonces, and its refusal of a wrong password;
//! - hostile server messages: each gives its specific error, none panics, and random ones
//!   (proptest) never panic.

use producer_core::sasl::{
    Authenticator, Error, Exchange, Mechanism, Nonce, SaltedPassword, SaltedPasswordCache,
    ScramClient, ScramHash, ScramServerError, Step,
};
use producer_core::wire::SaslAuthenticateResponse;
use proptest::prelude::*;

const RFC_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
const RFC_CLIENT_FIRST: &str = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
const RFC_SERVER_FIRST: &str =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
const RFC_CLIENT_FINAL: &str = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
    p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
const RFC_SERVER_FINAL: &str = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

fn text(out: &[u8], n: usize) -> &str {
    std::str::from_utf8(&out[..n]).unwrap()
}

/// RFC 7677's client, at the point where the server's first message arrives.
fn rfc_client() -> ScramClient {
    let mut c = ScramClient::new(ScramHash::Sha256, Nonce::from_printable(RFC_NONCE).unwrap());
    let mut out = [0u8; 64];
    let n = c.client_first("user", &mut out).unwrap();
    assert_eq!(text(&out, n), RFC_CLIENT_FIRST);
    c
}

/// The salted password of RFC 7677's credential, computed once for all tests of a run.
fn rfc_cache() -> SaltedPasswordCache<1> {
    static SALTED: std::sync::OnceLock<SaltedPassword> = std::sync::OnceLock::new();
    let salt = [
        0x5b, 0x6d, 0x99, 0x68, 0x9d, 0x12, 0x35, 0x8e, 0xec, 0xa0, 0x4b, 0x14, 0x12, 0x36, 0xfa,
        0x81,
    ];
    let salted = SALTED
        .get_or_init(|| SaltedPassword::derive(ScramHash::Sha256, "pencil", &salt, 4096).unwrap());
    let mut cache = SaltedPasswordCache::new();
    cache.insert(&salt, 4096, *salted);
    cache
}

#[test]
fn rfc7677_exchange() {
    let mut c = rfc_client();
    // From an empty cache: the salted password is derived and kept.
    let mut cache = SaltedPasswordCache::<1>::new();
    let mut out = [0u8; 256];
    let n = c
        .client_final(
            "user",
            "pencil",
            RFC_SERVER_FIRST.as_bytes(),
            &mut cache,
            &mut out,
        )
        .unwrap();
    assert_eq!(text(&out, n), RFC_CLIENT_FINAL);
    assert_eq!(cache.len(), 1);
    assert!(!c.is_authenticated());
    c.verify_server_final(RFC_SERVER_FINAL.as_bytes()).unwrap();
    assert!(c.is_authenticated());
    // The exchange is over.
    assert_eq!(
        c.verify_server_final(RFC_SERVER_FINAL.as_bytes()),
        Err(Error::OutOfOrder)
    );
}

/// One exchange of `tests/fixtures/scram/kafka_vectors.txt`.
struct KafkaVector {
    hash: ScramHash,
    client_first: String,
    server_first: String,
    client_final: String,
    server_final: String,
}

fn kafka_vectors() -> Vec<KafkaVector> {
    let text = include_str!("fixtures/scram/kafka_vectors.txt");
    let lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    let field = |line: &str, name: &str| {
        line.strip_prefix(name)
            .and_then(|l| l.strip_prefix(": "))
            .unwrap_or_else(|| panic!("{name} expected in {line:?}"))
            .to_owned()
    };
    let vectors: Vec<_> = lines
        .chunks(5)
        .map(|v| KafkaVector {
            hash: match v[0] {
                "SCRAM-SHA-256" => ScramHash::Sha256,
                "SCRAM-SHA-512" => ScramHash::Sha512,
                other => panic!("mechanism {other:?}"),
            },
            client_first: field(v[1], "client-first"),
            server_first: field(v[2], "server-first"),
            client_final: field(v[3], "client-final"),
            server_final: field(v[4], "server-final"),
        })
        .collect();
    assert_eq!(vectors.len(), 2);
    vectors
}

fn answer(auth_bytes: &[u8]) -> SaslAuthenticateResponse<'_> {
    SaslAuthenticateResponse {
        auth_bytes,
        session_lifetime_ms: 60_000,
        ..Default::default()
    }
}

/// The bytes 0..24, which Kafka's vectors took as the client nonce.
fn kafka_nonce_bytes() -> [u8; 24] {
    std::array::from_fn(|i| i as u8)
}

#[test]
fn kafka_known_answers_through_the_authenticator() {
    for v in kafka_vectors() {
        let (username, password) = ("gate,way=7", "correct horse battery staple");
        let mechanism = match v.hash {
            ScramHash::Sha256 => Mechanism::ScramSha256 { username, password },
            ScramHash::Sha512 => Mechanism::ScramSha512 { username, password },
        };
        let mut auth = Authenticator::new(mechanism).unwrap();
        assert_eq!(auth.handshake_request().mechanism, v.hash.mechanism());
        let mut out = [0u8; 512];
        let (mut exchange, n) = auth.start(&kafka_nonce_bytes(), &mut out).unwrap();
        assert_eq!(text(&out, n), v.client_first, "{:?}", v.hash);
        let step = auth
            .on_response(&mut exchange, &answer(v.server_first.as_bytes()), &mut out)
            .unwrap();
        let Step::Send(n) = step else {
            panic!("{step:?}")
        };
        assert_eq!(text(&out, n), v.client_final, "{:?}", v.hash);
        let step = auth
            .on_response(&mut exchange, &answer(v.server_final.as_bytes()), &mut out)
            .unwrap();
        assert_eq!(
            step,
            Step::Done {
                session_lifetime_ms: 60_000
            }
        );
        assert!(exchange.is_authenticated());
        assert_eq!(auth.salted_passwords().len(), 1);
        // Kafka's own verdict on a refused proof is error 58, whatever the bytes.
        let (mut again, _) = auth.start(&kafka_nonce_bytes(), &mut out).unwrap();
        let refused = SaslAuthenticateResponse {
            error_code: 58,
            error_message: Some("Authentication failed"),
            ..Default::default()
        };
        assert_eq!(
            auth.on_response(&mut again, &refused, &mut out),
            Err(Error::AuthenticationFailed { error_code: 58 })
        );
        assert_eq!(
            auth.on_response(&mut again, &answer(b""), &mut out),
            Err(Error::OutOfOrder)
        );
    }
}

// ------------------------------------------------ the `sasl` crate's SCRAM server

mod xmpp_scram;
use xmpp_scram as xmpp;

/// Runs a whole exchange between `auth` and a `sasl` crate server; the server's refusal is
/// Kafka's error 58.
fn exchange_with(
    auth: &mut Authenticator<'_, 2>,
    server: &mut xmpp::Server,
    random: &[u8; 24],
) -> Result<(Exchange, String), Error> {
    use xmpp_sasl::server::Response;
    let mut out = [0u8; 512];
    let (mut exchange, mut n) = auth.start(random, &mut out)?;
    loop {
        let reply = match server.respond(&out[..n]) {
            Ok(Response::Proceed(bytes)) => (0, bytes, None),
            Ok(Response::Success(identity, bytes)) => (0, bytes, Some(identity)),
            Err(_) => (58, Vec::new(), None),
        };
        let response = SaslAuthenticateResponse {
            error_code: reply.0,
            auth_bytes: &reply.1,
            ..Default::default()
        };
        match auth.on_response(&mut exchange, &response, &mut out)? {
            Step::Send(m) => n = m,
            Step::Done { .. } => {
                let Some(xmpp_sasl::common::Identity::Username(user)) = reply.2 else {
                    panic!("authenticated before the server said so");
                };
                return Ok((exchange, user));
            }
        }
    }
}

fn store(username: &str, password: &str, salt: &[u8]) -> xmpp::Store {
    xmpp::Store {
        username: username.into(),
        password: password.into(),
        salt: salt.to_vec(),
        iterations: 4096,
    }
}

#[test]
fn full_exchanges_with_an_independent_server_reuse_the_salted_password() {
    for sha512 in [false, true] {
        // The server sees the escaped username, as it crosses the wire.
        let (user, wire_user) = ("gate,way=7", "gate=2Cway=3D7");
        let mechanism = if sha512 {
            Mechanism::ScramSha512 {
                username: user,
                password: "pw 1",
            }
        } else {
            Mechanism::ScramSha256 {
                username: user,
                password: "pw 1",
            }
        };
        let mut auth = Authenticator::<2>::with_cache(mechanism).unwrap();
        for round in 0..3u8 {
            let mut server = xmpp::Server::new(sha512, store(wire_user, "pw 1", b"salt-1"));
            let (exchange, seen) = exchange_with(&mut auth, &mut server, &[round; 24]).unwrap();
            assert!(exchange.is_authenticated());
            assert_eq!(seen, wire_user);
            assert_eq!(
                auth.salted_passwords().len(),
                1,
                "one credential, one entry"
            );
        }
        // A new salt (the credential was recreated) is a second entry.
        let mut server = xmpp::Server::new(sha512, store(wire_user, "pw 1", b"salt-2"));
        exchange_with(&mut auth, &mut server, &[9; 24]).unwrap();
        assert_eq!(auth.salted_passwords().len(), 2);
        // A wrong password is refused by the server.
        let mut server = xmpp::Server::new(sha512, store(wire_user, "pw 2", b"salt-1"));
        assert_eq!(
            exchange_with(&mut auth, &mut server, &[1; 24]).err(),
            Some(Error::AuthenticationFailed { error_code: 58 })
        );
    }
}

#[test]
fn the_cached_salted_password_is_what_the_proof_is_made_from() {
    // A cache holding the salted password of another password for this credential: the
    // client must use it (and so be refused), not derive again from the password.
    let hash = ScramHash::Sha256;
    let wrong = SaltedPassword::derive(hash, "not the password", b"salt-1", 4096).unwrap();
    let mut cache = SaltedPasswordCache::<1>::new();
    cache.insert(b"salt-1", 4096, wrong);
    let mut server = xmpp::Server::new(false, store("u", "pw", b"salt-1"));
    let mut c = ScramClient::new(hash, Nonce::from_random(&[3; 24]));
    let mut out = [0u8; 256];
    let n = c.client_first("u", &mut out).unwrap();
    let xmpp_sasl::server::Response::Proceed(first) = server.respond(&out[..n]).unwrap() else {
        panic!("server-first expected");
    };
    let n = c
        .client_final("u", "pw", &first, &mut cache, &mut out)
        .unwrap();
    assert!(server.respond(&out[..n]).is_err(), "a proof from the cache");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(6))]
    #[test]
    fn any_credentials_authenticate(
        user in "[!-~]{1,20}",
        password in "\\PC{1,24}",
        salt in proptest::collection::vec(any::<u8>(), 1..64),
        random in any::<[u8; 24]>(),
        sha512 in any::<bool>(),
    ) {
        let mechanism = if sha512 {
            Mechanism::ScramSha512 { username: &user, password: &password }
        } else {
            Mechanism::ScramSha256 { username: &user, password: &password }
        };
        let wire_user = user.replace('=', "=3D").replace(',', "=2C");
        let mut auth = Authenticator::<2>::with_cache(mechanism).unwrap();
        let mut server = xmpp::Server::new(sha512, store(&wire_user, &password, &salt));
        let (exchange, seen) = exchange_with(&mut auth, &mut server, &random).unwrap();
        prop_assert!(exchange.is_authenticated());
        prop_assert_eq!(seen, wire_user);
    }
}

// ------------------------------------------------------------ hostile servers

/// What the RFC client answers to `server_first` (its salted password cached).
fn client_final(server_first: &str) -> Result<String, Error> {
    let mut c = rfc_client();
    let mut out = [0u8; 512];
    let n = c.client_final(
        "user",
        "pencil",
        server_first.as_bytes(),
        &mut rfc_cache(),
        &mut out,
    )?;
    Ok(text(&out, n).to_owned())
}

#[test]
fn hostile_server_first_messages_are_refused_by_name() {
    let salt = "s=W22ZaJ0SNY7soEsUEjb6gQ==";
    let nonce = format!("r={RFC_NONCE}%hvYD");
    let cases: Vec<(String, Error)> = vec![
        (
            String::new(),
            Error::ScramMissingAttribute { attribute: 'r' },
        ),
        (
            format!("{salt},{nonce},i=4096"),
            Error::ScramMissingAttribute { attribute: 'r' },
        ),
        (
            format!("m=ext,{nonce},{salt},i=4096"),
            Error::ScramMandatoryExtension,
        ),
        (
            format!("r=someoneelse,{salt},i=4096"),
            Error::ScramNonceMismatch,
        ),
        (
            format!("r=rOprNGfwEbeRWgbNEkq,{salt},i=4096"),
            Error::ScramNonceMismatch,
        ),
        (
            format!("r={RFC_NONCE},{salt},i=4096"),
            Error::ScramNonceMismatch,
        ),
        (
            format!("r={RFC_NONCE} x,{salt},i=4096"),
            Error::ScramMalformed,
        ),
        (
            format!("{nonce},i=4096"),
            Error::ScramMissingAttribute { attribute: 's' },
        ),
        (
            format!("{nonce},s=,i=4096"),
            Error::ScramMissingAttribute { attribute: 's' },
        ),
        (
            format!("{nonce},s=W22ZaJ0S!Y7soEsUEjb6gQ==,i=4096"),
            Error::ScramBadBase64 { attribute: 's' },
        ),
        (
            format!("{nonce},s=W22ZaJ0SNY7soEsUEjb6gQ,i=4096"),
            Error::ScramBadBase64 { attribute: 's' },
        ),
        (
            format!("{nonce},s={},i=4096", "A".repeat(92)),
            Error::ScramSaltTooLong,
        ),
        // 65 bytes: the same 88 characters as 64, one byte too many.
        (
            format!("{nonce},s={}AAE=,i=4096", "A".repeat(84)),
            Error::ScramSaltTooLong,
        ),
        (
            format!("{nonce},{salt}"),
            Error::ScramMissingAttribute { attribute: 'i' },
        ),
        (
            format!("{nonce},{salt},j=4096"),
            Error::ScramMissingAttribute { attribute: 'i' },
        ),
        (
            format!("{nonce},{salt},i=four"),
            Error::ScramBadIterationCount,
        ),
        (
            format!("{nonce},{salt},i=-1"),
            Error::ScramBadIterationCount,
        ),
        (format!("{nonce},{salt},i="), Error::ScramBadIterationCount),
        (
            format!("{nonce},{salt},i=1000"),
            Error::ScramIterationsTooLow { iterations: 1000 },
        ),
        (
            format!("{nonce},{salt},i=1"),
            Error::ScramIterationsTooLow { iterations: 1 },
        ),
        (
            format!("{nonce},{salt},i=1000000000"),
            Error::ScramIterationsTooHigh {
                iterations: 1_000_000_000,
            },
        ),
        (
            format!("{nonce},{salt},i=99999999999"),
            Error::ScramIterationsTooHigh {
                iterations: u32::MAX,
            },
        ),
    ];
    for (message, expected) in cases {
        assert_eq!(client_final(&message), Err(expected), "{message:?}");
        // The error is for people: it names something, and holds no secret.
        let shown = expected.to_string();
        assert!(shown.len() > 30 && !shown.contains("pencil"), "{shown}");
    }
    // Extensions after the iteration count are ignored, and a salt of the largest size is
    // taken.
    assert!(client_final(&format!("{RFC_SERVER_FIRST},x=ext")).is_ok());
    let largest = format!("{nonce},s={}AA==,i=4096", "A".repeat(84));
    assert!(client_final(&largest).is_ok());
}

/// The RFC client after its client-final, awaiting the server-final.
fn awaiting_server_final() -> ScramClient {
    let mut c = rfc_client();
    let mut out = [0u8; 256];
    c.client_final(
        "user",
        "pencil",
        RFC_SERVER_FIRST.as_bytes(),
        &mut rfc_cache(),
        &mut out,
    )
    .unwrap();
    c
}

#[test]
fn hostile_server_final_messages_are_refused_by_name() {
    let flipped = RFC_SERVER_FINAL.replace("6rri", "6rrj");
    let short = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl9"; // 30 bytes, valid base64
    let too_long = format!("v={}", "A".repeat(100)); // 75 bytes
    let cases = [
        (flipped.as_str(), Error::ScramServerSignatureMismatch),
        (short, Error::ScramServerSignatureMismatch),
        ("v=", Error::ScramServerSignatureMismatch),
        (too_long.as_str(), Error::ScramServerSignatureMismatch),
        ("v=!!!!", Error::ScramBadBase64 { attribute: 'v' }),
        // The same bytes in a non-canonical spelling (the low bits of the last character set).
        (
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G5=",
            Error::ScramBadBase64 { attribute: 'v' },
        ),
        ("", Error::ScramMissingAttribute { attribute: 'v' }),
        ("r=x", Error::ScramMissingAttribute { attribute: 'v' }),
        (
            "e=invalid-proof",
            Error::ScramServerError(ScramServerError::InvalidProof),
        ),
        (
            "e=unknown-user,x=1",
            Error::ScramServerError(ScramServerError::UnknownUser),
        ),
        (
            "e=new-error",
            Error::ScramServerError(ScramServerError::Other),
        ),
    ];
    for (message, expected) in cases {
        let mut c = awaiting_server_final();
        assert_eq!(
            c.verify_server_final(message.as_bytes()),
            Err(expected),
            "{message:?}"
        );
        assert!(!c.is_authenticated());
        // One verdict per exchange: the right signature now is too late.
        assert_eq!(
            c.verify_server_final(RFC_SERVER_FINAL.as_bytes()),
            Err(Error::OutOfOrder)
        );
    }
    let mut c = awaiting_server_final();
    c.verify_server_final(format!("{RFC_SERVER_FINAL},x=ext").as_bytes())
        .unwrap();
}

#[test]
fn steps_out_of_order_are_refused() {
    let mut cache = rfc_cache();
    let mut out = [0u8; 256];
    let mut c = ScramClient::new(ScramHash::Sha256, Nonce::from_printable(RFC_NONCE).unwrap());
    let first = RFC_SERVER_FIRST.as_bytes();
    assert_eq!(
        c.client_final("user", "pencil", first, &mut cache, &mut out),
        Err(Error::OutOfOrder)
    );
    assert_eq!(c.verify_server_final(b"v=x"), Err(Error::OutOfOrder));
    // A refused server-first ends the exchange.
    let mut c = rfc_client();
    assert!(
        c.client_final("user", "pencil", b"x", &mut cache, &mut out)
            .is_err()
    );
    assert_eq!(
        c.client_final("user", "pencil", first, &mut cache, &mut out),
        Err(Error::OutOfOrder)
    );
    // A buffer too small does not: the same step goes through with room.
    let mut c = rfc_client();
    assert!(matches!(
        c.client_final("user", "pencil", first, &mut cache, &mut out[..40]),
        Err(Error::BufferTooSmall { needed }) if needed == RFC_CLIENT_FINAL.len()
    ));
    let n = c
        .client_final("user", "pencil", first, &mut cache, &mut out)
        .unwrap();
    assert_eq!(text(&out, n), RFC_CLIENT_FINAL);
}

proptest! {
    #[test]
    fn random_server_first_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut c = rfc_client();
        let mut out = [0u8; 512];
        let _ = c.client_final("user", "pencil", &bytes, &mut rfc_cache(), &mut out);
    }

    #[test]
    fn random_server_first_after_a_valid_nonce_never_panics(
        rest in "[ -~]{0,120}",
        iterations in prop_oneof![Just("4096".to_owned()), "[0-9]{0,12}", "[ -~]{0,8}"],
    ) {
        // Past the nonce, so salts and iteration counts are what varies.
        let message = format!("r={RFC_NONCE}x,s={rest},i={iterations}");
        let mut c = rfc_client();
        let mut out = [0u8; 512];
        let _ = c.client_final("user", "pencil", message.as_bytes(), &mut rfc_cache(), &mut out);
    }

    #[test]
    fn random_server_final_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        let mut c = awaiting_server_final();
        let _ = c.verify_server_final(&bytes);
    }
}
