//! TLS over the TAP device: `transport-embassy` (feature `tls`, embedded-tls) into Apache
//! Kafka's SSL listeners, with certificates made in the test (`TestCa`).
//!
//! One Kafka node with SSL listeners besides its PLAINTEXT one (the fixture's and the
//! independent consumer's):
//! - `SSL` (ECDSA P-256, named [`HOST`]), `SSL_RSA` (RSA-2048, named [`HOST`]), `MTLS`
//!   (`ssl.client.auth=required`, the client's P-256 certificate given) and `SASL_SSL`
//!   (PLAIN inside TLS): 2,000 records each (500 over mTLS and SASL_SSL), every one
//!   persisted, read back exactly (once, in order, at the offset reported);
//! - the ECDSA listener with every producer call dropped after 300 µs unless done and made
//!   again (its cancel-safety, with the sessions in the runner): the first send is dropped
//!   during the bootstrap handshake, and 1,000 records are read back exactly, with no retry;
//! - failures for good, each stopping the first send with the failure long before its
//!   deadline: a CA that did not sign the broker's certificate
//!   (`UnknownIssuer`), an expired certificate (`Expired`: this transport's own date check,
//!   from the wall clock the firmware gives), mTLS without a client certificate
//!   (`ClientCertificateRefused`, told by the broker's alert after the handshake), a
//!   listener that speaks TLS 1.2 only (`SSL_TLS12`, `ProtocolMismatch`: this client speaks
//!   TLS 1.3 only);
//! - `SSL_OTHER_NAME`, whose certificate names only [`BOOTSTRAP_HOST`] while the broker
//!   advertises [`HOST`]: the bootstrap connection verifies, the records are accepted, and
//!   the broker connection fails with `NotValidForName`; every record is `NotPersisted` with
//!   that reason within seconds, well before its 20 s deadline;
//! - the chaos proxy (byte mode) in front of `SSL_CHAOS`, which advertises it: every
//!   connection cut at a random byte, inside handshakes and inside records; 10,000 records
//!   read back exactly, and no cut taken for a TLS failure;
//! - the PLAINTEXT listener behind a TLS configuration: Kafka closes on the ClientHello, an
//!   ordinary loss redialled at the backoff, never a TLS failure; the record is refused at
//!   its deadline.
//!
//! The producer reaches every name through `map_address` (no DNS): the names are what the
//! certificates are checked against and what the client sends as SNI.

use super::produce::{Run, drain, send_and_flush, verify, verify_exactly_once};
use super::*;
use producer_core::state::{FatalReason, NotPersistedReason};
use producer_core::tls::TlsFailure;
use std::net::SocketAddr;
use tests::kafka::{Issued, KeyKind, TestCa, Tls, Validity};
use tests::{ChaosProxy, ProxyMode};
use transport_embassy::tls::{self, ClientIdentity, SecurityProtocol, TlsConfig, TlsResources};

/// The name the brokers advertise and their certificates carry.
const HOST: &str = "broker.kafka.internal";
/// A bootstrap name only `SSL_OTHER_NAME`'s certificate carries.
const BOOTSTRAP_HOST: &str = "bootstrap.kafka.internal";
const SSL_PORT: u16 = 9093;
const RSA_PORT: u16 = 9094;
const OTHER_NAME_PORT: u16 = 9095;
const EXPIRED_PORT: u16 = 9096;
const MTLS_PORT: u16 = 9097;
/// The chaos proxy in front of `SSL_CHAOS`, which listens on [`CHAOS_UPSTREAM_PORT`].
const CHAOS_PORT: u16 = 9098;
const CHAOS_UPSTREAM_PORT: u16 = 9099;
const SASL_SSL_PORT: u16 = 9100;
/// `SSL_TLS12`: TLS 1.2 only, as a service with a TLS 1.2-only policy (MSK's default).
const TLS12_PORT: u16 = 9101;
/// The SASL_SSL listener's PLAIN user.
const SASL_USER: (&str, &str) = ("alice", "alice-secret");
/// Record buffers: the least a broker forces (a whole 16 KiB record), and 4 KiB to write.
const RECORD_RX: usize = tls::RECORD_RX_MIN;
const RECORD_TX: usize = 4096;

type Resources = TlsResources<BROKERS, RECORD_RX, RECORD_TX>;

/// Every name the test uses, to the listener of the same port.
fn map_tls(host: &str, port: u16) -> Option<IpEndpoint> {
    (host == HOST || host == BOOTSTRAP_HOST)
        .then(|| IpEndpoint::new(IpAddress::Ipv4(BROKER_IP), port))
}

