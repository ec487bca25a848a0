//! OAUTHBEARER over the TAP device: `transport-embassy` authenticating to Kafka's
//! SASL_PLAINTEXT listener with tokens that live 3–4 s, renewed while records flow.
//!
//! The producer starts without a token. A firmware learns that the producer wants one from
//! the method it awaits, which returns early (once per want) instead of at its own deadline:
//! the test's first `next_delivery` is given a minute and must return at once with
//! `oauth_token_wanted`. Then 2,000 records go out over about ten seconds, and each time the
//! producer wants a token (at 80% of the last one's life) the test mints one. Kafka ends a
//! session at its token's expiry (`connections.max.reauth.ms` is longer), so the producer
//! must authenticate again with each new token before the old one lapses, in place. The log
//! read back holds every record exactly once, in order, at the offset reported.

use super::*;
use tests::kafka::{Sasl, SaslMechanism, unsecured_jws};

const TOPIC: &str = "embassy-oauth";
const N: usize = 2_000;
/// Each token's life at Kafka (its `exp`, in whole seconds, is this far from its `iat`).
const TOKEN_SECS: u64 = 4;

/// What the OAUTHBEARER run reports back from the executor thread.
struct OAuthRun {
    told: Vec<Told>,
    /// The first `next_delivery` returned before its deadline, wanting a token.
    woke_for_first_token: bool,
    tokens: u32,
    authentication_error: Option<String>,
}

/// A fresh token, and when the producer must consider it expired: a second short of its life,
/// since its `exp` is rounded down to a whole second.
fn mint() -> (String, Instant) {
    let token = unsecured_jws("alice", Duration::from_secs(TOKEN_SECS));
    let expires = Instant::now() + embassy_time::Duration::from_secs(TOKEN_SECS - 1);
    (token, expires)
}

fn produce_with_tokens(device: TunTapDevice, bootstrap: String) -> OAuthRun {
    run_embassy(Duration::from_secs(240), move || {
        on_stack(device, async move |stack: Stack<'_>| {
            let bootstrap = [bootstrap.as_str()];
            let topics = [TOPIC];
            let mut config = ProducerConfig::new("embassy-oauth", &bootstrap, &topics);
            config.client.batch_bytes = BATCH_BYTES;
            config.client.sasl = Some(transport_embassy::Mechanism::OAuthBearer {
                token: "",
                extensions: &[],
            });
            let mut buffers: [ConnectionBuffers<RX, TX>; BROKERS] =
                core::array::from_fn(|_| ConnectionBuffers::new());
            let mut producer: TapProducer<'_> = Producer::new(
                stack,
                config,
                vec![0u8; BATCHES * BATCH_BYTES],
                &mut buffers,
            )
            .expect("producer");
            let mut tokens = 0;
            let mut renew = |producer: &mut TapProducer<'_>| {
                if producer.oauth_token_wanted() {
                    let (token, expires) = mint();
                    producer
                        .set_oauth_token(&token, Some(expires))
                        .expect("token");
                    tokens += 1;
                }
            };
            // Nothing to deliver: only the want of a token can end this before a minute.
            let until = Instant::now() + embassy_time::Duration::from_secs(60);
            let first = producer.next_delivery(until).await;
            let woke_for_first_token =
                first.is_none() && Instant::now() < until && producer.oauth_token_wanted();
            renew(&mut producer);

            let mut told = vec![Told::default(); N];
            let mut pending = HashMap::new();
            for i in 0..N {
                let c = content(i);
                let record = ProducerRecord {
                    topic: TOPIC,
                    partition: None,
                    key: Some(&c.key),
                    value: Some(&c.value),
                    headers: &[],
                    timestamp: Some(1_700_000_000_000 + i as i64),
                };
                // Far beyond the run: a record may wait for a token, never for its deadline.
                let deadline = Instant::now() + embassy_time::Duration::from_secs(90);
                let receipt = producer
                    .send(&record, deadline)
                    .await
                    .unwrap_or_else(|e| panic!("record {i} refused: {e}"));
                pending.insert((receipt.batch, receipt.offset_delta), i);
                told[i].partition = Some(receipt.partition);
                // About 5 ms between records: the run spans a few tokens' lives.
                let pause = Instant::now() + embassy_time::Duration::from_millis(5);
                while Instant::now() < pause {
                    if let Some(d) = producer.next_delivery(pause).await {
                        let k = pending
                            .remove(&(d.receipt.batch, d.receipt.offset_delta))
                            .expect("a delivery for a pending record");
                        told[k].outcome = Some(d.outcome);
                        told[k].offset = d.offset;
                    }
                    renew(&mut producer);
                }
            }
            let give_up = Instant::now() + embassy_time::Duration::from_secs(100);
            while !pending.is_empty() && Instant::now() < give_up {
                producer.flush(give_up).await;
                renew(&mut producer);
                while let Some(d) = producer.poll_delivery() {
                    let k = pending
                        .remove(&(d.receipt.batch, d.receipt.offset_delta))
                        .expect("a delivery for a pending record");
                    told[k].outcome = Some(d.outcome);
                    told[k].offset = d.offset;
                }
            }
            let authentication_error = producer.authentication_error().map(|e| e.to_string());
            producer
                .close(Instant::now() + embassy_time::Duration::from_secs(2))
                .await;
            OAuthRun {
                told,
                woke_for_first_token,
                tokens,
                authentication_error,
            }
        })
    })
}

