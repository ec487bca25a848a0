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
//!
//! `cuts_inside_the_sasl_handshake_lose_and_duplicate_nothing`: each mechanism's listener
//! advertises a [`ChaosProxy`] in front of it (so every connection goes through it), which
//! cuts two SaslHandshake or SaslAuthenticate frames in five and one other request in twenty
//! ([`ProxyMode::SaslChaos`]), at random points (before, inside, after the request, inside
//! the answer); sessions of 3 s, so re-authentications are cut too. Every record persists,
//! the log is exactly what was sent, and the proxy's counts per API key show cuts inside
//! the SASL exchange for every mechanism. Nothing the producer logged holds a password or a
//! token.
//!
//! `oauthbearer_tokens_expire_and_are_renewed_while_records_flow`: tokens of 4 s (so Kafka
//! ends each session at the token's `exp`) from a token source, records flowing for 12 s
//! through a proxy that records the SASL exchanges: the source is asked again and again,
//! the connection re-authenticates with each new token before its session ends, no token is
//! sent past its `exp`, Kafka accepts every one, and every record is in the log once, in
//! order.
//!
//! `an_identity_provider_outage_delays_records_and_stops_nothing`: 4 s tokens, and the token
//! source fails for 6 s in the middle of 15 s of records: the last token's sessions shrink
//! below Kafka's one re-authentication a second, the producer hands its connections on
//! rather than renewing them too soon (which Kafka refuses with ILLEGAL_SASL_STATE, and which
//! stopped the producer for good before), waits for a token, and once the source answers
//! again every record is persisted once, in order.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use producer_core::state::OutcomeKind;
use tests::kafka::{Kafka, Sasl, SaslMechanism, unsecured_jws, unsecured_jws_valid_for};
use tests::records::{Run, assert_log_is_what_was_sent, produce_all, verify};
use tests::sasl_frames::{SASL_AUTHENTICATE, SASL_HANDSHAKE};
use tests::sasl_recorder::{Direction, SaslRecorder};
use tests::{ChaosProxy, ProxyMode, free_port, log_capture, read_back};
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

/// [`ProxyMode::SaslChaos`]'s chance of cutting at a SaslHandshake or SaslAuthenticate frame.
///
/// Why "no cut inside the SASL exchange" cannot happen by chance: each connection makes one
/// SaslHandshake and one SaslAuthenticate (PLAIN, OAUTHBEARER) or two (SCRAM), each cut with
/// 0.4 on its own draw, so a connection gets through its exchange uncut with q = 0.6² = 0.36
/// (SCRAM: 0.6³ = 0.216). Only a cut makes a new connection, and if no SASL frame were ever
/// cut, every cut of one of the R other request frames (each 0.05) would make one that then
/// went through its exchange uncut too. So P(no SASL cut) ≤ q · (1 - 0.05 (1 - q))^R. A run
/// paces 1,000 records over 4 s into 512-byte batches of two partitions (a batch sealed by
/// the 5 ms linger holds one record or two): six runs had 480 to 830 other request frames
/// (less the ApiVersions of the connections that SASL cuts made), 24 to 48 of them cut. At
/// R = 450: PLAIN and OAUTHBEARER 2·10⁻⁷ each, SCRAM 3·10⁻⁹; at R = 700, below 10⁻¹⁰. Those
/// runs had 52 to 142 SASL cuts per mechanism.
const SASL_CUT: f64 = 0.4;
/// … and at any other request frame.
const OTHER_CUT: f64 = 0.05;

/// What every unsecured JWS starts with: `{"alg":"none"}`, base64url.
const JWS_HEADER: &str = "eyJhbGciOiJub25lIn0";

/// Fails if a line the producer logged holds `secret`.
fn assert_not_logged(secret: &str) {
    for line in log_capture::lines() {
        assert!(!line.contains(secret), "a secret in the log: {line}");
    }
}

