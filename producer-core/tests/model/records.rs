//! The application's records in the whole-client simulations, and how the model broker reads
//! them back: a value names its record (`r{uid}-{padding}`, or `poison-{uid}` for a record the
//! broker refuses as too large), so the broker can log which record landed where and the
//! checks can compare the log with what the client reported. Both ends live here so that the
//! encoding and its decoding cannot drift apart.

use producer_core::client::ProducerRecord;
use producer_core::time::Instant;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::broker::TOPIC;
use super::clock::Clocks;

/// Values starting with this make the broker refuse their batch as too large.
pub const POISON: &str = "poison";

/// A record the application will submit.
pub struct Planned {
    pub key: Option<String>,
    pub value: String,
    pub deadline: Instant,
    /// When the plan has it submitted, before any pause (`Clocks::pause`).
    pub planned_at: Instant,
    /// The application submits it no earlier than this (after a pause).
    pub not_before: Option<Instant>,
    /// How far its timestamp lags the client's wall clock (`Clocks::age`).
    pub lag_ms: i64,
}

/// Draws `count` records (uid = index) and the end of the fault window, some time after the
/// last one is due. The draws come in a fixed order from `rng`, so a seed replays.
pub fn plan(rng: &mut ChaCha8Rng, count: i32) -> (Vec<Planned>, Instant) {
    let mut t = 0u64;
    let records = (0..count)
        .map(|uid| {
            t += rng.random_range(0..15);
            let deadline_ms = if rng.random_bool(0.4) {
                rng.random_range(40..400)
            } else {
                rng.random_range(400..5000)
            };
            let key = rng
                .random_bool(0.7)
                .then(|| format!("k{}", rng.random_range(0..8)));
            let pad = rng.random_range(0..120);
            let value = if rng.random_bool(0.01) {
                format!("{POISON}-{uid}")
            } else {
                format!("r{uid}-{}", "x".repeat(pad))
            };
            Planned {
                key,
                value,
                deadline: Instant::from_millis(t + deadline_ms),
                planned_at: Instant::from_millis(t),
                not_before: None,
                lag_ms: 0,
            }
        })
        .collect();
    let fault_end = Instant::from_millis(t + rng.random_range(500..3000));
    (records, fault_end)
}

impl Planned {
    /// The record the application hands the client at `now`: its timestamp is the
    /// application's clock (`clocks`' client clock, lagging by the record's lag).
    pub fn record(&self, clocks: &Clocks, now: Instant) -> ProducerRecord<'_> {
        ProducerRecord {
            topic: TOPIC,
            partition: None,
            key: self.key.as_deref().map(str::as_bytes),
            value: Some(self.value.as_bytes()),
            headers: &[],
            timestamp: Some(clocks.client_ms(now) - self.lag_ms),
        }
    }

    /// The broker refuses it as too large.
    pub fn poison(&self) -> bool {
        self.value.starts_with(POISON)
    }

    /// When the application gives up on it: its deadline, or its cancel if earlier.
    pub fn limit(&self, cancelled_at: Option<Instant>) -> Instant {
        cancelled_at.map_or(self.deadline, |c| c.min(self.deadline))
    }
}

/// The uid a value names, and whether it is poison.
pub fn uid_of(value: &str) -> Result<(u32, bool), String> {
    if value.starts_with(POISON) {
        let uid = value[POISON.len() + 1..]
            .parse::<u32>()
            .map_err(|e| e.to_string())?;
        Ok((uid, true))
    } else {
        let digits: String = value[1..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        Ok((digits.parse::<u32>().map_err(|e| e.to_string())?, false))
    }
}
