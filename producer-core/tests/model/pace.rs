//! How hard the client may press a cluster, from its configuration: the simulations count
//! what the client sends and dials, and hold every seed to these bounds.
//!
//! Every backoff of the core is exponential with a cap, jittered downward by at most a
//! quarter (`producer_core::backoff`): after the k-th consecutive failure the wait is at
//! least `¾ × min(base × 2^(k-1), max)`. [`attempts_within`] counts the most attempts such a
//! schedule allows in a window (the first at once, each next one no sooner than its floor);
//! it is never above the closed form
//!
//! ```text
//! attempts(T) <= 1 + ceil(log2(max / base)) + T / (0.75 × max)
//! ```
//!
//! A real answer legitimately starts a schedule again, so bounds count those resets rather
//! than widen: see [`Dials`] and [`Paced`].

use std::collections::HashMap;
use std::time::Duration;

use producer_core::client::Target;
use producer_core::time::Instant;

/// The most attempts a schedule from `base` doubling to `max`, each wait no shorter than
/// three quarters of nominal (less a microsecond of rounding), allows within `window`.
pub fn attempts_within(window: Duration, base: Duration, max: Duration) -> u64 {
    let max = max.max(base);
    let mut at = Duration::ZERO;
    let mut attempts = 1;
    let mut wait = base;
    loop {
        let floor = (wait.min(max) * 3 / 4).saturating_sub(Duration::from_micros(1));
        if floor.is_zero() {
            return u64::MAX;
        }
        at += floor;
        if at > window {
            return attempts;
        }
        attempts += 1;
        wait = wait.saturating_mul(2);
    }
}

/// One target's dials since its last reset.
#[derive(Clone, Copy, Debug)]
struct Streak {
    first: Instant,
    last: Instant,
    attempts: u64,
}

#[derive(Debug)]
struct Track {
    target: Target,
    open: Option<Streak>,
    attempts: u64,
    bound: u64,
    resets: u64,
}

/// Connection attempts per target (bootstrap address, broker node id), the core's unit of
/// reconnect backoff.
///
/// Bound: a target's dials fall into streaks separated by resets, a reset being a real
/// answer (Metadata, InitProducerId, Produce) the simulation saw arrive from a connection to
/// that target. Within a streak every dial but the first follows a failure (the connection
/// before it failed to open, was lost or was given up before a real answer), and the k-th
/// failure holds the next dial back `¾ × min(reconnect_backoff × 2^(k-1),
/// reconnect_backoff_max)` at least. So a streak from its first dial to its last spanning
/// `S` holds at most `attempts_within(S, reconnect_backoff, reconnect_backoff_max)` dials,
/// and a target's total is at most the sum over its streaks: with `R` resets in a seed of
/// length `T`, never more than `(R + 1) × (1 + ceil(log2(max / base))) + T / (0.75 × max)`.
#[derive(Debug)]
pub struct Dials {
    base: Duration,
    max: Duration,
    tracks: Vec<Track>,
    /// Resets by [`Dials::handed_over`] and by [`Dials::forgotten`].
    pub handovers: u64,
    pub forgotten: u64,
    /// The longest streak closed (most attempts) and its bound: how far the backoff was
    /// exercised.
    pub longest: (u64, u64),
}

impl Dials {
    pub fn new(base: Duration, max: Duration) -> Self {
        Dials {
            base,
            max,
            tracks: Vec::new(),
            handovers: 0,
            forgotten: 0,
            longest: (0, 0),
        }
    }

    fn track(&mut self, target: Target) -> &mut Track {
        let i = match self.tracks.iter().position(|t| t.target == target) {
            Some(i) => i,
            None => {
                self.tracks.push(Track {
                    target,
                    open: None,
                    attempts: 0,
                    bound: 0,
                    resets: 0,
                });
                self.tracks.len() - 1
            }
        };
        &mut self.tracks[i]
    }

    /// The client dials `target` at `now`.
    pub fn dialled(&mut self, target: Target, now: Instant) {
        let t = self.track(target);
        t.attempts += 1;
        let s = t.open.get_or_insert(Streak {
            first: now,
            last: now,
            attempts: 0,
        });
        s.last = now;
        s.attempts += 1;
    }