/// Records over `mechanism` through `proxy` cutting inside the SASL exchange; returns the
/// cuts it made at SaslHandshake and at SaslAuthenticate frames.
fn through_sasl_chaos(kafka: &Kafka, mechanism: SaslMechanism, proxy: &ChaosProxy) -> (u64, u64) {
    const N: usize = 1000;
    let started = Instant::now();
    let name = mechanism.name();
    let topic = format!("sasl-chaos-{}", name.to_lowercase());
    kafka.create_topic(&topic, 2);
    let mut cfg = config(proxy.address(), &topic, mechanism, "alice-secret");
    // Small batches: more requests, so more cuts, so more connections and handshakes.
    cfg.client.batch_bytes = 512;
    cfg.client = cfg.client.with_request_timeout(Duration::from_secs(5));
    // A handshake cut is a failed dial, and SASL answers do not reset the backoff: several
    // in a row would otherwise wait seconds between dials.
    cfg.client.reconnect_backoff = Duration::from_millis(5);
    cfg.client.reconnect_backoff_max = Duration::from_millis(25);
    let mut producer = Producer::new(cfg).expect("producer");
    proxy.set_mode(ProxyMode::SaslChaos {
        cut_probability: OTHER_CUT,
        sasl_cut_probability: SASL_CUT,
    });
    let run = produce_all(
        &mut producer,
        &topic,
        N,
        Duration::from_secs(60),
        Some(Duration::from_millis(4)),
    );
    assert_eq!(producer.authentication_error(), None, "{name}");
    drop(producer);
    proxy.set_mode(ProxyMode::Pass);
    let stats = proxy.stats();
    let (handshake, authenticate) = (
        proxy.api_stats(SASL_HANDSHAKE),
        proxy.api_stats(SASL_AUTHENTICATE),
    );
    eprintln!(
        "{name}: {N} records in {:.1} s, {} retries, {} epoch bumps; proxy: {} connections, \
         {} requests, {} cuts; SaslHandshake {handshake:?}, SaslAuthenticate {authenticate:?}",
        run.elapsed.as_secs_f64(),
        run.retries,
        run.epoch_bumps,
        stats.connections,
        stats.requests,
        stats.cuts(),
    );
    assert_eq!(
        run.count(OutcomeKind::Persisted),
        N,
        "{name}: every record persisted"
    );
    let log = read_back(&kafka.bootstrap(), &topic, 2, N, Duration::from_secs(60));
    let v = verify(&log, &run.told, true);
    assert_eq!(v.persisted, N, "{name}: read back");
    assert_log_is_what_was_sent(&log, &run.told);
    assert!(
        handshake.cuts + authenticate.cuts > 0,
        "{name}: no cut inside the SASL exchange"
    );
    eprintln!(
        "{name}: read back exactly ({:.1} s in all)",
        started.elapsed().as_secs_f64()
    );
    (handshake.cuts, authenticate.cuts)
}

#[test]
fn cuts_inside_the_sasl_handshake_lose_and_duplicate_nothing() {
    log_capture::install();
    let started = Instant::now();
    let seed: u64 = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("sasl chaos: seed {seed} (rerun with CHAOS_SEED={seed})");
    // One proxy per mechanism's listener, bound first: the listener advertises it.
    let proxies: Vec<(SaslMechanism, u16, ChaosProxy)> = SaslMechanism::ALL
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            let port = free_port();
            let proxy = ChaosProxy::start(
                ([127, 0, 0, 1], port).into(),
                ProxyMode::Pass,
                seed.wrapping_add(i as u64),
            );
            (m, port, proxy)
        })
        .collect();
    let mut builder = Kafka::builder(1).sasl(Sasl::all().reauth(REAUTH));
    for (m, port, proxy) in &proxies {
        builder = builder.sasl_listener(*m, vec![*port], vec![proxy.address()]);
    }
    let kafka = builder.start();
    let mut cuts = Vec::new();
    for (m, _, proxy) in &proxies {
        cuts.push((m.name(), through_sasl_chaos(&kafka, *m, proxy)));
    }
    assert_not_logged("alice-secret");
    assert_not_logged(JWS_HEADER);
    eprintln!(
        "sasl chaos: seed {seed}: cuts at (SaslHandshake, SaslAuthenticate) {cuts:?}; {} log lines \
         hold no password or token; {:.1} s",
        log_capture::lines().len(),
        started.elapsed().as_secs_f64()
    );
}

