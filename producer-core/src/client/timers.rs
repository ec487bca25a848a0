//! Time as an input: [`Client::poll`] applies it (lingering batches, request timeouts,
//! metadata age, record deadlines through the sequencer) and answers with the next instant
//! the client needs to be polled at: the earliest of the deadlines it keeps, gathered in one
//! [`TimerTable`], one entry per kind of [`Timer`].

use super::Client;
use super::accumulator::SlotUse;
use super::connection::{ConnId, ConnState, Target};
use crate::capacity::Capacities;
use crate::time::Instant;

impl<S, C: Capacities> Client<S, C>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
{
    /// Applies time: seals lingering batches, applies deadlines, times out requests, schedules
    /// metadata refreshes. Returns the next instant it needs to be polled at.
    pub fn poll(&mut self, now: Instant) -> Option<Instant> {
        self.last_now = now;
        for index in 0..self.open.len() {
            if let Some(token) = self.open[index]
                && let SlotUse::Open { opened_at, .. } = self.slots[token.slot()]
                && opened_at + self.linger <= now
            {
                self.seal(index, now);
            }
        }
        // A bootstrap connection carries metadata (and InitProducerId) until a leader's
        // connection is ready: closing it at the first metadata answer, while no leader can
        // be reached (a topic reported missing, a leader that refuses), meant a new
        // connection for every refresh. A leader that needs its slot gets it
        // (`assign_targets`).
        let leader_ready = self
            .conns
            .iter()
            .any(|c| matches!(c.target, Some(Target::Node(_))) && c.state == ConnState::Ready);
        for i in 0..self.conns.len() {
            let timed_out = self.conns[i]
                .deadline(self.request_timeout)
                .is_some_and(|t| t <= now);
            let spare_bootstrap = leader_ready && self.is_spare_bootstrap(i);
            if timed_out || spare_bootstrap {
                if timed_out {
                    warn!("connection {:?}: request timed out", i);
                }
                let _ = self.to_close.push(ConnId(i as u8));
                self.lose(i, now, timed_out, timed_out);
            }
        }
        if let Some(at) = self.metadata_fetched_at
            && at + self.metadata_max_age <= now
        {
            self.want_metadata(now);
        }
        #[cfg(feature = "sasl-scram")]
        self.advance_derivation(now);
        self.expire_stale_batches(now);
        let wake = self.sequencer.poll(now);
        self.next_wakeup(now, wake)
    }

    /// When the client next needs polling: now, when the transport has a socket to close or
    /// a slot may connect; else the earliest deadline of its [`TimerTable`].
    fn next_wakeup(&self, now: Instant, sequencer: Option<Instant>) -> Option<Instant> {
        // A socket to close, or a slot that may connect now (a connection handed its slot
        // on, or a leader waits for one): the transport's next turn does it.
        #[cfg(feature = "sasl-scram")]
        if self.deriving() {
            return Some(now);
        }
        let connect_now = !self.to_close.is_empty()
            || (!self.dialling_stopped()
                && self.conns.iter().any(|c| {
                    matches!(c.state, ConnState::Idle { retry_at } if retry_at <= now)
                        && self.endpoint_of(c.target).is_some()
                }));
        if connect_now {
            return Some(now);
        }
        self.timers(now, sequencer).next()
    }

    /// Every deadline the client keeps, gathered from where each lives.
    fn timers(&self, now: Instant, sequencer: Option<Instant>) -> TimerTable {
        let mut table = TimerTable::new(now);
        if let Some(at) = sequencer {
            table.arm(Timer::Sequencer, at);
        }
        for token in self.open.iter().flatten() {
            if let SlotUse::Open { opened_at, .. } = self.slots[token.slot()] {
                table.arm(Timer::Linger, opened_at + self.linger);
            }
        }
        for c in &self.conns {
            if let Some(at) = c.deadline(self.request_timeout) {
                table.arm(Timer::RequestTimeout, at);
            }
            if let (Some(_), ConnState::Idle { retry_at }) = (c.target, c.state)
                && !self.dialling_stopped()
            {
                table.arm(Timer::Reconnect, retry_at);
            }
            #[cfg(feature = "sasl")]
            if let (ConnState::Ready, Some(at)) = (c.state, c.reauth_at) {
                table.arm(Timer::Reauthenticate, at);
            }
        }
        if let Some(at) = self.token_refresh_at()
            && !self.dialling_stopped()
        {
            table.arm(Timer::TokenRefresh, at);
        }
        if let Some(at) = self.metadata_due {
            table.arm(Timer::MetadataDue, at);
        }
        if let Some(at) = self.metadata_fetched_at {
            table.arm(Timer::MetadataMaxAge, at + self.metadata_max_age);
        }
        if let Some(at) = self.turn_ends {
            table.arm(Timer::TurnEnds, at);
        }
        table
    }
}

