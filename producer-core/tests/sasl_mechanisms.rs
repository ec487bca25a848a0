//! PLAIN and OAUTHBEARER through the [`Authenticator`] as a Kafka connection drives it (byte
//! layouts, the broker's verdicts, the OAUTHBEARER error dance), the handshake check, that no
//! secret reaches `Debug` or an error message, and that random broker answers never panic.

use producer_core::sasl::{
    Authenticator, Error, Exchange, Mechanism, NONCE_BYTES, OAuthStatus, Step, oauthbearer, plain,
};
use producer_core::wire::{List, MechanismName, SaslAuthenticateResponse, SaslHandshakeResponse};
use proptest::prelude::*;

const RANDOM: [u8; NONCE_BYTES] = [5; NONCE_BYTES];
const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJnYXRld2F5In0.c2lnbmF0dXJl";

fn ok(auth_bytes: &[u8]) -> SaslAuthenticateResponse<'_> {
    SaslAuthenticateResponse {
        auth_bytes,
        ..Default::default()
    }
}

fn refused(error_code: i16) -> SaslAuthenticateResponse<'static> {
    SaslAuthenticateResponse {
        error_code,
        error_message: Some("Authentication failed: Invalid username or password"),
        ..Default::default()
    }
}

fn start(auth: &Authenticator<'_>, out: &mut [u8]) -> (Exchange, Vec<u8>) {
    let (exchange, n) = auth.start(&RANDOM, out).unwrap();
    (exchange, out[..n].to_vec())
}

#[test]
fn plain_sends_one_message_and_reads_the_verdict() {
    let mechanism = Mechanism::Plain {
        username: "gateway-7",
        password: "hunter2",
    };
    let mut auth = Authenticator::new(mechanism).unwrap();
    let mut out = [0u8; 64];
    let (mut exchange, first) = start(&auth, &mut out);
    assert_eq!(first, b"\0gateway-7\0hunter2");
    let answer = SaslAuthenticateResponse {
        session_lifetime_ms: 900_000,
        ..Default::default()
    };
    assert_eq!(
        auth.on_response(&mut exchange, &answer, &mut out),
        Ok(Step::Done {
            session_lifetime_ms: 900_000
        })
    );
    assert!(exchange.is_authenticated());
    // Anything after the verdict is not PLAIN.
    assert_eq!(
        auth.on_response(&mut exchange, &ok(b""), &mut out),
        Err(Error::UnexpectedServerMessage)
    );

    let (mut exchange, _) = start(&auth, &mut out);
    assert_eq!(
        auth.on_response(&mut exchange, &refused(58), &mut out),
        Err(Error::AuthenticationFailed { error_code: 58 })
    );
    assert!(!exchange.is_authenticated());
    let (mut exchange, _) = start(&auth, &mut out);
    assert_eq!(
        auth.on_response(&mut exchange, &ok(b"challenge?"), &mut out),
        Err(Error::UnexpectedServerMessage)
    );
    // The buffer must hold the message.
    assert_eq!(
        auth.start(&RANDOM, &mut out[..10]).err(),
        Some(Error::BufferTooSmall {
            needed: plain::message_len("gateway-7", "hunter2")
        })
    );
}

