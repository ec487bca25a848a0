//! Kafka's SASL_PLAINTEXT listeners from the fixture (`KafkaBuilder::sasl`), proven with
//! Kafka's own Java clients, not the producer under test; and a reference SCRAM-SHA-512
//! exchange captured from them, for a known-answer test of a SCRAM client.
//!
//! - `java_clients_authenticate_on_every_mechanism`: one node offering PLAIN, SCRAM-SHA-256,
//!   SCRAM-SHA-512 and OAUTHBEARER (one listener each, re-authentication after 60 s). On
//!   each, Kafka's console producer writes three records and its console consumer reads them
//!   back; a wrong password is refused. The SCRAM-SHA-512 producer bootstraps through a
//!   recording proxy, and the exchange it recorded is checked like the checked-in capture.
//!   A probe of our own (fixed messages) checks PLAIN refusing a wrong password with
//!   SASL_AUTHENTICATION_FAILED, the listener refusing another mechanism, OAUTHBEARER
//!   accepting an unsigned token built here and refusing an expired one (RFC 7628's error
//!   status, then the error), and the session lifetime the re-authentication limit gives.
//! - `unsecured_jws_is_unsigned_base64url`: the tokens' encoding (no broker).
//! - `scram_sha_512_capture_known_answer`: `tests/data/scram-sha-512-java-capture.txt`
//!   recomputed from its password (no broker).
//! - `record_scram_sha_512_capture` (ignored): captures the exchange anew into that file.

#[path = "kafka_sasl/scram.rs"]
mod scram;

use std::fs;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use scram::ScramCapture;
use tests::kafka::{
    Kafka, Sasl, SaslMechanism, SaslUser, java_client_properties, oauthbearer_initial_response,
    unsecured_jws, unsecured_jws_of, version,
};
use tests::sasl_frames::{Probe, SASL_AUTHENTICATE, sasl_probe};
use tests::sasl_recorder::{Direction, SaslRecorder};

const CAPTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/data/scram-sha-512-java-capture.txt"
);

/// Enough for a client JVM to start and finish on a busy machine.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

const SASL_AUTHENTICATION_FAILED: i16 = 58;
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;

