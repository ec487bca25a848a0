//! The client against brokers that fail the same way forever: one that refuses connections,
//! one that closes each at once, one whose metadata says the topic is missing, one whose
//! metadata numbers partitions wrongly or is huge, a leader that refuses while the bootstrap
//! address answers. Driven in simulated time (1 ms steps), every request answered at once.
//!
//! The bounds are derived from the configuration: the `n`-th consecutive wait is at least
//! three quarters (the largest jitter cut) of `base × 2^(n-1)` capped at `max`; a count of
//! attempts over a run can be no more than the number of such waits that fit in it, plus one.

#[path = "answers/mod.rs"]
mod answers;

use core::time::Duration;
use producer_core::capacity::Fixed;

use producer_core::backoff::Backoff;
use producer_core::client::{
    Client, ClientConfig, ClientConfigError, ConnId, ProducerRecord, SendError, Target,
};
use producer_core::state::{FatalReason, Identity, NotPersistedReason, Outcome};
use producer_core::time::Instant;
use producer_core::tls::TlsFailure;
use producer_core::wire::{
    self, ApiVersion, ApiVersionsResponse, InitProducerIdResponse, List, ProducePartitionResponse,
    ProduceResponse, ProduceTopicResponse, Request,
};

const BROKERS: usize = 2;
type C = Client<Vec<u8>, Fixed<1, 16, 8, BROKERS>>;

const TOPIC: &str = "t";

/// What the fake cluster does with a connection to a target, and its metadata.
#[derive(Clone, Copy)]
enum Dial {
    Refuse,
    CloseAtOnce,
    Serve,
    /// The transport's TLS handshake fails for good (a certificate not trusted).
    TlsFails,
}

struct Cluster {
    dial: fn(Target) -> Dial,
    /// (partition id, leader) pairs; `None`: the topic is reported missing (error 3).
    partitions: Option<Vec<(i32, i32)>>,
    brokers: Vec<i32>,
}

