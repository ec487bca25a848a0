//! embassy-net over a Linux TAP device (`embassy-net-tuntap`) with embassy's std executor,
//! in a network namespace of the test's own (so nothing leaves the machine), against a broker
//! running inside that namespace: each test body runs against one Apache Kafka 4.x node (the
//! reference, `_kafka`) and against tansu (`_tansu`). Needs root: these tests fail, not skip,
//! without it.
//!
//! - `embassy_net_produces_10000_records_exactly_once`: 10,000 records through
//!   `transport-embassy` into a topic with 3 partitions; every record is reported persisted
//!   with an offset, and an independent consumer (librdkafka, inside the namespace) finds
//!   each exactly once, intact, in send order per partition (so per key), at the offset the
//!   producer reported.
//! - `embassy_resolves_names_and_maps_advertised_addresses`: the bootstrap is a name the
//!   in-namespace DNS responder answers; the broker advertises a name nobody resolves
//!   (`broker.kafka.internal:9999`), which the producer's `map_address` maps to the real
//!   listener. Same checks on 1,000 records.
//! - `embassy_durable_state_survives_a_power_cut`: a gateway sends 5,000 sensor readings
//!   through a producer with the durable store (`Producer::new_durable`, a file flash) and
//!   keeps each reading until its batch is durable or decided. Half way, the power goes: the
//!   executor's task ends without flush or close, dropping producer and stack where they
//!   stand. A second life on a new stack and the same flash restores, sends again only the
//!   readings it still held and no restored batch holds, then the rest. The log holds every
//!   reading exactly once, each sensor's in order, at the offsets reported, all `Persisted`;
//!   outcomes handed out again after the cut are the same as before.
//! - `embassy_stack_reaches_broker_and_dns`: the plumbing alone: the stack resolves a name
//!   through the in-namespace DNS responder and exchanges an ApiVersions request with the
//!   broker over a raw embassy-net `TcpSocket`.
//! - `embassy_renews_oauthbearer_tokens_while_records_flow_kafka` (Kafka only: SASL): 2,000
//!   records over a SASL_PLAINTEXT OAUTHBEARER listener with tokens of 3–4 s, each asked for
//!   by the producer (the awaited method returns early for it) and renewed while records
//!   flow; the log holds each record once, in order, at the offset reported.
//!
//! - `embassy_produces_over_tls_and_fails_clearly_kafka` (Kafka only: SSL listeners):
//!   `transport-embassy`'s TLS (embedded-tls, its runner beside the producer) into an ECDSA
//!   P-256 and an RSA-2048 broker (2,000 records each), mTLS and SASL_SSL (500 each), read
//!   back exactly;
//!   10,000 records through the chaos proxy cutting every connection (inside handshakes and
//!   records), read back exactly; 1,000 records with every producer call dropped after
//!   300 µs and made again (handshakes included), read back exactly; a wrong CA, an expired certificate and mTLS without a
//!   client certificate stop the producer at once with their `TlsFailure`; a broker whose
//!   certificate lacks its advertised name fails the accepted records
//!   `NotPersisted(Tls(NotValidForName))` long before their deadlines; a PLAINTEXT listener
//!   behind TLS is a loss, the record refused at its deadline.
//!
//! The first three are in `produce.rs`, the power cut in `power_cut.rs`, OAUTHBEARER in
//! `oauth.rs`, TLS in `tls.rs`; this file has the broker, the stack and the records they
//! share.
//!
//! Against Kafka every offset the producer reports must be exactly where the record is in
//! the log (restored batches Kafka had appended before the power cut included: it answers a
//! resent batch still among its last five with its original offsets), and no fence may need
//! a new producer id (Kafka accepts a local epoch bump). tansu answers such a resend with
//! DUPLICATE_SEQUENCE_NUMBER and no offset.
//!
//! Each test owns its namespace ([`NetNs`]), dropped (broker killed, namespace and TAP
//! deleted) even when the test fails; a failing Kafka run prints its node's log and keeps it
//! (`/tmp/kp-kept-*`).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

use embassy_futures::select::{Either, select};
use embassy_futures::yield_now;
use embassy_net::tcp::TcpSocket;
use embassy_net::{Config, IpAddress, IpEndpoint, Ipv4Cidr, Stack, StackResources, StaticConfigV4};
use embassy_net_tuntap::TunTapDevice;
use embassy_time::{Instant, Timer, with_timeout};
use producer_core::client::{Client, ProducerRecord, RestoreSummary, SendError};
use producer_core::flash::{BlockingAsync, FlashStore, pages_needed};
use producer_core::state::{BatchToken, Counters, Outcome};
use tests::kafka::Kafka;
use tests::netns::{BROKER_IP, NetNs, NsTansu, PREFIX_LEN, STACK_IP, list_namespaces, run_embassy};
use tests::{BrokerKind, ReadRecord, read_back};
use transport_embassy::{
    ConnectionBuffers, Error as TapError, Fixed, MapAddress, Producer, ProducerConfig,
    RecordDelivery, RestoreOptions,
};
use transport_std::file_flash::{FileFlash, PAGE_SIZE};