#[test]
fn java_clients_authenticate_on_every_mechanism() {
    let started = Instant::now();
    let reauth = Duration::from_secs(60);
    let kafka = Kafka::builder(1).sasl(Sasl::all().reauth(reauth)).start();
    for mechanism in SaslMechanism::ALL {
        let scram_512 = mechanism == SaslMechanism::ScramSha512;
        let recorder = scram_512.then(|| SaslRecorder::start(kafka.sasl_addr(1, mechanism)));
        round_trip(&kafka, mechanism, recorder.as_ref().map(|r| r.address()));
        if let Some(recorder) = recorder {
            let capture = scram_capture(&recorder, kafka.sasl().user_of(mechanism));
            capture.verify();
            assert_eq!(capture.iterations(), 4096);
        }
        eprintln!(
            "{}: produced and read back ({:.1} s)",
            mechanism.name(),
            started.elapsed().as_secs_f64()
        );
    }
    for mechanism in [
        SaslMechanism::Plain,
        SaslMechanism::ScramSha256,
        SaslMechanism::ScramSha512,
    ] {
        wrong_password_refused(&kafka, mechanism);
    }
    probes(&kafka, reauth);
    eprintln!(
        "sasl fixture test: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The console producer writes three records with `mechanism` (bootstrapping through
/// `through` if given), and the console consumer reads them back.
fn round_trip(kafka: &Kafka, mechanism: SaslMechanism, through: Option<String>) {
    let topic = format!("sasl-{}", mechanism.name().to_lowercase());
    kafka.create_topic(&topic, 1);
    let properties = java_client_properties(mechanism, kafka.sasl().user_of(mechanism));
    let values: Vec<String> = (0..3).map(|i| format!("{topic}-{i}")).collect();
    let values: Vec<&str> = values.iter().map(String::as_str).collect();
    let bootstrap = kafka.sasl_bootstrap(mechanism);
    let produced = kafka.console_produce(
        through.as_deref().unwrap_or(&bootstrap),
        &topic,
        &properties,
        &values,
        CLIENT_TIMEOUT,
    );
    let name = mechanism.name();
    assert!(produced.success, "{name} producer: {}", produced.report());
    let consumed = kafka.console_consume(
        &bootstrap,
        &topic,
        &properties,
        values.len(),
        CLIENT_TIMEOUT,
    );
    assert!(consumed.success, "{name} consumer: {}", consumed.report());
    assert_eq!(consumed.lines(), values, "{name} read back");
}

/// The console producer with a wrong password fails, saying authentication failed.
fn wrong_password_refused(kafka: &Kafka, mechanism: SaslMechanism) {
    let user = kafka.sasl().user_of(mechanism);
    let wrong = SaslUser::new(&user.name, "not-the-password");
    let run = kafka.console_produce(
        &kafka.sasl_bootstrap(mechanism),
        &format!("sasl-{}", mechanism.name().to_lowercase()),
        &java_client_properties(mechanism, &wrong),
        &["refused"],
        CLIENT_TIMEOUT,
    );
    assert!(
        !run.success && !run.timed_out && run.stderr.contains("SaslAuthenticationException"),
        "{} with a wrong password: {}",
        mechanism.name(),
        run.report()
    );
}

/// What the listeners answer one message of our own.
fn probes(kafka: &Kafka, reauth: Duration) {
    let plain = kafka.sasl_addr(1, SaslMechanism::Plain);
    let user = kafka.sasl().user_of(SaslMechanism::Plain);
    let message = |password: &str| format!("\0{}\0{password}", user.name).into_bytes();
    let codes =
        |probe: &Probe| -> Vec<i16> { probe.answers.iter().map(|a| a.error_code).collect() };

    let probe = sasl_probe(plain, "PLAIN", &[&message(&user.password)]).expect("PLAIN probe");
    assert_eq!(codes(&probe), [0], "PLAIN: {probe:?}");
    let lifetime = probe.answers[0].session_lifetime_ms;
    let limit = reauth.as_millis() as i64;
    assert!(
        0 < lifetime && lifetime <= limit,
        "session lifetime {lifetime}, limit {limit}"
    );

    let probe = sasl_probe(plain, "PLAIN", &[&message("wrong")]).expect("PLAIN probe");
    assert_eq!(codes(&probe), [SASL_AUTHENTICATION_FAILED], "{probe:?}");

    let probe = sasl_probe(plain, "SCRAM-SHA-512", &[]).expect("handshake");
    assert_eq!(probe.handshake_error, UNSUPPORTED_SASL_MECHANISM);
    assert_eq!(probe.mechanisms, ["PLAIN"]);

    let oauth = kafka.sasl_addr(1, SaslMechanism::OAuthBearer);
    let token = unsecured_jws("alice", Duration::from_secs(20));
    let first = oauthbearer_initial_response(&token);
    let probe = sasl_probe(oauth, "OAUTHBEARER", &[&first]).expect("OAUTHBEARER probe");
    assert_eq!(codes(&probe), [0], "OAUTHBEARER: {probe:?}");
    let lifetime = probe.answers[0].session_lifetime_ms;
    assert!(
        0 < lifetime && lifetime <= 20_000,
        "session lifetime {lifetime}, token 20 s"
    );

    // Expired a minute ago: RFC 7628's error status first (no error code), and the error
    // once the client answers it with 0x01.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expired = unsecured_jws_of(&format!(
        "{{\"sub\":\"alice\",\"iat\":{},\"exp\":{}}}",
        now - 120,
        now - 60
    ));
    let first = oauthbearer_initial_response(&expired);
    let probe = sasl_probe(oauth, "OAUTHBEARER", &[&first, b"\x01"]).expect("OAUTHBEARER probe");
    assert_eq!(codes(&probe), [0, SASL_AUTHENTICATION_FAILED], "{probe:?}");
    assert_eq!(
        String::from_utf8_lossy(&probe.answers[0].auth_bytes),
        r#"{"status":"invalid_token"}"#,
        "an expired token"
    );
}

#[test]
fn unsecured_jws_is_unsigned_base64url() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    for claims in ["{}", "{\"a\":1}", "{\"ab\":12}", "{\"sub\":\"alice\"}"] {
        let token = unsecured_jws_of(claims);
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3, "{token}");
        assert_eq!(
            URL_SAFE_NO_PAD.decode(parts[0]).unwrap(),
            br#"{"alg":"none"}"#
        );
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[1]).unwrap(), claims.as_bytes());
        assert_eq!(parts[2], "", "no signature");
    }
}

/// The SCRAM exchange of the recorder's first connection.
fn scram_capture(recorder: &SaslRecorder, user: &SaslUser) -> ScramCapture {
    let connections = recorder.connections();
    let first = connections
        .first()
        .expect("the producer connected through the recorder");
    let text = |direction: Direction, n: usize| {
        let m = first
            .iter()
            .filter(|m| m.api_key == SASL_AUTHENTICATE && m.direction == direction)
            .nth(n)
            .unwrap_or_else(|| panic!("SaslAuthenticate {direction:?} #{n} in {first:?}"));
        assert_eq!(m.error_code, 0, "{m:?}");
        String::from_utf8(m.bytes.clone()).expect("SCRAM messages are text")
    };
    ScramCapture {
        username: user.name.clone(),
        password: user.password.clone(),
        client_first: text(Direction::ClientToBroker, 0),
        server_first: text(Direction::BrokerToClient, 0),
        client_final: text(Direction::ClientToBroker, 1),
        server_final: text(Direction::BrokerToClient, 1),
    }
}

