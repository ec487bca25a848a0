//! The producer (transport-std, rustls) against Kafka's SSL and SASL_SSL listeners, one
//! node serving each case on a listener of its own (`KafkaBuilder::tls`), with certificates
//! made in the test by a CA of its own: an RSA-2048 and an ECDSA P-256 broker certificate.
//! Records are read back over the PLAINTEXT listener with the independent consumer of the
//! roundtrip tests, and checked exactly.
//!
//! One test starts Kafka once:
//! - roundtrips over SSL (RSA, ECDSA, and a listener that speaks TLS 1.2 only, as a service
//!   with MSK's default policy does), SASL_SSL (PLAIN) and mTLS (`ssl.client.auth=required`,
//!   a client certificate): every record persisted once, in order;
//! - the ChaosProxy in byte mode in front of an SSL listener it is advertised for: cuts
//!   inside the handshake (within its first 64 bytes) and inside records, everything read
//!   back exactly;
//! - failures, each a clear fatal error, after which nothing is dialled: a CA that did not
//!   sign the broker's certificate, an expired certificate, a certificate without the
//!   advertised host (records accepted over the bootstrap address decided `NotPersisted`
//!   with the reason, at once), mTLS without a client certificate and with one the broker
//!   does not trust;
//! - a PLAINTEXT listener behind a TLS configuration. What Kafka does: it reads the
//!   ClientHello's first bytes as an oversized frame size and closes the connection
//!   without a byte. That is a connection loss like a cut (not fatal): redialled at the
//!   backoff pace, the record refused at its deadline.
//!
//! Besides, without Kafka: a server that answers a ClientHello with bytes that are not TLS
//! (an HTTP error) stops the producer with `NotTls`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use producer_core::state::OutcomeKind;
use tests::kafka::{Issued, Kafka, KeyKind, TestCa, Tls, Validity};
use tests::records::{produce_all, verify};
use tests::{ChaosProxy, ProxyMode, free_port, produce_binary, read_back};
use transport_std::{
    Error, FatalReason, Mechanism, NotPersistedReason, Outcome, Pem, Producer, ProducerConfig,
    ProducerRecord, SecurityProtocol, TlsFailure, TlsRoots,
};

const NAMES: [&str; 2] = ["127.0.0.1", "localhost"];

/// A counting proxy that relays bytes untouched.
const RELAY: ProxyMode = ProxyMode::Bytes {
    cut_probability: 0.0,
};

fn pem(text: &str) -> Option<Pem> {
    Some(Pem::Text(text.as_bytes().to_vec()))
}

/// An SSL producer to `bootstrap` trusting `ca`.
fn config(bootstrap: &str, topic: &str, ca: &str) -> ProducerConfig<'static> {
    let mut c = ProducerConfig::new([bootstrap.to_string()], [topic.to_string()]);
    c.security_protocol = SecurityProtocol::Ssl;
    c.tls.roots = TlsRoots::Ca(Pem::Text(ca.as_bytes().to_vec()));
    c
}

