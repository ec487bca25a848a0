//! What the simulations share: a virtual clock with an event queue, a seeded random source,
//! a fault window, a trace, the sweep that runs many seeds and reports the failing ones, and
//! the replay of one seed with its trace; the client under test in the simulations of the
//! whole client (`client`); and a NOR flash in RAM that loses power on demand (`ram_flash`).

#![allow(dead_code)]

pub mod client;
pub mod ram_flash;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::fmt::{Display, Write as _};
use std::ops::{AddAssign, Range};
use std::panic::{RefUnwindSafe, catch_unwind};
use std::time::Duration;

use producer_core::time::Instant;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// A simulated world: time only moves when the simulation moves it, and every random choice
/// comes from one seed, so a seed replays exactly.
pub struct World<E> {
    pub rng: ChaCha8Rng,
    pub now: Instant,
    /// Faults are injected before this instant; after it the world heals so everything can
    /// settle.
    pub fault_end: Instant,
    pub trace: Option<String>,
    queue: BinaryHeap<Reverse<(Instant, u64)>>,
    payloads: HashMap<u64, E>,
    next_id: u64,
    /// Passes of the run loop at the current instant, and that instant.
    spins: (Instant, u32),
}

impl<E> World<E> {
    /// A world drawing from `rng` (already used to set the scene, if the caller likes).
    pub fn new(rng: ChaCha8Rng, fault_end: Instant, trace: bool) -> Self {
        World {
            rng,
            now: Instant::ZERO,
            fault_end,
            trace: trace.then(String::new),
            queue: BinaryHeap::new(),
            payloads: HashMap::new(),
            next_id: 0,
            spins: (Instant::ZERO, 0),
        }
    }

    /// Counts a pass of the simulation's run loop: one that keeps running without time moving
    /// on is a livelock, and fails the seed.
    pub fn spin_check(&mut self) -> Result<(), String> {
        if self.spins.0 == self.now {
            self.spins.1 += 1;
            if self.spins.1 > 100_000 {
                return Err(format!("livelock: no progress at {:?}", self.now));
            }
        } else {
            self.spins = (self.now, 0);
        }
        Ok(())
    }

    /// Queues `event` at `at`; events at the same instant keep their scheduling order.
    pub fn schedule(&mut self, at: Instant, event: E) {
        let id = self.next_id;
        self.next_id += 1;
        self.payloads.insert(id, event);
        self.queue.push(Reverse((at, id)));
    }

    /// When the next queued event is due.
    pub fn next_event_at(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse((t, _))| *t)
    }

    /// When anything happens next: the next event, `wake` (when the code under test asked to
    /// be polled again), or the end of the fault window if it is ahead. `None`: nothing will.
    pub fn next_instant(&self, wake: Option<Instant>) -> Option<Instant> {
        let fault_end = Some(self.fault_end).filter(|&t| t > self.now);
        [self.next_event_at(), wake, fault_end]
            .into_iter()
            .flatten()
            .min()
    }

    /// A seed that has not settled by now hangs: two minutes after the faults stop.
    pub fn settle_by(&self) -> Instant {
        self.fault_end + Duration::from_secs(120)
    }

    /// The next event due by now, if any.
    pub fn pop_due(&mut self) -> Option<E> {
        let Reverse((t, id)) = *self.queue.peek()?;
        if t > self.now {
            return None;
        }
        self.queue.pop();
        self.payloads.remove(&id)
    }

    /// A random instant inside the fault window.
    pub fn random_time(&mut self) -> Instant {
        Instant::from_micros(self.rng.random_range(0..self.fault_end.as_micros()))
    }

    /// Schedules a random number (in `count`) of events at random instants of the fault
    /// window, each made by `make` from the random source.
    pub fn scatter(&mut self, count: Range<i32>, mut make: impl FnMut(&mut ChaCha8Rng) -> E) {
        for _ in 0..self.rng.random_range(count) {
            let at = self.random_time();
            let event = make(&mut self.rng);
            self.schedule(at, event);
        }
    }

    /// Faults are still being injected.
    pub fn faults(&self) -> bool {
        self.now < self.fault_end
    }

    /// True with probability `p`, inside the fault window only.
    pub fn chance(&mut self, p: f64) -> bool {
        self.faults() && self.rng.random_bool(p)
    }

    /// A network delay: usually `fast` microseconds, with probability `slow_p` (inside the
    /// fault window) `slow` milliseconds, long enough to cross deadlines.
    pub fn latency(&mut self, slow_p: f64, slow: Range<u64>, fast: Range<u64>) -> Duration {
        if self.chance(slow_p) {
            Duration::from_millis(self.rng.random_range(slow))
        } else {
            Duration::from_micros(self.rng.random_range(fast))
        }
    }

    /// Appends a line to the trace, when tracing.
    pub fn log(&mut self, line: impl FnOnce() -> String) {
        if let Some(trace) = &mut self.trace {
            let _ = writeln!(
                trace,
                "{:>9.3} ms  {}",
                self.now.as_micros() as f64 / 1000.0,
                line()
            );
        }
    }
}

/// Seeds to run: `SIM_SEEDS`, else `default`.
pub fn seeds_from_env(default: u64) -> u64 {
    std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Runs seeds `0..seeds`, adds up what the passing ones report, prints the totals under
/// `name`, and fails with the failing seeds (the first five) and how to replay them. It stops
/// at the fifth failure, unless `SIM_ALL=1`: then it runs every seed and says how many failed.
/// `SIM_FROM=N` starts at seed `N`.
pub fn sweep<T>(
    name: &str,
    seeds: u64,
    replay: &str,
    run: impl Fn(u64) -> Result<T, String> + RefUnwindSafe,
) where
    T: Default + AddAssign + Display,
{
    let all = std::env::var("SIM_ALL").is_ok_and(|v| v == "1");
    let started = std::time::Instant::now();
    let mut total = T::default();
    let mut failures = Vec::new();
    let mut failed = 0u64;
    let mut ran = 0u64;
    let from = std::env::var("SIM_FROM")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    for seed in from..seeds {
        ran += 1;
        let failure = match catch_unwind(|| run(seed)) {
            Ok(Ok(t)) => {
                total += t;
                None
            }
            Ok(Err(e)) => Some(format!(
                "seed {seed} failed: {e}\n  replay: SIM_SEED={seed} {replay}"
            )),
            Err(_) => Some(format!(
                "seed {seed} panicked\n  replay: SIM_SEED={seed} {replay}"
            )),
        };
        if let Some(f) = failure {
            failed += 1;
            if all {
                println!("{}", f.lines().next().unwrap_or_default());
            }
            if failures.len() < 5 {
                failures.push(f);
            }
        }
        if failed >= 5 && !all {
            break;
        }
    }
    println!(
        "{name}: {ran} seeds in {:.1} s ({failed} failed); {total}",
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Replays seed `SIM_SEED`, if set: prints its trace and tally, and fails if the seed fails.
/// `simulate` runs one seed, with a trace when asked.
pub fn replay<T: Display>(simulate: impl Fn(u64, bool) -> (Result<T, String>, Option<String>)) {
    let Some(seed) = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()) else {
        return;
    };
    let (result, trace) = simulate(seed, true);
    println!("{}", trace.unwrap_or_default());
    match result {
        Ok(t) => println!("seed {seed} passed: {t}"),
        Err(e) => panic!("seed {seed} failed: {e}"),
    }
}
