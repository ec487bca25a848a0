//! The producer (transport-std) authenticating against Kafka's SASL_PLAINTEXT listeners, one
//! node serving every mechanism (`KafkaBuilder::sasl`, users alice/alice-secret), with
//! sessions of 3 s (`connections.max.reauth.ms`), so every connection re-authenticates
//! (KIP-368) while records flow. Records are read back over the PLAINTEXT listener with the
//! independent consumer of the roundtrip tests, and checked exactly.
//!
//! One test, to start Kafka once:
//! - each mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER with unsigned tokens
//!   from a token source): 1,000 records, every one persisted once, in order;
//! - records flowing for about 10 s over SCRAM-SHA-512 while the 3 s sessions are renewed:
//!   nothing lost or duplicated, no resend (a session that ended would have closed the
//!   connection under requests in flight);
//! - a wrong password (PLAIN, SCRAM-SHA-512), bootstrapping through a counting proxy: the
//!   send fails quickly with the authentication error, the producer dials once and no more.

use std::sync::Arc;
use std::time::{Duration, Instant};

use producer_core::state::OutcomeKind;
use tests::kafka::{Kafka, Sasl, SaslMechanism, unsecured_jws};
use tests::records::{Run, produce_all, verify};
use tests::{ChaosProxy, ProxyMode, read_back};
use transport_std::{
    Error, FatalReason, Mechanism, OAuthToken, OAuthTokenSource, Producer, ProducerConfig,
    ProducerRecord, SaslError,
};

const REAUTH: Duration = Duration::from_secs(3);

fn config<'a>(
    bootstrap: String,
    topic: &str,
    mechanism: SaslMechanism,
    password: &'a str,
) -> ProducerConfig<'a> {
    let mut config: ProducerConfig<'a> = ProducerConfig::new([bootstrap], [topic.to_string()]);
    let username = "alice";
    config.client.sasl = Some(match mechanism {
        SaslMechanism::Plain => Mechanism::Plain { username, password },
        SaslMechanism::ScramSha256 => Mechanism::ScramSha256 { username, password },
        SaslMechanism::ScramSha512 => Mechanism::ScramSha512 { username, password },
        SaslMechanism::OAuthBearer => {
            config.oauth_token = Some(OAuthTokenSource(Arc::new(|| {
                Ok(OAuthToken {
                    token: unsecured_jws("alice", Duration::from_secs(60)),
                    valid_for: Some(Duration::from_secs(55)),
                })
            })));
            Mechanism::OAuthBearer {
                token: "",
                extensions: &[],
            }
        }
    });
    config
}

/// `n` records (every `interval`) over `mechanism` to a new topic, read back and checked.
fn round_trip(
    kafka: &Kafka,
    mechanism: SaslMechanism,
    n: usize,
    interval: Option<Duration>,
) -> Run {
    let started = Instant::now();
    let topic = format!("sasl-producer-{}-{n}", mechanism.name().to_lowercase());
    kafka.create_topic(&topic, 2);
    let cfg = config(
        kafka.sasl_bootstrap(mechanism),
        &topic,
        mechanism,
        "alice-secret",
    );
    let mut producer = Producer::new(cfg).expect("producer");
    let run = produce_all(&mut producer, &topic, n, Duration::from_secs(30), interval);
    assert_eq!(producer.authentication_error(), None);
    drop(producer);
    let persisted = run
        .told
        .iter()
        .filter(|t| t.outcome == Some(OutcomeKind::Persisted))
        .count();
    assert_eq!(persisted, n, "{}: every record persisted", mechanism.name());
    let log = read_back(&kafka.bootstrap(), &topic, 2, n, Duration::from_secs(60));
    let v = verify(&log, &run.told, true);
    assert_eq!(v.persisted, n, "{}: read back exactly", mechanism.name());
    eprintln!(
        "{}: {n} records produced and read back in {:.1} s ({} retries)",
        mechanism.name(),
        started.elapsed().as_secs_f64(),
        run.retries
    );
    run
}

/// A wrong password: the producer stops at once with the authentication error, having
/// dialled the (counting) bootstrap proxy once.
fn wrong_password(kafka: &Kafka, mechanism: SaslMechanism) {
    let topic = "sasl-producer-refused";
    let proxy = ChaosProxy::start(kafka.sasl_addr(1, mechanism), ProxyMode::Pass, 1);
    let mut producer = Producer::new(config(
        proxy.address(),
        topic,
        mechanism,
        "not-the-password",
    ))
    .unwrap();
    let started = Instant::now();
    let record = ProducerRecord::value(topic, b"refused");
    let sent = producer.send(&record, Instant::now() + Duration::from_secs(20));
    let took = started.elapsed();
    let refused = FatalReason::Authentication(SaslError::AuthenticationFailed { error_code: 58 });
    match sent {
        Err(Error::Stopped(reason)) => assert_eq!(reason, refused, "{}", mechanism.name()),
        other => panic!("{}: {other:?}", mechanism.name()),
    }
    let message = Error::Stopped(refused).to_string();
    assert!(
        message.contains("credentials") && !message.contains("not-the-password"),
        "{message}"
    );
    assert!(took < Duration::from_secs(5), "refused after {took:?}");
    // Driven a while longer: nothing is dialled again.
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        producer.poll(Duration::from_millis(50));
    }
    assert!(producer.authentication_error().is_some());
    assert!(
        producer.poll_delivery().is_none(),
        "the record was never accepted"
    );
    assert_eq!(
        proxy.stats().connections,
        1,
        "{}: connections",
        mechanism.name()
    );
    eprintln!(
        "{}: a wrong password refused in {:.2} s: {message}",
        mechanism.name(),
        took.as_secs_f64()
    );
}

#[test]
fn producer_authenticates_on_every_mechanism_and_renews_sessions() {
    let started = Instant::now();
    let kafka = Kafka::builder(1).sasl(Sasl::all().reauth(REAUTH)).start();
    eprintln!("kafka up in {:.1} s", started.elapsed().as_secs_f64());
    for mechanism in SaslMechanism::ALL {
        round_trip(&kafka, mechanism, 1000, None);
    }
    // About 10 s of records, 2,000 of them, while sessions of 3 s are renewed.
    let run = round_trip(
        &kafka,
        SaslMechanism::ScramSha512,
        2000,
        Some(Duration::from_millis(5)),
    );
    assert!(
        run.elapsed >= REAUTH * 3,
        "records flowed for {:?}",
        run.elapsed
    );
    assert_eq!(run.retries, 0, "a session ended under requests in flight");
    for mechanism in [SaslMechanism::Plain, SaslMechanism::ScramSha512] {
        wrong_password(&kafka, mechanism);
    }
    eprintln!(
        "sasl producer test: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