/// The operating system's generator, through the rand_core 0.6 traits embedded-tls takes.
fn rng() -> rand_core::OsRng {
    rand_core::OsRng
}

/// What a TLS run reports back.
struct TlsRun {
    run: Run,
    tls_error: Option<TlsFailure>,
    /// The first send's error, when the run stops at it.
    refused: Option<TapError>,
    /// How long the first send took (to its outcome or its error).
    first_send: std::time::Duration,
    /// With [`Mode::Interrupted`]: producer calls abandoned, in all and during the first
    /// send (which waits for the bootstrap connection's handshake and the metadata).
    abandoned: (u32, u32),
}

/// Like `send_and_flush` (60 s deadlines), but every call into the producer races a 300 µs
/// timer and is dropped when the timer wins, then made again: the producer's futures are
/// dropped mid-turn over and over, handshakes included. Returns what the producer told, whether
/// everything was decided, and the calls abandoned (in all, during the first send).
async fn send_interrupted(
    producer: &mut TapProducer<'_>,
    topic: &'static str,
    n: usize,
    timestamp_base: i64,
) -> (Vec<Told>, bool, (u32, u32)) {
    let slice = embassy_time::Duration::from_micros(300);
    let mut told = vec![Told::default(); n];
    let mut pending = HashMap::new();
    let (mut abandoned, mut during_first) = (0, 0);
    for i in 0..n {
        let c = content(i);
        let headers = tests::records::header_refs(&c.headers);
        let record = ProducerRecord {
            topic,
            partition: None,
            key: Some(&c.key),
            value: Some(&c.value),
            headers: &headers,
            timestamp: Some(timestamp_base + i as i64),
        };
        let deadline = Instant::now() + embassy_time::Duration::from_secs(60);
        let receipt = loop {
            match select(producer.send(&record, deadline), Timer::after(slice)).await {
                Either::First(sent) => {
                    break sent.unwrap_or_else(|e| panic!("record {i} refused: {e}"));
                }
                Either::Second(()) => {
                    abandoned += 1;
                    if i == 0 {
                        during_first += 1;
                    }
                }
            }
        };
        pending.insert((receipt.batch, receipt.offset_delta), i);
        told[i].partition = Some(receipt.partition);
        drain(producer, &mut pending, &mut told);
    }
    let give_up = Instant::now() + embassy_time::Duration::from_secs(60);
    while !pending.is_empty() && Instant::now() < give_up {
        if let Either::Second(()) = select(producer.flush(give_up), Timer::after(slice)).await {
            abandoned += 1;
        }
        drain(producer, &mut pending, &mut told);
    }
    let flushed = producer.flush(Instant::now()).await;
    producer
        .close(Instant::now() + embassy_time::Duration::from_secs(2))
        .await;
    (told, flushed, (abandoned, during_first))
}

/// How a TLS run goes.
#[derive(Clone, Copy)]
enum Mode {
    /// `n` records through `send_and_flush`, each with a deadline this far from its send.
    Records(usize, std::time::Duration),
    /// `n` records as [`send_interrupted`] sends them: every producer call abandoned after
    /// 300 µs unless done, and made again.
    Interrupted(usize),
    /// One record with this deadline, whose refusal ends the run; then two seconds more of
    /// driving.
    Refused(std::time::Duration),
}