#[test]
fn oauthbearer_success_and_the_error_dance() {
    let extensions = [("logicalCluster", "lkc-123"), ("identityPoolId", "pool-1")];
    let mechanism = Mechanism::OAuthBearer {
        token: TOKEN,
        extensions: &extensions,
    };
    let mut auth = Authenticator::new(mechanism).unwrap();
    assert_eq!(auth.handshake_request().mechanism, "OAUTHBEARER");
    let mut out = [0u8; 256];
    let (mut exchange, first) = start(&auth, &mut out);
    let expected = format!(
        "n,,\x01auth=Bearer {TOKEN}\x01logicalCluster=lkc-123\x01identityPoolId=pool-1\x01\x01"
    );
    assert_eq!(first, expected.as_bytes());
    assert_eq!(
        auth.on_response(&mut exchange, &ok(b""), &mut out),
        Ok(Step::Done {
            session_lifetime_ms: 0
        })
    );

    // A refused token: the broker's JSON, the client's \x01, the broker's error 58.
    let (mut exchange, _) = start(&auth, &mut out);
    let json = br#"{"status":"invalid_token","scope":"kafka","openid-configuration":"https://idp/.well-known/openid-configuration"}"#;
    assert_eq!(
        auth.on_response(&mut exchange, &ok(json), &mut out),
        Ok(Step::Send(1))
    );
    assert_eq!(&out[..1], oauthbearer::FINISH);
    let expected = Error::TokenRejected {
        status: OAuthStatus::InvalidToken,
    };
    assert_eq!(
        auth.on_response(&mut exchange, &refused(58), &mut out),
        Err(expected)
    );
    assert!(expected.to_string().contains("invalid_token"));
    // A broker that ends without an error code after the \x01 still refused.
    let (mut exchange, _) = start(&auth, &mut out);
    auth.on_response(
        &mut exchange,
        &ok(br#"{"status":"insufficient_scope"}"#),
        &mut out,
    )
    .unwrap();
    assert_eq!(
        auth.on_response(&mut exchange, &ok(b""), &mut out),
        Err(Error::TokenRejected {
            status: OAuthStatus::InsufficientScope
        })
    );
    // Garbage instead of JSON is still a refusal the client must close.
    let (mut exchange, _) = start(&auth, &mut out);
    auth.on_response(&mut exchange, &ok(b"\xff\x00nope"), &mut out)
        .unwrap();
    assert_eq!(
        auth.on_response(&mut exchange, &refused(58), &mut out),
        Err(Error::TokenRejected {
            status: OAuthStatus::Unreadable
        })
    );
    // The closing byte needs a byte of room; with none, the step can be repeated.
    let (mut exchange, _) = start(&auth, &mut out);
    assert_eq!(
        auth.on_response(&mut exchange, &ok(json), &mut []),
        Err(Error::BufferTooSmall { needed: 1 })
    );
    assert_eq!(
        auth.on_response(&mut exchange, &ok(json), &mut out),
        Ok(Step::Send(1))
    );
}

#[test]
fn a_fresh_token_for_each_exchange() {
    let extensions = [("logicalCluster", "lkc-1")];
    let mechanism = Mechanism::OAuthBearer {
        token: "first",
        extensions: &extensions,
    };
    let mut auth = Authenticator::new(mechanism).unwrap();
    let mut out = [0u8; 128];
    let (mut exchange, n) = auth.start_with_token("refreshed.jwt", &mut out).unwrap();
    assert_eq!(
        &out[..n],
        b"n,,\x01auth=Bearer refreshed.jwt\x01logicalCluster=lkc-1\x01\x01"
    );
    assert_eq!(
        auth.on_response(&mut exchange, &ok(b""), &mut out),
        Ok(Step::Done {
            session_lifetime_ms: 0
        })
    );
    assert_eq!(
        auth.start_with_token("not a token", &mut out).err(),
        Some(Error::InvalidToken)
    );
    let plain = Authenticator::new(Mechanism::Plain {
        username: "u",
        password: "p",
    })
    .unwrap();
    assert_eq!(
        plain.start_with_token("t", &mut out).err(),
        Some(Error::WrongMechanism)
    );
}

#[test]
fn credentials_are_checked_when_the_authenticator_is_made() {
    let bad = [
        (
            Mechanism::Plain {
                username: "",
                password: "p",
            },
            Error::EmptyUsername,
        ),
        (
            Mechanism::Plain {
                username: "u",
                password: "",
            },
            Error::EmptyPassword,
        ),
        (
            Mechanism::Plain {
                username: "u\0",
                password: "p",
            },
            Error::NulInCredentials,
        ),
        (
            Mechanism::ScramSha256 {
                username: "",
                password: "p",
            },
            Error::EmptyUsername,
        ),
        (
            Mechanism::ScramSha512 {
                username: "u",
                password: "",
            },
            Error::EmptyPassword,
        ),
        (
            Mechanism::OAuthBearer {
                token: "Bearer abc",
                extensions: &[],
            },
            Error::InvalidToken,
        ),
        (
            Mechanism::OAuthBearer {
                token: "abc",
                extensions: &[("auth", "x")],
            },
            Error::InvalidExtension,
        ),
    ];
    for (mechanism, expected) in bad {
        assert_eq!(
            Authenticator::new(mechanism).err(),
            Some(expected),
            "{mechanism:?}"
        );
    }
}

#[test]
fn the_handshake_must_enable_the_mechanism() {
    let auth = Authenticator::new(Mechanism::ScramSha512 {
        username: "u",
        password: "p",
    })
    .unwrap();
    let names = [MechanismName("PLAIN"), MechanismName("SCRAM-SHA-512")];
    let listed = |error_code, names| SaslHandshakeResponse {
        error_code,
        mechanisms: List::from_slice(names),
    };
    assert_eq!(auth.check_handshake(&listed(0, &names)), Ok(()));
    let refusal = Error::MechanismNotEnabled {
        mechanism: "SCRAM-SHA-512",
    };
    let not_enabled = Err(refusal);
    assert_eq!(auth.check_handshake(&listed(33, &names[..1])), not_enabled);
    assert_eq!(auth.check_handshake(&listed(0, &names[..1])), not_enabled);
    assert_eq!(
        auth.check_handshake(&listed(34, &[])),
        Err(Error::AuthenticationFailed { error_code: 34 })
    );
    let shown = refusal.to_string();
    assert!(shown.contains("sasl.enabled.mechanisms"), "{shown}");
}

#[test]
fn no_secret_reaches_debug_or_display() {
    let secret = "hunter2-secret";
    let extensions = [("k", "v")];
    let mechanisms = [
        Mechanism::Plain {
            username: "alice",
            password: secret,
        },
        Mechanism::ScramSha256 {
            username: "alice",
            password: secret,
        },
        Mechanism::ScramSha512 {
            username: "alice",
            password: secret,
        },
        Mechanism::OAuthBearer {
            token: secret,
            extensions: &extensions,
        },
    ];
    for mechanism in mechanisms {
        let mut auth = Authenticator::new(mechanism).unwrap();
        let mut out = [0u8; 256];
        let (mut exchange, n) = auth.start(&RANDOM, &mut out).unwrap();
        let request = producer_core::wire::SaslAuthenticateRequest {
            auth_bytes: &out[..n],
        };
        let shown = format!("{mechanism:?} {auth:?} {exchange:?} {request:?}");
        assert!(!shown.contains(secret), "{shown}");
        assert!(shown.contains(mechanism.name()), "{shown}");
        let error = auth
            .on_response(&mut exchange, &refused(58), &mut out)
            .unwrap_err();
        let shown = format!("{error} {error:?} {exchange:?}");
        assert!(!shown.contains(secret), "{shown}");
    }
}

#[test]
fn every_error_says_what_to_do() {
    use producer_core::sasl::ScramServerError;
    let errors = [
        Error::EmptyUsername,
        Error::EmptyPassword,
        Error::NulInCredentials,
        Error::InvalidToken,
        Error::InvalidExtension,
        Error::InvalidNonce,
        Error::BufferTooSmall { needed: 0 },
        Error::BufferTooSmall { needed: 9 },
        Error::MechanismNotEnabled { mechanism: "PLAIN" },
        Error::AuthenticationFailed { error_code: 58 },
        Error::AuthenticationFailed { error_code: 34 },
        Error::AuthenticationFailed { error_code: 7 },
        Error::TokenRejected {
            status: OAuthStatus::Other,
        },
        Error::UnexpectedServerMessage,
        Error::OutOfOrder,
        Error::WrongMechanism,
        Error::ScramMalformed,
        Error::ScramMissingAttribute { attribute: 's' },
        Error::ScramBadBase64 { attribute: 'v' },
        Error::ScramNonceMismatch,
        Error::ScramMandatoryExtension,
        Error::ScramBadIterationCount,
        Error::ScramIterationsTooLow { iterations: 10 },
        Error::ScramIterationsTooHigh {
            iterations: 1 << 30,
        },
        Error::ScramSaltTooLong,
        Error::ScramServerSignatureMismatch,
        Error::ScramServerError(ScramServerError::InvalidProof),
        Error::ScramServerError(ScramServerError::UnknownUser),
        Error::ScramServerError(ScramServerError::NoResources),
    ];
    for e in errors {
        let shown = e.to_string();
        assert!(
            shown.starts_with("SASL:")
                || shown.starts_with("SCRAM:")
                || shown.starts_with("OAUTHBEARER:"),
            "{shown}"
        );
        assert!(shown.len() > 40, "too terse: {shown}");
    }
}

proptest! {
    /// Whatever the broker answers, in whatever order, the authenticator returns values.
    #[test]
    fn random_answers_never_panic(
        which in 0usize..4,
        answers in proptest::collection::vec(
            (prop_oneof![Just(0i16), Just(58), any::<i16>()], proptest::collection::vec(any::<u8>(), 0..100), any::<i64>()),
            1..5,
        ),
        out_len in 0usize..300,
    ) {
        let extensions = [("k", "v")];
        let mechanism = [
            Mechanism::Plain { username: "u", password: "p" },
            Mechanism::ScramSha256 { username: "u", password: "p" },
            Mechanism::ScramSha512 { username: "u", password: "p" },
            Mechanism::OAuthBearer { token: "t", extensions: &extensions },
        ][which];
        let mut auth = Authenticator::new(mechanism).unwrap();
        let mut out = vec![0u8; 300];
        let (mut exchange, _) = auth.start(&RANDOM, &mut out).unwrap();
        for (error_code, auth_bytes, session_lifetime_ms) in &answers {
            let answer = SaslAuthenticateResponse {
                error_code: *error_code,
                error_message: None,
                auth_bytes,
                session_lifetime_ms: *session_lifetime_ms,
            };
            let _ = auth.on_response(&mut exchange, &answer, &mut out[..out_len]);
        }
    }

    #[test]
    fn random_oauth_error_messages_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = oauthbearer::error_status(&bytes);
    }
}
