//! When a broker or a bootstrap address may be dialled again: the reconnect backoff.
//!
//! The count of failures is kept per target (a bootstrap address, a broker's node id), not per
//! connection slot: slots are handed from target to target (bootstrap addresses rotate, leaders
//! take turns), and a count kept in the slot would start again at zero at every handover,
//! which is how a broker that closed every connection at once got ten thousand connections
//! in three seconds. A connection that fails to open, is lost or is given up before the
//! broker answered a real request counts one failure; a real answer (Metadata,
//! InitProducerId, Produce: not a TCP connect, not ApiVersions) clears the count. The wait
//! after `n` failures follows [`Backoff`]: `reconnect_backoff × 2^(n-1)` up to
//! `reconnect_backoff_max`, jittered.
//!
//! The table has room for `BROKERS` bootstrap addresses (there are at most that many) and
//! `BROKERS` brokers with failures. Brokers without failures are not kept. When more brokers
//! than that are failing, the entry with the fewest failures makes room, and its count and
//! wait become a floor for every broker not in the table, until some broker answers: an
//! evicted broker is not dialled again sooner, or from a lower count, than it would have been
//! kept (without the floor, three failing brokers sharing two entries evicted each other and
//! were each dialled at `reconnect_backoff`'s pace forever). A connection handed to another
//! target when its turn ends is not a failure.

use crate::capacity::{Array, BrokerList, Capacities, PerBroker, Table};

use super::connection::Target;
use crate::backoff::{Backoff, Jitter};
use crate::time::Instant;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Dial {
    failures: u32,
    retry_at: Instant,
}

#[derive(Debug)]
pub(crate) struct Dials<C: Capacities> {
    rule: Backoff,
    jitter: Jitter,
    bootstrap: PerBroker<C, Dial>,
    nodes: BrokerList<C, (i32, Dial)>,
    /// The most failures and the latest wait of the brokers evicted since one last answered:
    /// what a broker missing from `nodes` is taken to have.
    evicted: Dial,
}

impl<C: Capacities> Dials<C> {
    /// Room for `brokers` bootstrap addresses and as many failing brokers.
    pub fn new(brokers: usize, rule: Backoff, jitter: Jitter) -> Self {
        Dials {
            rule,
            jitter,
            bootstrap: Array::new(brokers, Dial::default()),
            nodes: Table::new(brokers, (0, Dial::default())),
            evicted: Dial::default(),
        }
    }

    fn get(&self, target: Target) -> Dial {
        match target {
            Target::Bootstrap(n) => self
                .bootstrap
                .get(usize::from(n))
                .copied()
                .unwrap_or_default(),
            Target::Node(id) => self
                .nodes
                .iter()
                .find(|(n, _)| *n == id)
                .map_or(self.evicted, |(_, d)| *d),
        }
    }

    /// The earliest instant `target` may be dialled.
    pub fn ready_at(&self, target: Target) -> Instant {
        self.get(target).retry_at
    }

    /// Consecutive failures of `target`.
    pub fn failures(&self, target: Target) -> u32 {
        self.get(target).failures
    }

    /// A connection to `target` failed or was lost before a real answer: returns the
    /// earliest instant it may be dialled again.
    pub fn failed(&mut self, target: Target, now: Instant) -> Instant {
        let failures = self.failures(target).saturating_add(1);
        let dial = Dial {
            failures,
            retry_at: now + self.rule.delay(failures, &mut self.jitter),
        };
        match target {
            Target::Bootstrap(n) => {
                if let Some(d) = self.bootstrap.get_mut(usize::from(n)) {
                    *d = dial;
                }
            }
            Target::Node(id) => {
                if let Some((_, d)) = self.nodes.iter_mut().find(|(n, _)| *n == id) {
                    *d = dial;
                } else {
                    if self.nodes.is_full() {
                        let weakest = (0..self.nodes.len())
                            .min_by_key(|&i| (self.nodes[i].1.failures, self.nodes[i].1.retry_at));
                        if let Some((_, gone)) = weakest.and_then(|i| self.nodes.swap_remove(i)) {
                            self.evicted = Dial {
                                failures: self.evicted.failures.max(gone.failures),
                                retry_at: self.evicted.retry_at.max(gone.retry_at),
                            };
                        }
                    }
                    let _ = self.nodes.push((id, dial));
                }
            }
        }
        dial.retry_at
    }

