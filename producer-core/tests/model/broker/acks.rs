//! Kafka's acks wait (`DelayedProduce`): how long a produce request with appended entries
//! waits for its in-sync replicas, what a timeout or a leadership move during the wait
//! answers, and the reply encoded once it is over.

use std::time::Duration;

use producer_core::ErrorCode;
use producer_core::wire::{
    self, List, ProducePartitionResponse, ProduceResponse, ProduceTopicResponse,
};
use rand::Rng;

use super::{BROKERS, Cluster, PartReply, Produced, Reply, ReplyBody, TOPIC};
use crate::harness::World;
use crate::model::Flavour;
use crate::model::net::NetEv;

impl Cluster {
    /// Kafka's acks wait (`DelayedProduce`), for a request with entries appended (or
    /// deduplicated): usually a millisecond or so; with slow in-sync replicas up to the
    /// request's produce timeout, after which those entries are answered 7; and sometimes a
    /// leadership move of an entry's partition lands inside it (a controlled shutdown, a
    /// preferred-leader election), which `finish` answers 6: the batch is in the log and the
    /// new leader keeps it. (Kafka also answers 3 after the append when the topic is deleted
    /// during the wait; topic deletion is outside this model.) Tansu answers at once.
    pub fn acks_wait<E: From<NetEv>>(
        &mut self,
        w: &mut World<E>,
        timeout: Duration,
        parts: &mut [PartReply],
    ) -> Duration {
        if self.flavour != Flavour::Kafka || parts.iter().all(|p| p.watch.is_none()) {
            return Duration::ZERO;
        }
        let mut wait = Duration::from_micros(w.rng.random_range(100..2000));
        let slowed = parts.iter().any(|part| {
            part.watch
                .is_some_and(|(p, _, _)| w.now < self.slow_until[p])
        });
        if slowed || w.chance(0.005) {
            self.faults.slow_acks += 1;
            let longest = timeout.as_millis() as u64 + 300;
            let slow = Duration::from_millis(w.rng.random_range(longest / 3..=longest));
            if slow >= timeout {
                self.faults.acks_timeouts += 1;
                wait = timeout;
                for part in parts.iter_mut().filter(|p| p.watch.is_some()) {
                    part.error = ErrorCode::REQUEST_TIMED_OUT;
                    part.base_offset = -1;
                }
            } else {
                wait = slow;
            }
        }
        for part in parts.iter() {
            let Some((p, _, _)) = part.watch else {
                continue;
            };
            if !w.chance(0.01) {
                continue;
            }
            let others: Vec<usize> = (0..BROKERS)
                .filter(|&b| self.up[b] && b != self.leader[p])
                .collect();
            if others.is_empty() {
                continue;
            }
            let to = others[w.rng.random_range(0..others.len())];
            let at = w.now + wait.mul_f64(w.rng.random_range(0.1..0.9));
            self.faults.moves_in_wait += 1;
            w.schedule(at, NetEv::LeaderMoves(p, to).into());
        }
        wait
    }

    /// Entry `index`'s answer as prepared before the acks wait, watching its partition's
    /// leadership if it waits.
    pub fn part(&self, index: i32, (error, base_offset, waits): Produced) -> PartReply {
        PartReply {
            index,
            error,
            base_offset,
            watch: waits.map(|(p, id)| (p, self.leader_epoch[p], id)),
        }
    }

    /// An entry's answer once the acks wait is over: 6 if it waited while its partition's
    /// leadership moved (it is in the log all the same), else as prepared.
    pub fn settle<E>(
        &mut self,
        w: &mut World<E>,
        broker: usize,
        part: &PartReply,
    ) -> (ErrorCode, i64) {
        if let Some((p, epoch, id)) = part.watch
            && self.leader_epoch[p] != epoch
        {
            self.faults.not_leader_after_append += 1;
            self.not_leader_answered
                .insert((id.producer_id, id.epoch, p, id.base_sequence));
            w.log(|| format!("broker {broker}: partition {p} moved during the acks wait: 6"));
            return (ErrorCode::NOT_LEADER_OR_FOLLOWER, -1);
        }
        (part.error, part.base_offset)
    }

    /// Encodes a reply once its acks wait is over: an entry that waited while its
    /// partition's leadership moved is answered 6 (it is in the log all the same).
    pub fn finish<E>(&mut self, w: &mut World<E>, reply: Reply) -> Result<Vec<u8>, String> {
        let (broker, corr) = (reply.broker, reply.corr);
        w.log(|| format!("broker {broker} answers {:?} corr {corr}", reply.api));
        let parts = match reply.body {
            ReplyBody::Encoded(bytes) => return Ok(bytes),
            ReplyBody::Produce(parts) => parts,
        };
        let mut answers: Vec<ProducePartitionResponse<'_>> = Vec::new();
        for part in parts {
            let (error, base_offset) = self.settle(w, broker, &part);
            answers.push(ProducePartitionResponse {
                index: part.index,
                error_code: error.0,
                base_offset,
                ..Default::default()
            });
        }
        let topics = [ProduceTopicResponse {
            name: TOPIC,
            partitions: List::from_slice(&answers),
        }];
        let body = ProduceResponse {
            topics: List::from_slice(&topics),
            ..Default::default()
        };
        let mut out = vec![0u8; 64 * 1024];
        let n = wire::encode_response(&mut out, reply.version, corr, &body)
            .map_err(|e| format!("model broker cannot encode: {e:?}"))?;
        out.truncate(n);
        Ok(out)
    }
}