    /// `target` gave a real answer: its schedule may start again.
    pub fn answered(&mut self, target: Target) {
        self.reset(target);
    }

    /// Closes `target`'s open streak, if any, adding its bound; true if there was one.
    fn reset(&mut self, target: Target) -> bool {
        let (base, max) = (self.base, self.max);
        let t = self.track(target);
        let Some(s) = t.open.take() else {
            return false;
        };
        let bound = attempts_within(s.last.saturating_duration_since(s.first), base, max);
        t.bound += bound;
        t.resets += 1;
        if s.attempts > self.longest.0 {
            self.longest = (s.attempts, bound);
        }
        true
    }

    /// Dials of every target.
    pub fn total(&self) -> u64 {
        self.tracks.iter().map(|t| t.attempts).sum()
    }

    /// The client gave a connection to `target` up unanswered without counting a failure:
    /// with two slots for three brokers, a turn ended before the connection was answered.
    /// The next dial may come at once; counted apart (`handovers`), so a sweep shows how
    /// often it happens.
    pub fn handed_over(&mut self, target: Target) {
        if self.reset(target) {
            self.handovers += 1;
        }
    }

    /// The client is about to dial `target` and counts `failures` for it. Every dial of the
    /// open streak failed (else it would have been closed), so fewer means the client forgot
    /// failures: its table of failing brokers holds as many as it has connection slots, and
    /// with more brokers failing than that one is evicted and starts again from nothing (a
    /// defect: with two slots for three brokers closing every connection, each is dialled at
    /// `reconnect_backoff`'s pace, never slower). The streak is closed as at a reset and
    /// counted apart (`forgotten`), so the sweep shows how often.
    pub fn forgotten(&mut self, target: Target, failures: u32) {
        if self
            .track(target)
            .open
            .is_some_and(|s| u64::from(failures) < s.attempts)
        {
            self.reset(target);
            self.forgotten += 1;
        }
    }

    /// Checks every target against its bound; returns the largest share of it used.
    pub fn check(&mut self) -> Result<f64, String> {
        let (base, max) = (self.base, self.max);
        let mut worst: f64 = 0.0;
        for t in &mut self.tracks {
            let open = t.open.map_or(0, |s| {
                attempts_within(s.last.saturating_duration_since(s.first), base, max)
            });
            if let Some(s) = t.open
                && s.attempts > self.longest.0
            {
                self.longest = (s.attempts, open);
            }
            let bound = t.bound + open;
            if t.attempts > bound {
                return Err(format!(
                    "{:?} dialled {} times, bound {bound} ({} resets, backoff {base:?} to {max:?})",
                    t.target, t.attempts, t.resets
                ));
            }
            worst = worst.max(t.attempts as f64 / bound as f64);
        }
        Ok(worst)
    }
}

/// Requests of one kind paced after each answer: Metadata, which the client asks again no
/// sooner than `retry_backoff` after an answer (the growing backoff after incomplete ones,
/// jittered down at most a quarter).
///
/// Bound: between two consecutive requests either an answer came (then they are at least
/// `¾ × retry_backoff` apart) or the earlier was never answered (its connection was lost or
/// given up). So `N <= 1 + U + S / (¾ × retry_backoff)`, with `U` the requests never answered
/// and `S` the span from the first request to the last.
#[derive(Debug, Default)]
pub struct Paced {
    first: Option<Instant>,
    last: Instant,
    pub requests: u64,
    pub answers: u64,
}

impl Paced {
    pub fn sent(&mut self, now: Instant) {
        self.first.get_or_insert(now);
        self.last = now;
        self.requests += 1;
    }

    pub fn bound(&self, backoff: Duration) -> u64 {
        let floor = (backoff * 3 / 4).saturating_sub(Duration::from_micros(1));
        let span = self
            .first
            .map_or(Duration::ZERO, |f| self.last.saturating_duration_since(f));
        let unanswered = self.requests.saturating_sub(self.answers);
        1 + unanswered + (span.as_micros() / floor.as_micros().max(1)) as u64
    }
}

