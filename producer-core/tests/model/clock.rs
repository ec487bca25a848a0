//! Wall clocks and record timestamps, for the Kafka flavour's producer-state expiry: Kafka
//! drops a producer's state on a partition once its wall clock is `producer.id.expiration.ms`
//! past the max timestamp of the last batch it appended for it (checked periodically), and
//! record timestamps are the application's (CreateTime). So the model has a broker wall clock
//! (a per-seed base plus sim time), a client wall clock (the same, skewed a little) that the
//! harness tells the client, and application timestamps that follow the client's clock, except
//! in some seeds a share of records whose clock lags.
//!
//! The sim-time scale is seconds: the expiration `E` is 10 to 25 s. The client's
//! `producer_state_ttl` is drawn so that `E > 2·TTL + MARGIN`, where `MARGIN` covers the
//! longest a resend can take to be processed after the client decided to send it (slow
//! network, the broker serving a connection's requests one at a time with acks waits, a
//! closed connection's stragglers) plus the skew. Why twice the TTL: the client judges a
//! batch by its own records' timestamps, while Kafka counts from the *last* batch appended for
//! the producer, which may carry older timestamps (up to a TTL old, else the client refuses
//! them). A resend the client still allows at `accepted + TTL` may then meet a state that
//! expires at `accepted - TTL + E`: with a TTL of half the expiration nothing is left for
//! the resend's delay or the skew.
//!
//! No seed has a client without a wall clock and old timestamps: there no client can be
//! correct (the README says so). Seeds without a client wall clock get current timestamps
//! only, so the broker expires nothing the client could have known about.

use std::time::Duration;

use producer_core::time::Instant;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::Flavour;
use super::records::Planned;

/// What the delays between the client's decision to send and the broker's processing may
/// add up to in this model (`net`: 2.5 s slow latency, up to four produce timeouts of
/// 800 ms ahead in a connection's queue), plus the skew between the clocks.
pub const MARGIN: Duration = Duration::from_secs(7);

/// The seed's clocks and the producer-state lifetimes.
#[derive(Clone, Copy, Debug)]
pub struct Clocks {
    /// The broker's wall clock at `Instant::ZERO`, in ms since the Unix epoch.
    pub base_ms: i64,
    /// The client's (and the application's) clock minus the broker's.
    pub skew_ms: i64,
    /// The harness tells the client the wall clock (`Client::set_wall_clock`).
    pub client_knows: bool,
    /// Kafka's `producer.id.expiration.ms` in sim time, and its check interval; `None`
    /// (tansu) never expires.
    pub expiration: Option<(Duration, Duration)>,
    /// The client's `producer_state_ttl`.
    pub ttl: Duration,
    /// A share of records carries old timestamps (an application clock that lags).
    pub old_timestamps: bool,
}

impl Clocks {
    /// Draws the seed's clocks, in a fixed order.
    pub fn draw(rng: &mut ChaCha8Rng, flavour: Flavour) -> Clocks {
        let base_ms = 1_700_000_000_000 + rng.random_range(0..100_000_000_000);
        let skew_ms = rng.random_range(-200..=200);
        if flavour == Flavour::Tansu {
            return Clocks {
                base_ms,
                skew_ms,
                client_knows: true,
                expiration: None,
                ttl: Duration::from_secs(12 * 3600),
                old_timestamps: false,
            };
        }
        let client_knows = rng.random_bool(0.9);
        let expiration = Duration::from_millis(rng.random_range(10_000..25_000));
        let check = expiration / 10;
        let room = (expiration - MARGIN) / 2;
        let ttl = room.mul_f64(rng.random_range(0.6..1.0));
        let old_timestamps = client_knows && rng.random_bool(0.4);
        Clocks {
            base_ms,
            skew_ms,
            client_knows,
            expiration: Some((expiration, check)),
            ttl,
            old_timestamps,
        }
    }

    /// The broker's wall clock at `now`, in ms since the Unix epoch.
    pub fn broker_ms(&self, now: Instant) -> i64 {
        self.base_ms + (now.as_micros() / 1000) as i64
    }

    /// The client's wall clock at `now`.
    pub fn client_ms(&self, now: Instant) -> i64 {
        self.broker_ms(now) + self.skew_ms
    }

    /// Gives the planned records their lag behind the client's clock (see [`Clocks::lags`]).
    pub fn age(&self, rng: &mut ChaCha8Rng, planned: &mut [Planned]) {
        let lags = self.lags(rng, planned.len());
        for (p, lag) in planned.iter_mut().zip(lags) {
            p.lag_ms = lag;
        }
    }

    /// Draws `n` timestamp lags behind the client's clock, in ms: none, or, with old
    /// timestamps, for a share of them, either a little less than the TTL (accepted, and
    /// soon past it) or more (refused, `SendError::StaleTimestamp`), up to past the broker's
    /// expiration.
    pub fn lags(&self, rng: &mut ChaCha8Rng, n: usize) -> Vec<i64> {
        let (Some((expiration, _)), true) = (self.expiration, self.old_timestamps) else {
            return vec![0; n];
        };
        let share = rng.random_range(0.05..0.4);
        let ttl = self.ttl.as_millis() as i64;
        let beyond = expiration.as_millis() as i64 + 2000;
        (0..n)
            .map(|_| {
                if !rng.random_bool(share) {
                    0
                } else if rng.random_bool(0.5) {
                    rng.random_range(ttl * 6 / 10..ttl)
                } else {
                    rng.random_range(ttl + 1..beyond)
                }
            })
            .collect()
    }

    /// Whether a record with `timestamp` is older than the client's producer-state lifetime
    /// at `now` by its wall clock (the client refuses it, or gives up its batch once it waits
    /// for a resend after an attempt that may have been appended).
    pub fn stale(&self, timestamp: i64, now: Instant) -> bool {
        self.client_knows && timestamp < self.client_ms(now) - self.ttl.as_millis() as i64
    }

    /// In some Kafka seeds the application pauses, for about the broker's expiration, before
    /// its item `at` of `n`: the broker may drop the producer's state meanwhile, and what
    /// follows continues the sequences it forgot. Returns `(at, length)`.
    pub fn draw_pause(&self, rng: &mut ChaCha8Rng, n: usize) -> Option<(usize, Duration)> {
        let (expiration, _) = self.expiration?;
        if n < 4 || !rng.random_bool(0.4) {
            return None;
        }
        let at = rng.random_range(n / 4..n * 3 / 4);
        let shortest = expiration.saturating_sub(self.ttl + Duration::from_secs(1));
        let length = rng.random_range(shortest..expiration + Duration::from_secs(3));
        Some((at, length))
    }

    /// [`Clocks::draw_pause`] applied to the planned records: the later deadlines and the end
    /// of the fault window move by the pause.
    pub fn pause(&self, rng: &mut ChaCha8Rng, planned: &mut [Planned], fault_end: &mut Instant) {
        let Some((at, length)) = self.draw_pause(rng, planned.len()) else {
            return;
        };
        for p in &mut planned[at..] {
            p.deadline = p.deadline + length;
        }
        planned[at].not_before = Some(planned[at].planned_at + length);
        *fault_end = *fault_end + length;
    }
}