#[test]
fn scram_sha_512_capture_known_answer() {
    let text = fs::read_to_string(CAPTURE).unwrap_or_else(|e| panic!("read {CAPTURE}: {e}"));
    let capture = ScramCapture::parse(&text);
    capture.verify();
    assert_eq!(capture.iterations(), 4096);
}

#[test]
#[ignore = "writes tests/data/scram-sha-512-java-capture.txt anew"]
fn record_scram_sha_512_capture() {
    let kafka = Kafka::builder(1)
        .sasl(Sasl::new().user(SaslMechanism::ScramSha512, "alice", "alice-secret"))
        .start();
    kafka.create_topic("capture", 1);
    let user = kafka.sasl().user_of(SaslMechanism::ScramSha512).clone();
    let recorder = SaslRecorder::start(kafka.sasl_addr(1, SaslMechanism::ScramSha512));
    let properties = java_client_properties(SaslMechanism::ScramSha512, &user);
    let run = kafka.console_produce(
        &recorder.address(),
        "capture",
        &properties,
        &["captured"],
        CLIENT_TIMEOUT,
    );
    assert!(run.success, "producer: {}", run.report());
    let capture = scram_capture(&recorder, &user);
    capture.verify();
    // Consecutive frames of one API and version together: "SaslHandshake v1 (request, answer)".
    let mut frames: Vec<(String, Vec<&str>)> = Vec::new();
    for m in &recorder.connections()[0] {
        let name = match m.api_key {
            SASL_AUTHENTICATE => format!("SaslAuthenticate v{}", m.api_version),
            _ => format!("SaslHandshake v{}", m.api_version),
        };
        let way = match m.direction {
            Direction::ClientToBroker => "request",
            Direction::BrokerToClient => "answer",
        };
        match frames.last_mut() {
            Some((last, ways)) if *last == name => ways.push(way),
            _ => frames.push((name, vec![way])),
        }
    }
    let frames: Vec<String> = frames
        .iter()
        .map(|(name, ways)| format!("{name} ({})", ways.join(", ")))
        .collect();
    let java = Command::new("java")
        .arg("-version")
        .output()
        .expect("java -version");
    let java = String::from_utf8_lossy(&java.stderr);
    let java = java.lines().nth(1).unwrap_or("unknown").trim().to_string();
    let v = version();
    let header = [
        "A SCRAM-SHA-512 exchange (RFC 5802, RFC 7677) between Apache Kafka's own Java client",
        "and broker, for known-answer tests of a SCRAM client. Each message below is the",
        "auth_bytes of one SaslAuthenticate request or answer, verbatim (ASCII).",
        "",
        &format!("Broker: Apache Kafka {v} (kafka_2.13 from Maven Central), KRaft, one node; a"),
        "  SASL_PLAINTEXT listener offering SCRAM-SHA-512 alone; the credential made when the",
        "  storage was formatted: kafka-storage format ... --add-scram",
        "  'SCRAM-SHA-512=[name=alice,password=alice-secret,iterations=4096]'",
        &format!(
            "Client: kafka-clients {v}, org.apache.kafka.tools.ConsoleProducer (kafka-tools {v}),"
        ),
        &format!("  on {java},"),
        "  security.protocol=SASL_PLAINTEXT, sasl.mechanism=SCRAM-SHA-512, sasl.jaas.config=",
        "  ScramLoginModule required username=\"alice\" password=\"alice-secret\";",
        "  bootstrapped through a recording proxy (tests/src/sasl_recorder.rs) that read the",
        "  Kafka frames of the connection; its SASL frames:",
        &format!("  {}.", frames.join("; ")),
        "Captured by: cargo test -p tests --test kafka_sasl -- --ignored record_scram_sha_512_capture",
        "  (each capture has new nonces and a new salt).",
        "Checked by: cargo test -p tests --test kafka_sasl scram_sha_512_capture_known_answer",
    ];
    let header: String = header
        .iter()
        .map(|l| format!("#{}{l}\n", if l.is_empty() { "" } else { " " }))
        .collect();
    fs::write(CAPTURE, format!("{header}{}", capture.to_lines()))
        .unwrap_or_else(|e| panic!("write {CAPTURE}: {e}"));
    eprintln!("wrote {CAPTURE}");
}