/// Fences the broker caused (each ends in an epoch bump or a new producer id), paced by the
/// fences without progress (`state::pacing`). Fences a deadline or a restart started are not
/// paced and not counted here: they come at most once per expired batch, bounded by the
/// application's records, not by the broker's answers.
///
/// Bound: fences that follow one another with no batch accepted in between form a series;
/// after the k-th fence of a series sending waits `retry_backoff × 2^(k-2)` (none after the
/// first), capped at `retry_backoff_max` and jittered down at most a quarter, and the next
/// fence needs a refused batch sent after that wait. So a series whose bumps span `S` holds at
/// most `1 + attempts_within(S, retry_backoff, retry_backoff_max)` of them (a subset of the
/// fences keeps at least their spacing: the waits only grow). A series ends at a batch
/// accepted, which the simulation sees as a `Persisted` outcome.
#[derive(Debug, Default)]
pub struct Bumps {
    open: Option<Streak>,
    pub bumps: u64,
    bound: u64,
    pub series: u64,
}

impl Bumps {
    /// `n` epoch bumps completed by `now`.
    pub fn bumped(&mut self, n: u64, now: Instant) {
        if n == 0 {
            return;
        }
        self.bumps += n;
        let s = self.open.get_or_insert(Streak {
            first: now,
            last: now,
            attempts: 0,
        });
        s.last = now;
        s.attempts += n;
    }

    /// A batch was accepted: the series ends.
    pub fn progress(&mut self, base: Duration, max: Duration) {
        if let Some(s) = self.open.take() {
            self.bound += Self::series_bound(s, base, max);
            self.series += 1;
        }
    }

    fn series_bound(s: Streak, base: Duration, max: Duration) -> u64 {
        1 + attempts_within(s.last.saturating_duration_since(s.first), base, max)
    }

    /// The bound so far (the open series included).
    pub fn bound(&self, base: Duration, max: Duration) -> u64 {
        self.bound + self.open.map_or(0, |s| Self::series_bound(s, base, max))
    }
}

/// The pseudo-target InitProducerId requests are counted under.
const INIT: Target = Target::Node(-1);

/// The simulation's own count of what the client dialled and sent.
pub struct Pressure {
    pub dials: Dials,
    pub metadata: Paced,
    pub retry_backoff: Duration,
    pub retry_backoff_max: Duration,
    pub bumps: Bumps,
    /// The client's paced fence counter when last looked at.
    pub bumps_seen: u64,
    /// InitProducerId requests, as the dials of one pseudo-target: after the k-th failure in
    /// a row the next waits `¾ × min(retry_backoff × 2^(k-1), retry_backoff_max)` at least,
    /// and a grant (a new id or epoch, seen in the client's counters) starts again, so
    /// [`Dials`]' bound holds with the retry backoff and grants as resets.
    pub inits: Dials,
    pub grants_seen: u64,
    /// Requests per kind: Produce, Metadata, InitProducerId.
    pub requests: [u64; 3],
    /// Each connection's target, and the kind of each request in flight by correlation id.
    pub targets: HashMap<u8, (Target, u32)>,
    pub in_flight: HashMap<(u8, i32), i16>,
}

impl Pressure {
    /// A request frame (length prefix, api key, version, correlation id, ...) goes out.
    pub fn sent(&mut self, conn: u8, frame: &[u8], now: Instant) {
        let key = i16::from_be_bytes([frame[4], frame[5]]);
        let corr = i32::from_be_bytes([frame[8], frame[9], frame[10], frame[11]]);
        let kind = match key {
            0 => 0,
            3 => 1,
            22 => 2,
            _ => return,
        };
        self.requests[kind] += 1;
        if key == 3 {
            self.metadata.sent(now);
        }
        if key == 22 {
            self.inits.dialled(INIT, now);
        }
        self.in_flight.insert((conn, corr), key);
    }