/// On a fresh stack over `device`: a producer over TLS trusting `ca` (PEM), with the client
/// certificate `client` if any, bootstrapping from `bootstrap`, sends to `topic` as `mode`
/// says, with the TLS runner beside it.
fn produce_over_tls(
    device: TunTapDevice,
    ca: String,
    client: Option<Issued>,
    sasl: bool,
    bootstrap: String,
    topic: &'static str,
    mode: Mode,
) -> TlsRun {
    run_embassy(Duration::from_secs(180), move || {
        on_stack(device, async move |stack: Stack<'_>| {
            let started = std::time::Instant::now();
            let bootstrap = [bootstrap.as_str()];
            let topics = [topic];
            let mut config = ProducerConfig::new("embassy-tls", &bootstrap, &topics);
            config.client.batch_bytes = BATCH_BYTES;
            config.map_address = Some(map_tls);
            let protocol = if sasl {
                config.client.sasl = Some(transport_embassy::Mechanism::Plain {
                    username: SASL_USER.0,
                    password: SASL_USER.1,
                });
                SecurityProtocol::SaslSsl
            } else {
                SecurityProtocol::Ssl
            };
            let mut buffers: [ConnectionBuffers<RX, TX>; BROKERS] =
                core::array::from_fn(|_| ConnectionBuffers::new());
            let mut resources = Box::new(Resources::new());
            let tls_config = TlsConfig {
                ca: ca.as_bytes(),
                client: client.as_ref().map(|c| ClientIdentity {
                    cert: c.chain_pem.as_bytes(),
                    key: c.key_pem.as_bytes(),
                }),
            };
            let (links, mut runner) = tls::new(&mut resources, tls_config, rng()).expect("tls");
            let producer: TapProducer<'_> = Producer::new(
                stack,
                config,
                vec![0u8; BATCHES * BATCH_BYTES],
                &mut buffers,
            )
            .expect("producer");
            let mut producer = producer.with_tls(protocol, links).expect("with_tls");
            let unix_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("clock")
                .as_millis() as i64;
            producer.set_wall_clock(unix_ms);
            let work = async {
                let mut refused = None;
                let mut first_send = std::time::Duration::ZERO;
                let mut abandoned = (0, 0);
                let (told, flushed) = if let Mode::Interrupted(n) = mode {
                    let (told, flushed, a) =
                        send_interrupted(&mut producer, topic, n, unix_ms).await;
                    abandoned = a;
                    (told, flushed)
                } else if let Mode::Refused(within) = mode {
                    let record = ProducerRecord {
                        topic,
                        partition: None,
                        key: None,
                        value: Some(b"refused"),
                        headers: &[],
                        timestamp: None,
                    };
                    let t = std::time::Instant::now();
                    let within = embassy_time::Duration::from_micros(within.as_micros() as u64);
                    refused = producer.send(&record, Instant::now() + within).await.err();
                    first_send = t.elapsed();
                    producer
                        .run_until(Instant::now() + embassy_time::Duration::from_secs(2))
                        .await;
                    (Vec::new(), true)
                } else {
                    let Mode::Records(n, within) = mode else {
                        unreachable!()
                    };
                    let within = embassy_time::Duration::from_micros(within.as_micros() as u64);
                    send_and_flush(&mut producer, topic, n, unix_ms, within).await
                };
                TlsRun {
                    tls_error: producer.client().tls_error(),
                    run: Run {
                        told,
                        flushed,
                        counters: producer.counters(),
                        elapsed: started.elapsed(),
                    },
                    refused,
                    first_send,
                    abandoned,
                }
            };
            match select(runner.run(), work).await {
                Either::First(never) => never,
                Either::Second(out) => out,
            }
        })
    })
}

/// `n` records of `topic` read back over PLAINTEXT by the independent consumer, inside the
/// namespace where the broker is.
fn read_back_in(ns: &NetNs, kafka: &Kafka, topic: &str, n: usize) -> Vec<Vec<ReadRecord>> {
    ns.run(|| {
        read_back(
            &kafka.bootstrap(),
            topic,
            PARTITIONS,
            n,
            Duration::from_secs(60),
        )
    })
}

/// The first send stops with `failure`, well before its 20 s deadline.
fn assert_refused(what: &str, out: &TlsRun, failure: TlsFailure) {
    let fatal = FatalReason::Tls(failure);
    assert_eq!(out.refused, Some(TapError::Stopped(fatal)), "{what}");
    assert_eq!(out.tls_error, Some(failure), "{what}");
    assert!(
        out.first_send < Duration::from_secs(10),
        "{what}: the refusal took {:?}: the deadline, not the failure, ended it",
        out.first_send
    );
    eprintln!("{what}: {}", TapError::Stopped(fatal));
}

