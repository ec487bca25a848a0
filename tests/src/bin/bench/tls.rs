//! Part `tls`: what TLS costs transport-std. One Apache Kafka node with a PLAINTEXT listener
//! and two SSL listeners (an RSA-2048 certificate and an ECDSA P-256 one, both made by a test
//! CA in this run), and the same producer over each in a child process, alternating.

use tests::kafka::{Kafka, KeyKind, TestCa, Tls, Validity};

use super::throughput::ChildRun;
use super::*;

/// The listeners measured: (label, TLS listener name, or `None` for PLAINTEXT).
const SIDES: [(&str, Option<&str>); 3] = [
    ("PLAINTEXT", None),
    ("SSL, RSA-2048", Some("SSL_RSA")),
    ("SSL, ECDSA P-256", Some("SSL_ECDSA")),
];

/// Measures the part and writes its section.
pub(crate) fn run() {
    let records = env_usize("BENCH_RECORDS", 1_000_000) as u64;
    let runs = env_usize("BENCH_RUNS", 3);
    let ca = TestCa::new("bench CA");
    let names = ["127.0.0.1", "localhost"];
    let tls = Tls::new()
        .ssl(
            "SSL_RSA",
            ca.server(KeyKind::Rsa, &names, Validity::Current),
        )
        .ssl(
            "SSL_ECDSA",
            ca.server(KeyKind::EcdsaP256, &names, Validity::Current),
        );
    let kafka = Kafka::builder(1).tls(tls).start();
    let ca_file = kafka.dir().join("bench-ca.pem");
    std::fs::write(&ca_file, ca.pem()).expect("write the CA file");
    let ca_file = ca_file.to_string_lossy().into_owned();

    // A warm-up run, not counted: the broker's JIT compiles the produce path first.
    let warm = "tls-warm-up";
    kafka.create_topic(warm, 3);
    let _ = throughput::run_child("ours", &kafka.bootstrap(), warm, records / 4, None);

    let mut results: [Vec<ChildRun>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    let mut errors = Vec::new();
    for run in 0..runs {
        for (i, (label, listener)) in SIDES.iter().enumerate() {
            let topic = format!("tls-{run}-{i}");
            kafka.create_topic(&topic, 3);
            eprintln!("bench tls: run {} {label}", run + 1);
            let (bootstrap, ca) = match listener {
                None => (kafka.bootstrap(), None),
                Some(name) => (kafka.tls_bootstrap(name), Some(ca_file.as_str())),
            };
            match throughput::run_child("ours", &bootstrap, &topic, records, ca) {
                Ok(r) => results[i].push(r),
                Err(e) => {
                    eprintln!("bench tls: {label}: {e}");
                    errors.push(format!("{label}: {e}"));
                }
            }
        }
    }

    let mut md = String::new();
    let _ = writeln!(
        md,
        "## TLS (transport-std)\n\n\
         {records} records of {VALUE_LEN}-byte values, idempotent, acks=all, one topic with 3 \
         partitions per run, linger 5 ms, against one Apache Kafka node with a PLAINTEXT \
         listener and two SSL listeners (rustls with ring; Kafka's default protocols, so TLS 1.3; certificates from a CA made \
         in the run). Each run is a child process (CPU time = its user + system); the \
         listeners alternate, {runs} runs each, after one uncounted warm-up run. Figures are \
         the median run; ratios are against PLAINTEXT.\n\n\
         | listener | records/s | MB/s | CPU s | CPU µs/record | peak RSS MiB | persisted | records/s ÷ PLAINTEXT | CPU ÷ PLAINTEXT | runs (records/s) |\n\
         |---|---|---|---|---|---|---|---|---|---|"
    );
    let mut plaintext: Option<(f64, f64)> = None;
    for (i, (label, _)) in SIDES.iter().enumerate() {
        let rs = &mut results[i];
        if rs.is_empty() {
            let _ = writeln!(md, "| {label} | failed | | | | | | | | |");
            continue;
        }
        let (m, all) = throughput::median_run(rs);
        let rate = records as f64 / m.seconds;
        if i == 0 {
            plaintext = Some((rate, m.cpu_seconds));
        }
        let (rate_ratio, cpu_ratio) = plaintext.map_or((String::new(), String::new()), |p| {
            (
                format!("{:.2}", rate / p.0),
                format!("{:.2}", m.cpu_seconds / p.1),
            )
        });
        let _ = writeln!(
            md,
            "| {label} | {rate:.0} | {:.1} | {:.2} | {:.2} | {:.1} | {} (+{} other) | {rate_ratio} | {cpu_ratio} | {} |",
            rate * VALUE_LEN as f64 / 1e6,
            m.cpu_seconds,
            m.cpu_seconds * 1e6 / records as f64,
            m.peak_rss_kib as f64 / 1024.0,
            m.persisted,
            m.failed,
            all.join(", ")
        );
    }
    for e in errors {
        let _ = writeln!(md, "\nA run failed: {e}");
    }
    write_section("tls", &md);
}