    /// A response frame (length prefix, correlation id, ...) arrives on a current connection.
    pub fn answered(&mut self, conn: u8, frame: &[u8]) {
        let corr = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        if let Some(key) = self.in_flight.remove(&(conn, corr)) {
            if key == 3 {
                self.metadata.answers += 1;
            }
            if let Some(&(target, _)) = self.targets.get(&conn) {
                self.dials.answered(target);
            }
        }
    }

    /// The client closed `conn`. Closed without counting a failure since it was dialled (a
    /// slot's turn handed over, before or after an answer), its target may be dialled again
    /// at once: a reset the bound counts (`Dials::handed_over`).
    pub fn closed(&mut self, conn: u8, failures_now: impl Fn(Target) -> u32) {
        if let Some(&(target, failures)) = self.targets.get(&conn)
            && failures_now(target) == failures
        {
            self.dials.handed_over(target);
        }
    }

    /// The client's counters read `paced` fences the broker caused, `bumps` epoch bumps and
    /// `ids` producer ids at `now`.
    pub fn bumps_at(&mut self, paced: u64, bumps: u64, ids: u64, now: Instant) {
        self.bumps.bumped(paced - self.bumps_seen, now);
        self.bumps_seen = paced;
        if bumps + ids > self.grants_seen {
            self.grants_seen = bumps + ids;
            self.inits.answered(INIT);
        }
    }

    /// A batch was accepted (its outcome is `Persisted`).
    pub fn progress(&mut self) {
        self.bumps
            .progress(self.retry_backoff, self.retry_backoff_max);
    }

    /// Holds the seed to the bounds; returns the largest shares of them used: dials per
    /// target, Metadata requests, epoch bumps, InitProducerId requests.
    pub fn check(&mut self) -> Result<(f64, f64, f64, f64), String> {
        let dials = self.dials.check()?;
        let bound = self.metadata.bound(self.retry_backoff);
        let m = &self.metadata;
        if m.requests > bound {
            return Err(format!(
                "{} metadata requests ({} answered), bound {bound} at retry_backoff {:?}",
                m.requests, m.answers, self.retry_backoff
            ));
        }
        let metadata = m.requests as f64 / bound as f64;
        let inits = self
            .inits
            .check()
            .map_err(|e| format!("InitProducerId requests: {e}"))?;
        let b = &self.bumps;
        let bound = b.bound(self.retry_backoff, self.retry_backoff_max);
        if b.bumps > bound {
            return Err(format!(
                "{} broker-caused fences in {} series without progress, bound {bound} at retry_backoff \
                 {:?} to {:?}",
                b.bumps, b.series, self.retry_backoff, self.retry_backoff_max
            ));
        }
        Ok((dials, metadata, b.bumps as f64 / bound.max(1) as f64, inits))
    }
}

/// Produce attempts per batch, in the simulation of the sequencer alone.
///
/// Bound: after its k-th failed attempt under one stamp a batch waits at least
/// `¾ × min(retry_backoff × 2^(k-1), retry_backoff_max)` (`Pacing::resend_at`), so its sends
/// under one stamp spanning `S` are at most `attempts_within(S, retry_backoff,
/// retry_backoff_max)`. A fence restamps it and its count starts again: each stamp is a reset
/// (counted), and the stamps per batch are bounded in turn by the fences, which [`Bumps`]
/// bounds.
#[derive(Debug)]
pub struct Resends<S> {
    sends: Dials,
    stamps: HashMap<u32, S>,
}

impl<S: PartialEq + Copy> Resends<S> {
    pub fn new(base: Duration, max: Duration) -> Self {
        Resends {
            sends: Dials::new(base, max),
            stamps: HashMap::new(),
        }
    }

    /// Batch `uid` is sent under `stamp` at `now`.
    pub fn sent(&mut self, uid: u32, stamp: S, now: Instant) {
        let target = Target::Node(uid as i32);
        if self.stamps.insert(uid, stamp).is_some_and(|s| s != stamp) {
            self.sends.answered(target);
        }
        self.sends.dialled(target, now);
    }

    /// Checks every batch; returns the largest share of its bound used.
    pub fn check(&mut self) -> Result<f64, String> {
        self.sends.check()
    }

    pub fn total(&self) -> u64 {
        self.sends.total()
    }
}
