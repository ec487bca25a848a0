//! How the sequencer paces what it repeats after a failure: resends of a batch, InitProducerId
//! requests, and the sending after a fence.
//!
//! All three wait by the one [`Backoff`] rule (`retry_backoff` doubling to
//! `retry_backoff_max`, jittered). Fences need their own count: a broker that answers
//! OUT_OF_ORDER_SEQUENCE_NUMBER to every batch makes each resend end in a fence, and each
//! fence in an epoch bump and a fresh resend. Without a pause that loop runs as fast as the
//! round trip (thousands of requests and bumps a second, using up the producer id's epochs).
//! So the fences that follow one another with no batch accepted in between
//! (`fences_without_progress`) hold the sending back for a growing time after each
//! (`resume_sending_at`): the first costs nothing, the next ones `retry_backoff`, twice that,
//! up to `retry_backoff_max`. An accepted batch is progress and ends the series.
//!
//! Only fences the broker's answers caused (or joined) are paced. A fence a deadline started
//! (`FailAndFence`) or a restart started is not a loop with the broker: it comes at most once
//! per expired batch, and holding the sending back after it would let the next records' short
//! deadlines expire unsent, one fence feeding the next (a 300 ms deadline against a link
//! that cuts connections sent nothing for seconds at a time).

use crate::backoff::{Backoff, Jitter};
use crate::time::Instant;

use super::config::Config;

#[derive(Clone, Copy, Debug)]
pub(crate) struct Pacing {
    rule: Backoff,
    jitter: Jitter,
    /// InitProducerId requests refused or lost in a row.
    init_failures: u32,
    /// Fences the broker caused, completed since a batch was last accepted.
    fences_without_progress: u32,
    /// The fence under way was started or joined by a broker's refusal.
    refused_in_fence: bool,
    /// No batch leaves before this instant (set after a fence).
    resume_sending_at: Instant,
}

impl Pacing {
    pub fn new(config: &Config) -> Self {
        Pacing {
            rule: config.retry_rule(),
            jitter: Jitter::new(config.jitter_seed).fork(),
            init_failures: 0,
            fences_without_progress: 0,
            refused_in_fence: false,
            resume_sending_at: Instant::ZERO,
        }
    }

    /// When a batch whose attempt number `attempts` just failed may be resent.
    pub fn resend_at(&mut self, now: Instant, attempts: u16) -> Instant {
        now + self
            .rule
            .delay(u32::from(attempts.max(1)), &mut self.jitter)
    }

    /// An InitProducerId request failed: when to ask again.
    pub fn init_failed(&mut self, now: Instant) -> Instant {
        self.init_failures = self.init_failures.saturating_add(1);
        now + self.rule.delay(self.init_failures, &mut self.jitter)
    }

    /// A producer id was granted.
    pub fn init_granted(&mut self) {
        self.init_failures = 0;
    }

    /// A broker's refusal started the fence under way, or joined it.
    pub fn refused(&mut self) {
        self.refused_in_fence = true;
    }

    /// A fence completed at `now`: returns when sending may resume, and whether this fence
    /// was paced (the broker caused it).
    pub fn fence_completed(&mut self, now: Instant) -> (Instant, bool) {
        if !core::mem::take(&mut self.refused_in_fence) {
            return (self.resume_sending_at, false);
        }
        self.fences_without_progress = self.fences_without_progress.saturating_add(1);
        let wait = self
            .rule
            .delay(self.fences_without_progress - 1, &mut self.jitter);
        self.resume_sending_at = now + wait;
        (self.resume_sending_at, true)
    }

    /// A batch was accepted: the fences so far were not a loop.
    pub fn progress(&mut self) {
        self.fences_without_progress = 0;
    }

    /// Fences the broker caused, completed since a batch was last accepted.
    pub fn fences_without_progress(&self) -> u32 {
        self.fences_without_progress
    }

    /// No batch may leave before this instant.
    pub fn resume_sending_at(&self) -> Instant {
        self.resume_sending_at
    }
}