    /// `target` answered a real request: its failures are forgotten.
    pub fn answered(&mut self, target: Target) {
        match target {
            Target::Bootstrap(n) => {
                if let Some(d) = self.bootstrap.get_mut(usize::from(n)) {
                    *d = Dial::default();
                }
            }
            Target::Node(id) => {
                self.nodes.retain(|(n, _)| *n != id);
                self.evicted = Dial::default();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    fn dials() -> Dials<crate::capacity::Fixed<1, 1, 1, 2>> {
        let rule = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        Dials::new(2, rule, Jitter::new(1))
    }

    fn ms(t: Instant) -> u64 {
        t.as_micros() / 1000
    }

    #[test]
    fn failures_double_the_wait_per_target_and_an_answer_clears_them() {
        let mut d = dials();
        let b = Target::Bootstrap(0);
        let mut now = Instant::ZERO;
        let mut waits = [0u64; 9];
        for w in &mut waits {
            let at = d.failed(b, now);
            *w = ms(at) - ms(now);
            now = at;
        }
        let ceilings = [100, 200, 400, 800, 1600, 3200, 6400, 10_000, 10_000];
        for (w, c) in waits.iter().zip(ceilings) {
            assert!(*w <= c && *w * 4 >= c * 3, "{waits:?}");
        }
        // Another target is not delayed by this one.
        assert_eq!(d.ready_at(Target::Bootstrap(1)), Instant::ZERO);
        assert_eq!(d.ready_at(Target::Node(3)), Instant::ZERO);
        d.answered(b);
        assert_eq!((d.failures(b), d.ready_at(b)), (0, Instant::ZERO));
    }

    #[test]
    fn a_full_table_makes_room_from_the_least_failed_broker() {
        let mut d = dials();
        let now = Instant::ZERO;
        for _ in 0..3 {
            d.failed(Target::Node(1), now);
        }
        d.failed(Target::Node(2), now);
        d.failed(Target::Node(3), now);
        assert_eq!(d.failures(Target::Node(1)), 3, "the most delayed stays");
        assert_eq!(d.failures(Target::Node(3)), 1);
        // Node 2 made room; it is not taken to be healthier than when it left.
        assert_eq!(
            d.failures(Target::Node(2)),
            1,
            "made room, count kept as a floor"
        );
        assert!(d.ready_at(Target::Node(2)) > now);
        // A broker's answer says the cluster is reachable again: the floor goes.
        d.answered(Target::Node(1));
        assert_eq!(d.failures(Target::Node(2)), 0);
        // Out-of-range bootstrap indices are ignored rather than panicking.
        d.failed(Target::Bootstrap(9), now);
        assert_eq!(d.failures(Target::Bootstrap(9)), 0);
    }

    /// Three failing brokers sharing two entries: each keeps slowing down (it used to be
    /// dialled at the base pace forever, each evicting another).
    #[test]
    fn brokers_evicting_each_other_still_back_off() {
        let mut d = dials();
        let mut now = Instant::ZERO;
        let mut counts = [0u32; 24];
        for (round, count) in counts.iter_mut().enumerate() {
            let target = Target::Node(1 + (round % 3) as i32);
            now = now.max(d.ready_at(target));
            d.failed(target, now);
            *count = d.failures(target);
        }
        assert!(counts.windows(2).all(|w| w[1] >= w[0]), "{counts:?}");
        // 100 ms doubling passes the 10 s cap at the eighth failure.
        assert!(counts[23] >= 8, "{counts:?}");
        // Evicting each other, they were dialled every 100 ms: 24 dials in about 2.4 s.
        assert!(now >= Instant::ZERO + Duration::from_secs(10), "{now:?}");
    }
}
