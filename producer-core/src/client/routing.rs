//! Routing: which targets the connection slots serve. A bootstrap address until metadata
//! names brokers, then the partition leaders, those with batches waiting first; with more
//! such leaders than slots, connections take turns (`connection_turn`).

use super::Client;
use super::connection::{ConnId, ConnState, Connection, Target};
use crate::capacity::Capacities;
use crate::state::BatchState;
use crate::time::Instant;

impl<S, C: Capacities> Client<S, C>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
{
    /// Notes in `scratch.work` which partitions (by ledger index) hold a batch without an
    /// outcome: their leaders need a connection.
    pub(super) fn note_partitions_with_work(&mut self) {
        let work = &mut self.scratch.work;
        work.fill(false);
        for slot in 0..self.slots.len() {
            if let Some(held) = self.sequencer.held(slot)
                && !matches!(held.state, BatchState::Decided { .. })
                && let Some(w) = work.get_mut(usize::from(held.partition.0))
            {
                *w = true;
            }
        }
    }

    /// Gives connection slots to the targets needed: a bootstrap address until metadata
    /// names brokers, then the partition leaders, those with records to send first.
    ///
    /// With more such leaders than slots, connections take turns: a connection that has
    /// served its leader for `connection_turn` while another leader with records waits is
    /// drained (no new requests; the ones out are answered) and then closed, and its slot
    /// goes to the waiting leader, searched from a point that advances at every handover so
    /// every leader gets its turn. A connection to a leader with nothing to send gives its
    /// slot up at once to one that has. No partition is left without a way to its leader.
    pub(super) fn assign_targets(&mut self, now: Instant) {
        self.scratch.wanted.clear();
        let mut waiting = false;
        let mut ask_again = false;
        if self.metadata.known {
            self.note_partitions_with_work();
            let work = &self.scratch.work;
            let wanted = &mut self.scratch.wanted;
            let n = self.metadata.partitions.len();
            // 0. Leaders with records that hold a slot keep it (until their turn is over);
            // 1. then leaders with records that wait, from the rotation point;
            // 2. then the leader whose turn just ended, if it has records again;
            // 3. then the other leaders, while slots are free.
            for pass in 0..4 {
                for k in 0..n {
                    let index = (self.rotation + k) % n;
                    let Some(leader) = self.metadata.partitions[index].leader else {
                        continue;
                    };
                    let t = Target::Node(leader);
                    let serving = serves(&self.conns, t);
                    let reachable = serving || self.metadata.broker(leader).is_some();
                    let last = self.turn_over == Some(t);
                    let take = match pass {
                        0 => work[index] && serving,
                        1 => work[index] && !serving && !last,
                        2 => work[index] && !serving && last,
                        _ => !work[index] && reachable,
                    };
                    if !take || wanted.contains(&t) {
                        continue;
                    }
                    if (1..=2).contains(&pass) && !reachable {
                        // Its address was not kept (more brokers than slots): ask again.
                        ask_again = true;
                        continue;
                    }
                    if wanted.push(t).is_err() && pass < 3 {
                        waiting = true;
                    }
                }
            }
        }
        if ask_again {
            self.want_metadata_paced(now);
        }
        let any_usable = self
            .conns
            .iter()
            .any(|c| c.target.is_some() && !matches!(c.state, ConnState::Idle { .. }));
        // With no connection up and no wanted broker whose address is known (none named
        // yet, or the full table kept others), only a bootstrap address leads to metadata.
        let reachable = self
            .scratch
            .wanted
            .iter()
            .any(|&t| self.endpoint_of(Some(t)).is_some());
        let wanted = &mut self.scratch.wanted;
        if !any_usable && !reachable {
            wanted.clear();
            // The next bootstrap address in turn, unless another may be dialled sooner.
            let count = self.bootstrap.len().max(1);
            let n = (0..count)
                .map(|k| (self.bootstrap_next + k) % count)
                .min_by_key(|&n| self.dials.ready_at(Target::Bootstrap(n as u8)))
                .unwrap_or(0);
            let _ = wanted.push(Target::Bootstrap(n as u8));
        }
        let leader_waits = waiting
            || wanted
                .iter()
                .any(|&t| !self.conns.iter().any(|c| c.target == Some(t)));
        for i in 0..self.conns.len() {
            let c = &mut self.conns[i];
            let Some(t) = c.target else { continue };
            if wanted.contains(&t) || matches!(t, Target::Bootstrap(_)) {
                continue;
            }
            if matches!(c.state, ConnState::Idle { .. }) {
                // Free idle slots whose target is no longer wanted.
                c.target = None;
                c.draining = false;
            } else if leader_waits && !c.draining {
                // A live connection to a leader that needs none, while another does.
                c.draining = true;
            }
        }
        // A turn is over: the oldest serving connection hands its slot on.
        self.turn_ends = None;
        if waiting && !self.conns.iter().any(|c| c.draining) {
            let oldest = (0..self.conns.len())
                .filter(|&i| {
                    matches!(self.conns[i].target, Some(Target::Node(_)))
                        && !matches!(self.conns[i].state, ConnState::Idle { .. })
                })
                .min_by_key(|&i| self.conns[i].assigned_at);
            if let Some(i) = oldest {
                let ends = self.conns[i].assigned_at + self.connection_turn;
                if ends <= now {
                    debug!("connection {:?}: turn over, handing the slot on", i);
                    self.conns[i].draining = true;
                } else {
                    self.turn_ends = Some(ends);
                }
            }
        }
        // Drained connections close; their slots are free for the next leader.
        for i in 0..self.conns.len() {
            let c = &self.conns[i];
            if c.draining
                && c.pending.is_empty()
                && !matches!(c.state, ConnState::Idle { .. })
                && !self.to_close.contains(&ConnId(i as u8))
            {
                let _ = self.to_close.push(ConnId(i as u8));
                let c = &mut self.conns[i];
                self.turn_over = c.target;
                c.state = ConnState::Idle { retry_at: now };
                c.versions = Default::default();
                c.target = None;
                c.draining = false;
                self.rotation = self.rotation.wrapping_add(1);
            }
        }
        for w in 0..self.scratch.wanted.len() {
            let t = self.scratch.wanted[w];
            if self.conns.iter().any(|c| c.target == Some(t)) {
                continue;
            }
            // A free slot the transport has closed already first; one it is yet to close
            // (see `poll_close`) connects once it has.
            let mut free = (0..self.conns.len())
                .filter(|&i| self.conns[i].target.is_none())
                .min_by_key(|&i| self.to_close.contains(&ConnId(i as u8)));
            if free.is_none()
                && matches!(t, Target::Node(_))
                && let Some(spare) = (0..self.conns.len()).find(|&i| self.is_spare_bootstrap(i))
            {
                // A leader needs the slot the spare bootstrap connection holds.
                let _ = self.to_close.push(ConnId(spare as u8));
                self.lose(spare, now, false, false);
                free = Some(spare);
            }
            if let Some(i) = free {
                // The target's own backoff, whichever slot it had before.
                let retry_at = self.dials.ready_at(t);
                let c = &mut self.conns[i];
                c.target = Some(t);
                c.assigned_at = now;
                c.draining = false;
                c.state = ConnState::Idle { retry_at };
            }
        }
        // A slot given to a leader whose address the full table did not keep connects once
        // a metadata answer brings it (the table keeps the brokers slots are given to).
        let unknown = self.conns.iter().any(|c| {
            matches!(c.state, ConnState::Idle { .. })
                && c.target.is_some()
                && self.endpoint_of(c.target).is_none()
        });
        if unknown {
            self.want_metadata_paced(now);
        }
    }
}

/// A slot (not draining) of `conns` serves `target`.
pub(super) fn serves<C: Capacities>(conns: &[Connection<C>], target: Target) -> bool {
    conns
        .iter()
        .any(|c| c.target == Some(target) && !c.draining)
}