mod oauth;
mod power_cut;
mod produce;
mod tls;

/// The port the broker listens on inside each namespace (the namespace is ours: nothing
/// else listens there).
const PORT: u16 = 9092;

/// The broker of one test, inside its namespace, listening on [`BROKER_IP`]:[`PORT`].
enum NsBroker<'ns> {
    Tansu(NsTansu<'ns>),
    /// One Kafka node (its JVM runs in the namespace); it borrows the namespace for the
    /// lifetime only, so that it is dropped first.
    Kafka(Kafka, std::marker::PhantomData<&'ns NetNs>),
}

impl NsBroker<'_> {
    /// Starts a broker of `kind` in `ns` advertising `advertised` (`host:port`; default:
    /// where it listens) and waits until it serves.
    fn start<'ns>(ns: &'ns NetNs, kind: BrokerKind, advertised: Option<&str>) -> NsBroker<'ns> {
        let broker = match kind {
            BrokerKind::Tansu => {
                let listener = format!("{BROKER_IP}:{PORT}");
                NsBroker::Tansu(ns.start_tansu(PORT, advertised.unwrap_or(&listener)))
            }
            BrokerKind::Kafka => NsBroker::Kafka(
                ns.start_kafka(1, PORT, advertised),
                std::marker::PhantomData,
            ),
        };
        eprintln!(
            "{} in {}, advertising {advertised:?}",
            kind.name(),
            ns.name()
        );
        broker
    }

    /// `BROKER_IP:PORT`, its listener.
    fn bootstrap(&self) -> String {
        match self {
            NsBroker::Tansu(t) => t.bootstrap(),
            NsBroker::Kafka(k, _) => k.bootstrap(),
        }
    }

    /// Creates `name` with `partitions` partitions and waits until it can be written.
    fn create_topic(&self, name: &str, partitions: i32) {
        match self {
            NsBroker::Tansu(t) => t.create_topic(name, partitions),
            NsBroker::Kafka(k, _) => k.create_topic(name, partitions),
        }
    }
}

/// Runs `work` with an embassy-net stack on `device` at [`STACK_IP`] (DNS server
/// [`BROKER_IP`]), driving the stack's runner alongside; the runner (and the device) is
/// dropped when `work` is done.
async fn on_stack<T>(device: TunTapDevice, work: impl AsyncFnOnce(Stack<'_>) -> T) -> T {
    let config = Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(STACK_IP, PREFIX_LEN),
        gateway: None,
        dns_servers: [BROKER_IP].into_iter().collect(),
    });
    let mut resources = StackResources::<8>::new();
    let (stack, mut runner) = embassy_net::new(device, config, &mut resources, rand::random());
    let work = async {
        stack.wait_config_up().await;
        work(stack).await
    };
    match select(runner.run(), work).await {
        Either::First(never) => never,
        Either::Second(out) => out,
    }
}

const PARTITIONS: i32 = 3;
/// Batch slots: 3 partitions × 5 in flight, plus room to fill the next and to hold outcomes.
const BATCHES: usize = 32;
/// Broker connections: bootstrap and the one broker.
const BROKERS: usize = 2;
const BATCH_BYTES: usize = 8 * 1024;
/// Socket receive window and largest response frame.
const RX: usize = 16 * 1024;
/// Socket send window and largest request: one full batch per partition and then some.
const TX: usize = 12 * 1024;

type TapProducer<'d> = Producer<'d, Vec<u8>, Fixed<1, 3, BATCHES, BROKERS>>;

/// Record `i`: key `sensor-<i % 5>` (so each partition gets a few keys), a value naming it
/// (`reading-<i>` and a payload of varying length), and a `seq` header on every third record.
struct Content {
    key: Vec<u8>,
    value: Vec<u8>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

fn content(i: usize) -> Content {
    Content {
        key: format!("sensor-{}", i % 5).into_bytes(),
        value: format!("reading-{i:06}-{}", "0123456789".repeat(i % 9)).into_bytes(),
        headers: if i.is_multiple_of(3) {
            vec![("seq".to_string(), Some(i.to_string().into_bytes()))]
        } else {
            Vec::new()
        },
    }
}

/// The index a record read back names.
fn index_of(r: &ReadRecord) -> usize {
    r.value
        .as_deref()
        .and_then(|v| v.get(8..14))
        .and_then(|d| std::str::from_utf8(d).ok())
        .and_then(|d| d.parse().ok())
        .unwrap_or_else(|| panic!("a record we never sent: {r:?}"))
}

/// What the producer said about one record.
#[derive(Clone, Copy, Debug, Default)]
struct Told {
    partition: Option<i32>,
    outcome: Option<Outcome>,
    offset: Option<i64>,
}