/// The token inside an OAUTHBEARER client message (`n,,\x01auth=Bearer TOKEN\x01\x01`).
fn bearer_token(message: &[u8]) -> Option<&str> {
    std::str::from_utf8(message)
        .ok()?
        .strip_prefix("n,,\x01auth=Bearer ")?
        .split('\x01')
        .next()
}

#[test]
fn oauthbearer_tokens_expire_and_are_renewed_while_records_flow() {
    log_capture::install();
    const LIFETIME: Duration = Duration::from_secs(4);
    const N: usize = 2400;
    let started = Instant::now();
    let topic = "sasl-token-renewal";
    let mechanism = SaslMechanism::OAuthBearer;
    let port = free_port();
    let recorder = SaslRecorder::start(([127, 0, 0, 1], port).into());
    // Sessions end at the token's `exp`: the re-authentication limit is far beyond it.
    let kafka = Kafka::builder(1)
        .sasl(
            Sasl::new()
                .enable(mechanism)
                .reauth(Duration::from_secs(60)),
        )
        .sasl_listener(mechanism, vec![port], vec![recorder.address()])
        .start();
    kafka.create_topic(topic, 2);
    // Every token handed out, with its expiry.
    let issued: Arc<Mutex<Vec<(String, SystemTime)>>> = Arc::default();
    let mut cfg: ProducerConfig<'_> =
        ProducerConfig::new([recorder.address()], [topic.to_string()]);
    cfg.client.sasl = Some(Mechanism::OAuthBearer {
        token: "",
        extensions: &[],
    });
    let source = issued.clone();
    cfg.oauth_token = Some(OAuthTokenSource(Arc::new(move || {
        let (token, valid_for) = unsecured_jws_valid_for("alice", LIFETIME);
        let expires = SystemTime::now() + valid_for;
        source.lock().unwrap().push((token.clone(), expires));
        Ok(OAuthToken {
            token,
            valid_for: Some(valid_for),
        })
    })));
    let mut producer = Producer::new(cfg).expect("producer");
    let run = produce_all(
        &mut producer,
        topic,
        N,
        Duration::from_secs(30),
        Some(Duration::from_millis(5)),
    );
    // produce_all panics on a refused send (Error::Stopped): authentication never failed.
    assert_eq!(producer.authentication_error(), None);
    drop(producer);
    let issued = issued.lock().unwrap().clone();
    let connections = recorder.connections();
    eprintln!(
        "{topic}: {N} records in {:.1} s, {} retries; {} tokens issued; SASL messages per \
         connection {:?}",
        run.elapsed.as_secs_f64(),
        run.retries,
        issued.len(),
        connections.iter().map(Vec::len).collect::<Vec<_>>()
    );
    assert_eq!(
        run.count(OutcomeKind::Persisted),
        N,
        "every record persisted"
    );
    let log = read_back(&kafka.bootstrap(), topic, 2, N, Duration::from_secs(60));
    let v = verify(&log, &run.told, true);
    assert_eq!(v.persisted, N);
    assert_log_is_what_was_sent(&log, &run.told);
    // A session that ended would have closed the connection under requests in flight.
    assert_eq!(run.retries, 0, "a session ended under requests in flight");
    assert!(
        issued.len() >= 3,
        "the token source was asked {} times",
        issued.len()
    );
    // What went over the wire: every token sent before its expiry, every one accepted, with
    // a session the token's `exp` bounds.
    let mut renewed_on_one_connection = 0;
    for (c, messages) in connections.iter().enumerate() {
        let mut tokens = HashSet::new();
        let mut sessions_ms = Vec::new();
        for m in messages.iter().filter(|m| m.api_key == SASL_AUTHENTICATE) {
            match m.direction {
                Direction::ClientToBroker => {
                    let token = bearer_token(&m.bytes).expect("an OAUTHBEARER client message");
                    let (_, expires) = issued
                        .iter()
                        .find(|(t, _)| t == token)
                        .expect("a token the source issued");
                    assert!(
                        m.at < *expires,
                        "connection {c}: a token sent {:?} after its expiry",
                        m.at.duration_since(*expires).unwrap_or_default()
                    );
                    tokens.insert(token.to_string());
                }
                Direction::BrokerToClient => {
                    assert_eq!(m.error_code, 0, "connection {c}: a token refused");
                    assert!(
                        m.session_lifetime_ms > 0
                            && m.session_lifetime_ms <= LIFETIME.as_millis() as i64,
                        "connection {c}: a session of {} ms",
                        m.session_lifetime_ms
                    );
                    sessions_ms.push(m.session_lifetime_ms);
                }
            }
        }
        eprintln!(
            "{topic}: connection {c}: sessions of {sessions_ms:?} ms, {} tokens",
            tokens.len()
        );
        renewed_on_one_connection =
            renewed_on_one_connection.max(tokens.len().min(sessions_ms.len()));
    }
    // Every session ended at its token's `exp` (4 s at most) and records flowed 12 s: a
    // connection that authenticated with three tokens outlived two sessions by renewing them.
    assert!(
        renewed_on_one_connection >= 3,
        "no connection re-authenticated with new tokens twice"
    );
    for (token, _) in &issued {
        assert_not_logged(token);
    }
    assert_not_logged(JWS_HEADER);
    eprintln!("{topic}: {:.1} s in all", started.elapsed().as_secs_f64());
}

