//! The firmware over TLS: SCRAM-SHA-512 inside TLS 1.3 (Kafka's SASL_SSL) into Kafka, and a
//! CA that did not sign the broker's certificate.
//!
//! The SASL_SSL listener's certificate (ECDSA P-256, from a CA made here) names [`HOST`],
//! which the listener advertises and the firmware dials (`host=`); the firmware reaches that
//! name at 10.0.2.2, the host's loopback, where Kafka listens. The CA goes to the firmware
//! as `ca=` (DER in hex): each run makes its own.

use super::*;
use tests::kafka::{KeyKind, TestCa, Tls, Validity};

/// The name the SASL_SSL listener advertises and its certificate carries.
const HOST: &str = "broker.kafka.internal";

/// `ca=`, `host=` and `security_protocol=SASL_SSL` for a firmware trusting `ca`.
fn tls_args(ca: &TestCa) -> Vec<String> {
    let hex: String = ca.der().iter().map(|b| format!("{b:02x}")).collect();
    vec![
        "security_protocol=SASL_SSL".to_string(),
        format!("host={HOST}"),
        format!("ca={hex}"),
    ]
}

/// One test, to start Kafka once: a wrong CA first (quick), then the readings.
#[test]
fn gateway_produces_over_tls_with_scram_kafka() {
    const RECORDS: u64 = 2_000;
    let elf = qemu::prepare();
    let ca = TestCa::new("gateway test CA");
    let other_ca = TestCa::new("another CA");
    let cert = ca.server(KeyKind::EcdsaP256, &[HOST], Validity::Current);
    let port = free_port();
    let sasl = Sasl::new().user(SaslMechanism::ScramSha512, SCRAM_USER, SCRAM_PASSWORD);
    let tls = Tls::new().scram_ssl_behind(
        "SASL_SSL",
        cert,
        SaslMechanism::ScramSha512,
        port,
        &format!("{HOST}:{port}"),
    );
    let broker = Broker::Kafka(Kafka::builder(1).sasl(sasl).tls(tls).start());
    let Broker::Kafka(kafka) = &broker else {
        unreachable!()
    };
    create_topic(&broker);
    let listener = kafka.tls_addr(1, "SASL_SSL");

    // Another CA, through a counting proxy (relaying bytes: `Pass` reads Kafka frames, which
    // TLS hides): the bootstrap handshake fails (UnknownIssuer), the producer stops, dials
    // no more, and the firmware exits 4.
    let relay = ProxyMode::Bytes {
        cut_probability: 0.0,
    };
    let proxy = ChaosProxy::start(listener, relay, rand::random());
    let (mut args, _) = gateway_args(proxy.port(), 100);
    args.extend(scram_args(SCRAM_PASSWORD));
    args.extend(tls_args(&other_ca));
    let run = qemu::run_gateway(&elf, &args, RUN_TIMEOUT);
    assert!(
        !run.timed_out,
        "a refused firmware went on until killed: {:#?}",
        run.log_lines
    );
    assert_eq!(
        run.code(),
        Some(4),
        "exit status {} (4: TLS failed): {:#?}",
        run.status,
        run.log_lines
    );
    assert!(
        run.log_lines
            .iter()
            .any(|l| l.contains("TLS failed (UnknownIssuer), exiting with status 4")),
        "no TLS failure in the log: {:#?}",
        run.log_lines
    );
    let s = summary(&run);
    assert_eq!(
        (s.get("persisted"), s.get("not_persisted")),
        (Some(&0), Some(&100)),
        "{s:?}"
    );
    assert_eq!(
        proxy.stats().connections,
        1,
        "the firmware dialled again after the broker's certificate failed"
    );
    for partition in 0..PARTITIONS {
        let stored = kafka.stored_batches(TOPIC, partition);
        assert!(
            stored.is_empty(),
            "partition {partition} holds batches after a failed handshake: {stored:?}"
        );
    }
    eprintln!(
        "tls: another CA refused, the firmware exited 4 after {:?}",
        run.elapsed
    );

    // The right CA: every reading lands exactly once, as over PLAINTEXT. The SASL_SSL
    // listener is the only one the firmware is told of, and it advertises only itself, so
    // every request went over TLS, authenticated.
    let (mut args, epoch_ms) = gateway_args(port, RECORDS);
    args.extend(scram_args(SCRAM_PASSWORD));
    args.extend(tls_args(&ca));
    // Under instruction counting, so the firmware's handshake counts are instructions.
    let run = qemu::run_gateway_counting(&elf, &args, RUN_TIMEOUT);
    let ended_ms = wall_clock_ms();
    for needle in [
        "security protocol SASL_SSL",
        "tls: TLS 1.3",
        "sasl: SCRAM-SHA-512 as user gateway",
    ] {
        assert!(
            run.log_lines.iter().any(|l| l.contains(needle)),
            "no {needle:?} in the firmware's log: {:#?}",
            run.log_lines
        );
    }
    assert!(
        !run.log_lines.iter().any(|l| l.contains(SCRAM_PASSWORD)),
        "the password is in the log"
    );
    verify(
        &broker,
        &broker.bootstrap(),
        &run,
        RECORDS,
        epoch_ms,
        ended_ms,
    );
    handshake_cost(&run);
    eprintln!("tls: {RECORDS} readings over SASL_SSL in {:?}", run.elapsed);
}

/// Checks and prints the firmware's handshake counts (`TLS handshake with HOST: N
/// instructions in the runner's polls, longest poll M, stack peak S bytes`, one per
/// connection) and its stack peaks. A handshake is at least its four P-256 operations (55,393,600 instructions by
/// `bench=tls`) and, with the key schedule, records and DER, well under 4 times that.
fn handshake_cost(run: &qemu::GatewayRun) {
    let prefix = format!("TLS handshake with {HOST}: ");
    let handshakes: Vec<(u64, u64, u64)> = run
        .log_lines
        .iter()
        .filter_map(|l| {
            let rest = &l[l.find(&prefix)? + prefix.len()..];
            let (n, rest) =
                rest.split_once(" instructions in the runner's polls, longest poll ")?;
            let (longest, rest) = rest.split_once(", stack peak ")?;
            let stack = rest.trim().strip_suffix(" bytes")?;
            Some((n.parse().ok()?, longest.parse().ok()?, stack.parse().ok()?))
        })
        .collect();
    assert!(
        !handshakes.is_empty(),
        "no handshake count in the log: {:#?}",
        run.log_lines
    );
    for &(n, longest, stack) in &handshakes {
        assert!(
            (55_393_600..250_000_000).contains(&n) && longest <= n,
            "implausible handshake count {n} (longest poll {longest})"
        );
        assert!(
            (4_096..1_048_576).contains(&stack),
            "implausible handshake stack peak {stack}"
        );
        eprintln!(
            "tls: handshake with {HOST}: {n} instructions, longest poll {longest}, stack peak \
             {stack} bytes"
        );
    }
    for what in ["setup", "the run"] {
        let peak = run
            .log_lines
            .iter()
            .find_map(|l| {
                let rest = &l[l.find("stack: peak ")? + "stack: peak ".len()..];
                rest.strip_suffix(&format!(" during {what}"))
            })
            .unwrap_or_else(|| panic!("no stack peak of {what} in the log: {:#?}", run.log_lines));
        eprintln!("tls: stack peak {peak} during {what}");
    }
}
