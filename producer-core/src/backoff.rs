//! Exponential backoff with jitter: how long to wait after consecutive failures.
//!
//! Every path that repeats an action after a failure (a dial, a metadata refresh, a produce
//! resend, an InitProducerId request, the sending after a fence) waits by this rule, so that a
//! broker that keeps failing costs a paced trickle of requests and never a storm. The wait
//! after the `n`-th consecutive failure is `base × 2^(n-1)`, capped at `max` (librdkafka's
//! `reconnect.backoff.ms` / `reconnect.backoff.max.ms` shape), then shortened by a random
//! part of at most a quarter. Jitter only ever shortens: the cap is a promise to the
//! application (it bounds how long after a broker's return the producer notices), and
//! lengthening would break it. A quarter is enough to spread gateways that lost the same
//! broker at the same instant, and keeps the pace within a factor 4/3 of the plain doubling.
//!
//! The randomness is a tiny deterministic generator seeded from the configuration
//! ([`crate::state::Config::jitter_seed`]): simulations replay exactly, and transports seed it
//! from something that differs between devices (the time and process id on hosts, a hardware
//! random number on a microcontroller).

use core::time::Duration;

/// The largest doubling applied: beyond 2^20 every practical cap is reached anyway.
const MAX_DOUBLINGS: u32 = 20;

/// A small, fast pseudo-random generator (SplitMix64) for jitter. Not for secrets: its only
/// job is to make devices that failed together retry apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Jitter {
    state: u64,
}

impl Jitter {
    /// A generator whose sequence is fixed by `seed`.
    pub const fn new(seed: u64) -> Self {
        Jitter { state: seed }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A second generator whose sequence is independent of this one's: each user of jitter
    /// (the sequencer, the client) gets its own, so one's draws do not shift the other's.
    pub fn fork(&mut self) -> Jitter {
        Jitter::new(self.next_u64())
    }
}

/// The waiting rule: `base`, doubling per consecutive failure, up to `max`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Backoff {
    /// The wait after the first failure (before jitter).
    pub base: Duration,
    /// The longest wait, whatever the number of failures.
    pub max: Duration,
}

impl Backoff {
    /// A rule starting at `base` and capped at `max` (the callers' configuration checks
    /// ensure `base > 0` and `max >= base`).
    pub const fn new(base: Duration, max: Duration) -> Self {
        Backoff { base, max }
    }

    /// The wait after `failures` consecutive failures, before jitter: 0 for none, `base` for
    /// one, doubling up to `max`.
    pub fn ceiling(&self, failures: u32) -> Duration {
        if failures == 0 {
            return Duration::ZERO;
        }
        let doublings = (failures - 1).min(MAX_DOUBLINGS);
        self.base.saturating_mul(1 << doublings).min(self.max)
    }

    /// The wait after `failures` consecutive failures, jittered: between three quarters of
    /// [`Backoff::ceiling`] and the ceiling itself, never above `max`.
    pub fn delay(&self, failures: u32, jitter: &mut Jitter) -> Duration {
        let ceiling = self.ceiling(failures);
        if ceiling.is_zero() {
            return ceiling;
        }
        let nanos = ceiling.as_nanos().min(u128::from(u64::MAX)) as u64;
        // A uniform fraction of a quarter of the ceiling, in 32-bit steps.
        let fraction = jitter.next_u64() >> 32;
        let cut = ((u128::from(nanos / 4) * u128::from(fraction)) >> 32) as u64;
        Duration::from_nanos(nanos - cut)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn doubles_per_failure_up_to_the_cap() {
        let b = Backoff::new(ms(100), ms(1000));
        let ceilings: [u64; 7] = [0, 100, 200, 400, 800, 1000, 1000];
        for (failures, want) in ceilings.iter().enumerate() {
            assert_eq!(b.ceiling(failures as u32), ms(*want), "{failures} failures");
        }
        assert_eq!(
            b.ceiling(u32::MAX),
            ms(1000),
            "no overflow after many failures"
        );
        let huge = Backoff::new(Duration::MAX, Duration::MAX);
        assert_eq!(huge.ceiling(40), Duration::MAX, "saturates");
    }

    #[test]
    fn jitter_shortens_by_at_most_a_quarter_and_never_passes_the_cap() {
        let b = Backoff::new(ms(100), ms(10_000));
        let mut j = Jitter::new(42);
        for failures in 1..30 {
            let ceiling = b.ceiling(failures);
            for _ in 0..200 {
                let d = b.delay(failures, &mut j);
                assert!(d <= ceiling && d <= b.max, "{d:?} above {ceiling:?}");
                assert!(d * 4 >= ceiling * 3, "{d:?} below 3/4 of {ceiling:?}");
            }
        }
        assert_eq!(b.delay(0, &mut j), Duration::ZERO);
    }

    #[test]
    fn jitter_spreads_and_replays_from_its_seed() {
        let b = Backoff::new(ms(1000), ms(1000));
        let draws = |seed| {
            let mut j = Jitter::new(seed);
            core::array::from_fn::<Duration, 64, _>(|_| b.delay(1, &mut j))
        };
        assert_eq!(draws(7), draws(7), "same seed, same waits");
        assert_ne!(draws(7), draws(8), "another seed, other waits");
        let d = draws(7);
        let (lo, hi) = (d.iter().min().unwrap(), d.iter().max().unwrap());
        // 64 draws over a 250 ms range spread over most of it.
        assert!(*hi - *lo > ms(150), "spread {lo:?}..{hi:?}");
        // Forked generators do not repeat their parent's draws.
        let mut parent = Jitter::new(7);
        let mut child = parent.fork();
        assert_ne!(parent.next_u64(), child.next_u64());
    }
}