#[test]
fn an_identity_provider_outage_delays_records_and_stops_nothing() {
    const LIFETIME: Duration = Duration::from_secs(4);
    const N: usize = 3000;
    // The identity provider is down from 3 s to 9 s into the run: longer than a token
    // lives, so the last token's sessions shrink to nothing and the producer is left
    // without one until it comes back.
    const DOWN: std::ops::Range<Duration> = Duration::from_secs(3)..Duration::from_secs(9);
    let topic = "sasl-idp-outage";
    let mechanism = SaslMechanism::OAuthBearer;
    let kafka = Kafka::builder(1)
        .sasl(
            Sasl::new()
                .enable(mechanism)
                .reauth(Duration::from_secs(60)),
        )
        .start();
    kafka.create_topic(topic, 2);
    let started = Instant::now();
    let refused = Arc::new(Mutex::new(0u32));
    let issued = Arc::new(Mutex::new(0u32));
    let mut cfg: ProducerConfig<'_> =
        ProducerConfig::new([kafka.sasl_bootstrap(mechanism)], [topic.to_string()]);
    cfg.client.sasl = Some(Mechanism::OAuthBearer {
        token: "",
        extensions: &[],
    });
    let (down, up) = (refused.clone(), issued.clone());
    cfg.oauth_token = Some(OAuthTokenSource(Arc::new(move || {
        if DOWN.contains(&started.elapsed()) {
            *down.lock().unwrap() += 1;
            return Err("identity provider unavailable".into());
        }
        *up.lock().unwrap() += 1;
        let (token, valid_for) = unsecured_jws_valid_for("alice", LIFETIME);
        Ok(OAuthToken {
            token,
            valid_for: Some(valid_for),
        })
    })));
    let mut producer = Producer::new(cfg).expect("producer");
    // Deadlines outlast the outage: every record must get through once it is over.
    let run = produce_all(
        &mut producer,
        topic,
        N,
        Duration::from_secs(40),
        Some(Duration::from_millis(5)),
    );
    assert_eq!(producer.authentication_error(), None);
    drop(producer);
    let (refused, issued) = (*refused.lock().unwrap(), *issued.lock().unwrap());
    eprintln!(
        "{topic}: {N} records in {:.1} s, {} retries; tokens issued {issued}, refused {refused}",
        run.elapsed.as_secs_f64(),
        run.retries
    );
    assert!(
        refused >= 1,
        "the token source was not asked during the outage"
    );
    assert!(issued >= 3, "tokens issued: {issued}");
    assert_eq!(
        run.count(OutcomeKind::Persisted),
        N,
        "every record persisted"
    );
    let log = read_back(&kafka.bootstrap(), topic, 2, N, Duration::from_secs(60));
    assert_eq!(verify(&log, &run.told, true).persisted, N);
    assert_log_is_what_was_sent(&log, &run.told);
}
