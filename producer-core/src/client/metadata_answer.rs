//! Applying a Metadata answer: the broker table, each partition's leader, and when to ask
//! again, in work bounded by the configuration whatever the answer holds.
//!
//! An answer is the broker's word, not a fact to trust blindly. Kafka numbers a topic's
//! partitions `0..n`; a topic whose answer does not (negative, duplicated or missing ids) is
//! left as it was and asked for again, with the metadata backoff, rather than turned into
//! partitions nobody can produce to (a negative id once made every record of the `produce`
//! tool `NoSuchPartition`). A topic with more partitions than the table holds keeps the
//! lowest ids the table has room for and is marked [`full`](super::Topic::full): asking again
//! would not make room, so it is not asked again for that.
//!
//! The cost: the answer's partitions are read once per configured topic, its brokers a
//! fixed number of times, and everything else is over the client's own tables (as many
//! entries as its capacities). An answer naming 10,000 brokers or 100,000 partitions
//! costs work in proportion to its size (which the frame limit bounds), never to the product
//! of its lists.
//!
//! When to ask again: an answer that leaves something unknown (a topic missing or in error,
//! a partition without a reachable leader) asks again after the metadata backoff,
//! `retry_backoff` doubling per consecutive such answer up to `retry_backoff_max`, jittered;
//! a complete answer resets it. No request goes out sooner than `retry_backoff` after an
//! answer, whatever asks for it.

use heapless::String;

use super::Client;
use super::connection::{Pending, Target};
use super::metadata::{Broker, Endpoint, Partition};
use crate::capacity::Capacities;
use crate::time::Instant;
use crate::wire::MetadataResponse;

