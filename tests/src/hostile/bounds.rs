//! The bounds a hostile case holds a producer to, derived from its configuration.
//!
//! Every backoff the issue asks for is exponential with a cap and downward jitter of at most
//! a quarter (librdkafka's `reconnect.backoff.ms` / `reconnect.backoff.max.ms`, Kafka's
//! `retry.backoff.ms` / `retry.backoff.max.ms` of KIP-580): after the k-th consecutive failure
//! the wait is at least `JITTER_FLOOR × min(base × 2^k, max)`. [`attempts_within`] counts the
//! most attempts such a schedule allows in a window; the closed form it follows is
//!
//! ```text
//! attempts(T) <= 1 + ceil(log2(max / base)) + T / (0.75 × max)
//! ```
//!
//! (one at once, at most one per doubling step until the cap, then one per capped wait); the
//! count is exact for the floor schedule and never above that form.

use std::time::Duration;

/// The smallest share of its nominal wait a jittered backoff may take.
pub const JITTER_FLOOR: f64 = 0.75;

/// The defaults of `ClientConfig` the `produce` tool runs with (it has no flags for them), and
/// the transport-embassy cases set explicitly; `defaults_are_the_client_s` keeps them true.
pub mod defaults {
    use std::time::Duration;

    /// `ClientConfig::reconnect_backoff`: the first wait before reconnecting to a broker.
    pub const RECONNECT_BACKOFF: Duration = Duration::from_millis(100);
    /// `ClientConfig::reconnect_backoff_max`: the cap of the doubling reconnect wait
    /// (librdkafka's default `reconnect.backoff.max.ms`).
    pub const RECONNECT_BACKOFF_MAX: Duration = Duration::from_secs(10);
    /// `state::Config::retry_backoff`: the first wait before resending a batch (and, as in
    /// Kafka's Java client, before refreshing metadata or asking for a producer id again).
    pub const RETRY_BACKOFF: Duration = Duration::from_millis(100);
    /// `state::Config::retry_backoff_max`: its cap.
    pub const RETRY_BACKOFF_MAX: Duration = Duration::from_secs(1);
}

/// The most attempts a backoff schedule starting at `base`, doubling to `max`, with waits no
/// shorter than [`JITTER_FLOOR`] of nominal, allows within `window`: the first at once, each
/// next one no sooner than the floor of its wait after the previous.
pub fn attempts_within(window: Duration, base: Duration, max: Duration) -> u64 {
    let window = window.as_secs_f64();
    let (base, max) = (
        base.as_secs_f64(),
        max.as_secs_f64().max(base.as_secs_f64()),
    );
    let mut at = 0.0;
    let mut attempts = 1;
    let mut wait = base;
    loop {
        at += JITTER_FLOOR * wait.min(max);
        if at > window {
            return attempts;
        }
        attempts += 1;
        wait *= 2.0;
    }
}

/// [`attempts_within`] for reconnects with the `produce` tool's defaults.
pub fn reconnects_within(window: Duration) -> u64 {
    attempts_within(
        window,
        defaults::RECONNECT_BACKOFF,
        defaults::RECONNECT_BACKOFF_MAX,
    )
}

/// [`attempts_within`] for retries (a batch's resends, metadata refreshes, producer id
/// requests) with the `produce` tool's defaults.
pub fn retries_within(window: Duration) -> u64 {
    attempts_within(window, defaults::RETRY_BACKOFF, defaults::RETRY_BACKOFF_MAX)
}

/// The closed form of the module doc, for the record: never below [`attempts_within`].
pub fn closed_form(window: Duration, base: Duration, max: Duration) -> f64 {
    1.0 + (max.as_secs_f64() / base.as_secs_f64()).log2().ceil()
        + window.as_secs_f64() / (JITTER_FLOOR * max.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_counts() {
        let ms = Duration::from_millis;
        // Floors 75, 150, 300, 600, 1200 ms: attempts at 0, 75, 225, 525, 1125, 2325 ms.
        assert_eq!(attempts_within(ms(0), ms(100), ms(10_000)), 1);
        assert_eq!(attempts_within(ms(1_600), ms(100), ms(10_000)), 5);
        assert_eq!(attempts_within(ms(3_000), ms(100), ms(10_000)), 6);
        // Capped at 1 s (floor 750 ms): 0, 75, 225, 525, 1125, 1875, 2625.
        assert_eq!(attempts_within(ms(3_000), ms(100), ms(1_000)), 7);
        for t in [0, 500, 1_600, 3_000, 20_000, 100_000] {
            for max in [1_000, 10_000] {
                let n = attempts_within(ms(t), ms(100), ms(max)) as f64;
                assert!(n <= closed_form(ms(t), ms(100), ms(max)), "{t} {max}");
            }
        }
    }

    /// The bounds are derived from the client's own defaults, so they must be those defaults.
    #[test]
    fn defaults_are_the_client_s() {
        let client = producer_core::client::ClientConfig::new("hostile");
        assert_eq!(client.reconnect_backoff, defaults::RECONNECT_BACKOFF);
        assert_eq!(
            client.reconnect_backoff_max,
            defaults::RECONNECT_BACKOFF_MAX
        );
        assert_eq!(client.producer.retry_backoff, defaults::RETRY_BACKOFF);
        assert_eq!(
            client.producer.retry_backoff_max,
            defaults::RETRY_BACKOFF_MAX
        );
    }
}