fn with_client_cert(mut c: ProducerConfig<'static>, cert: &Issued) -> ProducerConfig<'static> {
    c.tls.client_cert = pem(&cert.chain_pem);
    c.tls.client_key = pem(&cert.key_pem);
    c
}

/// `n` records to a new topic over `config`, read back over PLAINTEXT and checked exactly.
fn round_trip(kafka: &Kafka, what: &str, topic: &str, config: ProducerConfig<'static>, n: usize) {
    let started = Instant::now();
    kafka.create_topic(topic, 2);
    let mut producer = Producer::new(config).expect("producer");
    let run = produce_all(&mut producer, topic, n, Duration::from_secs(60), None);
    assert_eq!(producer.tls_error(), None, "{what}");
    drop(producer);
    let persisted = run
        .told
        .iter()
        .filter(|t| t.outcome == Some(OutcomeKind::Persisted))
        .count();
    assert_eq!(persisted, n, "{what}: every record persisted");
    let log = read_back(&kafka.bootstrap(), topic, 2, n, Duration::from_secs(60));
    let v = verify(&log, &run.told, true);
    assert_eq!(v.persisted, n, "{what}: read back exactly");
    eprintln!(
        "{what}: {n} records produced and read back in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The first send fails at once with `failure` (the bootstrap connection's handshake), and
/// the producer, driven on, dials no more: the counting proxy in front saw one connection.
fn refused(
    what: &str,
    upstream: SocketAddr,
    config: impl Fn(&str) -> ProducerConfig<'static>,
    failure: TlsFailure,
) {
    // Byte mode without cuts: a frame-reading proxy would wait for a ClientHello "frame".
    let proxy = ChaosProxy::start(upstream, RELAY, 1);
    let mut producer = Producer::new(config(&proxy.address())).expect("producer");
    let record = ProducerRecord::value("tls-refused", b"refused");
    let sent = producer.send(&record, Instant::now() + Duration::from_secs(20));
    let fatal = FatalReason::Tls(failure);
    match sent {
        Err(Error::Stopped(reason)) => assert_eq!(reason, fatal, "{what}"),
        other => panic!("{what}: {other:?}"),
    }
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        producer.poll(Duration::from_millis(50));
    }
    assert_eq!(producer.tls_error(), Some(failure), "{what}");
    assert!(producer.poll_delivery().is_none(), "{what}: never accepted");
    assert_eq!(proxy.stats().connections, 1, "{what}: dialled once");
    eprintln!("{what}: {}", Error::Stopped(fatal));
}

#[test]
fn tls_listeners_round_trip_survive_cuts_and_fail_clearly() {
    let started = Instant::now();
    let ca = TestCa::new("gateway test CA");
    let other_ca = TestCa::new("another CA");
    let client_ca = TestCa::new("client CA");
    let rsa = ca.server(KeyKind::Rsa, &NAMES, Validity::Current);
    let ecdsa = ca.server(KeyKind::EcdsaP256, &NAMES, Validity::Current);
    let expired = ca.server(KeyKind::EcdsaP256, &NAMES, Validity::Expired);
    let localhost_only = ca.server(KeyKind::EcdsaP256, &["localhost"], Validity::Current);
    let chaos_port = free_port();
    let chaos = ChaosProxy::start(
        SocketAddr::from(([127, 0, 0, 1], chaos_port)),
        ProxyMode::Pass,
        0x715,
    );
    let tls = Tls::new()
        .ssl("SSL_RSA", rsa.clone())
        .ssl("SSL_ECDSA", ecdsa.clone())
        .ssl("SSL_TLS12", ecdsa.clone())
        .tls12_only("SSL_TLS12")
        .sasl_ssl("SASL_SSL", ecdsa.clone(), "alice", "alice-secret")
        .mtls("SSL_MTLS", rsa.clone(), client_ca.pem())
        .ssl("SSL_EXPIRED", expired)
        .ssl("SSL_LOCALHOST", localhost_only)
        .ssl_behind("SSL_CHAOS", rsa, chaos_port, &chaos.address());
    let kafka = Kafka::builder(1).tls(tls).start();
    eprintln!("kafka up in {:.1} s", started.elapsed().as_secs_f64());
    let ca_pem = ca.pem().to_string();

    // Roundtrips.
    let boot = |name: &str| kafka.tls_bootstrap(name);
    round_trip(
        &kafka,
        "SSL, RSA",
        "tls-rsa",
        config(&boot("SSL_RSA"), "tls-rsa", &ca_pem),
        1000,
    );
    round_trip(
        &kafka,
        "SSL, ECDSA",
        "tls-ecdsa",
        config(&boot("SSL_ECDSA"), "tls-ecdsa", &ca_pem),
        1000,
    );
    // A TLS 1.2-only listener, as a service with a TLS 1.2-only policy (Amazon MSK's
    // default): rustls speaks 1.2 too.
    round_trip(
        &kafka,
        "SSL, TLS 1.2 only",
        "tls-12",
        config(&boot("SSL_TLS12"), "tls-12", &ca_pem),
        1000,
    );
    let mut sasl = config(&boot("SASL_SSL"), "tls-sasl", &ca_pem);
    sasl.security_protocol = SecurityProtocol::SaslSsl;
    sasl.client.sasl = Some(Mechanism::Plain {
        username: "alice",
        password: "alice-secret",
    });
    round_trip(&kafka, "SASL_SSL, PLAIN", "tls-sasl", sasl, 1000);
    let client_cert = client_ca.client(KeyKind::EcdsaP256, "gateway-7");
    let mtls = with_client_cert(config(&boot("SSL_MTLS"), "tls-mtls", &ca_pem), &client_cert);
    round_trip(&kafka, "mTLS", "tls-mtls", mtls, 500);

    // Cuts at random byte offsets, inside handshakes and records.
    let topic = "tls-chaos";
    kafka.create_topic(topic, 2);
    chaos.set_mode(ProxyMode::Bytes {
        cut_probability: 1.0,
    });
    let phase = Instant::now();
    let mut producer = Producer::new(config(&chaos.address(), topic, &ca_pem)).unwrap();
    let n = 3000;
    let run = produce_all(
        &mut producer,
        topic,
        n,
        Duration::from_secs(120),
        Some(Duration::from_millis(2)),
    );
    drop(producer);
    chaos.set_mode(ProxyMode::Pass);
    let stats = chaos.stats();
    let log = read_back(&kafka.bootstrap(), topic, 2, n, Duration::from_secs(60));
    let v = verify(&log, &run.told, true);
    assert_eq!(v.persisted, n, "chaos: read back exactly ({stats:?})");
    assert!(
        stats.cut_bytes_in_hello >= 1,
        "cuts inside a handshake: {stats:?}"
    );
    assert!(
        stats.cut_bytes_in_records >= 1,
        "cuts inside records: {stats:?}"
    );
    eprintln!(
        "chaos over TLS: {n} records read back exactly in {:.1} s through {} connections, {} cuts \
         ({} within a hello, {} past 4 KiB), {} retries",
        phase.elapsed().as_secs_f64(),
        stats.connections,
        stats.cut_bytes,
        stats.cut_bytes_in_hello,
        stats.cut_bytes_in_records,
        run.retries
    );

    // Clear failures, fatal.
    let other = other_ca.pem().to_string();
    let wrong_ca = |b: &str| config(b, "tls-refused", &other);
    refused(
        "a wrong CA",
        kafka.tls_addr(1, "SSL_RSA"),
        wrong_ca,
        TlsFailure::UnknownIssuer,
    );
    let trusting = |b: &str| config(b, "tls-refused", &ca_pem);
    refused(
        "an expired certificate",
        kafka.tls_addr(1, "SSL_EXPIRED"),
        trusting,
        TlsFailure::Expired,
    );
    refused(
        "mTLS without a client certificate",
        kafka.tls_addr(1, "SSL_MTLS"),
        trusting,
        TlsFailure::ClientCertificateRefused,
    );
    let stranger = other_ca.client(KeyKind::EcdsaP256, "stranger");
    let untrusted = |b: &str| with_client_cert(config(b, "tls-refused", &ca_pem), &stranger);
    refused(
        "mTLS with an untrusted client certificate",
        kafka.tls_addr(1, "SSL_MTLS"),
        untrusted,
        TlsFailure::ClientCertificateRefused,
    );
    wrong_host(&kafka, &ca_pem);
    tool(&kafka, &ca, &client_cert);
    plaintext_listener(&kafka, &ca_pem);
    eprintln!("all in {:.1} s", started.elapsed().as_secs_f64());
}

/// Bootstrapped through `localhost`, which the certificate names; the broker advertises
/// 127.0.0.1, which it does not: the records accepted are decided `NotPersisted` with
/// `NotValidForName` as soon as the leader's handshake fails, long before their deadlines.
fn wrong_host(kafka: &Kafka, ca: &str) {
    let topic = "tls-wrong-host";
    kafka.create_topic(topic, 1);
    let port = kafka.tls_addr(1, "SSL_LOCALHOST").port();
    let mut producer = Producer::new(config(&format!("localhost:{port}"), topic, ca)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let record = ProducerRecord::value(topic, b"to the advertised host");
    let mut accepted = 0;
    let fatal = FatalReason::Tls(TlsFailure::NotValidForName);
    for _ in 0..5 {
        match producer.send(&record, deadline) {
            Ok(_) => accepted += 1,
            Err(Error::Stopped(reason)) => assert_eq!(reason, fatal),
            Err(e) => panic!("wrong host: {e:?}"),
        }
    }
    assert!(producer.flush(deadline), "decided before the deadline");
    assert!(Instant::now() < deadline);
    let mut decided = 0;
    while let Some(d) = producer.poll_delivery() {
        assert_eq!(
            d.outcome,
            Outcome::NotPersisted(NotPersistedReason::ProducerFatal(fatal))
        );
        decided += 1;
    }
    assert_eq!(decided, accepted);
    assert_eq!(producer.tls_error(), Some(TlsFailure::NotValidForName));
    let message = Error::Stopped(fatal).to_string();
    assert!(message.contains("advertised host"), "{message}");
    eprintln!("a certificate without the advertised host: {accepted} records decided: {message}");
}

/// The `produce` tool over mTLS (`--security-protocol SSL --ca-file --cert --key`): 100
/// lines, read back; and a CA file it cannot read, refused before anything is sent.
fn tool(kafka: &Kafka, ca: &TestCa, client: &Issued) {
    let topic = "tls-tool";
    kafka.create_topic(topic, 1);
    let dir = kafka.dir().join("tool-tls");
    std::fs::create_dir_all(&dir).unwrap();
    let (ca_file, cert, key) = (
        dir.join("ca.pem"),
        dir.join("client.pem"),
        dir.join("client.key"),
    );
    std::fs::write(&ca_file, ca.pem()).unwrap();
    std::fs::write(&cert, &client.chain_pem).unwrap();
    std::fs::write(&key, &client.key_pem).unwrap();
    let run = |ca_file: &str| {
        let bootstrap = kafka.tls_bootstrap("SSL_MTLS");
        let args = [
            "--bootstrap",
            &bootstrap,
            "--topic",
            topic,
            "--security-protocol",
            "SSL",
        ];
        let files = [
            "--ca-file",
            ca_file,
            "--cert",
            cert.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ];
        let mut child = Command::new(produce_binary())
            .args(args)
            .args(files)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn produce");
        let input: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let mut stdin = child.stdin.take().unwrap();
        let _ = stdin.write_all(input.as_bytes());
        drop(stdin);
        child.wait_with_output().unwrap()
    };
    let out = run(ca_file.to_str().unwrap());
    assert!(
        out.status.success(),
        "produce: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = read_back(&kafka.bootstrap(), topic, 1, 100, Duration::from_secs(60));
    let values: Vec<String> = log[0]
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect();
    let lines: Vec<String> = (0..100).map(|i| format!("line {i}")).collect();
    assert_eq!(values, lines, "the tool's records read back in order");
    let out = run("/nonexistent/ca.pem");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot read the CA file /nonexistent/ca.pem"),
        "{stderr}"
    );
    eprintln!(
        "the produce tool over mTLS: 100 lines read back; a missing CA file: {}",
        stderr.trim()
    );
}

/// A TLS configuration against the PLAINTEXT listener: Kafka closes each connection without
/// a byte. Not fatal: redialled at the backoff pace, the record refused at its deadline.
fn plaintext_listener(kafka: &Kafka, ca: &str) {
    let proxy = ChaosProxy::start(kafka.client_addr(1), RELAY, 2);
    let mut producer = Producer::new(config(&proxy.address(), "tls-plaintext", ca)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(3);
    let record = ProducerRecord::value("tls-plaintext", b"x");
    match producer.send(&record, deadline) {
        Err(Error::Deadline(_)) => {}
        other => panic!("plaintext listener: {other:?}"),
    }
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        producer.poll(Duration::from_millis(50));
    }
    assert_eq!(producer.tls_error(), None, "a loss, not a TLS failure");
    assert!(producer.poll_delivery().is_none());
    // 6 s at a 100 ms reconnect backoff doubling (jitter cuts at most a quarter): at most
    // 7 waits fit; unpaced it would be hundreds.
    let dials = proxy.stats().connections;
    assert!((2..=8).contains(&dials), "{dials} connections");
    eprintln!("a PLAINTEXT listener behind TLS: {dials} connections in 6 s, none fatal");
}

/// A server that answers the ClientHello with an HTTP error: not TLS, fatal.
#[test]
fn a_server_answering_without_tls_stops_the_producer() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut hello = [0u8; 512];
        let _ = s.read(&mut hello);
        let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        thread::sleep(Duration::from_millis(500));
    });
    let ca = TestCa::new("unused CA");
    let mut producer = Producer::new(config(&addr.to_string(), "t", ca.pem())).unwrap();
    let sent = producer.send(
        &ProducerRecord::value("t", b"x"),
        Instant::now() + Duration::from_secs(20),
    );
    let fatal = FatalReason::Tls(TlsFailure::NotTls);
    match sent {
        Err(Error::Stopped(reason)) => assert_eq!(reason, fatal),
        other => panic!("{other:?}"),
    }
    assert!(Error::Stopped(fatal).to_string().contains("PLAINTEXT"));
    let _ = server.join();
}