impl<S, C: Capacities> Client<S, C>
where
    S: AsRef<[u8]> + AsMut<[u8]>,
{
    pub(super) fn on_metadata(&mut self, p: &Pending, frame: &[u8], now: Instant) -> bool {
        let Some((header, response)) = Self::decode::<MetadataResponse<'_>>(frame, p.version)
        else {
            return false;
        };
        if !Self::check_correlation(p, &header) {
            return false;
        }
        let mut incomplete = false;
        for t in 0..self.metadata.topics.len() {
            incomplete |= !self.apply_topic(t, &response);
        }
        incomplete |= self.apply_brokers(&response);
        self.metadata.known = !self.metadata.brokers.is_empty();
        self.metadata_fetched_at = Some(now);
        if incomplete {
            self.metadata_failures = self.metadata_failures.saturating_add(1);
            self.metadata_wait = self
                .metadata_rule
                .delay(self.metadata_failures, &mut self.metadata_jitter);
        } else {
            self.metadata_failures = 0;
            self.metadata_wait = self.metadata_rule.base;
        }
        self.metadata_due = incomplete.then(|| now + self.metadata_wait);
        true
    }

    /// Applies the answer for topic `t`: its partition count and the leaders of its
    /// partitions the table holds. Returns false when the answer leaves it to be asked again
    /// (missing, in error, or not numbered `0..n`); the topic is then left unchanged.
    fn apply_topic(&mut self, t: usize, response: &MetadataResponse<'_>) -> bool {
        let topic = t as u8;
        let Some(answer) = response.topic(self.metadata.topics[t].name.as_str()) else {
            return false;
        };
        if answer.error_code != 0 {
            return false;
        }
        // One pass: check the numbering and note the leader of each id the table can hold
        // (ids below the partition capacity: the table keeps a topic's lowest ids).
        let leader_of = &mut self.scratch.leader_of;
        leader_of.fill(None);
        let (mut n, mut sum, mut max) = (0u64, 0u64, 0u64);
        for part in &answer.partitions {
            let Ok(id) = u32::try_from(part.partition_index) else {
                return self.misnumbered(t);
            };
            n += 1;
            sum += u64::from(id);
            max = max.max(u64::from(id));
            if let Some(seen) = leader_of.get_mut(id as usize) {
                if seen.is_some() {
                    return self.misnumbered(t);
                }
                *seen =
                    Some((part.error_code == 0 && part.leader_id >= 0).then_some(part.leader_id));
            }
        }
        let held = usize::try_from(n)
            .unwrap_or(usize::MAX)
            .min(leader_of.len());
        // Ids 0..n each once: the ones the table can hold were seen, the rest add up.
        if n == 0
            || n > i32::MAX as u64
            || max >= n
            || sum != n * (n - 1) / 2
            || leader_of[..held].iter().any(Option::is_none)
        {
            return self.misnumbered(t);
        }
        let mut full = held < n as usize;
        for id in 0..held {
            let leader = self.scratch.leader_of[id].flatten();
            let index = match self.metadata.index_of(topic, id as i32) {
                Some(index) => index,
                None => {
                    let entry = Partition {
                        topic,
                        partition: id as i32,
                        leader,
                    };
                    if self.metadata.partitions.push(entry).is_err() {
                        full = true;
                        break;
                    }
                    self.metadata.partitions.len() - 1
                }
            };
            self.metadata.partitions[index].leader = leader;
        }
        // A partition restored from durable storage may sit above the ids kept: only then is
        // the answer read a second time, for those.
        let restored_high = |p: &Partition| p.topic == topic && p.partition as u64 >= held as u64;
        if self.metadata.partitions.iter().any(restored_high) {
            for part in &answer.partitions {
                if (part.partition_index as u64) < held as u64 {
                    continue;
                }
                if let Some(index) = self.metadata.index_of(topic, part.partition_index) {
                    let leader =
                        (part.error_code == 0 && part.leader_id >= 0).then_some(part.leader_id);
                    self.metadata.partitions[index].leader = leader;
                }
            }
        }
        let entry = &mut self.metadata.topics[t];
        if full && !entry.full {
            warn!(
                "topic {:?} has {:?} partitions, more than the table holds: raise PARTITIONS",
                t, n
            );
        }
        entry.partitions = n as u32;
        entry.full = full;
        true
    }

    fn misnumbered(&self, t: usize) -> bool {
        warn!(
            "metadata for topic {:?}: partitions not numbered 0..n, ignored",
            t
        );
        false
    }

    /// Rebuilds the broker table from the answer and returns whether a partition's leader
    /// is unknown or cannot be reached (so metadata must be asked again).
    ///
    /// The table holds `BROKERS` entries; a cluster may have more. Kept first: the leaders
    /// of partitions with records that no connection serves (they are the ones to connect
    /// to next), then the brokers connections serve, then the other leaders of our
    /// partitions, then the rest.
    fn apply_brokers(&mut self, response: &MetadataResponse<'_>) -> bool {
        self.note_partitions_with_work();
        let work = &self.scratch.work;
        // The leaders of the table's partitions, once: (node, one of them has records,
        // the answer lists it).
        let leaders = &mut self.scratch.leaders;
        leaders.clear();
        let mut leaderless = false;
        for (index, p) in self.metadata.partitions.iter().enumerate() {
            let Some(node) = p.leader else {
                leaderless = true;
                continue;
            };
            match leaders.iter_mut().find(|(n, _, _)| *n == node) {
                Some(entry) => entry.1 |= work[index],
                None => {
                    let _ = leaders.push((node, work[index], false));
                }
            }
        }
        for b in &response.brokers {
            if let Some(entry) = leaders.iter_mut().find(|(n, _, _)| *n == b.node_id) {
                entry.2 = true;
            }
        }
        // Built in the scratch table, which then changes places with the old one.
        let table = &mut self.scratch.brokers;
        table.clear();
        'passes: for pass in 0..4 {
            for b in &response.brokers {
                if table.is_full() {
                    break 'passes;
                }
                let serving = super::routing::serves(&self.conns, Target::Node(b.node_id));
                let leads = leaders
                    .iter()
                    .find(|(n, _, _)| *n == b.node_id)
                    .map(|&(_, with_work, _)| with_work);
                let priority = if !serving && leads == Some(true) {
                    0
                } else if serving {
                    1
                } else if leads.is_some() {
                    2
                } else {
                    3
                };
                if priority != pass || table.iter().any(|k| k.node_id == b.node_id) {
                    continue;
                }
                let (Ok(host), Ok(port)) = (String::try_from(b.host), u16::try_from(b.port)) else {
                    continue;
                };
                let _ = table.push(Broker {
                    node_id: b.node_id,
                    endpoint: Endpoint { host, port },
                });
            }
        }
        let overflow = response.brokers.len() > table.len();
        core::mem::swap(&mut self.metadata.brokers, table);
        let leaders = &self.scratch.leaders;
        // A leader the broker list does not name (it is down, say) cannot be reached: ask
        // again rather than wait for the metadata to age. A leader left out of a full table
        // is not that: connections take turns, and the table is refreshed for the next one
        // (`want_metadata_paced`).
        leaderless
            || leaders.iter().any(|&(node, _, listed)| {
                self.metadata.broker(node).is_none() && !(overflow && listed)
            })
    }

    /// Asks for metadata as soon as the metadata backoff allows: never sooner than
    /// `metadata_wait` after the last answer, so that answers which each ask for a refresh
    /// (a leader that moved, a lost connection) cost at most one request per backoff.
    pub(super) fn want_metadata(&mut self, now: Instant) {
        let at = self.metadata_not_before(now);
        if self.metadata_due.is_none_or(|t| t > at) {
            self.metadata_due = Some(at);
        }
    }

    fn metadata_not_before(&self, now: Instant) -> Instant {
        self.metadata_fetched_at
            .map_or(now, |t| (t + self.metadata_wait).max(now))
    }

    /// Asks for metadata no sooner than one connection turn after the last answer: while
    /// leaders outnumber the slots, the addresses of the ones not kept are learnt again at
    /// most once a turn.
    pub(super) fn want_metadata_paced(&mut self, now: Instant) {
        let at = self
            .metadata_fetched_at
            .map_or(now, |t| (t + self.connection_turn).max(now))
            .max(self.metadata_not_before(now));
        if self.metadata_due.is_none_or(|t| t > at) {
            self.metadata_due = Some(at);
        }
    }
}
