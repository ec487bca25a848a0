//! The client under test in the simulations of the whole client, set up the same way in
//! each: the same shape, and a configuration drawn from the seed in a fixed order (so a seed
//! replays, and so both simulations explore the same space of settings).

use producer_core::capacity::Fixed;
use std::time::Duration;

use producer_core::client::{Client, ClientConfig};
use producer_core::state::UnknownOutcome;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::model::Flavour;
use crate::model::broker::TOPIC;
use crate::model::clock::Clocks;
use crate::model::net::LINGER_AFTER_CLOSE;

/// Bytes per batch slot.
pub const BATCH_BYTES: usize = 600;
pub const SLOTS: usize = 16;
pub type TestClient = TestClientWith<4>;
/// The client with `K` connection slots: with two, fewer than the model cluster's three
/// brokers, connections take turns.
pub type TestClientWith<const K: usize> = Client<Vec<u8>, Fixed<1, 4, SLOTS, K>>;
pub const REQUEST_TIMEOUT: Duration = Duration::from_millis(800);

/// A configuration with `policy` and timings drawn from `rng`, for a broker of `flavour`
/// whose clocks are `clocks`: against Kafka the grace before a new producer id is the
/// client's default, five produce timeouts (Kafka may still process a closed connection's
/// requests that long), and the producer-state lifetime is the seed's; against tansu, which
/// drops what it read soon after a close, the grace is just above its linger.
pub fn config(
    rng: &mut ChaCha8Rng,
    policy: UnknownOutcome,
    flavour: Flavour,
    clocks: &Clocks,
) -> ClientConfig<'static> {
    let ms = Duration::from_millis;
    let mut config = ClientConfig::new("sim").with_request_timeout(REQUEST_TIMEOUT);
    config.linger = ms(rng.random_range(0..20));
    config.batch_bytes = BATCH_BYTES;
    config.reconnect_backoff = ms(rng.random_range(10..100));
    config.producer.unknown_outcome = policy;
    config.producer.max_in_flight_per_partition = rng.random_range(1..=5);
    config.producer.retry_backoff = ms(rng.random_range(5..=50));
    config.producer.retry_backoff_max = ms(400);
    if flavour == Flavour::Tansu {
        config.producer.abandoned_request_grace = LINGER_AFTER_CLOSE + ms(rng.random_range(1..100));
    } else {
        config.producer_state_ttl = Some(clocks.ttl);
    }
    config
}

/// A client of the model cluster's three brokers and its topic.
pub fn new_client(config: ClientConfig<'static>) -> TestClient {
    new_client_with(config)
}

/// A client with `K` connection slots, bootstrapping from as many of the three brokers as
/// it has slots.
pub fn new_client_with<const K: usize>(config: ClientConfig<'static>) -> TestClientWith<K> {
    let bootstrap = ["b1:9092", "b2:9092", "b3:9092"];
    TestClientWith::<K>::new(
        config,
        &bootstrap[..K.min(bootstrap.len())],
        &[TOPIC],
        vec![0u8; SLOTS * BATCH_BYTES],
    )
    .expect("valid configuration")
}