#[test]
fn embassy_renews_oauthbearer_tokens_while_records_flow_kafka() {
    let ns = NetNs::new();
    let kafka = Kafka::builder(1)
        .in_namespace(ns.name(), BROKER_IP)
        .client_ports(vec![PORT])
        .sasl(
            Sasl::new()
                .user(SaslMechanism::OAuthBearer, "alice", "")
                .reauth(Duration::from_secs(60)),
        )
        .start();
    kafka.create_topic(TOPIC, PARTITIONS);
    let device = ns.open_tap();
    let bootstrap = kafka.sasl_addr(1, SaslMechanism::OAuthBearer).to_string();
    let started = std::time::Instant::now();
    let run = produce_with_tokens(device, bootstrap);
    eprintln!(
        "{N} records with {} tokens in {:?}",
        run.tokens,
        started.elapsed()
    );
    assert!(
        run.woke_for_first_token,
        "next_delivery did not return when the producer wanted its first token"
    );
    assert_eq!(run.authentication_error, None);
    // About ten seconds of records on tokens renewed at 80% of 3 s.
    assert!(run.tokens >= 4, "only {} tokens were asked for", run.tokens);
    let log = ns.run(|| {
        read_back(
            &kafka.bootstrap(),
            TOPIC,
            PARTITIONS,
            N,
            Duration::from_secs(60),
        )
    });
    let mut seen = vec![false; N];
    for (p, records) in log.iter().enumerate() {
        let mut previous = None;
        for r in records {
            let i = index_of(r);
            assert!(i < N && !seen[i], "record {i} twice, or never sent");
            seen[i] = true;
            assert_eq!(
                run.told[i].partition,
                Some(p as i32),
                "record {i}: partition"
            );
            assert!(
                matches!(run.told[i].outcome, Some(Outcome::Persisted { .. })),
                "record {i}: {:?}",
                run.told[i].outcome
            );
            assert_eq!(run.told[i].offset, Some(r.offset), "record {i}: offset");
            assert!(previous < Some(i), "partition {p}: record {i} out of order");
            previous = Some(i);
        }
    }
    let missing: Vec<(usize, Option<Outcome>)> = (0..N)
        .filter(|&i| !seen[i])
        .map(|i| (i, run.told[i].outcome))
        .collect();
    assert!(
        missing.is_empty(),
        "{} records not in the log, first: {:?}",
        missing.len(),
        &missing[..missing.len().min(5)]
    );
    drop(kafka);
}