#[test]
fn embassy_produces_over_tls_and_fails_clearly_kafka() {
    let ca = TestCa::new("embassy test CA");
    let other_ca = TestCa::new("another CA");
    let ecdsa = ca.server(KeyKind::EcdsaP256, &[HOST], Validity::Current);
    let rsa = ca.server(KeyKind::Rsa, &[HOST], Validity::Current);
    let other_name = ca.server(KeyKind::EcdsaP256, &[BOOTSTRAP_HOST], Validity::Current);
    let expired = ca.server(KeyKind::EcdsaP256, &[HOST], Validity::Expired);
    let mtls = ca.server(KeyKind::EcdsaP256, &[HOST], Validity::Current);
    let client = ca.client(KeyKind::EcdsaP256, "gateway");
    let chaos_cert = ca.server(KeyKind::EcdsaP256, &[HOST], Validity::Current);
    let sasl_cert = ca.server(KeyKind::EcdsaP256, &[HOST], Validity::Current);
    let tls12_cert = ca.server(KeyKind::EcdsaP256, &[HOST], Validity::Current);
    let at = |port: u16| format!("{HOST}:{port}");
    let ns = NetNs::new();
    // Inside the namespace, on the broker's address: the embassy stack reaches it.
    let chaos = ns.run(|| {
        ChaosProxy::start_on(
            SocketAddr::from((BROKER_IP, CHAOS_PORT)),
            SocketAddr::from((BROKER_IP, CHAOS_UPSTREAM_PORT)),
            ProxyMode::Pass,
            0xe7b,
        )
    });
    let kafka = Kafka::builder(1)
        .in_namespace(ns.name(), BROKER_IP)
        .client_ports(vec![PORT])
        .tls(
            Tls::new()
                .ssl_behind("SSL", ecdsa, SSL_PORT, &at(SSL_PORT))
                .ssl_behind("SSL_RSA", rsa, RSA_PORT, &at(RSA_PORT))
                .ssl_behind(
                    "SSL_OTHER_NAME",
                    other_name,
                    OTHER_NAME_PORT,
                    &at(OTHER_NAME_PORT),
                )
                .ssl_behind("SSL_EXPIRED", expired, EXPIRED_PORT, &at(EXPIRED_PORT))
                .mtls_behind("MTLS", mtls, ca.pem(), MTLS_PORT, &at(MTLS_PORT))
                .ssl_behind(
                    "SSL_CHAOS",
                    chaos_cert,
                    CHAOS_UPSTREAM_PORT,
                    &at(CHAOS_PORT),
                )
                .sasl_ssl_behind(
                    "SASL_SSL",
                    sasl_cert,
                    SASL_USER.0,
                    SASL_USER.1,
                    SASL_SSL_PORT,
                    &at(SASL_SSL_PORT),
                )
                .ssl_behind("SSL_TLS12", tls12_cert, TLS12_PORT, &at(TLS12_PORT))
                .tls12_only("SSL_TLS12"),
        )
        .start();

    // ECDSA P-256, RSA-2048, mTLS, SASL_SSL: every record persisted and read back exactly.
    for (what, topic, port, client, sasl, n) in [
        (
            "ECDSA P-256",
            "embassy-tls-ecdsa",
            SSL_PORT,
            None,
            false,
            2_000,
        ),
        ("RSA-2048", "embassy-tls-rsa", RSA_PORT, None, false, 2_000),
        (
            "mTLS",
            "embassy-tls-mtls",
            MTLS_PORT,
            Some(client.clone()),
            false,
            500,
        ),
        (
            "SASL_SSL (PLAIN)",
            "embassy-tls-sasl",
            SASL_SSL_PORT,
            None,
            true,
            500,
        ),
    ] {
        kafka.create_topic(topic, PARTITIONS);
        let device = ns.open_tap();
        let out = produce_over_tls(
            device,
            ca.pem().to_string(),
            client,
            sasl,
            at(port),
            topic,
            Mode::Records(n, Duration::from_secs(20)),
        );
        eprintln!(
            "{what}: produced {n} records over TLS in {:?}: {:?}",
            out.run.elapsed, out.run.counters
        );
        assert_eq!(out.tls_error, None, "{what}");
        let log = read_back_in(&ns, &kafka, topic, n);
        verify(&out.run, &log);
    }

    // Every producer call dropped after 300 µs unless done, and made again: the handshakes
    // go on in the runner, and nothing is lost or sent twice.
    const DROPPED_TOPIC: &str = "embassy-tls-dropped";
    const DROPPED_N: usize = 1_000;
    kafka.create_topic(DROPPED_TOPIC, PARTITIONS);
    let device = ns.open_tap();
    let out = produce_over_tls(
        device,
        ca.pem().to_string(),
        None,
        false,
        at(SSL_PORT),
        DROPPED_TOPIC,
        Mode::Interrupted(DROPPED_N),
    );
    eprintln!(
        "interrupted: {DROPPED_N} records over TLS in {:?}, {} producer calls dropped ({} \
         during the first send's handshake and metadata): {:?}",
        out.run.elapsed, out.abandoned.0, out.abandoned.1, out.run.counters
    );
    assert_eq!(out.tls_error, None, "interrupted");
    assert!(
        out.abandoned.1 >= 1,
        "the first send (the bootstrap handshake) was never interrupted: {:?}",
        out.abandoned
    );
    let log = read_back_in(&ns, &kafka, DROPPED_TOPIC, DROPPED_N);
    verify(&out.run, &log);

    // Every connection through the proxy cut at a random byte: inside handshakes (a loss,
    // redialled: never a TLS failure) and inside records. Read back exactly.
    const CHAOS_TOPIC: &str = "embassy-tls-chaos";
    const CHAOS_N: usize = 10_000;
    kafka.create_topic(CHAOS_TOPIC, PARTITIONS);
    chaos.set_mode(ProxyMode::Bytes {
        cut_probability: 1.0,
    });
    let device = ns.open_tap();
    let out = produce_over_tls(
        device,
        ca.pem().to_string(),
        None,
        false,
        at(CHAOS_PORT),
        CHAOS_TOPIC,
        Mode::Records(CHAOS_N, Duration::from_secs(120)),
    );
    chaos.set_mode(ProxyMode::Pass);
    let stats = chaos.stats();
    eprintln!(
        "chaos: {CHAOS_N} records over TLS in {:?} through {} connections, {} cuts ({} within \
         a hello, {} past 4 KiB): {:?}",
        out.run.elapsed,
        stats.connections,
        stats.cut_bytes,
        stats.cut_bytes_in_hello,
        stats.cut_bytes_in_records,
        out.run.counters
    );
    assert_eq!(out.tls_error, None, "chaos: a cut is never a TLS failure");
    let log = read_back_in(&ns, &kafka, CHAOS_TOPIC, CHAOS_N);
    verify_exactly_once(&out.run, &log);
    assert!(
        stats.cut_bytes_in_hello >= 1,
        "cuts inside a handshake: {stats:?}"
    );
    assert!(
        stats.cut_bytes_in_records >= 1,
        "cuts inside records: {stats:?}"
    );

    // Failures for good: the producer stops at the first handshake.
    let within = Duration::from_secs(20);
    for (what, trusted, port, failure) in [
        ("wrong CA", &other_ca, SSL_PORT, TlsFailure::UnknownIssuer),
        ("expired", &ca, EXPIRED_PORT, TlsFailure::Expired),
        (
            "mTLS without a client certificate",
            &ca,
            MTLS_PORT,
            TlsFailure::ClientCertificateRefused,
        ),
        // This client speaks TLS 1.3 only: no version in common, for good.
        (
            "a TLS 1.2-only broker",
            &ca,
            TLS12_PORT,
            TlsFailure::ProtocolMismatch,
        ),
    ] {
        let device = ns.open_tap();
        let out = produce_over_tls(
            device,
            trusted.pem().to_string(),
            None,
            false,
            at(port),
            "embassy-tls-refused",
            Mode::Refused(within),
        );
        assert_refused(what, &out, failure);
    }

    // A PLAINTEXT listener behind TLS: losses, redialled, and the record refused at its
    // deadline; never a TLS failure.
    let device = ns.open_tap();
    let out = produce_over_tls(
        device,
        ca.pem().to_string(),
        None,
        false,
        at(PORT),
        "embassy-tls-refused",
        Mode::Refused(Duration::from_secs(3)),
    );
    assert!(
        matches!(out.refused, Some(TapError::Deadline(_))),
        "PLAINTEXT behind TLS: {:?}",
        out.refused
    );
    assert_eq!(out.tls_error, None, "PLAINTEXT behind TLS");
    assert!(
        out.first_send >= Duration::from_secs(3),
        "refused before its deadline"
    );

    // The broker's advertised name is not in its certificate: records accepted over the
    // bootstrap connection are decided NotPersisted with the reason, long before their
    // deadline.
    const TOPIC: &str = "embassy-tls-other-name";
    kafka.create_topic(TOPIC, PARTITIONS);
    let device = ns.open_tap();
    let out = produce_over_tls(
        device,
        ca.pem().to_string(),
        None,
        false,
        format!("{BOOTSTRAP_HOST}:{OTHER_NAME_PORT}"),
        TOPIC,
        Mode::Records(20, Duration::from_secs(20)),
    );
    let fatal = FatalReason::Tls(TlsFailure::NotValidForName);
    assert_eq!(out.tls_error, Some(TlsFailure::NotValidForName));
    for (i, t) in out.run.told.iter().enumerate() {
        assert_eq!(
            t.outcome,
            Some(Outcome::NotPersisted(NotPersistedReason::ProducerFatal(
                fatal
            ))),
            "record {i}"
        );
    }
    assert!(
        out.run.elapsed < Duration::from_secs(15),
        "decided in {:?}: by the 20 s deadlines, not the failure",
        out.run.elapsed
    );
    drop(kafka);
}