#[derive(Default, Debug)]
struct Counts {
    dials: Vec<(Target, Instant)>,
    metadata: u32,
    produce: u32,
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn client() -> C {
    let mut config = ClientConfig::new("backoff-test");
    config.producer.jitter_seed = 3;
    C::new(config, &["boot:9092"], &[TOPIC], vec![0; 8 * 16 * 1024]).unwrap()
}

fn respond(cluster: &Cluster, counts: &mut Counts, frame: &[u8]) -> Vec<u8> {
    let (header, request) = wire::decode_request(frame).unwrap();
    let (version, corr) = (header.api_version, header.correlation_id);
    let mut out = vec![0u8; 16 << 20];
    let n = match request {
        Request::ApiVersions(_) => {
            let keys =
                [(0, 3, 11), (3, 1, 12), (18, 0, 3), (22, 0, 5)].map(|(k, lo, hi)| ApiVersion {
                    api_key: k,
                    min_version: lo,
                    max_version: hi,
                });
            let body = ApiVersionsResponse {
                api_keys: List::from_slice(&keys),
                ..Default::default()
            };
            wire::encode_response(&mut out, version, corr, &body)
        }
        Request::Metadata(_) => {
            counts.metadata += 1;
            answers::metadata(
                &mut out,
                version,
                corr,
                TOPIC,
                &cluster.brokers,
                cluster.partitions.as_deref(),
            )
        }
        Request::InitProducerId(_) => {
            let body = InitProducerIdResponse {
                throttle_time_ms: 0,
                error_code: 0,
                producer_id: 1,
                producer_epoch: 0,
            };
            wire::encode_response(&mut out, version, corr, &body)
        }
        Request::Produce(p) => {
            counts.produce += 1;
            let answers: Vec<ProducePartitionResponse<'_>> = p
                .topics
                .iter()
                .flat_map(|t| t.partitions.iter())
                .map(|part| ProducePartitionResponse {
                    index: part.index,
                    error_code: 0,
                    base_offset: 0,
                    ..Default::default()
                })
                .collect();
            let topics = [ProduceTopicResponse {
                name: TOPIC,
                partitions: List::from_slice(&answers),
            }];
            let body = ProduceResponse {
                topics: List::from_slice(&topics),
                ..Default::default()
            };
            wire::encode_response(&mut out, version, corr, &body)
        }
        Request::SaslHandshake(_) | Request::SaslAuthenticate(_) => {
            panic!("SASL request on a PLAINTEXT listener")
        }
    }
    .unwrap();
    out.truncate(n);
    out
}

/// Runs `c` against `cluster` for `run`, calling `each` every step.
fn drive(
    c: &mut C,
    cluster: &Cluster,
    run: Duration,
    mut each: impl FnMut(&mut C, Instant),
) -> Counts {
    let mut counts = Counts::default();
    let mut up = [false; BROKERS];
    let mut buf = vec![0u8; 1 << 20];
    let mut now = Instant::ZERO;
    while now.as_micros() < run.as_micros() as u64 {
        c.poll(now);
        while let Some(conn) = c.poll_close() {
            up[usize::from(conn.0)] = false;
        }
        while let Some((conn, _)) = c.poll_connect(now) {
            let target = c.connection(conn).and_then(|(t, _)| t).unwrap();
            counts.dials.push((target, now));
            match (cluster.dial)(target) {
                Dial::Refuse => c.on_connection_lost(conn, now),
                Dial::CloseAtOnce => {
                    c.on_connected(conn, now);
                    c.on_connection_lost(conn, now);
                }
                Dial::Serve => {
                    c.on_connected(conn, now);
                    up[usize::from(conn.0)] = true;
                }
                Dial::TlsFails => c.on_tls_failure(conn, now, TlsFailure::UnknownIssuer),
            }
        }
        for (i, _) in up.iter().enumerate().filter(|(_, up)| **up) {
            let conn = ConnId(i as u8);
            while let Some(n) = c.poll_transmit(conn, now, &mut buf) {
                let answer = respond(cluster, &mut counts, &buf[4..n]);
                c.on_frame(conn, now, &answer[4..]);
            }
        }
        each(c, now);
        now = now + ms(1);
    }
    counts
}

/// The most attempts a rule allows in `run` (see the module comment).
fn most_attempts(rule: Backoff, run: Duration) -> usize {
    let (mut spent, mut n) = (Duration::ZERO, 1u32);
    loop {
        let wait = rule.ceiling(n) * 3 / 4;
        if spent + wait > run {
            return n as usize;
        }
        spent += wait;
        n += 1;
    }
}

fn reconnect_rule() -> Backoff {
    let c = ClientConfig::new("x");
    Backoff::new(c.reconnect_backoff, c.reconnect_backoff_max)
}

fn metadata_rule() -> Backoff {
    ClientConfig::new("x").producer.retry_rule()
}

#[test]
fn a_refusing_or_closing_bootstrap_is_dialled_at_the_backoff_pace() {
    for dial in [Dial::Refuse, Dial::CloseAtOnce] {
        let cluster = Cluster {
            dial: match dial {
                Dial::Refuse => |_| Dial::Refuse,
                _ => |_| Dial::CloseAtOnce,
            },
            partitions: Some(vec![(0, 1)]),
            brokers: vec![1],
        };
        let mut c = client();
        let run = Duration::from_secs(3);
        let counts = drive(&mut c, &cluster, run, |_, _| {});
        // Unpaced this was one dial per step: 3,000.
        let bound = most_attempts(reconnect_rule(), run);
        assert!(
            counts.dials.len() <= bound,
            "{} dials, bound {bound}",
            counts.dials.len()
        );
        assert!(counts.dials.len() >= 4, "still dialled: {:?}", counts.dials);
        assert_eq!(
            c.dial_failures(Target::Bootstrap(0)) as usize,
            counts.dials.len()
        );
    }
}

#[test]
fn a_topic_reported_missing_costs_one_connection_and_paced_metadata() {
    let cluster = Cluster {
        dial: |_| Dial::Serve,
        partitions: None,
        brokers: vec![1],
    };
    let mut c = client();
    let run = Duration::from_secs(10);
    let mut refusals = Vec::new();
    let counts = drive(&mut c, &cluster, run, |c, now| {
        let record = ProducerRecord {
            topic: TOPIC,
            partition: None,
            key: None,
            value: Some(b"v"),
            headers: &[],
            timestamp: Some(0),
        };
        if let Err(e) = c.send(&record, now + ms(100), now) {
            refusals.push(e);
        }
    });
    assert!(refusals.iter().all(|e| *e == SendError::NoMetadata));
    assert_eq!(
        counts.dials.len(),
        1,
        "the bootstrap connection is kept: {:?}",
        counts.dials
    );
    let bound = most_attempts(metadata_rule(), run);
    assert!(
        counts.metadata as usize <= bound,
        "{} metadata requests, bound {bound}",
        counts.metadata
    );
    assert!(counts.metadata >= 5, "still asked: {}", counts.metadata);
}

#[test]
fn a_refusing_leader_is_dialled_at_the_backoff_pace_while_the_bootstrap_connection_stays() {
    let cluster = Cluster {
        dial: |t| match t {
            Target::Bootstrap(_) => Dial::Serve,
            Target::Node(_) => Dial::Refuse,
        },
        partitions: Some(vec![(0, 1)]),
        brokers: vec![1],
    };
    let mut c = client();
    let run = Duration::from_secs(5);
    let counts = drive(&mut c, &cluster, run, |c, now| {
        let record = ProducerRecord {
            topic: TOPIC,
            partition: None,
            key: None,
            value: Some(b"v"),
            headers: &[],
            timestamp: Some(0),
        };
        let _ = c.send(&record, now + ms(500), now);
    });
    let boot = counts
        .dials
        .iter()
        .filter(|(t, _)| matches!(t, Target::Bootstrap(_)));
    assert_eq!(boot.count(), 1);
    let leader = counts
        .dials
        .iter()
        .filter(|(t, _)| *t == Target::Node(1))
        .count();
    let bound = most_attempts(reconnect_rule(), run);
    assert!(
        leader <= bound && leader >= 4,
        "{leader} dials of the leader, bound {bound}"
    );
    // Each dial fails, and each failure asks for metadata: paced by the metadata backoff.
    assert!(
        counts.metadata as usize <= leader + 1,
        "{} metadata requests",
        counts.metadata
    );
}

#[test]
fn a_real_answer_resets_the_reconnect_backoff() {
    let cluster = Cluster {
        dial: |_| Dial::Serve,
        partitions: Some(vec![(0, 1)]),
        brokers: vec![1],
    };
    let mut c = client();
    // Two failed dials of the bootstrap address, then one that answers metadata.
    let now = Instant::ZERO;
    c.poll(now);
    let (conn, _) = c.poll_connect(now).unwrap();
    c.on_connection_lost(conn, now);
    assert_eq!(c.dial_failures(Target::Bootstrap(0)), 1);
    let counts = drive(&mut c, &cluster, ms(500), |_, _| {});
    assert!(counts.metadata >= 1);
    assert_eq!(c.dial_failures(Target::Bootstrap(0)), 0);
}

fn misnumbered(partitions: Vec<(i32, i32)>) {
    let cluster = Cluster {
        dial: |_| Dial::Serve,
        partitions: Some(partitions.clone()),
        brokers: vec![1],
    };
    let mut c = client();
    let run = Duration::from_secs(5);
    let mut refusals = Vec::new();
    let counts = drive(&mut c, &cluster, run, |c, now| {
        let record = ProducerRecord {
            topic: TOPIC,
            partition: None,
            key: Some(b"k"),
            value: Some(b"v"),
            headers: &[],
            timestamp: Some(0),
        };
        if let Err(e) = c.send(&record, now + ms(100), now) {
            refusals.push(e);
        }
    });
    assert!(
        refusals.iter().all(|e| *e == SendError::NoMetadata),
        "{partitions:?}: {:?}",
        refusals.first()
    );
    assert_eq!(
        c.metadata().topics[0].partitions,
        0,
        "{partitions:?}: left unknown"
    );
    assert!(c.metadata().partitions.is_empty());
    let bound = most_attempts(metadata_rule(), run);
    assert!(
        counts.metadata as usize <= bound && counts.metadata >= 4,
        "{}",
        counts.metadata
    );
    assert_eq!(counts.dials.len(), 1);
}

#[test]
fn partitions_not_numbered_from_zero_leave_the_topic_unknown_and_asked_again_later() {
    misnumbered(vec![(-1, 1), (-2, 1)]);
    misnumbered(vec![(0, 1), (0, 1)]);
    misnumbered(vec![(0, 1), (2, 1)]);
    misnumbered(vec![(1, 1)]);
    misnumbered(vec![]);
    misnumbered(vec![(0, 1), (1, 1), (i32::MAX, 1)]);
}

#[test]
fn a_huge_answer_is_applied_in_bounded_work_and_a_topic_larger_than_the_table_is_kept() {
    let partitions: Vec<(i32, i32)> = (0..100_000).map(|p| (p, p % 10_000)).collect();
    let cluster = Cluster {
        dial: |_| Dial::Serve,
        partitions: Some(partitions),
        brokers: (0..10_000).collect(),
    };
    let mut c = client();
    let mut accepted = 0;
    let counts = drive(&mut c, &cluster, Duration::from_secs(3), |c, now| {
        let record = ProducerRecord {
            topic: TOPIC,
            partition: None,
            key: None,
            value: Some(b"v"),
            headers: &[],
            timestamp: Some(0),
        };
        accepted += u32::from(c.send(&record, now + ms(1000), now).is_ok());
    });
    let topic = &c.metadata().topics[0];
    assert_eq!((topic.partitions, topic.full), (100_000, true));
    assert_eq!(
        c.metadata().partitions.len(),
        16,
        "the lowest ids the table holds"
    );
    assert!(
        c.metadata()
            .partitions
            .iter()
            .enumerate()
            .all(|(i, p)| p.partition == i as i32)
    );
    assert_eq!(c.metadata().brokers.len(), BROKERS);
    assert!(
        accepted > 0,
        "records without a key go to the partitions kept"
    );
    // Not asked again for being larger than the table: only leaders outside the broker
    // table bring metadata, once a connection turn.
    let turns = 3_000 / ClientConfig::new("x").connection_turn.as_millis() as u32;
    assert!(
        counts.metadata <= turns + 2,
        "{} metadata requests",
        counts.metadata
    );
}

#[test]
fn reconnect_backoff_is_checked_at_construction() {
    let build = |base, max| {
        let mut config = ClientConfig::new("x");
        config.reconnect_backoff = base;
        config.reconnect_backoff_max = max;
        C::new(config, &["b:1"], &[TOPIC], vec![0; 8 * 16 * 1024]).err()
    };
    assert_eq!(
        build(Duration::ZERO, ms(10)),
        Some(ClientConfigError::ZeroReconnectBackoff)
    );
    assert_eq!(
        build(ms(100), ms(10)),
        Some(ClientConfigError::ReconnectBackoffMaxBelowBackoff)
    );
    for e in [
        ClientConfigError::ZeroReconnectBackoff,
        ClientConfigError::ReconnectBackoffMaxBelowBackoff,
    ] {
        let text = e.to_string();
        assert!(text.contains("set") || text.contains("raise"), "{text}");
    }
    assert_eq!(build(ms(100), ms(100)), None);
}

#[test]
fn a_tls_failure_stops_the_producer_and_the_dialling() {
    // The bootstrap address serves; the leader's certificate is not trusted.
    let cluster = Cluster {
        dial: |t| match t {
            Target::Bootstrap(_) => Dial::Serve,
            _ => Dial::TlsFails,
        },
        partitions: Some(vec![(0, 1)]),
        brokers: vec![1],
    };
    let mut c = client();
    let record = ProducerRecord {
        topic: TOPIC,
        partition: None,
        key: None,
        value: Some(b"v"),
        headers: &[],
        timestamp: Some(0),
    };
    let (mut accepted, mut refused, mut outcomes) = (0, Vec::new(), Vec::new());
    let counts = drive(&mut c, &cluster, Duration::from_secs(5), |c, now| {
        match c.send(&record, now + Duration::from_secs(60), now) {
            Ok(_) => accepted += 1,
            Err(SendError::NoMetadata) => {}
            Err(e) => refused.push(e),
        }
        while let Some(d) = c.poll_delivery() {
            outcomes.push(d.outcome);
        }
    });
    let fatal = FatalReason::Tls(TlsFailure::UnknownIssuer);
    assert_eq!(c.tls_error(), Some(TlsFailure::UnknownIssuer));
    assert_eq!(c.sequencer().identity(), Identity::Fatal(fatal));
    // Every record accepted before the failure decided at once, long before its deadline.
    assert!(accepted > 0);
    assert!(
        !outcomes.is_empty()
            && outcomes
                .iter()
                .all(|o| *o == Outcome::NotPersisted(NotPersistedReason::ProducerFatal(fatal))),
        "{accepted} accepted: {outcomes:?}"
    );
    assert!(c.is_idle(), "nothing held");
    assert!(
        refused.iter().all(|e| *e == SendError::Fatal),
        "{refused:?}"
    );
    assert!(!refused.is_empty());
    // The leader was dialled once, and nothing after.
    let leader_dials = counts
        .dials
        .iter()
        .filter(|(t, _)| !matches!(t, Target::Bootstrap(_)))
        .count();
    assert_eq!(leader_dials, 1, "{:?}", counts.dials);
    assert_eq!(counts.produce, 0);
    let message = FatalReason::Tls(TlsFailure::UnknownIssuer).to_string();
    assert!(message.contains("CA"), "{message}");
}
