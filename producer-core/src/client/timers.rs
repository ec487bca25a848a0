//! Time as an input: [`Client::poll`] applies it (lingering batches, request timeouts,
//! metadata age, record deadlines through the sequencer) and answers with the next instant
//! the client needs to be polled at, the earliest of every deadline it keeps.

use super::Client;
use super::accumulator::SlotUse;
use super::connection::{ConnId, ConnState, Target};
use crate::time::Instant;

impl<S, const TOPICS: usize, const PARTITIONS: usize, const BATCHES: usize, const BROKERS: usize>
    Client<S, TOPICS, PARTITIONS, BATCHES, BROKERS>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
{
    /// Applies time: seals lingering batches, applies deadlines, times out requests, schedules
    /// metadata refreshes. Returns the next instant it needs to be polled at.
    pub fn poll(&mut self, now: Instant) -> Option<Instant> {
        self.last_now = now;
        for index in 0..PARTITIONS {
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
        for i in 0..BROKERS {
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
        self.expire_stale_batches(now);
        let wake = self.sequencer.poll(now);
        self.next_wakeup(now, wake)
    }

    fn next_wakeup(&self, now: Instant, sequencer: Option<Instant>) -> Option<Instant> {
        let linger = self
            .open
            .iter()
            .flatten()
            .filter_map(|t| match self.slots[t.slot()] {
                SlotUse::Open { opened_at, .. } => Some(opened_at + self.linger),
                _ => None,
            });
        let timeouts = self
            .conns
            .iter()
            .filter_map(|c| c.deadline(self.request_timeout));
        let reconnects = self.conns.iter().filter_map(|c| match (c.target, c.state) {
            (Some(_), ConnState::Idle { retry_at }) => Some(retry_at),
            _ => None,
        });
        let metadata = self
            .metadata_due
            .into_iter()
            .chain(self.metadata_fetched_at.map(|t| t + self.metadata_max_age));
        // A socket to close, or a slot that may connect now (a connection handed its slot
        // on, or a leader waits for one): the transport's next turn does it.
        let connect_now = !self.to_close.is_empty()
            || self.conns.iter().any(|c| {
                matches!(c.state, ConnState::Idle { retry_at } if retry_at <= now)
                    && self.endpoint_of(c.target).is_some()
            });
        if connect_now {
            return Some(now);
        }
        sequencer
            .into_iter()
            .chain(linger)
            .chain(timeouts)
            .chain(reconnects)
            .chain(metadata)
            .chain(self.turn_ends)
            .map(|t| t.max(now))
            .filter(|&t| t > now)
            .min()
    }
}