/// A kind of deadline the client keeps. Each lives with what it times (a batch's opening, a
/// connection's oldest request, a slot's dial backoff, the metadata's age, a connection's
/// turn, and the sequencer's own); a [`TimerTable`] gathers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Timer {
    /// The sequencer's next instant: a batch deadline, a retry backoff, an InitProducerId
    /// pause.
    Sequencer,
    /// An open batch has lingered `linger`: it is sealed.
    Linger,
    /// A request has been out `request_timeout`: its connection is given up.
    RequestTimeout,
    /// A slot's target may be dialled again (its reconnect backoff is over).
    Reconnect,
    /// A metadata request is due: a refresh asked for, no sooner than the metadata backoff.
    MetadataDue,
    /// The metadata is `metadata_max_age` old: it is asked for again.
    MetadataMaxAge,
    /// The oldest serving connection's `connection_turn` is over, while a leader waits.
    TurnEnds,
    /// A connection's SASL session is 85% through its lifetime: it drains and authenticates
    /// again (KIP-368).
    #[cfg(feature = "sasl")]
    Reauthenticate,
    /// The OAUTHBEARER token is 80% through its life: the application is asked for another.
    TokenRefresh,
}

impl Timer {
    const COUNT: usize = Timer::TokenRefresh as usize + 1;
}

/// One table of deadlines, as quinn-proto's `TimerTable`: the earliest instant after `now` of
/// each [`Timer`], and the earliest of those, when the client next needs polling.
///
/// Unlike quinn's, it is filled afresh at each poll from the state that holds the deadlines
/// rather than armed and stopped in step with it, so no deadline can be left armed after what
/// it timed is gone. Only instants after `now` count: one already due is the current turn's
/// work (this poll's, or the transport's calls that follow it), not a reason to wake again.
#[derive(Clone, Copy, Debug)]
pub(super) struct TimerTable {
    now: Instant,
    at: [Option<Instant>; Timer::COUNT],
}

impl TimerTable {
    /// No deadline yet, as seen at `now`.
    pub(super) fn new(now: Instant) -> Self {
        TimerTable {
            now,
            at: [None; Timer::COUNT],
        }
    }

    /// Notes a deadline of `timer`'s kind; the kind keeps its earliest one after `now`.
    pub(super) fn arm(&mut self, timer: Timer, at: Instant) {
        if at <= self.now {
            return;
        }
        if let Some(slot) = self.at.get_mut(timer as usize)
            && slot.is_none_or(|t| at < t)
        {
            *slot = Some(at);
        }
    }

    /// The earliest deadline of `timer`'s kind after `now`.
    #[cfg(test)]
    pub(super) fn get(&self, timer: Timer) -> Option<Instant> {
        self.at.get(timer as usize).copied().flatten()
    }

    /// The earliest deadline of any kind after `now`: when to poll next (`None`: only an
    /// event, not time, can change anything).
    pub(super) fn next(&self) -> Option<Instant> {
        self.at.iter().flatten().min().copied()
    }
}

#[cfg(test)]
mod tests {
    use super::{Timer, TimerTable};
    use crate::time::Instant;

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    #[test]
    fn the_earliest_future_deadline_of_any_kind_wakes() {
        let mut t = TimerTable::new(ms(100));
        assert_eq!(t.next(), None);
        t.arm(Timer::MetadataMaxAge, ms(900));
        t.arm(Timer::Linger, ms(300));
        t.arm(Timer::Linger, ms(200));
        t.arm(Timer::Linger, ms(400));
        assert_eq!(t.get(Timer::Linger), Some(ms(200)));
        assert_eq!(t.get(Timer::MetadataMaxAge), Some(ms(900)));
        assert_eq!(t.get(Timer::Reconnect), None);
        assert_eq!(t.next(), Some(ms(200)));
    }

    #[test]
    fn a_deadline_already_due_is_no_wake_up_and_hides_no_later_one() {
        let mut t = TimerTable::new(ms(100));
        t.arm(Timer::RequestTimeout, ms(50));
        t.arm(Timer::RequestTimeout, ms(100));
        assert_eq!(t.next(), None);
        // The kind still keeps its earliest deadline after now.
        t.arm(Timer::RequestTimeout, ms(700));
        t.arm(Timer::Sequencer, ms(80));
        assert_eq!(t.get(Timer::RequestTimeout), Some(ms(700)));
        assert_eq!(t.next(), Some(ms(700)));
    }
}
